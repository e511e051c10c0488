// Package machine holds the bare-metal domain rules of Citadel: the catalog
// of machine and rack SKUs, the topology rules a cluster definition must
// follow before it is accepted, the comparison of a machine's real hardware
// (as its BMC reports it) with its SKU, the disruption guard that keeps the
// control plane in quorum and racks within their unavailability budget, and
// the deployment validation threshold.
//
// The Microsoft.NetworkCloud provider and the bare-metal controllers import
// it: they convert ARM JSON and Redfish answers into these plain structs and
// turn the results (violations, findings, refusals) back into ARM errors.
// The package is pure: it imports only the standard library and does no I/O
// beyond reading an operator's SKU file from an io.Reader.
package machine
