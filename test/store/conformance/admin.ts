import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type WithStore } from './support.ts';

/** AdminStore: API tokens and the audit log. */
export function adminConformance(withStore: WithStore): void {
  withStore('API tokens: lookup, touch, revoke once', async (store) => {
    const token = {
      id: randomBytes(8).toString('hex'),
      name: 'ops',
      secretHash: randomBytes(32),
      createdAt: new Date(Date.UTC(2026, 0, 1)),
      lastUsedAt: null,
      revokedAt: null,
    };
    await store.insertApiToken(token);
    assert.deepEqual(await store.getApiToken(token.id), token);
    const at = new Date(Date.UTC(2026, 0, 2));
    await store.touchApiToken(token.id, at);
    assert.deepEqual((await store.getApiToken(token.id))?.lastUsedAt, at);
    assert.equal(await store.revokeApiToken(token.id, at), true);
    assert.equal(await store.revokeApiToken(token.id, at), false);
    assert.deepEqual(
      (await store.listApiTokens()).map((t) => t.revokedAt),
      [at],
    );
  });
  withStore('audit log is append-only, newest first, filterable', async (store) => {
    await store.appendAudit({ at: new Date(1000), actor: 'cli', action: 'a', outcome: 'ok' });
    await store.appendAudit({
      at: new Date(2000),
      actor: 'ip:127.0.0.1',
      action: 'b',
      outcome: 'denied',
      reason: 'no token',
      detail: { n: 1 },
    });
    const all = await store.listAudit();
    assert.deepEqual(
      all.map((e) => e.action),
      ['b', 'a'],
    );
    assert.deepEqual(all[0]?.detail, { n: 1 });
    assert.equal(all[0]?.reason, 'no token');
    assert.deepEqual(
      (await store.listAudit({ action: 'a' })).map((e) => e.actor),
      ['cli'],
    );
    assert.equal((await store.listAudit({ limit: 1 })).length, 1);
  });
}
