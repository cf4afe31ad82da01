import assert from 'node:assert/strict';
import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as cms from '../../src/pki/cms.ts';
import * as der from '../../src/pki/der.ts';
import { OID, type DigestName } from '../../src/pki/oids.ts';
import { toPem } from '../../src/pki/certificate.ts';
import { run, tempDir } from './cli.ts';

/**
 * A SCEP requester for crafted (and deliberately broken) requests. Keys, CSRs, self-signed signer certificates and
 * the EnvelopedData come from openssl, so the server's decryption and parsing are exercised on bytes it did not
 * make; only the outer SignedData with SCEP's attributes is assembled here.
 */
export interface Requester {
  dir: string;
  keyPem: string;
  key: KeyObject;
  /** Self-signed certificate for the requester's key (DER), as SCEP clients make. */
  selfSigned: Buffer;
  selfSignedPem: string;
}

function openssl(args: string[], input?: Buffer | string): Buffer {
  const r = run('openssl', args, { input: input as string | undefined });
  assert.equal(r.status, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
  return Buffer.from(r.stdout, 'latin1');
}

export function newRequester(): Requester {
  const dir = tempDir('scep-requester-');
  const keyPem = join(dir, 'key.pem');
  openssl(['genrsa', '-out', keyPem, '2048']);
  const selfSignedPem = join(dir, 'self.pem');
  openssl(['req', '-new', '-x509', '-key', keyPem, '-subj', '/CN=SCEP requester', '-days', '2', '-out', selfSignedPem]);
  const selfSigned = Buffer.from(readFileSync(selfSignedPem, 'utf8').replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
  return { dir, keyPem, key: createPrivateKey(readFileSync(keyPem)), selfSigned, selfSignedPem };
}

/** A PKCS#10 request made by openssl, with an optional challenge and extra extensions (openssl -addext syntax). */
export function makeCsr(
  requester: Requester,
  options: { cn?: string; challenge?: string; addext?: string[]; keyPem?: string } = {},
): Buffer {
  const config = join(requester.dir, `req-${randomBytes(4).toString('hex')}.cnf`);
  writeFileSync(
    config,
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      ...(options.challenge ? ['attributes = attrs'] : []),
      '[dn]',
      `CN = ${options.cn ?? 'device'}`,
      'O = Example',
      ...(options.challenge ? ['[attrs]', `challengePassword = ${options.challenge}`] : []),
      '',
    ].join('\n'),
  );
  const args = ['req', '-new', '-key', options.keyPem ?? requester.keyPem, '-config', config, '-outform', 'DER'];
  for (const ext of options.addext ?? []) args.push('-addext', ext);
  const out = join(requester.dir, `csr-${randomBytes(4).toString('hex')}.der`);
  openssl([...args, '-out', out]);
  return readFileSync(out);
}

export type EnvelopeCipher = 'aes128' | 'aes256' | 'des3';

/** pkcsPKIEnvelope: openssl's CMS EnvelopedData of `content` for the RA certificate. */
export function envelope(content: Buffer, raPem: string, cipher: EnvelopeCipher = 'aes128'): Buffer {
  const dir = tempDir('scep-envelope-');
  writeFileSync(join(dir, 'in.der'), content);
  openssl(['cms', '-encrypt', '-binary', '-outform', 'DER', `-${cipher}`, '-in', join(dir, 'in.der'), '-out', join(dir, 'out.der'), raPem]);
  return readFileSync(join(dir, 'out.der'));
}

export interface PkiMessageOptions {
  messageType?: string;
  transactionId?: string;
  senderNonce?: Buffer;
  digest?: DigestName;
  signingTime?: Date;
  signerCertificate?: Buffer;
  signerKey?: KeyObject;
}

export function pkiMessage(requester: Requester, envelopeDer: Buffer, options: PkiMessageOptions = {}): Buffer {
  const attributes = [
    cms.encodeAttribute(OID.scepMessageType, der.printable(options.messageType ?? '19')),
    cms.encodeAttribute(OID.scepTransactionId, der.printable(options.transactionId ?? randomBytes(8).toString('hex'))),
    cms.encodeAttribute(OID.scepSenderNonce, der.octets(options.senderNonce ?? randomBytes(16))),
    ...(options.signingTime ? [cms.encodeAttribute(OID.signingTime, der.time(options.signingTime))] : []),
  ];
  const signerCertificate = options.signerCertificate ?? requester.selfSigned;
  return cms.buildSignedData({
    content: envelopeDer,
    signerCertificate,
    signerKey: options.signerKey ?? requester.key,
    digest: options.digest ?? 'sha256',
    certificates: [signerCertificate],
    attributes,
  });
}

export interface CertRep {
  status: string;
  failInfo?: string;
  transactionId: string;
  recipientNonce: Buffer;
  /** Issued certificates, decrypted by openssl with the requester's key. */
  certificates: string;
}

/** Reads a CertRep: openssl verifies its signature against the root, the SCEP attributes are read here. */
/** `at`: the time to verify at (a time-travelling test server's clock). */
export function readCertRep(body: Buffer, requester: Requester, rootPem: string, at?: Date): CertRep {
  const dir = tempDir('certrep-');
  writeFileSync(join(dir, 'rep.der'), body);
  writeFileSync(join(dir, 'empty'), '');
  const signed = cms.parseSignedData(body);
  // A FAILURE carries no content; its messageDigest is over the empty string.
  const detached = signed.content ? [] : ['-content', join(dir, 'empty')];
  const verified = run('openssl', [
    'cms',
    '-verify',
    '-inform',
    'DER',
    '-in',
    join(dir, 'rep.der'),
    ...detached,
    ...(at ? ['-attime', String(Math.floor(at.getTime() / 1000))] : []),
    '-CAfile',
    rootPem,
    '-purpose',
    'any',
    '-out',
    join(dir, 'content.der'),
    '-binary',
  ]);
  assert.equal(verified.status, 0, `openssl cms -verify of the CertRep: ${verified.stderr}`);
  const signer = signed.signers[0]!;
  const text = (oid: string) => {
    const node = cms.attribute(signer, oid);
    return node ? der.readString(node) : undefined;
  };
  const status = text(OID.scepPkiStatus) ?? '';
  let certificates = '';
  if (status === '0') {
    const decrypted = run('openssl', [
      'cms',
      '-decrypt',
      '-inform',
      'DER',
      '-in',
      join(dir, 'content.der'),
      '-recip',
      requester.selfSignedPem,
      '-inkey',
      requester.keyPem,
      '-out',
      join(dir, 'certs.p7'),
      '-binary',
    ]);
    assert.equal(decrypted.status, 0, `openssl cms -decrypt: ${decrypted.stderr}`);
    certificates = run('openssl', ['pkcs7', '-inform', 'DER', '-in', join(dir, 'certs.p7'), '-print_certs']).stdout;
  }
  return {
    status,
    failInfo: text(OID.scepFailInfo),
    transactionId: text(OID.scepTransactionId) ?? '',
    recipientNonce: der.readOctets(cms.attribute(signer, OID.scepRecipientNonce)!),
    certificates,
  };
}

export { toPem };
