package arm

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAPIVersion(t *testing.T) {
	tests := []struct {
		in       string
		want     APIVersion
		str      string
		preview  bool
		wantCode string
	}{
		{"2025-07-15", APIVersion{Date: "2025-07-15"}, "2025-07-15", false, ""},
		{"2024-06-01-preview", APIVersion{Date: "2024-06-01", Suffix: "preview"}, "2024-06-01-preview", true, ""},
		{"2021-04-01-PREVIEW", APIVersion{Date: "2021-04-01", Suffix: "preview"}, "2021-04-01-preview", true, ""},
		{"2020-01-01-alpha", APIVersion{Date: "2020-01-01", Suffix: "alpha"}, "2020-01-01-alpha", true, ""},
		{"2020-01-01-Beta", APIVersion{Date: "2020-01-01", Suffix: "beta"}, "2020-01-01-beta", true, ""},
		{"2020-01-01-rc", APIVersion{Date: "2020-01-01", Suffix: "rc"}, "2020-01-01-rc", true, ""},
		{"2020-01-01-privatepreview", APIVersion{Date: "2020-01-01", Suffix: "privatepreview"}, "2020-01-01-privatepreview", true, ""},
		{"2024-02-29", APIVersion{Date: "2024-02-29"}, "2024-02-29", false, ""},
		{"", APIVersion{}, "", false, CodeMissingAPIVersionParameter},
		{"2021-13-01", APIVersion{}, "", false, CodeInvalidAPIVersionParameter},
		{"2023-02-29", APIVersion{}, "", false, CodeInvalidAPIVersionParameter},
		{"2021-04-00", APIVersion{}, "", false, CodeInvalidAPIVersionParameter},
		{"2021-4-01", APIVersion{}, "", false, CodeInvalidAPIVersionParameter},
		{"2021/04/01", APIVersion{}, "", false, CodeInvalidAPIVersionParameter},
		{"2021-04-01-", APIVersion{}, "", false, CodeInvalidAPIVersionParameter},
		{"2021-04-01-hybrid", APIVersion{}, "", false, CodeInvalidAPIVersionParameter},
		{"2021-04-01preview", APIVersion{}, "", false, CodeInvalidAPIVersionParameter},
		{"2021-04-01 ", APIVersion{}, "", false, CodeInvalidAPIVersionParameter},
		{"latest", APIVersion{}, "", false, CodeInvalidAPIVersionParameter},
		{"１２３４-05-06", APIVersion{}, "", false, CodeInvalidAPIVersionParameter},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseAPIVersion(tt.in)
			if tt.wantCode != "" {
				if e, ok := errors.AsType[*Error](err); !ok || e.Code != tt.wantCode || e.Status != 400 {
					t.Errorf("ParseAPIVersion(%q) = %v, %v; want error %s", tt.in, got, err, tt.wantCode)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseAPIVersion(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if got.String() != tt.str || got.IsPreview() != tt.preview {
				t.Errorf("ParseAPIVersion(%q) = %q preview %v, want %q preview %v", tt.in, got, got.IsPreview(), tt.str, tt.preview)
			}
		})
	}
}

func TestSortAPIVersions(t *testing.T) {
	tests := []struct {
		name   string
		in     []string
		want   []string
		wantAz string // first non-preview, what az picks
	}{
		{"networkcloud",
			[]string{"2023-05-01", "2026-05-01-preview", "2025-09-01", "2026-07-01", "2024-06-01-preview", "2023-07-01", "2025-02-01", "2024-07-01"},
			[]string{"2026-07-01", "2025-09-01", "2025-02-01", "2024-07-01", "2023-07-01", "2023-05-01", "2026-05-01-preview", "2024-06-01-preview"},
			"2026-07-01"},
		{"same date",
			[]string{"2024-01-01-preview", "2024-01-01", "2024-01-01-beta"},
			[]string{"2024-01-01", "2024-01-01-beta", "2024-01-01-preview"},
			"2024-01-01"},
		{"garbage last in order",
			[]string{"zzz", "2020-01-01", "aaa", "2021-01-01-preview"},
			[]string{"2020-01-01", "2021-01-01-preview", "zzz", "aaa"},
			"2020-01-01"},
		{"empty", nil, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := append([]string(nil), tt.in...)
			SortAPIVersions(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("SortAPIVersions(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
			az := ""
			for _, v := range got {
				if p, err := ParseAPIVersion(v); err == nil && !p.IsPreview() {
					az = v
					break
				}
			}
			if az != tt.wantAz {
				t.Errorf("first stable of SortAPIVersions(%q) = %q, want %q", tt.in, az, tt.wantAz)
			}
		})
	}
}

func FuzzParseAPIVersion(f *testing.F) {
	for _, s := range []string{"2025-07-15", "2024-06-01-preview", "2021-13-01", "2021-04-01-PREVIEW", "", "2021-04-01-", "2020-02-30-rc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseAPIVersion(s)
		if err != nil {
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Fatalf("ParseAPIVersion(%q) error %T, want *Error", s, err)
			}
			return
		}
		again, err := ParseAPIVersion(v.String())
		if err != nil || again != v {
			t.Fatalf("ParseAPIVersion(%q) = %v, %v; want %v", v.String(), again, err, v)
		}
	})
}
