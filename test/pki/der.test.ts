import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as der from '../../src/pki/der.ts';

/** BER constructed element with indefinite length. */
const indefinite = (tag: number, ...contents: Buffer[]) => Buffer.concat([Buffer.from([tag, 0x80]), ...contents, Buffer.from([0, 0])]);

/** `depth` nested indefinite SEQUENCEs around `leaves` small OCTET STRINGs: depth + leaves elements in all. */
function nested(depth: number, leaves: number): Buffer {
  let inner = Buffer.concat(Array.from({ length: leaves }, (_, i) => der.octets(Buffer.from([i & 0xff]))));
  for (let d = 0; d < depth; d++) inner = indefinite(der.TAG.SEQUENCE, inner);
  return inner;
}

/** Elements the reader reads while `fn` runs. */
function work(fn: () => unknown): number {
  const before = der.readerWork.elements;
  try {
    fn();
  } catch (err) {
    if (!(err instanceof der.DerError)) throw err;
  }
  return der.readerWork.elements - before;
}

describe('DER/BER reader', () => {
  test('reads each element exactly once, however deep the indefinite-length nesting (work counted, not timed)', () => {
    for (const [depth, leaves] of [
      [30, 1000],
      [30, 2000],
      [1, 2000],
    ] as const) {
      const input = nested(depth, leaves);
      let root: der.Node | undefined;
      const elements = work(() => (root = der.parse(input)));
      assert.equal(elements, depth + leaves, `depth ${depth}, ${leaves} leaves: one read per element`);
      // Walking the tree afterwards reads nothing again: children were read in the same pass.
      const walked = work(() => {
        let node = root!;
        for (let d = 1; d < depth; d++) node = der.children(node)[0]!;
        assert.equal(der.children(node).length, leaves);
      });
      assert.equal(walked, 0);
    }
  });

  test("the issue's bomb — nested indefinite constructed OCTET STRINGs — is refused after a handful of reads", () => {
    // 256 KiB of `24 80` pairs: before, each level re-scanned everything below it.
    const bomb = Buffer.concat([Buffer.alloc(256 * 1024, 0).fill(Buffer.from([0x24, 0x80])), Buffer.alloc(4, 0)]);
    let error: unknown;
    const elements = work(() => {
      try {
        der.parse(bomb);
      } catch (err) {
        error = err;
        throw err;
      }
    });
    assert.ok(error instanceof der.DerError);
    assert.ok(elements <= der.MAX_DEPTH + 2, `read ${elements} elements`);
  });

  test('nesting beyond MAX_DEPTH is refused, at MAX_DEPTH it is read', () => {
    assert.doesNotThrow(() => der.parse(nested(der.MAX_DEPTH, 1)));
    assert.throws(
      () => der.parse(nested(der.MAX_DEPTH + 1, 1)),
      (e) => e instanceof der.DerError && /nesting too deep/.test(e.message),
    );
  });

  test('the number of elements is bounded', () => {
    const many = der.seq(...Array.from({ length: der.MAX_ELEMENTS }, () => der.nullValue()));
    assert.throws(
      () => der.parse(many),
      (e) => e instanceof der.DerError && /too many ASN.1 elements/.test(e.message),
    );
    const fewer = der.seq(...Array.from({ length: der.MAX_ELEMENTS - 1 }, () => der.nullValue()));
    assert.equal(der.children(der.parse(fewer)).length, der.MAX_ELEMENTS - 1);
  });

  test('constructed strings hold primitive segments of their own type only (CER)', () => {
    const segmented = indefinite(0x24, der.octets(Buffer.from('ab')), der.octets(Buffer.from('cd')));
    assert.equal(der.readOctets(der.parse(segmented)).toString(), 'abcd');
    const definite = der.tlv(0x24, Buffer.concat([der.octets(Buffer.from('ab')), der.octets(Buffer.from('c'))]));
    assert.equal(der.readOctets(der.parse(definite)).toString(), 'abc');
    for (const [name, input] of [
      ['a constructed segment', indefinite(0x24, indefinite(0x24, der.octets(Buffer.from('x'))))],
      ['a segment of another type', indefinite(0x24, der.utf8('x'))],
      ['a constructed UTF8String segment', indefinite(0x2c, der.octets(Buffer.from('x')))],
    ] as const) {
      assert.throws(() => der.parse(input), der.DerError, name);
    }
    // IMPLICIT [0] OCTET STRING as CMS writes encryptedContent: the same rule at the point of use.
    assert.equal(der.implicitOctets(der.parse(indefinite(0xa0, der.octets(Buffer.from('z')))), 0x80, 'x').toString(), 'z');
    assert.throws(() => der.implicitOctets(der.parse(indefinite(0xa0, der.seq())), 0x80, 'x'), der.DerError);
  });

  test('lengths that overrun their parent, stray end-of-contents and truncation are DerErrors', () => {
    const cases: [string, Buffer][] = [
      ['child overruns a definite parent', Buffer.from([0x30, 0x03, 0x04, 0x05, 0x00, 0x00, 0x00, 0x00])],
      ['end-of-contents in a definite parent', Buffer.from([0x30, 0x02, 0x00, 0x00])],
      ['unterminated indefinite', Buffer.from([0x30, 0x80, 0x05, 0x00])],
      ['indefinite primitive', Buffer.from([0x04, 0x80, 0x00, 0x00])],
      ['five length bytes', Buffer.from([0x04, 0x85, 0, 0, 0, 0, 1, 0])],
      ['trailing bytes', Buffer.from([0x05, 0x00, 0x00])],
      ['empty', Buffer.alloc(0)],
    ];
    for (const [name, input] of cases) assert.throws(() => der.parse(input), der.DerError, name);
  });

  test('OIDs, integers and times are validated, not guessed', () => {
    const node = (tag: number, bytes: number[]) => der.parse(der.tlv(tag, Buffer.from(bytes)));
    assert.equal(der.readOid(der.parse(der.oid('1.2.840.113549.1.7.2'))), '1.2.840.113549.1.7.2');
    assert.throws(() => der.readOid(node(der.TAG.OID, [0x2a, 0x86])), /truncated/);
    assert.throws(() => der.readOid(node(der.TAG.OID, [0x2a, 0x80, 0x01])), /non-minimal/);
    assert.throws(() => der.readOid(node(der.TAG.OID, [0x2a, ...Array(8).fill(0xff), 0x01])), /too large/);
    assert.throws(() => der.readOid(undefined), der.DerError);
    assert.equal(der.readSmallInteger(der.parse(der.smallInteger(2048)), 600_000, 'n'), 2048);
    assert.throws(() => der.readSmallInteger(node(der.TAG.INTEGER, [0x80]), 10, 'n'), /negative/);
    assert.throws(() => der.readSmallInteger(der.parse(der.smallInteger(2 ** 40)), 600_000, 'n'), /above 600000/);
    assert.throws(() => der.readSmallInteger(node(der.TAG.INTEGER, []), 10, 'n'), /empty/);
    const utc = (s: string) => der.parse(der.tlv(der.TAG.UTC_TIME, Buffer.from(s)));
    assert.equal(der.readTime(utc('250102030405Z')).toISOString(), '2025-01-02T03:04:05.000Z');
    for (const bad of ['251302030405Z', '250230030405Z', '250102250405Z', '2501020304Z', '25010203040Z'])
      assert.throws(() => der.readTime(utc(bad)), der.DerError, bad);
    assert.throws(() => der.readTime(der.parse(der.smallInteger(1))), der.DerError);
    assert.throws(() => der.readTime(undefined), der.DerError);
  });
});
