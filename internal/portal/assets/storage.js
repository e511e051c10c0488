// storage.js: the storage page: the storage appliances with their
// capacity, and the volumes with where they are and what uses them.

import {networkCloud} from './api.js';
import {resourceLink} from './activity.js';
import {fill, h, lower, resourceName, section, statusBadge, table, text} from './ui.js';

export const title = 'Storage';

export async function render(container, {sub, signal}) {
  const [appliances, volumes] = await Promise.all([
    networkCloud(sub, 'storageAppliances', signal),
    networkCloud(sub, 'volumes', signal),
  ]);
  fill(container,
    h('h1', {tabindex: '-1'}, 'Storage'),
    section('Storage appliances', applianceTable(appliances, volumes)),
    section('Volumes', volumeTable(volumes)));
}

/** placedOn is the appliance a volume is on, or is pinned to before it is placed. */
const placedOn = v => v.properties?.assignedStorageApplianceId || v.properties?.storageApplianceId || '';

/** status is a detailedStatus badge with its message below. */
const status = p => h('div', {}, statusBadge(p.detailedStatus),
  p.detailedStatusMessage ? h('div', {class: 'muted small'}, p.detailedStatusMessage) : null);

/** capacity is "used / total GiB (n %)" with a meter beside it. */
function capacity(name, used, total) {
  const pct = total > 0 ? Math.round((used / total) * 100) : 0;
  return h('div', {class: 'capacity'},
    h('meter', {min: '0', max: String(total || 1), value: String(used || 0), low: String(total * 0.7), high: String(total * 0.9),
      optimum: '0', 'aria-label': `Capacity used on ${name}`}),
    h('span', {}, `${used ?? 0} / ${total ?? 0} GiB (${pct} %)`));
}

function applianceTable(appliances, volumes) {
  // What the volumes placed on each appliance add up to: thin provisioning
  // may promise more than is used.
  const provisioned = new Map();
  for (const v of volumes) {
    const k = lower(placedOn(v));
    provisioned.set(k, (provisioned.get(k) ?? 0) + (Number(v.properties?.sizeMiB) || 0));
  }
  return table({
    id: 'appliances', rows: appliances, empty: 'There are no storage appliances.',
    columns: [
      {label: 'Name', value: a => a.name},
      {label: 'Status', value: a => status(a.properties ?? {})},
      {label: 'Capacity used', value: a => capacity(a.name, a.properties?.capacityUsed, a.properties?.capacity)},
      {label: 'Provisioned', value: a => `${Math.round((provisioned.get(lower(a.id)) ?? 0) / 1024)} GiB`},
      {label: 'Model', value: a => [a.properties?.manufacturer, a.properties?.model, a.properties?.version].filter(Boolean).join(' ')},
      {label: 'Rack, slot', value: a => `${resourceName(a.properties?.rackId)}, slot ${a.properties?.rackSlot ?? '?'}`},
      {label: 'Remote vendor management', value: a => a.properties?.remoteVendorManagementStatus},
    ],
  });
}

function volumeTable(volumes) {
  return table({
    id: 'volumes', rows: volumes, empty: 'There are no volumes.',
    columns: [
      {label: 'Name', value: v => v.name},
      {label: 'Resource group', value: v => v.id.split('/')[4]},
      {label: 'Size', value: v => `${v.properties?.sizeMiB ?? 0} MiB`, class: 'num'},
      {label: 'Allocated', value: v => `${v.properties?.allocatedSizeMiB ?? 0} MiB`, class: 'num'},
      {label: 'Status', value: v => status(v.properties ?? {})},
      {label: 'Attached to', value: v => attachedTo(v.properties ?? {})},
      {label: 'Storage appliance', value: v => resourceName(placedOn(v))},
    ],
  });
}

// attachedTo lists what uses a volume, and the machine each runs on when
// that is another resource (a virtual machine's host).
function attachedTo(p) {
  const attachments = p.attachments?.length ? p.attachments : (p.attachedTo ?? []).map(id => ({attachedTo: id}));
  if (attachments.length === 0) return text('');
  return h('ul', {class: 'plain'}, attachments.map(a => h('li', {}, resourceLink(a.attachedTo),
    a.bareMetalMachineId && lower(a.bareMetalMachineId) !== lower(a.attachedTo) ? [' on ', resourceLink(a.bareMetalMachineId)] : null)));
}
