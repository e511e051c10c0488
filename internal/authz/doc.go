// Package authz is Citadel's Azure RBAC decision engine: role definitions,
// role assignments, deny assignments and management locks, evaluated as ARM
// does it. A [Policy] is an immutable, indexed snapshot of them; its
// [Policy.Check] answers whether a principal may perform an ARM operation
// ("Microsoft.NetworkCloud/bareMetalMachines/powerOff/action") over a scope,
// and [Policy.LockFor] whether a lock blocks it. Deny beats allow, and the
// default is deny.
//
// The package is pure: it imports the standard library and internal/arm
// only, and does no I/O. The front door and the Microsoft.Authorization
// provider import it; the provider owns storage and builds a new Policy when
// roles, assignments or locks change.
package authz
