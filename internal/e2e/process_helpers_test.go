package e2e

import (
	"bufio"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startUntil starts the citadel binary with args and waits until a line
// of its output (stdout or its log on stderr) contains ready; the output
// goes to the test log.
func startUntil(t *testing.T, bin, ready string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	seen := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			t.Log(sc.Text())
			if strings.Contains(sc.Text(), ready) {
				seen <- true
			}
		}
		close(seen)
	}()
	select {
	case ok := <-seen:
		if !ok {
			t.Fatalf("citadel %s ended before it printed %q", args[0], ready)
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("citadel %s did not print %q within 3 minutes", args[0], ready)
	}
	return cmd
}

// interrupt sends Ctrl-C and requires a clean exit within 30 s.
func interrupt(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s after Ctrl-C: %v, want a clean exit", cmd.Args[1], err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30 s of Ctrl-C", cmd.Args[1])
	}
}
