// api.js: the one client of the ARM API. Every call is a same-origin fetch
// with the bearer token; errors become ARMError (the ARM envelope's code
// and message); a 401 signs in again.

import {signIn, token} from './auth.js';

export const NETWORK_CLOUD = '2026-07-01';

/** ARMError is an error the ARM API answered with. */
export class ARMError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * arm builds an ARM path with its api-version and further query
 * parameters, each encoded: arm('/subscriptions', '2022-12-01').
 */
export function arm(path, apiVersion, params = {}) {
  const q = [`api-version=${encodeURIComponent(apiVersion)}`];
  for (const [k, v] of Object.entries(params)) q.push(`${k}=${encodeURIComponent(v)}`);
  return `${path}?${q.join('&')}`;
}

/**
 * local turns a URL the server wrote (nextLink, Azure-AsyncOperation) into
 * a path on this origin: the API and the portal are the same server, and
 * the host it names may be spelled differently from the one the browser
 * uses.
 */
function local(url) {
  const u = new URL(url, location.href);
  return u.pathname + u.search;
}

/**
 * request calls the API and returns the response's JSON (null when it has
 * none), or, for a 202 with Azure-AsyncOperation, {asyncOperation, retryAfter}.
 */
export async function request(path, {method = 'GET', body, signal} = {}) {
  if (!token()) await signIn();
  const headers = {Authorization: `Bearer ${token()}`, Accept: 'application/json'};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(local(path), {
    method, headers, signal,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 401) {
    await signIn();
  }
  const data = await resp.text().then(t => (t ? JSON.parse(t) : null)).catch(() => null);
  if (!resp.ok) {
    const e = data?.error ?? {};
    throw new ARMError(resp.status, e.code || `HTTP${resp.status}`, e.message || `The server answered ${resp.status} ${resp.statusText}.`);
  }
  const async = resp.headers.get('Azure-AsyncOperation');
  if (resp.status === 202 && async) {
    return {asyncOperation: async, retryAfter: Number(resp.headers.get('Retry-After')) || 1};
  }
  return data;
}

/**
 * list returns every item of a collection, following nextLink (ARM) or
 * @odata.nextLink (PolicyInsights) with the same method, up to maxPages
 * pages; items.truncated says whether more were left.
 */
export async function list(path, {method = 'GET', signal, maxPages = 50} = {}) {
  const items = [];
  let next = path;
  for (let page = 0; next && page < maxPages; page++) {
    const data = await request(next, {method, signal});
    items.push(...(data?.value ?? []));
    next = data?.nextLink || data?.['@odata.nextLink'] || null;
  }
  items.truncated = Boolean(next);
  return items;
}

/** networkCloud lists a Microsoft.NetworkCloud type of the subscription. */
export function networkCloud(sub, type, signal) {
  return list(arm(`/subscriptions/${sub}/providers/Microsoft.NetworkCloud/${type}`, NETWORK_CLOUD), {signal});
}

/**
 * wait polls a long-running operation's status URL until it ends,
 * reporting {status, percentComplete} to onProgress; it returns the final
 * status body.
 */
export async function wait({asyncOperation, retryAfter = 1}, onProgress) {
  for (;;) {
    await new Promise(r => setTimeout(r, Math.min(Math.max(retryAfter, 1), 10) * 1000));
    const st = await request(asyncOperation);
    onProgress?.(st);
    if (!['InProgress', 'Accepted', 'Running', 'Started'].includes(st?.status)) return st;
  }
}

// Permissions.

/** permissions are the caller's permissions at scope (an ARM ID). */
export async function permissions(scope, signal) {
  return list(arm(`${scope}/providers/Microsoft.Authorization/permissions`, '2022-04-01'), {signal});
}

const patterns = new Map();

function matches(pattern, operation) {
  let re = patterns.get(pattern);
  if (!re) {
    const body = pattern.split('*').map(p => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
    re = new RegExp(`^${body}$`, 'i');
    patterns.set(pattern, re);
  }
  return re.test(operation);
}

/**
 * can reports whether perms (the permissions API's value) allow operation:
 * some entry has an action matching it and no notAction of that entry
 * matching it. Patterns are case-insensitive; * matches any run of
 * characters.
 */
export function can(operation, perms) {
  return perms.some(p =>
    (p.actions ?? []).some(a => matches(a, operation)) &&
    !(p.notActions ?? []).some(n => matches(n, operation)));
}
