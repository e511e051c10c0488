package resource_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// TestSensitive: a widget's secret and its parts' keys are stored but left
// out of every response, and a PUT or PATCH that sends back what a GET
// showed keeps them.
func TestSensitive(t *testing.T) {
	e := newEnv(t)
	e.putGroup(t, "rg")
	id := widgetID("rg", "w1")
	pid, _ := arm.ParseID(id)
	hidden := func(what string, r resource.Resource) {
		t.Helper()
		if _, ok := r.Properties["secret"]; ok {
			t.Errorf("%s shows the secret: %v", what, r.Properties)
		}
		parts, _ := r.Properties["parts"].([]any)
		if len(parts) != 2 {
			t.Fatalf("%s: parts = %v, want both", what, r.Properties["parts"])
		}
		for _, p := range parts {
			if part := p.(map[string]any); part["name"] == nil || part["key"] != nil {
				t.Errorf("%s: part %v, want its name without its key", what, part)
			}
		}
	}
	stored := func(what, secret, keyA, keyB string) {
		t.Helper()
		r, err := e.svc.Lookup(t.Context(), pid)
		if err != nil {
			t.Fatal(err)
		}
		parts, _ := r.Properties["parts"].([]any)
		if r.Properties["secret"] != secret || len(parts) != 2 || parts[0].(map[string]any)["key"] != keyA || parts[1].(map[string]any)["key"] != keyB {
			t.Errorf("%s: stored %v, want secret %s and keys %s, %s", what, r.Properties, secret, keyA, keyB)
		}
	}

	resp := e.put(t, id, `{"location":"local","properties":{"size":1,"secret":"s1","parts":[{"name":"a","key":"ka"},{"name":"b","key":"kb"}]}}`)
	hidden("PUT response", resourceOf(t, resp))
	hidden("GET", e.mustGet(t, id))
	list, err := e.svc.List(t.Context(), listReq(t, groupID("rg")+"/providers/"+ns, "widgets", 10), "widgets")
	list = wantStatus(t, "List", list, err, http.StatusOK)
	page := decode[resource.Page[resource.Resource]](t, list.Body)
	if len(page.Value) != 1 {
		t.Fatalf("List: %d widgets", len(page.Value))
	}
	hidden("List", page.Value[0])
	stored("after the PUT", "s1", "ka", "kb")

	// What az resource update does: GET, change, PUT it all back.
	got := e.mustGet(t, id)
	got.Properties["size"] = 2
	got.Properties["parts"].([]any)[1].(map[string]any)["key"] = "kb2"
	body, _ := json.Marshal(map[string]any{"location": "local", "properties": got.Properties})
	e.put(t, id, string(body))
	stored("after a PUT of what GET showed, with a new key for b", "s1", "ka", "kb2")
	if r, _ := e.svc.Lookup(t.Context(), pid); r.Properties["size"] != float64(2) {
		t.Errorf("the PUT did not change size: %v", r.Properties)
	}

	// PATCH replaces the parts array; the keys stay by index.
	resp, err = e.svc.Patch(t.Context(), req(t, id, `{"properties":{"secret":"s2","parts":[{"name":"a2"},{"name":"b2"}]}}`))
	hidden("PATCH response", resourceOf(t, must(t, "Patch", resp, err)))
	stored("after a PATCH", "s2", "ka", "kb2")
}

// TestComputed: a widget set's label is shown by GET and not stored.
func TestComputed(t *testing.T) {
	e := newEnv(t)
	e.putGroup(t, "rg")
	id := widgetSetID("rg", "ws1")
	e.put(t, id, `{"location":"local","properties":{"size":1}}`)
	if got := e.mustGet(t, id).Properties["label"]; got != "set ws1" {
		t.Errorf("GET label = %v, want it computed", got)
	}
	pid, _ := arm.ParseID(id)
	r, err := e.svc.Lookup(t.Context(), pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Properties["label"]; ok || r.Properties["size"] != float64(1) {
		t.Errorf("stored properties %v, want size and no label", r.Properties)
	}
}
