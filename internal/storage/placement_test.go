package storage

import (
	"fmt"
	"strings"
	"testing"
)

func TestPlace(t *testing.T) {
	const a, b, c = "/x/storageAppliances/a", "/x/storageAppliances/b", "/x/storageAppliances/c"
	tests := []struct {
		name    string
		cands   []Candidate
		size    int64
		ratio   float64
		want    string
		wantErr string
	}{
		{"most free wins", []Candidate{{ID: a, CapacityMiB: 1000, ProvisionedMiB: 500}, {ID: b, CapacityMiB: 1000, ProvisionedMiB: 100}}, 100, 1, b, ""},
		{"tie by ID", []Candidate{{ID: b, CapacityMiB: 1000}, {ID: a, CapacityMiB: 1000}}, 100, 1, a, ""},
		{"unavailable skipped", []Candidate{{ID: a, CapacityMiB: 1000, Unavailable: "it does not answer"}, {ID: b, CapacityMiB: 200}}, 100, 1, b, ""},
		{"overcommit lets it fit", []Candidate{{ID: a, CapacityMiB: 1000, ProvisionedMiB: 1000}}, 500, 1.5, a, ""},
		{"exact fit", []Candidate{{ID: a, CapacityMiB: 1000, ProvisionedMiB: 900}}, 100, 1, a, ""},
		{"none fits", []Candidate{{ID: a, CapacityMiB: 1000, ProvisionedMiB: 950}, {ID: c, CapacityMiB: 1000, Unavailable: "it does not answer"}}, 100, 1, "",
			"no storage appliance in reach can take 100 MiB (a: 50 MiB free of 1000 MiB at overcommit ratio 1; c: it does not answer)"},
		{"over limit shows zero free", []Candidate{{ID: a, CapacityMiB: 100, ProvisionedMiB: 300}}, 1, 1, "", "a: 0 MiB free of 100 MiB"},
		{"none in reach", nil, 1, 1, "", "no storage appliance is in reach"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Place(tt.cands, tt.size, tt.ratio)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Place() = %q, %v, want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Place() = %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

func BenchmarkPlace(b *testing.B) {
	cands := make([]Candidate, 64)
	for i := range cands {
		cands[i] = Candidate{ID: fmt.Sprintf("sa%02d", i), CapacityMiB: 1 << 20, ProvisionedMiB: int64(i) << 12}
	}
	for b.Loop() {
		if _, err := Place(cands, 1024, 1.5); err != nil {
			b.Fatal(err)
		}
	}
}

func TestParseConnection(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	tests := []struct {
		in, endpoint, wantErr string
	}{
		{"https://10.0.0.9:8443?fingerprint=" + fp, "https://10.0.0.9:8443", ""},
		{"https://san.local:8443/?insecure=true", "https://san.local:8443", ""},
		{"", "", "empty"},
		{"ftp://x", "", "not a URL"},
		{"https://x:1/api", "", "not a URL"},
		{"https://x:1?fingerprint=zz&insecure=true", "", "exclude each other"},
	}
	for _, tt := range tests {
		c, err := ParseConnection(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseConnection(%q) = %v, want error %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || c.Endpoint != tt.endpoint {
			t.Errorf("ParseConnection(%q) = %+v, %v, want endpoint %s", tt.in, c, err, tt.endpoint)
		}
	}
}

func FuzzParseConnection(f *testing.F) {
	f.Add("https://10.0.0.9:8443?fingerprint=" + strings.Repeat("ab", 32))
	f.Add("http://[::1]:80/?insecure=true")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConnection(s)
		if err == nil && !strings.HasPrefix(c.Endpoint, "http") {
			t.Errorf("ParseConnection(%q) endpoint %q", s, c.Endpoint)
		}
	})
}
