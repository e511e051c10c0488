package appliance

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/storage"
)

// BenchmarkNBD measures 4 KiB I/O through one export (NBD over TLS-PSK to
// qemu-storage-daemon, on loopback) against the same I/O on a local file
// of the same filesystem, with the same client for both: one qemu-io
// process reading its commands from stdin, writeback cache on both
// sides. us/io is per operation, with the client's start and open
// subtracted; nbd/file is the ratio of the two.
func BenchmarkNBD(b *testing.B) {
	const (
		volumeMiB = 64
		ops       = 4096
		blockSize = 4096
	)
	cfg := nbdConfig(b)
	c, _ := run(b, startService(b, cfg), cfg)
	key := randomKey(b)
	if _, err := c.PutVolume(b.Context(), "bench-1", volumeMiB); err != nil {
		b.Fatal(err)
	}
	e, err := c.PutExport(b.Context(), "bench-1", "att-1", storage.ExportSpec{PSKIdentity: "bench", PSK: key})
	if err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(b.TempDir(), "local.img")
	if err := createSparse(file, volumeMiB*mib); err != nil {
		b.Fatal(err)
	}
	paths := []struct {
		name string
		args []string
	}{
		{"file", []string{"-t", "writeback", "-f", "raw", file}},
		{"nbd", append([]string{"-t", "writeback"}, clientArgs(b, e, "bench", key)...)},
	}

	seq, random := make([]int64, ops), make([]int64, ops)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range ops {
		seq[i] = int64(i) * blockSize
		random[i] = rnd.Int64N(volumeMiB*mib/blockSize) * blockSize
	}
	script := func(command string, offsets []int64) string {
		var s strings.Builder
		for _, off := range offsets {
			fmt.Fprintf(&s, "%s %d %d\n", command, off, blockSize)
		}
		return s.String()
	}
	patterns := []struct{ name, script string }{
		{"seq-write", script("write -P 0x5a", seq)},
		{"seq-read", script("read", seq)},
		{"rand-write", script("write -P 0x5a", random)},
		{"rand-read", script("read", random)},
	}
	for _, p := range patterns {
		b.Run(p.name, func(b *testing.B) {
			perIO := map[string]float64{}
			for _, path := range paths {
				b.Run(path.name, func(b *testing.B) {
					start := time.Duration(1 << 62) // the client's start, open and close: the fastest of three
					for range 3 {
						start = min(start, qemuIOScript(b, path.args, ""))
					}
					var total time.Duration
					for b.Loop() {
						total += qemuIOScript(b, path.args, p.script)
					}
					us := float64(total/time.Duration(b.N)-start) / float64(time.Microsecond) / ops
					perIO[path.name] = us
					b.ReportMetric(us, "us/io")
					if file, ok := perIO["file"]; ok && path.name == "nbd" {
						b.ReportMetric(us/file, "nbd/file")
					}
				})
			}
		})
	}
}

// qemuIOScript runs one qemu-io with script on stdin and returns how long
// it took.
func qemuIOScript(b *testing.B, args []string, script string) time.Duration {
	b.Helper()
	cmd := exec.CommandContext(b.Context(), "qemu-io", args...)
	cmd.Stdin = strings.NewReader(script)
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(t0)
	if err != nil || strings.Contains(string(out), "failed") {
		b.Fatalf("qemu-io %q: %v\n%.2000s", args, err, out)
	}
	return took
}
