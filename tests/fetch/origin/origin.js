'use strict';
// A test origin for the fetch tests: plain HTTP with node's core modules only (no npm ci).
//
//   node origin.js DIR
//
// Listens on 127.0.0.1 and 127.0.0.2 (all of 127/8 is on lo), and on ::1 when the machine has
// IPv6, each on a port of its own, and prints them as one JSON line on stdout:
//   {"port1":P1,"port2":P2,"port6":P6}      (port6 is 0 without IPv6)
// It exits when stdin closes, so a test that dies never leaks it.
//
// Routes:
//   /img/NAME                  200, the file DIR/NAME (image/jpeg, image/png or image/webp)
//   /redirect/N?to=URL         N > 0: 302 to /redirect/N-1?to=URL; N = 0: 302 to URL
//                              (so N + 1 redirects in all); &code=301|303|307|308 for others
//   /status/CODE               that status, with a short text body
//   /flaky/KEY?img=NAME        500 the first 2 times per KEY, then 200 with /img/NAME
//   /trickle?bps=100&total=N   200 image/jpeg, N bytes (JPEG magic first) at bps bytes/s
//   /huge?bytes=N&chunked=1    200 image/jpeg: JPEG magic then zeros, N bytes, no Content-Length;
//                              chunked=0 declares Content-Length. Honours back-pressure, so the
//                              bytes counted in /_stats are the ones the client's socket took
//   /html-as-jpeg              200 Content-Type image/jpeg with an HTML page as the body
//   /_stats                    {"total":n,"listeners":{"127.0.0.1":n,...},"paths":{"/x":n},
//                               "huge_sent":bytes,"open":n}  (requests to /_stats, /_reset and
//                               unknown paths are not in "paths")
//   /_reset                    zeroes the counters and the flaky state

const fs = require('fs');
const http = require('http');
const path = require('path');

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node origin.js DIR\n');
  process.exit(2);
}

const JPEG_MAGIC = Buffer.from([0xff, 0xd8, 0xff, 0xe0]);
const TYPES = { '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp' };

let stats;
let flaky;
function reset() {
  stats = { total: 0, listeners: {}, paths: {}, huge_sent: 0, open: 0 };
  flaky = new Map();
}
reset();

function text(res, status, body, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

function sendFile(res, name) {
  const file = path.join(dir, path.basename(name));
  fs.readFile(file, (err, data) => {
    if (err) return text(res, 404, `no file ${name}\n`);
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(file).toLowerCase()] || 'application/octet-stream',
      'Content-Length': data.length,
    });
    return res.end(data);
  });
}

// Writes `total` bytes (JPEG magic, then zeros) as fast as the client takes them, or `bps` bytes
// per second when bps > 0. Stops when the client goes away.
function stream(req, res, { total, bps, countSent }) {
  let sent = 0;
  let closed = false;
  stats.open += 1;
  res.on('close', () => {
    closed = true;
    stats.open -= 1;
  });
  const zeros = Buffer.alloc(64 * 1024);
  const chunkFor = (want) => {
    const n = Math.min(want, total - sent);
    if (sent === 0) {
      const head = Buffer.alloc(n);
      JPEG_MAGIC.copy(head, 0, 0, Math.min(n, JPEG_MAGIC.length));
      return head;
    }
    return n === zeros.length ? zeros : zeros.subarray(0, n);
  };
  const write = (chunk) => {
    sent += chunk.length;
    if (countSent) stats.huge_sent += chunk.length;
    return res.write(chunk);
  };
  if (bps > 0) {
    const step = Math.max(1, Math.floor(bps / 10));
    const timer = setInterval(() => {
      if (closed || sent >= total) {
        clearInterval(timer);
        if (!closed) res.end();
        return;
      }
      write(chunkFor(step));
    }, 100);
    return;
  }
  const pump = () => {
    while (!closed && sent < total) {
      if (!write(chunkFor(zeros.length))) return res.once('drain', pump);
    }
    if (!closed) res.end();
    return undefined;
  };
  pump();
}

function route(req, res, url) {
  const p = url.pathname;
  const q = url.searchParams;
  let m;
  if ((m = p.match(/^\/img\/([^/]+)$/))) return sendFile(res, decodeURIComponent(m[1]));
  if ((m = p.match(/^\/redirect\/(\d+)$/))) {
    const n = Number(m[1]);
    const to = q.get('to') || '/img/photo.jpg';
    const code = Number(q.get('code') || 302);
    const extra = q.get('code') ? `&code=${code}` : '';
    const location = n > 0 ? `/redirect/${n - 1}?to=${encodeURIComponent(to)}${extra}` : to;
    return text(res, code, `redirect to ${location}\n`, { Location: location });
  }
  if ((m = p.match(/^\/status\/(\d{3})$/))) return text(res, Number(m[1]), `status ${m[1]}\n`);
  if ((m = p.match(/^\/flaky\/([^/]+)$/))) {
    const seen = (flaky.get(m[1]) || 0) + 1;
    flaky.set(m[1], seen);
    if (seen <= 2) return text(res, 500, `flaky ${m[1]}: failure ${seen}\n`);
    return sendFile(res, q.get('img') || 'photo.jpg');
  }
  if (p === '/trickle') {
    const total = Number(q.get('total') || 100000);
    res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': total });
    return stream(req, res, { total, bps: Number(q.get('bps') || 100), countSent: false });
  }
  if (p === '/huge') {
    const total = Number(q.get('bytes') || 2 ** 31);
    const headers = { 'Content-Type': 'image/jpeg' };
    if (q.get('chunked') === '0') headers['Content-Length'] = total;
    res.writeHead(200, headers);
    return stream(req, res, { total, bps: 0, countSent: true });
  }
  if (p === '/html-as-jpeg') {
    const body = '<!DOCTYPE html><html><head><title>Not an image</title></head><body>hi</body></html>\n';
    res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': Buffer.byteLength(body) });
    return res.end(body);
  }
  return null;
}

function handler(listener) {
  return (req, res) => {
    const url = new URL(req.url, 'http://origin');
    if (url.pathname === '/_stats') return text(res, 200, JSON.stringify(stats));
    if (url.pathname === '/_reset') {
      reset();
      return text(res, 200, '{}');
    }
    stats.total += 1;
    stats.listeners[listener] = (stats.listeners[listener] || 0) + 1;
    const known = ['/img/', '/redirect/', '/status/', '/flaky/', '/trickle', '/huge', '/html-as-jpeg']
      .some((prefix) => url.pathname.startsWith(prefix));
    if (known) stats.paths[url.pathname] = (stats.paths[url.pathname] || 0) + 1;
    if (route(req, res, url) === null) text(res, 404, `no route ${url.pathname}\n`);
    return undefined;
  };
}

function listen(host) {
  return new Promise((resolve) => {
    const server = http.createServer(handler(host));
    server.on('error', () => resolve(0));
    server.listen(0, host, () => resolve(server.address().port));
  });
}

async function main() {
  const port1 = await listen('127.0.0.1');
  const port2 = await listen('127.0.0.2');
  const port6 = await listen('::1');
  if (!port1 || !port2) throw new Error('cannot listen on 127.0.0.1 and 127.0.0.2');
  const stop = () => process.exit(0);
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(`${JSON.stringify({ port1, port2, port6 })}\n`);
}

main().catch((err) => {
  process.stderr.write(`origin: ${err.stack || err}\n`);
  process.exit(1);
});
