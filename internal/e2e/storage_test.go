package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/redfishsim"
	"github.com/citadel-cloud/citadel/internal/server"
	"github.com/citadel-cloud/citadel/internal/servertest"
	"github.com/citadel-cloud/citadel/internal/sim"
)

// TestStorage drives shared SAN storage end to end: a multi-rack cluster
// whose aggregator rack holds a real storage appliance (`citadel
// storage-agent` with the nbd driver: sparse files exported by
// qemu-storage-daemon over NBD with TLS-PSK). Volumes are created with az,
// written and read by a real NBD client (qemu-io) across a kill -9 of the
// appliance, grown, refused when attached or beyond the overcommit ratio,
// and created concurrently without over-allocation. An appliance that
// stops answering turns its volumes Error naming their users; a second
// appliance added by a cluster PATCH adds capacity without touching a
// machine; whatever no volume accounts for is removed from an appliance.
func TestStorage(t *testing.T) {
	requireAz(t)
	requireQemu(t)
	t.Parallel()
	bin := buildCitadel(t)
	// 4 GiB at overcommit 1.5: 6,144 MiB may be provisioned.
	cp := servertest.Start(t, func(c *server.Config) {
		c.StorageOvercommit, c.ApplianceCheck = 1.5, 300*time.Millisecond
	})
	ncImage(t, cp.DataDir)
	az := newAzCLI(t, cp)
	t.Cleanup(func() { az.logTimings(t) })
	c := cp.Client
	sub := cp.Creds.SubscriptionID
	rg := "/subscriptions/" + sub + "/resourceGroups/st"
	ncID := func(typ, name string) string { return rg + "/providers/Microsoft.NetworkCloud/" + typ + "/" + name }
	must := func(name string, f func(t *testing.T)) {
		t.Helper()
		if !t.Run(name, f) {
			t.Fatalf("step %q failed; the later steps depend on it", name)
		}
	}

	san1 := startAppliance(t, bin, "SAN-ONE", 4096)
	cl := newNCCluster(t, cp, sim.Spec{Name: "st", ComputeRacks: 3, MachinesPerRack: 1}, nil, nil)
	cl.setAppliances(sub, san1.config(t, "san1", 4))
	applianceID := ncID("storageAppliances", "san1")
	machine := ncID("bareMetalMachines", cl.Machines[len(cl.Machines)-1].Name)
	var clusterID string
	var location map[string]string // the cluster's custom location, where volumes are
	must("cluster", func(t *testing.T) {
		az.login(t, cp.Creds)
		clusterID = ncDefine(t, c, "st", cl)
		location = ncClusterLocation(t, c, clusterID)
		sa := stWait(t, c, applianceID, "appliance available", func(v map[string]any) bool {
			return v["properties"].(map[string]any)["detailedStatus"] == "Available"
		})
		p := sa["properties"].(map[string]any)
		if p["capacity"] != 4.0 || p["manufacturer"] == "" || p["remoteVendorManagementStatus"] != "Disabled" {
			t.Errorf("appliance = %v, want capacity 4 (GiB) as it reports, a manufacturer, vendor management Disabled", p)
		}
	})
	volume := func(name string, sizeMiB int64, extra map[string]any) map[string]any {
		props := map[string]any{"sizeMiB": sizeMiB}
		for k, v := range extra {
			props[k] = v
		}
		return map[string]any{"location": "local", "extendedLocation": location, "properties": props}
	}

	var vol stVolume
	var att stAttachment
	must("create, attach, write over NBD", func(t *testing.T) {
		az.json(t, &vol, "resource", "create", "-g", "st", "-n", "data1", "--resource-type", "Microsoft.NetworkCloud/volumes",
			"--api-version", ncAPI, "--is-full-object", "-p", jsonArg(t, volume("data1", 1024, nil)))
		p := vol.Properties
		if p.ProvisioningState != "Succeeded" || p.AllocatedSizeMiB != 1024 || p.DetailedStatus != "Active" ||
			!strings.EqualFold(p.AssignedStorageApplianceID, applianceID) || p.SerialNumber == "" {
			t.Fatalf("volume = %+v, want Succeeded, 1024 MiB allocated, Active on san1, a serial number", p)
		}
		st := ncOperation(t, c, http.MethodPost, vol.ID+"/attach?api-version="+ncAPI, map[string]any{"attachedTo": machine})
		if st.Status != "Succeeded" {
			t.Fatalf("attach: %+v", st)
		}
		if err := json.Unmarshal(st.Properties, &att); err != nil || att.PSK == "" || att.Port == 0 {
			t.Fatalf("attach result %s: %v", st.Properties, err)
		}
		if out, ok := qemuIO(t, att, att.PSK, "write -P 0xab 0 1M", "write -P 0xcd 1000M 1M"); !ok {
			t.Fatalf("qemu-io write: %s", out)
		}
		if out, ok := qemuIO(t, att, strings.Repeat("00", 32), "read 0 4k"); ok {
			t.Fatalf("qemu-io with a wrong key read the volume: %s", out)
		}
		var shown stVolume
		ncGet(t, c, vol.ID, &shown)
		if !slices.Contains(shown.Properties.AttachedTo, machine) || strings.Contains(fmt.Sprint(shown.Properties.Attachments), att.PSK) {
			t.Errorf("volume shows attachedTo %v and attachments %v: want the machine, never the key", shown.Properties.AttachedTo, shown.Properties.Attachments)
		}
	})
	must("data survives a kill -9 of the appliance; it is Error meanwhile", func(t *testing.T) {
		san1.kill(t)
		v := stWait(t, c, vol.ID, "volume Error", func(v stVolume) bool { return v.Properties.DetailedStatus == "Error" })
		if !strings.Contains(v.Properties.DetailedStatusMessage, "san1") || !strings.Contains(v.Properties.DetailedStatusMessage, cl.Machines[len(cl.Machines)-1].Name) {
			t.Errorf("volume message %q: want the appliance and what uses the volume", v.Properties.DetailedStatusMessage)
		}
		sa := stWait(t, c, applianceID, "appliance Error", func(v map[string]any) bool {
			return v["properties"].(map[string]any)["detailedStatus"] == "Error"
		})
		if msg := fmt.Sprint(sa["properties"].(map[string]any)["detailedStatusMessage"]); !strings.Contains(msg, "not answered") {
			t.Errorf("appliance message %q", msg)
		}
		san1.start()
		stWait(t, c, vol.ID, "volume Active again", func(v stVolume) bool { return v.Properties.DetailedStatus == "Active" })
		if out, ok := qemuIO(t, att, att.PSK, "read -P 0xab 0 1M", "read -P 0xcd 1000M 1M"); !ok {
			t.Fatalf("qemu-io read after the restart: %s", out)
		}
	})
	must("refusals", func(t *testing.T) {
		az.fail(t, []string{"VolumeAttached", "detach it"}, "resource", "delete", "--ids", vol.ID, "--api-version", ncAPI, "--verbose")
		az.fail(t, []string{"InsufficientStorageCapacity", "san1"}, "resource", "create", "-g", "st", "-n", "huge",
			"--resource-type", "Microsoft.NetworkCloud/volumes", "--api-version", ncAPI, "--is-full-object", "-p", jsonArg(t, volume("huge", 6000, nil)))
		az.fail(t, []string{"cannot shrink"}, "resource", "update", "--ids", vol.ID, "--api-version", ncAPI, "--set", "properties.sizeMiB=512")
		var v stVolume
		ncGet(t, c, vol.ID, &v)
		if v.Properties.SizeMiB != 1024 || len(v.Properties.AttachedTo) != 1 {
			t.Errorf("after the refusals the volume is %+v, want it unchanged", v.Properties)
		}
		if r, _ := c.Do(t.Context(), http.MethodGet, ncID("volumes", "huge")+"?api-version="+ncAPI, nil); r == nil || r.Status != http.StatusNotFound {
			t.Errorf("a refused volume was stored")
		}
	})
	must("grow while attached", func(t *testing.T) {
		az.ok(t, "resource", "update", "--ids", vol.ID, "--api-version", ncAPI, "--set", "properties.sizeMiB=2048")
		v := stWait(t, c, vol.ID, "grown", func(v stVolume) bool { return v.Properties.AllocatedSizeMiB == 2048 })
		if v.Properties.ProvisioningState != "Succeeded" {
			t.Fatalf("grow: %+v", v.Properties)
		}
		if out, ok := qemuIO(t, att, att.PSK, "write -P 0xef 2000M 1M", "read -P 0xef 2000M 1M", "read -P 0xab 0 1M"); !ok {
			t.Fatalf("qemu-io beyond the old size: %s", out)
		}
	})
	must("concurrent creations never over-allocate", func(t *testing.T) {
		// 2,048 MiB are provisioned; 4,096 more may be: at most four of
		// these twelve 1,000 MiB volumes fit.
		var wg sync.WaitGroup
		for i := range 12 {
			wg.Go(func() {
				r, err := c.Do(t.Context(), http.MethodPut, ncID("volumes", fmt.Sprintf("race%d", i))+"?api-version="+ncAPI, volume("", 1000, nil))
				if err != nil {
					t.Error(err)
					return
				}
				if r.Status < 300 {
					ncWait(t, c, r)
				}
			})
		}
		wg.Wait()
		total, ok := int64(0), 0
		var serials []string
		for i := range 12 {
			var v stVolume
			r, _ := c.Do(t.Context(), http.MethodGet, ncID("volumes", fmt.Sprintf("race%d", i))+"?api-version="+ncAPI, nil)
			if r.Status != http.StatusOK {
				continue
			}
			json.Unmarshal(r.Body, &v)
			if v.Properties.ProvisioningState == "Succeeded" {
				total += v.Properties.AllocatedSizeMiB
				ok++
				serials = append(serials, v.Properties.SerialNumber)
			} else if v.Properties.AllocatedSizeMiB != 0 {
				t.Errorf("race%d is %s with %d MiB allocated", i, v.Properties.ProvisioningState, v.Properties.AllocatedSizeMiB)
			}
		}
		if ok != 4 || total+2048 > 6144 {
			t.Errorf("%d volumes succeeded with %d MiB: want 4 and at most 6,144 MiB provisioned in all", ok, total+2048)
		}
		// The appliance's own listing, through the diagnostics az can run.
		res := ncOperation(t, c, http.MethodPost, applianceID+"/runReadCommands?api-version="+ncAPI, map[string]any{
			"commands": []any{map[string]any{"command": "volumes"}, map[string]any{"command": "capacity"}}, "limitTimeSeconds": 60})
		for _, s := range append(serials, vol.Properties.SerialNumber) {
			if res.Status != "Succeeded" || !strings.Contains(string(res.Properties), s) {
				t.Errorf("runReadCommands volumes does not list %s: %s", s, res.Properties)
			}
		}
		if strings.Count(string(res.Properties), "-") > 4*(len(serials)+1)+10 {
			t.Errorf("runReadCommands lists more volumes than succeeded: %s", res.Properties)
		}
	})
	must("diagnostics and vendor management", func(t *testing.T) {
		r, _ := c.Do(t.Context(), http.MethodPost, applianceID+"/runReadCommands?api-version="+ncAPI, map[string]any{
			"commands": []any{map[string]any{"command": "rm", "arguments": []string{"-rf", "/"}}}, "limitTimeSeconds": 60})
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "commands[0].command") {
			t.Errorf("runReadCommands rm = %d %s, want 400 naming commands[0].command", r.Status, r.Body)
		}
		az.ok(t, "resource", "invoke-action", "--ids", applianceID, "--api-version", ncAPI, "--action", "enableRemoteVendorManagement",
			"--request-body", `{"durationMinutes": 30}`)
		sa := stWait(t, c, applianceID, "vendor management on", func(v map[string]any) bool {
			return v["properties"].(map[string]any)["remoteVendorManagementStatus"] == "Enabled"
		})
		until, err := time.Parse(time.RFC3339, fmt.Sprint(sa["properties"].(map[string]any)["remoteVendorManagementExpiry"]))
		if err != nil || until.Before(time.Now().Add(25*time.Minute)) || until.After(time.Now().Add(31*time.Minute)) {
			t.Errorf("expiry %v, %v: want in 30 minutes", until, err)
		}
		// The switch is audited: the activity log records who turned it on, until when.
		alFlush(t, cp)
		var events []struct {
			OperationName struct{ Value string } `json:"operationName"`
			Properties    map[string]string      `json:"properties"`
		}
		az.json(t, &events, "monitor", "activity-log", "list", "--offset", "1h", "--resource-id", applianceID)
		audited := false
		for _, e := range events {
			audited = audited || strings.HasSuffix(e.OperationName.Value, "enableRemoteVendorManagement/action") &&
				e.Properties["remoteVendorManagementExpiry"] == until.Format(time.RFC3339)
		}
		if !audited {
			t.Errorf("the activity log of the appliance has no record of vendor management enabled until %s: %+v", until, events)
		}
		az.ok(t, "resource", "invoke-action", "--ids", applianceID, "--api-version", ncAPI, "--action", "disableRemoteVendorManagement")
		stWait(t, c, applianceID, "vendor management off", func(v map[string]any) bool {
			return v["properties"].(map[string]any)["remoteVendorManagementStatus"] == "Disabled"
		})
	})
	must("orphans are removed", func(t *testing.T) {
		sc := san1.client(t)
		if _, err := sc.PutVolume(t.Context(), "orphan-volume", 64); err != nil {
			t.Fatal(err)
		}
		if _, err := sc.PutExport(t.Context(), vol.Properties.SerialNumber, "orphan-export", storageExportSpec()); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			vs, err := sc.Volumes(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			orphans := 0
			for _, v := range vs {
				if v.SerialNumber == "orphan-volume" {
					orphans++
				}
				for _, e := range v.Exports {
					if e.Name == "orphan-export" {
						orphans++
					}
				}
			}
			if orphans == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("orphans still on the appliance after 30 s: %+v", vs)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if out, ok := qemuIO(t, att, att.PSK, "read -P 0xab 0 1M"); !ok {
			t.Fatalf("the volume's own export went with the orphan: %s", out)
		}
		// An export the appliance lost is served again with the
		// attachment's key, and the volume says where.
		var shown stVolume
		ncGet(t, c, vol.ID, &shown)
		if len(shown.Properties.Attachments) != 1 {
			t.Fatalf("attachments = %v, want one", shown.Properties.Attachments)
		}
		name, _ := shown.Properties.Attachments[0]["exportName"].(string)
		if err := sc.DeleteExport(t.Context(), vol.Properties.SerialNumber, name); err != nil {
			t.Fatal(err)
		}
		v := stWait(t, c, vol.ID, "the lost export served again", func(v stVolume) bool {
			vs, err := sc.Volumes(t.Context())
			if err != nil {
				return false
			}
			for _, av := range vs {
				for _, e := range av.Exports {
					if e.Name == name && len(v.Properties.Attachments) == 1 && v.Properties.Attachments[0]["nbdUri"] == e.URI() {
						att.Port = e.Port
						return true
					}
				}
			}
			return false
		})
		if out, ok := qemuIO(t, att, att.PSK, "read -P 0xab 0 1M"); !ok {
			t.Fatalf("the restored export (%v): %s", v.Properties.Attachments, out)
		}
	})
	must("a second appliance adds capacity without touching compute", func(t *testing.T) {
		san2 := startAppliance(t, bin, "SAN-TWO", 8192)
		etags := map[string]string{}
		for _, m := range cl.Machines {
			var r struct{ Etag string }
			ncGet(t, c, ncID("bareMetalMachines", m.Name), &r)
			etags[m.Name] = r.Etag
		}
		cl.setAppliances(sub, san1.config(t, "san1", 4), san2.config(t, "san2", 5))
		st := ncOperation(t, c, http.MethodPut, clusterID+"?api-version="+ncAPI, cl.body(sub, cl.managerLocation))
		if st.Status != "Succeeded" {
			t.Fatalf("cluster with a second appliance: %+v", st)
		}
		stWait(t, c, ncID("storageAppliances", "san2"), "san2 available", func(v map[string]any) bool {
			return v["properties"].(map[string]any)["detailedStatus"] == "Available"
		})
		for _, m := range cl.Machines {
			var r struct{ Etag string }
			ncGet(t, c, ncID("bareMetalMachines", m.Name), &r)
			if r.Etag != etags[m.Name] {
				t.Errorf("machine %s was written by adding an appliance", m.Name)
			}
		}
		st = ncOperation(t, c, http.MethodPut, ncID("volumes", "big")+"?api-version="+ncAPI, volume("big", 5000, nil))
		var v stVolume
		ncGet(t, c, ncID("volumes", "big"), &v)
		if st.Status != "Succeeded" || !strings.HasSuffix(v.Properties.AssignedStorageApplianceID, "/san2") {
			t.Errorf("a 5,000 MiB volume: %s on %q, want Succeeded on san2, which has room", st.Status, v.Properties.AssignedStorageApplianceID)
		}
		// A volume pinned to an appliance stays there; a PUT that leaves
		// the appliance out keeps it, one that names another is refused.
		pinned := ncID("volumes", "pinned")
		if st := ncOperation(t, c, http.MethodPut, pinned+"?api-version="+ncAPI, volume("pinned", 50, map[string]any{"storageApplianceId": applianceID})); st.Status != "Succeeded" {
			t.Fatalf("a volume pinned to san1: %+v", st)
		}
		if st := ncOperation(t, c, http.MethodPut, pinned+"?api-version="+ncAPI, volume("pinned", 90, nil)); st.Status != "Succeeded" {
			t.Fatalf("growing it with a PUT that leaves the appliance out: %+v", st)
		}
		var p stVolume
		ncGet(t, c, pinned, &p)
		if !strings.HasSuffix(p.Properties.AssignedStorageApplianceID, "/san1") || p.Properties.AllocatedSizeMiB != 90 {
			t.Errorf("the pinned volume is %+v, want 90 MiB on san1 (which has 96 MiB left)", p.Properties)
		}
		r, err := c.Do(t.Context(), http.MethodPut, pinned+"?api-version="+ncAPI, volume("pinned", 90, map[string]any{"storageApplianceId": ncID("storageAppliances", "san2")}))
		if err != nil || r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "cannot change") {
			t.Errorf("moving the pinned volume to san2 = %v %v, want 400 naming storageApplianceId", r, err)
		}
	})
	must("detach and delete", func(t *testing.T) {
		st := ncOperation(t, c, http.MethodPost, vol.ID+"/detach?api-version="+ncAPI, map[string]any{"attachedTo": machine})
		if st.Status != "Succeeded" {
			t.Fatalf("detach: %+v", st)
		}
		if out, ok := qemuIO(t, att, att.PSK, "read 0 4k"); ok {
			t.Fatalf("the export still answers after detach: %s", out)
		}
		az.ok(t, "resource", "delete", "--ids", vol.ID, "--api-version", ncAPI)
		vs, err := san1.client(t).Volumes(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if v.SerialNumber == vol.Properties.SerialNumber {
				t.Errorf("the deleted volume is still on the appliance")
			}
		}
	})
}

// TestStorageCrash kills the control plane with SIGKILL while volumes are
// being created, attached and deleted. After a restart every operation
// ends, and the appliance holds exactly the volumes and exports that
// exist in the API: no orphan file, export or reservation.
func TestStorageCrash(t *testing.T) {
	requireQemu(t)
	t.Parallel()
	bin := buildCitadel(t)
	san := startAppliance(t, bin, "SAN-CRASH", 8192)
	p := &citadelProcess{bin: bin, dataDir: t.TempDir(), listen: freeAddr(t), args: []string{"--appliance-check-interval", "300ms"}}
	p.start(t)
	ncImage(t, p.dataDir)
	c := p.client(t)
	sub := c.Creds.SubscriptionID
	rg := "/subscriptions/" + sub + "/resourceGroups/crash"
	ncID := func(typ, name string) string { return rg + "/providers/Microsoft.NetworkCloud/" + typ + "/" + name }
	site, err := sim.Start(sim.Spec{Name: "cr", ComputeRacks: 3, MachinesPerRack: 1}, sim.Options{BMC: redfishsim.Options{Username: bmcUser, Password: bmcPass}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(site.Close)
	cl := &ncCluster{Site: site, props: map[string]any{}}
	cl.setAppliances(sub, san.config(t, "san", 4))
	location := ncClusterLocation(t, c, ncDefine(t, c, "crash", cl))
	stWait(t, c, ncID("storageAppliances", "san"), "appliance available", func(v map[string]any) bool {
		return v["properties"].(map[string]any)["detailedStatus"] == "Available"
	})
	machine := ncID("bareMetalMachines", site.Machines[0].Name)
	volume := func(i int) string { return ncID("volumes", fmt.Sprintf("v%d", i)) }
	// Ten volumes exist and are attached before the burst.
	for i := range 10 {
		if st := ncOperation(t, c, http.MethodPut, volume(i)+"?api-version="+ncAPI, map[string]any{"location": "local",
			"extendedLocation": location, "properties": map[string]any{"sizeMiB": 64}}); st.Status != "Succeeded" {
			t.Fatalf("v%d: %+v", i, st)
		}
	}
	// The burst: twenty creations, ten attaches, five deletes of the
	// created ones, then SIGKILL while they are in flight.
	var wg sync.WaitGroup
	send := func(method, path string, body any) {
		wg.Go(func() { c.Do(t.Context(), method, path+"?api-version="+ncAPI, body) })
	}
	for i := 10; i < 30; i++ {
		send(http.MethodPut, volume(i), map[string]any{"location": "local",
			"extendedLocation": location, "properties": map[string]any{"sizeMiB": 64}})
	}
	for i := range 10 {
		send(http.MethodPost, volume(i)+"/attach", map[string]any{"attachedTo": machine})
	}
	wg.Wait()
	for i := 10; i < 15; i++ {
		send(http.MethodDelete, volume(i), nil)
	}
	wg.Wait()
	p.kill(t)
	// The kill must have caught work in flight: each export starts a
	// qemu-storage-daemon, one at a time, so ten cannot all be served in
	// the moment between their acknowledgement and the kill.
	before, err := san.client(t).Volumes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	exports := 0
	for _, v := range before {
		exports += len(v.Exports)
	}
	t.Logf("at the kill the appliance held %d volumes and %d of the 10 exports", len(before), exports)
	if exports == 10 {
		t.Fatal("every export was served before the kill: nothing was in flight, the test proves nothing")
	}
	p.start(t)
	c = p.client(t)

	// Every volume's PUT or DELETE ends; attaches and the appliance's
	// reconciliation may take a little longer, so the API is read afresh
	// until it and the appliance agree.
	deadline := time.Now().Add(time.Minute)
	apiVolumes := func() map[string]stVolume {
		wanted := map[string]stVolume{}
		for i := range 30 {
			for {
				r, err := c.Do(t.Context(), http.MethodGet, volume(i)+"?api-version="+ncAPI, nil)
				if err != nil {
					t.Fatal(err)
				}
				var v stVolume
				json.Unmarshal(r.Body, &v)
				if r.Status == http.StatusNotFound {
					break
				}
				if s := v.Properties.ProvisioningState; s == "Succeeded" || s == "Failed" || s == "Canceled" {
					if v.Properties.AllocatedSizeMiB > 0 {
						wanted[v.Properties.SerialNumber] = v
					}
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("v%d still %s a minute after the restart", i, v.Properties.ProvisioningState)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		return wanted
	}
	var wanted map[string]stVolume
	sc := san.client(t)
	for {
		vs, err := sc.Volumes(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		wanted = apiVolumes()
		var diffs []string
		for _, v := range vs {
			w, ok := wanted[v.SerialNumber]
			if !ok {
				diffs = append(diffs, "orphan volume "+v.SerialNumber)
				continue
			}
			for _, e := range v.Exports {
				if !slices.ContainsFunc(w.Properties.Attachments, func(a map[string]any) bool { return a["exportName"] == e.Name }) {
					diffs = append(diffs, "orphan export "+e.Name+" of "+w.ID)
				}
			}
		}
		files, _ := filepath.Glob(filepath.Join(san.dir, "volumes", "*.img"))
		if len(vs) != len(wanted) || len(files) != len(wanted) {
			diffs = append(diffs, fmt.Sprintf("%d volumes and %d files on the appliance, %d in the API", len(vs), len(files), len(wanted)))
		}
		if len(diffs) == 0 {
			t.Logf("%d volumes after the crash, appliance and API agree", len(wanted))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a minute after the restart the appliance and the API disagree: %s", strings.Join(diffs, "; "))
		}
		time.Sleep(300 * time.Millisecond)
	}
	var total int64
	for _, v := range wanted {
		total += v.Properties.SizeMiB
	}
	res := ncOperation(t, c, http.MethodPost, ncID("storageAppliances", "san")+"/runReadCommands?api-version="+ncAPI, map[string]any{
		"commands": []any{map[string]any{"command": "capacity"}}, "limitTimeSeconds": 60})
	if !strings.Contains(string(res.Properties), fmt.Sprint(total)) {
		t.Errorf("the appliance's provisioned capacity is not the API's %d MiB: %s", total, res.Properties)
	}
}

// TestStorageSim uses the fleet simulator's storage appliance (the sim
// driver behind the same management API): a volume is placed on it and
// attached, and when the appliance reports itself degraded, so does the
// volume, with the appliance's reason, until it recovers.
func TestStorageSim(t *testing.T) {
	t.Parallel()
	cp := servertest.Start(t, func(c *server.Config) { c.ApplianceCheck = 200 * time.Millisecond })
	ncImage(t, cp.DataDir)
	c := cp.Client
	sub := cp.Creds.SubscriptionID
	rg := "/subscriptions/" + sub + "/resourceGroups/sims"
	ncID := func(typ, name string) string { return rg + "/providers/Microsoft.NetworkCloud/" + typ + "/" + name }
	cl := newNCCluster(t, cp, sim.Spec{Name: "ss", ComputeRacks: 3, MachinesPerRack: 1}, nil, nil)
	location := ncClusterLocation(t, c, ncDefine(t, c, "sims", cl))
	san := ncID("storageAppliances", "ss-san")
	sa := stWait(t, c, san, "the simulated appliance available", func(v map[string]any) bool {
		return v["properties"].(map[string]any)["detailedStatus"] == "Available"
	})
	if p := sa["properties"].(map[string]any); p["capacity"] != 100000.0 || p["serialNumber"] != "SS-SAN" {
		t.Errorf("appliance = %v, want the SKU's 100,000 GiB and serial SS-SAN", p)
	}
	vol := ncID("volumes", "data")
	if st := ncOperation(t, c, http.MethodPut, vol+"?api-version="+ncAPI, map[string]any{"location": "local",
		"extendedLocation": location, "properties": map[string]any{"sizeMiB": 10240}}); st.Status != "Succeeded" {
		t.Fatalf("volume: %+v", st)
	}
	machine := ncID("bareMetalMachines", cl.Machines[len(cl.Machines)-1].Name)
	if st := ncOperation(t, c, http.MethodPost, vol+"/attach?api-version="+ncAPI, map[string]any{"attachedTo": machine}); st.Status != "Succeeded" {
		t.Fatalf("attach: %+v", st)
	}
	if err := cl.DegradeSAN("controller CT1 failed"); err != nil {
		t.Fatal(err)
	}
	v := stWait(t, c, vol, "volume Degraded", func(v stVolume) bool { return v.Properties.DetailedStatus == "Degraded" })
	if !strings.Contains(v.Properties.DetailedStatusMessage, "controller CT1 failed") {
		t.Errorf("volume message %q: want the appliance's reason", v.Properties.DetailedStatusMessage)
	}
	stWait(t, c, san, "appliance Degraded", func(v map[string]any) bool {
		return v["properties"].(map[string]any)["detailedStatus"] == "Degraded"
	})
	if err := cl.DegradeSAN(""); err != nil {
		t.Fatal(err)
	}
	stWait(t, c, vol, "volume Active again", func(v stVolume) bool { return v.Properties.DetailedStatus == "Active" })
}
