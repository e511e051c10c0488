package compliance

import (
	"strings"
	"time"
)

// Compliance states, spelled as Azure writes complianceState.
const (
	Compliant    = "Compliant"
	NonCompliant = "NonCompliant"
	Unknown      = "Unknown" // not evaluated yet, or a manual policy without an attestation
	Exempt       = "Exempt"  // an exemption covers the resource
)

// State is the latest verdict of one policy definition, as assigned, on one
// resource: a PolicyState record of Microsoft.PolicyInsights. Empty strings
// are written as null.
type State struct {
	Timestamp        time.Time // when the resource was evaluated
	ResourceID       string
	SubscriptionID   string
	ResourceGroup    string
	ResourceType     string // "Microsoft.Compute/virtualMachines"
	ResourceLocation string
	ResourceTags     string // the tags as a JSON object
	// ManagementGroupIDs is the comma-separated list of the management
	// groups above the resource.
	ManagementGroupIDs string

	PolicyAssignmentID         string
	PolicyAssignmentName       string
	PolicyAssignmentOwner      string
	PolicyAssignmentParameters string // the assignment's parameters as JSON
	PolicyAssignmentScope      string
	PolicyAssignmentVersion    string
	EffectiveParameters        string // the parameters the definition was evaluated with, as JSON

	PolicyDefinitionID       string
	PolicyDefinitionName     string
	PolicyDefinitionAction   string // the effect, in lower case as Azure writes it: "deny", "auditifnotexists"
	PolicyDefinitionCategory string
	PolicyDefinitionVersion  string

	// The initiative fields are empty when the assignment is of a single
	// definition.
	PolicySetDefinitionID         string
	PolicySetDefinitionName       string
	PolicySetDefinitionOwner      string
	PolicySetDefinitionCategory   string
	PolicySetDefinitionParameters string
	PolicySetDefinitionVersion    string
	PolicyDefinitionReferenceID   string // the definition's policyDefinitionReferenceId in the initiative
	PolicyDefinitionGroupNames    []string

	ComplianceState string // Compliant, NonCompliant, Unknown or Exempt
	// PolicyEvaluationDetails are written only when the query asks for
	// them with $expand=PolicyEvaluationDetails.
	PolicyEvaluationDetails *EvaluationDetails
}

// IsCompliant is the deprecated isCompliant flag Azure still writes and
// filters on: whether the state is Compliant.
func (s *State) IsCompliant() bool { return strings.EqualFold(s.ComplianceState, Compliant) }

// EvaluationDetails say why a state is what it is: the conditions of the
// rule as they were evaluated.
type EvaluationDetails struct {
	EvaluatedExpressions []ExpressionDetails `json:"evaluatedExpressions,omitempty"`
	IfNotExistsDetails   *IfNotExistsDetails `json:"ifNotExistsDetails,omitempty"`
}

// ExpressionDetails is one condition of a policy rule as it was evaluated.
type ExpressionDetails struct {
	Result          string `json:"result"`                   // "True" or "False"
	ExpressionKind  string `json:"expressionKind,omitempty"` // Field, Value or Count
	Expression      string `json:"expression"`               // the field, alias or value expression as written
	Path            string `json:"path,omitempty"`           // the property path read, for a field or an alias
	ExpressionValue any    `json:"expressionValue"`
	TargetValue     any    `json:"targetValue"`
	Operator        string `json:"operator"` // "Equals", "NotContainsKey"
}

// IfNotExistsDetails describe the search of an auditIfNotExists or
// deployIfNotExists effect for its related resources.
type IfNotExistsDetails struct {
	ResourceID     string `json:"resourceId,omitempty"` // the last related resource evaluated
	TotalResources int    `json:"totalResources"`
}

// MarshalJSON writes the state as a PolicyState record with every property,
// policyEvaluationDetails included.
func (s State) MarshalJSON() ([]byte, error) {
	r := row{state: &s}
	fields := make(Row, 0, len(stateColumns))
	for _, c := range stateColumns {
		fields = append(fields, Field{Name: c.name, Value: c.get(&r).jsonValue()})
	}
	return fields.MarshalJSON()
}

// kind is the type of a column or a literal.
type kind uint8

const (
	kindNull   kind = iota
	kindString      // an absent string property is "", which reads as null
	kindBool
	kindTime
	kindNumber  // an aggregate, or a number in a filter
	kindList    // policyDefinitionGroupNames: only 'x' in it can test it
	kindDetails // policyEvaluationDetails: selected, never compared
)

// String names the kind with its OData type, for error messages.
func (k kind) String() string {
	return [...]string{"null", "Edm.String", "Edm.Boolean", "Edm.DateTimeOffset", "Edm.Int64",
		"Collection(Edm.String)", "PolicyEvaluationDetails"}[k]
}

// value is a column of a row, or a literal of a filter.
type value struct {
	kind    kind
	str     string
	flag    bool
	num     int64
	time    time.Time
	list    []string
	details *EvaluationDetails
}

// jsonValue is what the value is written as: an empty string is null and a
// time is RFC 3339 in UTC.
func (v value) jsonValue() any {
	switch v.kind {
	case kindString:
		if v.str == "" {
			return nil
		}
		return v.str
	case kindBool:
		return v.flag
	case kindTime:
		return formatTime(v.time)
	case kindNumber:
		return v.num
	case kindList:
		if v.list == nil {
			return []string{}
		}
		return v.list
	case kindDetails:
		if v.details == nil {
			return nil
		}
		return v.details
	}
	return nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// row is what the query steps pass along: a state, or a group of states
// that $apply made.
type row struct {
	state  *State  // the state; for a group, its first state, which holds the group's values of the state columns it keeps
	values []value // the columns $apply computed, by column.index
	order  int     // the position of the state, or the group, in the input: the last tie-breaker
}

// column is a property of the rows at one step of a query.
type column struct {
	name  string             // as Azure writes it, or the alias an aggregate was given
	kind  kind               //
	read  func(*State) value // a property of the state; nil for a computed column
	index int                // where a computed column is in row.values
}

func (c *column) get(r *row) value {
	if c.read != nil {
		return c.read(r.state)
	}
	return r.values[c.index]
}

func stringColumn(name string, read func(*State) string) *column {
	return &column{name: name, kind: kindString, read: func(s *State) value { return value{kind: kindString, str: read(s)} }}
}

// stateColumns are the properties of a PolicyState record, in the order
// Azure writes them.
var stateColumns = []*column{
	{name: "timestamp", kind: kindTime, read: func(s *State) value { return value{kind: kindTime, time: s.Timestamp} }},
	stringColumn("resourceId", func(s *State) string { return s.ResourceID }),
	stringColumn("policyAssignmentId", func(s *State) string { return s.PolicyAssignmentID }),
	stringColumn("policyDefinitionId", func(s *State) string { return s.PolicyDefinitionID }),
	stringColumn("effectiveParameters", func(s *State) string { return s.EffectiveParameters }),
	{name: "isCompliant", kind: kindBool, read: func(s *State) value { return value{kind: kindBool, flag: s.IsCompliant()} }},
	stringColumn("subscriptionId", func(s *State) string { return s.SubscriptionID }),
	stringColumn("resourceType", func(s *State) string { return s.ResourceType }),
	stringColumn("resourceLocation", func(s *State) string { return s.ResourceLocation }),
	stringColumn("resourceGroup", func(s *State) string { return s.ResourceGroup }),
	stringColumn("resourceTags", func(s *State) string { return s.ResourceTags }),
	stringColumn("policyAssignmentName", func(s *State) string { return s.PolicyAssignmentName }),
	stringColumn("policyAssignmentOwner", func(s *State) string { return s.PolicyAssignmentOwner }),
	stringColumn("policyAssignmentParameters", func(s *State) string { return s.PolicyAssignmentParameters }),
	stringColumn("policyAssignmentScope", func(s *State) string { return s.PolicyAssignmentScope }),
	stringColumn("policyDefinitionName", func(s *State) string { return s.PolicyDefinitionName }),
	stringColumn("policyDefinitionAction", func(s *State) string { return s.PolicyDefinitionAction }),
	stringColumn("policyDefinitionCategory", func(s *State) string { return s.PolicyDefinitionCategory }),
	stringColumn("policySetDefinitionId", func(s *State) string { return s.PolicySetDefinitionID }),
	stringColumn("policySetDefinitionName", func(s *State) string { return s.PolicySetDefinitionName }),
	stringColumn("policySetDefinitionOwner", func(s *State) string { return s.PolicySetDefinitionOwner }),
	stringColumn("policySetDefinitionCategory", func(s *State) string { return s.PolicySetDefinitionCategory }),
	stringColumn("policySetDefinitionParameters", func(s *State) string { return s.PolicySetDefinitionParameters }),
	stringColumn("managementGroupIds", func(s *State) string { return s.ManagementGroupIDs }),
	stringColumn("policyDefinitionReferenceId", func(s *State) string { return s.PolicyDefinitionReferenceID }),
	stringColumn("complianceState", func(s *State) string { return s.ComplianceState }),
	{name: "policyEvaluationDetails", kind: kindDetails, read: func(s *State) value { return value{kind: kindDetails, details: s.PolicyEvaluationDetails} }},
	{name: "policyDefinitionGroupNames", kind: kindList, read: func(s *State) value { return value{kind: kindList, list: s.PolicyDefinitionGroupNames} }},
	stringColumn("policyDefinitionVersion", func(s *State) string { return s.PolicyDefinitionVersion }),
	stringColumn("policySetDefinitionVersion", func(s *State) string { return s.PolicySetDefinitionVersion }),
	stringColumn("policyAssignmentVersion", func(s *State) string { return s.PolicyAssignmentVersion }),
}

// lookup finds a column by name, in any case.
func lookup(columns []*column, name string) *column {
	for _, c := range columns {
		if strings.EqualFold(c.name, name) {
			return c
		}
	}
	return nil
}

// stateColumn is the state column of that name; the name must be one.
func stateColumn(name string) *column {
	c := lookup(stateColumns, name)
	if c == nil {
		panic("compliance: no state column " + name)
	}
	return c
}
