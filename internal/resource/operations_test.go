package resource_test

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/controller"
	"github.com/citadel-cloud/citadel/internal/resource"
	"github.com/citadel-cloud/citadel/internal/store"
)

// maxAttempts mirrors the operations controller's bound on retries.
const maxAttempts = 8

var statusURL = regexp.MustCompile(`^https://example\.test/subscriptions/` + subID +
	`/providers/Test\.Widgets/locations/local/operationStatuses/([0-9a-f-]{36})\?api-version=` + widgetAPI + `$`)

func TestLROPut(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	runOperations(t, e.svc, "replica-1")
	id := slowID("rg", "s1")
	open := e.p.gate("s1")

	resp, err := e.svc.Put(t.Context(), req(t, id, `{"location":"local","properties":{"color":"red","endpoint":"https://evil.example.test"}}`))
	resp = wantStatus(t, "Put(slow)", resp, err, http.StatusCreated)
	body := resourceOf(t, resp)
	if diff := cmp.Diff(map[string]any{"color": "red", "provisioningState": "Accepted"}, body.Properties); diff != "" {
		t.Errorf("Put(slow) properties (-want +got):\n%s", diff)
	}
	async := resp.Header.Get("Azure-AsyncOperation")
	m := statusURL.FindStringSubmatch(async)
	if m == nil {
		t.Fatalf("Put(slow) Azure-AsyncOperation = %q, want it to match %s", async, statusURL)
	}
	if resp.Header.Get("ETag") != body.ETag || resp.Header.Get("Retry-After") == "" {
		t.Errorf("Put(slow) headers %v: want ETag %s and Retry-After", resp.Header, body.ETag)
	}
	op := m[1]

	waitFor(t, "Provision to start", func() bool { return e.p.count(e.p.provisions, "s1") > 0 })
	st := e.opStatus(t, op)
	wantRunning := opStatus{
		ID:         "/subscriptions/" + subID + "/providers/Test.Widgets/locations/local/operationStatuses/" + op,
		Name:       op,
		ResourceID: id,
		Status:     "InProgress",
		StartTime:  st.StartTime,
	}
	if diff := cmp.Diff(wantRunning, st); diff != "" || st.StartTime.IsZero() {
		t.Errorf("OperationStatus while running (-want +got):\n%s", diff)
	}
	if got := e.mustGet(t, id).Properties["provisioningState"]; got != "Accepted" {
		t.Errorf("Get while provisioning: provisioningState %v, want Accepted", got)
	}
	resp, err = e.svc.OperationResult(t.Context(), req(t, id, ""), subID, op)
	resp = wantStatus(t, "OperationResult while running", resp, err, http.StatusAccepted)
	if loc := resp.Header.Get("Location"); !strings.Contains(loc, "/operationResults/"+op) || !strings.HasPrefix(loc, baseURL) {
		t.Errorf("OperationResult while running: Location %q, want the absolute operationResults URL", loc)
	}
	if resp.Body != nil {
		t.Errorf("OperationResult while running has a body %+v", resp.Body)
	}
	_, err = e.svc.Action(t.Context(), req(t, id, `{"mode":"soft"}`), "restart")
	checkError(t, "Action while provisioning", err, http.StatusConflict, "AnotherOperationInProgress", "")

	open()
	st = e.waitOp(t, op)
	if st.Status != resource.OpSucceeded || st.PercentComplete != 100 || st.Error != nil || st.EndTime == nil || st.EndTime.Before(st.StartTime) {
		t.Errorf("OperationStatus when done = %+v, want Succeeded, 100%%, an endTime after startTime and no error", st)
	}

	resp, err = e.svc.OperationResult(t.Context(), req(t, id, ""), subID, op)
	resp = wantStatus(t, "OperationResult when done", resp, err, http.StatusOK)
	done := resourceOf(t, resp)
	want := map[string]any{"color": "red", "endpoint": "https://s1.widgets.example.test", "provisioningState": "Succeeded"}
	if diff := cmp.Diff(want, done.Properties); diff != "" {
		t.Errorf("OperationResult when done: properties (-want +got):\n%s", diff)
	}
	if got := e.mustGet(t, id); !cmp.Equal(got, done) || resp.Header.Get("ETag") != got.ETag {
		t.Errorf("Get after provisioning = %+v (ETag %s), want what OperationResult gave: %+v (ETag header %s)", got, got.ETag, done, resp.Header.Get("ETag"))
	}

	_, err = e.svc.OperationStatus(t.Context(), req(t, id, ""), "00000000-0000-0000-0000-000000000000", op)
	checkError(t, "OperationStatus(other subscription)", err, http.StatusNotFound, "OperationNotFound", "")
	_, err = e.svc.OperationResult(t.Context(), req(t, id, ""), "00000000-0000-0000-0000-000000000000", op)
	checkError(t, "OperationResult(other subscription)", err, http.StatusNotFound, "OperationNotFound", "")
	_, err = e.svc.OperationStatus(t.Context(), req(t, id, ""), subID, "6d1b4f1e-0000-0000-0000-000000000000")
	checkError(t, "OperationStatus(unknown)", err, http.StatusNotFound, "OperationNotFound", "")
}

func TestLROFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	runOperations(t, e.svc, "replica-1")

	// put creates the slowWidget name and waits for its operation.
	put := func(t *testing.T, name string) (op string, st opStatus) {
		resp := e.put(t, slowID("rg", name), `{"location":"local","properties":{"color":"red"}}`)
		op = opID(t, resp.Header.Get("Azure-AsyncOperation"))
		return op, e.waitOp(t, op)
	}

	t.Run("terminal", func(t *testing.T) {
		t.Parallel()
		e.p.setFail("jammed", func(int) error {
			return controller.Terminal(arm.Errorf(http.StatusConflict, "WidgetJammed", "The widget is jammed."))
		})
		op, st := put(t, "jammed")
		if st.Status != resource.OpFailed || st.Error == nil || st.Error.Code != "WidgetJammed" || st.Error.Message != "The widget is jammed." || st.EndTime == nil {
			t.Errorf("OperationStatus = %+v (error %+v), want Failed with the provider's WidgetJammed error", st, st.Error)
		}
		if st.Properties != nil {
			t.Errorf("OperationStatus of a failure has properties %v", st.Properties)
		}
		if n := e.p.count(e.p.provisions, "jammed"); n != 1 {
			t.Errorf("Provision ran %d times, want 1: a terminal error is not retried", n)
		}
		_, err := e.svc.OperationResult(t.Context(), req(t, slowID("rg", "jammed"), ""), subID, op)
		checkError(t, "OperationResult", err, http.StatusConflict, "WidgetJammed", "")
		if got := e.mustGet(t, slowID("rg", "jammed")).Properties["provisioningState"]; got != "Failed" {
			t.Errorf("provisioningState = %v, want Failed", got)
		}
		// The next PUT is a new try; its body may carry the Failed state it read.
		e.p.setFail("jammed", nil)
		resp := e.put(t, slowID("rg", "jammed"), `{"location":"local","properties":{"color":"red","provisioningState":"Failed"}}`)
		if st := e.waitOp(t, opID(t, resp.Header.Get("Azure-AsyncOperation"))); st.Status != resource.OpSucceeded {
			t.Errorf("PUT after a failure: operation %+v, want Succeeded", st)
		}
	})

	t.Run("terminal plain error", func(t *testing.T) {
		t.Parallel()
		e.p.setFail("broken", func(int) error { return controller.Terminal(errors.New("no capacity")) })
		op, st := put(t, "broken")
		if st.Status != resource.OpFailed || st.Error == nil || st.Error.Code != "InternalOperationError" {
			t.Errorf("OperationStatus = %+v (error %+v), want Failed InternalOperationError", st, st.Error)
		}
		_, err := e.svc.OperationResult(t.Context(), req(t, slowID("rg", "broken"), ""), subID, op)
		checkError(t, "OperationResult", err, http.StatusInternalServerError, "InternalOperationError", "")
	})

	t.Run("retry then succeed", func(t *testing.T) {
		t.Parallel()
		e.p.setFail("flaky", func(n int) error {
			if n == 1 {
				return errors.New("transient")
			}
			return nil
		})
		_, st := put(t, "flaky")
		if st.Status != resource.OpSucceeded || st.Error != nil {
			t.Errorf("OperationStatus = %+v, want Succeeded after one retry", st)
		}
		if n := e.p.count(e.p.provisions, "flaky"); n != 2 {
			t.Errorf("Provision ran %d times, want 2", n)
		}
		if got := e.mustGet(t, slowID("rg", "flaky")).Properties["endpoint"]; got != "https://flaky.widgets.example.test" {
			t.Errorf("endpoint = %v, want the provider's", got)
		}
	})

	t.Run("gives up after maxAttempts", func(t *testing.T) {
		t.Parallel()
		const secret = "dial tcp 10.20.30.40:6443: connect: connection refused"
		e.p.setFail("doomed", func(int) error { return errors.New(secret) })
		t0 := time.Now()
		op, st := put(t, "doomed")
		t.Logf("gave up after %v", time.Since(t0))
		if st.Status != resource.OpFailed || st.Error == nil || st.Error.Code != "InternalOperationError" {
			t.Errorf("OperationStatus = %+v (error %+v), want Failed InternalOperationError", st, st.Error)
		}
		if n := e.p.count(e.p.provisions, "doomed"); n != maxAttempts {
			t.Errorf("Provision ran %d times, want %d", n, maxAttempts)
		}
		_, err := e.svc.OperationResult(t.Context(), req(t, slowID("rg", "doomed"), ""), subID, op)
		ae := checkError(t, "OperationResult", err, http.StatusInternalServerError, "InternalOperationError", "")
		if got := e.mustGet(t, slowID("rg", "doomed")).Properties["provisioningState"]; got != "Failed" {
			t.Errorf("provisioningState = %v, want Failed", got)
		}
		// failure() promises that an error that is not an *arm.Error is
		// reported "without internal details" (STYLE.md: internal details
		// go to the log, never to the client).
		if st.Error != nil && strings.Contains(st.Error.Message, "10.20.30.40") {
			t.Errorf("OperationStatus error message %q leaks the provider's internal error %q", st.Error.Message, secret)
		}
		if ae != nil && strings.Contains(ae.Message, "10.20.30.40") {
			t.Errorf("OperationResult error message %q leaks the provider's internal error %q", ae.Message, secret)
		}
	})
}

func TestLROSupersede(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	runOperations(t, e.svc, "replica-1")

	t.Run("put after put", func(t *testing.T) {
		id := slowID("rg", "twice")
		open := e.p.gate("twice")
		defer open()
		resp := e.put(t, id, `{"location":"local","properties":{"color":"red"}}`)
		op1 := opID(t, resp.Header.Get("Azure-AsyncOperation"))
		waitFor(t, "the first Provision to start", func() bool { return e.p.count(e.p.provisions, "twice") > 0 })

		resp, err := e.svc.Put(t.Context(), req(t, id, `{"location":"local","properties":{"color":"blue"}}`))
		resp = wantStatus(t, "Put(second)", resp, err, http.StatusOK)
		if got := resourceOf(t, resp).Properties["provisioningState"]; got != "Accepted" {
			t.Errorf("Put(second) provisioningState = %v, want Accepted", got)
		}
		op2 := opID(t, resp.Header.Get("Azure-AsyncOperation"))
		if op2 == op1 {
			t.Fatalf("Put(second) reused operation %s", op1)
		}
		open()
		if st := e.waitOp(t, op1); st.Status != resource.OpCanceled || st.Error == nil || st.EndTime == nil {
			t.Errorf("first operation = %+v (error %+v), want Canceled with an error", st, st.Error)
		}
		if st := e.waitOp(t, op2); st.Status != resource.OpSucceeded {
			t.Errorf("second operation = %+v (error %+v), want Succeeded", st, st.Error)
		}
		got := e.mustGet(t, id)
		if got.Properties["color"] != "blue" || got.Properties["provisioningState"] != "Succeeded" || got.Properties["endpoint"] == nil {
			t.Errorf("resource after both = %v, want the second PUT's, provisioned", got.Properties)
		}
		_, err = e.svc.OperationResult(t.Context(), req(t, id, ""), subID, op1)
		checkError(t, "OperationResult(superseded)", err, http.StatusConflict, "OperationCanceled", "")
	})

	t.Run("delete after put", func(t *testing.T) {
		id := slowID("rg", "shortlived")
		open := e.p.gate("shortlived")
		defer open()
		resp := e.put(t, id, `{"location":"local"}`)
		op1 := opID(t, resp.Header.Get("Azure-AsyncOperation"))
		waitFor(t, "Provision to start", func() bool { return e.p.count(e.p.provisions, "shortlived") > 0 })
		resp, err := e.svc.Delete(t.Context(), req(t, id, ""))
		resp = wantStatus(t, "Delete(while provisioning)", resp, err, http.StatusAccepted)
		op2 := opID(t, resp.Header.Get("Location"))
		open()
		if st := e.waitOp(t, op1); st.Status != resource.OpCanceled {
			t.Errorf("put operation = %+v, want Canceled", st)
		}
		if st := e.waitOp(t, op2); st.Status != resource.OpSucceeded {
			t.Errorf("delete operation = %+v (error %+v), want Succeeded", st, st.Error)
		}
		_, err = e.get(t, id)
		checkError(t, "Get after delete", err, http.StatusNotFound, "ResourceNotFound", "")
	})
}

// TestLROCrashResume leaves operations behind as a crashed replica would:
// accepted with no controller running, and some in the middle of their
// work when the controller stops (a shutdown or a lost election). A
// restarted replica finishes them all.
func TestLROCrashResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")

	queued := []string{"c1", "c2", "c3"}
	// Several operations are cut off at once: whether an interrupted one
	// is wrongly ended shows up as a race, so give it several chances.
	var midway []string
	var opens []func()
	for i := range 6 {
		n := fmt.Sprintf("mid%d", i)
		midway = append(midway, n)
		opens = append(opens, e.p.gate(n))
	}
	openAll := func() {
		for _, open := range opens {
			open()
		}
	}
	defer openAll()
	names := slices.Concat(queued, midway)
	ops := map[string]string{}
	for _, n := range names {
		resp := e.put(t, slowID("rg", n), `{"location":"local"}`)
		ops[n] = opID(t, resp.Header.Get("Azure-AsyncOperation"))
	}
	time.Sleep(100 * time.Millisecond)
	for _, n := range names {
		if st := e.opStatus(t, ops[n]); st.Status != resource.OpInProgress {
			t.Errorf("operation of %s with no controller = %s, want InProgress", n, st.Status)
		}
		if got := e.mustGet(t, slowID("rg", n)).Properties["provisioningState"]; got != "Accepted" {
			t.Errorf("%s with no controller: provisioningState %v, want Accepted", n, got)
		}
	}

	stop := runOperations(t, e.svc, "replica-1")
	for _, n := range queued {
		if st := e.waitOp(t, ops[n]); st.Status != resource.OpSucceeded {
			t.Errorf("operation of %s = %+v, want Succeeded", n, st)
		}
	}
	waitFor(t, "every gated Provision to start", func() bool {
		for _, n := range midway {
			if e.p.count(e.p.provisions, n) == 0 {
				return false
			}
		}
		return true
	})
	stop() // the replica goes away in the middle of their Provision
	var ended []string
	cut := map[string]bool{}
	for _, n := range midway {
		if st := e.opStatus(t, ops[n]); st.Status != resource.OpInProgress {
			cut[n] = true
			r := e.mustGet(t, slowID("rg", n))
			ended = append(ended, fmt.Sprintf("%s: operation %s %+v, provisioningState %v", n, st.Status, st.Error, r.Properties["provisioningState"]))
		}
	}
	if len(ended) > 0 {
		t.Errorf("operations interrupted by their replica stopping must stay InProgress for the next replica to resume; %d of %d ended:\n%s",
			len(ended), len(midway), strings.Join(ended, "\n"))
	}

	restarted := e.service(t, "local")
	runOperations(t, restarted, "replica-2")
	openAll()
	for _, n := range names {
		if cut[n] {
			continue // reported above
		}
		if st := e.waitOp(t, ops[n]); st.Status != resource.OpSucceeded {
			t.Errorf("operation of %s after restart = %s (error %+v), want Succeeded", n, st.Status, st.Error)
		}
		r := e.mustGet(t, slowID("rg", n))
		if r.Properties["provisioningState"] != "Succeeded" || r.Properties["endpoint"] == nil {
			t.Errorf("%s after restart: properties %v, want Succeeded with an endpoint", n, r.Properties)
		}
		want := 1
		if slices.Contains(midway, n) {
			want = 2 // once per replica
		}
		if got := e.p.count(e.p.provisions, n); got != want {
			t.Errorf("Provision of %s ran %d times, want %d", n, got, want)
		}
	}
}

func TestDeleteLRO(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	runOperations(t, e.svc, "replica-1")
	id := slowID("rg", "d1")
	e.putSlow(t, "rg", "d1")
	e.putSlow(t, "rg", "d10")
	for _, p := range []string{partID("rg", "d1", "p1"), partID("rg", "d1", "p2"), partID("rg", "d10", "p1")} {
		e.put(t, p, `{"properties":{"n":1}}`)
	}

	open := e.p.gate("d1")
	defer open()
	resp, err := e.svc.Delete(t.Context(), req(t, id, ""))
	resp = wantStatus(t, "Delete(slow)", resp, err, http.StatusAccepted)
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, baseURL+"/subscriptions/"+subID+"/providers/Test.Widgets/locations/local/operationResults/") || !strings.HasSuffix(loc, "?api-version="+widgetAPI) {
		t.Errorf("Delete(slow) Location = %q, want an absolute operationResults URL", loc)
	}
	if m := statusURL.FindStringSubmatch(resp.Header.Get("Azure-AsyncOperation")); m == nil || m[1] != opID(t, loc) {
		t.Errorf("Delete(slow) Azure-AsyncOperation = %q, want the status URL of %s", resp.Header.Get("Azure-AsyncOperation"), opID(t, loc))
	}
	if resp.Body != nil || resp.Header.Get("Retry-After") == "" {
		t.Errorf("Delete(slow) body %+v, Retry-After %q; want no body and a Retry-After", resp.Body, resp.Header.Get("Retry-After"))
	}
	op := opID(t, loc)

	if got := e.mustGet(t, id).Properties["provisioningState"]; got != "Deleting" {
		t.Errorf("Get while deleting: provisioningState %v, want Deleting", got)
	}
	resp, err = e.svc.OperationResult(t.Context(), req(t, id, ""), subID, op)
	wantStatus(t, "OperationResult while deleting", resp, err, http.StatusAccepted)
	resp, err = e.svc.Delete(t.Context(), req(t, id, ""))
	resp = wantStatus(t, "Delete(again while deleting)", resp, err, http.StatusAccepted)
	if got := opID(t, resp.Header.Get("Location")); got != op {
		t.Errorf("Delete(again while deleting) points at operation %s, want the running %s", got, op)
	}
	_, err = e.svc.Put(t.Context(), req(t, partID("rg", "d1", "p3"), `{}`))
	checkError(t, "Put(child while the parent is deleting)", err, http.StatusConflict, "Conflict", "")
	_, err = e.svc.Action(t.Context(), req(t, id, `{"mode":"soft"}`), "restart")
	checkError(t, "Action while deleting", err, http.StatusConflict, "AnotherOperationInProgress", "")

	open()
	if st := e.waitOp(t, op); st.Status != resource.OpSucceeded || st.PercentComplete != 100 {
		t.Fatalf("delete operation = %+v (error %+v), want Succeeded", st, st.Error)
	}
	resp, err = e.svc.OperationResult(t.Context(), req(t, id, ""), subID, op)
	if resp = wantStatus(t, "OperationResult after delete", resp, err, http.StatusNoContent); resp.Body != nil {
		t.Errorf("OperationResult after delete has a body %+v", resp.Body)
	}
	if n := e.p.count(e.p.deprovisioned, "d1"); n != 1 {
		t.Errorf("Deprovision of d1 ran %d times, want 1", n)
	}
	_, err = e.get(t, id)
	checkError(t, "Get after delete", err, http.StatusNotFound, "ResourceNotFound", "")
	_, err = e.get(t, partID("rg", "d1", "p1"))
	checkError(t, "Get(child) after delete", err, http.StatusNotFound, "ParentResourceNotFound", "")

	e.putSlow(t, "rg", "d1")
	for _, p := range []string{"p1", "p2"} {
		_, err = e.get(t, partID("rg", "d1", p))
		checkError(t, "Get(old child of a recreated parent)", err, http.StatusNotFound, "ResourceNotFound", "")
	}
	if _, err := e.get(t, partID("rg", "d10", "p1")); err != nil {
		t.Errorf("Get(child of d10) after deleting d1: %v", err)
	}
}

func TestDeleteGroup(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	runOperations(t, e.svc, "replica-1")
	for _, rg := range []string{"doomed", "kept"} {
		e.putGroup(t, rg)
		e.put(t, widgetID(rg, "w1"), `{"location":"local"}`)
		e.put(t, gearID(rg, "w1", "g1"), `{}`)
		e.put(t, widgetID(rg, "w2"), `{"location":"local"}`)
		e.put(t, widgetSetID(rg, "ws1"), `{"location":"local"}`)
		e.putSlow(t, rg, "s1")
		e.put(t, partID(rg, "s1", "p1"), `{}`)
		e.put(t, partID(rg, "s1", "p2"), `{}`)
	}
	e.putSlow(t, "doomed", "s2")
	// The group's contents, in the order they go: by type, then by name.
	contents := []string{slowID("doomed", "s1"), slowID("doomed", "s2"), widgetID("doomed", "w1"), widgetID("doomed", "w2"), widgetSetID("doomed", "ws1")}

	open := e.p.gate("s2")
	defer open()
	resp, err := e.svc.Delete(t.Context(), req(t, groupID("doomed"), ""))
	resp = wantStatus(t, "Delete(group)", resp, err, http.StatusAccepted)
	loc, async := resp.Header.Get("Location"), resp.Header.Get("Azure-AsyncOperation")
	op := opID(t, loc)
	if want := baseURL + "/subscriptions/" + subID + "/operationresults/" + op + "?api-version=" + groupAPI; loc != want {
		t.Errorf("Delete(group) Location = %q, want %q", loc, want)
	}
	if want := baseURL + "/subscriptions/" + subID + "/providers/Microsoft.Resources/locations/local/operationStatuses/" + op + "?api-version=" + groupAPI; async != want {
		t.Errorf("Delete(group) Azure-AsyncOperation = %q, want %q", async, want)
	}
	if got := e.mustGet(t, groupID("doomed")).Properties["provisioningState"]; got != "Deleting" {
		t.Errorf("Get(group) while deleting: provisioningState %v, want Deleting", got)
	}
	_, err = e.svc.Put(t.Context(), req(t, widgetID("doomed", "late"), `{"location":"local"}`))
	checkError(t, "Put(in a deleting group)", err, http.StatusConflict, "Conflict", "")

	// s1 goes, then s2's Deprovision waits: one of the five is done.
	var seen []float64
	waitFor(t, "the group's progress", func() bool {
		st := e.opStatus(t, op)
		seen = append(seen, st.PercentComplete)
		return st.PercentComplete > 0
	})
	want := 100.0 / float64(len(contents)+1)
	if st := e.opStatus(t, op); st.Status != resource.OpInProgress || st.PercentComplete != want {
		t.Errorf("group operation while s2 is deprovisioning = %s %v%%, want InProgress %v%%", st.Status, st.PercentComplete, want)
	}
	resp, err = e.svc.OperationResult(t.Context(), req(t, groupID("doomed"), ""), subID, op)
	wantStatus(t, "OperationResult(group) while deleting", resp, err, http.StatusAccepted)
	if _, err := e.get(t, slowID("doomed", "s1")); err == nil {
		t.Errorf("Get(s1) succeeded after the group's progress passed it")
	}

	open()
	var st opStatus
	waitFor(t, "the group delete to end", func() bool {
		st = e.opStatus(t, op)
		seen = append(seen, st.PercentComplete)
		return st.Status != resource.OpInProgress
	})
	if st.Status != resource.OpSucceeded || st.PercentComplete != 100 {
		t.Fatalf("group operation = %+v (error %+v), want Succeeded 100%%", st, st.Error)
	}
	if !slices.IsSorted(seen) {
		t.Errorf("group operation percentComplete went %v, want it never to go back", seen)
	}
	resp, err = e.svc.OperationResult(t.Context(), req(t, groupID("doomed"), ""), subID, op)
	wantStatus(t, "OperationResult(group) after delete", resp, err, http.StatusNoContent)
	for _, n := range []string{"s1", "s2"} {
		if got := e.p.count(e.p.deprovisioned, n); got != 1 {
			t.Errorf("Deprovision of %s ran %d times, want 1", n, got)
		}
	}
	_, err = e.get(t, groupID("doomed"))
	checkError(t, "Get(group) after delete", err, http.StatusNotFound, "ResourceGroupNotFound", "")
	for _, id := range contents {
		_, err = e.get(t, id)
		checkError(t, "Get("+id+") after its group's delete", err, http.StatusNotFound, "ResourceGroupNotFound", "")
	}

	// Nothing of the old group comes back with a new group of that name.
	e.putGroup(t, "doomed")
	resp, err = e.svc.ListResources(t.Context(), req(t, groupID("doomed"), ""), arm.Filter{}, "")
	if page := decode[resource.Page[resource.GenericResource]](t, must(t, "ListResources(new group)", resp, err).Body); len(page.Value) != 0 {
		t.Errorf("ListResources(new group of the old name) = %+v, want nothing", page.Value)
	}
	e.put(t, widgetID("doomed", "w1"), `{"location":"local"}`)
	_, err = e.get(t, gearID("doomed", "w1", "g1"))
	checkError(t, "Get(old gear)", err, http.StatusNotFound, "ResourceNotFound", "")
	e.putSlow(t, "doomed", "s1")
	_, err = e.get(t, partID("doomed", "s1", "p1"))
	checkError(t, "Get(old part)", err, http.StatusNotFound, "ResourceNotFound", "")

	// The other group is untouched.
	for _, id := range []string{widgetID("kept", "w1"), gearID("kept", "w1", "g1"), widgetID("kept", "w2"), widgetSetID("kept", "ws1"), slowID("kept", "s1"), partID("kept", "s1", "p1"), partID("kept", "s1", "p2")} {
		if _, err := e.get(t, id); err != nil {
			t.Errorf("Get(%s) after deleting another group: %v", id, err)
		}
	}
}

// TestDeleteGroupSubProgress deletes a group one of whose resources
// reports progress from its own Deprovision, through the Task that
// DeleteContents hands it.
func TestDeleteGroupSubProgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	runOperations(t, e.svc, "replica-1")
	e.putGroup(t, "g")
	for _, n := range []string{"sa", "sb", "sc"} {
		e.putSlow(t, "g", n)
	}
	e.put(t, widgetID("g", "w1"), `{"location":"local"}`)
	e.p.setSubProgress("sb", 10)
	open := e.p.gate("sc")
	defer open()

	resp, err := e.svc.Delete(t.Context(), req(t, groupID("g"), ""))
	op := opID(t, wantStatus(t, "Delete(group)", resp, err, http.StatusAccepted).Header.Get("Location"))
	waitFor(t, "sc's Deprovision to start", func() bool { return e.p.count(e.p.deprovisions, "sc") > 0 })
	// sa and sb are gone: 2 of the 4 contents (plus the group itself).
	if st := e.opStatus(t, op); st.PercentComplete < 40 {
		t.Errorf("group operation after 2 of 4 resources = %v%%, want at least 40%%: the group's progress is overwritten by sb's own (10%%) and then no longer recorded", st.PercentComplete)
	}
	open()
	t0 := time.Now()
	if st := e.waitOp(t, op); st.Status != resource.OpSucceeded {
		t.Errorf("group operation = %+v (error %+v), want Succeeded", st, st.Error)
	}
	t.Logf("group delete ended %v after the last Deprovision was let go", time.Since(t0))
}

func TestActions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	runOperations(t, e.svc, "replica-1")
	id := slowID("rg", "a1")
	before := e.putSlow(t, "rg", "a1")
	e.put(t, widgetID("rg", "w1"), `{"location":"local"}`)

	errTests := []struct {
		name, id, action, body string
		status                 int
		code, target           string
	}{
		{"unknown action", id, "explode", `{}`, 404, "InvalidAction", ""},
		{"type without actions", widgetID("rg", "w1"), "restart", `{}`, 404, "InvalidAction", ""},
		{"missing resource", slowID("rg", "nope"), "restart", `{"mode":"soft"}`, 404, "ResourceNotFound", ""},
		{"missing group", slowID("nope", "a1"), "restart", `{"mode":"soft"}`, 404, "ResourceGroupNotFound", ""},
		{"Validate refuses", id, "restart", `{"mode":"sideways"}`, 400, "InvalidRequestContent", "mode"},
		{"Validate refuses an empty body", id, "restart", ``, 400, "InvalidRequestContent", "mode"},
		{"input of the wrong type", id, "restart", `{"mode":1}`, 400, "InvalidRequestContent", "mode"},
		{"input not JSON", id, "restart", `{"mode":`, 400, "InvalidRequestContent", ""},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.Action(t.Context(), req(t, tt.id, tt.body), tt.action)
			checkError(t, "Action("+tt.action+", "+tt.body+")", err, tt.status, tt.code, tt.target)
		})
	}
	// No operation was started: the resource is as it was.
	if got := e.mustGet(t, id); !cmp.Equal(got, before) {
		t.Errorf("resource after refused actions = %+v, want unchanged %+v", got, before)
	}

	open := e.p.gate("a1")
	defer open()
	resp, err := e.svc.Action(t.Context(), req(t, id, `{"mode":"soft"}`), "Restart")
	resp = wantStatus(t, "Action(restart)", resp, err, http.StatusAccepted)
	loc, async := resp.Header.Get("Location"), resp.Header.Get("Azure-AsyncOperation")
	m := statusURL.FindStringSubmatch(async)
	if m == nil || m[1] != opID(t, loc) || !strings.Contains(loc, "/operationResults/") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("Action(restart) headers %v, want Location, Azure-AsyncOperation of one operation and Retry-After", resp.Header)
	}
	op := m[1]

	_, err = e.svc.Action(t.Context(), req(t, id, `{"mode":"hard"}`), "restart")
	checkError(t, "Action(restart) while another runs", err, http.StatusConflict, "AnotherOperationInProgress", "")
	resp, err = e.svc.OperationResult(t.Context(), req(t, id, ""), subID, op)
	wantStatus(t, "OperationResult while running", resp, err, http.StatusAccepted)

	open()
	st := e.waitOp(t, op)
	wantProps := map[string]any{"exitCode": "0", "mode": "soft"}
	if st.Status != resource.OpSucceeded || st.PercentComplete != 100 || !cmp.Equal(st.Properties, wantProps) {
		t.Errorf("OperationStatus(action) = %+v, want Succeeded 100%% with properties %v", st, wantProps)
	}
	resp, err = e.svc.OperationResult(t.Context(), req(t, id, ""), subID, op)
	got := decode[opStatus](t, wantStatus(t, "OperationResult(action)", resp, err, http.StatusOK).Body)
	want := opStatus{
		ID:              "/subscriptions/" + subID + "/providers/Test.Widgets/locations/local/operationStatuses/" + op,
		Name:            op,
		ResourceID:      id,
		Status:          "Succeeded",
		StartTime:       st.StartTime,
		EndTime:         st.EndTime,
		PercentComplete: 100,
		Properties:      wantProps,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("OperationResult(action) (-want +got):\n%s", diff)
	}
	if n := e.p.count(e.p.restarts, "a1"); n != 1 {
		t.Errorf("restart ran %d times, want 1", n)
	}
	after := e.mustGet(t, id)
	if after.Properties["provisioningState"] != "Succeeded" || !cmp.Equal(after.Properties, before.Properties) {
		t.Errorf("resource after the action: properties %v, want unchanged %v", after.Properties, before.Properties)
	}
	// The resource is free again.
	resp, err = e.svc.Action(t.Context(), req(t, id, `{"mode":"hard"}`), "restart")
	op2 := opID(t, wantStatus(t, "Action(restart) after the first", resp, err, http.StatusAccepted).Header.Get("Location"))
	if st := e.waitOp(t, op2); st.Status != resource.OpSucceeded || st.Properties["mode"] != "hard" {
		t.Errorf("second restart = %+v, want Succeeded in mode hard", st)
	}
}

// TestSweepOperations deletes the operations that ended before the cutoff
// and keeps the others, running or recent.
func TestSweepOperations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	runOperations(t, e.svc, "replica-1")
	old := e.put(t, slowID("rg", "old"), `{"location":"local","properties":{}}`)
	oldOp := opID(t, old.Header.Get("Azure-AsyncOperation"))
	e.waitOp(t, oldOp)
	cutoff := e.clock.now() // the test clock only moves forward
	recent := e.put(t, slowID("rg", "recent"), `{"location":"local","properties":{}}`)
	recentOp := opID(t, recent.Header.Get("Azure-AsyncOperation"))
	e.waitOp(t, recentOp)

	if n, err := e.svc.SweepOperations(t.Context(), cutoff); err != nil || n != 1 {
		t.Fatalf("SweepOperations(%v) = %d, %v; want the one old operation deleted", cutoff, n, err)
	}
	_, err := e.svc.OperationStatus(t.Context(), req(t, groupID("rg"), ""), subID, oldOp)
	checkError(t, "OperationStatus(swept)", err, http.StatusNotFound, "OperationNotFound", "")
	if st := e.opStatus(t, recentOp); st.Status != resource.OpSucceeded {
		t.Errorf("OperationStatus(recent) = %+v, want it kept and Succeeded", st)
	}
}

// TestActiveMarkerLeftBehind: an active-operation marker whose operation
// is gone is removed by the operations controller.
func TestActiveMarkerLeftBehind(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.st.Txn(t.Context(), store.Put("operations-active/6a1f0c9e-2b7d-4c55-9d1e-0f8b3a2c4d5e", []byte("{}"))); err != nil {
		t.Fatal(err)
	}
	runOperations(t, e.svc, "replica-1")
	waitFor(t, "the marker to be removed", func() bool {
		n, err := e.svc.ActiveOperations(t.Context())
		return err == nil && n == 0
	})
}
