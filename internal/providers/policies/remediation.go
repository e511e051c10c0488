package policies

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/controller"
	"github.com/citadel-cloud/citadel/internal/identity"
	"github.com/citadel-cloud/citadel/internal/policy"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// Doer serves an ARM request inside the server on behalf of a principal
// (the front door's Do).
type Doer interface {
	Do(ctx context.Context, p identity.Principal, correlationID, method, pathAndQuery string, body []byte) (*resource.Response, error)
}

// Attach gives the provider the front door that remediations act
// through.
func (p *Provider) Attach(d Doer) { p.do = d }

// remediationProperties are a remediation's (Microsoft.PolicyInsights
// 2021-10-01).
type remediationProperties struct {
	PolicyAssignmentID          string         `json:"policyAssignmentId"`
	PolicyDefinitionReferenceID string         `json:"policyDefinitionReferenceId"`
	ResourceDiscoveryMode       string         `json:"resourceDiscoveryMode"`
	Filters                     map[string]any `json:"filters"`
	ResourceCount               int            `json:"resourceCount"`
	ParallelDeployments         int            `json:"parallelDeployments"`
	FailureThreshold            map[string]any `json:"failureThreshold"`
	ProvisioningState           string         `json:"provisioningState"`
	DeploymentStatus            map[string]any `json:"deploymentStatus"`
	CreatedOn                   string         `json:"createdOn"`
	LastUpdatedOn               string         `json:"lastUpdatedOn"`
	StatusMessage               string         `json:"statusMessage"`
	CorrelationID               string         `json:"correlationId"`
}

var remediationVersions = []string{"2024-10-01", "2021-10-01", "2019-07-01"}

func (p *Provider) remediationType() *resource.Type {
	return &resource.Type{
		Namespace: insights, Name: "remediations", APIVersions: remediationVersions, Scope: resource.ScopeAny,
		ReadOnly:  []string{"deploymentStatus", "createdOn", "lastUpdatedOn", "statusMessage", "correlationId"},
		Validate:  p.validateRemediation,
		Provision: p.remediate,
	}
}

func (p *Provider) validateRemediation(ctx context.Context, w *resource.Write) error {
	var r remediationProperties
	if err := resource.DecodeProperties(w.New, &r); err != nil {
		return err
	}
	id, err := arm.ParseID(r.PolicyAssignmentID)
	if err != nil {
		return arm.FieldError("properties.policyAssignmentId", "The policyAssignmentId '%s' is not a resource id.", r.PolicyAssignmentID)
	}
	if _, err := p.svc.Lookup(ctx, id); err != nil {
		return arm.FieldError("properties.policyAssignmentId", "The policy assignment '%s' was not found.", r.PolicyAssignmentID)
	}
	if r.ResourceDiscoveryMode == "" {
		w.New.Properties["resourceDiscoveryMode"] = "ExistingNonCompliant"
	}
	w.New.Properties["createdOn"] = time.Now().UTC().Format(time.RFC3339Nano)
	return nil
}

// remediate brings the non-compliant resources of an assignment in the
// remediation's scope into compliance, on behalf of who created it: modify
// re-writes each resource (the write applies the assignment's changes),
// deployIfNotExists deploys the assignment's template. Resources are
// evaluated again first, so a resource fixed meanwhile is left alone.
func (p *Provider) remediate(ctx context.Context, t *resource.Task) error {
	var r remediationProperties
	if err := resource.DecodeProperties(t.Resource, &r); err != nil {
		return controller.Terminal(err)
	}
	var who identity.Principal
	ok := false
	if t.Op.Audit != nil {
		who, ok = identity.FromClaims(t.Op.Audit.Claims, t.Op.Audit.Caller)
	}
	if !ok || p.do == nil {
		return controller.Terminal(fmt.Errorf("remediation %s: no caller recorded to act for", t.Resource.ID))
	}
	if p.groups != nil {
		groups, err := p.groups(ctx, who.ObjectID)
		if err != nil {
			return err
		}
		who.Groups = groups
	}
	scope, _ := mustID(t.Resource.ID).Parent()
	var targets []evaluated
	for _, ev := range p.states.within(scopeString(scope)) {
		if strings.EqualFold(ev.result.AssignmentID, r.PolicyAssignmentID) &&
			(r.PolicyDefinitionReferenceID == "" || strings.EqualFold(ev.result.ReferenceID, r.PolicyDefinitionReferenceID)) {
			targets = append(targets, ev)
		}
	}
	now := time.Now().UTC()
	s := p.snapshot()
	total, succeeded, failed := 0, 0, 0
	var failures []*arm.Error
	for i, ev := range targets {
		if r.ResourceCount > 0 && total >= r.ResourceCount {
			break
		}
		current, err := p.svc.Lookup(ctx, mustID(ev.resource.ID))
		if err != nil {
			continue // gone
		}
		fresh := p.evaluateOne(ctx, s, current, ev, now)
		if fresh == nil || fresh.state != policy.NonCompliant {
			continue
		}
		total++
		var doErr error
		switch fresh.result.Effect {
		case policy.Modify:
			doErr = p.rewrite(ctx, who, t.CorrelationID(), current)
		case policy.DeployIfNotExists:
			doErr = p.deployFor(ctx, who, t.CorrelationID(), current, fresh)
		default:
			doErr = arm.Errorf(http.StatusBadRequest, "InvalidRemediation",
				"The policy's effect is %s: only modify and deployIfNotExists can be remediated.", fresh.result.Effect)
		}
		if doErr != nil {
			failed++
			ae := asARM(doErr)
			named := *ae
			named.Target = current.ID
			failures = append(failures, &named)
		} else {
			succeeded++
			p.Written(mustID(current.ID))
		}
		t.Progress(ctx, 100*float64(i+1)/float64(len(targets)))
	}
	t.Resource.Properties["deploymentStatus"] = map[string]any{"totalDeployments": total, "successfulDeployments": succeeded, "failedDeployments": failed}
	t.Resource.Properties["lastUpdatedOn"] = time.Now().UTC().Format(time.RFC3339Nano)
	if len(failures) > 0 {
		e := arm.Errorf(http.StatusConflict, "RemediationFailed", "%d of %d resources could not be remediated; see details.", failed, total)
		e.Details = failures
		return controller.Terminal(e)
	}
	return nil
}

// evaluateOne evaluates the assignment of ev on the resource as it is now.
func (p *Provider) evaluateOne(ctx context.Context, s *snapshot, r *resource.Resource, ev evaluated, now time.Time) *evaluated {
	for _, fresh := range p.evaluate(ctx, s, r, p.context(ctx, mustID(r.ID), ""), now) {
		if strings.EqualFold(fresh.result.AssignmentID, ev.result.AssignmentID) && fresh.result.ReferenceID == ev.result.ReferenceID {
			return &fresh
		}
	}
	return nil
}

// rewrite PUTs a resource as it is: the write applies modify.
func (p *Provider) rewrite(ctx context.Context, who identity.Principal, correlationID string, r *resource.Resource) error {
	delete(r.Properties, "provisioningState")
	body := map[string]any{"properties": r.Properties}
	if r.Location != "" {
		body["location"] = r.Location
	}
	if r.Tags != nil {
		body["tags"] = r.Tags
	}
	for k, v := range map[string]any{"sku": r.SKU, "kind": r.Kind, "identity": r.Identity, "extendedLocation": r.ExtendedLocation} {
		if b, _ := json.Marshal(v); string(b) != "null" && string(b) != `""` && string(b) != "{}" {
			body[k] = v
		}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	_, err = p.do.Do(ctx, who, correlationID, http.MethodPut, r.ID+"?api-version="+p.svc.LatestAPIVersion(r.Type), b)
	return err
}

// deployFor deploys a deployIfNotExists template for a resource, as a
// deployment in the resource's group.
func (p *Provider) deployFor(ctx context.Context, who identity.Principal, correlationID string, r *resource.Resource, ev *evaluated) error {
	x := ev.result.Existence
	if x == nil || x.Deployment == nil {
		return arm.Errorf(http.StatusBadRequest, "InvalidRemediation", "The policy has no deployment to run.")
	}
	id := mustID(r.ID)
	sum := sha256.Sum256([]byte(strings.ToLower(r.ID + "|" + ev.result.AssignmentID + "|" + ev.result.ReferenceID)))
	name := "PolicyDeployment_" + hex.EncodeToString(sum[:8])
	target := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Resources/deployments/%s", id.Subscription, id.ResourceGroup, name)
	if strings.EqualFold(x.DeploymentScope, "subscription") {
		target = fmt.Sprintf("/subscriptions/%s/providers/Microsoft.Resources/deployments/%s", id.Subscription, name)
	}
	b, err := json.Marshal(x.Deployment)
	if err != nil {
		return err
	}
	_, err = p.do.Do(ctx, who, correlationID, http.MethodPut, target+"?api-version=2021-04-01", b)
	return err
}

func asARM(err error) *arm.Error {
	if ae, ok := err.(*arm.Error); ok {
		return ae
	}
	return arm.Errorf(http.StatusInternalServerError, "RemediationFailed", "%s", err)
}
