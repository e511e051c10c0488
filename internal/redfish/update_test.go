package redfish

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSimpleUpdate(t *testing.T) {
	const (
		image = "https://cp.example:8443/firmware/0123abcd"
		bios  = "/redfish/v1/UpdateService/FirmwareInventory/BIOS"
		bmc   = "/redfish/v1/UpdateService/FirmwareInventory/BMC"
	)
	tests := []struct {
		name        string
		bend        bend
		image       string
		targets     []string
		timeout     time.Duration // of the context, when not 0
		wantBody    map[string]any
		wantTook    time.Duration // in fake time: Retry-After is 3 s
		wantErr     string
		wantErrIs   error
		wantNoPosts bool
	}{
		{name: "the task completes", bend: bend{updateTask: "ok"}, targets: []string{"BIOS"},
			wantBody: map[string]any{"ImageURI": image, "TransferProtocol": "HTTPS", "Targets": []any{bios}}, wantTook: 9 * time.Second},
		{name: "targets by name and by link", bend: bend{updateTask: "ok"}, targets: []string{"contoso bios firmware", bmc},
			wantBody: map[string]any{"ImageURI": image, "TransferProtocol": "HTTPS", "Targets": []any{bios, bmc}}, wantTook: 9 * time.Second},
		{name: "no targets: the package decides", bend: bend{updateTask: "ok"},
			wantBody: map[string]any{"ImageURI": image, "TransferProtocol": "HTTPS"}, wantTook: 9 * time.Second},
		{name: "applied at once", targets: []string{"BIOS"},
			wantBody: map[string]any{"ImageURI": image, "TransferProtocol": "HTTPS", "Targets": []any{bios}}},
		{name: "over HTTP", bend: bend{updateTask: "ok"}, image: "http://cp.example/firmware/0123abcd",
			wantBody: map[string]any{"ImageURI": "http://cp.example/firmware/0123abcd", "TransferProtocol": "HTTP"}, wantTook: 9 * time.Second},
		{name: "the task ends in an exception", bend: bend{updateTask: "exception"}, targets: []string{"BIOS"}, wantTook: 9 * time.Second,
			wantErr: "task /redfish/v1/TaskService/Tasks/1 ended Exception (Critical): Installation of image to 'BIOS' failed.; The package is not signed."},
		{name: "the task completes with a warning", bend: bend{updateTask: "warning"}, wantTook: 9 * time.Second,
			wantErr: "ended Completed (Warning): Awaiting an action to activate."},
		{name: "the monitor is gone once the task ended", bend: bend{updateTask: "monitorGone"}, wantTook: 9 * time.Second},
		{name: "the monitor is the task (Dell)", bend: bend{updateTask: "monitorIsTask"}, wantTook: 7 * time.Second}, // 200s without Retry-After
		{name: "no Task, the operation's answer at the end", bend: bend{updateTask: "noTaskBody"}, wantTook: 9 * time.Second},
		{name: "202 with nothing to follow", bend: bend{updateTask: "noMonitor"}, wantErr: "without a task monitor or a task to follow"},
		{name: "the task never ends", bend: bend{updateTask: "forever"}, timeout: time.Minute, wantTook: time.Minute,
			wantErrIs: context.DeadlineExceeded, wantErr: "update the firmware of /redfish/v1/Systems/437XR1138R2 from " + image},
		{name: "a firmware the BMC does not have", targets: []string{"GPU"}, wantNoPosts: true,
			wantErr: `the BMC's firmware inventory has no "GPU"`},
		{name: "the BMC refuses the target", targets: []string{"/redfish/v1/UpdateService/FirmwareInventory/GPU"},
			wantErr: "ActionParameterValueNotInList"},
		{name: "HTTPS not allowed", bend: bend{updateProtocols: []string{"FTP", "SFTP"}}, wantNoPosts: true,
			wantErr: "the BMC fetches firmware over FTP, SFTP only, not HTTPS"},
		{name: "not an HTTP URL", image: "ftp://cp.example/bios.bin", wantNoPosts: true, wantErr: "must be an http or https URL"},
		{name: "no SimpleUpdate (Intel)", bend: bend{noSimpleUpdate: true}, wantNoPosts: true, wantErrIs: ErrNoSimpleUpdate},
		{name: "trailing slashes (iLO)", bend: bend{updateTask: "ok", trailingSlash: true}, targets: []string{"BIOS"},
			wantBody: map[string]any{"ImageURI": image, "TransferProtocol": "HTTPS", "Targets": []any{bios + "/"}}, wantTook: 9 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBMC(t, rackmount1, tt.bend)
			synctest.Test(t, func(t *testing.T) {
				c := dialFake(t, f)
				ctx := t.Context()
				if tt.timeout > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.timeout)
					defer cancel()
				}
				image := image
				if tt.image != "" {
					image = tt.image
				}
				t0 := time.Now()
				err := c.SimpleUpdate(ctx, rackSystem, image, tt.targets)
				took := time.Since(t0)
				switch {
				case tt.wantErr == "" && tt.wantErrIs == nil && err != nil:
					t.Fatalf("SimpleUpdate() = %v", err)
				case err == nil && (tt.wantErr != "" || tt.wantErrIs != nil),
					tt.wantErr != "" && !errorContains(err, tt.wantErr), tt.wantErrIs != nil && !errors.Is(err, tt.wantErrIs):
					t.Fatalf("SimpleUpdate() = %v, want an error containing %q (is %v)", err, tt.wantErr, tt.wantErrIs)
				}
				if took != tt.wantTook {
					t.Errorf("took %v, want %v", took, tt.wantTook)
				}
				f.mu.Lock()
				defer f.mu.Unlock()
				if tt.wantNoPosts && len(f.updates) != 0 {
					t.Errorf("SimpleUpdate posted %v, want nothing", f.updates)
				}
				if tt.wantBody != nil {
					if len(f.updates) != 1 {
						t.Fatalf("%d updates posted, want 1", len(f.updates))
					}
					if diff := cmp.Diff(tt.wantBody, f.updates[0]); diff != "" {
						t.Errorf("the SimpleUpdate body (-want +got):\n%s", diff)
					}
				}
			})
		})
	}
}
