// activity.js: the activity log (Microsoft.Insights), read by the machine
// page's history and the governance page.

import {arm, list} from './api.js';
import {h, resourceName, statusBadge, table, text, time} from './ui.js';

const DAY = 24 * 60 * 60 * 1000;

/** quote is an OData string literal. */
const quote = s => `'${String(s).replace(/'/g, "''")}'`;

/**
 * events lists the subscription's activity-log events of the last
 * `within` milliseconds (of one resource when resourceUri is set), newest
 * first. The server answers oldest first, 200 a page; maxPages bounds the
 * read, and events.truncated says whether more were left.
 */
export async function events(sub, {within = 30 * DAY, resourceUri, signal, maxPages = 200} = {}) {
  let filter = `eventTimestamp ge ${quote(new Date(Date.now() - within).toISOString())}`;
  if (resourceUri) filter += ` and resourceUri eq ${quote(resourceUri)}`;
  const path = arm(`/subscriptions/${sub}/providers/Microsoft.Insights/eventtypes/management/values`, '2015-04-01', {$filter: filter});
  const items = await list(path, {signal, maxPages});
  const out = items.reverse();
  out.truncated = items.truncated;
  return out;
}

/** detail is the reason an event records: the message of the ARM error it answered, if any. */
export function detail(e) {
  const raw = e.properties?.statusMessage;
  if (!raw) return e.description || '';
  try {
    return JSON.parse(raw).error?.message ?? raw;
  } catch {
    return raw;
  }
}

/** row is the flat form of an event, for display and export. */
export function row(e) {
  return {
    time: e.eventTimestamp,
    operation: e.operationName?.value ?? '',
    status: e.status?.value ?? '',
    subStatus: e.subStatus?.localizedValue || e.subStatus?.value || '',
    resource: e.resourceId ?? '',
    caller: e.caller ?? '',
    detail: detail(e),
  };
}

/** resourceLink links a machine to its page; other resources show their name. */
export function resourceLink(id) {
  if (!id) return text('');
  if (/\/providers\/Microsoft\.NetworkCloud\/bareMetalMachines\/[^/]+$/i.test(id)) {
    return h('a', {href: `#/machine/${encodeURIComponent(id)}`, title: id}, resourceName(id));
  }
  return h('span', {title: id}, resourceName(id));
}

/**
 * eventTable renders rows (from row()) as a table: time, operation,
 * status, the resource when withResource, caller and details.
 */
export function eventTable(id, rows, {caption, withResource = false, empty = 'No events.'} = {}) {
  const columns = [
    {label: 'Time', value: r => time(r.time), class: 'nowrap'},
    {label: 'Operation', value: r => h('span', {class: 'op'}, r.operation)},
    {label: 'Status', value: r => h('span', {}, statusBadge(r.status), r.subStatus ? h('span', {class: 'muted'}, ' ', r.subStatus) : null)},
    withResource ? {label: 'Resource', value: r => resourceLink(r.resource)} : null,
    {label: 'Caller', value: r => r.caller},
    {label: 'Details', value: r => h('span', {}, r.detail)},
  ].filter(Boolean);
  return table({id, caption, columns, rows, empty});
}
