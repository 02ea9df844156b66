'use strict';
// A loopback proxy that passes requests through to an upstream server unless told to misbehave.
// Faults are queued; each one applies to the next `count` requests that match it, then the
// proxy passes requests through again.
//
// Control (not S3; bucket names cannot start with '_'):
//   POST /_harness/faults  body: {"kind":"status","status":503,"code":"SlowDown","count":2}
//                                {"kind":"reset","count":1}        (TCP reset, no answer)
//                                {"kind":"stall","count":1,"ms":30000} (no answer until ms pass)
//                                {"kind":"corrupt","count":1}      (flips a body byte, passes on)
//                                {"kind":"chunked","count":1}      (passes on; the answer comes
//                                 without Content-Length, chunked in 64 KiB pieces: a client
//                                 learns its size only by reading it)
//                                {"kind":"truncate","count":1}     (passes on; the answer announces
//                                 its length, then the connection is cut halfway through the body)
//                          optional "method":"PUT" and "match":"partNumber=2" (substring of the
//                          URL) restrict which requests a fault hits.
//   GET  /_harness/faults  -> {"pending":[...],"injected":n,"passed":n}
//   POST /_harness/faults/clear
//   GET  /_harness/connections -> {"accepted":n,"open":n,"max_open":n,"requests":n}: the TCP
//        connections that carried S3 requests (control requests are not counted), how many of
//        them are open now and at most at once, and the S3 requests they carried.
//   POST /_harness/connections/reset  zeroes accepted, max_open (to open) and requests
//
// start.js can stop the proxy (connections refused, open ones cut) and start it again on the
// same port: a stopped and restarted store.
//
// Idle connections are kept for 30 s (Node's default is 5 s; S3 keeps them about 20 s), so a
// client that reuses its connections across jobs is seen doing so.

const http = require('http');
const { sendS3Error, readBody, sendJson, forward, listen } = require('./http-util');

function createFaultProxy({ upstreamPort }) {
  const state = { pending: [], injected: 0, passed: 0 };
  const connections = { accepted: 0, open: 0, max_open: 0, requests: 0 };
  const stalled = new Set();

  // Counts a connection the first time it carries an S3 request.
  function countRequest(socket) {
    connections.requests += 1;
    if (socket.imgspoolCounted) return;
    socket.imgspoolCounted = true;
    connections.accepted += 1;
    connections.open += 1;
    connections.max_open = Math.max(connections.max_open, connections.open);
    socket.once('close', () => { connections.open -= 1; });
  }

  function takeFault(req) {
    const fault = state.pending.find((f) =>
      (!f.method || f.method === req.method) && (!f.match || req.url.includes(f.match)));
    if (!fault) return null;
    fault.count -= 1;
    if (fault.count <= 0) state.pending.splice(state.pending.indexOf(fault), 1);
    state.injected += 1;
    return fault;
  }

  const server = http.createServer(async (req, res) => {
    try {
      if (req.url.startsWith('/_harness/faults')) {
        const body = await readBody(req);
        if (req.method === 'POST' && req.url === '/_harness/faults') {
          const fault = JSON.parse(body.toString('utf8') || '{}');
          if (!['status', 'reset', 'stall', 'corrupt', 'chunked', 'truncate'].includes(fault.kind)) {
            return sendJson(res, 400,
              { error: 'kind must be status, reset, stall, corrupt, chunked or truncate' });
          }
          state.pending.push({ count: 1, ...fault });
        } else if (req.method === 'POST' && req.url === '/_harness/faults/clear') {
          state.pending = [];
        }
        return sendJson(res, 200, state);
      }
      if (req.url.startsWith('/_harness/connections')) {
        await readBody(req);
        if (req.method === 'POST' && req.url === '/_harness/connections/reset') {
          Object.assign(connections, { accepted: 0, max_open: connections.open, requests: 0 });
        }
        return sendJson(res, 200, connections);
      }
      countRequest(req.socket);
      const fault = takeFault(req);
      if (fault && fault.kind === 'reset') {
        req.socket.resetAndDestroy();
        return undefined;
      }
      const body = await readBody(req);
      if (fault && fault.kind === 'status') {
        return sendS3Error(req, res, fault.status || 503, fault.code || 'SlowDown',
          fault.message || 'Please reduce your request rate.');
      }
      if (fault && fault.kind === 'stall') {
        stalled.add(req.socket);
        const timer = setTimeout(() => req.socket.destroy(), fault.ms || 30000);
        req.socket.on('close', () => { clearTimeout(timer); stalled.delete(req.socket); });
        return undefined;
      }
      if (fault && fault.kind === 'corrupt' && body.length > 0) body[0] ^= 0xff;
      state.passed += 1;
      const answer = await forward(upstreamPort, req.method, req.url, req.headers, body);
      if (fault && fault.kind === 'chunked' && req.method !== 'HEAD') {
        const { 'content-length': _length, ...headers } = answer.headers;
        res.writeHead(answer.status, headers);  // no Content-Length: Node sends it chunked
        for (let at = 0; at < answer.body.length; at += 64 * 1024) {
          res.write(answer.body.subarray(at, at + 64 * 1024));
        }
        return res.end();
      }
      if (fault && fault.kind === 'truncate' && req.method !== 'HEAD') {
        res.writeHead(answer.status, answer.headers);
        res.write(answer.body.subarray(0, Math.floor(answer.body.length / 2)),
          () => req.socket.destroy());
        return undefined;
      }
      res.writeHead(answer.status, answer.headers);
      res.end(req.method === 'HEAD' ? undefined : answer.body);
    } catch (err) {
      sendS3Error(req, res, 502, 'BadGateway', `fault proxy: ${err.message}`);
    }
  });
  server.keepAliveTimeout = 30000;
  const sockets = new Set();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const close = () => { for (const s of stalled) s.destroy(); };

  // A stopped server: new connections are refused, open ones are cut.
  function down() {
    return new Promise((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
  }
  // The server back on the same port.
  function up(port) {
    return new Promise((resolve, reject) => {
      if (server.listening) return resolve();
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => { server.off('error', reject); resolve(); });
    });
  }
  return { server, listen: () => listen(server), close, down, up };
}

module.exports = { createFaultProxy };
