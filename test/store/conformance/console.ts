import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ConflictError, type ConsoleSessionRecord } from '../../../src/store/types.ts';
import { type WithStore } from './support.ts';

const at = new Date(Date.UTC(2026, 0, 1));
const minutes = (n: number) => new Date(at.getTime() + n * 60_000);
const account = (name: string) => ({
  name,
  passwordHash: `scrypt$hash-of-${name}`,
  createdAt: at,
  passwordChangedAt: at,
  lastLoginAt: null,
});
const session = (name: string, overrides: Partial<ConsoleSessionRecord> = {}): ConsoleSessionRecord => ({
  idHash: randomBytes(32),
  account: name,
  createdAt: at,
  lastUsedAt: at,
  expiresAt: minutes(12 * 60),
  ...overrides,
});

/** ConsoleStore: administrators and their sessions. */
export function consoleConformance(withStore: WithStore): void {
  withStore('administrators: unique names, password change ends their sessions only, deletion takes the sessions', async (store) => {
    await store.insertAdminAccount(account('alice'));
    await store.insertAdminAccount(account('bob'));
    await assert.rejects(store.insertAdminAccount(account('alice')), ConflictError);
    assert.deepEqual(await store.getAdminAccount('alice'), account('alice'));
    assert.equal(await store.getAdminAccount('carol'), undefined);
    assert.deepEqual(
      (await store.listAdminAccounts()).map((a) => a.name),
      ['alice', 'bob'],
    );
    await store.recordAdminLogin('alice', minutes(1));
    assert.deepEqual((await store.getAdminAccount('alice'))?.lastLoginAt, minutes(1));

    const [a1, a2, b1] = [session('alice'), session('alice'), session('bob')];
    for (const s of [a1, a2, b1]) await store.insertConsoleSession(s);
    assert.deepEqual(await store.getConsoleSession(a1.idHash), a1);
    assert.equal(await store.setAdminPassword('alice', 'scrypt$new', minutes(2)), true);
    assert.equal((await store.getAdminAccount('alice'))?.passwordHash, 'scrypt$new');
    assert.deepEqual((await store.getAdminAccount('alice'))?.passwordChangedAt, minutes(2));
    assert.equal(await store.getConsoleSession(a1.idHash), undefined, 'a new password ends the sessions');
    assert.equal(await store.getConsoleSession(a2.idHash), undefined);
    assert.deepEqual(await store.getConsoleSession(b1.idHash), b1, "another administrator's session stays");
    assert.equal(await store.setAdminPassword('carol', 'x', at), false);

    assert.equal(await store.deleteAdminAccount('bob'), true);
    assert.equal(await store.getConsoleSession(b1.idHash), undefined);
    assert.equal(await store.deleteAdminAccount('bob'), false);
  });

  withStore('console sessions: touched forward only, deleted once, stale ones swept', async (store) => {
    await store.insertAdminAccount(account('alice'));
    const s = session('alice');
    await store.insertConsoleSession(s);
    await store.touchConsoleSession(s.idHash, minutes(10));
    await store.touchConsoleSession(s.idHash, minutes(5));
    assert.deepEqual((await store.getConsoleSession(s.idHash))?.lastUsedAt, minutes(10));
    assert.equal(await store.deleteConsoleSession(s.idHash), true);
    assert.equal(await store.deleteConsoleSession(s.idHash), false);

    const fresh = session('alice', { lastUsedAt: minutes(50) });
    const idle = session('alice', { lastUsedAt: minutes(1) });
    const old = session('alice', { lastUsedAt: minutes(59), expiresAt: minutes(55) });
    for (const x of [fresh, idle, old]) await store.insertConsoleSession(x);
    assert.equal(await store.deleteStaleConsoleSessions(minutes(60), minutes(30)), 2);
    assert.deepEqual(await store.getConsoleSession(fresh.idHash), fresh);
  });

  withStore('audit log search: by action prefix, actor, target, outcome, and pages before an id', async (store) => {
    const events = [
      { actor: 'admin:alice', action: 'console.login', target: null, outcome: 'ok' },
      { actor: 'device:U1', action: 'mdm.request', target: 'U1', outcome: 'denied' },
      { actor: 'system', action: 'lifecycle.renewal-started', target: 'U1', outcome: 'ok' },
      { actor: 'system', action: 'lifecycle_x', target: 'U2', outcome: 'ok' },
      { actor: 'admin:alice', action: 'console.enroll-link', target: 'U2', outcome: 'ok' },
    ] as const;
    const ids: number[] = [];
    for (const [i, e] of events.entries()) ids.push(await store.appendAudit({ ...e, at: minutes(i) }));
    const actions = async (query: Parameters<typeof store.listAudit>[0]) => (await store.listAudit(query)).map((e) => e.action);
    assert.deepEqual(
      await actions({ actionPrefix: 'lifecycle.' }),
      ['lifecycle.renewal-started'],
      "a prefix's dot and underscore are literal",
    );
    assert.deepEqual(await actions({ actionPrefix: 'lifecycle_' }), ['lifecycle_x']);
    assert.deepEqual(await actions({ actor: 'admin:alice' }), ['console.enroll-link', 'console.login']);
    assert.deepEqual(await actions({ target: 'U1' }), ['lifecycle.renewal-started', 'mdm.request']);
    assert.deepEqual(await actions({ outcome: 'denied' }), ['mdm.request']);
    assert.deepEqual(await actions({ target: 'U1', outcome: 'ok' }), ['lifecycle.renewal-started']);
    assert.deepEqual(await actions({ beforeId: ids[2], limit: 1 }), ['mdm.request']);
    assert.equal((await store.listAudit({ limit: -5 })).length, 1, 'a negative limit is one row, never all');
  });
}
