'use strict';
// A loopback proxy in front of s3rver that does what s3rver 3.7.1 does not (its issue #659):
// it recomputes every request's SigV4 signature with AWS's own signer (@aws-sdk/signature-v4)
// and checks the payload's SHA-256 and Content-MD5. A mismatch is answered like S3 answers it:
// 403 SignatureDoesNotMatch, 400 XAmzContentSHA256Mismatch, 400 BadDigest.
//
// It also emulates the multipart calls s3rver lacks: abort (DELETE ?uploadId) and list
// (GET /bucket?uploads), by tracking uploads created and completed through it.
//
// Control (not S3; bucket names cannot start with '_'):
//   GET  /_harness/stats  -> {"verified":n,"verified_by_method":{"PUT":n,...},"rejected":n,
//                             "rejections":[{method,url,code}]}
//   POST /_harness/reset  -> zeroes the counters

const crypto = require('crypto');
const http = require('http');
const { SignatureV4, getCanonicalHeaders } = require('@aws-sdk/signature-v4');
const { Sha256 } = require('@aws-crypto/sha256-js');
const { sendS3Error, readBody, sendJson, forward, listen, xmlEscape } = require('./http-util');

function rfc3986(segment) {
  return encodeURIComponent(segment).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

// The S3 canonical URI of a request path: each segment decoded, then encoded once.
function canonicalPath(rawPath) {
  return rawPath.split('/').map((s) => rfc3986(decodeURIComponent(s))).join('/');
}

function parseQuery(search) {
  const query = {};
  for (const [name, value] of new URLSearchParams(search)) {
    if (name in query) query[name] = [].concat(query[name], value);
    else query[name] = value;
  }
  return query;
}

function parseAuthorization(header) {
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(header || '');
  if (!m) return null;
  return { accessKeyId: m[1], date: m[2], region: m[3], service: m[4], signedHeaders: m[5].split(';'), signature: m[6] };
}

function amzDateToDate(text) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text || '');
  if (!m) return null;
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

async function expectedSignature(credentials, auth, req, url, body) {
  const headers = {};
  for (const name of auth.signedHeaders) {
    const value = req.headers[name];
    if (value === undefined) return { error: `signed header ${name} is missing` };
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      sessionToken: credentials.sessionToken || undefined,
    },
    region: auth.region,
    service: auth.service,
    sha256: Sha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
  const signed = await signer.sign({
    method: req.method,
    protocol: 'http:',
    hostname: headers.host,
    path: canonicalPath(url.pathname),
    query: parseQuery(url.search),
    headers,
    body,
  }, {
    signingDate: amzDateToDate(req.headers['x-amz-date']),
    signableHeaders: new Set(auth.signedHeaders),
  });
  // What AWS returns with SignatureDoesNotMatch, so a failing client can compare.
  const signable = { ...signed, headers: { ...signed.headers } };
  delete signable.headers.authorization;
  const canonicalRequest = signer.createCanonicalRequest(signable,
    getCanonicalHeaders(signable, undefined, new Set(auth.signedHeaders)), headers['x-amz-content-sha256']);
  return { signature: parseAuthorization(signed.headers.authorization).signature, canonicalRequest };
}

// Returns null when the request is authentic, else [status, code, message].
async function check(credentials, req, url, body) {
  const auth = parseAuthorization(req.headers.authorization);
  if (!auth) return [403, 'AccessDenied', 'Anonymous or malformed Authorization header'];
  if (auth.accessKeyId !== credentials.accessKeyId) {
    return [403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.'];
  }
  if (auth.service !== 's3') return [400, 'AuthorizationHeaderMalformed', `service must be s3, not ${auth.service}`];
  if (!auth.signedHeaders.includes('host')) return [400, 'AuthorizationHeaderMalformed', 'host is not signed'];
  if (!amzDateToDate(req.headers['x-amz-date'])) return [400, 'AccessDenied', 'x-amz-date is missing or malformed'];
  if (req.headers['x-amz-date'].slice(0, 8) !== auth.date) {
    return [403, 'SignatureDoesNotMatch', 'credential date does not match x-amz-date'];
  }
  const skew = Math.abs(Date.now() - amzDateToDate(req.headers['x-amz-date']).getTime());
  if (skew > 15 * 60 * 1000) {
    return [403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.'];
  }
  const declared = req.headers['x-amz-content-sha256'];
  if (!declared) return [400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256'];
  if (!auth.signedHeaders.includes('x-amz-content-sha256')) {
    return [400, 'AuthorizationHeaderMalformed', 'x-amz-content-sha256 is not signed'];
  }
  const expected = await expectedSignature(credentials, auth, req, url, body);
  if (expected.error) return [403, 'SignatureDoesNotMatch', expected.error];
  if (expected.signature !== auth.signature) {
    return [403, 'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      { CanonicalRequest: expected.canonicalRequest }];
  }
  const actual = crypto.createHash('sha256').update(body).digest('hex');
  if (declared !== actual) {
    return [400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed."];
  }
  const md5 = req.headers['content-md5'];
  if (md5 !== undefined && md5 !== crypto.createHash('md5').update(body).digest('base64')) {
    return [400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.'];
  }
  return null;
}

function createVerifyProxy({ upstreamPort, credentials }) {
  // verified_by_method: {"PUT": n, "HEAD": n, ...} of the verified requests.
  const stats = { verified: 0, verified_by_method: {}, rejected: 0, rejections: [] };
  const uploads = new Map();  // uploadId -> {bucket, key}

  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, 'http://127.0.0.1');
      const body = await readBody(req);
      if (url.pathname.startsWith('/_harness/')) {
        if (url.pathname === '/_harness/stats') return sendJson(res, 200, stats);
        if (url.pathname === '/_harness/reset' && req.method === 'POST') {
          Object.assign(stats, { verified: 0, verified_by_method: {}, rejected: 0, rejections: [] });
          return sendJson(res, 200, stats);
        }
        return sendJson(res, 404, { error: 'unknown control path' });
      }
      const problem = await check(credentials, req, url, body);
      if (problem) {
        stats.rejected += 1;
        stats.rejections.push({ method: req.method, url: req.url, code: problem[1], ...problem[3] });
        return sendS3Error(req, res, ...problem);
      }
      stats.verified += 1;
      stats.verified_by_method[req.method] = (stats.verified_by_method[req.method] || 0) + 1;

      const [, bucket, ...keyParts] = url.pathname.split('/').map(decodeURIComponent);
      const key = keyParts.join('/');
      const query = parseQuery(url.search);
      if (req.method === 'DELETE' && 'uploadId' in query) {
        if (!uploads.delete(query.uploadId)) {
          return sendS3Error(req, res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
        }
        res.writeHead(204);
        return res.end();
      }
      if (req.method === 'GET' && key === '' && 'uploads' in query) {
        let xml = '<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult>' +
          `<Bucket>${xmlEscape(bucket)}</Bucket>`;
        for (const [id, upload] of uploads) {
          if (upload.bucket !== bucket) continue;
          xml += `<Upload><Key>${xmlEscape(upload.key)}</Key><UploadId>${xmlEscape(id)}</UploadId></Upload>`;
        }
        xml += '</ListMultipartUploadsResult>';
        res.writeHead(200, { 'Content-Type': 'application/xml' });
        return res.end(xml);
      }

      const headers = { ...req.headers };
      delete headers.authorization;  // s3rver would look the test key up in its own registry
      const answer = await forward(upstreamPort, req.method, req.url, headers, body, { replaceHost: true });
      const text = answer.body.toString('utf8');
      if (answer.status === 200 && req.method === 'POST' && 'uploads' in query) {
        const id = /<UploadId>([^<]+)<\/UploadId>/.exec(text);
        if (id) uploads.set(id[1], { bucket, key });
      }
      if (answer.status === 200 && req.method === 'POST' && 'uploadId' in query && !text.includes('<Error>')) {
        uploads.delete(query.uploadId);
      }
      res.writeHead(answer.status, answer.headers);
      res.end(req.method === 'HEAD' ? undefined : answer.body);
    } catch (err) {
      sendS3Error(req, res, 500, 'InternalError', `verify proxy: ${err.message}`);
    }
  });
  return { server, listen: () => listen(server) };
}

module.exports = { createVerifyProxy, canonicalPath };
