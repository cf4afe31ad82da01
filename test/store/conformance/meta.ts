import assert from 'node:assert/strict';
import { type WithStore } from './support.ts';

/** MetaStore: schema migrations and settings. */
export function metaConformance(withStore: WithStore): void {
  withStore('migrations are numbered and idempotent', async (store) => {
    const version = await store.schemaVersion();
    assert.ok(version >= 1);
    await store.migrate();
    assert.equal(await store.schemaVersion(), version);
  });
  withStore('meta values are set once', async (store) => {
    assert.equal(await store.getMeta('k'), undefined);
    assert.equal(await store.setMetaIfAbsent('k', 'v1'), true);
    assert.equal(await store.setMetaIfAbsent('k', 'v2'), false);
    assert.equal(await store.getMeta('k'), 'v1');
  });
  withStore('meta: set replaces, set-if-absent does not', async (store) => {
    assert.equal(await store.setMetaIfAbsent('k', 'a'), true);
    assert.equal(await store.setMetaIfAbsent('k', 'b'), false);
    await store.setMeta('k', 'c');
    assert.equal(await store.getMeta('k'), 'c');
  });

  withStore('the lifecycle lease: the first holder keeps it', async (store) => {
    assert.equal(await store.holdLease('lifecycle'), true);
    assert.equal(await store.holdLease('lifecycle'), true);
  });
}
