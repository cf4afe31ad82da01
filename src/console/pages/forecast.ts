import { forecastFromStore } from '../../lifecycle/forecast-facts.ts';
import type { ConsoleDeps } from '../facts.ts';
import { day, html, table, when, type Html } from '../html.ts';

export async function forecastPage(deps: ConsoleDeps, now: Date, days: number): Promise<Html> {
  const { app } = deps;
  const f = await forecastFromStore(app.store, now, {
    days,
    pinning: app.config.pinServerUrl,
    identityDays: app.config.identityDays,
    rescueGraceDays: app.config.rescueGraceDays,
  });
  return html`<form method="get" action="/console/forecast" class="filters">
      <label>Days ahead <input type="number" name="days" min="1" max="3650" value="${days}" /></label
      ><button type="submit">Forecast</button>
    </form>
    <p id="forecast-summary" data-lost="${f.lost.length}" data-devices="${f.devices}">
      If every device keeps its observed check-in rhythm, <strong>${f.lost.length}</strong> of ${f.devices} enrolled device(s) are lost
      between ${day(f.from)} and ${day(f.until)}; ${f.renewals} identity renewal(s) are expected to complete. The same as
      <code>certmdm lifecycle forecast --days ${days}</code>.
    </p>
    ${table(
      ['Lost on', 'Device', 'Cause', 'Certificate', 'Why', 'Last check-in'],
      f.lost.map(
        (l) =>
          html`<tr class="forecast-loss" data-device="${l.deviceId}" data-cause="${l.cause}" data-lost-at="${l.lostAt.toISOString()}">
            <td class="bad">${day(l.lostAt)}</td>
            <td>
              <a href="/console/devices/${encodeURIComponent(l.deviceId)}">${l.deviceId}</a><br /><span class="muted">${l.name ?? ''}</span>
            </td>
            <td>${l.cause}</td>
            <td>${l.certificate}</td>
            <td>${l.why}</td>
            <td>${when(l.lastSeenAt)}</td>
          </tr>`,
      ),
    )}
    <h2>Assumptions</h2>
    <ul>
      ${f.assumptions.map((a) => html`<li>${a}</li>`)}
    </ul>`;
}
