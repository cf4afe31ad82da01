import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { redacted } from '../../src/store/url.ts';
import { PostgresStore } from '../../src/store/postgres/index.ts';
import { startPostgres } from '../helpers/postgres.ts';
import { storeConformance } from './conformance/index.ts';

const cluster = await startPostgres();
after(() => cluster.stop());

storeConformance('postgres', async () => PostgresStore.open(await cluster.createDatabase()));

test('postgres: the lifecycle lease is held by one store at a time, and free again when its holder closes', async () => {
  const url = await cluster.createDatabase();
  const [one, two] = [PostgresStore.open(url), PostgresStore.open(url)];
  await one.migrate();
  assert.equal(await one.holdLease('lifecycle'), true);
  assert.equal(await one.holdLease('lifecycle'), true, 'the holder keeps it');
  assert.equal(await two.holdLease('lifecycle'), false, 'another instance does not get it');
  assert.equal(await two.holdLease('other'), true, 'leases are by name');
  await one.close();
  assert.equal(await two.holdLease('lifecycle'), true, 'free once the holder is gone');
  await two.close();
});

test('postgres: a connection string is never shown with its password', () => {
  for (const url of [
    'postgres://u:p@ss@db/x',
    'postgres://u@db/x?password=s3cret',
    'postgres://db/x?user=u&password=s3cret',
    'postgres://:s3cret@db/x',
  ]) {
    const shown = redacted(url);
    assert.ok(!/s3cret|p@ss|:p@/.test(shown), `${url} -> ${shown}`);
    assert.match(shown, /\*\*\*/);
  }
  assert.equal(redacted('postgres://certmdm@127.0.0.1:5432/certmdm'), 'postgres://certmdm@127.0.0.1:5432/certmdm');
});
