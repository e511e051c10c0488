package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/monitor/armmonitor"

	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/servertest"
	"github.com/citadel-cloud/citadel/internal/store"
)

// Helpers of the activity-log tests (activitylog_test.go, routewalk_test.go):
// principals with clients of their own, requests with headers of the test's
// choosing, the Microsoft.Insights query followed page by page, and export
// files taken apart to tamper with.

const (
	alEventsAPI = "2015-04-01" // Microsoft.Insights/eventtypes/management/values (armmonitor, az)
	alExportAPI = "2026-01-01" // Citadel.Audit/export
	alGroupAPI  = "2021-04-01" // Microsoft.Resources
)

// alPrincipal is a service principal and an ARM client that signs in as it.
type alPrincipal struct {
	AppID, ObjectID, Name string
	Client                *client.Client
}

// alNewPrincipal makes a service principal with no role assignment.
func alNewPrincipal(t *testing.T, cp *servertest.ControlPlane, name string) alPrincipal {
	t.Helper()
	sp, secret, err := cp.Identity.CreateServicePrincipal(t.Context(), name)
	if err != nil {
		t.Fatalf("CreateServicePrincipal(%q) = %v", name, err)
	}
	creds := cp.Creds
	creds.ClientID, creds.ClientSecret = sp.AppID, secret
	c, err := client.New(creds)
	if err != nil {
		t.Fatal(err)
	}
	return alPrincipal{AppID: sp.AppID, ObjectID: sp.ObjectID, Name: sp.DisplayName, Client: c}
}

// alAdmin is the bootstrap administrator (Owner), with cp's client.
func alAdmin(t *testing.T, cp *servertest.ControlPlane) alPrincipal {
	t.Helper()
	sp, err := cp.Identity.GetServicePrincipal(t.Context(), cp.Creds.ClientID)
	if err != nil {
		t.Fatalf("GetServicePrincipal(admin) = %v", err)
	}
	return alPrincipal{AppID: sp.AppID, ObjectID: sp.ObjectID, Name: sp.DisplayName, Client: cp.Client}
}

// alSend sends one ARM request as c with extra headers. path is relative
// to the ARM endpoint and carries its query; body is JSON-encoded unless nil.
func alSend(t *testing.T, c *client.Client, method, path string, header http.Header, body any) *client.Response {
	t.Helper()
	r, err := c.Send(t.Context(), method, path, header, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// alRelative turns an absolute URL the server handed out (nextLink,
// Azure-AsyncOperation) into a path for alSend, after checking that it is
// an https URL on the control plane's host (arm-contract §2.7, §2.9).
func alRelative(t *testing.T, endpoint, link string) string {
	t.Helper()
	want, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(link)
	if err != nil || !u.IsAbs() || u.Scheme != "https" || u.Host != want.Host {
		t.Fatalf("link %q is not an absolute https URL on %s", link, want.Host)
	}
	return u.RequestURI()
}

// alWaitOperation polls the Azure-AsyncOperation URL of resp, if it has
// one, until the operation ends, and requires Succeeded.
func alWaitOperation(t *testing.T, c *client.Client, what string, resp *client.Response) {
	t.Helper()
	link := resp.Header.Get("Azure-AsyncOperation")
	if link == "" {
		return
	}
	path := alRelative(t, c.Creds.ARMEndpoint, link)
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := alSend(t, c, http.MethodGet, path, nil, nil)
		var st struct {
			Status string `json:"status"`
		}
		if r.Status != http.StatusOK || json.Unmarshal(r.Body, &st) != nil {
			t.Fatalf("%s: GET operation = %d %s, want 200 with a status", what, r.Status, r.Body)
		}
		switch st.Status {
		case "Succeeded":
			return
		case "Failed", "Canceled":
			t.Fatalf("%s: operation ended %s, want Succeeded: %s", what, st.Status, r.Body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: operation still %s after 30 s", what, st.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alFlush chains every pending record and checkpoints the head, so that
// queries and exports see every request answered so far.
//
// Flush races the server's own chainer for the chain's head and then
// fails with store.ErrConflict; TestAuditTamper/export_while_writing
// asserts that it must not. Here a conflict is retried, so that the other
// assertions still run.
func alFlush(t *testing.T, cp *servertest.ControlPlane) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		err := cp.Audit.Flush(t.Context())
		switch {
		case err == nil:
			return
		case errors.Is(err, store.ErrConflict) && attempt < 20:
			t.Logf("Audit.Flush = %v (attempt %d; the chainer moved the head), retrying", err, attempt)
		default:
			t.Fatalf("Audit.Flush = %v", err)
		}
	}
}

// alFilter is an activity-log $filter over [from, to] (to zero: no upper
// bound) with further conditions, the way the Azure SDK's users write it.
func alFilter(from, to time.Time, conds ...string) string {
	parts := []string{"eventTimestamp ge '" + from.UTC().Format(time.RFC3339Nano) + "'"}
	if !to.IsZero() {
		parts = append(parts, "eventTimestamp le '"+to.UTC().Format(time.RFC3339Nano)+"'")
	}
	return strings.Join(append(parts, conds...), " and ")
}

func alEventsPath(sub string) string {
	if sub == "" { // the tenant's activity log: what happens at the tenant root
		return "/providers/Microsoft.Insights/eventtypes/management/values"
	}
	return "/subscriptions/" + sub + "/providers/Microsoft.Insights/eventtypes/management/values"
}

// alPage is one page of an activity-log query, its items kept raw so that
// a test can see which fields were sent.
type alPage struct {
	Items    []json.RawMessage
	NextLink string
}

// alQuery asks for the subscription's events with query q (api-version
// added) and follows nextLink to the end.
func alQuery(t *testing.T, c *client.Client, sub string, q url.Values) []alPage {
	t.Helper()
	q = maps.Clone(q)
	q.Set("api-version", alEventsAPI)
	path := alEventsPath(sub) + "?" + q.Encode()
	var pages []alPage
	for len(pages) < 100 {
		r := alSend(t, c, http.MethodGet, path, nil, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s = %d %s, want 200", path, r.Status, r.Body)
		}
		var p struct {
			Value    []json.RawMessage `json:"value"`
			NextLink string            `json:"nextLink"`
		}
		if err := json.Unmarshal(r.Body, &p); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, r.Body)
		}
		if p.Value == nil {
			t.Fatalf("GET %s: no value array in %s", path, r.Body)
		}
		pages = append(pages, alPage{Items: p.Value, NextLink: p.NextLink})
		if p.NextLink == "" {
			return pages
		}
		path = alRelative(t, c.Creds.ARMEndpoint, p.NextLink)
	}
	t.Fatalf("GET %s: more than 100 pages", alEventsPath(sub))
	return nil
}

// alEvent is the part of an armmonitor EventData the tests look at, flat.
type alEvent struct {
	EventDataID, CorrelationID, ID   string
	OperationName, Status, SubStatus string
	Caller, OID, Method              string
	ResourceID, ResourceGroupName    string
	ResourceProvider, ResourceType   string
	SubscriptionID, TenantID         string
	Category, Level, StatusCode      string
	AuthAction, AuthRole, AuthScope  string
	Time                             time.Time
}

func alEventOf(d *armmonitor.EventData) alEvent {
	s := func(ls *armmonitor.LocalizableString) string {
		if ls == nil {
			return ""
		}
		return deref(ls.Value)
	}
	e := alEvent{
		EventDataID: deref(d.EventDataID), CorrelationID: deref(d.CorrelationID), ID: deref(d.ID),
		OperationName: s(d.OperationName), Status: s(d.Status), SubStatus: s(d.SubStatus),
		Caller: deref(d.Caller), OID: deref(d.Claims["oid"]),
		ResourceID: deref(d.ResourceID), ResourceGroupName: deref(d.ResourceGroupName),
		ResourceProvider: s(d.ResourceProviderName), ResourceType: s(d.ResourceType),
		SubscriptionID: deref(d.SubscriptionID), TenantID: deref(d.TenantID),
		Category: s(d.Category), Level: string(deref(d.Level)), StatusCode: deref(d.Properties["statusCode"]),
		Time: deref(d.EventTimestamp),
	}
	if d.HTTPRequest != nil {
		e.Method = deref(d.HTTPRequest.Method)
	}
	if d.Authorization != nil {
		e.AuthAction, e.AuthRole, e.AuthScope = deref(d.Authorization.Action), deref(d.Authorization.Role), deref(d.Authorization.Scope)
	}
	return e
}

// alEvents decodes every item of pages with armmonitor's model, as the
// Azure SDK would.
func alEvents(t *testing.T, pages []alPage) []alEvent {
	t.Helper()
	var out []alEvent
	for _, p := range pages {
		for _, raw := range p.Items {
			var d armmonitor.EventData
			if err := json.Unmarshal(raw, &d); err != nil {
				t.Fatalf("armmonitor.EventData: %v in %s", err, raw)
			}
			out = append(out, alEventOf(&d))
		}
	}
	return out
}

// alIDs lists the eventDataIds of events, in order.
func alIDs(events []alEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.EventDataID
	}
	return out
}

// alKeep returns the events keep accepts, in order.
func alKeep(events []alEvent, keep func(alEvent) bool) []alEvent {
	var out []alEvent
	for _, e := range events {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// alKeys lists the top-level field names of a JSON object, sorted.
func alKeys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not a JSON object: %v in %s", err, raw)
	}
	return slices.Sorted(maps.Keys(m))
}

// alExportFile is an export taken apart, to tamper with and write back.
type alExportFile struct {
	header  audit.Header
	records []audit.Record
	cps     []audit.Checkpoint
}

// alParseExport splits an export of the whole chain (no anchor) into its
// header, records and checkpoints.
func alParseExport(t *testing.T, b []byte) alExportFile {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	var x alExportFile
	if err := json.Unmarshal([]byte(lines[0]), &x.header); err != nil {
		t.Fatalf("export header %q: %v", lines[0], err)
	}
	for i, l := range lines[1:] {
		var v struct {
			Record     json.RawMessage   `json:"record"`
			Checkpoint *audit.Checkpoint `json:"checkpoint"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("export line %d %q: %v", i+2, l, err)
		}
		switch {
		case v.Record != nil:
			r, err := audit.DecodeRecord(v.Record)
			if err != nil {
				t.Fatalf("export line %d: %v", i+2, err)
			}
			x.records = append(x.records, r)
		case v.Checkpoint != nil:
			x.cps = append(x.cps, *v.Checkpoint)
		default:
			t.Fatalf("export line %d %q is neither a record nor a checkpoint", i+2, l)
		}
	}
	return x
}

// clone copies x deeply enough for a tamper: records and checkpoints can
// be replaced, reordered and their signatures changed.
func (x alExportFile) clone() alExportFile {
	y := alExportFile{header: x.header, records: slices.Clone(x.records), cps: slices.Clone(x.cps)}
	for i := range y.cps {
		y.cps[i].Signature = slices.Clone(y.cps[i].Signature)
	}
	return y
}

// bytes writes x with the server's own writer: records in the order given,
// each checkpoint after the record it covers.
func (x alExportFile) bytes(t *testing.T) []byte {
	t.Helper()
	recs := func(yield func(audit.Record, error) bool) {
		for _, r := range x.records {
			if !yield(r, nil) {
				return
			}
		}
	}
	var buf bytes.Buffer
	if err := audit.WriteExport(&buf, x.header, nil, audit.Items(recs, x.cps)); err != nil {
		t.Fatalf("WriteExport = %v", err)
	}
	return buf.Bytes()
}

// alEventsOf lists the events of records, in order.
func alEventsOf(records []audit.Record) []audit.Event {
	out := make([]audit.Event, len(records))
	for i, r := range records {
		out[i] = r.Event
	}
	return out
}

// alRechain numbers events 1, 2, … and links them into a fresh chain, as
// an attacker who rewrites history would.
func alRechain(events []audit.Event) []audit.Record {
	var h audit.Head
	out := make([]audit.Record, len(events))
	for i, e := range events {
		out[i], h = h.Append(e)
	}
	return out
}

// alRunCitadel runs the citadel binary and returns what it printed and
// its exit code.
func alRunCitadel(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out.String(), exit.ExitCode()
	case err != nil:
		t.Fatalf("citadel %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), 0
}

// alWriteFile writes b to a new file in the test's temporary directory.
func alWriteFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := t.TempDir() + "/" + name
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// alProblemText is how `citadel audit verify` names a problem about a
// record or checkpoint (audit.Problem.String).
func alProblemText(seq uint64, kind audit.Kind) string {
	return fmt.Sprintf("record %d: %s:", seq, kind)
}
