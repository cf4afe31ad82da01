import * as der from '../../src/pki/der.ts';

/** A small seeded PRNG (mulberry32): the same seed gives the same mutants, on any machine. */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

/** Where each element's header starts in a valid seed: mutations aimed at tags and lengths hit structure. */
export function headerOffsets(input: Buffer): number[] {
  const out: number[] = [];
  const walk = (node: der.Node) => {
    out.push(node.raw.byteOffset - input.byteOffset);
    node.elements?.forEach(walk);
  };
  try {
    walk(der.parse(input));
  } catch {
    /* not ASN.1 (a plist): byte mutations only */
  }
  return out;
}

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff];
const TAGS = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x17, 0x18, 0x1f, 0x23, 0x24, 0x30, 0x31, 0x80, 0xa0, 0xa1, 0xa3];
const LENGTHS = [
  [0x00],
  [0x7f],
  [0x80],
  [0x81, 0x00],
  [0x81, 0xff],
  [0x82, 0xff, 0xff],
  [0x84, 0xff, 0xff, 0xff, 0xff],
  [0x85, 1, 0, 0, 0, 0],
];

/** Byte-level and ASN.1-aware mutations of a binary input. */
export function mutateBinary(seed: Buffer, headers: number[], rng: Rng): Buffer {
  let b: Buffer = Buffer.from(seed);
  const rounds = 1 + rng.int(3);
  for (let r = 0; r < rounds; r++) {
    const at = b.length ? rng.int(b.length) : 0;
    const header = headers.length && rng.next() < 0.5 ? Math.min(rng.pick(headers), Math.max(b.length - 1, 0)) : -1;
    switch (header >= 0 ? 6 + rng.int(4) : rng.int(6)) {
      case 0: // flip a bit
        if (b.length) b[at]! ^= 1 << rng.int(8);
        break;
      case 1: // an interesting byte
        if (b.length) b[at] = rng.pick(INTERESTING);
        break;
      case 2: // delete a range
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + rng.int(16))]);
        break;
      case 3: // insert random bytes
        b = Buffer.concat([b.subarray(0, at), Buffer.from(Array.from({ length: 1 + rng.int(8) }, () => rng.int(256))), b.subarray(at)]);
        break;
      case 4: {
        // duplicate a range elsewhere
        const from = rng.int(b.length || 1);
        const piece = b.subarray(from, from + 1 + rng.int(64));
        b = Buffer.concat([b.subarray(0, at), piece, b.subarray(at)]);
        break;
      }
      case 5: // truncate
        b = b.subarray(0, at);
        break;
      case 6: // another tag at an element header
        b[header] = rng.pick(TAGS);
        break;
      case 7: // flip the constructed bit
        b[header]! ^= 0x20;
        break;
      case 8: {
        // another length at an element header (the old length bytes replaced)
        const first = b[header + 1] ?? 0;
        const old = first & 0x80 && first !== 0x80 ? 1 + (first & 0x7f) : 1;
        const replacement = rng.next() < 0.3 ? [(first + (rng.next() < 0.5 ? 1 : 255)) & 0xff] : rng.pick(LENGTHS);
        b = Buffer.concat([b.subarray(0, header + 1), Buffer.from(replacement), b.subarray(header + 1 + old)]);
        break;
      }
      case 9: {
        // re-encode a definite constructed element as BER indefinite (a legal alternative encoding)
        try {
          const node = der.parse(b.subarray(header, header + nodeLength(b, header)));
          if (!node.constructed || node.indefinite) break;
          const inner = node.content;
          b = Buffer.concat([
            b.subarray(0, header),
            Buffer.from([node.tag, 0x80]),
            inner,
            Buffer.from([0, 0]),
            b.subarray(header + node.raw.length),
          ]);
        } catch {
          /* not an element any more */
        }
        break;
      }
    }
  }
  return b;
}

/** The length of the definite element at `at`, or 0 when its header does not say. */
function nodeLength(b: Buffer, at: number): number {
  const first = b[at + 1];
  if (first === undefined || first === 0x80) return 0;
  if (!(first & 0x80)) return 2 + first;
  const count = first & 0x7f;
  let length = 0;
  for (let i = 0; i < count; i++) length = length * 256 + (b[at + 2 + i] ?? 0);
  return 2 + count + length;
}

const PLIST_SNIPPETS = [
  '<',
  '>',
  '&',
  '&#xD800;',
  '&#0;',
  '&#x110000;',
  '&bogus;',
  '&amp',
  '<!--',
  '-->',
  '<![CDATA[x]]>',
  '<?xml?>',
  '\uFFFD',
  '<dict>',
  '</dict>',
  '<array>',
  '</array>',
  '<array/>',
  '<dict/>',
  '<key>__proto__</key>',
  '<key>constructor</key><string>x</string>',
  '<integer>99999999999999999999999</integer>',
  '<integer>-0</integer>',
  '<real>nan</real>',
  '<real>1e999</real>',
  '<date>2020-02-30T00:00:00Z</date>',
  '<data>!!</data>',
  '<data>QUJD=</data>',
  '<true>',
  '<string/>',
  '<array>'.repeat(40),
];
const PLIST_BYTES = [[0xc3, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0xff], [0xef, 0xbf, 0xbd]];

/** Text-aware mutations of an XML property list, plus the byte-level ones. */
export function mutatePlist(seed: Buffer, rng: Rng): Buffer {
  let b: Buffer = Buffer.from(seed);
  const rounds = 1 + rng.int(3);
  for (let r = 0; r < rounds; r++) {
    const at = rng.int(b.length + 1);
    const choice = rng.int(4);
    if (choice === 0) b = Buffer.concat([b.subarray(0, at), Buffer.from(rng.pick(PLIST_SNIPPETS)), b.subarray(at)]);
    else if (choice === 1) b = Buffer.concat([b.subarray(0, at), Buffer.from(rng.pick(PLIST_BYTES)), b.subarray(at)]);
    else if (choice === 2) {
      // swap one element name for another
      const text = b.toString('latin1');
      const tags = [...text.matchAll(/<\/?([a-z]+)/g)];
      if (tags.length) {
        const tag = rng.pick(tags);
        const name = rng.pick(['dict', 'array', 'key', 'string', 'integer', 'real', 'true', 'false', 'data', 'date', 'plist', 'x']);
        const start = tag.index! + tag[0].length - tag[1]!.length;
        b = Buffer.concat([b.subarray(0, start), Buffer.from(name), b.subarray(start + tag[1]!.length)]);
      }
    } else b = mutateBinary(b, [], rng);
  }
  return b;
}
