'use strict';
// The webhook receiver of PayIn's guide (its "签名验证" section) on node's own http module, as Express 4
// with express.json() would run it: parse the body, re-serialise it with JSON.stringify, HMAC-SHA256
// that with the secret, compare hex digests with crypto.timingSafeEqual.
//
//   PAYIN_WEBHOOK_SECRET=… node seed_receiver.js [port] [secret]
//
// Listens on 127.0.0.1 (port 0: any free one) and prints the port on stdout once listening.
const crypto = require('crypto');
const http = require('http');

const port = Number(process.argv[2] ?? 0);
const secret = process.argv[3] ?? process.env.PAYIN_WEBHOOK_SECRET;
const BODY_LIMIT = 100 * 1024; // express.json()'s default "100kb"

if (!secret) {
  process.stderr.write('no secret: set PAYIN_WEBHOOK_SECRET or pass it after the port\n');
  process.exit(2);
}

function respond(res, status, payload) {
  const text = JSON.stringify(payload);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

// What express.json() leaves in req.body: {} unless the request says it is JSON; a body that does
// not start with { or [ (its strict mode) or does not parse is a 400.
function parseBody(req, raw) {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) return {};
  const text = raw.toString('utf8');
  if (!/^[\x20\x09\x0a\x0d]*[{[]/.test(text)) throw new SyntaxError('strict: object or array only');
  return JSON.parse(text);
}

function handle(req, res, raw) {
  let body;
  try {
    body = parseBody(req, raw);
  } catch {
    return respond(res, 400, { error: 'Invalid JSON' });
  }
  // Steps 1-3 of PayIn's guide, verbatim but for the length guard: timingSafeEqual throws on unequal lengths,
  // and a missing header would make Buffer.from throw too.
  const signature = req.headers['x-payin-signature'];
  const payload = JSON.stringify(body);
  const hmac = crypto.createHmac('sha256', secret);
  hmac.update(payload);
  const expectedSignature = hmac.digest('hex');
  const given = Buffer.from(typeof signature === 'string' ? signature : '');
  const expected = Buffer.from(expectedSignature);
  const isValid = given.length === expected.length && crypto.timingSafeEqual(given, expected);
  if (!isValid) return respond(res, 401, { error: 'Invalid signature' });
  respond(res, 200, { received: true });
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') return respond(res, 405, { error: 'Method not allowed' });
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size <= BODY_LIMIT) chunks.push(chunk);
  });
  req.on('end', () => {
    if (size > BODY_LIMIT) return respond(res, 413, { error: 'Payload too large' });
    handle(req, res, Buffer.concat(chunks));
  });
});
// A test client keeps its connection open between examples; node's 5 s default would race it.
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${server.address().port}\n`);
});
