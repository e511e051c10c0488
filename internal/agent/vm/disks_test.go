package vm

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/storage"
	"github.com/citadel-cloud/citadel/internal/storage/appliance"
)

// testKey is a PSK in hex, as the control plane makes them.
const testKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func testDisk(serial string, boot bool) agentapi.VMDisk {
	return agentapi.VMDisk{
		Volume: "/subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/volumes/" + serial,
		Serial: serial, URI: "nbd://10.0.0.5:24001/" + serial, PSKIdentity: "att-" + serial, PSK: testKey, OS: boot,
	}
}

func TestParseNBD(t *testing.T) {
	tests := []struct {
		uri  string
		want nbdExport
		err  string
	}{
		{uri: "nbd://10.0.0.5:24001/vol-1", want: nbdExport{Host: "10.0.0.5", Port: 24001, Name: "vol-1"}},
		{uri: "nbd://san.example/vol-1", want: nbdExport{Host: "san.example", Port: 10809, Name: "vol-1"}},
		{uri: "nbd://[fd00::5]:24001/vol-1", want: nbdExport{Host: "fd00::5", Port: 24001, Name: "vol-1"}},
		{uri: "nbd+tcp://10.0.0.5:24001/vol-1", want: nbdExport{Host: "10.0.0.5", Port: 24001, Name: "vol-1"}},
		{uri: "nbd://10.0.0.5:24001/a%2Cb", want: nbdExport{Host: "10.0.0.5", Port: 24001, Name: "a,b"}},
		{uri: "nbd://10.0.0.5:24001", want: nbdExport{Host: "10.0.0.5", Port: 24001}}, // the default export
		{uri: "", err: "no uri"},
		{uri: "http://10.0.0.5:24001/vol-1", err: "want nbd://host:port/export"},
		{uri: "nbd+unix:///vol-1?socket=/run/nbd.sock", err: "want nbd://host:port/export"},
		{uri: "nbd:///vol-1", err: "want nbd://host:port/export"},
		{uri: "nbd://u:p@10.0.0.5/vol-1", err: "want nbd://host:port/export"},
		{uri: "nbd://10.0.0.5/vol-1?tls=off", err: "want nbd://host:port/export"},
		{uri: "nbd://10.0.0.5:0/vol-1", err: `port "0"`},
		{uri: "nbd://10.0.0.5:65536/vol-1", err: `port "65536"`},
		{uri: "nbd://10.0.0.5:port/vol-1", err: "want nbd://host:port/export"},
		{uri: "nbd:10.0.0.5", err: "want nbd://host:port/export"},
	}
	for _, tt := range tests {
		got, err := parseNBD(tt.uri)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseNBD(%q) = %+v, %v; want an error saying %q", tt.uri, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseNBD(%q) = %+v, %v; want %+v", tt.uri, got, err, tt.want)
		}
	}
}

// FuzzParseNBD checks that no URI panics the parser, and that what it
// takes is an export QEMU can be given.
func FuzzParseNBD(f *testing.F) {
	f.Add("nbd://10.0.0.5:24001/vol-1")
	f.Add("nbd://[fd00::5]/a%2Cb")
	f.Add("nbd+unix:///x?socket=/s")
	f.Fuzz(func(t *testing.T, uri string) {
		e, err := parseNBD(uri)
		if err == nil && (e.Host == "" || e.Port < 1 || e.Port > 65535) {
			t.Errorf("parseNBD(%q) = %+v, which QEMU cannot reach", uri, e)
		}
	})
}

func TestCheckDisks(t *testing.T) {
	tests := []struct {
		name string
		edit func(d []agentapi.VMDisk) []agentapi.VMDisk // of an OS disk and a data disk
		err  string
	}{
		{name: "valid", edit: func(d []agentapi.VMDisk) []agentapi.VMDisk { return d }},
		{name: "none", edit: func([]agentapi.VMDisk) []agentapi.VMDisk { return nil }},
		{name: "data disks only", edit: func(d []agentapi.VMDisk) []agentapi.VMDisk { d[0].OS = false; return d }},
		{name: "no uri", edit: func(d []agentapi.VMDisk) []agentapi.VMDisk { d[1].URI = ""; return d },
			err: "disk 1 (volume /subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/volumes/data-1): no uri: want nbd://host:port/export"},
		{name: "second OS disk", edit: func(d []agentapi.VMDisk) []agentapi.VMDisk { d[1].OS = true; return d },
			err: "disk 1 (volume /subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/volumes/data-1): a second OS disk, after disk 0 (volume /subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/volumes/os-1): a VM boots from one"},
		{name: "no serial", edit: func(d []agentapi.VMDisk) []agentapi.VMDisk { d[0].Serial = ""; return d }, err: `disk 0 (volume /subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/volumes/os-1): serial "": want 1 to 36 printable ASCII characters`},
		{name: "long serial", edit: func(d []agentapi.VMDisk) []agentapi.VMDisk { d[0].Serial = strings.Repeat("a", 37); return d }, err: "serial"},
		{name: "serial with a newline", edit: func(d []agentapi.VMDisk) []agentapi.VMDisk { d[0].Serial = "a\nb"; return d }, err: "serial"},
		{name: "identity with a colon", edit: func(d []agentapi.VMDisk) []agentapi.VMDisk { d[0].PSKIdentity = "a:b"; return d }, err: `psk identity "a:b"`},
		{name: "no identity", edit: func(d []agentapi.VMDisk) []agentapi.VMDisk { d[0].PSKIdentity = ""; return d }, err: `psk identity ""`},
		{name: "no psk", edit: func(d []agentapi.VMDisk) []agentapi.VMDisk { d[1].PSK = ""; return d }, err: "disk 1 (volume /subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/volumes/data-1): psk: want the key in hex"},
		{name: "psk not hex", edit: func(d []agentapi.VMDisk) []agentapi.VMDisk { d[1].PSK = "secret"; return d }, err: "psk: want the key in hex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			disks := tt.edit([]agentapi.VMDisk{testDisk("os-1", true), testDisk("data-1", false)})
			err := checkDisks(disks)
			if tt.err == "" && err != nil {
				t.Errorf("checkDisks(%+v) = %v, want nil", disks, err)
			}
			if tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("checkDisks(%+v) = %v, want an error saying %q", disks, err, tt.err)
			}
		})
	}
}

// TestDiskArgs pins the QEMU arguments of a disk on the SAN.
func TestDiskArgs(t *testing.T) {
	tests := []struct {
		name string
		d    disk
		boot bool
		want []string
	}{
		{
			name: "OS disk",
			d: disk{VMDisk: agentapi.VMDisk{Serial: "0f6c2a1e-5b7d-4c3e-9a8b-1d2e3f4a5b6c", PSKIdentity: "att-1"}, index: 0,
				export: nbdExport{Host: "10.0.0.5", Port: 24001, Name: "0f6c2a1e-5b7d-4c3e-9a8b-1d2e3f4a5b6c"}, keys: "/var/lib/citadel/vms/k/keys/0"},
			boot: true,
			want: []string{
				"-object", "tls-creds-psk,id=vol0-tls,endpoint=client,dir=/var/lib/citadel/vms/k/keys/0,username=att-1",
				"-drive", "if=none,id=vol0,format=raw,discard=unmap,file.driver=nbd,file.server.type=inet,file.server.host=10.0.0.5,file.server.port=24001," +
					"file.export=0f6c2a1e-5b7d-4c3e-9a8b-1d2e3f4a5b6c,file.tls-creds=vol0-tls,file.reconnect-delay=30",
				"-device", "virtio-blk-pci,drive=vol0,serial=0f6c2a1e-5b7d-4c3e-9,bootindex=1", // the 20 bytes virtio shows
			},
		},
		{
			name: "data disk with commas",
			d: disk{VMDisk: agentapi.VMDisk{Serial: "s,1", PSKIdentity: "att,2"}, index: 2,
				export: nbdExport{Host: "fd00::5", Port: 10809, Name: "a,b"}, keys: "/vms/a,b/keys/2"},
			want: []string{
				"-object", "tls-creds-psk,id=vol2-tls,endpoint=client,dir=/vms/a,,b/keys/2,username=att,,2",
				"-drive", "if=none,id=vol2,format=raw,discard=unmap,file.driver=nbd,file.server.type=inet,file.server.host=fd00::5,file.server.port=10809," +
					"file.export=a,,b,file.tls-creds=vol2-tls,file.reconnect-delay=30",
				"-device", "virtio-blk-pci,drive=vol2,serial=s,,1",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.d.args(tt.boot)); diff != "" {
				t.Errorf("args(%v) (-want +got):\n%s", tt.boot, diff)
			}
		})
	}
}

func TestDiskError(t *testing.T) {
	disks := []agentapi.VMDisk{testDisk("os-1", true), testDisk("data-1", false)}
	drive := "if=none,id=vol1,format=raw,file.driver=nbd,file.server.host=10.0.0.5"
	args := []string{"-drive", "if=none,id=vol0,format=raw", "-drive", drive, "-device", "virtio-blk-pci,drive=vol1"}
	tests := []struct {
		name, out string
		want      string // "" for nil
	}{
		{
			name: "refused key",
			out:  "qemu-system-x86_64: -drive " + drive + ": TLS handshake failed: The TLS connection was non-properly terminated.\n",
			want: "disk 1 (volume /subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/volumes/data-1) at nbd://10.0.0.5:24001/data-1: TLS handshake failed: The TLS connection was non-properly terminated.",
		},
		{name: "another failure", out: "qemu-system-x86_64: -accel kvm: no KVM\n"},
		{name: "nothing said", out: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := diskError([]byte(tt.out), args, disks)
			if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
				t.Errorf("diskError(%q) = %v, want %q", tt.out, err, tt.want)
			}
		})
	}
}

func TestQEMUMessage(t *testing.T) {
	opts := "driver=raw,file.driver=nbd,file.server.host=10.0.0.5"
	tests := []struct{ out, want string }{
		{out: "qemu-img: Could not open '" + opts + "': Failed to connect to '10.0.0.5:24001': Connection refused\n", want: "Failed to connect to '10.0.0.5:24001': Connection refused"},
		{out: "qemu-img: output file is smaller than input file\n", want: "qemu-img: output file is smaller than input file"},
		{out: "", want: "exit status 1"},
	}
	for _, tt := range tests {
		if got := qemuMessage([]byte(tt.out), errors.New("exit status 1"), opts); got != tt.want {
			t.Errorf("qemuMessage(%q) = %q, want %q", tt.out, got, tt.want)
		}
	}
}

// TestInstanceDisks checks the disks' keys files: one directory each,
// mode 0600, those of disks no longer listed removed.
func TestInstanceDisks(t *testing.T) {
	in := instance{key: "k", dir: t.TempDir()}
	a, b := testDisk("a", true), testDisk("b", false)
	b.PSK = strings.ToUpper(testKey)
	got, err := in.disks([]agentapi.VMDisk{a, b})
	if err != nil || len(got) != 2 {
		t.Fatalf("disks = %+v, %v; want two", got, err)
	}
	for i, want := range []string{"att-a:" + testKey + "\n", "att-b:" + b.PSK + "\n"} {
		path := filepath.Join(got[i].keys, "keys.psk")
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, %v; want mode 0600", path, fi, err)
		}
		if b, _ := os.ReadFile(path); string(b) != want {
			t.Errorf("%s = %q, want %q", path, b, want)
		}
	}
	if got[1].export != (nbdExport{Host: "10.0.0.5", Port: 24001, Name: "b"}) || got[1].index != 1 {
		t.Errorf("disk 1 = %+v, want index 1, export b on 10.0.0.5:24001", got[1])
	}

	if _, err := in.disks([]agentapi.VMDisk{b}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(in.path("keys/1")); err == nil {
		t.Errorf("keys/1 of a disk no longer listed is still there")
	}
	if b0, _ := os.ReadFile(in.path("keys/0/keys.psk")); !strings.HasPrefix(string(b0), "att-b:") {
		t.Errorf("keys/0/keys.psk = %q, want b's", b0)
	}
	if _, err := in.disks(nil); err != nil {
		t.Fatal(err)
	}
	if exists(in.path(fileKeys)) {
		t.Errorf("the keys directory of a VM without disks is still there")
	}
	bad := testDisk("c", false)
	bad.URI = ""
	if _, err := in.disks([]agentapi.VMDisk{bad}); err == nil {
		t.Errorf("disks(a disk without a URI) = nil error, want one")
	}
}

// san is the storage appliance's nbd driver serving volumes on loopback,
// each export its own qemu-storage-daemon with TLS-PSK, as in a rack.
type san struct {
	nbd *appliance.NBD
	dir string
}

// startSAN starts the nbd driver on ports of its own; it stops at the
// test's end, after the VMs of drivers made after it.
func startSAN(t *testing.T, daemon string) *san {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	first := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	n, err := appliance.OpenNBD(t.Context(), appliance.NBDConfig{
		Dir: dir, Host: "127.0.0.1", Ports: appliance.PortRange{First: first, Last: first + 20}, DaemonPath: daemon,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return &san{nbd: n, dir: dir}
}

// disk makes a volume of sizeMiB, starting with head, exports it with a
// new key and returns the disk a VM reaches it by.
func (s *san) disk(t *testing.T, sizeMiB int64, head string, boot bool) agentapi.VMDisk {
	t.Helper()
	serial := uuid.NewString()
	if _, err := s.nbd.PutVolume(t.Context(), serial, sizeMiB); err != nil {
		t.Fatal(err)
	}
	if head != "" {
		if err := writeAt(s.file(serial), head); err != nil {
			t.Fatal(err)
		}
	}
	key := make([]byte, 32)
	rand.Read(key)
	d := agentapi.VMDisk{Volume: "/subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/volumes/" + serial[:8],
		Serial: serial, PSKIdentity: "att-" + serial[:8], PSK: hex.EncodeToString(key), OS: boot}
	e, err := s.nbd.PutExport(t.Context(), serial, "att-1", storage.ExportSpec{PSKIdentity: d.PSKIdentity, PSK: d.PSK})
	if err != nil {
		t.Fatal(err)
	}
	d.URI = e.URI()
	return d
}

// file is the volume's file on the appliance (NBDConfig.Dir).
func (s *san) file(serial string) string { return filepath.Join(s.dir, "volumes", serial+".img") }

// head reads the first n bytes of the volume, from its file.
func (s *san) head(t *testing.T, serial string, n int) string {
	t.Helper()
	f, err := os.Open(s.file(serial))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeAt(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(s), 0)
	return errors.Join(err, f.Close())
}

// TestQEMUDisks boots a VM whose OS disk and data disk are volumes of the
// storage appliance's nbd driver, over NBD with TLS-PSK: the image is
// written to the blank OS volume and the VM boots from it, the guest
// sees both disks with their serials, the OS disk keeps what the guest
// wrote across a power cycle and gets the image again at a reimage, and
// an export that refuses the key or cannot be reached is the VM's error.
func TestQEMUDisks(t *testing.T) {
	t.Parallel()
	daemon, err := exec.LookPath("qemu-storage-daemon")
	var extra []string
	if err != nil {
		extra = append(extra, "qemu-storage-daemon (Debian package qemu-system-common)")
	}
	h := needGuestHost(t, extra...)
	s := startSAN(t, daemon) // before the driver: its VMs stop first
	q := newGuestQEMU(t, h)
	osDisk := s.disk(t, 8, "", true)
	data := s.disk(t, 4, "CITADEL-DATA", false)
	v := testVM("tiny-san")
	v.Disks = []agentapi.VMDisk{osDisk, data}
	in := q.vm(key(v.ID))
	step := time.Now()
	took := func(what string) {
		t.Logf("%s took %v", what, time.Since(step).Round(time.Millisecond))
		step = time.Now()
	}

	wantStatus(t, reconcile(t, q, v), On, 0, 0)
	b := waitReady(t, q, v.ID, 1)
	took("imaging the OS disk, start and boot")
	if b["DISK"] != pristine {
		t.Errorf("boot 1 saw boot disk %q, want the image, %q", b["DISK"], pristine)
	}
	serials := map[string]string{} // the guest's serial → the disk's first bytes
	for k, val := range b {
		if strings.HasPrefix(k, "SERIAL-") {
			serial, head, _ := strings.Cut(val, " ")
			serials[serial] = head
		}
	}
	for _, want := range []struct{ serial, head string }{{osDisk.Serial[:20], pristine[:12]}, {data.Serial[:20], "CITADEL-DATA"}} {
		if head, ok := serials[want.serial]; !ok || head != want.head {
			t.Errorf("the guest saw disks %v, want serial %s starting %q", serials, want.serial, want.head)
		}
	}
	if got := s.head(t, osDisk.Serial, len(written)); got != written {
		t.Errorf("the OS volume starts %q after the guest wrote %q to its boot disk", got, written)
	}
	if exists(in.path(fileDisk)) {
		t.Errorf("a VM with an OS disk has an overlay too")
	}
	if fi, err := os.Stat(in.path("keys/1/keys.psk")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the data disk's keys.psk: %v, %v; want mode 0600", fi, err)
	}

	// A grown volume's export restarts under the VM, which reconnects: a
	// write to the data disk (by QEMU's qemu-io command, whose output
	// QEMU's stdout takes) reaches the volume.
	if _, err := s.nbd.PutVolume(t.Context(), data.Serial, 8); err != nil {
		t.Fatal(err)
	}
	if _, err := qmp(t.Context(), in.path(fileQMP), "human-monitor-command",
		map[string]string{"command-line": `qemu-io vol1 "write -P 0x52 0 512"`}); err != nil { // 'R'
		t.Fatal(err)
	}
	if got := s.head(t, data.Serial, 12); got != strings.Repeat("R", 12) {
		t.Errorf("the data volume starts %q after a write through the VM's reconnected disk, want R's", got)
	}
	took("a write across an export's restart")

	// A power cycle keeps the OS disk as the guest left it.
	v.Power = Off
	for st := reconcile(t, q, v); st.Power != Off; st = reconcile(t, q, v) {
		if time.Since(step) > 15*time.Second {
			t.Fatalf("the VM is still %+v %v after its power off", st, time.Since(step))
		}
		time.Sleep(100 * time.Millisecond)
	}
	v.Power = On
	wantStatus(t, reconcile(t, q, v), On, 0, 0)
	b = waitReady(t, q, v.ID, 2)
	took("power off and on")
	if b["DISK"] != written {
		t.Errorf("boot 2 saw boot disk %q, want what boot 1 wrote, %q", b["DISK"], written)
	}

	v.Reimages = 1
	wantStatus(t, reconcile(t, q, v), On, 0, 1)
	b = waitReady(t, q, v.ID, 3)
	took("reimage")
	if b["DISK"] != pristine {
		t.Errorf("boot 3, after the reimage, saw boot disk %q, want the image, %q", b["DISK"], pristine)
	}

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	wrongKey := make([]byte, 32)
	rand.Read(wrongKey)
	tests := []struct {
		name   string
		disks  func() []agentapi.VMDisk
		errHas []string
	}{
		{
			name:   "data disk refuses the key",
			disks:  func() []agentapi.VMDisk { d := data; d.PSK = hex.EncodeToString(wrongKey); return []agentapi.VMDisk{d} },
			errHas: []string{"disk 0 (volume " + data.Volume + ") at " + data.URI + ": TLS handshake failed"},
		},
		{
			name: "OS disk refuses the key",
			disks: func() []agentapi.VMDisk {
				d := osDisk
				d.PSK = hex.EncodeToString(wrongKey)
				return []agentapi.VMDisk{d}
			},
			errHas: []string{"disk 0 (volume " + osDisk.Volume + ") at " + osDisk.URI + ": read its first MiB: TLS handshake failed"},
		},
		{
			name: "export unreachable",
			disks: func() []agentapi.VMDisk {
				d := data
				d.URI = fmt.Sprintf("nbd://127.0.0.1:%d/%s", closedPort, d.Serial)
				return []agentapi.VMDisk{osDisk, d}
			},
			errHas: []string{"disk 1 (volume " + data.Volume + ")", fmt.Sprintf("127.0.0.1:%d", closedPort), "Connection refused"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := testVM("tiny-bad")
			bad.Disks = tt.disks()
			st := reconcile(t, q, bad)
			for _, want := range tt.errHas {
				if st.Power != Off || !strings.Contains(st.Error, want) {
					t.Errorf("status %+v, want Off with an error saying %q", st, want)
				}
			}
			if pid := q.vm(key(bad.ID)).pid(); pid != 0 {
				t.Errorf("QEMU %d runs for a VM whose disk failed", pid)
			}
		})
	}
	took("the failures")
}
