import { AUDIT_OUTCOMES, type AuditQuery } from '../../store/types.ts';
import type { ConsoleDeps } from '../facts.ts';
import { html, table, when, type Html } from '../html.ts';

export async function auditPage(deps: ConsoleDeps, query: AuditQuery): Promise<Html> {
  const events = await deps.app.store.listAudit(query);
  const next = events.at(-1);
  const params = (extra: Record<string, string>) =>
    new URLSearchParams(
      Object.entries({ action: query.actionPrefix, actor: query.actor, target: query.target, outcome: query.outcome, ...extra }).filter(
        (e): e is [string, string] => Boolean(e[1]),
      ),
    ).toString();
  return html`<form method="get" action="/console/audit" class="filters">
      <label>Action starts with <input type="text" name="action" value="${query.actionPrefix ?? ''}" /></label>
      <label>Actor <input type="text" name="actor" value="${query.actor ?? ''}" /></label>
      <label>Target <input type="text" name="target" value="${query.target ?? ''}" /></label>
      <label
        >Outcome
        <select name="outcome">
          ${['', ...AUDIT_OUTCOMES].map((o) => html`<option value="${o}" ${o === (query.outcome ?? '') ? html` selected` : ''}>${o || 'any'}</option>`)}
        </select></label
      >
      <button type="submit">Filter</button>
    </form>
    ${table(
      ['#', 'When', 'Actor', 'Action', 'Target', 'Outcome', 'Reason', 'Detail'],
      events.map(
        (e) =>
          html`<tr class="audit-event" data-action="${e.action}" data-actor="${e.actor}" data-outcome="${e.outcome}">
            <td>${e.id}</td>
            <td>${when(e.at)}</td>
            <td>${e.actor}</td>
            <td>${e.action}</td>
            <td class="mono">${e.target ?? ''}</td>
            <td class="${e.outcome === 'denied' || e.outcome === 'error' ? 'bad' : ''}">${e.outcome}</td>
            <td>${e.reason ?? ''}</td>
            <td class="mono">${e.detail ? JSON.stringify(e.detail).slice(0, 300) : ''}</td>
          </tr>`,
      ),
    )}
    ${events.length === query.limit && next ? html`<p><a href="/console/audit?${params({ before: String(next.id) })}">Older events</a></p>` : ''}`;
}
