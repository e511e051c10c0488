package resource_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
)

func sysID(rg, name string) string { return groupID(rg) + "/providers/" + ns + "/sysWidgets/" + name }

func mustID(t testing.TB, s string) arm.ID {
	t.Helper()
	id, err := arm.ParseID(s)
	if err != nil {
		t.Fatalf("ParseID(%q): %v", s, err)
	}
	return id
}

// TestSystemManaged: users cannot PUT or DELETE a system-managed type, but
// the system creates, changes and removes it, and users PATCH its tags.
func TestSystemManaged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	id := sysID("rg", "s1")

	_, err := e.svc.Put(t.Context(), req(t, id, `{"location":"local","properties":{}}`))
	checkError(t, "Put(system-managed)", err, http.StatusMethodNotAllowed, "SystemManagedResource", "")

	ctx := t.Context()
	calls := 0
	r, err := e.svc.Upsert(ctx, mustID(t, id), func(r *resource.Resource, created bool) error {
		calls++
		if !created {
			t.Errorf("Upsert of a new resource: created = false")
		}
		r.Properties["rackSlot"] = 3
		return nil
	})
	if err != nil || calls != 1 {
		t.Fatalf("Upsert(create) = %v (%d calls), want success in one call", err, calls)
	}
	if r.Location != "local" || r.SystemData == nil || r.SystemData.CreatedBy != resource.SystemCaller.Name || r.ETag == "" {
		t.Errorf("Upsert(create) = %+v, want location local, systemData by the system and an etag", r)
	}
	got := e.mustGet(t, id)
	if got.Properties["rackSlot"] != float64(3) || got.Properties["provisioningState"] != "Succeeded" {
		t.Errorf("Get after Upsert: properties %v, want rackSlot 3 and Succeeded", got.Properties)
	}

	// A user PATCH of tags works.
	resp, err := e.svc.Patch(ctx, req(t, id, `{"tags":{"team":"ops"}}`))
	wantStatus(t, "Patch(tags)", resp, err, http.StatusOK)

	// An Upsert that changes nothing writes nothing.
	before := e.mustGet(t, id)
	if _, err := e.svc.Upsert(ctx, mustID(t, id), func(*resource.Resource, bool) error { return resource.ErrUnchanged }); err != nil {
		t.Fatalf("Upsert(unchanged) = %v", err)
	}
	if after := e.mustGet(t, id); after.ETag != before.ETag {
		t.Errorf("Upsert(unchanged) changed the etag %s → %s", before.ETag, after.ETag)
	}
	// An error from change is returned and nothing is written.
	boom := errors.New("boom")
	if _, err := e.svc.Upsert(ctx, mustID(t, id), func(r *resource.Resource, _ bool) error {
		r.Properties["rackSlot"] = 9
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Upsert(failing change) = %v, want %v", err, boom)
	}
	if after := e.mustGet(t, id); after.Properties["rackSlot"] != float64(3) || after.Tags["team"] != "ops" {
		t.Errorf("after a failed Upsert: %+v, want rackSlot 3 and the user's tags", after)
	}

	list, err := e.svc.Resources(ctx, mustID(t, groupID("rg")), ns+"/sysWidgets")
	if err != nil || len(list) != 1 || list[0].Name != "s1" {
		t.Fatalf("Resources = %v, %v; want [s1]", list, err)
	}

	_, err = e.svc.Delete(ctx, req(t, id, ""))
	checkError(t, "Delete(system-managed)", err, http.StatusMethodNotAllowed, "SystemManagedResource", "")

	if _, err := e.svc.Upsert(ctx, mustID(t, sysID("rg", "s1")+"/parts/p1"), func(*resource.Resource, bool) error { return nil }); err != nil {
		t.Fatalf("Upsert(child) = %v", err)
	}
	if err := e.svc.Remove(ctx, mustID(t, id)); err != nil {
		t.Fatalf("Remove = %v", err)
	}
	for _, gone := range []string{id, id + "/parts/p1"} {
		if _, err := e.get(t, gone); err == nil {
			t.Errorf("Get(%s) after Remove succeeded, want 404", gone)
		}
	}
	if err := e.svc.Remove(ctx, mustID(t, id)); err != nil {
		t.Errorf("Remove of a missing resource = %v, want success", err)
	}
}

// observe writes v to the Reported property "observed" of system
// resource id, as a host's report would.
func (e *env) observe(t *testing.T, id, v string) {
	t.Helper()
	if _, err := e.svc.Upsert(t.Context(), mustID(t, id), func(r *resource.Resource, _ bool) error {
		r.Properties["observed"] = v
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestTaskSave: an action's progress is visible on the resource while it
// runs, and a user's tag change and a system write of a Reported property
// meanwhile survive the action's end.
func TestTaskSave(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	runOperations(t, e.svc, "replica-1")
	id := sysID("rg", "s2")
	e.observe(t, id, "before")
	open := e.p.gate("s2")
	defer open()
	resp, err := e.svc.Action(t.Context(), req(t, id, `{}`), "spin")
	op := opID(t, wantStatus(t, "Action(spin)", resp, err, http.StatusAccepted).Header.Get("Location"))
	waitFor(t, "phase spinning", func() bool {
		r, err := e.get(t, id)
		return err == nil && r.Properties["phase"] == "spinning"
	})
	resp, err = e.svc.Patch(t.Context(), req(t, id, `{"tags":{"k":"v"}}`))
	wantStatus(t, "Patch(tags) during the action", resp, err, http.StatusOK)
	e.observe(t, id, "during")
	open()
	if st := e.waitOp(t, op); st.Status != resource.OpSucceeded {
		t.Fatalf("spin = %+v, want Succeeded", st)
	}
	got := e.mustGet(t, id)
	want := map[string]string{"k": "v"}
	if got.Properties["phase"] != "spun" || !cmp.Equal(got.Tags, want) || got.Properties["observed"] != "during" {
		t.Errorf("after spin: phase %v tags %v observed %v, want spun, %v and the write made during the action", got.Properties["phase"],
			got.Tags, got.Properties["observed"], want)
	}
}

// TestTaskRefresh: a task that refreshes its resource sees what was
// reported meanwhile, keeps its own unsaved changes, and ends with both.
func TestTaskRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	runOperations(t, e.svc, "replica-1")
	id := sysID("rg", "s3")
	e.observe(t, id, "before")
	open := e.p.gate("s3")
	defer open()
	resp, err := e.svc.Action(t.Context(), req(t, id, `{}`), "look")
	op := opID(t, wantStatus(t, "Action(look)", resp, err, http.StatusAccepted).Header.Get("Location"))
	waitFor(t, "the task to start", func() bool { return e.opStatus(t, op).PercentComplete > 0 })
	e.observe(t, id, "during")
	open()
	st := e.waitOp(t, op)
	if st.Status != resource.OpSucceeded || st.Properties["observed"] != "during" {
		t.Fatalf("look = %+v, want Succeeded, having seen observed=during after Refresh", st)
	}
	if got := e.mustGet(t, id); got.Properties["phase"] != "looked" || got.Properties["observed"] != "during" {
		t.Errorf("after look: phase %v observed %v, want the task's own change (looked) and the report (during)", got.Properties["phase"], got.Properties["observed"])
	}

	// Removed while the task waits: Refresh ends the operation Canceled.
	open = e.p.gate("s3")
	defer open()
	resp, err = e.svc.Action(t.Context(), req(t, id, `{}`), "look")
	op = opID(t, wantStatus(t, "Action(look) again", resp, err, http.StatusAccepted).Header.Get("Location"))
	waitFor(t, "the task to start", func() bool { return e.opStatus(t, op).PercentComplete > 0 })
	if err := e.svc.Remove(t.Context(), mustID(t, id)); err != nil {
		t.Fatal(err)
	}
	open()
	if st := e.waitOp(t, op); st.Status != resource.OpCanceled || st.Error == nil || !strings.Contains(st.Error.Message, "deleted") {
		t.Errorf("look on a resource removed meanwhile = %+v, want Canceled, the resource deleted", st)
	}
}

// TestUpsertAll: the resources change writes go in one transaction that
// holds only if none of those read changed, came or went meanwhile;
// otherwise change runs again on what is stored then. Those it leaves
// keep their etag, and it creates none.
func TestUpsertAll(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	ctx := t.Context()
	a, b, c := mustID(t, sysID("rg", "a")), mustID(t, sysID("rg", "b")), mustID(t, sysID("rg", "c"))
	for _, id := range []arm.ID{a, b} {
		if _, err := e.svc.Upsert(ctx, id, func(r *resource.Resource, _ bool) error { r.Properties["n"] = 0; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	bBefore := e.mustGet(t, b.String())

	for _, meanwhile := range []arm.ID{b, c} { // b changes, c comes
		runs := 0
		got, err := e.svc.UpsertAll(ctx, []arm.ID{a, b, c}, func(rs []*resource.Resource) ([]bool, error) {
			runs++
			if runs == 1 { // another writer, between the read and the write
				if _, err := e.svc.Upsert(ctx, meanwhile, func(r *resource.Resource, _ bool) error { r.Properties["other"] = true; return nil }); err != nil {
					t.Fatal(err)
				}
			}
			if rs[0] == nil || rs[1] == nil {
				t.Fatalf("run %d: a or b missing: %v", runs, rs)
			}
			rs[0].Properties["n"] = runs
			if rs[2] != nil {
				rs[2].Properties["n"] = runs // written only if said changed
			}
			return []bool{true, false, false}, nil
		})
		if err != nil || runs != 2 {
			t.Fatalf("UpsertAll with %s written meanwhile: %v after %d runs, want success after 2", meanwhile.Name(), err, runs)
		}
		if got[0].Properties["n"] != 2 || got[0].ETag == "" {
			t.Errorf("a as returned: %+v, want n 2 from the second run", got[0])
		}
		if stored := e.mustGet(t, a.String()); stored.Properties["n"] != float64(2) || stored.ETag != got[0].ETag {
			t.Errorf("a as stored: %v %s, want n 2 and etag %s", stored.Properties, stored.ETag, got[0].ETag)
		}
		if meanwhile.Name() == "b" && got[2] != nil {
			t.Errorf("c returned though it does not exist: %+v", got[2])
		}
	}
	if after := e.mustGet(t, b.String()); after.ETag == bBefore.ETag || after.Properties["n"] != float64(0) {
		t.Errorf("b: %v, want only the other writer's change", after.Properties)
	}
	if stored := e.mustGet(t, c.String()); stored.Properties["n"] != nil {
		t.Errorf("c: %v, want only the other writer's change", stored.Properties)
	}

	// Nothing changed, nothing written; an error writes nothing either.
	before := e.mustGet(t, a.String())
	for _, result := range []error{resource.ErrUnchanged, errors.New("boom")} {
		_, err := e.svc.UpsertAll(ctx, []arm.ID{a, b}, func(rs []*resource.Resource) ([]bool, error) {
			rs[0].Properties["n"] = 99
			return []bool{true, true}, result
		})
		if (result == resource.ErrUnchanged) != (err == nil) {
			t.Errorf("UpsertAll returning %v: %v", result, err)
		}
		if after := e.mustGet(t, a.String()); after.ETag != before.ETag {
			t.Errorf("UpsertAll returning %v wrote a: %v", result, after.Properties)
		}
	}
}
