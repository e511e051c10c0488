package authz

import (
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
)

// CodeScopeLocked is the ARM error code of an operation that a lock blocks.
const CodeScopeLocked = "ScopeLocked"

// LockFor returns a lock at scope or above it that blocks action, an ARM
// operation name, and whether there is one; of several it returns the
// outermost. A read is never blocked. A delete is blocked by either level; a
// write or any other action (a POST) is blocked by ReadOnly. Two kinds of
// action are exempt: managing locks themselves
// (Microsoft.Authorization/locks/...), or no lock could ever be removed, and
// the POST queries that only read (policy states and events queryResults).
func (p *Policy) LockFor(action, scope string) (Lock, bool) {
	kind := lockKind(action)
	if kind == "" {
		return Lock{}, false
	}
	scope = scopeKey(scope)
	for _, l := range p.locks {
		if covers(l.scope, scope) && (l.Level == LockReadOnly || kind == "delete") {
			return l.Lock, true
		}
	}
	return Lock{}, false
}

// queryActions are POST actions that only read, so no lock blocks them.
var queryActions = map[string]bool{
	"microsoft.policyinsights/policystates/queryresults/action": true,
	"microsoft.policyinsights/policyevents/queryresults/action": true,
}

// lockKind is "delete" or "write" for the operations a lock may block, as
// LockFor describes, and "" for the others.
func lockKind(action string) string {
	action = lower(action)
	switch {
	case action == "", strings.HasPrefix(action, "microsoft.authorization/locks/"), queryActions[action]:
		return ""
	case strings.HasSuffix(action, "/read"):
		return ""
	case strings.HasSuffix(action, "/delete"):
		return "delete"
	}
	return "write"
}

// LockError is the 409 ScopeLocked that ARM answers when lock l blocks
// action over scope, worded as Azure words it.
func LockError(l Lock, action, scope string) *arm.Error {
	op := lockKind(action)
	if op == "" {
		op = "write"
	}
	return arm.Errorf(statusConflict, CodeScopeLocked,
		"The scope '%s' cannot perform %s operation because following scope(s) are locked: '%s'. Please remove the lock and try again.",
		scope, op, l.Scope)
}
