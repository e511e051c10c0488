package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// qmpTimeout bounds one QMP exchange when ctx has no earlier deadline. A
// live QEMU answers within milliseconds.
const qmpTimeout = 10 * time.Second

// qmp runs one QMP command on the socket at path and returns its answer:
// it connects, reads the greeting, leaves capabilities negotiation mode,
// runs cmd and hangs up. One connection per command keeps no state
// between Reconciles, and QEMU serves one client at a time.
func qmp(ctx context.Context, path, cmd string, args any) (json.RawMessage, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	defer conn.Close()
	deadline := time.Now().Add(qmpTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	r := bufio.NewReader(conn)
	if _, err := r.ReadBytes('\n'); err != nil { // the greeting
		return nil, fmt.Errorf("qmp %s: greeting: %w", cmd, err)
	}
	enc := json.NewEncoder(conn)
	if err := enc.Encode(qmpCommand{Execute: "qmp_capabilities"}); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	if _, err := readReply(r); err != nil {
		return nil, fmt.Errorf("qmp %s: capabilities: %w", cmd, err)
	}
	if err := enc.Encode(qmpCommand{Execute: cmd, Arguments: args}); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	ret, err := readReply(r)
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	return ret, nil
}

type qmpCommand struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
}

// qmpError is a command's failure as QEMU reports it.
type qmpError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *qmpError) Error() string { return e.Class + ": " + e.Desc }

// readReply reads QMP messages up to the reply to the command sent,
// skipping the events QEMU sends meanwhile, and returns the reply's
// return value or its error.
func readReply(r *bufio.Reader) (json.RawMessage, error) {
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		var msg struct {
			Return json.RawMessage `json:"return"`
			Error  *qmpError       `json:"error"`
			Event  string          `json:"event"`
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			return nil, fmt.Errorf("decode a reply: %w", err)
		}
		switch {
		case msg.Error != nil:
			return nil, msg.Error
		case msg.Return != nil:
			return msg.Return, nil
		case msg.Event != "":
			continue
		default:
			return nil, fmt.Errorf("a reply with neither return nor error: %.200s", line)
		}
	}
}

// qmpStatus is the VM's run state by query-status: "running",
// "prelaunch" (started with -S and not yet continued), "paused",
// "shutdown", "guest-panicked" and others.
func qmpStatus(ctx context.Context, path string) (string, error) {
	ret, err := qmp(ctx, path, "query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(ret, &st); err != nil {
		return "", fmt.Errorf("qmp query-status: %w", err)
	}
	return st.Status, nil
}
