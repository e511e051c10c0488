package appliance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// How long a qemu-storage-daemon may take to start, and to stop on
// SIGTERM before it is killed.
const (
	daemonStartTimeout = 10 * time.Second
	daemonStopTimeout  = 5 * time.Second
)

// daemon is one qemu-storage-daemon process serving one export.
type daemon struct {
	cmd     *exec.Cmd
	out     *lineLog
	done    chan struct{} // closed once the process has exited
	err     error         // why it exited; set before done is closed
	serving atomic.Bool   // started and not being stopped: an exit is news
}

// startDaemon runs path with args, and files as its descriptors 3, 4 ...,
// and returns once the daemon serves: it writes pidFile after its
// exports and NBD server are set up (qemu-storage-daemon(1)), which,
// unlike a probe connection, leaves no failed negotiation in its log. The
// daemon gets SIGKILL when the service dies, whatever the way.
func startDaemon(ctx context.Context, path string, args []string, files []*os.File, pidFile string, log *slog.Logger) (*daemon, error) {
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	out := &lineLog{log: log}
	cmd := exec.Command(path, append(args, "--pidfile", pidFile)...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd, out: out, done: make(chan struct{})}
	go d.wait(log)

	timeout := time.NewTimer(daemonStartTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(pidFile); err == nil {
			d.serving.Store(true)
			log.DebugContext(ctx, "qemu-storage-daemon started", "pid", cmd.Process.Pid)
			return d, nil
		}
		select {
		case <-d.done:
			return nil, d.err
		case <-ctx.Done():
			d.stop()
			return nil, ctx.Err()
		case <-timeout.C:
			d.stop()
			return nil, fmt.Errorf("qemu-storage-daemon did not start within %s%s", daemonStartTimeout, out.last())
		case <-tick.C:
		}
	}
}

func (d *daemon) wait(log *slog.Logger) {
	err := d.cmd.Wait()
	if err == nil {
		err = errors.New("exit status 0")
	}
	d.err = fmt.Errorf("qemu-storage-daemon exited: %w%s", err, d.out.last())
	close(d.done)
	if d.serving.Load() {
		log.Error("qemu-storage-daemon exited", "err", d.err)
	}
}

// exited reports whether the process has ended.
func (d *daemon) exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// stop ends the daemon's process group: SIGTERM, then SIGKILL.
func (d *daemon) stop() {
	d.serving.Store(false)
	if d.exited() {
		return
	}
	pgid := -d.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM) // an exit in between is what we want
	select {
	case <-d.done:
		return
	case <-time.After(daemonStopTimeout):
	}
	_ = syscall.Kill(pgid, syscall.SIGKILL)
	<-d.done
}

// lineLog logs a daemon's output line by line, keeping the last line for
// the error when the daemon fails.
type lineLog struct {
	log *slog.Logger

	mu       sync.Mutex
	partial  []byte
	lastLine string
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		var line []byte
		i := bytes.IndexByte(l.partial, '\n')
		switch {
		case i >= 0:
			line, l.partial = l.partial[:i], l.partial[i+1:]
		case len(l.partial) >= 4096: // a line that long is logged in pieces
			line, l.partial = l.partial, nil
		default:
			return len(p), nil
		}
		if s := strings.TrimSpace(string(line)); s != "" {
			l.log.Warn("qemu-storage-daemon output", "line", s)
			l.lastLine = s
		}
	}
}

// last is ": " and the last line the daemon wrote, or "".
func (l *lineLog) last() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lastLine == "" {
		return ""
	}
	return ": " + l.lastLine
}
