// Package policy is the Azure Policy language: it loads policy definitions
// and initiatives (policySetDefinitions), validates them as Azure does
// (every problem with its JSON path), and evaluates ARM resources against
// their assignments: the conditions of the rule, aliases, count, the
// template functions a rule may call, and the effects with the changes
// append and modify make to a request.
//
// A server builds one Aliases registry at start (CitadelAliases plus,
// optionally, Azure's alias list read with ReadAliasCSV), loads
// definitions with ParseDefinition and ParseSetDefinition, binds each
// assignment with NewAssignment or NewSetAssignment, and asks
// EvaluateRequest about every create or update: the answer says whether
// the request is denied, and gives the body after append and modify.
//
// policy is pure (no I/O): alias lists come in through an io.Reader.
// internal/frontdoor, the Microsoft.Authorization provider and
// cmd/citadel import it.
package policy
