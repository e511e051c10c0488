// ui.js: the portal's building blocks. Every page builds its DOM with h(),
// shows errors with showError(), tables with table(), confirmations with
// confirm() and downloads with downloadLink(); nothing else touches the
// shared regions (#alert, #progress, dialog#confirm).

/**
 * h creates an element: h('a', {href: '#/fleet', class: 'x'}, 'Fleet').
 * Props named on* add listeners; true sets an empty attribute; null, undefined
 * and false are skipped. Children may be nodes, strings, numbers or arrays.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value == null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(el.dataset, value);
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

/** fill replaces el's children, as h() takes them. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** text is a value for display: "not set" (muted) when it is empty. */
export function text(value) {
  if (value == null || value === '' || (Array.isArray(value) && value.length === 0)) {
    return h('span', {class: 'muted'}, 'not set');
  }
  return Array.isArray(value) ? value.join(', ') : String(value);
}

/** lower is s in lower case; ARM IDs and names compare case-insensitively. */
export const lower = s => String(s ?? '').toLowerCase();

/** slug makes s usable in an id attribute. */
export const slug = s => lower(s).replace(/[^a-z0-9]+/g, '-');

/** resourceName is the last segment of an ARM ID. */
export function resourceName(id) {
  return String(id ?? '').split('/').filter(Boolean).pop() ?? '';
}

/** time shows an ISO timestamp in the reader's locale, in a <time>. */
export function time(iso) {
  if (!iso) return text('');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return h('time', {datetime: d.toISOString()}, d.toLocaleString(undefined, {dateStyle: 'medium', timeStyle: 'medium'}));
}

/**
 * badge is a status shown as text in a coloured pill; the tone only adds
 * colour (ok, warn, bad, off, info), the text says the state.
 */
export function badge(label, tone = 'info') {
  return h('span', {class: `badge tone-${tone}`}, label);
}

/** tone maps a detailedStatus or operation status to a badge tone. */
export function tone(status) {
  switch (String(status ?? '').toLowerCase()) {
    case 'available': case 'active': case 'provisioned': case 'running': case 'succeeded':
    case 'compliant': case 'completed': case 'pass': case 'true': case 'on': case 'insync':
      return 'ok';
    case 'degraded': case 'provisioning': case 'preparing': case 'deploying': case 'accepted':
    case 'started': case 'inprogress': case 'cordoned': case 'warning': case 'updating': case 'updatepaused':
    case 'paused': case 'drifted':
      return 'warn';
    case 'error': case 'failed': case 'noncompliant': case 'fail': case 'false': case 'canceled':
    case 'critical':
      return 'bad';
    case 'off':
      return 'off';
  }
  return 'info';
}

/** statusBadge is badge(status) with the tone the status implies. */
export function statusBadge(status) {
  return status ? badge(status, tone(status)) : text('');
}

/** dl is a definition list of [label, value] pairs. */
export function dl(pairs) {
  return h('dl', {class: 'facts'}, pairs.map(([label, value]) => [h('dt', {}, label), h('dd', {}, value instanceof Node ? value : text(value))]));
}

/**
 * table renders rows under columns ({label, value: row => node|string}),
 * wrapped so that it scrolls sideways when narrow. With no rows the body
 * stays empty and a note follows the table.
 */
export function table({id, caption, columns, rows, empty = 'Nothing to show.'}) {
  const body = h('tbody', {}, rows.map(row => h('tr', {}, columns.map(c => {
    const v = c.value(row);
    return h('td', {class: c.class}, v instanceof Node ? v : text(v));
  }))));
  return h('div', {class: 'table-wrap'},
    h('table', {id},
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, h('tr', {}, columns.map(c => h('th', {scope: 'col', class: c.class}, c.label)))),
      body),
    rows.length === 0 ? h('p', {class: 'muted empty'}, empty) : null);
}

/** section is a titled part of a page. */
export function section(title, ...children) {
  const id = 'sec-' + slug(title);
  return h('section', {class: 'panel', 'aria-labelledby': id}, h('h2', {id}, title), children);
}

/**
 * keyed reconciles container's children with items: an element per key,
 * created once, updated in place and moved only when out of order, so that
 * a refresh neither flickers nor loses focus.
 */
export function keyed(container, items, key, create, update) {
  const existing = new Map();
  for (const el of container.children) existing.set(el.dataset.key, el);
  let at = container.firstElementChild;
  for (const item of items) {
    const k = key(item);
    let el = existing.get(k);
    if (el) {
      existing.delete(k);
    } else {
      el = create(item);
      el.dataset.key = k;
    }
    update(el, item);
    if (el !== at) container.insertBefore(el, at);
    else at = at.nextElementSibling;
  }
  for (const el of existing.values()) el.remove();
}

/** setAttrs updates only the attributes that changed. */
export function setAttrs(el, attrs) {
  for (const [name, value] of Object.entries(attrs)) {
    if (el.getAttribute(name) !== value) el.setAttribute(name, value);
  }
}

/** setText updates an element's text only when it changed. */
export function setText(el, value) {
  if (el.textContent !== value) el.textContent = value;
}

// The alert region.

const alertEl = () => document.getElementById('alert');

/**
 * showError adds an error to #alert (role="alert"): an ARM error's message
 * and code, or any other error's message, after what context says was
 * being done. The errors stay until dismissed or the next page or action.
 */
export function showError(err, context) {
  const el = alertEl();
  if (el.hidden) {
    fill(el, h('button', {type: 'button', class: 'link dismiss', onclick: clearAlert}, 'Dismiss'));
    el.hidden = false;
  }
  const message = err?.message || String(err);
  el.lastElementChild.before(h('p', {},
    context ? h('strong', {}, context + ': ') : null, message,
    err?.code ? h('span', {class: 'code'}, ` (${err.code})`) : null));
}

/** clearAlert empties #alert. */
export function clearAlert() {
  const el = alertEl();
  el.replaceChildren();
  el.hidden = true;
}

// The progress region of long-running actions.

/**
 * progress shows how a long-running action goes in #progress (role
 * "status"); percent undefined is indeterminate, done hides the bar.
 */
export function progress(label, percent, done = false) {
  const el = document.getElementById('progress');
  const bar = done ? null : h('progress', {max: '100', value: percent == null ? null : String(percent), 'aria-label': label});
  fill(el, h('span', {}, label), bar);
  el.dataset.done = String(done);
  el.hidden = false;
}

/** clearProgress hides #progress unless an action is still running. */
export function clearProgress() {
  const el = document.getElementById('progress');
  if (el.dataset.done === 'true') el.hidden = true;
}

// The confirmation dialog.

/**
 * confirm asks in dialog#confirm and resolves to the form's fields (an
 * object, {} without fields) when confirmed, or null when cancelled
 * (Cancel or Escape). The Confirm button has the focus.
 */
export function confirm({title, message, confirmLabel = 'Confirm', fields = null}) {
  const dialog = document.getElementById('confirm');
  const form = dialog.querySelector('form');
  const ok = dialog.querySelector('button[value=confirm]');
  dialog.querySelector('#confirm-title').textContent = title;
  dialog.querySelector('#confirm-message').textContent = message;
  fill(dialog.querySelector('#confirm-fields'), fields);
  ok.textContent = confirmLabel;
  dialog.returnValue = '';
  return new Promise(resolve => {
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'confirm' ? Object.fromEntries(new FormData(form)) : null);
    }, {once: true});
    dialog.showModal();
    ok.focus();
  });
}

/** field is a labelled input for a dialog's form. */
export function field(label, name, attrs = {}) {
  const id = 'f-' + name.replace(/[^a-zA-Z0-9]/g, '-');
  return h('div', {class: 'field'}, h('label', {for: id}, label), h('input', {id, name, ...attrs}));
}

// Downloads.

const objectURLs = new Map();

/**
 * downloadLink is a link that downloads content as filename; a new link of
 * the same filename frees the previous one's Blob.
 */
export function downloadLink(label, filename, type, content) {
  if (objectURLs.has(filename)) URL.revokeObjectURL(objectURLs.get(filename));
  const url = URL.createObjectURL(new Blob([content], {type}));
  objectURLs.set(filename, url);
  return h('a', {href: url, download: filename, class: 'download'}, label);
}

/** csv writes rows (arrays) as RFC 4180 CSV; cells a spreadsheet would run as formulas are quoted with a leading '. */
export function csv(rows) {
  const cell = v => {
    let s = v == null ? '' : String(v);
    if (/^[=+\-@\t\r]/.test(s)) s = "'" + s;
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  };
  return rows.map(r => r.map(cell).join(',')).join('\r\n') + '\r\n';
}
