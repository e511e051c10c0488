package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/controller"
	"github.com/citadel-cloud/citadel/internal/identity"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/template"
)

// provision runs a deployment in the operations controller. After a crash
// it runs again from the start: every resource is PUT again, which ARM
// PUTs make harmless.
func (p *Provider) provision(ctx context.Context, t *resource.Task) error {
	if p.do == nil {
		return errors.New("deploy: no front door attached")
	}
	id, err := arm.ParseID(t.Resource.ID)
	if err != nil {
		return err
	}
	who, err := p.principalOf(ctx, t.Op)
	if err != nil {
		return err
	}
	req, err := p.parse(ctx, t.Resource.Properties, who)
	if err != nil {
		return controller.Terminal(err) // validatePut accepted it, and kept the template spec it read
	}
	if req.props.CancelRequested {
		return resource.Canceled(arm.Errorf(http.StatusConflict, "DeploymentCanceled", "The deployment was canceled before it started."))
	}
	start := time.Now().UTC()
	props := t.Resource.Properties
	props["correlationId"] = t.CorrelationID()
	props["timestamp"] = start.Format(time.RFC3339Nano)
	props["provisioningState"] = "Running"
	if err := t.Save(ctx); err != nil {
		return err
	}
	end := func(ae *arm.Error, asError func(*arm.Error) error) error {
		props["error"] = ae
		props["duration"] = duration(time.Since(start))
		if err := t.Save(ctx); err != nil {
			return err
		}
		return asError(ae)
	}
	fail := func(ae *arm.Error) error {
		return end(ae, func(ae *arm.Error) error { return controller.Terminal(ae) })
	}
	d, err := p.expand(ctx, id, t.Resource.Location, req)
	if err != nil {
		var ae *arm.Error
		if errors.As(err, &ae) {
			return fail(ae)
		}
		return err
	}
	if errs := p.authorizeAll(who, d); len(errs) > 0 {
		return fail(preflightFailed(errs))
	}
	e := &engine{ctx: ctx, p: p, task: t, who: who, correlationID: t.CorrelationID(), deployment: id, total: countResources(d),
		outputs: map[string]map[string]any{}}
	failures := e.deploy(ctx, d)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if e.isCanceled() {
		props["outputResources"] = e.outputResources()
		return end(arm.Errorf(http.StatusConflict, "DeploymentCanceled",
			"The deployment was canceled; the resources it created before stay as they are."), resource.Canceled)
	}
	if len(failures) == 0 && req.props.Mode == "Complete" {
		failures = e.deleteOthers(ctx, id)
	}
	props["outputResources"] = e.outputResources()
	props["dependencies"] = dependencies(d)
	if len(failures) > 0 {
		if req.props.OnErrorDeployment != nil {
			props["onErrorDeployment"] = p.rollBack(ctx, e, req.props.OnErrorDeployment)
		}
		return fail(deploymentFailed(failures))
	}
	outputs, err := d.EvaluateOutputs(e)
	if err != nil {
		return fail(arm.Errorf(http.StatusBadRequest, "DeploymentOutputEvaluationFailed",
			"Unable to evaluate the template outputs: %s.", err))
	}
	props["outputs"] = typedOutputs(outputs)
	props["duration"] = duration(time.Since(start))
	delete(props, "error")
	return nil
}

// preflightFailed is the answer when the deployer may not write some of
// the template's resources: nothing has been created.
func preflightFailed(errs []*arm.Error) *arm.Error {
	if len(errs) == 1 {
		return errs[0]
	}
	e := arm.Errorf(http.StatusForbidden, "AuthorizationFailed",
		"The client does not have authorization to write %d of the template's resources; nothing was deployed. See details.", len(errs))
	e.Details = errs
	return e
}

// deploymentFailed is ARM's error for a deployment in which resources
// failed: one detail per failed resource, naming it.
func deploymentFailed(failures []*arm.Error) *arm.Error {
	e := arm.Errorf(http.StatusConflict, "DeploymentFailed",
		"At least one resource deployment operation failed. Please list deployment operations for details.")
	e.Details = failures
	return e
}

// engine deploys one deployment's resources.
type engine struct {
	ctx           context.Context // of the run, for the runtime's calls
	p             *Provider
	task          *resource.Task
	who           identity.Principal
	correlationID string
	deployment    arm.ID
	total         int

	mu       sync.Mutex
	canceled bool
	done     int
	deployed []string                  // ids, in the order they succeeded
	outputs  map[string]map[string]any // a nested deployment's outputs by its lower-case id
}

// node is one resource in the dependency graph.
type node struct {
	r    *template.Resource
	done chan struct{}
	ok   bool
}

// deploy creates d's resources, each once its dependencies have, at most
// p.parallel at a time. A resource whose dependency failed is not
// attempted. It returns the failures, each naming its resource.
func (e *engine) deploy(ctx context.Context, d *template.Deployment) []*arm.Error {
	nodes := map[string]*node{}
	order := make([]*node, 0, len(d.Resources))
	for _, r := range d.Resources {
		n := &node{r: r, done: make(chan struct{})}
		nodes[strings.ToLower(r.ID)] = n
		order = append(order, n)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []*arm.Error
	)
	slots := make(chan struct{}, e.p.parallel)
	for _, n := range order {
		wg.Go(func() {
			defer close(n.done)
			for _, dep := range n.r.DependsOn {
				if m, ok := nodes[strings.ToLower(dep)]; ok {
					<-m.done
					if !m.ok {
						return // not attempted: ARM leaves dependents of a failure alone
					}
				}
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			if e.checkCanceled(ctx) {
				<-slots
				return
			}
			errs := e.one(ctx, n.r)
			<-slots
			if len(errs) > 0 {
				mu.Lock()
				failures = append(failures, errs...)
				mu.Unlock()
				return
			}
			n.ok = true
		})
	}
	wg.Wait()
	slices.SortFunc(failures, func(a, b *arm.Error) int { return strings.Compare(a.Target, b.Target) })
	return failures
}

// one deploys one resource (or a nested deployment) and records its
// deployment operation.
func (e *engine) one(ctx context.Context, r *template.Resource) []*arm.Error {
	ev, err := r.Evaluate(e)
	if err != nil {
		return []*arm.Error{e.failed(ctx, r, time.Now(), asARM(err, "InvalidTemplate"))}
	}
	if ev.Skip {
		e.progress(ctx)
		return nil
	}
	started := time.Now()
	if strings.EqualFold(r.Type, deploymentsType) {
		return e.nested(ctx, r, ev, started)
	}
	e.record(ctx, r, started, "Running", "", nil)
	body, err := json.Marshal(ev.Body)
	if err != nil {
		return []*arm.Error{e.failed(ctx, r, started, asARM(err, "InvalidTemplate"))}
	}
	resp, err := e.p.do.Do(ctx, e.who, e.correlationID, http.MethodPut, r.ID+"?api-version="+url.QueryEscape(r.APIVersion), body)
	if err == nil {
		resp, err = e.await(ctx, resp)
	}
	if err != nil {
		return []*arm.Error{e.failed(ctx, r, started, asARM(err, "ResourceDeploymentFailure"))}
	}
	e.record(ctx, r, started, "Succeeded", http.StatusText(resp.Status), nil)
	e.succeeded(ctx, r.ID)
	return nil
}

// nested runs a nested deployment's resources in this engine; its outputs
// answer reference() to it.
func (e *engine) nested(ctx context.Context, r *template.Resource, ev *template.Evaluated, started time.Time) []*arm.Error {
	if ev.Deployment == nil {
		return []*arm.Error{e.failed(ctx, r, started, arm.Errorf(http.StatusBadRequest, "InvalidTemplate",
			"The linked template '%s' of deployment '%s' could not be read.", r.TemplateLink, r.Name))}
	}
	e.record(ctx, r, started, "Running", "", nil)
	if failures := e.deploy(ctx, ev.Deployment); len(failures) > 0 {
		e.record(ctx, r, started, "Failed", "Conflict", deploymentFailed(failures))
		return failures
	}
	outputs, err := ev.Deployment.EvaluateOutputs(e)
	if err != nil {
		return []*arm.Error{e.failed(ctx, r, started, asARM(err, "DeploymentOutputEvaluationFailed"))}
	}
	e.mu.Lock()
	e.outputs[strings.ToLower(r.ID)] = typedOutputs(outputs)
	e.mu.Unlock()
	e.record(ctx, r, started, "Succeeded", "OK", nil)
	e.succeeded(ctx, "")
	return nil
}

// checkCanceled reports whether a user has canceled the deployment
// (cancel sets cancelRequested on it); from then on no resource starts.
func (e *engine) checkCanceled(ctx context.Context) bool {
	if e.isCanceled() {
		return true
	}
	d, err := e.p.svc.Lookup(ctx, e.deployment)
	if err != nil || d.Properties[cancelRequested] != true {
		return false
	}
	e.mu.Lock()
	e.canceled = true
	e.mu.Unlock()
	return true
}

func (e *engine) isCanceled() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.canceled
}

// await follows a long-running answer to its end: the Azure-AsyncOperation
// status, or the Location of a 202.
func (e *engine) await(ctx context.Context, resp *resource.Response) (*resource.Response, error) {
	statusURL := resp.Header.Get("Azure-AsyncOperation")
	location := resp.Header.Get("Location")
	if statusURL == "" && (resp.Status != http.StatusAccepted || location == "") {
		return resp, nil
	}
	wait := 50 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
		if statusURL != "" {
			st, err := e.get(ctx, statusURL)
			if err != nil {
				return nil, err
			}
			var status struct {
				Status string     `json:"status"`
				Error  *arm.Error `json:"error"`
			}
			if err := decodeBody(st, &status); err != nil {
				return nil, err
			}
			switch status.Status {
			case resource.OpSucceeded:
				return resp, nil
			case resource.OpFailed, resource.OpCanceled:
				if status.Error == nil {
					status.Error = arm.Errorf(http.StatusConflict, "ResourceDeploymentFailure", "The resource operation ended %s.", status.Status)
				}
				if status.Error.Status == 0 {
					status.Error.Status = http.StatusConflict
				}
				return nil, status.Error
			}
			continue
		}
		r, err := e.get(ctx, location)
		if err != nil {
			return nil, err
		}
		if r.Status != http.StatusAccepted {
			return r, nil
		}
	}
}

// get GETs a link the front door gave (an operation status, a Location).
func (e *engine) get(ctx context.Context, link string) (*resource.Response, error) {
	u, err := url.Parse(link)
	if err != nil {
		return nil, err
	}
	return e.p.do.Do(ctx, e.who, e.correlationID, http.MethodGet, u.RequestURI(), nil)
}

// failed records r's operation as failed and returns its error, naming r.
func (e *engine) failed(ctx context.Context, r *template.Resource, started time.Time, ae *arm.Error) *arm.Error {
	named := *ae
	named.Target = r.ID
	e.record(ctx, r, started, "Failed", http.StatusText(ae.Status), &named)
	return &named
}

func (e *engine) succeeded(ctx context.Context, id string) {
	e.mu.Lock()
	if id != "" {
		e.deployed = append(e.deployed, id)
	}
	e.mu.Unlock()
	e.progress(ctx)
}

func (e *engine) progress(ctx context.Context) {
	e.mu.Lock()
	e.done++
	done := e.done
	e.mu.Unlock()
	if e.total > 0 {
		e.task.Progress(ctx, 100*float64(done)/float64(e.total))
	}
}

func (e *engine) outputResources() []any {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]any, 0, len(e.deployed))
	for _, id := range e.deployed {
		out = append(out, map[string]any{"id": id})
	}
	return out
}

// record writes r's deployment operation: {deployment}/operations/{id},
// where id is derived from r's id so that a resumed deployment updates
// the same one.
func (e *engine) record(ctx context.Context, r *template.Resource, started time.Time, state, statusCode string, failure *arm.Error) {
	sum := sha256.Sum256([]byte(strings.ToLower(r.ID)))
	opName := strings.ToUpper(hex.EncodeToString(sum[:8]))
	opID := e.deployment.Child("operations", opName)
	now := time.Now().UTC()
	props := map[string]any{
		"provisioningOperation": "Create",
		"provisioningState":     state,
		"timestamp":             now.Format(time.RFC3339Nano),
		"duration":              duration(now.Sub(started)),
		"trackingId":            e.correlationID,
		"targetResource":        map[string]any{"id": r.ID, "resourceType": r.Type, "resourceName": r.Name, "apiVersion": r.APIVersion},
	}
	if statusCode != "" {
		props["statusCode"] = strings.ReplaceAll(statusCode, " ", "")
	}
	if failure != nil {
		props["statusMessage"] = map[string]any{"status": "Failed", "error": failure}
	}
	_, err := e.p.svc.Upsert(ctx, opID, func(res *resource.Resource, _ bool) error {
		res.Properties = props
		return nil
	})
	if err != nil {
		e.p.log.WarnContext(ctx, "deployment operation not recorded", "deployment", e.deployment.String(), "resource", r.ID, "err", err)
	}
}

// deleteOthers is Complete mode: it deletes the resources of the group
// that the template does not have.
func (e *engine) deleteOthers(ctx context.Context, id arm.ID) []*arm.Error {
	if id.ResourceGroup == "" {
		return nil
	}
	existing, err := listGroup(ctx, e.p.do, e.who, e.correlationID, id)
	if err != nil {
		return []*arm.Error{asARM(err, "DeploymentFailed")}
	}
	keep := map[string]bool{}
	for _, d := range e.deployed {
		keep[strings.ToLower(d)] = true
	}
	var failures []*arm.Error
	for _, r := range existing {
		if keep[strings.ToLower(r.ID)] || strings.EqualFold(r.Type, deploymentsType) {
			continue
		}
		version := e.p.svc.LatestAPIVersion(r.Type)
		resp, err := e.p.do.Do(ctx, e.who, e.correlationID, http.MethodDelete, r.ID+"?api-version="+version, nil)
		if err == nil {
			_, err = e.await(ctx, resp)
		}
		if err != nil {
			ae := *asARM(err, "ResourceDeletionFailure")
			ae.Target = r.ID
			failures = append(failures, &ae)
		}
	}
	return failures
}

// listed is a resource in a list answer.
type listed struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// listGroup lists every resource in a deployment's group, as who may
// read them.
func listGroup(ctx context.Context, do Doer, who identity.Principal, correlationID string, id arm.ID) ([]listed, error) {
	var out []listed
	link := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/resources?api-version=2021-04-01", id.Subscription, id.ResourceGroup)
	for link != "" {
		resp, err := do.Do(ctx, who, correlationID, http.MethodGet, link, nil)
		if err != nil {
			return nil, err
		}
		var page struct {
			Value    []listed `json:"value"`
			NextLink string   `json:"nextLink"`
		}
		if err := decodeBody(resp, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Value...)
		link = ""
		if page.NextLink != "" {
			u, err := url.Parse(page.NextLink)
			if err != nil {
				return nil, err
			}
			link = u.RequestURI()
		}
	}
	return out, nil
}

// The engine is the template's runtime: reference(), list*() and
// providers() read through the front door as the deployer.

// Reference answers reference(): through a GET, or from a nested
// deployment's outputs.
func (e *engine) Reference(id, apiVersion string, full bool) (any, error) {
	e.mu.Lock()
	outputs, nested := e.outputs[strings.ToLower(id)]
	e.mu.Unlock()
	if nested {
		props := map[string]any{"outputs": outputs, "provisioningState": "Succeeded"}
		if full {
			return map[string]any{"id": id, "properties": props}, nil
		}
		return props, nil
	}
	if apiVersion == "" {
		rid, err := arm.ParseID(id)
		if err != nil {
			return nil, err
		}
		apiVersion = e.p.svc.LatestAPIVersion(rid.Type())
	}
	resp, err := e.p.do.Do(e.ctx, e.who, e.correlationID, http.MethodGet, id+"?api-version="+url.QueryEscape(apiVersion), nil)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := decodeBody(resp, &v); err != nil {
		return nil, err
	}
	if full {
		return v, nil
	}
	return v["properties"], nil
}

// List answers list*() with a POST of the action.
func (e *engine) List(action, id, apiVersion string, body any) (any, error) {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	resp, err := e.p.do.Do(e.ctx, e.who, e.correlationID, http.MethodPost, id+"/"+action+"?api-version="+url.QueryEscape(apiVersion), b)
	if err != nil {
		return nil, err
	}
	var v any
	return v, decodeBody(resp, &v)
}

// Providers answers providers() from the provider registration.
func (e *engine) Providers(namespace, resourceType string) (any, error) {
	resp, err := e.p.do.Do(e.ctx, e.who, e.correlationID, http.MethodGet,
		"/subscriptions/"+e.deployment.Subscription+"/providers/"+namespace+"?api-version=2021-04-01", nil)
	if err != nil {
		return nil, err
	}
	var v struct {
		ResourceTypes []map[string]any `json:"resourceTypes"`
	}
	if err := decodeBody(resp, &v); err != nil {
		return nil, err
	}
	if resourceType == "" {
		return v.ResourceTypes, nil
	}
	for _, t := range v.ResourceTypes {
		if name, _ := t["resourceType"].(string); strings.EqualFold(name, resourceType) {
			return t, nil
		}
	}
	return nil, fmt.Errorf("the resource type '%s/%s' is not served", namespace, resourceType)
}

// Secret refuses Key Vault references: there is no Key Vault.
func (e *engine) Secret(vaultID, name, version string) (string, error) {
	return "", fmt.Errorf("the Key Vault secret '%s' of '%s' cannot be read: Citadel has no Key Vault", name, vaultID)
}

// decodeBody decodes a front-door answer's body into v.
func decodeBody(resp *resource.Response, v any) error {
	b, ok := resp.Body.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(resp.Body); err != nil {
			return err
		}
	}
	if len(b) == 0 {
		return nil
	}
	return json.Unmarshal(b, v)
}

// asARM turns err into an ARM error, keeping one that is already.
func asARM(err error, code string) *arm.Error {
	var ae *arm.Error
	if errors.As(err, &ae) {
		return ae
	}
	return arm.Errorf(http.StatusBadRequest, code, "%s", err)
}

// typedOutputs writes outputs as deployments report them: {"type", "value"}.
func typedOutputs(outputs map[string]any) map[string]any {
	out := make(map[string]any, len(outputs))
	for name, v := range outputs {
		out[name] = map[string]any{"type": outputType(v), "value": v}
	}
	return out
}

func outputType(v any) string {
	switch v.(type) {
	case string:
		return "String"
	case bool:
		return "Bool"
	case int64, int, float64:
		return "Int"
	case []any:
		return "Array"
	}
	return "Object"
}

// dependencies lists what each resource depends on, as deployments show.
func dependencies(d *template.Deployment) []any {
	var out []any
	walk(d, func(r *template.Resource) {
		if len(r.DependsOn) == 0 {
			return
		}
		deps := make([]any, 0, len(r.DependsOn))
		for _, id := range r.DependsOn {
			rid, _ := arm.ParseID(id)
			deps = append(deps, map[string]any{"id": id, "resourceType": rid.Type(), "resourceName": rid.Name()})
		}
		out = append(out, map[string]any{"id": r.ID, "resourceType": r.Type, "resourceName": r.Name, "dependsOn": deps})
	})
	return out
}

func countResources(d *template.Deployment) int {
	n := 0
	walk(d, func(*template.Resource) { n++ })
	return n
}
