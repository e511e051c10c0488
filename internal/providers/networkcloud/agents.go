package networkcloud

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentauth"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/controller"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// agentTokenInput is the body of a cluster's issueAgentToken action, a
// Citadel extension: a token for one machine (by name), or for every
// machine of the cluster, valid for a number of minutes (default 60).
type agentTokenInput struct {
	MachineName     string `json:"machineName"`
	ValidForMinutes int    `json:"validForMinutes"`
}

// agentToken is the action's result, in its OperationStatusResult's
// properties: the only place the token is ever shown.
type agentToken struct {
	Token     string `json:"token"`
	ExpiresAt string `json:"expiresAt"`
	Machine   string `json:"machine,omitempty"`
}

func (p *Provider) validateAgentToken(ctx context.Context, r *resource.Resource, input json.RawMessage) error {
	if p.cfg.AgentTokens == nil {
		return arm.Errorf(http.StatusBadRequest, "AgentsNotServed", "This control plane serves no agent API.")
	}
	var in agentTokenInput
	if err := arm.DecodeStrict(input, &in); err != nil {
		return err
	}
	if in.ValidForMinutes < 0 || in.ValidForMinutes > 24*60 {
		return arm.FieldError("validForMinutes", "validForMinutes must be from 1 to 1440, not %d.", in.ValidForMinutes)
	}
	if in.MachineName == "" {
		return nil
	}
	id, err := arm.ParseID(r.ID)
	if err != nil {
		return err
	}
	machines, err := p.inCluster(ctx, id, machineType)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(machines, func(m *resource.Resource) bool { return strings.EqualFold(m.Name, in.MachineName) }) {
		return arm.FieldError("machineName", "The cluster has no machine named '%s'.", in.MachineName)
	}
	return nil
}

// issueAgentToken issues a bootstrap token for the cluster's machines, or
// one of them.
func (p *Provider) issueAgentToken(ctx context.Context, t *resource.Task) (any, error) {
	var in agentTokenInput
	if err := t.Input(&in); err != nil {
		return nil, controller.Terminal(err)
	}
	ttl := time.Hour
	if in.ValidForMinutes > 0 {
		ttl = time.Duration(in.ValidForMinutes) * time.Minute
	}
	g := agentauth.Grant{Cluster: t.Resource.ID}
	if in.MachineName != "" {
		id, err := arm.ParseID(t.Resource.ID)
		if err != nil {
			return nil, err
		}
		machines, err := p.inCluster(ctx, id, machineType)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(machines, func(m *resource.Resource) bool { return strings.EqualFold(m.Name, in.MachineName) })
		if i < 0 {
			return nil, controller.Terminal(arm.FieldError("machineName", "The cluster has no machine named '%s'.", in.MachineName))
		}
		g.Machine = machines[i].ID // as its agent names it
	}
	token, expires, err := p.cfg.AgentTokens.IssueToken(ctx, g, ttl)
	if err != nil {
		return nil, err
	}
	return agentToken{Token: token, ExpiresAt: expires.Format(time.RFC3339), Machine: g.Machine}, nil
}
