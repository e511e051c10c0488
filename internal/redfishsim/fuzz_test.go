package redfishsim_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/citadel-cloud/citadel/internal/redfishsim"
)

// fuzzTargets are the requests whose bodies the simulator decodes.
var fuzzTargets = []struct{ method, path string }{
	{http.MethodPatch, system},
	{http.MethodPost, resetAt},
	{http.MethodPost, insertAt},
	{http.MethodPost, ejectAt},
	{http.MethodPatch, cd},
	{http.MethodPost, "/redfish/v1/SessionService/Sessions"},
	{http.MethodPost, "/redfish/v1/EventService/Subscriptions"},
	{http.MethodPost, "/redfish/v1/EventService/Actions/EventService.SubmitTestEvent"},
	{http.MethodPost, updateAt},
}

// offline reaches nothing: a fuzzed ImageURI must not leave the test.
var offline = &http.Client{Transport: roundTripper(func(*http.Request) (*http.Response, error) {
	return nil, errors.New("offline")
})}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzRequestBody sends arbitrary bodies to every decoder: none may panic,
// and a refused request must leave the tree as it was.
func FuzzRequestBody(f *testing.F) {
	seeds := []string{
		`{"ResetType":"On"}`, `{"ResetType":5}`, `{"Boot":{"BootSourceOverrideTarget":"Cd","BootSourceOverrideEnabled":"Once"}}`,
		`{"Boot":{"BootSourceOverrideTarget":"Cd","Nope":1},"AssetTag":"x"}`, `{"Image":"http://x/y.iso","Inserted":true}`,
		`{"UserName":"admin","Password":"s3cret"}`, `{"Destination":"http://127.0.0.1:9/","EventTypes":["Alert"],"HttpHeaders":[{"A":"b"}]}`,
		`{"ImageURI":"https://cp.test/firmware/ab","TransferProtocol":"HTTPS","Targets":["/redfish/v1/UpdateService/FirmwareInventory/BIOS"]}`,
		`{"ImageURI":"https://cp.test/x","Targets":"BIOS","Username":7}`,
		`{}`, ``, `null`, `[]`, `{"a":1} {"b":2}`, `{"Boot":null}`, `{"@odata.id":"/x"}`, "\xff", `{"MessageArgs":[1]}`,
	}
	for i := range fuzzTargets {
		for _, s := range seeds {
			f.Add(uint8(i), []byte(s))
		}
	}
	watched := []string{system, cd, "/redfish/v1/SessionService/Sessions", "/redfish/v1/EventService/Subscriptions", "/redfish/v1/TaskService/Tasks"}
	f.Fuzz(func(t *testing.T, target uint8, body []byte) {
		b := redfishsim.New(redfishsim.SampleMachine("SN1234"), redfishsim.Options{Username: user, Password: password, HTTPClient: offline})
		snapshot := func() []string {
			var out []string
			for _, p := range watched {
				out = append(out, send(b, http.MethodGet, p, nil).Body.String())
			}
			return out
		}
		before := snapshot()
		tt := fuzzTargets[int(target)%len(fuzzTargets)]
		resp := send(b, tt.method, tt.path, body)
		if resp.Code == http.StatusInternalServerError {
			t.Fatalf("%s %s %q = 500\n%s", tt.method, tt.path, body, resp.Body)
		}
		if resp.Code < 400 {
			return
		}
		if after := snapshot(); !equal(before, after) {
			t.Errorf("%s %s %q = %d and changed the tree:\nbefore %q\nafter  %q", tt.method, tt.path, body, resp.Code, before, after)
		}
	})
}

// send serves one request with Basic credentials, without a network.
func send(b *redfishsim.BMC, method, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Content-Length", strconv.Itoa(len(body)))
	req.SetBasicAuth(user, password)
	w := httptest.NewRecorder()
	b.ServeHTTP(w, req)
	return w
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
