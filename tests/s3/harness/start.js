'use strict';
// Starts the loopback S3 test stack and prints where it listens as one JSON line on stdout:
//
//   client -> fault proxy -> verify proxy -> s3rver (temp directory)
//
// {"s3rver":"http://127.0.0.1:P1","verify":"http://127.0.0.1:P2","fault":"http://127.0.0.1:P3",
//  "bucket":"imgspool-test","region":"us-east-1","access_key_id":"...","secret_access_key":"..."}
//
// Everything binds 127.0.0.1. The stack stops, and its temp directory is removed, when stdin
// closes (so a test that dies never leaks it) or on SIGTERM/SIGINT.
// Options (environment): HARNESS_BUCKETS (comma-separated, default "imgspool-test"),
// HARNESS_ACCESS_KEY_ID, HARNESS_SECRET_ACCESS_KEY, HARNESS_SESSION_TOKEN.

const fs = require('fs');
const os = require('os');
const path = require('path');
const S3rver = require('s3rver');
const { createVerifyProxy } = require('./verify-proxy');
const { createFaultProxy } = require('./fault-proxy');

async function main() {
  const buckets = (process.env.HARNESS_BUCKETS || 'imgspool-test').split(',').filter(Boolean);
  const credentials = {
    accessKeyId: process.env.HARNESS_ACCESS_KEY_ID || 'AKIAIMGSPOOLTEST0001',
    secretAccessKey: process.env.HARNESS_SECRET_ACCESS_KEY || 'harnessSecret/Key+0123456789abcdefghijKLMN',
    sessionToken: process.env.HARNESS_SESSION_TOKEN || '',
  };
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'imgspool-s3rver-'));
  const s3rver = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const { port: s3rverPort } = await s3rver.run();
  const verify = createVerifyProxy({ upstreamPort: s3rverPort, credentials });
  const verifyPort = await verify.listen();
  const fault = createFaultProxy({ upstreamPort: verifyPort });
  const faultPort = await fault.listen();

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    fault.close();
    fs.rmSync(directory, { recursive: true, force: true });
    process.exit(0);
  };
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  const url = (port) => `http://127.0.0.1:${port}`;
  process.stdout.write(JSON.stringify({
    s3rver: url(s3rverPort),
    verify: url(verifyPort),
    fault: url(faultPort),
    bucket: buckets[0],
    region: 'us-east-1',
    access_key_id: credentials.accessKeyId,
    secret_access_key: credentials.secretAccessKey,
  }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`harness: ${err.stack || err}\n`);
  process.exit(1);
});
