// fleet.js: the fleet page. Each cluster's racks are drawn as racks, slot 1
// at the bottom, with their machines and storage appliances in their slots.
// The page polls every 3 s while it is visible and changes only what
// changed, so that it neither flickers nor loses the focus.

import {networkCloud} from './api.js';
import {clearAlert, fill, h, keyed, lower, resourceName, setAttrs, setText, showError, slug, tone} from './ui.js';

export const title = 'Fleet';

const POLL_MS = 3000;

/**
 * machineState is how a machine is drawn: off, cordoned, not ready or
 * ready, in that order of precedence, with a text and an icon so that the
 * state is not told by colour alone.
 */
export function machineState(p) {
  if (p.powerState === 'Off') return {key: 'off', label: 'Off', icon: '○'};
  if (p.cordonStatus === 'Cordoned') return {key: 'cordoned', label: 'Cordoned', icon: '‖'};
  if (p.readyState !== 'True') return {key: 'notready', label: 'Not ready', icon: '✕'};
  return {key: 'ready', label: 'Ready', icon: '✓'};
}

const LEGEND = [
  {key: 'ready', label: 'Ready', icon: '✓'},
  {key: 'cordoned', label: 'Cordoned', icon: '‖'},
  {key: 'notready', label: 'Not ready', icon: '✕'},
  {key: 'off', label: 'Off', icon: '○'},
  {key: 'drifted', label: 'Drifted from its configuration (dashed outline)', icon: '△'},
];

/** drifted says whether drift control found the machine changed. */
const drifted = p => p.configurationDrift?.status === 'Drifted';

const byName = (a, b) => a.name.localeCompare(b.name, undefined, {numeric: true});

/**
 * model groups what the lists hold into clusters → racks → slots. Racks of
 * no known cluster, and machines and appliances of no known rack, are
 * gathered in groups of their own rather than left out.
 */
export function model(clusters, racks, machines, appliances) {
  const rackOf = new Map();
  const groups = new Map(clusters.map(c => [lower(c.id), {id: c.id, name: c.name, cluster: c, racks: []}]));
  const orphanGroup = () => {
    if (!groups.has('')) groups.set('', {id: '', name: 'Not in a known cluster', racks: []});
    return groups.get('');
  };
  for (const r of racks) {
    const rack = {id: r.id, name: r.name, props: r.properties ?? {}, slots: new Map()};
    rackOf.set(lower(r.id), rack);
    (groups.get(lower(r.properties?.clusterId)) ?? orphanGroup()).racks.push(rack);
  }
  const place = (item, kind) => {
    const p = item.properties ?? {};
    let rack = rackOf.get(lower(p.rackId));
    if (!rack) {
      rack = rackOf.get('');
      if (!rack) {
        rack = {id: '', name: 'Not in a known rack', props: {}, slots: new Map()};
        rackOf.set('', rack);
        orphanGroup().racks.push(rack);
      }
    }
    const slot = Number(p.rackSlot) || 0;
    if (!rack.slots.has(slot)) rack.slots.set(slot, []);
    rack.slots.get(slot).push({kind, id: item.id, name: p.machineName || item.name, props: p});
  };
  machines.forEach(m => place(m, 'machine'));
  appliances.forEach(a => place(a, 'appliance'));
  const out = [...groups.values()].filter(g => g.racks.length > 0 || g.cluster);
  out.sort((a, b) => (a.id === '') - (b.id === '') || byName(a, b));
  for (const g of out) g.racks.sort((a, b) => (a.id === '') - (b.id === '') || byName(a, b));
  return out;
}

/** summary counts the machines: "12 machines, 10 ready, 1 cordoned, 1 off". */
export function summary(machines) {
  const n = f => machines.filter(m => f(m.properties ?? {})).length;
  return `${machines.length} machines, ${n(p => p.readyState === 'True')} ready, ` +
    `${n(p => p.cordonStatus === 'Cordoned')} cordoned, ${n(p => p.powerState === 'Off')} off, ${n(drifted)} drifted`;
}

export async function render(container, {sub, signal}) {
  const summaryEl = h('p', {class: 'summary', id: 'fleet-summary'});
  const clustersEl = h('div', {class: 'clusters'});
  fill(container,
    h('h1', {tabindex: '-1'}, 'Fleet'),
    summaryEl,
    h('ul', {class: 'legend', 'aria-label': 'Legend'}, LEGEND.map(s =>
      h('li', {}, h('span', {class: `swatch state-${s.key}`, 'aria-hidden': 'true'}, s.icon), s.label))),
    clustersEl);

  let failed = false;
  async function refresh() {
    const lists = await Promise.all(['clusters', 'racks', 'bareMetalMachines', 'storageAppliances']
      .map(type => networkCloud(sub, type, signal)));
    setText(summaryEl, summary(lists[2]));
    drawClusters(clustersEl, model(...lists));
  }
  await refresh();

  // Live updates: a refresh 3 s after the last one ended, while visible.
  let timer, running = false;
  const schedule = () => {
    clearTimeout(timer);
    if (!signal.aborted && !document.hidden) timer = setTimeout(tick, POLL_MS);
  };
  async function tick() {
    if (running) return;
    running = true;
    try {
      await refresh();
      if (failed) clearAlert();
      failed = false;
    } catch (err) {
      if (signal.aborted) return;
      if (!failed) showError(err, 'The fleet could not be refreshed');
      failed = true;
    } finally {
      running = false;
    }
    schedule();
  }
  document.addEventListener('visibilitychange', () => (document.hidden ? clearTimeout(timer) : tick()), {signal});
  signal.addEventListener('abort', () => clearTimeout(timer));
  schedule();
}

function drawClusters(container, groups) {
  keyed(container, groups, g => g.id || '-', g => {
    const id = `cluster-${slug(g.id || 'none')}`;
    return h('section', {class: 'cluster', 'aria-labelledby': id},
      h('h2', {id}, g.name), h('p', {class: 'meta'}), h('div', {class: 'racks'}));
  }, (el, g) => {
    const p = g.cluster?.properties ?? {};
    const meta = [p.detailedStatus && `Status: ${p.detailedStatus}`, p.clusterType, p.clusterVersion && `version ${p.clusterVersion}`]
      .filter(Boolean).join(' · ');
    setText(el.querySelector('.meta'), meta);
    keyed(el.querySelector('.racks'), g.racks, r => r.id || '-', createRack, updateRack);
  });
}

function createRack(r) {
  const id = `rack-${slug(r.id || 'none')}`;
  return h('section', {class: 'rack', 'data-rack-id': r.id, 'aria-labelledby': id},
    h('h3', {id}, r.name),
    h('p', {class: 'rack-meta'}),
    h('ol', {class: 'slots', 'aria-label': `Slots of ${r.name}, from the bottom`}));
}

function updateRack(el, r) {
  const p = r.props;
  setText(el.querySelector('.rack-meta'), [p.rackLocation, p.rackSkuId && resourceName(p.rackSkuId), p.availabilityZone && `zone ${p.availabilityZone}`]
    .filter(Boolean).join(' · '));
  const top = Math.max(1, ...r.slots.keys());
  const slots = [];
  for (let n = r.slots.has(0) ? 0 : 1; n <= top; n++) slots.push({n, items: r.slots.get(n) ?? []});
  keyed(el.querySelector('.slots'), slots, s => String(s.n), s =>
    h('li', {class: 'slot', 'data-slot': s.n},
      h('span', {class: 'slot-no'}, h('span', {class: 'sr-only'}, 'Slot '), s.n || '?'),
      h('div', {class: 'occupants'})),
  (li, s) => {
    li.classList.toggle('empty', s.items.length === 0);
    const items = s.items.length ? s.items : [{kind: 'empty', id: 'empty'}];
    keyed(li.querySelector('.occupants'), items, i => `${i.kind}:${i.id}`, createOccupant, updateOccupant);
  });
}

function createOccupant(item) {
  if (item.kind === 'empty') return h('span', {class: 'vacant'}, 'empty');
  const inner = [h('span', {class: 'icon', 'aria-hidden': 'true'}), h('span', {class: 'name'}), h('span', {class: 'state'})];
  if (item.kind === 'appliance') return h('a', {class: 'appliance', href: '#/storage'}, inner);
  return h('a', {class: 'machine', href: `#/machine/${encodeURIComponent(item.id)}`, 'data-id': item.id}, inner);
}

function updateOccupant(el, item) {
  if (item.kind === 'empty') return;
  const p = item.props;
  const tip = [p.detailedStatus, p.detailedStatusMessage].filter(Boolean).join(': ');
  if (item.kind === 'appliance') {
    const status = p.detailedStatus || 'Unknown';
    setAttrs(el, {class: `appliance tone-${tone(status)}`, 'aria-label': `Storage appliance ${item.name}: ${status}`, title: tip});
    draw(el, '▤', item.name, status);
    return;
  }
  const state = machineState(p);
  const drift = drifted(p);
  setAttrs(el, {
    class: `machine state-${state.key}${drift ? ' drifted' : ''}`,
    'data-power': String(p.powerState ?? ''),
    'data-ready': String(p.readyState ?? ''),
    'data-cordon': String(p.cordonStatus ?? ''),
    'data-drift': drift ? 'Drifted' : String(p.configurationDrift?.status ?? ''),
    'aria-label': `${item.name}: ${p.powerState}, ready ${p.readyState}, ${p.cordonStatus}${drift ? ', drifted from its configuration' : ''}`,
    title: tip,
  });
  draw(el, drift ? '△' : state.icon, item.name, drift ? `${state.label}, drifted` : state.label);
}

function draw(el, icon, name, state) {
  setText(el.querySelector('.icon'), icon);
  setText(el.querySelector('.name'), name);
  setText(el.querySelector('.state'), state);
}
