package deploy

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// cancel answers POST …/deployments/{name}/cancel: a deployment that is
// running starts no further resource and ends Canceled; what it created
// stays.
func (p *Provider) cancel(ctx context.Context, req *resource.Request) (*resource.Response, error) {
	d, err := p.svc.Lookup(ctx, req.ID)
	if err != nil {
		return nil, err
	}
	if !d.Busy {
		return nil, arm.Errorf(http.StatusConflict, "DeploymentCannotBeCanceled",
			"The deployment '%s' cannot be canceled: it is not running (provisioningState %v).", d.Name, d.Properties["provisioningState"])
	}
	if _, err := p.svc.Upsert(ctx, req.ID, func(r *resource.Resource, created bool) error {
		if created {
			return arm.Errorf(http.StatusNotFound, arm.CodeResourceNotFound, "The deployment '%s' was not found.", req.ID.Name())
		}
		r.Properties[cancelRequested] = true
		return nil
	}); err != nil {
		return nil, err
	}
	return &resource.Response{Status: http.StatusNoContent}, nil
}

// rollBack is onErrorDeployment: it redeploys, on the deployer's behalf,
// the last deployment of the group that succeeded (LastSuccessful) or the
// one named (SpecificDeployment), with the template and parameters it
// had, and says which and how it started.
func (p *Provider) rollBack(ctx context.Context, e *engine, on *onError) map[string]any {
	out := map[string]any{"type": on.Type}
	target, err := p.rollBackTarget(ctx, e.deployment, on)
	if err != nil {
		out["provisioningState"] = "Failed"
		out["error"] = asARM(err, "InvalidOnErrorDeployment")
		return out
	}
	out["deploymentName"] = target.Name
	body := map[string]any{"properties": rollBackProperties(target)}
	if target.Location != "" {
		body["location"] = target.Location
	}
	b, err := json.Marshal(body)
	if err == nil {
		_, err = p.do.Do(ctx, e.who, e.correlationID, http.MethodPut, target.ID+"?api-version="+APIVersions[2], b)
	}
	if err != nil {
		out["provisioningState"] = "Failed"
		out["error"] = asARM(err, "InvalidOnErrorDeployment")
		return out
	}
	out["provisioningState"] = "Accepted"
	return out
}

// rollBackTarget finds the deployment to redeploy.
func (p *Provider) rollBackTarget(ctx context.Context, failed arm.ID, on *onError) (*resource.Resource, error) {
	scope, _ := failed.Parent()
	switch {
	case strings.EqualFold(on.Type, "SpecificDeployment"):
		if on.DeploymentName == "" {
			return nil, arm.FieldError("properties.onErrorDeployment.deploymentName", "A SpecificDeployment needs the deploymentName to redeploy.")
		}
		named := failed
		named.Names = append(slices.Clone(failed.Names[:len(failed.Names)-1]), on.DeploymentName)
		d, err := p.svc.Lookup(ctx, named)
		if err != nil {
			return nil, err
		}
		if d.Properties["provisioningState"] != resource.StateSucceeded {
			return nil, arm.FieldError("properties.onErrorDeployment.deploymentName", "The deployment '%s' did not succeed: it cannot be redeployed on error.", d.Name)
		}
		return d, nil
	case on.Type == "" || strings.EqualFold(on.Type, "LastSuccessful"):
		all, err := p.svc.Resources(ctx, scope, deploymentsType)
		if err != nil {
			return nil, err
		}
		all = slices.DeleteFunc(all, func(d *resource.Resource) bool {
			return strings.EqualFold(d.ID, failed.String()) || d.Properties["provisioningState"] != resource.StateSucceeded
		})
		if len(all) == 0 {
			return nil, arm.Errorf(http.StatusBadRequest, "InvalidOnErrorDeployment", "No earlier deployment in '%s' succeeded: there is nothing to redeploy.", scope)
		}
		last := slices.MaxFunc(all, func(a, b *resource.Resource) int {
			return strings.Compare(stringProp(a, "timestamp"), stringProp(b, "timestamp"))
		})
		return last, nil
	}
	return nil, arm.FieldError("properties.onErrorDeployment.type", "The type '%s' is not valid: it must be LastSuccessful or SpecificDeployment.", on.Type)
}

// rollBackProperties is the PUT of an earlier deployment as it was: its
// template and its parameters, secure values restored.
func rollBackProperties(d *resource.Resource) map[string]any {
	params := map[string]any{}
	if shown, ok := d.Properties["parameters"].(map[string]any); ok {
		for name, v := range shown {
			if m, ok := v.(map[string]any); ok {
				if val, has := m["value"]; has {
					params[name] = map[string]any{"value": val}
				}
			}
		}
	}
	if secure, ok := d.Properties["secureParameters"].(map[string]any); ok {
		for name, v := range secure {
			params[name] = map[string]any{"value": v}
		}
	}
	props := map[string]any{"mode": d.Properties["mode"], "parameters": params}
	if link, ok := d.Properties["templateLink"]; ok && link != nil {
		props["templateLink"] = link // a template spec version, read again
	} else {
		props["template"] = d.Properties["template"]
	}
	return props
}

func stringProp(r *resource.Resource, key string) string {
	s, _ := r.Properties[key].(string)
	return s
}
