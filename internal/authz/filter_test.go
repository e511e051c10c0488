package authz

import (
	"errors"
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/arm"
)

func TestParseAssignmentFilter(t *testing.T) {
	tests := []struct {
		in   string
		want AssignmentFilter
	}{
		{"", AssignmentFilter{}},
		{"  ", AssignmentFilter{}},
		{"atScope()", AssignmentFilter{AtScope: true}},
		{"ATSCOPE ( )", AssignmentFilter{AtScope: true}},
		{"principalId eq '" + alice + "'", AssignmentFilter{PrincipalID: alice}},
		{"principalId eq " + alice, AssignmentFilter{PrincipalID: alice}},
		{"PrincipalID EQ '" + alice + "'", AssignmentFilter{PrincipalID: alice}},
		{"assignedTo('" + alice + "')", AssignmentFilter{AssignedTo: alice}},
		{"assignedto( '" + alice + "' )", AssignmentFilter{AssignedTo: alice}},
		{"atScope() and assignedTo('" + alice + "')", AssignmentFilter{AtScope: true, AssignedTo: alice}},
		{"assignedTo('" + alice + "') AND atScope()", AssignmentFilter{AtScope: true, AssignedTo: alice}},
		{"atScope() and principalId eq '" + alice + "'", AssignmentFilter{AtScope: true, PrincipalID: alice}},
		{"\tprincipalId\neq 'it''s'", AssignmentFilter{PrincipalID: "it's"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAssignmentFilter(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParseAssignmentFilter(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseAssignmentFilterErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"atScope", "The $filter 'atScope' is invalid: atScope takes no arguments: write atScope()."},
		{"atScope('x')", "The $filter 'atScope('x')' is invalid: atScope takes no arguments: write atScope()."},
		{"atScope() and atScope()", "The $filter 'atScope() and atScope()' is invalid: atScope() appears twice."},
		{"atScope() or principalId eq 'x'", "The $filter 'atScope() or principalId eq 'x'' is invalid: expected and or the end, got 'or'."},
		{"atScope() and", "The $filter 'atScope() and' is invalid: expected atScope(), principalId eq or assignedTo(), got the end."},
		{"principalId eq 'x' and assignedTo('y')", "The $filter 'principalId eq 'x' and assignedTo('y')' is invalid: only one of principalId and assignedTo may be given, once."},
		{"principalId eq 'x' and principalId eq 'y'", "The $filter 'principalId eq 'x' and principalId eq 'y'' is invalid: only one of principalId and assignedTo may be given, once."},
		{"principalId ne 'x'", "The $filter 'principalId ne 'x'' is invalid: expected eq after principalId, got 'ne'."},
		{"principalId eq", "The $filter 'principalId eq' is invalid: expected an object ID after principalId eq, got the end."},
		{"principalId eq ''", "The $filter 'principalId eq ''' is invalid: the object ID is empty."},
		{"principalId eq 'x", "The $filter 'principalId eq 'x' is invalid: expected an object ID after principalId eq, got an unterminated string."},
		{"assignedTo(x)", "The $filter 'assignedTo(x)' is invalid: expected a quoted object ID in assignedTo(), got 'x'."},
		{"assignedTo('x'", "The $filter 'assignedTo('x'' is invalid: expected ) after assignedTo('x'."},
		{"assignedTo", "The $filter 'assignedTo' is invalid: expected ( after assignedTo."},
		{"roleDefinitionId eq 'x'", "The $filter 'roleDefinitionId eq 'x'' is invalid: unsupported condition 'roleDefinitionId'; use atScope(), principalId eq or assignedTo()."},
		{"(atScope())", "The $filter '(atScope())' is invalid: expected atScope(), principalId eq or assignedTo(), got '('."},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			f, err := ParseAssignmentFilter(tt.in)
			ae, ok := errors.AsType[*arm.Error](err)
			if !ok || ae.Status != 400 || ae.Code != arm.CodeBadRequest || ae.Message != tt.want {
				t.Fatalf("ParseAssignmentFilter(%q) = %+v, %v; want 400 BadRequest %q", tt.in, f, err, tt.want)
			}
		})
	}
}

func TestAssignmentFilterMatch(t *testing.T) {
	var (
		atSub   = assign(alice, ReaderRole, sub)
		atRG1   = assign(alice, ReaderRole, strings.ToUpper(rg1))
		atVM1   = assign(alice, ReaderRole, vm1)
		atRG10  = assign(alice, ReaderRole, rg10)
		atRoot  = assign(alice, ReaderRole, "/")
		bobRG1  = assign(bob, ReaderRole, rg1)
		opsRG1  = assign(ops, ReaderRole, rg1)
		devsSub = assign(devs, ReaderRole, sub)
	)
	groups := []string{strings.ToUpper(ops)}
	tests := []struct {
		filter string
		a      Assignment
		scope  string
		want   bool
	}{
		// No filter: at, above and below.
		{"", atRoot, rg1, true},
		{"", atSub, rg1, true},
		{"", atRG1, rg1, true},
		{"", atVM1, rg1, true},
		{"", atRG10, rg1, false},
		{"", bobRG1, rg1, true},
		// atScope(): at and above only.
		{"atScope()", atRoot, rg1, true},
		{"atScope()", atSub, rg1, true},
		{"atScope()", atRG1, rg1, true},
		{"atScope()", atVM1, rg1, false},
		{"atScope()", atRG10, rg1, false},
		// principalId eq: that principal only, at, above and below.
		{"principalId eq '" + strings.ToUpper(alice) + "'", atVM1, rg1, true},
		{"principalId eq '" + alice + "'", bobRG1, rg1, false},
		{"principalId eq '" + alice + "'", opsRG1, rg1, false},
		{"principalId eq '" + alice + "'", atRG10, rg1, false},
		// assignedTo: the principal and its groups.
		{"assignedTo('" + alice + "')", atVM1, rg1, true},
		{"assignedTo('" + alice + "')", opsRG1, rg1, true},
		{"assignedTo('" + alice + "')", devsSub, rg1, false},
		{"assignedTo('" + alice + "')", bobRG1, rg1, false},
		{"atScope() and assignedTo('" + alice + "')", opsRG1, rg1, true},
		{"atScope() and assignedTo('" + alice + "')", atVM1, rg1, false},
		{"atScope() and principalId eq '" + alice + "'", atSub, rg1, true},
	}
	for _, tt := range tests {
		f, err := ParseAssignmentFilter(tt.filter)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Match(tt.a, tt.scope, groups); got != tt.want {
			t.Errorf("ParseAssignmentFilter(%q).Match(%s at %s, %s) = %v, want %v", tt.filter, tt.a.PrincipalID, tt.a.Scope, tt.scope, got, tt.want)
		}
	}
}

// format renders f so that ParseAssignmentFilter reads it back.
func format(f AssignmentFilter) string {
	var terms []string
	if f.AtScope {
		terms = append(terms, "atScope()")
	}
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	if f.PrincipalID != "" {
		terms = append(terms, "principalId eq "+quote(f.PrincipalID))
	}
	if f.AssignedTo != "" {
		terms = append(terms, "assignedTo("+quote(f.AssignedTo)+")")
	}
	return strings.Join(terms, " and ")
}

func FuzzParseAssignmentFilter(f *testing.F) {
	for _, s := range []string{
		"", "atScope()", "principalId eq 'x'", "principalId eq x", "assignedTo('x')",
		"atScope() and assignedTo('it''s')", "atScope() or x", "assignedTo('x'", "'", "(", "principalId eq 'a''",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseAssignmentFilter(s)
		if err != nil {
			if ae, ok := errors.AsType[*arm.Error](err); !ok || ae.Status != 400 {
				t.Fatalf("ParseAssignmentFilter(%q) = %v, want a 400 *arm.Error", s, err)
			}
			return
		}
		again, err := ParseAssignmentFilter(format(got))
		if err != nil || again != got {
			t.Errorf("ParseAssignmentFilter(%q) = %+v, %v; want %+v (from %q)", format(got), again, err, got, s)
		}
		got.Match(assign(alice, ReaderRole, sub), s, []string{s})
	})
}
