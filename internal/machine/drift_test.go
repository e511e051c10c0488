package machine

import (
	"encoding/json"
	"fmt"
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDetectDrift(t *testing.T) {
	m := func(name string, change func(*Configuration)) Configuration {
		c := Configuration{Name: name, Cluster: "c1", SKU: "compute", Release: "4.2.0", Running: "4.2.0",
			Kernel: "6.12.0-citadel", OS: "Citadel Host OS 4.2", Agent: "0.1.0", Network: "net-a"}
		if change != nil {
			change(&c)
		}
		return c
	}
	tests := []struct {
		name string
		ms   []Configuration
		want map[string][]DriftItem
	}{
		{"in sync", []Configuration{m("m1", nil), m("m2", nil), m("m3", nil)}, map[string][]DriftItem{}},
		{"a kernel installed by hand", []Configuration{m("m1", nil), m("m2", func(c *Configuration) { c.Kernel = "6.14.2-local" }), m("m3", nil)},
			map[string][]DriftItem{"m2": {{DriftKernel, "6.12.0-citadel", "6.14.2-local"}}}},
		{"another release running", []Configuration{m("m1", func(c *Configuration) { c.Running = "4.1.0" }), m("m2", nil)},
			map[string][]DriftItem{"m1": {{DriftRelease, "4.2.0", "4.1.0"}}}},
		{"an agent and a NIC changed", []Configuration{m("m1", nil), m("m2", nil),
			m("m3", func(c *Configuration) { c.Agent, c.Network = "0.0.9", "net-b" })},
			map[string][]DriftItem{"m3": {{DriftAgent, "0.1.0", "0.0.9"}, {DriftNetwork, "net-a", "net-b"}}}},
		{"no majority: not judged", []Configuration{m("m1", nil), m("m2", func(c *Configuration) { c.Kernel = "other" })}, map[string][]DriftItem{}},
		{"releases judged apart", []Configuration{
			m("m1", nil), m("m2", nil),
			m("m3", func(c *Configuration) { c.Release, c.Running, c.Kernel = "4.3.0", "4.3.0", "6.13.0-citadel" }),
		}, map[string][]DriftItem{}},
		{"clusters judged apart", []Configuration{
			m("m1", nil), m("m2", func(c *Configuration) { c.Cluster, c.OS = "c2", "Citadel Host OS 4.2.1" }),
		}, map[string][]DriftItem{}},
		{"network by SKU", []Configuration{
			m("m1", nil), m("m2", nil), m("m3", func(c *Configuration) { c.SKU, c.Network = "storage", "net-s" }),
		}, map[string][]DriftItem{}},
		{"an item no longer reported", []Configuration{m("m1", nil), m("m2", nil), m("m3", func(c *Configuration) { c.Kernel = "" })},
			map[string][]DriftItem{"m3": {{DriftKernel, "6.12.0-citadel", ""}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, DetectDrift(tt.ms)); d != "" {
				t.Errorf("DetectDrift (-want +got):\n%s", d)
			}
		})
	}
}

func BenchmarkDetectDrift(b *testing.B) {
	var ms []Configuration
	for i := range 1000 {
		ms = append(ms, Configuration{Name: fmt.Sprint("m", i), Cluster: "c", SKU: "compute", Release: "4.2.0", Running: "4.2.0",
			Kernel: "6.12.0-citadel", OS: "Citadel Host OS 4.2", Agent: "0.1.0", Network: "net"})
	}
	ms[17].Kernel = "6.14.2-local"
	for b.Loop() {
		DetectDrift(ms)
	}
}

func TestFirmwareDrift(t *testing.T) {
	sku := &MachineSKU{Firmware: []FirmwareBaseline{{Component: "BIOS", MinVersion: "2.1.0"}, {Component: "BMC", MinVersion: "7.10.30.00"}}}
	for _, tt := range []struct {
		name     string
		firmware map[string]string
		want     []DriftItem
	}{
		{"at the baseline", map[string]string{"BIOS": "2.1.0", "BMC": "7.10.30.00"}, nil},
		{"newer", map[string]string{"bios": "2.19.1", "BMC": "7.10.70.00"}, nil},
		{"older", map[string]string{"BIOS": "1.0.0", "BMC": "7.10.30.00"}, []DriftItem{{"firmware/BIOS", "2.1.0", "1.0.0"}}},
		{"not reported", map[string]string{"BIOS": "2.4.1"}, []DriftItem{{"firmware/BMC", "7.10.30.00", ""}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, FirmwareDrift(sku, tt.firmware)); d != "" {
				t.Errorf("FirmwareDrift (-want +got):\n%s", d)
			}
		})
	}
}

func TestBIOSDrift(t *testing.T) {
	sku := &MachineSKU{BIOSSettings: map[string]any{"BootMode": "Uefi", "ProcVirtualization": "Enabled", "NumaNodesPerSocket": float64(1), "SecureBoot": true}}
	inSync := map[string]any{"BootMode": "Uefi", "ProcVirtualization": "Enabled", "NumaNodesPerSocket": float64(1), "SecureBoot": true, "AdminPhone": ""}
	with := func(change map[string]any) map[string]any {
		m := maps.Clone(inSync)
		for k, v := range change {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return m
	}
	for _, tt := range []struct {
		name  string
		attrs map[string]any
		want  []DriftItem
	}{
		{"in sync, other attributes ignored", inSync, nil},
		{"a number as text", with(map[string]any{"NumaNodesPerSocket": "1"}), nil},
		{"one flipped", with(map[string]any{"ProcVirtualization": "Disabled"}), []DriftItem{{"bios/ProcVirtualization", "Enabled", "Disabled"}}},
		{"case matters", with(map[string]any{"BootMode": "UEFI"}), []DriftItem{{"bios/BootMode", "Uefi", "UEFI"}}},
		{"several, in attribute order", with(map[string]any{"SecureBoot": false, "NumaNodesPerSocket": float64(4), "BootMode": "Bios"}),
			[]DriftItem{{"bios/BootMode", "Uefi", "Bios"}, {"bios/NumaNodesPerSocket", "1", "4"}, {"bios/SecureBoot", "true", "false"}}},
		{"not reported", with(map[string]any{"ProcVirtualization": nil}), []DriftItem{{"bios/ProcVirtualization", "Enabled", ""}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if d := cmp.Diff(tt.want, BIOSDrift(sku, tt.attrs)); d != "" {
				t.Errorf("BIOSDrift (-want +got):\n%s", d)
			}
		})
	}
	if got := BIOSDrift(&MachineSKU{}, inSync); got != nil {
		t.Errorf("BIOSDrift of a SKU without BIOS settings = %v, want none", got)
	}
}

func TestBIOSValue(t *testing.T) {
	for _, tt := range []struct {
		v    any
		want string
	}{
		{nil, ""}, {"Enabled", "Enabled"}, {true, "true"}, {float64(0), "0"}, {2.5, "2.5"}, {float64(1e6), "1000000"}, {7, "7"}, {json.Number("3.0"), "3"},
	} {
		if got := BIOSValue(tt.v); got != tt.want {
			t.Errorf("BIOSValue(%#v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}
