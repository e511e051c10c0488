package arm

import (
	"errors"
	"strings"
	"testing"
)

func TestParseFilter(t *testing.T) {
	tests := []struct {
		in   string
		want Filter
	}{
		{"", Filter{}},
		{"   ", Filter{}},
		{"resourceGroup eq 'rg1'", Filter{ResourceGroup: "rg1"}},
		{"resourceType eq 'Microsoft.NetworkCloud/bareMetalMachines'", Filter{ResourceType: "Microsoft.NetworkCloud/bareMetalMachines"}},
		{"name eq 'x'", Filter{Name: "x"}},
		{"tagName eq 'env'", Filter{TagName: "env"}},
		{"tagName eq 'env' and tagValue eq 'dev'", Filter{TagName: "env", TagValue: "dev"}},
		{"substringof('web', name)", Filter{NameContains: "web"}},
		{"location eq 'local'", Filter{Location: "local"}},
		{"ResourceGroup EQ 'rg1' AND resourcetype Eq 'NS/t'", Filter{ResourceGroup: "rg1", ResourceType: "NS/t"}},
		{"resourceGroup eq 'rg1' and resourceType eq 'NS/t' and name eq 'n' and location eq 'local'",
			Filter{ResourceGroup: "rg1", ResourceType: "NS/t", Name: "n", Location: "local"}},
		{"SubstringOf( 'a''b' , NAME ) and resourceGroup eq 'rg'", Filter{NameContains: "a'b", ResourceGroup: "rg"}},
		{"name eq 'it''s'", Filter{Name: "it's"}},
		{"name eq ''''", Filter{Name: "'"}},
		{"name eq 'a and b or c'", Filter{Name: "a and b or c"}},
		{"name eq 'ünï'", Filter{Name: "ünï"}},
		{"\tname\neq 'x'  ", Filter{Name: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFilter(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("ParseFilter(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseFilterErrors(t *testing.T) {
	tests := []struct {
		in  string
		msg string // substring naming the problem
	}{
		{"name eq 'a' or name eq 'b'", "'or' is not supported"},
		{"name ne 'a'", "expected eq after 'name', got 'ne'"},
		{"name eq a", "expected a quoted string after eq, got 'a'"},
		{"name eq 'a", "not closed"},
		{"name eq", "got the end"},
		{"name eq 'a' and", "expected a field name, got the end"},
		{"foo eq 'a'", "filtering on 'foo' is not supported"},
		{"name eq 'a' name eq 'b'", "'name' is not supported; join conditions with and"},
		{"name eq 'a' and name eq 'b'", "'name' is given twice"},
		{"tagValue eq 'v'", "tagValue needs tagName"},
		{"substringof('a', resourceGroup)", "substringof is supported on name only"},
		{"substringof('a' name)", "expected substringof('value', name), got 'name'"},
		{"substringof(name, 'a')", "expected substringof('value', name), got 'name'"},
		{"(name eq 'a')", "expected a field name, got '('"},
		{"not name eq 'a'", "filtering on 'not' is not supported"},
		{"name eq 'a' & x", "unexpected character '&' at offset 12"},
		{"startswith(name, 'a')", "filtering on 'startswith' is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFilter(tt.in)
			e, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("ParseFilter(%q) = %+v, %v; want *Error", tt.in, got, err)
			}
			if e.Status != 400 || e.Code != CodeBadRequest || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("ParseFilter(%q) = %d %v; want 400 BadRequest containing %q", tt.in, e.Status, e, tt.msg)
			}
		})
	}
}

func TestFilterMatch(t *testing.T) {
	bmm := Item{ResourceGroup: "RG1", Type: "Microsoft.NetworkCloud/bareMetalMachines", Name: "WebServer01",
		Location: "West US", Tags: map[string]string{"Env": "Dev", "team": ""}}
	tests := []struct {
		filter string
		want   bool
	}{
		{"", true},
		{"resourceGroup eq 'rg1'", true},
		{"resourceGroup eq 'rg2'", false},
		{"resourceType eq 'microsoft.networkcloud/baremetalmachines'", true},
		{"resourceType eq 'Microsoft.NetworkCloud/racks'", false},
		{"name eq 'webserver01'", true},
		{"name eq 'webserver'", false},
		{"substringof('SERVER', name)", true},
		{"substringof('db', name)", false},
		{"location eq 'westus'", true},
		{"location eq 'West US'", true},
		{"location eq 'eastus'", false},
		{"tagName eq 'env'", true},
		{"tagName eq 'team'", true},
		{"tagName eq 'owner'", false},
		{"tagName eq 'env' and tagValue eq 'dev'", true},
		{"tagName eq 'env' and tagValue eq 'prod'", false},
		{"tagName eq 'team' and tagValue eq 'dev'", false},
		{"resourceGroup eq 'rg1' and name eq 'WebServer01' and tagName eq 'Env'", true},
		{"resourceGroup eq 'rg1' and name eq 'other'", false},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			f, err := ParseFilter(tt.filter)
			if err != nil {
				t.Fatalf("ParseFilter(%q): %v", tt.filter, err)
			}
			if got := f.Match(bmm); got != tt.want {
				t.Errorf("ParseFilter(%q).Match(%+v) = %v, want %v", tt.filter, bmm, got, tt.want)
			}
		})
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"", "resourceGroup eq 'rg1'", "resourceType eq 'NS/type'", "name eq 'it''s'",
		"tagName eq 'k' and tagValue eq 'v'", "substringof('x', name)", "location eq 'local'",
		"name eq 'a' or name eq 'b'", "substringof('", "name eq '''",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Fatalf("ParseFilter(%q) error %T, want *Error", s, err)
			}
			return
		}
		flt.Match(Item{Name: s, Tags: map[string]string{s: s}})
	})
}
