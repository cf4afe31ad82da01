import { DAY_MS } from '../../clock.ts';
import { identityStanding } from '../../mdm/rescue-policy.ts';
import { deviceChannel, type EnrollmentRecord, type QueueEntry } from '../../store/types.ts';
import { formatGap } from '../../lifecycle/forecast.ts';
import { commonName, daysLeft, lifecycleView, type ConsoleDeps } from '../facts.ts';
import { csrfField, day, html, table, when, type Html, type PageContext } from '../html.ts';

const deviceName = (e: EnrollmentRecord) => e.info.DeviceName ?? '';

/** What was tried for a device's renewal: attempts, the renewal command's last status, NotNow or an error. */
async function tried(deps: ConsoleDeps, e: EnrollmentRecord): Promise<{ text: string; entry: QueueEntry | undefined }> {
  if (!e.renewalStartedAt) return { text: 'no renewal in flight', entry: undefined };
  const entry = e.renewalCommandUuid
    ? (await deps.app.store.listQueue(deviceChannel(e.id))).find((q) => q.commandUuid === e.renewalCommandUuid)
    : undefined;
  const status = entry
    ? `renewal profile ${entry.status}${entry.status === 'not-now' ? ' (the device said NotNow)' : ''} ${day(entry.updatedAt)}`
    : 'renewal profile gone';
  return { text: `${e.renewalAttempts} attempt(s) since ${day(e.renewalStartedAt)}; ${status}`, entry };
}

/** The per-device actions an administrator has for a device in trouble; each goes through a confirmation. */
export const deviceActions = (ctx: PageContext, id: string): Html =>
  html` <form method="post" action="/console/devices/${encodeURIComponent(id)}/push" class="inline">
      ${csrfField(ctx)}<button type="submit" class="secondary">Push again</button>
    </form>
    <form method="post" action="/console/devices/${encodeURIComponent(id)}/renew" class="inline">
      ${csrfField(ctx)}<button type="submit" class="secondary">Send a fresh renewal</button>
    </form>
    <form method="post" action="/console/actions/enrollment-link" class="inline">
      ${csrfField(ctx)}<input type="hidden" name="device" value="${id}" /><input type="hidden" name="identity" value="scep" /><button
        type="submit"
        class="secondary"
      >
        Re-enrollment link
      </button>
    </form>`;

/** Devices the planner names at risk, and those rescued (identity expired within the grace), soonest loss first. */
export async function atRiskPage(deps: ConsoleDeps, ctx: PageContext): Promise<Html> {
  const { app } = deps;
  const view = await lifecycleView(app, ctx.now);
  const rows: { id: string; certificate: string; lostAt: Date; reason: string }[] = [];
  for (const a of view.actions)
    if (a.kind === 'device-at-risk')
      rows.push({
        id: a.deviceId,
        certificate: a.dependency === 'root' ? 'root (successor not installed)' : 'identity',
        lostAt: a.deadline,
        reason: a.reason,
      });
  const grace = view.state.rescueGrace ?? 0;
  for (const d of view.state.devices)
    if (d.identity && identityStanding(d.identity.notAfter, ctx.now, grace) === 'rescued' && !rows.some((r) => r.id === d.id))
      rows.push({
        id: d.id,
        certificate: 'identity (expired: rescued)',
        lostAt: new Date(d.identity.notAfter.getTime() + grace),
        reason: `identity expired ${day(d.identity.notAfter)}; its renewal profile is still served until the rescue grace ends`,
      });
  rows.sort((a, b) => a.lostAt.getTime() - b.lostAt.getTime());
  const rendered = await Promise.all(
    rows.map(async (r) => {
      const e = await app.store.getEnrollment(r.id);
      const t = e ? await tried(deps, e) : { text: 'unknown enrollment' };
      return html`<tr class="at-risk" data-device="${r.id}" data-lost-at="${r.lostAt.toISOString()}">
        <td>
          <a href="/console/devices/${encodeURIComponent(r.id)}">${r.id}</a><br /><span class="muted">${e ? deviceName(e) : ''}</span>
        </td>
        <td>${r.certificate}</td>
        <td class="bad">${day(r.lostAt)}<br /><span class="muted">${daysLeft(r.lostAt, ctx.now)} days</span></td>
        <td>${e ? when(e.lastSeenAt) : '—'}</td>
        <td>${t.text}<br /><span class="muted">${r.reason}</span></td>
        <td>${deviceActions(ctx, r.id)}</td>
      </tr>`;
    }),
  );
  return html`<p class="muted">
      ${rows.length} device(s). A device is at risk when its renewal has not completed in time, or it lacks a root the TLS chain is moving
      to; rescued devices' identities have expired but are still renewable.
    </p>
    ${table(['Device', 'Certificate', 'Lost on', 'Last check-in', 'What was tried', 'Actions'], rendered)}`;
}

/** Devices, searchable by UDID, serial number or name. */
export async function devicesPage(deps: ConsoleDeps, ctx: PageContext, q: string): Promise<Html> {
  const { app } = deps;
  const needle = q.trim().toLowerCase();
  const all = await app.store.listEnrollments();
  const found = all.filter(
    (e) => !needle || [e.id, e.info.SerialNumber ?? '', e.info.DeviceName ?? ''].some((v) => v.toLowerCase().includes(needle)),
  );
  const shown = found.slice(0, 500);
  const rows = await Promise.all(
    shown.map(async (e) => {
      const identity = e.identityCertificateId ? await app.store.getCertificate(e.identityCertificateId) : undefined;
      return html`<tr class="device" data-device="${e.id}">
        <td><a href="/console/devices/${encodeURIComponent(e.id)}">${e.id}</a></td>
        <td>${deviceName(e)}</td>
        <td>${e.info.SerialNumber ?? ''}</td>
        <td>${e.kind}</td>
        <td>${e.status}</td>
        <td>${identity ? `${day(identity.notAfter)} (${daysLeft(identity.notAfter, ctx.now)} d)` : '—'}</td>
        <td>${when(e.lastSeenAt)}</td>
      </tr>`;
    }),
  );
  return html`<form method="get" action="/console/devices" class="filters">
      <label>UDID, serial number or name <input type="search" name="q" value="${q}" /></label><button type="submit">Search</button>
    </form>
    <p class="muted">
      ${found.length} of ${all.length} device(s)${found.length > shown.length ? `; the first ${shown.length} shown` : ''}.
    </p>
    ${table(['UDID / EnrollmentID', 'Name', 'Serial', 'Kind', 'Status', 'Identity expires', 'Last check-in'], rows)}`;
}

/** Actions that tell a device's binding story: enrollments, renewals, rescues, refused takeovers. */
const BINDING_ACTIONS = /^(mdm\.authenticate|mdm\.identity-superseded|mdm\.checkout|mdm\.rescue|lifecycle\.|enroll-link\.redeem)/;

export async function devicePage(deps: ConsoleDeps, ctx: PageContext, id: string): Promise<Html | null> {
  const { app } = deps;
  const e = await app.store.getEnrollment(id);
  if (!e) return null;
  const identity = e.identityCertificateId ? await app.store.getCertificate(e.identityCertificateId) : undefined;
  const previous = e.previousIdentityCertificateId ? await app.store.getCertificate(e.previousIdentityCertificateId) : undefined;
  const events = await app.store.listAudit({ target: id, limit: 200 });
  const binding = events.filter((ev) => BINDING_ACTIONS.test(ev.action) || (ev.action === 'mdm.request' && ev.outcome === 'denied'));
  const queue = await app.store.listQueue(deviceChannel(id));
  const t = await tried(deps, e);
  const grace = app.config.rescueGraceDays * DAY_MS;
  return html`<dl class="facts">
      <dt>Name</dt>
      <dd>${deviceName(e) || '—'}</dd>
      <dt>Serial number</dt>
      <dd>${e.info.SerialNumber ?? '—'}</dd>
      <dt>Model</dt>
      <dd>${e.info.Model ?? e.info.ProductName ?? '—'} ${e.info.OSVersion ? `· OS ${e.info.OSVersion}` : ''}</dd>
      <dt>Status</dt>
      <dd>${e.status} (${e.kind}), enrolled ${when(e.enrolledAt)}</dd>
      <dt>Last check-in</dt>
      <dd>${when(e.lastSeenAt)}</dd>
      <dt>Check-in rhythm</dt>
      <dd>
        ${e.rhythm.typicalGapMs === null ? `seen in ${e.rhythm.sessions} session(s)` : `about every ${formatGap(e.rhythm.typicalGapMs)} over ${e.rhythm.sessions} sessions; longest gap ${formatGap(e.rhythm.longestGapMs ?? 0)}`}
      </dd>
      <dt>Identity</dt>
      <dd>
        ${identity ? html`<a href="/console/certificates/${identity.id}">${commonName(identity.subject)}</a> · expires ${day(identity.notAfter)} (${daysLeft(identity.notAfter, ctx.now)} days) · ${identityStanding(identity.notAfter, ctx.now, grace)} · <span class="mono">${identity.fingerprintSha256}</span>` : 'none'}
      </dd>
      ${
        previous
          ? html`<dt>Renewing from</dt>
              <dd>
                <a href="/console/certificates/${previous.id}">${commonName(previous.subject)}</a> · expires ${day(previous.notAfter)}
              </dd>`
          : ''
      }
      <dt>Renewal</dt>
      <dd>${t.text}</dd>
      <dt>Push</dt>
      <dd>
        ${e.topic ?? 'no topic'} ·
        ${e.pushToken?.length ? 'token held' : 'no token'}${e.pushTokenInvalidAt ? ` · APNs said Unregistered ${day(e.pushTokenInvalidAt)}` : ''}
      </dd>
    </dl>
    <p>${deviceActions(ctx, id)}</p>
    <h2>Binding history</h2>
    ${table(
      ['When', 'Event', 'Outcome', 'Detail'],
      binding.map(
        (ev) =>
          html`<tr class="binding-event" data-action="${ev.action}" data-outcome="${ev.outcome}">
            <td>${when(ev.at)}</td>
            <td>${ev.action}</td>
            <td class="${ev.outcome === 'denied' ? 'bad' : ''}">${ev.outcome}${ev.reason ? `: ${ev.reason}` : ''}</td>
            <td class="mono">${ev.detail ? JSON.stringify(ev.detail).slice(0, 300) : ''}</td>
          </tr>`,
      ),
    )}
    <h2>Queue and results</h2>
    ${table(
      ['Command', 'Request type', 'Priority', 'Status', 'Updated', 'Result'],
      queue.map(
        (q) =>
          html`<tr class="queued-command" data-status="${q.status}">
            <td class="mono">${q.commandUuid}</td>
            <td>${q.requestType}</td>
            <td>${q.priority}</td>
            <td>${q.status}</td>
            <td>${when(q.updatedAt)}</td>
            <td class="mono">${q.result ? q.result.toString('utf8').slice(0, 400) : ''}</td>
          </tr>`,
      ),
    )}`;
}
