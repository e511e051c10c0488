package networkcloud

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestParseBMC(t *testing.T) {
	tests := []struct {
		in      string
		want    bmcAddress
		wantErr string
	}{
		{"redfish+https://10.0.0.5", bmcAddress{Endpoint: "https://10.0.0.5", Host: "10.0.0.5"}, ""},
		{"redfish+https://BMC-7.Rack1:8443/redfish/v1/Systems/1/?fingerprint=AB:CD",
			bmcAddress{Endpoint: "https://BMC-7.Rack1:8443", Host: "bmc-7.rack1:8443", System: "/redfish/v1/Systems/1", Fingerprint: "AB:CD"}, ""},
		{"https://[fd00::5]:443?insecure=true", bmcAddress{Endpoint: "https://[fd00::5]:443", Host: "[fd00::5]:443", Insecure: true}, ""},
		{"redfish+http://127.0.0.1:8000/redfish/v1", bmcAddress{Endpoint: "http://127.0.0.1:8000", Host: "127.0.0.1:8000"}, ""},
		{"", bmcAddress{}, "is required"},
		{"10.0.0.5", bmcAddress{}, "is not a URL"},
		{"ipmi://10.0.0.5", bmcAddress{}, "must use redfish+https"},
		{"redfish+https://", bmcAddress{}, "is not a URL"},
	}
	for _, tt := range tests {
		got, err := parseBMC(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parseBMC(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseBMC(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseBMC(f *testing.F) {
	for _, s := range []string{"redfish+https://10.0.0.5:443/redfish/v1/Systems/1?fingerprint=ab", "http://x", "::", "redfish+https://%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseBMC(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(a.Endpoint, "https://") && !strings.HasPrefix(a.Endpoint, "http://") || a.Host == "" {
			t.Errorf("parseBMC(%q) = %+v: no endpoint or host", s, a)
		}
		if a.Host != strings.ToLower(a.Host) {
			t.Errorf("parseBMC(%q): host %q is not lower case", s, a.Host)
		}
	})
}

func TestDecodeMachineInput(t *testing.T) {
	tests := []struct {
		action, body string
		wantErr      string // the field named, or "" for none
	}{
		{"powerOff", `{"skipShutdown":"True"}`, ""},
		{"powerOff", `{"skipShutdown":"True","safeguardMode":"None"}`, ""},
		{"powerOff", `{}`, ""},
		{"powerOff", `{"skipShutdown":"Maybe"}`, "skipShutdown"},
		{"powerOff", `{"evacuate":"True"}`, "evacuate"},
		{"start", `{"safeguardMode":"None"}`, "safeguardMode"},
		{"cordon", `{"evacuate":"False"}`, ""},
		{"cordon", `{"evacuate":true}`, "evacuate"},
		{"reimage", `{"safeguardMode":"All"}`, ""},
		{"replace", `{"serialNumber":"SN1","bootMacAddress":"00:11:22:33:44:55","bmcCredentials":{"username":"u","password":"p"}}`, ""},
		{"replace", `{"bootMacAddress":"00:11:22:33:44"}`, "bootMacAddress"},
		{"replace", `{"machineName":"bad_name"}`, "machineName"},
		{"replace", `{"bmcConnectionString":"ipmi://x"}`, "bmcConnectionString"},
		{"replace", `{"storagePolicy":"KeepSome"}`, "storagePolicy"},
		{"restart", `[]`, "<any>"},
	}
	for _, tt := range tests {
		_, err := decodeMachineInput(tt.action, machineActions[tt.action], json.RawMessage(tt.body))
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s %s: %v, want no error", tt.action, tt.body, err)
		case tt.wantErr == "<any>" && err == nil:
			t.Errorf("%s %s: no error", tt.action, tt.body)
		case tt.wantErr != "" && tt.wantErr != "<any>" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s %s: error %v, want one naming %s", tt.action, tt.body, err, tt.wantErr)
		}
	}
}

func FuzzDecodeMachineInput(f *testing.F) {
	f.Add("replace", `{"serialNumber":"SN1","bmcCredentials":{"username":"u","password":"p"}}`)
	f.Add("powerOff", `{"skipShutdown":"True"}`)
	f.Add("cordon", `{"evacuate":"True","safeguardMode":"None"}`)
	f.Fuzz(func(t *testing.T, action, body string) {
		a, ok := machineActions[action]
		if !ok {
			return
		}
		in, err := decodeMachineInput(action, a, json.RawMessage(body))
		if err != nil {
			return
		}
		for _, v := range []string{in.SkipShutdown, in.Evacuate} {
			if v != "" && v != "True" && v != "False" {
				t.Errorf("%s %s: accepted %q", action, body, v)
			}
		}
	})
}

func TestReadyState(t *testing.T) {
	tests := []struct {
		status, power, cordon, want string
	}{
		{"Provisioned", "On", "Uncordoned", "True"},
		{"Provisioned", "On", "Cordoned", "False"},
		{"Provisioned", "Off", "Uncordoned", "False"},
		{"Error", "On", "Uncordoned", "False"},
		{"Provisioning", "On", "", "False"},
	}
	for _, tt := range tests {
		props := map[string]any{"detailedStatus": tt.status, "powerState": tt.power, "cordonStatus": tt.cordon}
		setReadyState(props)
		if props["readyState"] != tt.want {
			t.Errorf("%s/%s/%s: readyState %v, want %s", tt.status, tt.power, tt.cordon, props["readyState"], tt.want)
		}
	}
}
