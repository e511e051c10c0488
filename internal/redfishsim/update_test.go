package redfishsim_test

import (
	stdcmp "cmp"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/redfish"
	"github.com/citadel-cloud/citadel/internal/redfishsim"
)

const (
	updateAt  = "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate"
	inventory = "/redfish/v1/UpdateService/FirmwareInventory/"
)

// packages serves firmware packages over HTTPS, as the control plane
// does: GET /{name} answers the package, /slow waits for release first.
func packages(t *testing.T, release chan struct{}) *httptest.Server {
	files := map[string]string{
		"/bios":     "citadel-firmware BIOS 2.5.0\n\x00\x01 the BIOS image",
		"/nic":      "citadel-firmware NIC1 23.1.4\nthe NIC image",
		"/bmc":      "citadel-firmware BMC 2.0.1\nthe BMC image",
		"/gpu":      "citadel-firmware GPU 9.0\nthe GPU image",
		"/junk":     "MZ\x90\x00 a Windows program\n",
		"/no-line":  "citadel-firmware BIOS 2.5.0",
		"/slow":     "citadel-firmware BIOS 2.6.0\n",
		"/too-many": "citadel-firmware BIOS 2.5.0 extra\n",
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			<-release
		}
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(f))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// waitTask polls a task monitor until it answers 200, and returns the task.
func waitTask(t *testing.T, c *client, monitor string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp := c.do(http.MethodGet, monitor, nil)
		switch {
		case resp.status == http.StatusOK:
			return resp.body
		case resp.status != http.StatusAccepted || resp.header.Get("Retry-After") != "1" || resp.body["TaskState"] != "Running":
			t.Fatalf("GET %s = %d (Retry-After %q), want 202 with Retry-After 1 and the running task\n%s", monitor, resp.status, resp.header.Get("Retry-After"), resp.raw)
		case time.Now().After(deadline):
			t.Fatalf("the task of %s still runs after 10 s", monitor)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSimpleUpdate(t *testing.T) {
	release := make(chan struct{})
	close(release)
	images := packages(t, release)

	tests := []struct {
		name      string
		body      map[string]any
		status    int      // of the POST
		wantIDs   []string // of a refusal
		wantState string   // of the task: Completed or Exception
		wantMsg   string   // MessageId of the task's message
		wantText  string   // in its text
		wantBIOS  string   // the BIOS version after
		wantNIC   string
		wantBMC   string // "" for 1.9.0, as it was
		distrust  bool   // the BMC trusts the system's roots only, not the image server's certificate
	}{
		{name: "the BIOS", body: map[string]any{"ImageURI": images.URL + "/bios", "TransferProtocol": "HTTPS", "Targets": []string{inventory + "BIOS"}},
			status: 202, wantState: "Completed", wantMsg: "Update.1.0.UpdateSuccessful", wantText: "Device 'BIOS' successfully updated", wantBIOS: "2.5.0", wantNIC: "22.31.6"},
		{name: "a NIC, no targets", body: map[string]any{"ImageURI": images.URL + "/nic"},
			status: 202, wantState: "Completed", wantMsg: "Update.1.0.UpdateSuccessful", wantBIOS: "2.4.1", wantNIC: "23.1.4"},
		{name: "the BMC", body: map[string]any{"ImageURI": images.URL + "/bmc", "Targets": []string{inventory + "BMC"}},
			status: 202, wantState: "Completed", wantMsg: "Update.1.0.UpdateSuccessful", wantBIOS: "2.4.1", wantNIC: "22.31.6", wantBMC: "2.0.1"},
		{name: "a component the BMC lacks", body: map[string]any{"ImageURI": images.URL + "/gpu"},
			status: 202, wantState: "Exception", wantMsg: "Update.1.0.NoTargetsDetermined", wantText: "for firmware GPU, which this BMC does not have", wantBIOS: "2.4.1", wantNIC: "22.31.6"},
		{name: "a package for another target", body: map[string]any{"ImageURI": images.URL + "/bios", "Targets": []string{inventory + "BMC"}},
			status: 202, wantState: "Exception", wantMsg: "Update.1.0.NoTargetsDetermined", wantText: "not among the Targets", wantBIOS: "2.4.1", wantNIC: "22.31.6"},
		{name: "not a package", body: map[string]any{"ImageURI": images.URL + "/junk"},
			status: 202, wantState: "Exception", wantMsg: "Update.1.0.VerificationFailed", wantText: "not a firmware package", wantBIOS: "2.4.1", wantNIC: "22.31.6"},
		{name: "no end of line", body: map[string]any{"ImageURI": images.URL + "/no-line"},
			status: 202, wantState: "Exception", wantMsg: "Update.1.0.VerificationFailed", wantBIOS: "2.4.1", wantNIC: "22.31.6"},
		{name: "a line of four words", body: map[string]any{"ImageURI": images.URL + "/too-many"},
			status: 202, wantState: "Exception", wantMsg: "Update.1.0.VerificationFailed", wantBIOS: "2.4.1", wantNIC: "22.31.6"},
		{name: "not found", body: map[string]any{"ImageURI": images.URL + "/missing"},
			status: 202, wantState: "Exception", wantMsg: "Update.1.0.TransferFailed", wantText: "404 Not Found", wantBIOS: "2.4.1", wantNIC: "22.31.6"},
		{name: "a server the BMC does not trust", body: map[string]any{"ImageURI": images.URL + "/bios"}, distrust: true,
			status: 202, wantState: "Exception", wantMsg: "Update.1.0.TransferFailed", wantText: "certificate", wantBIOS: "2.4.1", wantNIC: "22.31.6"},
		{name: "no image", body: map[string]any{"TransferProtocol": "HTTPS"}, status: 400, wantIDs: []string{"Base.ActionParameterMissing"}},
		{name: "not a URL", body: map[string]any{"ImageURI": "bios.bin"}, status: 400, wantIDs: []string{"Base.ActionParameterValueFormatError"}},
		{name: "a protocol not allowed", body: map[string]any{"ImageURI": images.URL + "/bios", "TransferProtocol": "TFTP"}, status: 400,
			wantIDs: []string{"Base.PropertyValueNotInList"}},
		{name: "an unknown target", body: map[string]any{"ImageURI": images.URL + "/bios", "Targets": []string{inventory + "GPU"}}, status: 400,
			wantIDs: []string{"Base.ResourceMissingAtURI"}},
		{name: "an unknown parameter", body: map[string]any{"ImageURI": images.URL + "/bios", "Force": true}, status: 400,
			wantIDs: []string{"Base.ActionParameterUnknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, c := sample(t, nil, func(o *redfishsim.Options) {
				o.HTTPClient = images.Client()
				if tt.distrust {
					o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
				}
			})
			resp := c.do(http.MethodPost, updateAt, tt.body)
			if resp.status != tt.status {
				t.Fatalf("SimpleUpdate = %d, want %d\n%s", resp.status, tt.status, resp.raw)
			}
			if diff := cmp.Diff(tt.wantIDs, resp.messageIDs()); diff != "" {
				t.Errorf("SimpleUpdate messages (-want +got):\n%s", diff)
			}
			if tt.status != 202 {
				if len(c.get("/redfish/v1/TaskService/Tasks")["Members"].([]any)) != 0 {
					t.Errorf("a refused update left a task")
				}
				return
			}
			monitor := resp.header.Get("Location")
			if monitor == "" || resp.body["@odata.id"] == nil || !strings.HasPrefix(monitor, resp.body["@odata.id"].(string)) {
				t.Fatalf("SimpleUpdate answered Location %q and %v, want the monitor of the task", monitor, resp.body)
			}
			task := waitTask(t, c, monitor)
			msgs, _ := task["Messages"].([]any)
			if task["TaskState"] != tt.wantState || len(msgs) != 1 || field(msgs[0].(map[string]any), "MessageId") != tt.wantMsg ||
				!strings.Contains(field(msgs[0].(map[string]any), "Message").(string), tt.wantText) {
				t.Errorf("task = %v, want %s with a message %s saying %q", task, tt.wantState, tt.wantMsg, tt.wantText)
			}
			if want := map[string]string{"Completed": "OK", "Exception": "Critical"}[tt.wantState]; task["TaskStatus"] != want {
				t.Errorf("TaskStatus = %v, want %s", task["TaskStatus"], want)
			}
			if got := c.get(task["@odata.id"].(string)); got["TaskState"] != tt.wantState {
				t.Errorf("the task itself = %v, want %s", got, tt.wantState)
			}
			if got, want := []string{b.FirmwareVersion("BIOS"), b.FirmwareVersion("NIC1")}, []string{tt.wantBIOS, tt.wantNIC}; !cmp.Equal(got, want) {
				t.Errorf("BIOS and NIC1 versions = %v, want %v", got, want)
			}
			if got := c.get(system)["BiosVersion"]; got != tt.wantBIOS {
				t.Errorf("the system's BiosVersion = %v, want %s", got, tt.wantBIOS)
			}
			wantBMC := stdcmp.Or(tt.wantBMC, "1.9.0")
			if got, mgr := b.FirmwareVersion("BMC"), c.get("/redfish/v1/Managers/BMC")["FirmwareVersion"]; got != wantBMC || mgr != wantBMC {
				t.Errorf("the BMC's firmware = %s, its manager's FirmwareVersion %v; want %s", got, mgr, wantBMC)
			}
		})
	}
}

// TestSimpleUpdateRunning: the monitor answers 202 while the package is
// on its way, and the task is in the TaskService.
func TestSimpleUpdateRunning(t *testing.T) {
	release := make(chan struct{})
	images := packages(t, release)
	b, c := sample(t, nil, func(o *redfishsim.Options) { o.HTTPClient = images.Client() })
	resp := c.do(http.MethodPost, updateAt, map[string]any{"ImageURI": images.URL + "/slow"})
	if resp.status != http.StatusAccepted || resp.header.Get("Retry-After") != "1" {
		t.Fatalf("SimpleUpdate = %d, Retry-After %q; want 202, 1\n%s", resp.status, resp.header.Get("Retry-After"), resp.raw)
	}
	monitor := resp.header.Get("Location")
	if r := c.do(http.MethodGet, monitor, nil); r.status != http.StatusAccepted || r.body["TaskState"] != "Running" {
		t.Errorf("the monitor while the package is fetched = %d %v, want 202 Running", r.status, r.body["TaskState"])
	}
	tasks := c.get("/redfish/v1/TaskService/Tasks")["Members"].([]any)
	if len(tasks) != 1 || field(tasks[0].(map[string]any), "@odata.id") != resp.body["@odata.id"] {
		t.Errorf("TaskService/Tasks = %v, want the task %v", tasks, resp.body["@odata.id"])
	}
	if got := b.FirmwareVersion("BIOS"); got != "2.4.1" {
		t.Errorf("the BIOS before the package arrived = %s, want 2.4.1", got)
	}
	close(release)
	if task := waitTask(t, c, monitor); task["TaskState"] != "Completed" || b.FirmwareVersion("BIOS") != "2.6.0" {
		t.Errorf("task = %v, BIOS %s; want Completed, 2.6.0", task, b.FirmwareVersion("BIOS"))
	}
}

// TestClientSimpleUpdate flashes firmware with the Redfish client, on a
// generated BMC and on both DMTF mockups (SimpleUpdate's protocols in an
// ActionInfo, the TaskService linked as Tasks).
func TestClientSimpleUpdate(t *testing.T) {
	release := make(chan struct{})
	close(release)
	images := packages(t, release)
	for _, name := range []string{"generated", "dmtf-public-rackmount1", "dmtf-public-tower"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			opts := testOptions(t, nil)
			opts.HTTPClient = images.Client()
			b := redfishsim.New(redfishsim.SampleMachine("SN1234"), opts)
			if name != "generated" {
				var err error
				if b, err = redfishsim.FromMockup(mockup(t, name), opts); err != nil {
					t.Fatal(err)
				}
			}
			s, err := redfishsim.Serve(b, true)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			ctx := t.Context()
			c, err := redfish.Dial(ctx, redfish.Config{Endpoint: s.URL, Username: user, Password: password, Fingerprint: s.Fingerprint})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			sys, err := c.HostSystem(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.SimpleUpdate(ctx, sys, images.URL+"/bios", []string{"BIOS"}); err != nil {
				t.Fatalf("SimpleUpdate(bios) = %v", err)
			}
			inv, err := c.Inventory(ctx, sys)
			if err != nil {
				t.Fatal(err)
			}
			if got := inv.Hardware().Firmware["BIOS"]; got != "2.5.0" {
				t.Errorf("the BIOS after the update = %q, want 2.5.0 (firmware %v)", got, inv.Hardware().Firmware)
			}
			err = c.SimpleUpdate(ctx, sys, images.URL+"/gpu", nil)
			if err == nil || !strings.Contains(err.Error(), "ended Exception (Critical): No device will receive the update: the package is for firmware GPU") {
				t.Errorf("SimpleUpdate(gpu) = %v, want the task's exception", err)
			}
		})
	}
}
