package network

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfigDB(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ConfigDB
		wantErr bool
	}{
		{name: "empty object", in: "{}", want: ConfigDB{}},
		{name: "entries", in: ` {"VLAN": {"Vlan501": {"vlanid": "501", "members@": "Ethernet0,Ethernet4"}, "Vlan502": {}}, "VRF": {}}` + "\n",
			want: ConfigDB{"VLAN": {"Vlan501": {"vlanid": "501", "members@": "Ethernet0,Ethernet4"}, "Vlan502": {}}, "VRF": {}}},
		{name: "escapes", in: `{"PORT": {"Ethernet0": {"description": "to \"x\"\n\u00e9"}}}`,
			want: ConfigDB{"PORT": {"Ethernet0": {"description": "to \"x\"\né"}}}},
		{name: "nothing", in: "", wantErr: true},
		{name: "blank", in: " \n", wantErr: true},
		{name: "array document", in: "[]", wantErr: true},
		{name: "null document", in: "null", wantErr: true},
		{name: "array table", in: `{"VLAN": []}`, wantErr: true},
		{name: "null table", in: `{"VLAN": null}`, wantErr: true},
		{name: "string entry", in: `{"VLAN": {"Vlan501": "x"}}`, wantErr: true},
		{name: "null entry", in: `{"VLAN": {"Vlan501": null}}`, wantErr: true},
		{name: "number value", in: `{"VLAN": {"Vlan501": {"vlanid": 501}}}`, wantErr: true},
		{name: "bool value", in: `{"VLAN": {"Vlan501": {"x": true}}}`, wantErr: true},
		{name: "null value", in: `{"VLAN": {"Vlan501": {"x": null}}}`, wantErr: true},
		{name: "list value", in: `{"VLAN": {"Vlan501": {"members": ["Ethernet0"]}}}`, wantErr: true},
		{name: "object value", in: `{"VLAN": {"Vlan501": {"x": {}}}}`, wantErr: true},
		{name: "duplicate table", in: `{"VLAN": {}, "VLAN": {}}`, wantErr: true},
		{name: "duplicate key", in: `{"VLAN": {"a": {}, "a": {}}}`, wantErr: true},
		{name: "duplicate field", in: `{"VLAN": {"a": {"f": "1", "f": "2"}}}`, wantErr: true},
		{name: "trailing data", in: `{} {}`, wantErr: true},
		{name: "trailing brace", in: `{}}`, wantErr: true},
		{name: "trailing garbage", in: "{}\n#", wantErr: true},
		{name: "truncated", in: `{"VLAN": {"a": {`, wantErr: true},
		{name: "trailing comma", in: `{"VLAN": {},}`, wantErr: true},
		{name: "unquoted name", in: `{VLAN: {}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfigDB([]byte(tt.in))
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseConfigDB(%q) = %v, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConfigDB(%q) error = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseConfigDB(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestConfigDBJSON(t *testing.T) {
	tests := []struct {
		name string
		db   ConfigDB
		want string
	}{
		{"nil", nil, "{}\n"},
		{"empty table and entry", ConfigDB{"VRF": {}, "LOOPBACK_INTERFACE": {"Loopback0": nil}}, `{
  "LOOPBACK_INTERFACE": {
    "Loopback0": {}
  },
  "VRF": {}
}
`},
		{"sorted and escaped", ConfigDB{"PORT": {
			"Ethernet4": {"mtu": "9100", "admin_status": "up"},
			"Ethernet0": {"description": "<a & b>\t\"q\"\\\x01\u2028\xff"},
		}}, `{
  "PORT": {
    "Ethernet0": {
      "description": "<a & b>\t\"q\"\\\u0001\u2028\ufffd"
    },
    "Ethernet4": {
      "admin_status": "up",
      "mtu": "9100"
    }
  }
}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, string(tt.db.JSON())); diff != "" {
				t.Errorf("JSON() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigDBClone(t *testing.T) {
	db := ConfigDB{"VLAN": {"Vlan501": {"mtu": "1500"}}}
	c := db.Clone()
	c["VLAN"]["Vlan501"]["mtu"] = "9000"
	c["VLAN"]["Vlan502"] = map[string]string{}
	c["VRF"] = map[string]map[string]string{}
	if diff := cmp.Diff(ConfigDB{"VLAN": {"Vlan501": {"mtu": "1500"}}}, db); diff != "" {
		t.Errorf("changing a Clone changed the original (-want +got):\n%s", diff)
	}
	if ConfigDB(nil).Clone() != nil {
		t.Errorf("ConfigDB(nil).Clone() is not nil")
	}
}

// FuzzParseConfigDB checks that whatever ParseConfigDB accepts survives
// JSON and parsing again unchanged.
func FuzzParseConfigDB(f *testing.F) {
	golden, err := filepath.Glob(filepath.Join("testdata", "golden", "*.json"))
	if err != nil || len(golden) == 0 {
		f.Fatalf("no golden files to seed from (%v)", err)
	}
	for _, path := range golden {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"VLAN": {"Vlan501": {"vlanid": "501"}}, "VRF": {}}`))
	f.Add([]byte(`{"PORT": {"Ethernet0": {"description": "\u2028\ud800 \"<&>\" \\ \u0000"}}}`))
	f.Add([]byte("{\"a\xff\": {\"b\": {\"c\": \"\xfe\"}}}"))
	f.Add([]byte(`{"VLAN": {"a": {"f": 1}}}`))
	f.Add([]byte(`{"VLAN": {"a": {}}} x`))
	f.Fuzz(func(t *testing.T, data []byte) {
		db, err := ParseConfigDB(data)
		if err != nil {
			return
		}
		out := db.JSON()
		again, err := ParseConfigDB(out)
		if err != nil {
			t.Fatalf("ParseConfigDB(JSON()) error = %v\nJSON:\n%s", err, out)
		}
		if diff := cmp.Diff(db, again); diff != "" {
			t.Fatalf("ParseConfigDB(JSON()) mismatch (-first +second):\n%s", diff)
		}
		if !bytes.Equal(out, again.JSON()) {
			t.Fatalf("JSON() not stable:\n%s\nthen\n%s", out, again.JSON())
		}
	})
}
