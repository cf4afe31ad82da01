import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runSweepCase } from './sweep.ts';

// The leaf side of the sweep: a short TLS certificate, a short RA and profile signer, and ServerURL pinning through a
// root rollover. Each runs with the lifecycle engine and as a control run.

test('sweep: a short TLS certificate', () =>
  runSweepCase({
    name: 'short TLS',
    years: 1,
    lifetimes: { tlsDays: 20, tlsRenewBeforeDays: 2 },
    expect: (r) => assert.ok(r.byKind.tls.renewals >= 15, `TLS re-issues: ${r.byKind.tls.renewals}`),
  }));

test('sweep: a short SCEP RA and profile-signing certificate', () =>
  runSweepCase({
    name: 'short RA',
    years: 1,
    lifetimes: { signingDays: 30 },
    expect: (r) => {
      assert.ok(r.reissued['scep-ra'] >= 10, `RA re-issues: ${r.reissued['scep-ra']}`);
      assert.ok(r.reissued['profile-signing'] >= 10, `profile-signing re-issues: ${r.reissued['profile-signing']}`);
    },
  }));

test('sweep: ServerURL pinning through a root rollover', () =>
  runSweepCase({
    name: 'pinning',
    years: 2.6,
    lifetimes: {},
    pinning: true,
    expect: (r) => {
      assert.equal(r.pinning, true);
      assert.equal(r.byKind.root.renewals, 1, 'the TLS chain moved to the successor root');
    },
  }));
