package authz

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
)

// Assignment is a Microsoft.Authorization/roleAssignments resource: the role
// RoleDefinitionID granted to PrincipalID at Scope and every scope below it.
type Assignment struct {
	ID               string
	Name             string // the GUID
	Scope            string // a resource ID; "/" is the tenant root
	RoleDefinitionID string // a full role definition ID or the role's GUID
	PrincipalID      string // object ID of a user, group or service principal
	PrincipalType    string // "User", "Group", "ServicePrincipal", "ForeignGroup" or "Device"
}

// DenyAssignment is a Microsoft.Authorization/denyAssignments resource: the
// operations its Permissions cover are refused to Principals (minus
// ExcludePrincipals) at Scope and, unless DoNotApplyToChildScopes, below it,
// whatever their role assignments grant.
type DenyAssignment struct {
	ID                      string
	Scope                   string
	Permissions             []Permission
	Principals              []string // object IDs; Everyone is every principal
	ExcludePrincipals       []string // object IDs of principals and groups it does not apply to
	DoNotApplyToChildScopes bool
}

// Everyone is the object ID that stands for every principal in
// DenyAssignment.Principals. It has no meaning in a role assignment.
const Everyone = "00000000-0000-0000-0000-000000000000"

// Lock is a Microsoft.Authorization/locks resource. It applies at Scope and
// below; see [Policy.LockFor].
type Lock struct {
	ID    string
	Scope string
	Level string // LockCanNotDelete or LockReadOnly
	Notes string
}

// Lock levels.
const (
	LockCanNotDelete = "CanNotDelete"
	LockReadOnly     = "ReadOnly"
)

// Principal is the caller: its object ID and the object IDs of the groups it
// is a member of, directly or not. Assignments to a group apply to its
// members.
type Principal struct {
	ObjectID string
	Groups   []string
}

// Decision is the outcome of [Policy.Check]. Reason names what decided it,
// for the activity log and for debugging; it is not shown to the client.
type Decision struct {
	Allowed bool
	Reason  string
	Role    string // the name of the role that allowed it, if any
}

// reasonNone is the Reason of the default deny.
const reasonNone = "no role assignment of the principal or its groups grants the action at the scope or above"

const (
	statusBadRequest = 400
	statusForbidden  = 403
	statusConflict   = 409
)

// Err returns nil if d allows, and otherwise the 403 AuthorizationFailed
// that ARM answers, worded as Azure words it. It names the caller, the action
// and the scope, never the reason.
func (d Decision) Err(p Principal, action, scope string) *arm.Error {
	if d.Allowed {
		return nil
	}
	return arm.Errorf(statusForbidden, arm.CodeAuthorizationFailed,
		"The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid.",
		p.ObjectID, p.ObjectID, action, scope)
}

// Policy is an immutable snapshot of role definitions, role and deny
// assignments and locks, indexed for [Policy.Check]. It is safe for
// concurrent use. Build a new one when any of them changes.
type Policy struct {
	roles      map[string]*role      // by lower-case GUID
	principals map[string]*principal // by lower-case object ID
	everyone   []*deny               // deny assignments to Everyone
	locks      []lock                // outermost scope first
}

// principal is what applies to one object ID.
type principal struct {
	grants []grant
	denies []*deny
}

type role struct {
	def   RoleDefinition
	perms []perm
}

// grant is an assignment, compiled.
type grant struct {
	scope  string // scopeKey
	role   *role
	reason string
}

// deny is a deny assignment, compiled.
type deny struct {
	scope    string // scopeKey
	children bool   // applies below scope too
	perms    []perm
	exclude  []string // lower case
	reason   string
}

type lock struct {
	scope string // scopeKey
	Lock
}

// NewPolicy validates and indexes a snapshot. It is an error for a role to
// lack a GUID or repeat one, for an assignment to name an unknown role, for a
// scope not to be a resource ID, for an action pattern to be empty, and for a
// lock level to be unknown; all problems are reported, joined. The Policy
// keeps no reference to the arguments.
func NewPolicy(roles []RoleDefinition, assignments []Assignment, denies []DenyAssignment, locks []Lock) (*Policy, error) {
	p := &Policy{
		roles:      make(map[string]*role, len(roles)),
		principals: make(map[string]*principal),
	}
	at := func(id string) *principal {
		id = lower(id)
		if p.principals[id] == nil {
			p.principals[id] = &principal{}
		}
		return p.principals[id]
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	for _, r := range roles {
		key := lower(r.Name)
		switch {
		case r.Name == "":
			bad("role definition %q: no name (GUID)", r.RoleName)
			continue
		case p.roles[key] != nil:
			bad("role definition %q: duplicate name %q", r.RoleName, r.Name)
			continue
		case r.ID != "" && roleKey(r.ID) != key:
			bad("role definition %q: ID %q does not end in its name %q", r.RoleName, r.ID, r.Name)
		case r.Type != RoleTypeBuiltIn && r.Type != RoleTypeCustom:
			bad("role definition %q: type %q is neither %s nor %s", r.RoleName, r.Type, RoleTypeBuiltIn, RoleTypeCustom)
		}
		for _, s := range r.AssignableScopes {
			if err := validScope(s); err != nil {
				bad("role definition %q: assignable scope: %w", r.RoleName, err)
			}
		}
		perms, err := compilePermissions(r.Permissions)
		if err != nil {
			bad("role definition %q: %w", r.RoleName, err)
		}
		p.roles[key] = &role{def: r.clone(), perms: perms}
	}

	for _, a := range assignments {
		r := p.roles[roleKey(a.RoleDefinitionID)]
		switch {
		case r == nil:
			bad("role assignment %q: unknown role definition %q", a.ID, a.RoleDefinitionID)
			continue
		case a.PrincipalID == "":
			bad("role assignment %q: no principal ID", a.ID)
			continue
		}
		if err := validScope(a.Scope); err != nil {
			bad("role assignment %q: %w", a.ID, err)
			continue
		}
		id := cmp.Or(a.ID, a.Name)
		pr := at(a.PrincipalID)
		pr.grants = append(pr.grants, grant{
			scope: scopeKey(a.Scope),
			role:  r,
			reason: fmt.Sprintf("role assignment '%s' grants '%s' (%s) to '%s' at scope '%s'",
				id, r.def.RoleName, r.def.Name, a.PrincipalID, a.Scope),
		})
	}

	for _, d := range denies {
		if err := validScope(d.Scope); err != nil {
			bad("deny assignment %q: %w", d.ID, err)
			continue
		}
		if len(d.Principals) == 0 || slices.Contains(d.Principals, "") {
			bad("deny assignment %q: principals %q: want object IDs", d.ID, d.Principals)
			continue
		}
		perms, err := compilePermissions(d.Permissions)
		if err != nil {
			bad("deny assignment %q: %w", d.ID, err)
			continue
		}
		c := &deny{
			scope:    scopeKey(d.Scope),
			children: !d.DoNotApplyToChildScopes,
			perms:    perms,
			reason:   fmt.Sprintf("deny assignment '%s' at scope '%s'", d.ID, d.Scope),
		}
		for _, x := range d.ExcludePrincipals {
			c.exclude = append(c.exclude, lower(x))
		}
		for _, pid := range d.Principals {
			if lower(pid) == Everyone {
				p.everyone = append(p.everyone, c)
				continue
			}
			pr := at(pid)
			pr.denies = append(pr.denies, c)
		}
	}

	for _, l := range locks {
		if err := validScope(l.Scope); err != nil {
			bad("lock %q: %w", l.ID, err)
			continue
		}
		if l.Level != LockCanNotDelete && l.Level != LockReadOnly {
			bad("lock %q: level %q is neither %s nor %s", l.ID, l.Level, LockCanNotDelete, LockReadOnly)
			continue
		}
		p.locks = append(p.locks, lock{scope: scopeKey(l.Scope), Lock: l})
	}
	slices.SortStableFunc(p.locks, func(a, b lock) int { return len(a.scope) - len(b.scope) })

	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

// Check decides whether principal who may perform action, an ARM operation
// name such as "Microsoft.NetworkCloud/bareMetalMachines/powerOff/action",
// over scope, a resource ID. Names and scopes compare case-insensitively.
//
// A deny assignment to who, to one of its groups or to Everyone, that
// excludes none of them, sits at scope or (unless it does not apply to child
// scopes) above it, and covers action, refuses. Otherwise a role assignment
// to who or one of its groups at scope or above, whose role covers action,
// allows. Otherwise the answer is no. A list shows only the items for which
// Check allows their read operation.
func (p *Policy) Check(who Principal, action, scope string) Decision {
	if action == "" {
		return Decision{Reason: "no action"}
	}
	action, scope = lower(action), scopeKey(scope)
	// What applies to who and its groups; on the stack for up to 15 groups.
	var buf [16]*principal
	applies := buf[:0]
	for i := range len(who.Groups) + 1 {
		id := who.ObjectID
		if i > 0 {
			id = who.Groups[i-1]
		}
		if pr := p.principals[lower(id)]; pr != nil {
			applies = append(applies, pr)
		}
	}
	for _, d := range p.everyone {
		if d.applies(who, action, scope) {
			return Decision{Reason: d.reason}
		}
	}
	for _, pr := range applies {
		for _, d := range pr.denies {
			if d.applies(who, action, scope) {
				return Decision{Reason: d.reason}
			}
		}
	}
	for _, pr := range applies {
		for _, g := range pr.grants {
			if covers(g.scope, scope) && coversAction(g.role.perms, action) {
				return Decision{Allowed: true, Reason: g.reason, Role: g.role.def.RoleName}
			}
		}
	}
	return Decision{Reason: reasonNone}
}

func (d *deny) applies(who Principal, action, scope string) bool {
	if d.children && !covers(d.scope, scope) || !d.children && d.scope != scope {
		return false
	}
	for _, x := range d.exclude {
		if strings.EqualFold(x, who.ObjectID) || slices.ContainsFunc(who.Groups, func(g string) bool { return strings.EqualFold(x, g) }) {
			return false
		}
	}
	return coversAction(d.perms, action)
}

// Role returns the role definition with the given full ID or GUID.
func (p *Policy) Role(id string) (RoleDefinition, bool) {
	r := p.roles[roleKey(id)]
	if r == nil {
		return RoleDefinition{}, false
	}
	return r.def.clone(), true
}

// roleKey is the lower-case GUID at the end of a role definition ID, or the
// GUID itself.
func roleKey(id string) string {
	id = strings.TrimRight(id, "/")
	return lower(id[strings.LastIndexByte(id, '/')+1:])
}

func validScope(s string) error {
	_, err := arm.ParseID(s)
	return err
}

// Permissions returns the permissions of every role assigned to who (or
// one of its groups) at scope or above it, one entry per permission of
// each role, as ARM's Permissions API lists them. Deny assignments are not
// reflected: like Azure's, the answer is what the roles grant.
func (p *Policy) Permissions(who Principal, scope string) []Permission {
	scope = scopeKey(scope)
	var out []Permission
	seen := map[*role]bool{}
	for i := range len(who.Groups) + 1 {
		id := who.ObjectID
		if i > 0 {
			id = who.Groups[i-1]
		}
		pr := p.principals[lower(id)]
		if pr == nil {
			continue
		}
		for _, g := range pr.grants {
			if covers(g.scope, scope) && !seen[g.role] {
				seen[g.role] = true
				out = append(out, clonePermissions(g.role.def.Permissions)...)
			}
		}
	}
	return out
}

// HasAssignmentWithin reports whether who (or one of its groups) holds a
// role assignment at scope or anywhere below it. Azure lists a
// subscription to everyone who holds a role inside it, so that a user
// with access to one group can still find (and log in to) its
// subscription.
func (p *Policy) HasAssignmentWithin(who Principal, scope string) bool {
	scope = scopeKey(scope)
	for i := range len(who.Groups) + 1 {
		id := who.ObjectID
		if i > 0 {
			id = who.Groups[i-1]
		}
		if pr := p.principals[lower(id)]; pr != nil {
			for _, g := range pr.grants {
				if covers(scope, g.scope) {
					return true
				}
			}
		}
	}
	return false
}
