import { DAY_MS } from '../../clock.ts';
import { DEVICE_STATES } from '../../ops/metrics.ts';
import { commonName, daysLeft, lifecycleView, SERVER_ROLES, type ConsoleDeps } from '../facts.ts';
import { day, html, table, type Html } from '../html.ts';
import { effectiveStatus } from '../../pki/inventory.ts';

const STATE_LABELS: Record<string, string> = {
  current: 'Current',
  renewing: 'Renewing',
  at_risk: 'At risk',
  rescued: 'Rescued',
  lost: 'Lost',
};
const STATE_TONE: Record<string, string> = { current: 'ok', renewing: '', at_risk: 'bad', rescued: 'warn', lost: 'bad' };

/** Overview: tiles an administrator reads in five seconds. */
export async function overviewPage(deps: ConsoleDeps, now: Date): Promise<Html> {
  const { app } = deps;
  const view = await lifecycleView(app, now);
  const certificates = await app.store.listCertificates();
  const push = view.state.push;
  const pushDays = push ? daysLeft(push.notAfter, now) : null;
  const roles = [...SERVER_ROLES, 'device-identity'] as const;
  const statuses = ['active', 'superseded', 'expired', 'revoked'] as const;
  const byRole = roles.map((role) => {
    const counts = Object.fromEntries(statuses.map((s) => [s, 0])) as Record<(typeof statuses)[number], number>;
    for (const c of certificates) if (c.role === role) counts[effectiveStatus(c, now)]++;
    return { role, counts };
  });
  const nextExpiries = view.schedule.server.filter((c) => c.notAfter > now).slice(0, 6);
  const nextActions = view.schedule.server
    .filter((c) => c.action)
    .sort((a, b) => a.action!.at.getTime() - b.action!.at.getTime())
    .slice(0, 6);
  const renewalsSoon = view.schedule.identities.filter((i) => i.action && i.action.at.getTime() <= now.getTime() + 30 * DAY_MS).length;
  return html` <section class="tiles" id="device-states">
      ${DEVICE_STATES.map(
        (s) =>
          html`<div class="tile ${view.counts[s] > 0 ? STATE_TONE[s] : ''}" data-state="${s}" data-count="${view.counts[s]}">
            <div class="value">${view.counts[s]}</div>
            <div class="label">devices ${STATE_LABELS[s]}</div>
          </div>`,
      )}
      <div
        class="tile ${pushDays === null ? 'warn' : pushDays < 7 ? 'bad' : pushDays < 30 ? 'warn' : 'ok'}"
        id="push-days"
        data-days="${pushDays ?? ''}"
      >
        <div class="value">${pushDays === null ? 'none' : `${pushDays} d`}</div>
        <div class="label">push certificate ${push ? html`expires ${day(push.notAfter)}` : 'not installed'}</div>
      </div>
      <div class="tile" data-count="${renewalsSoon}">
        <div class="value">${renewalsSoon}</div>
        <div class="label">identity renewals in the next 30 days</div>
      </div>
    </section>
    <h2>Next expiries</h2>
    ${table(
      ['Role', 'Certificate', 'Expires', 'Days left', 'What certmdm does'],
      nextExpiries.map(
        (c) =>
          html`<tr>
            <td>${c.role}</td>
            <td><a href="/console/certificates/${c.id}">${c.id.slice(0, 16)}</a></td>
            <td>${day(c.notAfter)}</td>
            <td>${daysLeft(c.notAfter, now)}</td>
            <td>${c.action ? `${c.action.kind} ${c.action.dueNow ? 'now' : `on ${day(c.action.at)}`}` : c.note}</td>
          </tr>`,
      ),
    )}
    <h2>Next lifecycle actions</h2>
    ${table(
      ['When', 'Action', 'Certificate'],
      nextActions.map(
        (c) =>
          html`<tr>
            <td>${c.action!.dueNow ? 'now' : day(c.action!.at)}</td>
            <td>${c.action!.kind}</td>
            <td>${c.role} · expires ${day(c.notAfter)}</td>
          </tr>`,
      ),
    )}
    <h2>Certificates by role and status</h2>
    ${table(
      ['Role', ...statuses],
      byRole.map(
        (r) =>
          html`<tr data-role="${r.role}">
            <td><a href="/console/certificates?role=${r.role}">${r.role}</a></td>
            ${statuses.map((s) => html`<td data-status="${s}">${r.counts[s]}</td>`)}
          </tr>`,
      ),
    )}
    <p class="muted">
      ${certificates.length} certificates in the inventory · TLS ${commonName(deps.pki.tls.certificate.subject)} · as of ${day(now)}
    </p>`;
}
