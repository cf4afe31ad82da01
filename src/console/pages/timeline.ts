import { DAY_MS } from '../../clock.ts';
import { DEFAULT_POLICY } from '../../lifecycle/model.ts';
import { lastProbe } from '../../ops/probe.ts';
import { expiryBins, histogramSvg, timelineSvg, type TimelineRow } from '../charts.ts';
import { lifecycleView, type ConsoleDeps } from '../facts.ts';
import { day, html, raw, table, type Html } from '../html.ts';

/** Every server-side certificate on one axis (and a proxy's presented chain), then device identities by expiry. */
export async function timelinePage(deps: ConsoleDeps, now: Date): Promise<Html> {
  const { app } = deps;
  const view = await lifecycleView(app, now);
  const rows: TimelineRow[] = [];
  for (const c of view.schedule.server) {
    const record = await app.store.getCertificate(c.id);
    if (!record) continue;
    rows.push({
      role: c.role,
      subject: record.subject,
      notBefore: record.notBefore,
      notAfter: record.notAfter,
      planned: c.action ? { kind: c.action.kind, at: c.action.at } : null,
      foreign: false,
    });
  }
  const probe = await lastProbe(app.store);
  const presented = probe
    ? await Promise.all(probe.chain.map(async (p) => ({ p, ours: await app.store.getCertificateByFingerprint(p.fingerprintSha256) })))
    : [];
  for (const { p } of presented.filter((x) => !x.ours))
    rows.push({
      role: 'presented',
      subject: p.subject,
      notBefore: new Date(p.notBefore),
      notAfter: new Date(p.notAfter),
      planned: null,
      foreign: true,
    });
  const identities = view.state.devices.flatMap((d) => (d.identity ? [d.identity] : []));
  const horizon = new Date(now.getTime() + DEFAULT_POLICY.identityRenewAt * view.state.identityLifetime);
  const bins = expiryBins(
    identities.map((i) => i.notAfter),
    now,
    horizon,
  );
  return html` <p class="muted">
      Each bar is a certificate's validity; ◇ marks its planned replacement; the red line is
      today.${probe ? html` The chain presented at ${probe.url} was probed ${day(probe.at)}${presented.some((x) => !x.ours) ? '; certificates certmdm did not issue are grey' : ": every certificate in it is certmdm's"}.` : ' No probe of the public URL yet (certmdm probe).'}
    </p>
    <figure id="timeline">${raw(timelineSvg(rows, now))}</figure>
    ${table(
      ['Role', 'Subject', 'Not before', 'Not after', 'Planned replacement'],
      rows.map(
        (r) =>
          html`<tr>
            <td>${r.foreign ? "presented (not certmdm's)" : r.role}</td>
            <td>${r.subject}</td>
            <td>${day(r.notBefore)}</td>
            <td>${day(r.notAfter)}</td>
            <td>${r.planned ? `${r.planned.kind} ${day(r.planned.at)}` : '—'}</td>
          </tr>`,
      ),
    )}
    <h2>Device identities by expiry</h2>
    <p class="muted">
      ${identities.length} identities; shaded: expiring before ${day(horizon)}, so in their renewal window now
      (${Math.round(DEFAULT_POLICY.identityRenewAt * 100)}% of an identity's ${Math.round(view.state.identityLifetime / DAY_MS)} days).
    </p>
    <figure id="histogram">${raw(histogramSvg(bins, now, horizon))}</figure>`;
}
