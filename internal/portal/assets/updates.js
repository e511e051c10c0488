// updates.js: cluster updates: each cluster's version, the releases it
// can update to, and an update's progress rack by rack (how many of each
// rack's machines run the target, how many the update holds down now),
// with the actions that start and continue an update.

import {NETWORK_CLOUD, arm, can, networkCloud, permissions} from './api.js';
import {perform} from './operation.js';
import {confirm, dl, fill, h, lower, resourceName, section, showError, statusBadge, table} from './ui.js';

export const title = 'Updates';

const POLL_MS = 3000;
const UPDATE = 'Microsoft.NetworkCloud/clusters/updateVersion/action';
const CONTINUE = 'Microsoft.NetworkCloud/clusters/continueUpdateVersion/action';

export async function render(container, {sub, signal}) {
  const perms = await permissions(`/subscriptions/${sub}`, signal).catch(err => {
    if (err.name !== 'AbortError') showError(err, 'Your permissions could not be read; every action is offered and the server decides');
    return null;
  });
  const body = h('div', {class: 'clusters'});
  fill(container, h('h1', {tabindex: '-1'}, 'Updates'), body);
  const draw = async () => {
    const [clusters, machines] = await Promise.all([networkCloud(sub, 'clusters', signal), networkCloud(sub, 'bareMetalMachines', signal)]);
    // Redraw only what changed, so that a focused button keeps its focus.
    const drawn = JSON.stringify([clusters, machines.map(m => [m.id, m.properties?.machineClusterVersion, m.properties?.updateTarget?.clusterVersion])]);
    if (drawn === body.dataset.drawn) return;
    body.dataset.drawn = drawn;
    fill(body, clusters.length === 0 ? h('p', {class: 'muted'}, 'There are no clusters.') :
      clusters.map(c => clusterSection(c, machines.filter(m => lower(m.properties?.clusterId) === lower(c.id)), perms, draw)));
  };
  await draw();
  const timer = setInterval(() => {
    if (!document.hidden) draw().catch(err => { if (err.name !== 'AbortError') showError(err, 'The updates could not be read'); });
  }, POLL_MS);
  signal.addEventListener('abort', () => clearInterval(timer));
}

function clusterSection(c, machines, perms, redraw) {
  const p = c.properties ?? {};
  const st = p.updateState ?? {};
  const target = st.targetClusterVersion || p.clusterVersion;
  const allowed = op => !perms || can(op, perms);
  const button = (label, op, action, onclick) => h('button', {
    type: 'button', 'data-action': action, disabled: !allowed(op),
    title: allowed(op) ? null : `Your roles do not grant ${op}.`, onclick,
  }, label);
  const run = async (label, action, body, message) => {
    if (!await confirm({title: `${label}?`, message, confirmLabel: label})) return;
    await perform(`${label} (${c.name})`, arm(`${c.id}/${action}`, NETWORK_CLOUD), body);
    await redraw();
  };
  const upgrades = (p.availableUpgradeVersions ?? []).map(u => u.targetClusterVersion);
  const actions = upgrades.map(v => button(`Update to ${v}`, UPDATE, 'updateVersion', () => run(`Update ${c.name} to ${v}`, 'updateVersion',
    {targetClusterVersion: v}, `Updates every machine of ${c.name} to ${v}, rack by rack: each machine is cordoned, its workloads move elsewhere, and it comes back on the new version.`)));
  if (p.detailedStatus === 'UpdatePaused') {
    actions.push(button('Continue the update', CONTINUE, 'continueUpdateVersion', () => run(`Continue the update of ${c.name}`, 'continueUpdateVersion',
      {machineGroupTargetingMode: 'AlphaByRack'}, `Goes on with the update of ${c.name} to ${target} with the next rack.`)));
  }
  return section(`Cluster ${c.name}`,
    dl([['Version', p.clusterVersion], ['Status', statusBadge(p.detailedStatus)], ['Message', p.detailedStatusMessage],
      ['Update strategy', strategy(p.updateStrategy)], ['Can update to', upgrades.join(', ') || 'nothing newer is imported']]),
    actions.length ? h('div', {class: 'toolbar'}, actions) : null,
    rackTable(c, machines, target, st));
}

const strategy = s => !s ? 'Rack, whole racks, all must succeed' :
  `${s.strategyType}, ${s.maxUnavailable || 'whole'} at a time, ${s.thresholdValue}${s.thresholdType === 'PercentSuccess' ? ' %' : ' machines'} must succeed` +
  (s.waitTimeMinutes ? `, ${s.waitTimeMinutes} min between racks` : '');

// rackTable is the update's progress per rack, racks in the order the
// update takes them.
function rackTable(c, machines, target, st) {
  const racks = new Map();
  for (const m of machines) {
    const rack = m.properties?.rackId ?? '';
    if (!racks.has(rack)) racks.set(rack, []);
    racks.get(rack).push(m.properties ?? {});
  }
  const rows = [...racks].sort(([a], [b]) => a.localeCompare(b)).map(([rack, ms]) => ({
    rack, total: ms.length,
    done: ms.filter(p => p.machineClusterVersion === target && !p.updateTarget).length,
    held: ms.filter(p => p.updateTarget).length,
    state: rackState(rack, st, ms, target),
  }));
  return table({
    id: `rollout-${c.name}`, caption: `Racks of ${c.name}, toward ${target}`, rows,
    columns: [
      {label: 'Rack', value: r => resourceName(r.rack)},
      {label: 'On the target', value: r => h('div', {class: 'capacity'},
        h('meter', {min: '0', max: String(r.total), value: String(r.done), 'aria-label': `Machines of ${resourceName(r.rack)} on ${target}`}),
        h('span', {}, `${r.done} of ${r.total}`))},
      {label: 'Held by the update now', value: r => String(r.held), class: 'num'},
      {label: 'State', value: r => statusBadge(r.state)},
    ],
  });
}

function rackState(rack, st, ms, target) {
  const is = x => lower(x) === lower(rack);
  if (is(st.failedRack)) return 'Failed';
  if ((st.completedRacks ?? []).some(is)) return is(st.pausedAfterRack) ? 'Paused' : 'Succeeded';
  if (ms.some(p => p.updateTarget)) return 'Updating';
  return ms.every(p => p.machineClusterVersion === target) ? 'Succeeded' : 'Waiting';
}
