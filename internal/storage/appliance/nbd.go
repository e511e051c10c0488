package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/citadel-cloud/citadel/internal/storage"
)

// NBDConfig is where the nbd driver keeps its volumes and how it serves
// them.
type NBDConfig struct {
	// Dir holds state.json, volumes/<serial>.img and, per export,
	// exports/<serial>/<name>/ with its keys.psk and pid file.
	Dir string
	// CapacityMiB is the capacity reported; 0 is the size of the
	// filesystem holding Dir.
	CapacityMiB int64
	// Host is the address the exports listen on and report.
	Host  string
	Ports PortRange
	// DaemonPath is qemu-storage-daemon's (qemu 7.2 or later).
	DaemonPath string
	Logger     *slog.Logger
}

// NBD is the real driver. Each volume is a sparse raw file, and each
// export its own qemu-storage-daemon process with its own TLS-PSK key and
// port, so that one attachment's key opens nothing else.
//
// The file's blockdev always has locking=off: with multi-attach several
// daemons open the same file, and qemu's image locks would refuse the
// second writer; nothing but the appliance's own daemons opens the files.
//
// The service binds each export's port itself and hands the listening
// socket to the daemon (--nbd-server addr.type=fd) with TCP_NODELAY set,
// which accepted connections inherit. qemu 7.2's NBD server does not set
// it (qemu 8.0 does: "nbd/server: Request TCP_NODELAY") and sends a
// read's reply header and data as separate TLS records, so Nagle's
// algorithm and the client's delayed ACK made every read over TLS wait
// about 40 ms.
//
// A volume grows by truncating its file and restarting its daemons: qemu
// 7.2's NBD export refuses block_resize ("Permission conflict ...
// resize") and announces an export's size only when a client connects,
// so connected clients are dropped and see the new size when they
// reconnect.
//
// state.json (volumes, exports with their keys and ports) is written
// atomically before a mutation returns, and a started driver serves every
// export it lists again: a killed service comes back on the same ports.
// It is safe for concurrent use.
type NBD struct {
	cfg NBDConfig
	log *slog.Logger

	mu        sync.Mutex
	cat       catalog
	daemons   map[exportKey]*daemon
	startErrs map[exportKey]error // why an export's daemon did not start
}

type exportKey struct{ serial, name string }

// OpenNBD loads the driver's state from cfg.Dir, creating it on the first
// start, and starts a daemon for every export. An export whose daemon
// does not start leaves the appliance Degraded, not down.
func OpenNBD(ctx context.Context, cfg NBDConfig) (*NBD, error) {
	if _, err := exec.LookPath(cfg.DaemonPath); err != nil {
		return nil, fmt.Errorf("nbd driver: %w", err)
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("nbd driver: %w", err)
	}
	cfg.Dir = dir
	for _, d := range []string{dir, filepath.Join(dir, "volumes"), filepath.Join(dir, "exports")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("nbd driver: %w", err)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &NBD{cfg: cfg, log: cfg.Logger.With("component", "nbd_driver"), daemons: map[exportKey]*daemon{}, startErrs: map[exportKey]error{}}
	b, err := os.ReadFile(n.statePath())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		n.cat = newCatalog()
	case err != nil:
		return nil, fmt.Errorf("nbd driver: %w", err)
	default:
		if n.cat, err = decodeCatalog(b); err != nil {
			return nil, fmt.Errorf("nbd driver: %s: %w", n.statePath(), err)
		}
	}
	if err := n.sweep(ctx); err != nil {
		return nil, fmt.Errorf("nbd driver: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	exports := 0
	for _, serial := range slices.Sorted(maps.Keys(n.cat.Volumes)) {
		for _, name := range slices.Sorted(maps.Keys(n.cat.Volumes[serial].Exports)) {
			exports++
			if err := n.serve(ctx, serial, name); err != nil {
				n.log.ErrorContext(ctx, "export not served", "volume", serial, "export", name, "err", err)
			}
		}
	}
	n.log.InfoContext(ctx, "nbd driver started", "dir", dir, "volumes", len(n.cat.Volumes), "exports", exports)
	return n, nil
}

// decodeCatalog reads state.json.
func decodeCatalog(b []byte) (catalog, error) {
	var c catalog
	if err := json.Unmarshal(b, &c); err != nil {
		return catalog{}, err
	}
	if c.Volumes == nil {
		c.Volumes = map[string]*volumeRecord{}
	}
	for serial, v := range c.Volumes {
		if !storage.ValidName(serial) || v == nil || v.SizeMiB <= 0 {
			return catalog{}, fmt.Errorf("volume %q is invalid", serial)
		}
		for name, e := range v.Exports {
			if !storage.ValidName(name) || e == nil || e.Port < 1 || e.Port > 65535 {
				return catalog{}, fmt.Errorf("volume %q: export %q is invalid", serial, name)
			}
			if err := (storage.ExportSpec{PSKIdentity: e.PSKIdentity, PSK: e.PSK}).Validate(); err != nil {
				return catalog{}, fmt.Errorf("volume %q: export %q: %w", serial, name, err)
			}
		}
	}
	return c, nil
}

func (n *NBD) statePath() string { return filepath.Join(n.cfg.Dir, "state.json") }
func (n *NBD) volumePath(serial string) string {
	return filepath.Join(n.cfg.Dir, "volumes", serial+".img")
}
func (n *NBD) exportDir(serial, name string) string {
	return filepath.Join(n.cfg.Dir, "exports", serial, name)
}

// save writes state.json atomically and durably. The caller holds n.mu.
func (n *NBD) save() error {
	b, err := json.MarshalIndent(n.cat, "", "  ")
	if err != nil {
		return err
	}
	tmp := n.statePath() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if err := errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(tmp, n.statePath()); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	d, err := os.Open(n.cfg.Dir)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := errors.Join(d.Sync(), d.Close()); err != nil {
		return fmt.Errorf("save state: sync %s: %w", n.cfg.Dir, err)
	}
	return nil
}

// sweep removes the volume files and export directories state.json does
// not list, left by a crash between saving it and removing them.
func (n *NBD) sweep(ctx context.Context) error {
	files, err := os.ReadDir(filepath.Join(n.cfg.Dir, "volumes"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if _, ok := n.cat.Volumes[strings.TrimSuffix(f.Name(), ".img")]; !ok {
			n.log.InfoContext(ctx, "stale volume file removed", "file", f.Name())
			if err := os.Remove(filepath.Join(n.cfg.Dir, "volumes", f.Name())); err != nil {
				return err
			}
		}
	}
	volumes, err := os.ReadDir(filepath.Join(n.cfg.Dir, "exports"))
	if err != nil {
		return err
	}
	for _, vol := range volumes {
		v := n.cat.Volumes[vol.Name()]
		names, err := os.ReadDir(filepath.Join(n.cfg.Dir, "exports", vol.Name()))
		if err != nil {
			return err
		}
		for _, name := range names {
			if v == nil || v.Exports[name.Name()] == nil {
				n.log.InfoContext(ctx, "stale export directory removed", "volume", vol.Name(), "export", name.Name())
				if err := os.RemoveAll(n.exportDir(vol.Name(), name.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Name is "nbd".
func (n *NBD) Name() string { return "nbd" }

// Capacity is the configured capacity, used as the files' allocated
// blocks, free as the least of the capacity left and the filesystem's.
func (n *NBD) Capacity() (Capacity, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(n.cfg.Dir, &st); err != nil {
		return Capacity{}, fmt.Errorf("statfs %s: %w", n.cfg.Dir, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	c := Capacity{CapacityMiB: n.cfg.CapacityMiB, ProvisionedMiB: n.cat.provisionedMiB()}
	if c.CapacityMiB == 0 {
		c.CapacityMiB = int64(st.Blocks) * int64(st.Bsize) / mib
	}
	for serial := range n.cat.Volumes {
		a, err := n.allocatedMiB(serial)
		if err != nil {
			return Capacity{}, err
		}
		c.UsedMiB += a
	}
	c.FreeMiB = max(min(c.CapacityMiB-c.UsedMiB, int64(st.Bavail)*int64(st.Bsize)/mib), 0)
	return c, nil
}

// allocatedMiB is what the volume's file takes on disk, rounded up; a
// file gone from under the service takes nothing (Health reports it).
func (n *NBD) allocatedMiB(serial string) (int64, error) {
	fi, err := os.Stat(n.volumePath(serial))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("volume %q: %w", serial, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("volume %q: no block count for %s", serial, fi.Name())
	}
	return (st.Blocks*512 + mib - 1) / mib, nil
}

// Health is Degraded while a volume's file is missing or an export is
// not served.
func (n *NBD) Health() (string, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var problems []string
	for _, serial := range slices.Sorted(maps.Keys(n.cat.Volumes)) {
		if _, err := os.Stat(n.volumePath(serial)); err != nil {
			problems = append(problems, fmt.Sprintf("the file of volume %s cannot be read: %v", serial, err))
		}
		for _, name := range slices.Sorted(maps.Keys(n.cat.Volumes[serial].Exports)) {
			key := exportKey{serial, name}
			var reason error
			switch d := n.daemons[key]; {
			case d == nil && n.startErrs[key] != nil:
				reason = n.startErrs[key]
			case d == nil:
				reason = errors.New("not started")
			case d.exited():
				reason = d.err
			default:
				continue
			}
			problems = append(problems, fmt.Sprintf("export %s of volume %s is not served: %v", name, serial, reason))
		}
	}
	if len(problems) == 0 {
		return storage.HealthAvailable, ""
	}
	return storage.HealthDegraded, strings.Join(problems, "; ")
}

// Volumes lists the volumes.
func (n *NBD) Volumes() ([]storage.Volume, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := []storage.Volume{}
	for _, serial := range slices.Sorted(maps.Keys(n.cat.Volumes)) {
		v, err := n.volume(serial)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Volume returns one volume.
func (n *NBD) Volume(serial string) (storage.Volume, bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.cat.Volumes[serial]; !ok {
		return storage.Volume{}, false, nil
	}
	v, err := n.volume(serial)
	return v, err == nil, err
}

// volume is the volume serial as the API shows it. The caller holds n.mu.
func (n *NBD) volume(serial string) (storage.Volume, error) {
	a, err := n.allocatedMiB(serial)
	if err != nil {
		return storage.Volume{}, err
	}
	return n.cat.Volumes[serial].volume(serial, n.cfg.Host, a), nil
}

// PutVolume creates the volume's sparse file, or grows it and restarts
// its daemons; at the same size it starts those that are not running.
func (n *NBD) PutVolume(ctx context.Context, serial string, sizeMiB int64) (storage.Volume, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.cat.Volumes[serial]
	grown := false
	switch {
	case !ok:
		if err := createSparse(n.volumePath(serial), sizeMiB*mib); err != nil {
			return storage.Volume{}, fmt.Errorf("volume %q: create: %w", serial, err)
		}
		n.cat.Volumes[serial] = &volumeRecord{SizeMiB: sizeMiB}
		if err := n.save(); err != nil {
			delete(n.cat.Volumes, serial)
			_ = os.Remove(n.volumePath(serial)) // a leftover would be swept at the next start
			return storage.Volume{}, fmt.Errorf("volume %q: %w", serial, err)
		}
		return n.volume(serial)
	case sizeMiB > v.SizeMiB:
		if err := os.Truncate(n.volumePath(serial), sizeMiB*mib); err != nil {
			return storage.Volume{}, fmt.Errorf("volume %q: grow: %w", serial, spaceError(err))
		}
		old := v.SizeMiB
		v.SizeMiB = sizeMiB
		if err := n.save(); err != nil {
			v.SizeMiB = old // the file stays larger, which the next grow makes right
			return storage.Volume{}, fmt.Errorf("volume %q: %w", serial, err)
		}
		grown = true
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(v.Exports)) {
		if d := n.daemons[exportKey{serial, name}]; grown || d == nil || d.exited() {
			errs = append(errs, n.serve(ctx, serial, name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return storage.Volume{}, err
	}
	return n.volume(serial)
}

// createSparse creates path as a sparse file of size bytes, emptying a
// file left there.
func createSparse(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := errors.Join(f.Truncate(size), f.Close()); err != nil {
		_ = os.Remove(path) // a leftover would be swept at the next start
		return spaceError(err)
	}
	return nil
}

// spaceError marks the errors of a disk that has no room as
// ErrInsufficient.
func spaceError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) {
		return fmt.Errorf("%w: %w", ErrInsufficient, err)
	}
	return err
}

// DeleteVolume removes the volume from the state, then its file.
func (n *NBD) DeleteVolume(ctx context.Context, serial string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.cat.Volumes[serial]
	if !ok {
		return nil
	}
	delete(n.cat.Volumes, serial)
	if err := n.save(); err != nil {
		n.cat.Volumes[serial] = v
		return fmt.Errorf("volume %q: %w", serial, err)
	}
	for _, p := range []string{n.volumePath(serial), filepath.Join(n.cfg.Dir, "exports", serial)} {
		if err := os.RemoveAll(p); err != nil {
			n.log.WarnContext(ctx, "volume file not removed; the next start sweeps it", "volume", serial, "err", err)
		}
	}
	return nil
}

// PutExport saves the export, with a new port unless it had one, and
// starts its daemon; the same key again only starts a daemon that is not
// running. A new export whose daemon does not start is not kept.
func (n *NBD) PutExport(ctx context.Context, serial, name string, spec storage.ExportSpec) (storage.Export, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.cat.Volumes[serial]
	if !ok {
		return storage.Export{}, fmt.Errorf("volume %q: not found", serial)
	}
	key := exportKey{serial, name}
	old, exists := v.Exports[name]
	if exists && old.sameKey(spec) {
		if d := n.daemons[key]; d == nil || d.exited() {
			if err := n.serve(ctx, serial, name); err != nil {
				return storage.Export{}, err
			}
		}
		return old.export(serial, name, n.cfg.Host), nil
	}
	e := &exportRecord{PSKIdentity: spec.PSKIdentity, PSK: strings.ToLower(spec.PSK)}
	if exists {
		e.Port = old.Port
	} else {
		p, err := n.cat.freePort(n.cfg.Ports, n.portFree)
		if err != nil {
			return storage.Export{}, fmt.Errorf("volume %q: export %q: %w", serial, name, err)
		}
		e.Port = p
	}
	if v.Exports == nil {
		v.Exports = map[string]*exportRecord{}
	}
	v.Exports[name] = e
	if err := n.save(); err != nil {
		if exists {
			v.Exports[name] = old
		} else {
			delete(v.Exports, name)
		}
		return storage.Export{}, fmt.Errorf("volume %q: export %q: %w", serial, name, err)
	}
	if err := n.serve(ctx, serial, name); err != nil {
		if exists {
			return storage.Export{}, err // kept, with its port: a retry starts it again
		}
		// A new export that does not start is forgotten, so that a retry
		// picks its port again: another process may have taken this one.
		delete(v.Exports, name)
		delete(n.startErrs, key)
		if serr := n.save(); serr != nil {
			return storage.Export{}, errors.Join(err, serr)
		}
		return storage.Export{}, errors.Join(err, os.RemoveAll(n.exportDir(serial, name)))
	}
	return e.export(serial, name, n.cfg.Host), nil
}

// portFree reports whether nothing listens on port yet.
func (n *NBD) portFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort(n.cfg.Host, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	return ln.Close() == nil
}

// serve (re)starts the daemon of an export in the catalog, writing its
// key first. The caller holds n.mu.
func (n *NBD) serve(ctx context.Context, serial, name string) error {
	key := exportKey{serial, name}
	if d := n.daemons[key]; d != nil {
		d.stop()
		delete(n.daemons, key)
	}
	err := n.startDaemon(ctx, serial, name)
	if err != nil {
		n.startErrs[key] = err
		return fmt.Errorf("volume %q: export %q: %w", serial, name, err)
	}
	delete(n.startErrs, key)
	return nil
}

func (n *NBD) startDaemon(ctx context.Context, serial, name string) error {
	e := n.cat.Volumes[serial].Exports[name]
	dir := n.exportDir(serial, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	psk := filepath.Join(dir, "keys.psk")
	if err := os.WriteFile(psk, []byte(e.PSKIdentity+":"+e.PSK+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.Chmod(psk, 0o600); err != nil { // WriteFile keeps the mode of a file that exists
		return err
	}
	ln, err := listenNoDelay(ctx, net.JoinHostPort(n.cfg.Host, strconv.Itoa(e.Port)))
	if err != nil {
		return err
	}
	defer ln.Close() // the daemon has its own copy
	args := []string{
		"--blockdev", "driver=file,node-name=file0,locking=off,filename=" + qemuEscape(n.volumePath(serial)),
		"--blockdev", "driver=raw,node-name=disk0,file=file0",
		"--object", "tls-creds-psk,id=tls0,endpoint=server,dir=" + qemuEscape(dir),
		"--nbd-server", "addr.type=fd,addr.str=3,tls-creds=tls0", // ln
		"--export", "type=nbd,id=exp0,node-name=disk0,writable=on,name=" + serial,
	}
	log := n.log.With("volume", serial, "export", name, "port", e.Port)
	d, err := startDaemon(ctx, n.cfg.DaemonPath, args, []*os.File{ln}, filepath.Join(dir, "qsd.pid"), log)
	if err != nil {
		return err
	}
	n.daemons[exportKey{serial, name}] = d
	log.InfoContext(ctx, "export served", "pid", d.cmd.Process.Pid)
	return nil
}

// listenNoDelay binds a listening TCP socket with TCP_NODELAY, which the
// connections it accepts inherit (on Linux).
func listenNoDelay(ctx context.Context, addr string) (*os.File, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	// After a crash of the service its daemons die with it, but not at
	// once: an export's port may still be held for a moment.
	var ln net.Listener
	var err error
	for wait := 50 * time.Millisecond; ; wait *= 2 {
		ln, err = lc.Listen(ctx, "tcp", addr)
		if err == nil || !errors.Is(err, syscall.EADDRINUSE) || wait > 2*time.Second {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
	if err != nil {
		return nil, err
	}
	defer ln.Close() // the file is a copy that keeps the socket
	return ln.(*net.TCPListener).File()
}

// qemuEscape escapes a value of a qemu option list, where ',' separates.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// DeleteExport removes the export from the state, then stops its daemon.
func (n *NBD) DeleteExport(ctx context.Context, serial, name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	v, ok := n.cat.Volumes[serial]
	if !ok || v.Exports[name] == nil {
		return nil
	}
	e := v.Exports[name]
	delete(v.Exports, name)
	if err := n.save(); err != nil {
		v.Exports[name] = e
		return fmt.Errorf("volume %q: export %q: %w", serial, name, err)
	}
	key := exportKey{serial, name}
	if d := n.daemons[key]; d != nil {
		d.stop()
	}
	delete(n.daemons, key)
	delete(n.startErrs, key)
	if err := os.RemoveAll(n.exportDir(serial, name)); err != nil {
		n.log.WarnContext(ctx, "export directory not removed; the next start sweeps it", "volume", serial, "export", name, "err", err)
	}
	return nil
}

// Close stops every daemon.
func (n *NBD) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	var wg sync.WaitGroup
	for _, d := range n.daemons {
		wg.Go(d.stop)
	}
	wg.Wait()
	clear(n.daemons)
	n.log.Info("nbd driver stopped")
	return nil
}
