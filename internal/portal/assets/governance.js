// governance.js: who may do what (role assignments), whether resources
// comply with policy, and what was done (the activity log, filtered and
// exported).

import {arm, list, request} from './api.js';
import {user} from './auth.js';
import {eventTable, events, resourceLink, row} from './activity.js';
import {badge, csv, downloadLink, fill, h, lower, resourceName, section, showError, statusBadge, table, time} from './ui.js';

export const title = 'Governance';

export async function render(container, {sub, signal}) {
  const parts = [assignments, compliance, activity].map(draw => {
    const el = h('div');
    return {el, loaded: draw(el, sub, signal).catch(err => {
      if (err.name === 'AbortError') return;
      fill(el, h('p', {class: 'muted'}, 'This part could not be loaded.'));
      showError(err);
    })};
  });
  fill(container, h('h1', {tabindex: '-1'}, 'Governance'), parts.map(p => p.el));
  await Promise.all(parts.map(p => p.loaded));
}

// Role assignments.

async function assignments(el, sub, signal) {
  const authz = `/subscriptions/${sub}/providers/Microsoft.Authorization`;
  const [list_, definitions, principals] = await Promise.all([
    list(arm(`${authz}/roleAssignments`, '2022-04-01'), {signal}),
    list(arm(`${authz}/roleDefinitions`, '2022-04-01'), {signal}),
    principalNames(signal),
  ]);
  const roleName = new Map(definitions.map(d => [lower(resourceName(d.id)), d.properties?.roleName]));
  fill(el, section('Role assignments', table({
    id: 'assignments', rows: list_, empty: 'There are no role assignments in this subscription.',
    caption: 'Role assignments that apply in this subscription',
    columns: [
      {label: 'Principal', value: a => {
        const id = a.properties?.principalId;
        const name = principals.get(lower(id));
        return h('span', {title: id}, name ?? id, h('span', {class: 'muted'}, ` (${a.properties?.principalType ?? 'unknown type'})`));
      }},
      {label: 'Role', value: a => roleName.get(lower(resourceName(a.properties?.roleDefinitionId))) ?? resourceName(a.properties?.roleDefinitionId)},
      {label: 'Scope', value: a => h('span', {class: 'op'}, a.properties?.scope ?? '')},
    ],
  })));
}

/**
 * principalNames maps object ids to names: the signed-in user's own, and
 * those of the local directory where the caller may read it; the others
 * are shown as ids.
 */
async function principalNames(signal) {
  const me = user();
  const names = new Map([[lower(me.oid), me.upn]]);
  const kinds = await Promise.allSettled(['users', 'groups', 'servicePrincipals'].map(kind =>
    list(arm(`/providers/Citadel.Identity/${kind}`, '2026-01-01'), {signal})));
  for (const k of kinds) {
    for (const p of k.status === 'fulfilled' ? k.value : []) {
      const props = p.properties ?? {};
      names.set(lower(props.objectId), props.userPrincipalName || props.displayName);
    }
  }
  return names;
}

// Compliance.

async function compliance(el, sub, signal) {
  const base = `/subscriptions/${sub}/providers/Microsoft.PolicyInsights/policyStates/latest`;
  const [summary, nonCompliant] = await Promise.all([
    request(arm(`${base}/summarize`, '2019-10-01'), {method: 'POST', signal}),
    list(arm(`${base}/queryResults`, '2019-10-01', {$filter: "complianceState eq 'NonCompliant'"}), {method: 'POST', signal}),
  ]);
  const s = summary?.value?.[0] ?? {};
  const r = s.results ?? {};
  const count = state => (r.resourceDetails ?? []).find(d => lower(d.complianceState) === state)?.count ?? 0;
  fill(el, section('Policy compliance',
    h('div', {id: 'compliance', class: 'compliance'},
      h('p', {class: 'summary'},
        badge(`${r.nonCompliantResources ?? 0} non-compliant resources`, r.nonCompliantResources ? 'bad' : 'ok'), ' ',
        badge(`${r.nonCompliantPolicies ?? 0} non-compliant policies`, r.nonCompliantPolicies ? 'bad' : 'ok')),
      h('p', {}, `Resources by state: ${count('compliant')} compliant, ${count('noncompliant')} non-compliant, ` +
        `${count('exempt')} exempt, ${count('unknown')} unknown.`),
      table({
        caption: 'By policy assignment', rows: s.policyAssignments ?? [], empty: 'No policy is assigned.',
        columns: [
          {label: 'Assignment', value: a => h('span', {title: a.policyAssignmentId}, resourceName(a.policyAssignmentId))},
          {label: 'Non-compliant resources', value: a => String(a.results?.nonCompliantResources ?? 0), class: 'num'},
          {label: 'Non-compliant policies', value: a => String(a.results?.nonCompliantPolicies ?? 0), class: 'num'},
        ],
      })),
    table({
      id: 'noncompliant', rows: nonCompliant, empty: 'Every evaluated resource complies.',
      caption: 'Non-compliant resources' + (nonCompliant.truncated ? ' (the first pages only)' : ''),
      columns: [
        {label: 'Resource', value: s => resourceLink(s.resourceId)},
        {label: 'Type', value: s => s.resourceType},
        {label: 'Assignment', value: s => s.policyAssignmentName},
        {label: 'Policy', value: s => s.policyDefinitionName},
        {label: 'Effect', value: s => s.policyDefinitionAction},
        {label: 'State', value: s => statusBadge(s.complianceState)},
        {label: 'Evaluated', value: s => time(s.timestamp)},
      ],
    })));
}

// The activity log.

const HOUR = 60 * 60 * 1000;
const RANGES = [['1 hour', HOUR], ['24 hours', 24 * HOUR], ['7 days', 7 * 24 * HOUR], ['30 days', 30 * 24 * HOUR]];
const STATUSES = ['Started', 'Accepted', 'Succeeded', 'Failed'];

async function activity(el, sub, signal) {
  const range = h('select', {id: 'activity-range'},
    RANGES.map(([label, ms]) => h('option', {value: String(ms), selected: ms === 24 * HOUR}, label)));
  const status = h('select', {id: 'activity-status'},
    h('option', {value: ''}, 'Any'), STATUSES.map(s => h('option', {value: s}, s)));
  const filter = h('input', {id: 'activity-filter', type: 'search', placeholder: 'e.g. cordon'});
  const count = h('p', {class: 'muted', id: 'activity-count', 'aria-live': 'polite'});
  const body = h('div');
  const exports = h('p', {class: 'exports'});
  let all = [];
  let shown = [];

  const show = () => {
    const words = lower(filter.value).split(/\s+/).filter(Boolean);
    shown = all.filter(e => {
      const r = row(e);
      const hay = lower(`${r.operation} ${r.resource} ${r.caller}`);
      return (!status.value || r.status === status.value) && words.every(w => hay.includes(w));
    });
    fill(body, eventTable('activity', shown.map(row), {
      withResource: true, caption: 'Activity log, newest first', empty: 'No event matches.',
    }));
    count.textContent = `${shown.length} of ${all.length} events shown` +
      (all.truncated ? '; the log is too long to read whole: these are its oldest events in the range.' : '.');
    exports.replaceChildren();
  };
  const load = async () => {
    count.textContent = 'Reading the activity log…';
    all = await events(sub, {within: Number(range.value), signal});
    show();
  };
  const reload = () => load().catch(err => { if (err.name !== 'AbortError') showError(err, 'The activity log could not be read'); });

  const exportRows = () => {
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const rows = shown.map(row);
    const cols = ['time', 'operation', 'status', 'subStatus', 'resource', 'caller', 'detail'];
    fill(exports,
      `Export of ${shown.length} events: `,
      downloadLink('Download CSV', `activity-${stamp}.csv`, 'text/csv', csv([cols, ...rows.map(r => cols.map(c => r[c]))])), ' ',
      downloadLink('Download JSON', `activity-${stamp}.json`, 'application/json', JSON.stringify(shown, null, 2)));
    exports.querySelector('a').focus();
  };

  range.addEventListener('change', reload);
  status.addEventListener('change', show);
  filter.addEventListener('input', show);
  fill(el, section('Activity log',
    h('div', {class: 'filters'},
      labelled('Time range', range), labelled('Status', status), labelled('Operation, resource or caller', filter),
      h('button', {type: 'button', onclick: reload}, 'Refresh'),
      h('button', {type: 'button', id: 'activity-export', onclick: exportRows}, 'Export')),
    count, exports, body));
  await load();
}

function labelled(label, control) {
  return h('div', {class: 'field'}, h('label', {for: control.id}, label), control);
}
