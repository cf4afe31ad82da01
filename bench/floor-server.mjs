/**
 * The floor the check-in path is measured against: Fastify over HTTPS doing only what any MDM server must for a
 * signed check-in — read the body, parse the Mdm-Signature CMS, verify its RSA signature over the body, parse the
 * plist — and answer 200. No database, no identity lookup, no policy. Run as its own process by bench/mdm.ts:
 * `node bench/floor-server.mjs KEY.pem CERT.pem` prints its port on stdout. Plain JavaScript over the
 * compiled dist/ (built before the bench), as certmdm itself runs in production.
 */
import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
import { parseSignedData, verifySignedData } from '../dist/pki/cms.js';
import { parsePlistDict } from '../dist/plist/parse.js';

// With no key and certificate it listens over plain HTTP: the floor of SCEP's three requests per enrollment.
const [keyFile, certFile] = process.argv.slice(2);
const server = Fastify({ ...(keyFile ? { https: { key: readFileSync(keyFile), cert: readFileSync(certFile) } } : {}), logger: false });
server.removeAllContentTypeParsers();
server.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
const handle = async (request) => {
  const body = request.body;
  const signature = request.headers['mdm-signature'];
  verifySignedData(parseSignedData(Buffer.from(signature, 'base64')), body);
  const message = parsePlistDict(body);
  if (typeof message.UDID !== 'string') throw new Error('no UDID');
  return '';
};
for (const path of ['/mdm/checkin', '/mdm/server']) server.put(path, handle);
server.get('/healthz', async () => 'ok');
server.get('/scep', async () => 'POSTPKIOperation\nSHA-256\nAES\nSCEPStandard\n');
server.post('/scep', async (request) => request.body.subarray(0, 64));
await server.listen({ host: '127.0.0.1', port: 0 });
console.log(server.server.address().port);
process.on('SIGINT', () => void server.close().then(() => process.exit(0)));
