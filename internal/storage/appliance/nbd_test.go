package appliance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/storage"
)

// requireQemu skips a test without qemu-storage-daemon and qemu-io, or
// fails it in CI (CI=true), where they must be installed.
func requireQemu(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"qemu-storage-daemon", "qemu-io"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required in CI (Debian: qemu-system-common, qemu-utils): %v", tool, err)
			}
			t.Skipf("%s is not installed (Debian: qemu-system-common, qemu-utils): %v", tool, err)
		}
	}
}

func nbdConfig(t testing.TB) Config {
	t.Helper()
	requireQemu(t)
	cfg := testConfig(t, "nbd")
	path, err := exec.LookPath("qemu-storage-daemon")
	if err != nil {
		t.Fatal(err)
	}
	cfg.QemuStorageDaemon = path
	// A range of its own: tests that run at once (and the end-to-end
	// tests, from 21000) must not take the ports a restart gets back.
	first := 24000 + 50*int(nbdTestPorts.Add(1)%40)
	cfg.NBDPorts = PortRange{First: first, Last: first + 49}
	return cfg
}

var nbdTestPorts atomic.Int32

func randomKey(t testing.TB) string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// clientArgs are qemu-io's arguments to open the export over TLS-PSK with
// identity and key, or without TLS when identity is empty.
func clientArgs(t testing.TB, e storage.Export, identity, key string) []string {
	t.Helper()
	image := fmt.Sprintf("driver=nbd,server.type=inet,server.host=%s,server.port=%d,export=%s", e.Host, e.Port, e.ExportName)
	if identity == "" {
		return []string{"--image-opts", image}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "keys.psk"), []byte(identity+":"+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--object", "tls-creds-psk,id=tls0,endpoint=client,dir=" + dir + ",username=" + identity,
		"--image-opts", image + ",tls-creds=tls0"}
}

// qemuIO runs qemu-io commands on the export as a client would.
func qemuIO(t *testing.T, e storage.Export, identity, key string, cmds ...string) (string, error) {
	t.Helper()
	args := clientArgs(t, e, identity, key)
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "qemu-io", args...).CombinedOutput()
	return string(out), err
}

// mustIO runs qemu-io commands that must succeed: exit 0, and no failed
// command or pattern verification in the output.
func mustIO(t *testing.T, e storage.Export, identity, key string, cmds ...string) string {
	t.Helper()
	out, err := qemuIO(t, e, identity, key, cmds...)
	if err != nil || strings.Contains(out, "failed") {
		t.Fatalf("qemu-io %q on %s = %v:\n%s", cmds, e.URI(), err, out)
	}
	return out
}

// childDaemons are the qemu-storage-daemon processes this test process
// started that still run.
func childDaemons(t testing.TB) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // it exited
		}
		// pid (comm) state ppid ...
		s := string(b)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) && strings.HasPrefix(s[open+1:close], "qemu-storage") {
			out = append(out, e.Name())
		}
	}
	return out
}

func fingerprint(t testing.TB, svc *Service) string {
	t.Helper()
	conn, err := storage.ParseConnection(svc.ConnectionString())
	if err != nil {
		t.Fatal(err)
	}
	return conn.Trust.Fingerprint
}

// TestNBDRestart writes through an export over TLS-PSK, stops the
// service, starts another on the same directory and reads the data back
// through the same export.
func TestNBDRestart(t *testing.T) {
	cfg := nbdConfig(t)
	svc := startService(t, cfg)
	c, stop := run(t, svc, cfg)
	ctx := t.Context()
	key := randomKey(t)
	if _, err := c.PutVolume(ctx, "vol-1", 16); err != nil {
		t.Fatal(err)
	}
	e, err := c.PutExport(ctx, "vol-1", "att-1", storage.ExportSpec{PSKIdentity: "host-1", PSK: key})
	if err != nil {
		t.Fatal(err)
	}
	if e.ExportName != "vol-1" || e.Host != "127.0.0.1" || e.Port < cfg.NBDPorts.First || e.Port > cfg.NBDPorts.Last {
		t.Fatalf("PutExport() = %+v, want export vol-1 on 127.0.0.1 in %s", e, cfg.NBDPorts)
	}
	mustIO(t, e, "host-1", key, "write -P 0xab 0 1M")

	for _, tc := range []struct{ name, identity, key string }{
		{"wrong key", "host-1", randomKey(t)},
		{"wrong identity", "host-2", key},
		{"no TLS", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out, err := qemuIO(t, e, tc.identity, tc.key, "read 0 4096"); err == nil && !strings.Contains(out, "failed") {
				t.Errorf("qemu-io with %s = success, want refused:\n%s", tc.name, out)
			}
		})
	}

	before, err := c.Volumes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 1 || before[0].AllocatedMiB < 1 || before[0].SizeMiB != 16 {
		t.Fatalf("Volumes() = %+v, want vol-1 of 16 MiB with at least 1 MiB allocated", before)
	}
	for _, f := range []string{"state.json", "tls.key", "exports/vol-1/att-1/keys.psk", "volumes/vol-1.img"} {
		if fi, err := os.Stat(filepath.Join(cfg.DataDir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", f, fi.Mode(), err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(cfg.DataDir, "exports/vol-1/att-1/keys.psk")); err != nil || string(b) != "host-1:"+key+"\n" {
		t.Errorf("keys.psk = %q, %v; want host-1:<key>", b, err)
	}

	stop()
	if pids := childDaemons(t); len(pids) > 0 {
		t.Fatalf("qemu-storage-daemon processes %v still run after the service stopped", pids)
	}
	if _, err := qemuIO(t, e, "host-1", key, "read 0 4096"); err == nil {
		t.Errorf("qemu-io on a stopped service succeeded")
	}

	svc2 := startService(t, cfg)
	c2, _ := run(t, svc2, cfg)
	if fingerprint(t, svc2) != fingerprint(t, svc) {
		t.Errorf("fingerprint after restart = %s, want %s", fingerprint(t, svc2), fingerprint(t, svc))
	}
	after, err := c2.Volumes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("Volumes() after restart (-before +after):\n%s", diff)
	}
	mustIO(t, e, "host-1", key, "read -P 0xab 0 1M")

	// Each read's reply is several TLS records: without TCP_NODELAY on
	// the daemon's connections, each waits ~40 ms for a delayed ACK.
	reads := make([]string, 100)
	for i := range reads {
		reads[i] = fmt.Sprintf("read -P 0xab %d 4096", i*4096)
	}
	t0 := time.Now()
	mustIO(t, e, "host-1", key, reads...)
	if took := time.Since(t0); took > 2*time.Second {
		t.Errorf("100 reads of 4 KiB took %s, want well under 4 s (40 ms each: Nagle's algorithm)", took)
	}

	st, err := c2.Status(ctx)
	if err != nil || st.Health != storage.HealthAvailable || st.Driver != "nbd" || st.CapacityMiB <= 0 {
		t.Errorf("Status() = %+v, %v; want nbd, Available, a capacity", st, err)
	}
}

// TestNBDGrowWhileExported grows a volume with two attachments and reads
// beyond its old size through them.
func TestNBDGrowWhileExported(t *testing.T) {
	cfg := nbdConfig(t)
	c, _ := run(t, startService(t, cfg), cfg)
	ctx := t.Context()
	if _, err := c.PutVolume(ctx, "vol-1", 4); err != nil {
		t.Fatal(err)
	}
	key1, key2 := randomKey(t), randomKey(t)
	e1, err := c.PutExport(ctx, "vol-1", "att-1", storage.ExportSpec{PSKIdentity: "host-1", PSK: key1})
	if err != nil {
		t.Fatal(err)
	}
	e2, err := c.PutExport(ctx, "vol-1", "att-2", storage.ExportSpec{PSKIdentity: "host-2", PSK: key2})
	if err != nil {
		t.Fatal(err)
	}
	if e1.Port == e2.Port {
		t.Fatalf("two exports on port %d", e1.Port)
	}
	if _, err := qemuIO(t, e2, "host-1", key1, "read 0 4096"); err == nil {
		t.Errorf("att-1's key opened att-2")
	}
	mustIO(t, e1, "host-1", key1, "write -P 0xab 0 1M")
	mustIO(t, e2, "host-2", key2, "read -P 0xab 0 1M")

	if v, err := c.PutVolume(ctx, "vol-1", 8); err != nil || v.SizeMiB != 8 {
		t.Fatalf("PutVolume(8) = %+v, %v", v, err)
	}
	if out := mustIO(t, e2, "host-2", key2, "length", "read -P 0 6M 4096", "write -P 0xcd 6M 4096"); !strings.Contains(out, "8 MiB") {
		t.Errorf("length after growing = %q, want 8 MiB", out)
	}
	mustIO(t, e1, "host-1", key1, "read -P 0xcd 6M 4096", "read -P 0xab 0 1M")

	// A new key for att-1: the old one is refused, on the same port.
	key3 := randomKey(t)
	e3, err := c.PutExport(ctx, "vol-1", "att-1", storage.ExportSpec{PSKIdentity: "host-1", PSK: key3})
	if err != nil || e3 != e1 {
		t.Fatalf("PutExport(new key) = %+v, %v; want %+v", e3, err, e1)
	}
	if _, err := qemuIO(t, e1, "host-1", key1, "read 0 4096"); err == nil {
		t.Errorf("the replaced key still opens att-1")
	}
	mustIO(t, e1, "host-1", key3, "read -P 0xab 0 1M")

	// A daemon that dies leaves the appliance Degraded until the control
	// plane puts the export again.
	pids := childDaemons(t)
	if len(pids) != 2 {
		t.Fatalf("daemons = %v, want 2", pids)
	}
	pid, _ := strconv.Atoi(pids[0])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Health == storage.HealthDegraded && strings.Contains(st.HealthMessage, "is not served") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Status() after a daemon died = %s %q, want Degraded", st.Health, st.HealthMessage)
		}
	}
	for _, p := range []struct{ name, identity, key string }{{"att-1", "host-1", key3}, {"att-2", "host-2", key2}} {
		if _, err := c.PutExport(ctx, "vol-1", p.name, storage.ExportSpec{PSKIdentity: p.identity, PSK: p.key}); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := c.Status(ctx); err != nil || st.Health != storage.HealthAvailable {
		t.Errorf("Status() after putting the exports again = %s %q, %v; want Available", st.Health, st.HealthMessage, err)
	}
	mustIO(t, e1, "host-1", key3, "read -P 0xcd 6M 4096")
	mustIO(t, e2, "host-2", key2, "read -P 0xcd 6M 4096")

	for _, name := range []string{"att-1", "att-2"} {
		if err := c.DeleteExport(ctx, "vol-1", name); err != nil {
			t.Fatal(err)
		}
	}
	if pids := childDaemons(t); len(pids) > 0 {
		t.Errorf("qemu-storage-daemon processes %v still run without exports", pids)
	}
	if err := c.DeleteVolume(ctx, "vol-1"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"volumes/vol-1.img", "exports/vol-1"} {
		if _, err := os.Stat(filepath.Join(cfg.DataDir, f)); !os.IsNotExist(err) {
			t.Errorf("%s after delete: %v, want it gone", f, err)
		}
	}
}

// TestNBDPorts gives exports the ports of the range that nothing uses,
// and forgets a new export whose daemon does not start.
func TestNBDPorts(t *testing.T) {
	cfg := nbdConfig(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	first := taken.Addr().(*net.TCPAddr).Port
	cfg.NBDPorts = PortRange{First: first, Last: first + 2}
	svc := startService(t, cfg)
	c, _ := run(t, svc, cfg)
	ctx := t.Context()
	if _, err := c.PutVolume(ctx, "vol-1", 4); err != nil {
		t.Fatal(err)
	}
	put := func(name string) (storage.Export, error) {
		return c.PutExport(ctx, "vol-1", name, storage.ExportSpec{PSKIdentity: "host-1", PSK: keyA})
	}
	if e, err := put("att-1"); err != nil || e.Port != first+1 {
		t.Fatalf("PutExport(att-1) = %+v, %v; want port %d, the first one free", e, err, first+1)
	}

	d := svc.driver.(*NBD)
	setDaemon := func(path string) {
		d.mu.Lock()
		defer d.mu.Unlock()
		d.cfg.DaemonPath = path
	}
	setDaemon("/bin/false")
	if e, err := put("att-2"); err == nil {
		t.Fatalf("PutExport(att-2) with a daemon that exits = %+v, want an error", e)
	}
	if v, _, err := d.Volume("vol-1"); err != nil || len(v.Exports) != 1 {
		t.Errorf("exports after a failed PutExport = %+v, %v; want att-1 only", v.Exports, err)
	}
	setDaemon(cfg.QemuStorageDaemon)
	if e, err := put("att-2"); err != nil || e.Port != first+2 {
		t.Fatalf("PutExport(att-2) = %+v, %v; want port %d", e, err, first+2)
	}
	if e, err := put("att-3"); err == nil {
		t.Errorf("PutExport(att-3) beyond the range = %+v, want an error", e)
	}
}

// FuzzDecodeCatalog reads arbitrary state.json files: an error or a
// catalog that holds only valid names and keys, never a panic.
func FuzzDecodeCatalog(f *testing.F) {
	f.Add([]byte(`{"volumes": {"vol-1": {"sizeMiB": 16, "exports": {"att-1": {"pskIdentity": "host-1", "psk": "` + keyA + `", "port": 10809}}}}}`))
	f.Add([]byte(`{"volumes": {"../x": {"sizeMiB": 1}}}`))
	f.Add([]byte(`{"volumes": {"vol-1": null}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCatalog(b)
		if err != nil {
			return
		}
		for serial, v := range c.Volumes {
			if !storage.ValidName(serial) || v.SizeMiB <= 0 {
				t.Errorf("decodeCatalog(%q) accepted volume %q", b, serial)
			}
			for name := range v.Exports {
				if !storage.ValidName(name) {
					t.Errorf("decodeCatalog(%q) accepted export %q", b, name)
				}
			}
		}
	})
}

// TestNBDMissingFile: a volume's file removed from under the service
// makes the appliance Degraded, naming the volume; listing still works.
func TestNBDMissingFile(t *testing.T) {
	cfg := nbdConfig(t)
	svc := startService(t, cfg)
	c, _ := run(t, svc, cfg)
	ctx := t.Context()
	if _, err := c.PutVolume(ctx, "vol-1", 16); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(cfg.DataDir, "volumes", "vol-1.img")); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Health != storage.HealthDegraded || !strings.Contains(st.HealthMessage, "vol-1") {
		t.Errorf("Status() = %s %q, %v; want Degraded naming vol-1", st.Health, st.HealthMessage, err)
	}
	if vs, err := c.Volumes(ctx); err != nil || len(vs) != 1 {
		t.Errorf("Volumes() = %v, %v; want vol-1 listed", vs, err)
	}
}
