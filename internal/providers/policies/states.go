package policies

import (
	"encoding/json"
	"strings"

	"github.com/citadel-cloud/citadel/internal/compliance"
)

// report is the evaluation as Microsoft.PolicyInsights reports it.
func (ev evaluated) report() compliance.State {
	id := mustID(ev.resource.ID)
	a := ev.assigned
	r := ev.result
	s := compliance.State{
		Timestamp:                   ev.at,
		ResourceID:                  ev.resource.ID,
		SubscriptionID:              id.Subscription,
		ResourceGroup:               id.ResourceGroup,
		ResourceType:                ev.resource.Type,
		ResourceLocation:            ev.resource.Location,
		ResourceTags:                jsonString(ev.resource.Tags),
		PolicyAssignmentID:          a.resource.ID,
		PolicyAssignmentName:        a.resource.Name,
		PolicyAssignmentParameters:  jsonString(a.props.Parameters),
		PolicyAssignmentScope:       a.props.Scope,
		PolicyDefinitionID:          r.DefinitionID,
		PolicyDefinitionName:        mustID(r.DefinitionID).Name(),
		PolicyDefinitionAction:      strings.ToLower(string(r.Effect)),
		PolicyDefinitionReferenceID: r.ReferenceID,
		PolicyDefinitionGroupNames:  r.GroupNames,
		ComplianceState:             ev.state,
	}
	if r.SetDefinitionID != "" {
		s.PolicySetDefinitionID, s.PolicySetDefinitionName = r.SetDefinitionID, mustID(r.SetDefinitionID).Name()
	}
	if meta, ok := a.definition.Properties["metadata"].(map[string]any); ok {
		category, _ := meta["category"].(string)
		if r.SetDefinitionID != "" {
			s.PolicySetDefinitionCategory = category
		} else {
			s.PolicyDefinitionCategory = category
		}
	}
	if len(r.Reasons) > 0 {
		d := &compliance.EvaluationDetails{}
		for _, reason := range r.Reasons {
			d.EvaluatedExpressions = append(d.EvaluatedExpressions, compliance.ExpressionDetails{
				Result: map[bool]string{true: "True", false: "False"}[reason.Result], ExpressionKind: reason.Kind,
				Expression: reason.Expression, Path: reason.Path, ExpressionValue: reason.Value,
				TargetValue: reason.Target, Operator: reason.Operator,
			})
		}
		s.PolicyEvaluationDetails = d
	}
	return s
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return "{}"
	}
	return string(b)
}
