package authorization

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/authz"
	"github.com/citadel-cloud/citadel/internal/resource"
)

var principalTypes = []string{"User", "Group", "ServicePrincipal", "ForeignGroup", "Device"}

func (p *Provider) validateAssignment(_ context.Context, w *resource.Write) error {
	props := w.New.Properties
	roleID := str(props, "roleDefinitionId")
	if roleID == "" {
		return badRequest("properties.roleDefinitionId", "roleDefinitionId is required.")
	}
	pol := p.Policy()
	role, ok := pol.Role(roleID)
	if !ok {
		return arm.Errorf(http.StatusBadRequest, "RoleDefinitionDoesNotExist",
			"The specified role definition with ID '%s' does not exist.", lastSegment(roleID))
	}
	scope := scopeOf(w.New.ID)
	if !role.AssignableAt(scope) {
		return arm.Errorf(http.StatusBadRequest, "RoleDefinitionNotAssignableAtScope",
			"The role definition '%s' is not assignable at scope '%s'.", role.RoleName, scope)
	}
	principal := str(props, "principalId")
	if !guidPattern.MatchString(principal) {
		return badRequest("properties.principalId", "principalId must be the object ID (a GUID) of a user, group or service principal, not '%s'.", principal)
	}
	switch pt := str(props, "principalType"); {
	case pt == "":
		props["principalType"] = "User"
	case !slices.Contains(principalTypes, pt):
		return badRequest("properties.principalType", "principalType must be one of %s, not '%s'.", strings.Join(principalTypes, ", "), pt)
	}
	if w.Old != nil && (!strings.EqualFold(lastSegment(str(w.Old.Properties, "roleDefinitionId")), lastSegment(roleID)) ||
		!strings.EqualFold(str(w.Old.Properties, "principalId"), principal)) {
		return arm.Errorf(http.StatusBadRequest, "RoleAssignmentUpdateNotPermitted",
			"Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
	}
	all, _ := p.assignments.All()
	for _, other := range all {
		a := toAssignment(other)
		if !strings.EqualFold(a.Name, w.New.Name) && strings.EqualFold(a.PrincipalID, principal) &&
			strings.EqualFold(lastSegment(a.RoleDefinitionID), role.Name) && strings.EqualFold(a.Scope, scope) {
			return arm.Errorf(http.StatusConflict, "RoleAssignmentExists", "The role assignment already exists.")
		}
	}
	stamp(props, w.New.SystemData)
	props["scope"] = scope
	return nil
}

// stamp sets the created/updated properties Microsoft.Authorization
// resources carry besides systemData.
func stamp(props map[string]any, sd *resource.SystemData) {
	if sd == nil {
		return
	}
	props["createdOn"] = sd.CreatedAt.Format(time.RFC3339Nano)
	props["updatedOn"] = sd.LastModifiedAt.Format(time.RFC3339Nano)
	props["createdBy"] = sd.CreatedBy
	props["updatedBy"] = sd.LastModifiedBy
}

func (p *Provider) validateDefinition(_ context.Context, w *resource.Write) error {
	for _, r := range authz.BuiltInRoles() {
		if strings.EqualFold(r.Name, w.New.Name) {
			return arm.Errorf(http.StatusBadRequest, "RoleDefinitionUpdateNotPermitted",
				"The built-in role '%s' cannot be changed or deleted.", r.RoleName)
		}
	}
	props := w.New.Properties
	if strings.TrimSpace(str(props, "roleName")) == "" {
		return badRequest("properties.roleName", "roleName is required.")
	}
	perms, _ := props["permissions"].([]any)
	if len(perms) == 0 {
		return badRequest("properties.permissions", "A role needs at least one permissions entry.")
	}
	for i, raw := range perms {
		m, ok := raw.(map[string]any)
		if !ok {
			return badRequest("properties.permissions", "permissions[%d] must be an object.", i)
		}
		for _, key := range []string{"actions", "notActions", "dataActions", "notDataActions"} {
			for j, a := range strs(m[key]) {
				if strings.TrimSpace(a) == "" {
					return badRequest("properties.permissions", "permissions[%d].%s[%d] is empty.", i, key, j)
				}
			}
		}
	}
	scopes := strs(props["assignableScopes"])
	if len(scopes) == 0 {
		return badRequest("properties.assignableScopes", "A custom role needs at least one assignable scope.")
	}
	for _, s := range scopes {
		if s == "/" {
			continue
		}
		if _, err := arm.ParseID(s); err != nil {
			return badRequest("properties.assignableScopes", "'%s' is not a valid scope.", s)
		}
	}
	props["type"] = authz.RoleTypeCustom
	stamp(props, w.New.SystemData)
	return nil
}

// builtIn is a built-in role as a resource seen at scope (Azure gives
// built-in roles an ID under the scope they are read at).
func builtIn(r authz.RoleDefinition, scope string) *resource.Resource {
	prefix := ""
	if scope != "/" {
		prefix = scope
	}
	perms := make([]any, len(r.Permissions))
	for i, p := range r.Permissions {
		perms[i] = map[string]any{
			"actions": nonNil(p.Actions), "notActions": nonNil(p.NotActions),
			"dataActions": nonNil(p.DataActions), "notDataActions": nonNil(p.NotDataActions),
		}
	}
	return &resource.Resource{
		ID:   prefix + "/providers/Microsoft.Authorization/roleDefinitions/" + r.Name,
		Name: r.Name, Type: Namespace + "/roleDefinitions",
		Properties: map[string]any{
			"roleName": r.RoleName, "type": r.Type, "description": r.Description,
			"assignableScopes": r.AssignableScopes, "permissions": perms,
		},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// getDefinition serves the built-in roles, which exist at every scope
// without being stored.
func (p *Provider) getDefinition(_ context.Context, id arm.ID) (*resource.Resource, bool) {
	for _, r := range authz.BuiltInRoles() {
		if strings.EqualFold(r.Name, id.Name()) {
			return builtIn(r, scopeOf(id.String())), true
		}
	}
	return nil, false
}

// listDefinitions lists the roles that can be assigned at scope: the
// built-in ones and the custom ones whose assignable scopes cover it.
// $filter takes roleName eq '…' and type eq 'BuiltInRole'|'CustomRole'.
func (p *Provider) listDefinitions(ctx context.Context, req *resource.Request, scope arm.ID) (*resource.Response, error) {
	if err := p.svc.CheckExists(ctx, scope); err != nil {
		return nil, err
	}
	name, typ, err := parseDefinitionFilter(req.Filter)
	if err != nil {
		return nil, err
	}
	at := scope.String()
	var out []*resource.Resource
	keep := func(r *resource.Resource) {
		if (name == "" || strings.EqualFold(str(r.Properties, "roleName"), name)) &&
			(typ == "" || strings.EqualFold(str(r.Properties, "type"), typ)) {
			out = append(out, r)
		}
	}
	for _, r := range authz.BuiltInRoles() {
		keep(builtIn(r, at))
	}
	custom, _ := p.definitions.All()
	for _, r := range custom {
		if toRole(r).AssignableAt(at) {
			keep(r)
		}
	}
	return &resource.Response{Status: http.StatusOK, Body: resource.Page[*resource.Resource]{Value: nonNilList(out)}}, nil
}

func nonNilList(rs []*resource.Resource) []*resource.Resource {
	if rs == nil {
		return []*resource.Resource{}
	}
	return rs
}

// parseDefinitionFilter reads roleName eq '…' and type eq '…', joined by
// "and".
func parseDefinitionFilter(f string) (roleName, typ string, err error) {
	if strings.TrimSpace(f) == "" {
		return "", "", nil
	}
	for _, clause := range strings.Split(f, " and ") {
		field, value, ok := strings.Cut(strings.TrimSpace(clause), " eq ")
		value = strings.TrimSpace(value)
		if !ok || len(value) < 2 || value[0] != '\'' || value[len(value)-1] != '\'' {
			return "", "", arm.Errorf(http.StatusBadRequest, arm.CodeBadRequest, "The $filter '%s' is invalid: expected roleName eq '…' or type eq '…'.", f)
		}
		value = strings.ReplaceAll(value[1:len(value)-1], "''", "'")
		switch strings.ToLower(strings.TrimSpace(field)) {
		case "rolename":
			roleName = value
		case "type":
			typ = value
		default:
			return "", "", arm.Errorf(http.StatusBadRequest, arm.CodeBadRequest, "The $filter '%s' is invalid: unknown field '%s'.", f, field)
		}
	}
	return roleName, typ, nil
}

// listAssignments lists the role assignments that apply at scope: at,
// above and below it, or with atScope() at and above it only.
func (p *Provider) listAssignments(ctx context.Context, req *resource.Request, scope arm.ID) (*resource.Response, error) {
	if err := p.svc.CheckExists(ctx, scope); err != nil {
		return nil, err
	}
	f, err := authz.ParseAssignmentFilter(req.Filter)
	if err != nil {
		return nil, err
	}
	at := scope.String()
	all, _ := p.assignments.All()
	out := []*resource.Resource{}
	for _, r := range all {
		if f.Match(toAssignment(r), at, nil) && (req.CanRead == nil || req.CanRead(r.Type, r.ID)) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *resource.Resource) int {
		return strings.Compare(strings.ToLower(a.ID), strings.ToLower(b.ID))
	})
	return &resource.Response{Status: http.StatusOK, Body: resource.Page[*resource.Resource]{Value: out}}, nil
}

func validateLock(_ context.Context, w *resource.Write) error {
	if name := w.New.Name; len(name) > 90 || strings.ContainsAny(name, `<>*%&:\?.+/`) {
		return arm.Errorf(http.StatusBadRequest, arm.CodeInvalidResourceName,
			"The lock name '%s' is invalid: at most 90 characters, none of <>*%%&:\\?.+/.", name)
	}
	level := str(w.New.Properties, "level")
	switch {
	case strings.EqualFold(level, authz.LockCanNotDelete):
		w.New.Properties["level"] = authz.LockCanNotDelete
	case strings.EqualFold(level, authz.LockReadOnly):
		w.New.Properties["level"] = authz.LockReadOnly
	default:
		return badRequest("properties.level", "level must be CanNotDelete or ReadOnly, not '%s'.", level)
	}
	if len(str(w.New.Properties, "notes")) > 512 {
		return badRequest("properties.notes", "notes are at most 512 characters.")
	}
	return nil
}

// validateDeny lets only the control plane itself write deny assignments:
// they protect what the system manages.
func validateDeny(_ context.Context, w *resource.Write) error {
	if w.New.SystemData == nil || w.New.SystemData.LastModifiedByType != resource.SystemCaller.Type {
		return arm.Errorf(http.StatusBadRequest, "DenyAssignmentsAreReadOnly",
			"Deny assignments are created by the system only.")
	}
	return nil
}
