import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/cli.ts';
import { plistBody } from '../helpers/device.ts';
import { openssl, signCsr } from '../helpers/openssl.ts';
import { envelope, makeCsr, newRequester, pkiMessage, type Requester } from '../helpers/scep.ts';

/**
 * Valid inputs for the fuzz test, made at test time by the real tools: openssl (certificates, CSR, CMS SignedData in
 * DER and in Apple's BER form, EnvelopedData, PKCS#12) and Python's plistlib (MDM messages). The PKIMessage's outer
 * SignedData is assembled by the test helper around openssl's CSR and EnvelopedData, as the SCEP tests do.
 */
export interface Corpus {
  dir: string;
  caPem: string;
  caKey: KeyObject;
  caDer: Buffer;
  /** A leaf certificate signed by the CA (openssl x509 -req). */
  leafDer: Buffer;
  leafPem: string;
  leafKey: KeyObject;
  leafKeyPem: string;
  ecSelfSigned: Buffer;
  csr: Buffer;
  /** SignedData with the content each verifies against (attached: undefined). */
  signed: { der: Buffer; detached?: Buffer; name: string }[];
  enveloped: Buffer[];
  pkcs12: { der: Buffer; password: string }[];
  plists: Buffer[];
  requester: Requester;
}

const der = (path: string) => readFileSync(path);
const pemToDer = (pem: string) => Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');

export function buildCorpus(): Corpus {
  const dir = tempDir('fuzz-corpus-');
  const p = (name: string) => join(dir, name);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-subj', '/O=Fuzz/CN=Fuzz CA', '-days', '30',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']); // prettier-ignore
  openssl([
    'req',
    '-new',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    p('leaf.key'),
    '-out',
    p('leaf.csr'),
    '-subj',
    '/O=Fuzz/CN=device 1',
  ]);
  writeFileSync(
    p('leaf.ext'),
    'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:device.example,email:a@example.com\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n',
  );
  signCsr({
    csr: p('leaf.csr'),
    caCert: p('ca.pem'),
    caKey: p('ca.key'),
    serial: 4242,
    days: 30,
    out: p('leaf.pem'),
    extfile: p('leaf.ext'),
  });
  openssl(['x509', '-in', p('leaf.pem'), '-outform', 'DER', '-out', p('leaf.der')]);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', p('ec.key'), '-out', p('ec.pem'),
    '-subj', '/CN=EC/UID=com.apple.mgmt.fuzz', '-days', '2', '-outform', 'DER']); // prettier-ignore

  const requester = newRequester();
  const csr = makeCsr(requester, {
    cn: 'fuzz device',
    challenge: 'a'.repeat(56),
    addext: [
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=clientAuth',
      'subjectAltName=DNS:x.example,URI:https://x.example/',
    ],
  });

  const body = plistBody({ MessageType: 'Authenticate', UDID: 'FUZZ-UDID', Topic: 'com.apple.mgmt.fuzz', DeviceName: 'caf\u00e9 \uFFFD' });
  writeFileSync(p('body'), body);
  const sign = (name: string, args: string[]) => {
    openssl([
      'cms',
      '-sign',
      '-binary',
      '-outform',
      'DER',
      '-signer',
      p('leaf.pem'),
      '-inkey',
      p('leaf.key'),
      '-in',
      p('body'),
      '-out',
      p(name),
      ...args,
    ]);
    return der(p(name));
  };
  const signed = [
    { name: 'attached DER with attributes', der: sign('attached.der', ['-nodetach', '-md', 'sha256']) },
    { name: "Apple's BER form", der: sign('apple.der', ['-noattr', '-md', 'sha1', '-stream']), detached: body },
    { name: 'detached DER with attributes', der: sign('detached.der', ['-md', 'sha256']), detached: body },
  ];

  const encrypt = (name: string, args: string[]) => {
    openssl(['cms', '-encrypt', '-binary', '-outform', 'DER', '-in', p('leaf.csr'), '-out', p(name), ...args, p('leaf.pem')]);
    return der(p(name));
  };
  const enveloped = [encrypt('env-aes.der', ['-aes128']), encrypt('env-des3-stream.der', ['-des3', '-stream'])];

  const p12 = (name: string, args: string[]) => {
    openssl([
      'pkcs12',
      '-export',
      '-in',
      p('leaf.pem'),
      '-inkey',
      p('leaf.key'),
      '-certfile',
      p('ca.pem'),
      '-passout',
      'pass:fuzz',
      '-out',
      p(name),
      ...args,
    ]);
    return { der: der(p(name)), password: 'fuzz' };
  };
  const pkcs12 = [p12('modern.p12', []), p12('legacy.p12', ['-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1'])];

  const plists = [
    body,
    plistBody({
      Status: 'Acknowledged',
      UDID: 'FUZZ-UDID',
      CommandUUID: 'c-1',
      QueryResponses: {
        DeviceName: '<&> \uFFFD',
        Battery: 0.5,
        Ok: true,
        No: false,
        Count: -12,
        Blob: { $data: 'AAEC' },
        List: [1, 'two', [3]],
      },
    }),
    plistBody({
      MessageType: 'TokenUpdate',
      UDID: 'FUZZ-UDID',
      Token: { $data: Buffer.alloc(32, 7).toString('base64') },
      PushMagic: 'magic',
    }),
  ];

  return {
    dir,
    caPem: p('ca.pem'),
    caKey: createPrivateKey(readFileSync(p('ca.key'))),
    caDer: pemToDer(readFileSync(p('ca.pem'), 'utf8')),
    leafDer: der(p('leaf.der')),
    leafPem: p('leaf.pem'),
    leafKey: createPrivateKey(readFileSync(p('leaf.key'))),
    leafKeyPem: p('leaf.key'),
    ecSelfSigned: der(p('ec.pem')),
    csr,
    signed,
    enveloped,
    pkcs12,
    plists,
    requester,
  };
}

/** A PKIMessage for `raPem` around openssl's CSR and EnvelopedData. */
export function pkiMessageSeed(corpus: Corpus, raPem: string, challenge: string): Buffer {
  const csr = makeCsr(corpus.requester, { cn: 'fuzz device', challenge, addext: ['keyUsage=critical,digitalSignature,keyEncipherment'] });
  return pkiMessage(corpus.requester, envelope(csr, raPem));
}
