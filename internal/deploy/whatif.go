package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/identity"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/template"
)

// queryBody is the body of validate and whatIf: a deployment, as for PUT.
type queryBody struct {
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties map[string]any    `json:"properties"`
}

// prepare reads a validate or whatIf request and expands its template.
func (p *Provider) prepare(ctx context.Context, req *resource.Request) (*request, *template.Deployment, identity.Principal, error) {
	var who identity.Principal
	if err := checkScope(req.ID); err != nil {
		return nil, nil, who, err
	}
	var q queryBody
	if err := arm.DecodeLenient(req.Body, &q); err != nil {
		return nil, nil, who, err
	}
	if q.Properties == nil {
		return nil, nil, who, arm.FieldError("properties", "The request must be a deployment with properties.")
	}
	delete(q.Properties, "whatIfSettings")
	delete(q.Properties, specSnapshot)
	who, err := p.principal(ctx, req.Caller)
	if err != nil {
		return nil, nil, who, err
	}
	r, err := p.parse(ctx, q.Properties, who)
	if err != nil {
		return nil, nil, who, err
	}
	d, err := p.expand(ctx, req.ID, q.Location, r)
	if err != nil {
		return nil, nil, who, err
	}
	return r, d, who, nil
}

// validateQuery answers POST …/deployments/{name}/validate: the template
// expands with its parameters and the caller may write every resource.
func (p *Provider) validateQuery(ctx context.Context, req *resource.Request) (*resource.Response, error) {
	r, d, who, err := p.prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	if errs := p.authorizeAll(who, d); len(errs) > 0 {
		return nil, preflightFailed(errs)
	}
	var validated []any
	walk(d, func(res *template.Resource) {
		if !res.Existing {
			validated = append(validated, map[string]any{"id": res.ID})
		}
	})
	shown, _ := splitParameters(r)
	return &resource.Response{Status: http.StatusOK, Body: map[string]any{
		"id": req.ID.String(), "name": req.ID.Name(), "type": deploymentsType,
		"properties": map[string]any{
			"provisioningState": "Succeeded", "mode": r.props.Mode, "parameters": shown,
			"templateHash": templateHash(r.source), "validatedResources": validated,
			"timestamp": time.Now().UTC().Format(time.RFC3339Nano), "duration": "PT0S",
			"dependencies": dependencies(d),
		},
	}}, nil
}

// change is one resource in a what-if answer.
type change struct {
	ResourceID string         `json:"resourceId"`
	ChangeType string         `json:"changeType"`
	Before     map[string]any `json:"before,omitempty"`
	After      map[string]any `json:"after,omitempty"`
	Delta      []delta        `json:"delta,omitempty"`
}

// delta is one property change.
type delta struct {
	Path               string  `json:"path"`
	PropertyChangeType string  `json:"propertyChangeType"`
	Before             any     `json:"before,omitempty"`
	After              any     `json:"after,omitempty"`
	Children           []delta `json:"children,omitempty"`
}

// whatIf answers POST …/deployments/{name}/whatIf: what deploying would
// create, modify, leave unchanged, ignore or (Complete mode) delete. A
// value only the deployment can know (reference()) is shown as its
// expression. Properties the template does not set are the server's and
// are not compared.
func (p *Provider) whatIf(ctx context.Context, req *resource.Request) (*resource.Response, error) {
	r, d, who, err := p.prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	correlationID := req.Header.Get("x-ms-correlation-request-id")
	var changes []change
	inTemplate := map[string]bool{}
	var failure error
	walk(d, func(res *template.Resource) {
		if failure != nil || res.Existing || strings.EqualFold(res.Type, deploymentsType) {
			return
		}
		ev, err := res.Evaluate(nil)
		if err != nil {
			failure = invalidTemplate(err)
			return
		}
		if ev.Skip {
			return
		}
		inTemplate[strings.ToLower(res.ID)] = true
		after := normalize(ev.Body)
		if t, ok := p.svc.TypeOf(res.Type); ok {
			// Secrets are write-only: a GET never shows them to compare.
			if props, ok := after["properties"].(map[string]any); ok {
				after["properties"] = t.Shown(props)
			}
		}
		after["id"], after["name"], after["type"], after["apiVersion"] = res.ID, res.Name, res.Type, res.APIVersion
		resp, err := p.do.Do(ctx, who, correlationID, http.MethodGet, res.ID+"?api-version="+url.QueryEscape(res.APIVersion), nil)
		if ae := (*arm.Error)(nil); errors.As(err, &ae) && ae.Status == http.StatusNotFound {
			changes = append(changes, change{ResourceID: res.ID, ChangeType: "Create", After: after})
			return
		}
		if err != nil {
			failure = err
			return
		}
		var before map[string]any
		if err := decodeBody(resp, &before); err != nil {
			failure = err
			return
		}
		before = normalize(before)
		ds := diff("", before, after)
		c := change{ResourceID: res.ID, ChangeType: "NoChange", Before: before, After: after, Delta: ds}
		if len(ds) > 0 {
			c.ChangeType = "Modify"
		}
		changes = append(changes, c)
	})
	if failure != nil {
		return nil, failure
	}
	if req.ID.ResourceGroup != "" {
		existing, err := listGroup(ctx, p.do, who, correlationID, req.ID)
		if err != nil {
			return nil, err
		}
		for _, e := range existing {
			if inTemplate[strings.ToLower(e.ID)] || strings.EqualFold(e.Type, deploymentsType) {
				continue
			}
			kind := "Ignore"
			if r.props.Mode == "Complete" {
				kind = "Delete"
			}
			changes = append(changes, change{ResourceID: e.ID, ChangeType: kind})
		}
	}
	slices.SortFunc(changes, func(a, b change) int {
		return strings.Compare(strings.ToLower(a.ResourceID), strings.ToLower(b.ResourceID))
	})
	return &resource.Response{Status: http.StatusOK, Body: map[string]any{
		"status": "Succeeded", "properties": map[string]any{"changes": changes},
	}}, nil
}

// normalize gives v the JSON types of a decoded answer (float64 numbers),
// so values from the template and from the store compare equal.
func normalize(v map[string]any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out map[string]any
	if json.Unmarshal(b, &out) != nil {
		return v
	}
	return out
}

// diff lists the changes from before to after, for the paths after sets.
func diff(path string, before, after any) []delta {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch a := after.(type) {
	case map[string]any:
		b, ok := before.(map[string]any)
		if !ok {
			if before == nil {
				return []delta{{Path: path, PropertyChangeType: "Create", After: after}}
			}
			return []delta{{Path: path, PropertyChangeType: "Modify", Before: before, After: after}}
		}
		keys := make([]string, 0, len(a))
		for k := range a {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out []delta
		for _, k := range keys {
			if path == "" && (k == "id" || k == "name" || k == "type" || k == "apiVersion") {
				continue
			}
			bv, has := lookupFold(b, k)
			if !has {
				out = append(out, delta{Path: join(k), PropertyChangeType: "Create", After: a[k]})
				continue
			}
			out = append(out, diff(join(k), bv, a[k])...)
		}
		return out
	case []any:
		b, ok := before.([]any)
		if !ok {
			return []delta{{Path: path, PropertyChangeType: "Modify", Before: before, After: after}}
		}
		if reflect.DeepEqual(a, b) {
			return nil
		}
		var children []delta
		for i := range max(len(a), len(b)) {
			idx := fmt.Sprint(i)
			switch {
			case i >= len(b):
				children = append(children, delta{Path: idx, PropertyChangeType: "Create", After: a[i]})
			case i >= len(a):
				children = append(children, delta{Path: idx, PropertyChangeType: "Delete", Before: b[i]})
			default:
				for _, c := range diff("", b[i], a[i]) {
					if c.Path == "" {
						c.Path = idx
					} else {
						c.Path = idx + "." + c.Path
					}
					children = append(children, c)
				}
			}
		}
		return []delta{{Path: path, PropertyChangeType: "Array", Children: children}}
	default:
		if equalScalar(path, before, after) {
			return nil
		}
		return []delta{{Path: path, PropertyChangeType: "Modify", Before: before, After: after}}
	}
}

// lookupFold finds k in m, case-insensitively as ARM property names are.
func lookupFold(m map[string]any, k string) (any, bool) {
	if v, ok := m[k]; ok {
		return v, true
	}
	for mk, v := range m {
		if strings.EqualFold(mk, k) {
			return v, true
		}
	}
	return nil, false
}

// equalScalar compares two leaf values; locations compare without case or
// spaces, as ARM normalizes them.
func equalScalar(path string, a, b any) bool {
	if path == "location" {
		as, _ := a.(string)
		bs, _ := b.(string)
		norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "")) }
		return norm(as) == norm(bs)
	}
	return reflect.DeepEqual(a, b)
}
