// Package authorization is the Microsoft.Authorization namespace: role
// definitions (Azure's and Citadel's built-in roles, and custom roles),
// role assignments, deny assignments and management locks. It declares
// the types to the resource framework and keeps the authz.Policy snapshot
// that the front door checks every request against, rebuilt whenever one
// of those resources changes.
package authorization

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/authz"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// Namespace is the provider namespace this package serves.
const Namespace = "Microsoft.Authorization"

// The api-versions clients send (arm-contract §3.5, §3.7).
var (
	assignmentVersions = []string{"2022-04-01", "2020-10-01-preview", "2020-08-01-preview", "2020-04-01-preview",
		"2020-03-01-preview", "2018-09-01-preview", "2018-01-01-preview", "2017-10-01-preview", "2015-07-01"}
	definitionVersions = []string{"2022-04-01", "2022-05-01-preview", "2018-01-01-preview", "2015-07-01"}
	lockVersions       = []string{"2020-05-01", "2017-04-01", "2016-09-01", "2015-01-01"}
	denyVersions       = []string{"2022-04-01", "2018-07-01-preview"}
	// PermissionsVersions are those of the Permissions API (what the
	// caller's roles allow at a scope), which the front door serves.
	PermissionsVersions = []string{"2022-04-01", "2018-01-01-preview", "2015-07-01"}
)

var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Provider serves Microsoft.Authorization and answers authorization
// questions.
type Provider struct {
	svc *resource.Service
	log *slog.Logger

	assignments, definitions, denies, locks *resource.TypeMirror

	mu       sync.Mutex
	policy   *authz.Policy
	versions [4]uint64 // of the mirrors the policy was built from
}

// New registers the namespace's types with svc.
func New(svc *resource.Service, log *slog.Logger) *Provider {
	p := &Provider{svc: svc, log: log.With("component", "authorization")}
	svc.Register(
		&resource.Type{
			Namespace: Namespace, Name: "roleAssignments", APIVersions: assignmentVersions, Scope: resource.ScopeAny,
			NamePattern: guidPattern, NameRule: "A role assignment's name must be a GUID.",
			ReadOnly: []string{"scope", "createdOn", "updatedOn", "createdBy", "updatedBy"},
			Validate: p.validateAssignment,
			List:     p.listAssignments,
		},
		&resource.Type{
			Namespace: Namespace, Name: "roleDefinitions", APIVersions: definitionVersions, Scope: resource.ScopeAny,
			NamePattern: guidPattern, NameRule: "A role definition's name must be a GUID.",
			ReadOnly: []string{"type", "createdOn", "updatedOn", "createdBy", "updatedBy"},
			Validate: p.validateDefinition,
			Virtual:  p.getDefinition,
			List:     p.listDefinitions,
		},
		&resource.Type{
			Namespace: Namespace, Name: "locks", APIVersions: lockVersions, Scope: resource.ScopeAny,
			Validate: validateLock,
		},
		&resource.Type{
			Namespace: Namespace, Name: "denyAssignments", APIVersions: denyVersions, Scope: resource.ScopeAny,
			NamePattern: guidPattern, NameRule: "A deny assignment's name must be a GUID.",
			Validate: validateDeny,
		},
	)
	return p
}

// Start loads the resources that decide authorization and keeps them
// current until ctx ends.
func (p *Provider) Start(ctx context.Context) error {
	var err error
	for _, m := range []struct {
		into **resource.TypeMirror
		name string
	}{
		{&p.assignments, "roleAssignments"}, {&p.definitions, "roleDefinitions"},
		{&p.denies, "denyAssignments"}, {&p.locks, "locks"},
	} {
		if *m.into, err = p.svc.MirrorType(ctx, Namespace+"/"+m.name); err != nil {
			return err
		}
	}
	_, err = p.build()
	return err
}

// Policy is the current authorization snapshot. It is rebuilt when a role
// definition, assignment, deny assignment or lock has changed; a change
// made on any replica shows within the watch's delay.
func (p *Provider) Policy() *authz.Policy {
	pol, err := p.build()
	if err != nil {
		p.log.Error("authorization policy not rebuilt; the previous one stays", "err", err)
	}
	return pol
}

func (p *Provider) build() (*authz.Policy, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	versions := [4]uint64{p.assignments.Version(), p.definitions.Version(), p.denies.Version(), p.locks.Version()}
	if p.policy != nil && versions == p.versions {
		return p.policy, nil
	}
	roles := authz.BuiltInRoles()
	known := map[string]bool{}
	for _, r := range roles {
		known[strings.ToLower(r.Name)] = true
	}
	defs, _ := p.definitions.All()
	for _, r := range defs {
		roles = append(roles, toRole(r))
		known[strings.ToLower(r.Name)] = true
	}
	var assignments []authz.Assignment
	all, _ := p.assignments.All()
	for _, r := range all {
		a := toAssignment(r)
		if !known[strings.ToLower(lastSegment(a.RoleDefinitionID))] {
			continue // its role was deleted: the assignment grants nothing
		}
		assignments = append(assignments, a)
	}
	var denies []authz.DenyAssignment
	ds, _ := p.denies.All()
	for _, r := range ds {
		denies = append(denies, toDeny(r))
	}
	var locks []authz.Lock
	ls, _ := p.locks.All()
	for _, r := range ls {
		locks = append(locks, toLock(r))
	}
	pol, err := authz.NewPolicy(roles, assignments, denies, locks)
	if err != nil {
		return p.policy, fmt.Errorf("authorization policy: %w", err)
	}
	p.policy, p.versions = pol, versions
	return pol, nil
}

func lastSegment(id string) string { return id[strings.LastIndexByte(id, '/')+1:] }

// scopeOf is the scope an extension resource lives at: the ID above
// "/providers/Microsoft.Authorization/…", "/" for the tenant root.
func scopeOf(id string) string {
	i := strings.LastIndex(strings.ToLower(id), "/providers/microsoft.authorization/")
	if i <= 0 {
		return "/"
	}
	return id[:i]
}

func str(props map[string]any, key string) string {
	s, _ := props[key].(string)
	return s
}

func strs(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func toAssignment(r *resource.Resource) authz.Assignment {
	return authz.Assignment{
		ID: r.ID, Name: r.Name, Scope: scopeOf(r.ID),
		RoleDefinitionID: str(r.Properties, "roleDefinitionId"),
		PrincipalID:      str(r.Properties, "principalId"),
		PrincipalType:    str(r.Properties, "principalType"),
	}
}

func toPermissions(v any) []authz.Permission {
	list, _ := v.([]any)
	out := make([]authz.Permission, 0, len(list))
	for _, x := range list {
		m, _ := x.(map[string]any)
		out = append(out, authz.Permission{
			Actions: strs(m["actions"]), NotActions: strs(m["notActions"]),
			DataActions: strs(m["dataActions"]), NotDataActions: strs(m["notDataActions"]),
		})
	}
	return out
}

func toRole(r *resource.Resource) authz.RoleDefinition {
	return authz.RoleDefinition{
		ID: r.ID, Name: r.Name, RoleName: str(r.Properties, "roleName"), Type: authz.RoleTypeCustom,
		Description: str(r.Properties, "description"), AssignableScopes: strs(r.Properties["assignableScopes"]),
		Permissions: toPermissions(r.Properties["permissions"]),
	}
}

func toDeny(r *resource.Resource) authz.DenyAssignment {
	child, _ := r.Properties["doNotApplyToChildScopes"].(bool)
	var principals, excluded []string
	for _, key := range []string{"principals", "excludePrincipals"} {
		list, _ := r.Properties[key].([]any)
		for _, x := range list {
			m, _ := x.(map[string]any)
			if key == "principals" {
				principals = append(principals, str(m, "id"))
			} else {
				excluded = append(excluded, str(m, "id"))
			}
		}
	}
	return authz.DenyAssignment{
		ID: r.ID, Scope: scopeOf(r.ID), Permissions: toPermissions(r.Properties["permissions"]),
		Principals: principals, ExcludePrincipals: excluded, DoNotApplyToChildScopes: child,
	}
}

func toLock(r *resource.Resource) authz.Lock {
	return authz.Lock{ID: r.ID, Scope: scopeOf(r.ID), Level: str(r.Properties, "level"), Notes: str(r.Properties, "notes")}
}

// Authorize checks that p may perform action at scope and that no lock
// forbids it, and returns the role that allowed it. Reads are never
// locked.
func (p *Provider) Authorize(who authz.Principal, action, scope string) (role string, err error) {
	pol := p.Policy()
	d := pol.Check(who, action, scope)
	if err := d.Err(who, action, scope); err != nil {
		return "", err
	}
	if l, locked := pol.LockFor(action, scope); locked {
		return d.Role, authz.LockError(l, action, scope)
	}
	return d.Role, nil
}

// CanRead reports whether who may read the resource id of type typ, for
// filtering lists. A subscription is also listed to whoever holds a role
// inside it, as in Azure.
func (p *Provider) CanRead(who authz.Principal, typ, id string) bool {
	pol := p.Policy()
	if pol.Check(who, authz.Operation(typ, http.MethodGet, ""), id).Allowed {
		return true
	}
	return strings.EqualFold(typ, "Microsoft.Resources/subscriptions") && pol.HasAssignmentWithin(who, id)
}

// Permissions lists what the roles who holds at scope allow.
func (p *Provider) Permissions(who authz.Principal, scope string) []authz.Permission {
	return p.Policy().Permissions(who, scope)
}

func badRequest(target, format string, args ...any) error {
	return arm.FieldError(target, format, args...)
}
