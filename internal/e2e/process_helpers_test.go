package e2e

import (
	"bufio"
	"fmt"
	"os"
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

// requireTool returns the path of a command a test needs, from the Debian
// package pkg. Without it the test is skipped, or under CI=true fails:
// the README's test command installs it.
func requireTool(t *testing.T, tool, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		msg := fmt.Sprintf("%s is not installed (Debian %s); the README's test command installs it", tool, pkg)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// waitUntil polls ok every 50 ms and fails the test, saying what it
// waited for, if ok is not true within the time given.
func waitUntil(t testing.TB, what string, within time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
