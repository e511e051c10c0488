// Package deploy serves Microsoft.Resources/deployments: ARM template
// deployments at resource-group and subscription scope, and the template
// specs (Microsoft.Resources/templateSpecs) they can deploy, which hold
// linked templates inside the boundary. A PUT validates
// the template and starts a long-running operation in which the engine
// creates the template's resources in dependency order, in parallel where
// dependsOn allows, each through the front door on behalf of the caller
// who deployed, so RBAC, locks, validation and the activity log apply to
// every resource exactly as to a direct call. validate and whatIf answer
// without changing anything. The template language itself is package
// template.
package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/armexpr"
	"github.com/citadel-cloud/citadel/internal/authz"
	"github.com/citadel-cloud/citadel/internal/identity"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/template"
)

// APIVersions are the versions of Microsoft.Resources/deployments served:
// 2021-04-01 is what az 2.45 and the Go SDK send.
var APIVersions = []string{"2024-03-01", "2022-09-01", "2021-04-01", "2020-10-01", "2020-06-01", "2019-10-01"}

// Doer serves an ARM request inside the server on behalf of a principal
// (the front door's Do).
type Doer interface {
	Do(ctx context.Context, p identity.Principal, correlationID, method, pathAndQuery string, body []byte) (*resource.Response, error)
}

// Authorizer says whether a principal may perform an action at a scope.
type Authorizer interface {
	Authorize(who authz.Principal, action, scope string) (role string, err error)
}

// Config wires the provider.
type Config struct {
	Resources *resource.Service
	Authz     Authorizer
	// Groups looks up the groups of a principal whose token had too many
	// to carry, and of the deployer when the deployment resumes.
	Groups func(ctx context.Context, objectID string) ([]string, error)
	Logger *slog.Logger
	// Parallel bounds how many resources of one deployment are created at
	// once (default 8).
	Parallel int
}

// Provider serves deployments.
type Provider struct {
	svc      *resource.Service
	authz    Authorizer
	groups   func(ctx context.Context, objectID string) ([]string, error)
	log      *slog.Logger
	parallel int
	do       Doer
}

// Register declares Microsoft.Resources/deployments and its operations.
// Attach must give it the front door before the operations controller
// runs.
func Register(cfg Config) *Provider {
	p := &Provider{svc: cfg.Resources, authz: cfg.Authz, groups: cfg.Groups, log: cfg.Logger, parallel: cfg.Parallel}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.log = p.log.With("component", "deploy")
	if p.parallel <= 0 {
		p.parallel = 8
	}
	p.registerTemplateSpecs()
	p.svc.Register(&resource.Type{
		Namespace:        "Microsoft.Resources",
		Name:             "deployments",
		APIVersions:      APIVersions,
		Scope:            resource.ScopeAny,
		LocationOptional: true,
		NamePattern:      regexp.MustCompile(`^[-\w._()]{1,64}$`),
		NameRule:         "It must have 1 to 64 letters, digits, '-', '_', '.', '(' or ')'.",
		ReadOnly:         []string{cancelRequested, "correlationId", "timestamp", "duration", "outputs", "outputResources", "dependencies", "providers", "templateHash", "error", "validatedResources"},
		Sensitive:        []string{"template", "secureParameters", specSnapshot},
		LenientBody:      true,
		Validate:         p.validatePut,
		Provision:        p.provision,
		Queries: map[string]func(context.Context, *resource.Request) (*resource.Response, error){
			"validate": p.validateQuery,
			"whatIf":   p.whatIf,
			"cancel":   p.cancel,
		},
	}, &resource.Type{
		Namespace:     "Microsoft.Resources",
		Name:          "deployments/operations",
		APIVersions:   APIVersions,
		Scope:         resource.ScopeAny,
		SystemManaged: true,
	})
	return p
}

// Attach gives the provider the front door it creates resources through.
func (p *Provider) Attach(d Doer) { p.do = d }

// cancelRequested is the property cancel sets on a running deployment;
// the engine starts no resource after it sees it.
const cancelRequested = "cancelRequested"

// properties is a deployment's request (arm-contract §3.6).
type properties struct {
	Mode                        string                     `json:"mode"`
	Template                    map[string]any             `json:"template"`
	TemplateLink                map[string]any             `json:"templateLink"`
	Parameters                  map[string]json.RawMessage `json:"parameters"`
	ParametersLink              map[string]any             `json:"parametersLink"`
	DebugSetting                map[string]any             `json:"debugSetting"`
	OnErrorDeployment           *onError                   `json:"onErrorDeployment"`
	ExpressionEvaluationOptions map[string]any             `json:"expressionEvaluationOptions"`
	SecureParameters            map[string]any             `json:"secureParameters"`
	TemplateSpecSnapshot        map[string]any             `json:"templateSpecSnapshot"`
	CancelRequested             bool                       `json:"cancelRequested"`
	ProvisioningState           string                     `json:"provisioningState"`
	// Set by the engine, ignored on input.
	CorrelationID      string         `json:"correlationId"`
	Timestamp          string         `json:"timestamp"`
	Duration           string         `json:"duration"`
	Outputs            map[string]any `json:"outputs"`
	OutputResources    []any          `json:"outputResources"`
	Dependencies       []any          `json:"dependencies"`
	Providers          []any          `json:"providers"`
	TemplateHash       string         `json:"templateHash"`
	Error              any            `json:"error"`
	ValidatedResources []any          `json:"validatedResources"`
}

// onError is onErrorDeployment: what to redeploy when this deployment
// fails; provisioningState is the answer's, ignored on input.
type onError struct {
	Type              string `json:"type"`
	DeploymentName    string `json:"deploymentName,omitempty"`
	ProvisioningState string `json:"provisioningState,omitempty"`
}

// request is a deployment as the engine needs it: the parsed template and
// the parameter values, secure ones included.
type request struct {
	props  properties
	tmpl   *template.Template
	params map[string]any
	source []byte // the template as sent, for templateHash
	// spec is the template spec version deployed (templateLink.id), as
	// the deployment's snapshot of it keeps it.
	spec *specTemplates
	// who is the deployer, who must be allowed to read every template
	// spec version the deployment reads.
	who identity.Principal
}

// specSnapshot is the hidden property in which a deployment from a
// template spec version keeps the version's templates.
const specSnapshot = "templateSpecSnapshot"

// parse reads a deployment's properties: parseRequest, and the template
// spec version a templateLink.id names, from the deployment's snapshot
// when it has one, otherwise from the store (read as who).
func (p *Provider) parse(ctx context.Context, raw map[string]any, who identity.Principal) (*request, error) {
	r, err := parseRequest(raw)
	if err != nil {
		return nil, err
	}
	r.who = who
	link := r.props.TemplateLink
	if link == nil {
		return r, nil
	}
	if r.props.TemplateSpecSnapshot != nil {
		if r.spec, err = specFromSnapshot(r.props.TemplateSpecSnapshot); err != nil {
			return nil, err
		}
	} else {
		s, _ := link["id"].(string)
		id, err := arm.ParseID(s)
		if err != nil {
			return nil, arm.FieldError("properties.templateLink.id", "'%s' is not a resource ID: %s", s, err)
		}
		if r.spec, err = p.readSpec(ctx, id, who); err != nil {
			return nil, err
		}
	}
	r.source = r.spec.main
	if r.tmpl, err = template.Parse(r.source); err != nil {
		return nil, invalidTemplate(err)
	}
	return r, nil
}

// parseRequest reads a deployment's properties. Secure parameter values
// come from secureParameters, where validatePut moved them. The template
// of a deployment from a template spec version is left for parse.
func parseRequest(raw map[string]any) (*request, error) {
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	var r request
	if err := arm.DecodeStrict(b, &r.props); err != nil {
		if e, ok := err.(*arm.Error); ok && e.Target != "" {
			e.Target = "properties." + e.Target
		}
		return nil, err
	}
	switch strings.ToLower(r.props.Mode) {
	case "":
		r.props.Mode = "Incremental"
	case "incremental":
		r.props.Mode = "Incremental"
	case "complete":
		r.props.Mode = "Complete"
	default:
		return nil, arm.FieldError("properties.mode", "The deployment mode '%s' is not valid: it must be Incremental or Complete.", r.props.Mode)
	}
	link := r.props.TemplateLink
	switch {
	case link != nil && (link["uri"] != nil || link["id"] == nil):
		return nil, arm.FieldError("properties.templateLink",
			"A linked template cannot be fetched: the boundary has no connection to the outside. Deploy a template spec version (templateLink.id), or send the template in properties.template.")
	case r.props.ParametersLink != nil:
		return nil, arm.FieldError("properties.parametersLink",
			"A parameters link cannot be fetched: the boundary has no connection to the outside. Send the values in properties.parameters.")
	case link == nil && r.props.Template == nil:
		return nil, arm.FieldError("properties.template", "The deployment has no template: properties.template or properties.templateLink is required.")
	case link == nil:
		if r.source, err = json.Marshal(r.props.Template); err != nil {
			return nil, err
		}
		if r.tmpl, err = template.Parse(r.source); err != nil {
			return nil, invalidTemplate(err)
		}
	}
	r.params = map[string]any{}
	for name, v := range r.props.Parameters {
		var p struct {
			Value     json.RawMessage `json:"value"`
			Reference any             `json:"reference"`
			Type      string          `json:"type"`
		}
		if err := json.Unmarshal(v, &p); err != nil {
			return nil, arm.FieldError("properties.parameters."+name, "The parameter '%s' must be an object with a value.", name)
		}
		switch {
		case p.Reference != nil:
			return nil, arm.FieldError("properties.parameters."+name+".reference",
				"The parameter '%s' refers to a Key Vault secret; Citadel has no Key Vault: pass the value.", name)
		case p.Value == nil:
			continue // a secure value kept in secureParameters, or none
		}
		val, err := armexpr.ParseJSON(p.Value)
		if err != nil {
			return nil, arm.FieldError("properties.parameters."+name+".value", "The value of parameter '%s' is not valid JSON.", name)
		}
		r.params[name] = val
	}
	for name, v := range r.props.SecureParameters {
		r.params[name] = v
	}
	return &r, nil
}

// invalidTemplate is ARM's answer to a template that cannot be deployed.
func invalidTemplate(err error) *arm.Error {
	var ae *arm.Error
	if errors.As(err, &ae) {
		return ae
	}
	e := arm.Errorf(http.StatusBadRequest, "InvalidTemplate", "Deployment template validation failed: '%s'.", err.Error())
	var pe *template.ParseError
	if errors.As(err, &pe) {
		e.Target = pe.Path
	}
	return e
}

// context is where a deployment runs.
func (p *Provider) context(ctx context.Context, id arm.ID, location string) (template.Context, error) {
	c := template.Context{SubscriptionID: id.Subscription, DeploymentName: id.Name(), Location: location}
	sub, err := p.svc.Subscription(ctx, id.Subscription)
	if err != nil {
		return c, err
	}
	c.TenantID = sub.TenantID
	if id.ResourceGroup == "" {
		c.Scope = template.SubscriptionScope
		if c.Location == "" {
			return c, arm.FieldError("location", "A subscription deployment needs a location.")
		}
		return c, nil
	}
	c.Scope = template.ResourceGroupScope
	c.ResourceGroup = id.ResourceGroup
	rg, err := p.svc.Lookup(ctx, arm.ID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup})
	if err != nil {
		return c, err
	}
	c.ResourceGroup = rg.Name
	c.Location = rg.Location
	return c, nil
}

// expand expands a deployment's template where it runs.
func (p *Provider) expand(ctx context.Context, id arm.ID, location string, r *request) (*template.Deployment, error) {
	c, err := p.context(ctx, id, location)
	if err != nil {
		return nil, err
	}
	opts := template.Options{Context: c, Parameters: r.params,
		Load: func(loc string) ([]byte, error) { return p.loadLinked(ctx, r, loc) }}
	if r.spec != nil {
		opts.Source = specLocation(r.spec.id)
	}
	d, err := template.Expand(r.tmpl, opts)
	if err != nil {
		return nil, invalidTemplate(err)
	}
	return d, nil
}

// checkScope refuses deployments anywhere but a subscription or a group.
func checkScope(id arm.ID) error {
	if id.Subscription == "" || id.Scope != nil {
		return arm.Errorf(http.StatusBadRequest, "InvalidDeploymentScope",
			"Deployments are served at subscription and resource group scope, not at the scope of '%s'.", id)
	}
	return nil
}

// validatePut checks a deployment's template and parameters before the
// deployment is accepted, and moves secure parameter values out of what
// responses show.
func (p *Provider) validatePut(ctx context.Context, w *resource.Write) error {
	if err := checkScope(w.ID); err != nil {
		return err
	}
	w.New.Properties["secureParameters"] = nil
	w.New.Properties[specSnapshot] = nil // read the template spec version again
	who, err := p.principal(ctx, w.Caller)
	if err != nil {
		return err
	}
	r, err := p.parse(ctx, w.New.Properties, who)
	if err != nil {
		return err
	}
	if _, err := p.expand(ctx, w.ID, w.New.Location, r); err != nil {
		return err
	}
	if r.spec != nil {
		snap, err := r.spec.snapshot()
		if err != nil {
			return err
		}
		w.New.Properties[specSnapshot] = snap
		w.New.Properties["template"] = nil // the version's, in the snapshot
	}
	w.New.Properties["mode"] = r.props.Mode
	shown, secure := splitParameters(r)
	w.New.Properties["parameters"] = shown
	w.New.Properties["secureParameters"] = secure
	w.New.Properties["templateHash"] = templateHash(r.source)
	for _, k := range []string{cancelRequested, "outputs", "outputResources", "dependencies", "providers", "error", "duration", "correlationId", "timestamp", "validatedResources"} {
		delete(w.New.Properties, k)
	}
	return nil
}

// splitParameters gives the parameters as responses show them (with
// their types, secure values left out) and the secure values.
func splitParameters(r *request) (shown map[string]any, secure map[string]any) {
	shown, secure = map[string]any{}, map[string]any{}
	for name, v := range r.params {
		typ := "String"
		var decl *template.Parameter
		for n, pd := range r.tmpl.Parameters {
			if strings.EqualFold(n, name) {
				decl = pd
			}
		}
		if decl != nil {
			typ = armTypeName(decl.Type)
		}
		if decl != nil && decl.Secure() {
			secure[name] = v
			shown[name] = map[string]any{"type": typ}
			continue
		}
		shown[name] = map[string]any{"type": typ, "value": v}
	}
	return shown, secure
}

// armTypeName is how deployments write a parameter type: "SecureString".
func armTypeName(t string) string {
	switch strings.ToLower(t) {
	case "securestring":
		return "SecureString"
	case "secureobject":
		return "SecureObject"
	case "":
		return "String"
	}
	return strings.ToUpper(t[:1]) + t[1:]
}

// templateHash identifies a template's text, as ARM's templateHash does.
func templateHash(source []byte) string {
	h := fnv.New64a()
	h.Write(source)
	return strconv.FormatUint(h.Sum64(), 10)
}

// duration formats d as ISO 8601, as deployments report it: "PT1.2345S".
func duration(d time.Duration) string {
	return "PT" + strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "S"
}

// principal is the caller with their groups.
func (p *Provider) principal(ctx context.Context, c resource.Caller) (identity.Principal, error) {
	who := identity.Principal{ObjectID: c.ObjectID, Name: c.Name}
	if p.groups == nil {
		return who, nil
	}
	var err error
	who.Groups, err = p.groups(ctx, who.ObjectID)
	return who, err
}

// subject is who as the authorizer knows principals.
func subject(who identity.Principal) authz.Principal {
	return authz.Principal{ObjectID: who.ObjectID, Groups: who.Groups}
}

// principalOf is the deployer, from the operation's record of the request.
func (p *Provider) principalOf(ctx context.Context, op *resource.Operation) (identity.Principal, error) {
	var pr identity.Principal
	ok := false
	if op.Audit != nil {
		pr, ok = identity.FromClaims(op.Audit.Claims, op.Audit.Caller)
	}
	if !ok {
		return pr, fmt.Errorf("deployment %s: the operation does not record who deployed", op.ResourceID)
	}
	if p.groups != nil {
		groups, err := p.groups(ctx, pr.ObjectID)
		if err != nil {
			return pr, err
		}
		pr.Groups = groups
	}
	return pr, nil
}

// authorizeAll is the preflight check: the deployer may write every
// resource the template deploys. It returns one error per refusal, each
// naming its resource, before anything is created.
func (p *Provider) authorizeAll(who identity.Principal, d *template.Deployment) []*arm.Error {
	var errs []*arm.Error
	walk(d, func(r *template.Resource) {
		if r.Existing || strings.EqualFold(r.Type, deploymentsType) {
			return
		}
		action := authz.Operation(r.Type, http.MethodPut, "")
		if _, err := p.authz.Authorize(subject(who), action, r.ID); err != nil {
			errs = append(errs, refusal(err, r.ID))
		}
	})
	return errs
}

// refusal is an authorization error as a deployment reports it, naming
// the resource refused.
func refusal(err error, id string) *arm.Error {
	ae, ok := err.(*arm.Error)
	if !ok {
		ae = arm.Errorf(http.StatusForbidden, "AuthorizationFailed", "%s", err)
	}
	named := *ae
	named.Target = id
	return &named
}

const deploymentsType = "Microsoft.Resources/deployments"

// walk visits every resource of d and of its nested deployments.
func walk(d *template.Deployment, visit func(r *template.Resource)) {
	for _, r := range d.Resources {
		visit(r)
		if r.Deployment != nil {
			walk(r.Deployment, visit)
		}
	}
}
