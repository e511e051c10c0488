// machine.js: one bare-metal machine: its status and inventory, its
// actions (each confirmed in the dialog, disabled without the permission),
// and its history from the activity log.

import {NETWORK_CLOUD, arm, can, permissions, request} from './api.js';
import {perform} from './operation.js';
import {eventTable, events, row} from './activity.js';
import {machineState} from './fleet.js';
import {badge, confirm, dl, field, fill, h, resourceName, section, showError, statusBadge, table, time} from './ui.js';

export const title = 'Machine';

/**
 * ACTIONS are the machine's actions: name is the button's data-action,
 * action the ARM action it POSTs, body what it sends, effect what the
 * confirmation says it does.
 */
const ACTIONS = [
  {name: 'powerOff', label: 'Power off', action: 'powerOff', body: {skipShutdown: 'False'},
    effect: 'shuts down its operating system and turns it off; its workloads stop.'},
  {name: 'start', label: 'Start', action: 'start', body: {},
    effect: 'turns it on.'},
  {name: 'restart', label: 'Restart', action: 'restart', body: {},
    effect: 'restarts it; its workloads are interrupted.'},
  {name: 'reimage', label: 'Reimage', action: 'reimage', body: {},
    effect: 'installs the operating system of its cluster version afresh; what the OS disk held is erased.'},
  {name: 'cordon', label: 'Cordon', action: 'cordon', body: {evacuate: 'False'},
    effect: 'stops new workloads from being placed on it; those running stay.'},
  {name: 'cordon-evacuate', label: 'Cordon and evacuate', action: 'cordon', body: {evacuate: 'True'},
    effect: 'stops new workloads from being placed on it and moves those running elsewhere.'},
  {name: 'uncordon', label: 'Uncordon', action: 'uncordon', body: {},
    effect: 'lets workloads be placed on it again.'},
  {name: 'replace', label: 'Replace', action: 'replace', body: {}, form: replaceForm, toBody: replaceBody,
    effect: 'takes new hardware into its place: the hardware is validated and its operating system installed. Leave a field empty to keep the current value.'},
];

const operation = a => `Microsoft.NetworkCloud/bareMetalMachines/${a.action}/action`;

// current is the machine page on screen, which forceAction acts on.
let current = null;

export async function render(container, {sub, signal, param: id}) {
  const [machine, perms] = await Promise.all([
    request(arm(id, NETWORK_CLOUD), {signal}),
    permissions(id, signal).catch(err => {
      if (err.name !== 'AbortError') showError(err, 'Your permissions could not be read; every action is offered and the server decides');
      return null;
    }),
  ]);
  const page = {id, sub, signal, machine, name: machine.properties?.machineName || machine.name};
  const heading = h('div', {class: 'page-head'});
  const details = h('div', {class: 'details'});
  const history = h('div', {class: 'history'});
  page.refresh = async () => {
    page.machine = await request(arm(id, NETWORK_CLOUD), {signal});
    drawHead(heading, page);
    drawDetails(details, page.machine);
    await loadHistory(history, page);
  };
  drawHead(heading, page);
  drawDetails(details, machine);
  fill(container,
    h('p', {class: 'crumbs'}, h('a', {href: '#/fleet'}, 'Fleet'), ' › ', page.name),
    heading,
    toolbar(perms),
    details,
    history);
  current = page;
  signal.addEventListener('abort', () => { if (current === page) current = null; });
  await loadHistory(history, page);
}

function drawHead(el, {machine, name}) {
  const p = machine.properties ?? {};
  const state = machineState(p);
  fill(el,
    h('h1', {tabindex: '-1'}, name),
    h('p', {class: 'badges'},
      h('span', {class: `badge state-${state.key}`}, h('span', {'aria-hidden': 'true'}, state.icon + ' '), state.label),
      badge(`Power ${p.powerState ?? 'unknown'}`, p.powerState === 'On' ? 'ok' : 'off'),
      badge(`Ready ${p.readyState ?? 'unknown'}`, p.readyState === 'True' ? 'ok' : 'bad'),
      state.key === 'cordoned' ? null : badge(p.cordonStatus ?? 'Cordon unknown', p.cordonStatus === 'Cordoned' ? 'warn' : 'ok'),
      statusBadge(p.detailedStatus)),
    p.detailedStatusMessage ? h('p', {class: 'status-message'}, p.detailedStatusMessage) : null);
}

// toolbar is the actions' buttons; without the permission a button is
// disabled, its title and a note below saying which permission is missing.
function toolbar(perms) {
  const missing = [];
  const buttons = ACTIONS.map(a => {
    const allowed = !perms || can(operation(a), perms);
    if (!allowed) missing.push(operation(a));
    return h('button', {
      type: 'button', 'data-action': a.name, disabled: !allowed,
      title: allowed ? null : `You may not ${a.label.toLowerCase()} this machine: your roles do not grant ${operation(a)}.`,
      onclick: () => runAction(a.name),
    }, a.label);
  });
  const unique = [...new Set(missing)];
  return h('section', {class: 'actions', 'aria-label': 'Actions'},
    h('div', {class: 'toolbar'}, buttons),
    unique.length ? h('p', {class: 'muted note'}, 'Unavailable to you, for want of the permission: ', unique.join(', '), '.') : null);
}

/**
 * runAction asks for confirmation and runs the action named name on the
 * machine on screen. The buttons call it; forceAction calls it without
 * asking, even when the button is disabled.
 */
export async function runAction(name, {ask = true} = {}) {
  const page = current;
  const a = ACTIONS.find(x => x.name === name);
  if (!page) throw new Error('No machine page is open.');
  if (!a) throw new Error(`No action is named '${name}'.`);
  let body = a.body;
  if (ask) {
    const answer = await confirm({
      title: `${a.label} ${page.name}?`,
      message: `${a.label} ${page.name}: this ${a.effect}`,
      confirmLabel: a.label,
      fields: a.form?.(),
    });
    if (!answer) return;
    if (a.toBody) body = a.toBody(answer);
  }
  await perform(`${a.label} of ${page.name}`, arm(`${page.id}/${a.action}`, NETWORK_CLOUD), body);
  if (current === page) {
    try {
      await page.refresh();
    } catch (err) {
      if (err.name !== 'AbortError') showError(err, 'The machine could not be read again');
    }
  }
}

/** forceAction runs an action without confirmation, whatever the permissions say (for tests). */
export function forceAction(name) {
  return runAction(name, {ask: false});
}

function replaceForm() {
  const mac = {pattern: '([0-9A-Fa-f]{2}[:\\-]){5}[0-9A-Fa-f]{2}', placeholder: 'aa:bb:cc:dd:ee:ff', autocomplete: 'off'};
  return h('fieldset', {class: 'form'},
    h('legend', {}, 'The new hardware'),
    field('Machine name', 'machineName', {autocomplete: 'off', pattern: '[a-zA-Z0-9]{2,64}'}),
    field('Serial number', 'serialNumber', {autocomplete: 'off', maxlength: '64'}),
    field('BMC MAC address', 'bmcMacAddress', mac),
    field('Boot MAC address', 'bootMacAddress', mac),
    field('BMC user name', 'bmcUsername', {autocomplete: 'off'}),
    field('BMC password', 'bmcPassword', {type: 'password', autocomplete: 'new-password'}));
}

// replaceBody is the replace action's body from the form: empty fields
// are left out, so the machine keeps what it has.
function replaceBody(f) {
  const body = {};
  for (const k of ['machineName', 'serialNumber', 'bmcMacAddress', 'bootMacAddress']) {
    if (f[k]?.trim()) body[k] = f[k].trim();
  }
  if (f.bmcUsername || f.bmcPassword) body.bmcCredentials = {username: f.bmcUsername, password: f.bmcPassword};
  return body;
}

// Details.

function drawDetails(el, machine) {
  const p = machine.properties ?? {};
  const hv = p.hardwareValidationStatus ?? {};
  const hw = p.hardwareInventory ?? {};
  fill(el,
    section('Status', dl([
      ['Power', p.powerState], ['Ready', p.readyState], ['Cordon', p.cordonStatus],
      ['Detailed status', statusBadge(p.detailedStatus)], ['Message', p.detailedStatusMessage],
      ['Liveness', p.livenessState], ['Liveness message', p.livenessMessage],
      ['Provisioning state', p.provisioningState],
    ])),
    section('Placement', dl([
      ['Cluster', resourceName(p.clusterId)], ['Rack', resourceName(p.rackId)], ['Slot', p.rackSlot],
      ['Roles', p.machineRoles], ['Kubernetes node', p.kubernetesNodeName], ['Details', p.machineDetails],
    ])),
    section('Hardware', dl([
      ['Machine SKU', p.machineSkuId], ['Serial number', p.serialNumber], ['Service tag', p.serviceTag],
      ['Validation', statusBadge(hv.result)], ['Validated', time(hv.lastValidationTime)],
      ['Host', hw.additionalHostInformation],
    ]), interfaces(hw.interfaces ?? [])),
    section('Management', dl([
      ['BMC connection', p.bmcConnectionString], ['BMC address', p.bmcIpv4Address],
      ['BMC MAC', p.bmcMacAddress], ['Boot MAC', p.bootMacAddress],
      ['OAM IPv4', p.oamIpv4Address], ['OAM IPv6', p.oamIpv6Address], ['Agent version', p.agentVersion],
    ])),
    section('Software', dl([
      ['OS image', p.osImage], ['Cluster version', p.machineClusterVersion], ['Kubernetes version', p.kubernetesVersion],
      ['Update in progress', p.updateTarget?.clusterVersion],
    ]), agentInventory(p.agentInventory)),
    section('Configuration drift', drift(p.configurationDrift)),
    section('Recent actions', actionStates(p.actionStates ?? [])));
}

function drift(d) {
  if (!d) return h('p', {class: 'muted'}, 'Not checked yet.');
  return [
    dl([['Status', statusBadge(d.status)], ['Detected', time(d.detectedTime)], ['Correction', d.correction]]),
    (d.items ?? []).length === 0 ? null : table({caption: 'What differs', id: 'drift', rows: d.items, columns: [
      {label: 'Item', value: r => r.item}, {label: 'Should be', value: r => r.desired}, {label: 'Is', value: r => r.observed},
    ]}),
  ];
}

function interfaces(list) {
  if (list.length === 0) return null;
  return table({caption: 'Network interfaces', rows: list, columns: [
    {label: 'Name', value: i => i.name},
    {label: 'MAC address', value: i => i.macAddress},
    {label: 'Link', value: i => i.linkStatus},
  ]});
}

// agentInventory is what the machine's agent reports the host really is.
function agentInventory(inv) {
  if (!inv) return h('p', {class: 'muted'}, 'No agent has reported an inventory.');
  const gib = b => (b ? `${(b / 2 ** 30).toFixed(1)} GiB` : '');
  return [
    h('h3', {}, 'As the agent reports it'),
    dl([
      ['Host name', inv.hostname],
      ['CPU', inv.cpu && `${inv.cpu.model} (${inv.cpu.sockets} sockets, ${inv.cpu.cores} cores, ${inv.cpu.threads} threads)`],
      ['Memory', gib(inv.memoryBytes)],
      ['Operating system', inv.os && `${inv.os.name ?? ''} ${inv.os.version ?? ''}`.trim()],
      ['Kernel', inv.os?.kernel],
      ['Disks', (inv.disks ?? []).map(d => `${d.name} ${gib(d.sizeBytes)}`)],
      ['GPUs', (inv.gpus ?? []).map(g => `${g.vendor} ${g.deviceId}`)],
    ]),
  ];
}

function actionStates(states) {
  return table({caption: 'The latest run of each action, as the machine records it', rows: states, empty: 'No action has run.', columns: [
    {label: 'Action', value: s => resourceName(String(s.actionType ?? '').replace(/\/action$/i, ''))},
    {label: 'Status', value: s => statusBadge(s.status)},
    {label: 'Started', value: s => time(s.startTime)},
    {label: 'Ended', value: s => time(s.endTime)},
    {label: 'Steps', value: s => (s.stepStates ?? []).map(st => `${st.stepName}: ${st.status}`).join('; ')},
    {label: 'Message', value: s => h('span', {}, s.message ?? '')},
  ]});
}

// History.

async function loadHistory(el, page) {
  fill(el, section('History', h('p', {class: 'muted'}, 'Reading the activity log…')));
  try {
    const list = await events(page.sub, {resourceUri: page.id, signal: page.signal});
    fill(el, section('History', eventTable('history', list.map(row), {
      caption: `What was done to ${page.name} in the last 30 days, newest first` + (list.truncated ? ' (only the oldest events: the log is too long to read whole)' : ''),
      empty: 'Nothing was done to this machine in the last 30 days.',
    })));
  } catch (err) {
    if (err.name === 'AbortError') return;
    fill(el, section('History', h('p', {class: 'muted'}, 'The history could not be read.')));
    showError(err, 'The history could not be read');
  }
}
