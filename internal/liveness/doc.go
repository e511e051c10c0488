// Package liveness is the control plane's in-memory view of whether each
// machine is alive (ARCHITECTURE.md, the agent path). Agents' heartbeats
// are recorded here and never written anywhere one by one; only the
// transitions between states (Ready, NotReady, Unreachable, Failed) leave
// the package, for the caller to write to the store.
//
// The rules:
//
//   - A machine whose heartbeats stop is NotReady after Config.NotReadyAfter.
//   - It is Failed only on corroborated evidence: its BMC reports the power
//     Off or cannot be reached, the evidence is newer than the last
//     heartbeat, and Config.FailedAfter has passed since that heartbeat. The
//     tracker does no I/O: Tick names the machines whose BMC the caller
//     should ask, and the caller hands the answer back with ReportBMC.
//   - When half or more of a rack's machines fall silent together, the rack
//     is partitioned (Unreachable): its silent machines are Unreachable, not
//     NotReady, and none of them is declared Failed until the rack is
//     reachable again.
//   - Any heartbeat makes its machine Ready again.
//
// internal/fleet, the agent API of the replica that owns a cell's
// machines, imports it. The package is pure: it imports only the standard library, does no I/O and
// never reads the clock; every call that needs the time is given it.
package liveness
