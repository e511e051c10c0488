package host

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// cpuinfoEntry is one processor's entry in /proc/cpuinfo as x86 Linux
// writes it; an empty physicalID or zero cores leaves that line out, as
// some hypervisors do.
func cpuinfoEntry(n int, physicalID string, cores int, flags string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "processor\t: %d\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 143\n", n)
	b.WriteString("model name\t: Intel(R) Xeon(R) Platinum 8480+\nstepping\t: 8\ncpu MHz\t\t: 2000.000\n")
	if physicalID != "" {
		fmt.Fprintf(&b, "physical id\t: %s\nsiblings\t: 4\ncore id\t\t: %d\n", physicalID, n/2)
	}
	if cores != 0 {
		fmt.Fprintf(&b, "cpu cores\t: %d\n", cores)
	}
	fmt.Fprintf(&b, "fpu\t\t: yes\nflags\t\t: %s\nbogomips\t: 4000.00\npower management:\n\n", flags)
	return b.String()
}

// cpuinfo is a /proc/cpuinfo of threads processors, numbered from 0,
// with the physical id of each from socketOf.
func cpuinfo(threads int, socketOf func(n int) string, cores int, flags string) string {
	var b strings.Builder
	for n := range threads {
		b.WriteString(cpuinfoEntry(n, socketOf(n), cores, flags))
	}
	return b.String()
}

func TestParseCPUInfo(t *testing.T) {
	const model = "Intel(R) Xeon(R) Platinum 8480+"
	socket0 := func(int) string { return "0" }
	noSocket := func(int) string { return "" }
	tests := []struct {
		name string
		in   string
		want agentapi.CPU
	}{
		{
			name: "one socket",
			in:   cpuinfo(2, socket0, 2, "fpu sse2"),
			want: agentapi.CPU{Model: model, Sockets: 1, Cores: 2, Threads: 2, Flags: []string{"fpu", "sse2"}},
		},
		{
			name: "one socket with hyperthreads",
			in:   cpuinfo(4, socket0, 2, "fpu"),
			want: agentapi.CPU{Model: model, Sockets: 1, Cores: 2, Threads: 4, Flags: []string{"fpu"}},
		},
		{
			name: "two sockets",
			in:   cpuinfo(8, func(n int) string { return fmt.Sprint(n / 4) }, 2, "fpu"),
			want: agentapi.CPU{Model: model, Sockets: 2, Cores: 4, Threads: 8, Flags: []string{"fpu"}},
		},
		{
			name: "two sockets interleaved",
			in:   cpuinfo(8, func(n int) string { return fmt.Sprint(n % 2) }, 4, "fpu"),
			want: agentapi.CPU{Model: model, Sockets: 2, Cores: 8, Threads: 8, Flags: []string{"fpu"}},
		},
		{
			name: "no physical id",
			in:   cpuinfo(3, noSocket, 3, "fpu"),
			want: agentapi.CPU{Model: model, Sockets: 1, Cores: 3, Threads: 3, Flags: []string{"fpu"}},
		},
		{
			name: "no physical id nor cpu cores",
			in:   cpuinfo(3, noSocket, 0, "fpu"),
			want: agentapi.CPU{Model: model, Sockets: 1, Cores: 3, Threads: 3, Flags: []string{"fpu"}},
		},
		{
			name: "no cpu cores",
			in:   cpuinfo(4, func(n int) string { return fmt.Sprint(n / 2) }, 0, "fpu"),
			want: agentapi.CPU{Model: model, Sockets: 2, Cores: 4, Threads: 4, Flags: []string{"fpu"}},
		},
		{
			name: "more cores than visible processors",
			in:   cpuinfo(2, socket0, 56, "fpu"),
			want: agentapi.CPU{Model: model, Sockets: 1, Cores: 2, Threads: 2, Flags: []string{"fpu"}},
		},
		{
			name: "AMX flags sorted",
			in:   cpuinfo(1, socket0, 1, "fpu vme avx512f avx512_fp16 amx_tile amx_bf16 amx_int8 avx512f"),
			want: agentapi.CPU{Model: model, Sockets: 1, Cores: 1, Threads: 1,
				Flags: []string{"amx_bf16", "amx_int8", "amx_tile", "avx512_fp16", "avx512f", "fpu", "vme"}},
		},
		{
			name: "model and flags of the first processor",
			in: "processor : 0\nmodel name : A\nflags : a b\n\n" +
				"processor : 1\nmodel name : B\nflags : c\n",
			want: agentapi.CPU{Model: "A", Sockets: 1, Cores: 2, Threads: 2, Flags: []string{"a", "b"}},
		},
		{
			name: "arm64, no model name nor flags",
			in:   "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n\nprocessor\t: 1\nBogoMIPS\t: 50.00\n",
			want: agentapi.CPU{Sockets: 1, Cores: 2, Threads: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCPUInfo(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("parseCPUInfo() error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseCPUInfo() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseCPUInfoErrors(t *testing.T) {
	for _, in := range []string{"", "model name : X\n", "not cpuinfo", "processor\n", strings.Repeat("x", maxLine+1)} {
		if got, err := parseCPUInfo(strings.NewReader(in)); err == nil {
			t.Errorf("parseCPUInfo(%.40q) = %+v, want an error", in, got)
		}
	}
}

func TestParseMemInfo(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{name: "real", in: "MemTotal:       24683748 kB\nMemFree:        23890340 kB\n", want: 24683748 * 1024},
		{name: "not first", in: "MemFree: 1 kB\nMemTotal: 2 kB\n", want: 2048},
		{name: "zero", in: "MemTotal: 0 kB\n", want: 0},
		{name: "missing", in: "MemFree: 1 kB\n", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "no unit", in: "MemTotal: 2048\n", wantErr: true},
		{name: "other unit", in: "MemTotal: 2 MB\n", wantErr: true},
		{name: "not a number", in: "MemTotal: lots kB\n", wantErr: true},
		{name: "negative", in: "MemTotal: -1 kB\n", wantErr: true},
		{name: "overflow", in: "MemTotal: 18014398509481984 kB\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMemInfo(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseMemInfo(%q) = %d, %v; want %d, error %t", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want agentapi.OS
	}{
		{
			name: "debian",
			in: `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
ID=debian
`,
			want: agentapi.OS{Name: "Debian GNU/Linux 12 (bookworm)", Version: "12"},
		},
		{
			name: "unquoted",
			in:   "NAME=Citadel\nPRETTY_NAME=Citadel\nVERSION_ID=4.1\n",
			want: agentapi.OS{Name: "Citadel", Version: "4.1"},
		},
		{
			name: "single quotes",
			in:   "PRETTY_NAME='Ubuntu 24.04 LTS'\nVERSION_ID='24.04'\n",
			want: agentapi.OS{Name: "Ubuntu 24.04 LTS", Version: "24.04"},
		},
		{
			name: "escapes in double quotes",
			in:   `PRETTY_NAME="A \"quoted\" \$name \\ and \` + "`" + `tick\` + "`" + ` \n"` + "\n",
			want: agentapi.OS{Name: `A "quoted" $name \ and ` + "`tick`" + ` \n`},
		},
		{
			name: "comments, blank lines and spaces",
			in:   "# written by hand\n\n  PRETTY_NAME=\"Citadel Host OS\"  \nVERSION_ID=\"4.1\"\r\n",
			want: agentapi.OS{Name: "Citadel Host OS", Version: "4.1"},
		},
		{
			name: "NAME when no PRETTY_NAME",
			in:   "NAME=\"Fedora Linux\"\nVERSION_ID=41\n",
			want: agentapi.OS{Name: "Fedora Linux", Version: "41"},
		},
		{
			name: "unbalanced quote kept",
			in:   "PRETTY_NAME=\"Broken\n",
			want: agentapi.OS{Name: "\"Broken"},
		},
		{name: "empty", in: "", want: agentapi.OS{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOSRelease(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("parseOSRelease() error: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseOSRelease(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}
