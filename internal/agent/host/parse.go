package host

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/citadel-cloud/citadel/internal/agentapi"
)

// maxLine bounds a line of a /proc or /etc file; the flags line of a
// modern x86 processor is under 2 KiB.
const maxLine = 1 << 20

func newScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxLine)
	return sc
}

// parseCPUInfo reads /proc/cpuinfo: one "key : value" block per logical
// processor. The model and flags are those of the first processor;
// sockets are the distinct physical ids (1 if there are none, as on many
// VMs), and cores the sum of each socket's "cpu cores" (the thread count
// if any socket lacks it), never more than the threads.
func parseCPUInfo(r io.Reader) (agentapi.CPU, error) {
	type processor struct {
		physicalID string
		cores      int // 0 if unknown
	}
	var (
		cpu   agentapi.CPU
		procs []processor
		flags string
	)
	sc := newScanner(r)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if key == "processor" {
			procs = append(procs, processor{})
			continue
		}
		if len(procs) == 0 {
			continue
		}
		p := &procs[len(procs)-1]
		switch key {
		case "model name":
			if len(procs) == 1 {
				cpu.Model = value
			}
		case "flags":
			if len(procs) == 1 {
				flags = value
			}
		case "physical id":
			p.physicalID = value
		case "cpu cores":
			// 32 bits so that summing the sockets cannot overflow.
			if n, err := strconv.ParseUint(value, 10, 32); err == nil {
				p.cores = int(n)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return agentapi.CPU{}, err
	}
	if len(procs) == 0 {
		return agentapi.CPU{}, errors.New("no processor entries")
	}
	cpu.Threads = len(procs)

	socketCores := map[string]int{} // physical id → its "cpu cores"
	for _, p := range procs {
		if _, seen := socketCores[p.physicalID]; p.physicalID != "" && !seen {
			socketCores[p.physicalID] = p.cores
		}
	}
	if len(socketCores) == 0 {
		cpu.Sockets = 1
		cpu.Cores = procs[0].cores
	} else {
		cpu.Sockets = len(socketCores)
		for _, n := range socketCores {
			if n == 0 {
				cpu.Cores = 0
				break
			}
			cpu.Cores += n
		}
	}
	if cpu.Cores == 0 || cpu.Cores > cpu.Threads {
		// A container may see fewer processors than its host's sockets have cores.
		cpu.Cores = cpu.Threads
	}

	if f := strings.Fields(flags); len(f) > 0 {
		slices.Sort(f)
		cpu.Flags = slices.Compact(f)
	}
	return cpu, nil
}

// parseMemInfo returns MemTotal of /proc/meminfo in bytes; the kernel
// writes it in KiB ("MemTotal:       24683748 kB").
func parseMemInfo(r io.Reader) (uint64, error) {
	sc := newScanner(r)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || key != "MemTotal" {
			continue
		}
		f := strings.Fields(value)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("MemTotal %q: want a number of kB", value)
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("MemTotal: %w", err)
		}
		if kb > math.MaxUint64/1024 {
			return 0, fmt.Errorf("MemTotal %q: out of range", value)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no MemTotal")
}

// parseOSRelease reads os-release(5): KEY=value lines, where a value may
// be quoted as in a shell. Name is PRETTY_NAME, or NAME if it has none;
// Kernel is left empty.
func parseOSRelease(r io.Reader) (agentapi.OS, error) {
	var o agentapi.OS
	var name string
	sc := newScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch key {
		case "PRETTY_NAME":
			o.Name = unquote(value)
		case "NAME":
			name = unquote(value)
		case "VERSION_ID":
			o.Version = unquote(value)
		}
	}
	if err := sc.Err(); err != nil {
		return agentapi.OS{}, err
	}
	if o.Name == "" {
		o.Name = name
	}
	return o, nil
}

// unquote undoes the shell quoting os-release(5) allows: single quotes,
// or double quotes inside which a backslash escapes $ " \ and `.
func unquote(s string) string {
	if len(s) < 2 || s[0] != s[len(s)-1] {
		return s
	}
	switch s[0] {
	case '\'':
		return s[1 : len(s)-1]
	case '"':
		s = s[1 : len(s)-1]
	default:
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$\"\\`", s[i+1]) >= 0 {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
