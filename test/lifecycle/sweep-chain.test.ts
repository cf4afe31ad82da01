import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSweepCase } from './sweep.ts';

// The CA side of the sweep: production ratios through a root rollover, identities a third of the intermediate, a
// short root. Each runs with the lifecycle engine and as a control run.

test('sweep: production ratios (quarter length) through an intermediate rollover and a root rollover', () =>
  runSweepCase({
    name: 'production',
    years: 2.6,
    lifetimes: {},
    expect: (r) => {
      assert.ok(r.byKind.intermediate.renewals >= 1, 'the intermediate rolled over');
      assert.equal(r.byKind.root.renewals, 1, 'the TLS chain moved to the successor root');
      assert.ok(r.reissued['scep-ra'] >= 3, 'the SCEP RA was re-issued by its own rule');
    },
  }));

test('sweep: identities a third of the intermediate', () =>
  runSweepCase({
    name: 'identity a third of the intermediate',
    years: 1.5,
    lifetimes: { identityDays: 120, intermediateDays: 360, rootDays: 1440 },
    expect: (r) => assert.ok(r.byKind.intermediate.renewals >= 2, `intermediate rollovers: ${r.byKind.intermediate.renewals}`),
  }));

test('sweep: a short root', () =>
  runSweepCase({
    name: 'short root',
    years: 1.6,
    lifetimes: { identityDays: 90, intermediateDays: 200, rootDays: 420 },
    expect: (r) => assert.ok(r.byKind.root.renewals >= 1, `root rollovers: ${r.byKind.root.renewals}`),
  }));
