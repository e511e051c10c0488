// Package policies serves Azure Policy in the ARM API: the
// Microsoft.Authorization policy types (policyDefinitions,
// policySetDefinitions, policyAssignments, policyExemptions), built-in
// definitions loaded from an offline policy pack, enforcement on every
// write (deny, append, modify, denyAction), and compliance: every resource
// evaluated on write and by a periodic scan, queried through
// Microsoft.PolicyInsights. The policy language itself is package policy.
package policies

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/identity"
	"github.com/citadel-cloud/citadel/internal/policy"
	"github.com/citadel-cloud/citadel/internal/resource"
)

const (
	namespace = "Microsoft.Authorization"
	insights  = "Microsoft.PolicyInsights"
)

// The api-versions clients send: az 2.45 uses 2021-06-01 for definitions
// and assignments, 2020-07-01-preview for exemptions, 2019-10-01 for
// states; the Azure Stack profile uses 2016-12-01.
var (
	policyVersions    = []string{"2023-04-01", "2022-06-01", "2021-06-01", "2020-09-01", "2019-09-01", "2019-06-01", "2019-01-01", "2018-05-01", "2018-03-01", "2016-12-01"}
	exemptionVersions = []string{"2022-07-01-preview", "2020-07-01-preview"}
	insightsVersions  = []string{"2024-10-01", "2022-04-01", "2019-10-01", "2018-04-04"}
)

// Config wires the provider.
type Config struct {
	Resources *resource.Service
	// Aliases resolve the fields of policy rules.
	Aliases *policy.Aliases
	// Pack, when set, holds built-in definitions and initiatives (JSON
	// files, in any folders): served at the tenant root as BuiltIn.
	Pack fs.FS
	// ScanInterval is how often every resource is evaluated again
	// (default 10 minutes).
	ScanInterval time.Duration
	// Groups looks up a principal's groups, for remediations acting on
	// their creator's behalf.
	Groups func(ctx context.Context, objectID string) ([]string, error)
	Logger *slog.Logger
}

// Provider serves the policy types and enforces and evaluates them.
type Provider struct {
	svc      *resource.Service
	aliases  *policy.Aliases
	interval time.Duration
	log      *slog.Logger

	builtIns    map[string]*resource.Resource // lower(id) → built-in definition or initiative
	definitions *resource.TypeMirror
	sets        *resource.TypeMirror
	assignments *resource.TypeMirror
	exemptions  *resource.TypeMirror

	mu           sync.Mutex
	snap         *snapshot
	versions     [4]uint64
	compiled     map[string]*assigned // by lower-case assignment id, for the definitions at compiledDefs
	compiledDefs [2]uint64            // versions of the definitions and initiatives mirrors

	parsedMu sync.Mutex
	parsed   map[string]parsed // definitions and initiatives by lower-case id

	states *stateStore
	dirty  chan dirty // resources to evaluate again
	// provisioning holds the lower-case ids of written resources that a
	// deployIfNotExists waits on to be provisioned: one wait each.
	provisioning sync.Map

	do     Doer
	groups func(ctx context.Context, objectID string) ([]string, error)
}

// Register declares the types and loads the policy pack.
func Register(cfg Config) (*Provider, error) {
	p := &Provider{svc: cfg.Resources, aliases: cfg.Aliases, interval: cfg.ScanInterval, log: cfg.Logger,
		builtIns: map[string]*resource.Resource{}, parsed: map[string]parsed{}, states: newStateStore(), dirty: make(chan dirty, 4096), groups: cfg.Groups}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.log = p.log.With("component", "policies")
	if p.interval <= 0 {
		p.interval = 10 * time.Minute
	}
	if err := p.loadPack(citadelPack()); err != nil {
		return nil, err
	}
	if cfg.Pack != nil {
		if err := p.loadPack(cfg.Pack); err != nil {
			return nil, err
		}
	}
	p.svc.Register(
		&resource.Type{
			Namespace: namespace, Name: "policyDefinitions", APIVersions: policyVersions, Scope: resource.ScopeAny,
			Validate: p.validateDefinition, Virtual: p.builtIn, List: p.listWithBuiltIns,
		},
		&resource.Type{
			Namespace: namespace, Name: "policySetDefinitions", APIVersions: policyVersions, Scope: resource.ScopeAny,
			Validate: p.validateSet, Virtual: p.builtIn, List: p.listWithBuiltIns,
		},
		&resource.Type{
			Namespace: namespace, Name: "policyAssignments", APIVersions: policyVersions, Scope: resource.ScopeAny,
			LocationOptional: true,
			NamePattern:      regexpName, NameRule: "A policy assignment's name has at most 64 characters, none of <>*%&:\\?.+/ or a control character.",
			ReadOnly: []string{"scope"},
			Validate: p.validateAssignment,
		},
		&resource.Type{
			Namespace: namespace, Name: "policyExemptions", APIVersions: exemptionVersions, Scope: resource.ScopeAny,
			Validate: p.validateExemption,
		},
		&resource.Type{
			Namespace: insights, Name: "policyStates", APIVersions: insightsVersions, Scope: resource.ScopeAny,
			Queries: map[string]func(context.Context, *resource.Request) (*resource.Response, error){
				"queryResults":      p.queryResults,
				"summarize":         p.summarize,
				"triggerEvaluation": p.triggerEvaluation,
			},
			Validate: func(context.Context, *resource.Write) error {
				return arm.Errorf(http.StatusMethodNotAllowed, "MethodNotAllowed", "Policy states are computed; they cannot be written.")
			},
		},
		p.remediationType(),
	)
	return p, nil
}

// Start loads the policy resources and keeps them current until ctx ends,
// and runs the evaluation of written resources and the periodic scan.
func (p *Provider) Start(ctx context.Context) error {
	var err error
	for _, m := range []struct {
		into **resource.TypeMirror
		name string
	}{
		{&p.definitions, "policyDefinitions"}, {&p.sets, "policySetDefinitions"},
		{&p.assignments, "policyAssignments"}, {&p.exemptions, "policyExemptions"},
	} {
		if *m.into, err = p.svc.MirrorType(ctx, namespace+"/"+m.name); err != nil {
			return err
		}
	}
	p.snapshot()
	go p.evaluateWrites(ctx)
	go p.scanEvery(ctx)
	return nil
}

// builtinPack holds Citadel's own built-in definitions, served with every
// operator's pack: the checks of what Citadel itself records (a machine's
// configuration drift).
//
//go:embed builtin
var builtinPack embed.FS

func citadelPack() fs.FS {
	sub, err := fs.Sub(builtinPack, "builtin")
	if err != nil {
		panic(err) // the embedded tree always has builtin/
	}
	return sub
}

// loadPack reads every JSON file of the pack as a built-in definition or
// initiative, at /providers/Microsoft.Authorization/{type}/{name}.
func (p *Provider) loadPack(pack fs.FS) error {
	return fs.WalkDir(pack, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.EqualFold(path.Ext(name), ".json") {
			return err
		}
		data, err := fs.ReadFile(pack, name)
		if err != nil {
			return err
		}
		var doc struct {
			Name       string         `json:"name"`
			Properties map[string]any `json:"properties"`
		}
		if err := json.Unmarshal(data, &doc); err != nil || doc.Properties == nil || doc.Name == "" {
			return fmt.Errorf("policy pack %s: not a policy definition with a name and properties", name)
		}
		typ := "policyDefinitions"
		if policy.IsSetDefinition(data) {
			typ = "policySetDefinitions"
			if _, err := policy.ParseSetDefinition(data); err != nil {
				return fmt.Errorf("policy pack %s: %w", name, err)
			}
		} else if _, err := policy.ParseDefinition(data, p.aliases); err != nil {
			return fmt.Errorf("policy pack %s: %w", name, err)
		}
		doc.Properties["policyType"] = "BuiltIn"
		id := "/providers/" + namespace + "/" + typ + "/" + doc.Name
		p.builtIns[strings.ToLower(id)] = &resource.Resource{ID: id, Name: doc.Name, Type: namespace + "/" + typ, Properties: doc.Properties}
		return nil
	})
}

// builtIn serves a built-in definition or initiative.
func (p *Provider) builtIn(_ context.Context, id arm.ID) (*resource.Resource, bool) {
	if id.Subscription != "" || id.Scope != nil {
		return nil, false
	}
	r, ok := p.builtIns[strings.ToLower(id.String())]
	return r, ok
}

// listWithBuiltIns lists the definitions (or initiatives) stored at a
// scope, and at the tenant root and every subscription also the built-ins,
// as Azure's lists do.
func (p *Provider) listWithBuiltIns(ctx context.Context, req *resource.Request, scope arm.ID) (*resource.Response, error) {
	typ := req.ID.Namespace + "/" + req.ID.Types[len(req.ID.Types)-1]
	var out []any
	if scope.ResourceGroup == "" && scope.Scope == nil {
		var ids []string
		for id, r := range p.builtIns {
			if strings.EqualFold(r.Type, typ) {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for _, id := range ids {
			out = append(out, p.builtIns[id])
		}
	}
	if scope.Subscription != "" {
		stored, err := p.svc.Resources(ctx, scope, typ)
		if err != nil {
			return nil, err
		}
		for _, r := range stored {
			out = append(out, r)
		}
	}
	return &resource.Response{Status: http.StatusOK, Body: map[string]any{"value": out}}, nil
}

// definitionByID finds a definition or initiative, stored or built in.
func (p *Provider) definitionByID(ctx context.Context, id string) (*resource.Resource, error) {
	if r, ok := p.builtIns[strings.ToLower(id)]; ok {
		return r, nil
	}
	rid, err := arm.ParseID(id)
	if err != nil {
		return nil, err
	}
	return p.svc.Lookup(ctx, rid)
}

// resourceJSON is a definition or initiative in the shape the policy
// package reads: without the framework's provisioningState.
func resourceJSON(r *resource.Resource) []byte {
	props := make(map[string]any, len(r.Properties))
	for k, v := range r.Properties {
		if k != "provisioningState" {
			props[k] = v
		}
	}
	b, _ := json.Marshal(map[string]any{"id": r.ID, "name": r.Name, "type": r.Type, "properties": props})
	return b
}

// invalid turns the policy package's load error into ARM's, naming the
// first problem's path and listing them all.
func invalid(code string, err error) error {
	var ie *policy.InvalidError
	if !errors.As(err, &ie) || len(ie.Errors) == 0 {
		return arm.Errorf(http.StatusBadRequest, code, "%s", err)
	}
	e := arm.Errorf(http.StatusBadRequest, code, "%s", ie.Error())
	e.Target = ie.Errors[0].Path
	for _, fe := range ie.Errors {
		d := arm.Errorf(http.StatusBadRequest, code, "%s", fe.Message)
		d.Target = fe.Path
		e.Details = append(e.Details, d)
	}
	return e
}

// atTenantOrSubscription refuses definitions anywhere else (management
// groups are not served).
func atTenantOrSubscription(id arm.ID, what string) error {
	if id.ResourceGroup != "" || id.Scope != nil {
		return arm.Errorf(http.StatusBadRequest, "InvalidCreatePolicyDefinitionRequest",
			"A %s is created at a subscription or the tenant root, not at '%s'.", what, id)
	}
	return nil
}

func (p *Provider) validateDefinition(_ context.Context, w *resource.Write) error {
	if err := atTenantOrSubscription(w.ID, "policy definition"); err != nil {
		return err
	}
	props := w.New.Properties
	if t, _ := props["policyType"].(string); t != "" && !strings.EqualFold(t, "Custom") {
		return arm.FieldError("properties.policyType", "Only Custom policy definitions can be created; '%s' ones come with the platform or a policy pack.", t)
	}
	props["policyType"] = "Custom"
	if _, ok := props["mode"]; !ok {
		props["mode"] = "Indexed"
	}
	if _, err := policy.ParseDefinition(resourceJSON(w.New), p.aliases); err != nil {
		return invalid("InvalidPolicyRule", err)
	}
	return nil
}

func (p *Provider) validateSet(ctx context.Context, w *resource.Write) error {
	if err := atTenantOrSubscription(w.ID, "policy set definition"); err != nil {
		return err
	}
	w.New.Properties["policyType"] = "Custom"
	set, err := policy.ParseSetDefinition(resourceJSON(w.New))
	if err != nil {
		return invalid("InvalidPolicySetDefinition", err)
	}
	for i, m := range set.Members {
		if _, err := p.definitionByID(ctx, m.DefinitionID); err != nil {
			return arm.FieldError(fmt.Sprintf("properties.policyDefinitions[%d].policyDefinitionId", i),
				"The policy definition '%s' was not found.", m.DefinitionID)
		}
	}
	return nil
}

// assignmentProperties are the properties of a policy assignment.
type assignmentProperties struct {
	DisplayName           string                     `json:"displayName"`
	Description           string                     `json:"description"`
	PolicyDefinitionID    string                     `json:"policyDefinitionId"`
	Scope                 string                     `json:"scope"`
	NotScopes             []string                   `json:"notScopes"`
	Parameters            map[string]json.RawMessage `json:"parameters"`
	EnforcementMode       string                     `json:"enforcementMode"`
	NonComplianceMessages []struct {
		Message                     string `json:"message"`
		PolicyDefinitionReferenceID string `json:"policyDefinitionReferenceId,omitempty"`
	} `json:"nonComplianceMessages"`
	Metadata          map[string]any `json:"metadata"`
	Overrides         []any          `json:"overrides"`
	ResourceSelectors []any          `json:"resourceSelectors"`
	DefinitionVersion string         `json:"definitionVersion"`
	ProvisioningState string         `json:"provisioningState"`
}

func (p *Provider) validateAssignment(ctx context.Context, w *resource.Write) error {
	var a assignmentProperties
	if err := resource.DecodeProperties(w.New, &a); err != nil {
		return err
	}
	if a.PolicyDefinitionID == "" {
		return arm.FieldError("properties.policyDefinitionId", "A policy assignment needs the policyDefinitionId of a definition or initiative.")
	}
	switch strings.ToLower(a.EnforcementMode) {
	case "":
		w.New.Properties["enforcementMode"] = "Default"
	case "default", "donotenforce":
	default:
		return arm.FieldError("properties.enforcementMode", "The enforcementMode '%s' is not valid: it must be Default or DoNotEnforce.", a.EnforcementMode)
	}
	for i, s := range a.NotScopes {
		if _, err := arm.ParseID(s); err != nil {
			return arm.FieldError(fmt.Sprintf("properties.notScopes[%d]", i), "The scope '%s' is not a valid resource id.", s)
		}
	}
	scope, _ := w.ID.Parent()
	w.New.Properties["scope"] = scopeString(scope)
	if _, err := p.compile(ctx, w.New, p.definitionByID); err != nil {
		return err
	}
	return p.assignIdentity(ctx, w)
}

// assignmentIdentity is an assignment's identity block.
type assignmentIdentity struct {
	Type                   string         `json:"type"`
	PrincipalID            string         `json:"principalId,omitempty"`
	TenantID               string         `json:"tenantId,omitempty"`
	UserAssignedIdentities map[string]any `json:"userAssignedIdentities,omitempty"`
}

// assignIdentity gives an assignment with a system-assigned identity its
// principal: an object ID derived from the assignment's ID, so it stays
// the same across updates and needs no directory object. Role
// assignments name it to let the assignment's deployIfNotExists act.
func (p *Provider) assignIdentity(ctx context.Context, w *resource.Write) error {
	if len(w.New.Identity) == 0 || string(w.New.Identity) == "null" {
		return nil
	}
	var id assignmentIdentity
	if err := json.Unmarshal(w.New.Identity, &id); err != nil {
		return arm.FieldError("identity", "The identity must be an object with a type.")
	}
	switch strings.ToLower(id.Type) {
	case "none":
		return nil
	case "systemassigned":
	case "userassigned":
		return arm.FieldError("identity.type", "User-assigned identities are not served: use SystemAssigned.")
	default:
		return arm.FieldError("identity.type", "The identity type '%s' is not valid: it must be SystemAssigned or None.", id.Type)
	}
	sub, err := p.svc.Subscription(ctx, w.ID.Subscription)
	if err != nil {
		return err
	}
	b, err := json.Marshal(assignmentIdentity{Type: "SystemAssigned", PrincipalID: managedIdentity(w.ID), TenantID: sub.TenantID})
	if err != nil {
		return err
	}
	w.New.Identity = b
	return nil
}

// managedIdentity is the object ID of an assignment's system-assigned
// identity.
func managedIdentity(assignment arm.ID) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("citadel:policyAssignment:"+strings.ToLower(assignment.String()))).String()
}

// identityOf is the principal an assignment's identity acts as; ok is
// false for an assignment without one.
func identityOf(a *resource.Resource) (who identity.Principal, ok bool) {
	var id assignmentIdentity
	if len(a.Identity) == 0 || json.Unmarshal(a.Identity, &id) != nil || id.PrincipalID == "" {
		return who, false
	}
	return identity.Principal{ObjectID: id.PrincipalID, TenantID: id.TenantID, Name: "policy assignment " + a.Name}, true
}

func (p *Provider) validateExemption(ctx context.Context, w *resource.Write) error {
	var e struct {
		PolicyAssignmentID           string   `json:"policyAssignmentId"`
		ExemptionCategory            string   `json:"exemptionCategory"`
		ExpiresOn                    string   `json:"expiresOn"`
		PolicyDefinitionReferenceIDs []string `json:"policyDefinitionReferenceIds"`
		DisplayName                  string   `json:"displayName"`
		Description                  string   `json:"description"`
		Metadata                     any      `json:"metadata"`
		AssignmentScopeValidation    string   `json:"assignmentScopeValidation"`
		ResourceSelectors            []any    `json:"resourceSelectors"`
		ProvisioningState            string   `json:"provisioningState"`
	}
	if err := resource.DecodeProperties(w.New, &e); err != nil {
		return err
	}
	if !strings.EqualFold(e.ExemptionCategory, "Waiver") && !strings.EqualFold(e.ExemptionCategory, "Mitigated") {
		return arm.FieldError("properties.exemptionCategory", "The exemptionCategory '%s' is not valid: it must be Waiver or Mitigated.", e.ExemptionCategory)
	}
	if e.ExpiresOn != "" {
		if _, err := time.Parse(time.RFC3339, e.ExpiresOn); err != nil {
			return arm.FieldError("properties.expiresOn", "The expiresOn '%s' is not an RFC 3339 time.", e.ExpiresOn)
		}
	}
	id, err := arm.ParseID(e.PolicyAssignmentID)
	if err != nil {
		return arm.FieldError("properties.policyAssignmentId", "The policyAssignmentId '%s' is not a resource id.", e.PolicyAssignmentID)
	}
	if _, err := p.svc.Lookup(ctx, id); err != nil {
		return arm.FieldError("properties.policyAssignmentId", "The policy assignment '%s' was not found.", e.PolicyAssignmentID)
	}
	return nil
}

// scopeString writes a scope as assignments show it ("/subscriptions/x",
// "/subscriptions/x/resourceGroups/y", a resource id).
func scopeString(scope arm.ID) string {
	if scope.IsZero() {
		return "/"
	}
	return scope.String()
}
