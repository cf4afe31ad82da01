import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expiryWarning } from '../../src/push/certificate.ts';
import type { CertificateRecord } from '../../src/store/types.ts';

test('push certificate expiry warnings step through 60/30/14/7/1 days and past expiry', () => {
  const now = new Date(Date.UTC(2026, 0, 1));
  const at = (days: number) => ({ notAfter: new Date(now.getTime() + days * 86_400_000) }) as CertificateRecord;
  assert.equal(expiryWarning(at(61), now), undefined);
  assert.equal(expiryWarning(at(60)!, now)?.days, 60);
  assert.equal(expiryWarning(at(45), now)?.days, 60);
  assert.equal(expiryWarning(at(30), now)?.days, 30);
  assert.equal(expiryWarning(at(10), now)?.days, 14);
  assert.equal(expiryWarning(at(7), now)?.days, 7);
  assert.equal(expiryWarning(at(0.5), now)?.days, 1);
  assert.match(expiryWarning(at(3), now)!.message, /expires in 3 day\(s\).*same Apple ID and topic/);
  assert.match(expiryWarning(at(-1), now)!.message, /expired on .*devices cannot be woken/);
});
