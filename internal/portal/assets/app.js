// app.js: the portal's entry. It signs in, shows who is signed in, picks
// the subscription and routes #/fleet, #/machine/{id}, #/storage and
// #/governance to their page modules. Each page exports title and
// render(container, {sub, signal, param}); signal aborts when the user
// leaves the page, which stops its requests and polling.

import * as auth from './auth.js';
import {arm, list} from './api.js';
import {clearAlert, clearProgress, fill, h, showError} from './ui.js';
import * as fleet from './fleet.js';
import * as machine from './machine.js';
import * as storage from './storage.js';
import * as governance from './governance.js';
import * as updates from './updates.js';

const PAGES = {fleet, machine, storage, updates, governance};
const SUBSCRIPTION_KEY = 'citadel.subscription';

// Test hooks: forceAction runs a machine page action without confirmation,
// even when its button is disabled, so the server's refusal shows.
window.citadel = {forceAction: name => machine.forceAction(name)};

let subscription = null;
let controller = null; // aborts the page on screen
let navigated = false; // whether a route was shown before: then focus moves to the new page

const pageEl = () => document.getElementById('page');

/** parseRoute reads the hash: {name, param}; anything unknown is the fleet. */
export function parseRoute(hash) {
  const m = /^#\/([a-z]+)(?:\/(.+))?$/.exec(hash);
  if (!m || !PAGES[m[1]] || (m[1] === 'machine' && !m[2])) return {name: 'fleet', param: ''};
  return {name: m[1], param: m[2] ? decodeURIComponent(m[2]) : ''};
}

async function route() {
  controller?.abort();
  controller = new AbortController();
  const {signal} = controller;
  const {name, param} = parseRoute(location.hash);
  const page = PAGES[name];
  for (const a of document.querySelectorAll('nav a[data-route]')) {
    if (a.dataset.route === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  clearAlert();
  clearProgress();
  document.title = `${page.title} – Citadel`;
  const container = pageEl();
  container.setAttribute('aria-busy', 'true');
  fill(container, h('p', {class: 'muted'}, 'Loading…'));
  try {
    await page.render(container, {sub: subscription, signal, param});
  } catch (err) {
    if (signal.aborted) return;
    fill(container,
      h('h1', {tabindex: '-1'}, page.title),
      h('p', {}, 'This page could not be loaded. ', h('button', {type: 'button', onclick: route}, 'Try again')));
    showError(err, `The ${page.title.toLowerCase()} page could not be loaded`);
  }
  if (signal.aborted) return;
  container.removeAttribute('aria-busy');
  const focus = document.activeElement;
  if (navigated && (!focus || focus === document.body || focus.closest('nav, #page'))) {
    container.querySelector('h1')?.focus();
  }
  navigated = true;
  document.body.dataset.ready = 'true';
}

// Header.

function showUser() {
  const {upn, name} = auth.user();
  document.getElementById('user').textContent = upn;
  document.getElementById('user-name').textContent = name && name !== upn ? name : '';
  document.getElementById('who').hidden = false;
}

/**
 * chooseSubscription reads the caller's subscriptions and returns the one
 * to show: the one chosen before in this session, or the first. With more
 * than one, a selector in the header changes it.
 */
async function chooseSubscription() {
  const subs = await list(arm('/subscriptions', '2022-12-01'));
  if (subs.length === 0) return null;
  const saved = sessionStorage.getItem(SUBSCRIPTION_KEY);
  const chosen = subs.find(s => s.subscriptionId === saved) ?? subs[0];
  const box = document.getElementById('subscription');
  const label = s => (s.displayName && s.displayName !== s.subscriptionId ? `${s.displayName} (${s.subscriptionId})` : s.subscriptionId);
  if (subs.length === 1) {
    fill(box, h('span', {class: 'muted'}, 'Subscription '), label(chosen));
  } else {
    const select = h('select', {id: 'subscription-select'},
      subs.map(s => h('option', {value: s.subscriptionId, selected: s === chosen}, label(s))));
    select.addEventListener('change', () => {
      subscription = select.value;
      sessionStorage.setItem(SUBSCRIPTION_KEY, subscription);
      route();
    });
    fill(box, h('label', {for: 'subscription-select'}, 'Subscription'), select);
  }
  box.hidden = false;
  return chosen.subscriptionId;
}

function signInFailed(err) {
  showError(err, 'Sign-in failed');
  fill(pageEl(),
    h('h1', {}, 'Not signed in'),
    h('p', {}, h('button', {type: 'button', onclick: () => location.reload()}, 'Sign in again')));
}

async function boot() {
  document.getElementById('sign-out').addEventListener('click', () => auth.signOut().catch(signInFailed));
  try {
    await auth.init();
    await auth.ensureSignedIn();
  } catch (err) {
    signInFailed(err);
    return;
  }
  showUser();
  try {
    subscription = await chooseSubscription();
  } catch (err) {
    showError(err, 'Your subscriptions could not be read');
  }
  if (!subscription) {
    fill(pageEl(), h('h1', {}, 'No subscription'),
      h('p', {}, 'You have access to no subscription, or they could not be read.'));
    document.body.dataset.ready = 'true';
    return;
  }
  window.addEventListener('hashchange', route);
  await route();
}

boot();
