'use strict';
// Small helpers shared by the harness servers: S3-style XML error answers, whole-body reads and
// plain forwarding to an upstream server on 127.0.0.1.

const http = require('http');

function xmlEscape(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;',
  })[c]);
}

// Answers like S3 does: an <Error> document (no body for HEAD).
function sendS3Error(req, res, status, code, message, extra = {}) {
  let body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error>' +
    `<Code>${xmlEscape(code)}</Code><Message>${xmlEscape(message)}</Message>`;
  for (const [name, value] of Object.entries(extra)) {
    body += `<${name}>${xmlEscape(value)}</${name}>`;
  }
  body += '<RequestId>HARNESS0000000001</RequestId></Error>';
  res.writeHead(status, {
    'Content-Type': 'application/xml',
    'Content-Length': req.method === 'HEAD' ? 0 : Buffer.byteLength(body),
    'x-amz-request-id': 'HARNESS0000000001',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

// Sends method/path/headers/body to 127.0.0.1:port; resolves with {status, headers, body}.
// The Host header is kept unless replaceHost is set (a signed Host must reach the verifier).
function forward(port, method, path, headers, body, { replaceHost = false } = {}) {
  return new Promise((resolve, reject) => {
    const upstream = http.request({
      host: '127.0.0.1', port, method, path,
      headers: {
        ...headers,
        ...(replaceHost ? { host: `127.0.0.1:${port}` } : {}),
        'content-length': body.length,
      },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    upstream.on('error', reject);
    upstream.end(body);
  });
}

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server.address().port));
  });
}

module.exports = { xmlEscape, sendS3Error, readBody, sendJson, forward, listen };
