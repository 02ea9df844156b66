'use strict';
// Starts the loopback S3 test stack and prints where it listens as one JSON line on stdout:
//
//   client -> fault proxy -> verify proxy -> s3rver (temp directory)
//
// {"s3rver":"http://127.0.0.1:P1","verify":"http://127.0.0.1:P2","fault":"http://127.0.0.1:P3",
//  "bucket":"imgspool-test","region":"us-east-1","access_key_id":"...","secret_access_key":"..."}
//
// "control" is a small server of the stack itself: POST /store/down stops the fault proxy (new
// connections are refused, open ones cut), POST /store/up starts it again on the same port; each
// answers once done. So a client can see its store stop and come back.
//
// Everything binds 127.0.0.1. The stack stops, and its temp directory is removed, when stdin
// closes (so a test that dies never leaks it) or on SIGTERM/SIGINT.
// Options (environment): HARNESS_BUCKETS (comma-separated, default "imgspool-test"),
// HARNESS_ACCESS_KEY_ID, HARNESS_SECRET_ACCESS_KEY, HARNESS_SESSION_TOKEN.

const fs = require('fs');
const os = require('os');
const path = require('path');
const http = require('http');
const S3rver = require('s3rver');
const { createVerifyProxy } = require('./verify-proxy');
const { createFaultProxy } = require('./fault-proxy');
const { sendJson, readBody, listen } = require('./http-util');

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
  const control = http.createServer(async (req, res) => {
    try {
      await readBody(req);
      if (req.method === 'POST' && req.url === '/store/down') await fault.down();
      else if (req.method === 'POST' && req.url === '/store/up') await fault.up(faultPort);
      else return sendJson(res, 404, { error: 'POST /store/down or /store/up' });
      return sendJson(res, 200, { fault_listening: fault.server.listening });
    } catch (err) {
      return sendJson(res, 500, { error: err.message });
    }
  });
  const controlPort = await listen(control);

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
    control: url(controlPort),
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
