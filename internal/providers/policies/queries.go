package policies

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/compliance"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// query reads a policyStates request: its query parameters and the
// states in its scope (the path before /providers/Microsoft.PolicyInsights)
// that the caller may read.
func (p *Provider) query(req *resource.Request) (*compliance.Query, []compliance.State, error) {
	if name := req.ID.Name(); !strings.EqualFold(name, "latest") && !strings.EqualFold(name, "default") {
		return nil, nil, arm.Errorf(http.StatusBadRequest, "InvalidPolicyStatesResource",
			"The policy states resource '%s' is not valid: it must be latest or default.", name)
	}
	q, err := compliance.ParseQuery(req.Query)
	if err != nil {
		var qe *compliance.QueryError
		if errors.As(err, &qe) {
			e := arm.Errorf(http.StatusBadRequest, qe.Code(), "%s", qe.Error())
			e.Target = qe.Parameter
			return nil, nil, e
		}
		return nil, nil, arm.Errorf(http.StatusBadRequest, "InvalidQueryParameter", "%s", err)
	}
	scope := ""
	if req.ID.Scope != nil {
		scope = req.ID.Scope.String()
	} else if parent, ok := req.ID.Parent(); ok {
		scope = scopeString(parent)
	}
	q.Endpoint = req.BaseURL + strings.TrimSuffix(scope, "/") + "/providers/" + insights + "/policyStates"
	q.Resource = strings.ToLower(req.ID.Name())
	var states []compliance.State
	for _, ev := range p.states.within(scope) {
		if req.CanRead != nil && !req.CanRead(ev.resource.Type, ev.resource.ID) {
			continue
		}
		states = append(states, ev.report())
	}
	return q, states, nil
}

// queryResults answers POST …/policyStates/{latest|default}/queryResults.
func (p *Provider) queryResults(_ context.Context, req *resource.Request) (*resource.Response, error) {
	q, states, err := p.query(req)
	if err != nil {
		return nil, err
	}
	return &resource.Response{Status: http.StatusOK, Body: q.Results(states, time.Now().UTC())}, nil
}

// summarize answers POST …/policyStates/latest/summarize.
func (p *Provider) summarize(_ context.Context, req *resource.Request) (*resource.Response, error) {
	q, states, err := p.query(req)
	if err != nil {
		return nil, err
	}
	return &resource.Response{Status: http.StatusOK, Body: compliance.Summarize(states, q, time.Now().UTC())}, nil
}
