// Package scheduler places virtual machines on bare-metal machines: the
// placement behind Microsoft.NetworkCloud/virtualMachines, including its
// placementHints (affinity and anti-affinity, Hard or Soft, to a machine, a
// rack or another virtual machine).
//
// A [Snapshot] indexes a fleet of [Machine] values once; [Snapshot.Place]
// picks a machine for a [Request] and [Snapshot.Commit] accounts the
// placement, so a batch of placements sees each other. Placement filters,
// then scores:
//
//   - Filters, in this order: Hard hints; the machine is Ready and not
//     cordoned; it has the CPU features, free GPUs, networks and storage
//     appliance the VM needs; it has the free cores and memory. A machine
//     that fails one is not a candidate, and when none is left Place
//     returns a [*NoFitError] that counts each machine under the first
//     filter it fails.
//   - Scores, in this order: most Soft hints satisfied; fewest VMs in the
//     machine's rack (the rack is the failure domain, so a rack failure takes
//     down as few VMs as possible); least loaded machine (the larger of its
//     used fractions of cores and memory, before this VM); lowest machine ID,
//     so placement is deterministic.
//
// IDs (machines, racks, VMs, networks, appliances) and CPU feature names
// compare case-insensitively, as ARM resource IDs do.
//
// The package is pure: it imports only the standard library and does no
// I/O. The Microsoft.NetworkCloud provider and the VM controller import it;
// they read machines and VMs from the store, build a Snapshot and write the
// chosen machine back.
package scheduler
