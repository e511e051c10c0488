package authorization

import "testing"

func TestParseDefinitionFilter(t *testing.T) {
	tests := []struct {
		in        string
		name, typ string
		wantErr   bool
	}{
		{in: ""},
		{in: "roleName eq 'Reader'", name: "Reader"},
		{in: "type eq 'BuiltInRole'", typ: "BuiltInRole"},
		{in: "roleName eq 'O''Brien' and type eq 'CustomRole'", name: "O'Brien", typ: "CustomRole"},
		{in: "RoleName eq 'x'", name: "x"},
		{in: "roleName eq Reader", wantErr: true},
		{in: "roleName ne 'Reader'", wantErr: true},
		{in: "owner eq 'x'", wantErr: true},
		{in: "roleName eq '", wantErr: true},
	}
	for _, tt := range tests {
		name, typ, err := parseDefinitionFilter(tt.in)
		if (err != nil) != tt.wantErr || name != tt.name || typ != tt.typ {
			t.Errorf("parseDefinitionFilter(%q) = %q, %q, %v; want %q, %q, error %v", tt.in, name, typ, err, tt.name, tt.typ, tt.wantErr)
		}
	}
}

func FuzzParseDefinitionFilter(f *testing.F) {
	for _, s := range []string{"", "roleName eq 'Reader'", "type eq 'BuiltInRole' and roleName eq 'a''b'", "x eq", "'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, typ, err := parseDefinitionFilter(s)
		if err != nil && (name != "" || typ != "") {
			t.Fatalf("parseDefinitionFilter(%q) = %q, %q with error %v; want nothing with an error", s, name, typ, err)
		}
	})
}
