package host

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

func FuzzParseCPUInfo(f *testing.F) {
	f.Add(cpuinfo(4, func(n int) string { return fmt.Sprint(n / 2) }, 2, "fpu amx_tile avx512f"))
	f.Add(cpuinfo(2, func(int) string { return "" }, 0, ""))
	f.Add("processor : 0\ncpu cores : 99999999999999999999\nphysical id : 0\n")
	f.Add("processor : 0\ncpu cores : -3\n\nprocessor : 1\nphysical id : 7\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		cpu, err := parseCPUInfo(strings.NewReader(in))
		if err != nil {
			return
		}
		if cpu.Threads < 1 || cpu.Sockets < 1 || cpu.Sockets > cpu.Threads || cpu.Cores < 1 || cpu.Cores > cpu.Threads {
			t.Fatalf("parseCPUInfo(%q) = %+v, want 1 <= sockets, cores <= threads", in, cpu)
		}
		if !slices.IsSorted(cpu.Flags) || len(slices.Compact(slices.Clone(cpu.Flags))) != len(cpu.Flags) {
			t.Fatalf("parseCPUInfo(%q) flags = %q, want them sorted and distinct", in, cpu.Flags)
		}
		for _, fl := range cpu.Flags {
			if fl == "" || strings.ContainsAny(fl, " \t\n") {
				t.Fatalf("parseCPUInfo(%q) flags = %q, want words", in, cpu.Flags)
			}
		}
	})
}

func FuzzParseMemInfo(f *testing.F) {
	f.Add("MemTotal:       24683748 kB\nMemFree: 1 kB\n", uint64(24683748))
	f.Add("MemTotal: 2048\n", uint64(0))
	f.Add("", uint64(math.MaxUint64/1024+1))
	f.Fuzz(func(t *testing.T, in string, kb uint64) {
		if n, err := parseMemInfo(strings.NewReader(in)); err == nil && n%1024 != 0 {
			t.Fatalf("parseMemInfo(%q) = %d, want whole KiB", in, n)
		}
		// A well-formed MemTotal reads back, or is out of range.
		in = fmt.Sprintf("MemFree: 1 kB\nMemTotal: %d kB\n", kb)
		n, err := parseMemInfo(strings.NewReader(in))
		if kb > math.MaxUint64/1024 {
			if err == nil {
				t.Fatalf("parseMemInfo(%q) = %d, want an error", in, n)
			}
		} else if err != nil || n != kb*1024 {
			t.Fatalf("parseMemInfo(%q) = %d, %v; want %d", in, n, err, kb*1024)
		}
	})
}

// quote writes s as a double-quoted os-release value.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "`", "\\`")
	return `"` + r.Replace(s) + `"`
}

func FuzzParseOSRelease(f *testing.F) {
	f.Add("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_ID=\"12\"\n", "Debian GNU/Linux 12 (bookworm)")
	f.Add("PRETTY_NAME='x'\nNAME=\"\\\"", `a "b" \c $d`+"`e`")
	f.Add("PRETTY_NAME=\"\n", "")
	f.Fuzz(func(t *testing.T, in, name string) {
		o, err := parseOSRelease(strings.NewReader(in))
		if err == nil && strings.ContainsAny(o.Name+o.Version, "\n") {
			t.Fatalf("parseOSRelease(%q) = %+v, want single lines", in, o)
		}
		// Any one-line name, quoted as a shell would, reads back.
		if strings.ContainsAny(name, "\r\n") || len(name) > 1000 {
			return
		}
		in = "NAME=Linux\nPRETTY_NAME=" + quote(name) + "\nVERSION_ID=1\n"
		o, err = parseOSRelease(strings.NewReader(in))
		want := name
		if want == "" {
			want = "Linux" // an empty PRETTY_NAME falls back to NAME
		}
		if err != nil || o.Name != want {
			t.Fatalf("parseOSRelease(%q) = %+v, %v; want name %q", in, o, err, want)
		}
	})
}
