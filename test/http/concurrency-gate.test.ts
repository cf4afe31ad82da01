import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConcurrencyGate, GateFullError } from '../../src/http/concurrency-gate.ts';

test('the gate hands a slot on through setImmediate: I/O queued during one heavy request runs before the next', async () => {
  const gate = new ConcurrencyGate(1, 4);
  const events: string[] = [];
  const first = gate.run(async () => {
    events.push('first');
    setImmediate(() => events.push('waiting I/O')); // stands for a /healthz that arrived meanwhile
  });
  const second = gate.run(async () => {
    events.push('second');
  });
  await Promise.all([first, second]);
  assert.deepEqual(events, ['first', 'waiting I/O', 'second']);
  assert.equal(gate.running, 0);
});

test('beyond the limit and the queue, a request is refused at once; the slots come back after failures too', async () => {
  const gate = new ConcurrencyGate(2, 1);
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const running = [gate.run(() => held), gate.run(() => held), gate.run(() => held)];
  assert.equal(gate.running, 2);
  assert.equal(gate.waiting, 1);
  await assert.rejects(
    gate.run(async () => 'never'),
    GateFullError,
  );
  release();
  await Promise.all(running);
  await assert.rejects(
    gate.run(async () => Promise.reject(new Error('work failed'))),
    /work failed/,
  );
  assert.equal(gate.running, 0);
  assert.equal(await gate.run(async () => 'served'), 'served');
});
