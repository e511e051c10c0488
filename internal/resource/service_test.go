package resource_test

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
)

func TestPutCreateAndReplace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	id := widgetID("rg", "Widget-A")

	resp, err := e.svc.Put(t.Context(), req(t, id, `{"location":"local","tags":{"env":"dev"},"properties":{"size":3}}`))
	resp = wantStatus(t, "Put(create)", resp, err, http.StatusCreated)
	created := resourceOf(t, resp)
	if created.ETag == "" || resp.Header.Get("ETag") != created.ETag {
		t.Errorf("Put(create): ETag header %q, body etag %q; want equal and non-empty", resp.Header.Get("ETag"), created.ETag)
	}
	want := resource.Resource{
		ID:         id,
		Name:       "Widget-A",
		Type:       "Test.Widgets/widgets",
		Location:   "local",
		Tags:       map[string]string{"env": "dev"},
		Properties: map[string]any{"size": 3.0, "serial": "SN-widget-a", "provisioningState": "Succeeded"},
	}
	ignore := func(r resource.Resource) resource.Resource { r.ETag, r.SystemData = "", nil; return r }
	if diff := cmp.Diff(want, ignore(created)); diff != "" {
		t.Errorf("Put(create) body mismatch (-want +got):\n%s", diff)
	}
	if got := e.mustGet(t, id); !cmp.Equal(got, created) {
		t.Errorf("Get after create = %+v, want %+v", got, created)
	}

	// Replace, with another casing of the name, by another caller: PUT
	// overwrites everything the client owns.
	id2 := widgetID("RG", "WIDGET-a")
	resp, err = e.svc.Put(t.Context(), withCaller(req(t, id2, `{"location":"local","properties":{"color":"blue"}}`), bob))
	resp = wantStatus(t, "Put(replace)", resp, err, http.StatusOK)
	replaced := resourceOf(t, resp)
	if replaced.ETag == created.ETag || resp.Header.Get("ETag") != replaced.ETag {
		t.Errorf("Put(replace): ETag header %q, body %q, before %q; want a new, matching ETag", resp.Header.Get("ETag"), replaced.ETag, created.ETag)
	}
	want = resource.Resource{
		ID:         id2,
		Name:       "WIDGET-a",
		Type:       "Test.Widgets/widgets",
		Location:   "local",
		Properties: map[string]any{"color": "blue", "serial": "SN-widget-a", "provisioningState": "Succeeded"},
	}
	if diff := cmp.Diff(want, ignore(replaced)); diff != "" {
		t.Errorf("Put(replace) body mismatch (-want +got):\n%s", diff)
	}
	got := e.mustGet(t, widgetID("rg", "widget-a"))
	if got.Name != "WIDGET-a" || got.ID != id2 {
		t.Errorf("Get after replace: name %q id %q, want the latest casing %q %q", got.Name, got.ID, "WIDGET-a", id2)
	}

	sd0, sd1 := created.SystemData, got.SystemData
	if sd0 == nil || sd1 == nil {
		t.Fatalf("systemData missing: create %v, replace %v", sd0, sd1)
	}
	if sd0.CreatedBy != alice.Name || sd0.CreatedByType != "User" || sd0.LastModifiedBy != alice.Name || !sd0.CreatedAt.Equal(sd0.LastModifiedAt) {
		t.Errorf("systemData after create = %+v, want created and last modified by %s at once", sd0, alice.Name)
	}
	if sd1.CreatedBy != alice.Name || sd1.CreatedByType != "User" || !sd1.CreatedAt.Equal(sd0.CreatedAt) {
		t.Errorf("systemData after replace = %+v, want creation kept from %+v", sd1, sd0)
	}
	if sd1.LastModifiedBy != bob.Name || sd1.LastModifiedByType != "Application" || !sd1.LastModifiedAt.After(sd0.LastModifiedAt) {
		t.Errorf("systemData after replace = %+v, want last modified by %s after %v", sd1, bob.Name, sd0.LastModifiedAt)
	}

	// HEAD.
	resp, err = e.svc.Head(t.Context(), req(t, id, ""))
	wantStatus(t, "Head(existing)", resp, err, http.StatusNoContent)
	_, err = e.svc.Head(t.Context(), req(t, widgetID("rg", "nope"), ""))
	checkError(t, "Head(missing)", err, http.StatusNotFound, "ResourceNotFound", "")
	resp, err = e.svc.Head(t.Context(), req(t, groupID("RG"), ""))
	wantStatus(t, "Head(group)", resp, err, http.StatusNoContent)
	_, err = e.svc.Head(t.Context(), req(t, groupID("nope"), ""))
	checkError(t, "Head(missing group)", err, http.StatusNotFound, "ResourceGroupNotFound", "")
}

func TestPutLocation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")

	for _, loc := range []string{"local", "Local", "LOCAL", "Local ", " lo cal"} {
		id := widgetID("rg", "w-"+strings.ReplaceAll(strings.TrimSpace(loc), " ", ""))
		resp, err := e.svc.Put(t.Context(), req(t, id, `{"location":"`+loc+`"}`))
		resp = must(t, "Put(location "+loc+")", resp, err)
		if got := resourceOf(t, resp).Location; got != "local" {
			t.Errorf("Put(location %q) location = %q, want %q", loc, got, "local")
		}
	}

	tests := []struct {
		name, body, code string
	}{
		{"missing", `{"properties":{}}`, "LocationRequired"},
		{"empty", `{"location":""}`, "LocationRequired"},
		{"other region", `{"location":"westus"}`, "LocationNotAvailableForResourceType"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.svc.Put(t.Context(), req(t, widgetID("rg", "loc-"+strings.ReplaceAll(tt.name, " ", "-")), tt.body))
			checkError(t, "Put("+tt.body+")", err, http.StatusBadRequest, tt.code, "location")
		})
	}

	t.Run("immutable", func(t *testing.T) {
		// The same store served under another region name: the stored
		// widget's location no longer matches and cannot be changed.
		e.put(t, widgetID("rg", "moving"), `{"location":"local"}`)
		east := e.service(t, "East US")
		_, err := east.Put(t.Context(), req(t, widgetID("rg", "moving"), `{"location":"eastus"}`))
		checkError(t, "Put(location changed)", err, http.StatusBadRequest, "InvalidResourceLocation", "location")
		resp, err := east.Put(t.Context(), req(t, widgetID("rg", "fresh"), `{"location":"East US"}`))
		if got := resourceOf(t, wantStatus(t, "Put(new in eastus)", resp, err, http.StatusCreated)).Location; got != "eastus" {
			t.Errorf("Put(location East US) location = %q, want eastus", got)
		}
	})

	t.Run("proxy type ignores location", func(t *testing.T) {
		e.put(t, widgetID("rg", "geared"), `{"location":"local"}`)
		resp, err := e.svc.Put(t.Context(), req(t, gearID("rg", "geared", "g1"), `{"location":"westus","tags":{"a":"b"},"properties":{"teeth":12}}`))
		got := resourceOf(t, wantStatus(t, "Put(gear)", resp, err, http.StatusCreated))
		if got.Location != "" || got.Tags != nil {
			t.Errorf("Put(gear) location %q tags %v, want neither on a proxy resource", got.Location, got.Tags)
		}
	})
}

func TestPutValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")

	many := make([]string, 51)
	for i := range many {
		many[i] = `"t` + strings.Repeat("x", i) + `":"v"`
	}
	tags := func(n int) string { return `{"location":"local","tags":{` + strings.Join(many[:n], ",") + `}}` }

	tests := []struct {
		name   string
		id     string // default: a widget in rg
		body   string
		status int
		code   string
		target string
	}{
		{"50 tags are fine", "", tags(50), http.StatusCreated, "", ""},
		{"51 tags", "", tags(51), 400, "InvalidRequestContent", "tags"},
		{"tag key with slash", "", `{"location":"local","tags":{"a/b":"v"}}`, 400, "InvalidRequestContent", "tags"},
		{"tag key with <", "", `{"location":"local","tags":{"a<b":"v"}}`, 400, "InvalidRequestContent", "tags"},
		{"tag key with %", "", `{"location":"local","tags":{"100%":"v"}}`, 400, "InvalidRequestContent", "tags"},
		{"tag key with ?", "", `{"location":"local","tags":{"why?":"v"}}`, 400, "InvalidRequestContent", "tags"},
		{"empty tag key", "", `{"location":"local","tags":{"":"v"}}`, 400, "InvalidRequestContent", "tags"},
		{"tag key too long", "", `{"location":"local","tags":{"` + strings.Repeat("k", 513) + `":"v"}}`, 400, "InvalidRequestContent", "tags"},
		{"tag value too long", "", `{"location":"local","tags":{"k":"` + strings.Repeat("v", 257) + `"}}`, 400, "InvalidRequestContent", "tags.k"},
		{"tag value not a string", "", `{"location":"local","tags":{"k":1}}`, 400, "InvalidRequestContent", "tags.k"},
		{"body not JSON", "", `location=local`, 400, "InvalidRequestContent", ""},
		{"body truncated", "", `{"location":"local"`, 400, "InvalidRequestContent", ""},
		{"empty body", "", ``, 400, "InvalidRequestContent", ""},
		{"properties an array", "", `{"location":"local","properties":[1]}`, 400, "InvalidRequestContent", "properties"},
		{"properties a string", "", `{"location":"local","properties":"x"}`, 400, "InvalidRequestContent", "properties"},
		{"properties a number", "", `{"location":"local","properties":3}`, 400, "InvalidRequestContent", "properties"},
		{"property of the wrong type", "", `{"location":"local","properties":{"size":"big"}}`, 400, "InvalidRequestContent", "properties.size"},
		{"name against the type's rule", widgetID("rg", "under_score"), `{"location":"local"}`, 400, "InvalidResourceName", "name"},
		{"unknown type", groupID("rg") + "/providers/Test.Widgets/gizmos/g1", `{"location":"local"}`, 400, "InvalidResourceType", ""},
		{"missing group", widgetID("nope", "w1"), `{"location":"local"}`, 404, "ResourceGroupNotFound", ""},
		{"missing subscription", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Test.Widgets/widgets/w1", `{"location":"local"}`, 404, "SubscriptionNotFound", ""},
		{"group in a missing subscription", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg", `{"location":"local"}`, 404, "SubscriptionNotFound", ""},
		{"child of a missing parent", gearID("rg", "nope", "g1"), `{}`, 404, "ParentResourceNotFound", ""},
		{"child in a missing group", gearID("nope", "nope", "g1"), `{}`, 404, "ResourceGroupNotFound", ""},
		{"grandchild type unknown", gearID("rg", "nope", "g1") + "/teeth/t1", `{}`, 400, "InvalidResourceType", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.id
			if id == "" {
				id = widgetID("rg", "v"+strings.Repeat("x", i))
			}
			resp, err := e.svc.Put(t.Context(), req(t, id, tt.body))
			if tt.code == "" {
				wantStatus(t, "Put", resp, err, tt.status)
				return
			}
			checkError(t, "Put("+tt.body+")", err, tt.status, tt.code, tt.target)
			if _, err := e.get(t, id); err == nil {
				t.Errorf("Get(%s) after a refused Put found a resource", id)
			}
		})
	}

	t.Run("unsupported api-version", func(t *testing.T) {
		r := req(t, widgetID("rg", "w1"), `{"location":"local"}`)
		r.APIVersion = "2019-01-01"
		_, err := e.svc.Put(t.Context(), r)
		ae := checkError(t, "Put(api-version 2019-01-01)", err, 400, "NoRegisteredProviderFound", "")
		want := "The supported api-versions are '2025-02-01, 2024-01-01, 2022-01-01, 2023-05-01-preview'."
		if ae != nil && !strings.Contains(ae.Message, want) {
			t.Errorf("Put(api-version 2019-01-01) message %q, want it to contain %q", ae.Message, want)
		}
		if ae != nil && !strings.Contains(ae.Message, "'2019-01-01'") {
			t.Errorf("Put(api-version 2019-01-01) message %q does not name the version sent", ae.Message)
		}
		r.APIVersion = "2023-05-01-PREVIEW" // api-versions match without regard to case
		resp, err := e.svc.Put(t.Context(), r)
		wantStatus(t, "Put(api-version 2023-05-01-PREVIEW)", resp, err, http.StatusCreated)
	})
}

func TestPutReadOnlyProperties(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	id := widgetID("rg", "w1")
	e.put(t, id, `{"location":"local","properties":{"size":1}}`)

	// az resource update: GET, then PUT everything back, read-only fields included.
	tests := []struct {
		name, body string
		wantErr    bool
		wantProps  map[string]any
	}{
		{"read-only value ignored", `{"location":"local","properties":{"size":2,"serial":"hacked"}}`, false,
			map[string]any{"size": 2.0, "serial": "SN-w1", "provisioningState": "Succeeded"}},
		{"read-only null ignored", `{"location":"local","properties":{"size":3,"serial":null}}`, false,
			map[string]any{"size": 3.0, "serial": "SN-w1", "provisioningState": "Succeeded"}},
		{"provisioningState equal to the stored one", `{"location":"local","properties":{"size":4,"provisioningState":"Succeeded"}}`, false,
			map[string]any{"size": 4.0, "serial": "SN-w1", "provisioningState": "Succeeded"}},
		{"provisioningState in another case", `{"location":"local","properties":{"size":5,"provisioningState":"succeeded"}}`, false,
			map[string]any{"size": 5.0, "serial": "SN-w1", "provisioningState": "Succeeded"}},
		{"provisioningState differs", `{"location":"local","properties":{"size":6,"provisioningState":"Failed"}}`, true, nil},
		{"provisioningState not a string", `{"location":"local","properties":{"size":6,"provisioningState":1}}`, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.svc.Put(t.Context(), req(t, id, tt.body))
			if tt.wantErr {
				checkError(t, "Put("+tt.body+")", err, 400, "InvalidRequestContent", "properties.provisioningState")
				return
			}
			got := resourceOf(t, must(t, "Put", resp, err))
			if diff := cmp.Diff(tt.wantProps, got.Properties); diff != "" {
				t.Errorf("Put(%s) properties (-want +got):\n%s", tt.body, diff)
			}
			if diff := cmp.Diff(tt.wantProps, e.mustGet(t, id).Properties); diff != "" {
				t.Errorf("Get after Put(%s) properties (-want +got):\n%s", tt.body, diff)
			}
		})
	}
}

func TestETags(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	id := widgetID("rg", "w1")
	body := `{"location":"local"}`

	put := func(h, v string) (*resource.Response, error) {
		return e.svc.Put(t.Context(), withHeader(req(t, id, body), h, v))
	}
	_, err := put("If-Match", "*")
	checkError(t, "Put(If-Match: *) on missing", err, http.StatusPreconditionFailed, "PreconditionFailed", "")
	_, err = put("If-Match", `"1"`)
	checkError(t, `Put(If-Match: "1") on missing`, err, http.StatusPreconditionFailed, "PreconditionFailed", "")
	resp, err := put("If-None-Match", "*")
	etag1 := wantStatus(t, "Put(If-None-Match: *) on missing", resp, err, http.StatusCreated).Header.Get("ETag")

	_, err = put("If-None-Match", "*")
	checkError(t, "Put(If-None-Match: *) on existing", err, http.StatusPreconditionFailed, "PreconditionFailed", "")
	_, err = put("If-Match", `"deadbeef"`)
	checkError(t, "Put(If-Match: mismatched) on existing", err, http.StatusPreconditionFailed, "PreconditionFailed", "")
	_, err = put("If-Match", `not-an-etag`)
	checkError(t, "Put(If-Match: garbage) on existing", err, http.StatusPreconditionFailed, "PreconditionFailed", "")

	resp, err = put("If-Match", etag1)
	etag2 := wantStatus(t, "Put(If-Match: current)", resp, err, http.StatusOK).Header.Get("ETag")
	if etag2 == etag1 {
		t.Errorf("Put(If-Match: current) ETag = %s, want it to change", etag2)
	}
	_, err = put("If-Match", etag1)
	checkError(t, "Put(If-Match: stale)", err, http.StatusPreconditionFailed, "PreconditionFailed", "")
	resp, err = put("If-Match", "W/"+etag2)
	etag3 := wantStatus(t, "Put(If-Match: weak current)", resp, err, http.StatusOK).Header.Get("ETag")
	resp, err = put("If-Match", "*")
	etag4 := wantStatus(t, "Put(If-Match: *) on existing", resp, err, http.StatusOK).Header.Get("ETag")
	_, err = put("If-None-Match", etag4)
	checkError(t, "Put(If-None-Match: current)", err, http.StatusPreconditionFailed, "PreconditionFailed", "")
	resp, err = put("If-None-Match", etag3)
	etag5 := wantStatus(t, "Put(If-None-Match: stale)", resp, err, http.StatusOK).Header.Get("ETag")

	if got := e.mustGet(t, id).ETag; got != etag5 {
		t.Errorf("Get ETag = %s, want the last Put's %s", got, etag5)
	}

	_, err = e.svc.Patch(t.Context(), withHeader(req(t, id, `{"tags":{"a":"b"}}`), "If-Match", etag1))
	checkError(t, "Patch(If-Match: stale)", err, http.StatusPreconditionFailed, "PreconditionFailed", "")
	resp, err = e.svc.Patch(t.Context(), withHeader(req(t, id, `{"tags":{"a":"b"}}`), "If-Match", etag5))
	etag6 := wantStatus(t, "Patch(If-Match: current)", resp, err, http.StatusOK).Header.Get("ETag")

	_, err = e.svc.Delete(t.Context(), withHeader(req(t, id, ""), "If-Match", etag5))
	checkError(t, "Delete(If-Match: stale)", err, http.StatusPreconditionFailed, "PreconditionFailed", "")
	if _, err := e.get(t, id); err != nil {
		t.Errorf("Get after a refused Delete: %v", err)
	}
	resp, err = e.svc.Delete(t.Context(), withHeader(req(t, id, ""), "If-Match", etag6))
	wantStatus(t, "Delete(If-Match: current)", resp, err, http.StatusOK)
	resp, err = e.svc.Delete(t.Context(), req(t, id, ""))
	wantStatus(t, "Delete(missing)", resp, err, http.StatusNoContent)
}

func TestPatch(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	runOperations(t, e.svc, "replica-1")
	id := widgetID("rg", "w1")
	e.put(t, id, `{"location":"local","tags":{"a":"1","b":"2"},"properties":{"size":1,"color":"red"}}`)

	t.Run("tags replaced whole", func(t *testing.T) {
		resp, err := e.svc.Patch(t.Context(), withCaller(req(t, id, `{"tags":{"c":"3"}}`), bob))
		got := resourceOf(t, wantStatus(t, "Patch(tags)", resp, err, http.StatusOK))
		if diff := cmp.Diff(map[string]string{"c": "3"}, got.Tags); diff != "" {
			t.Errorf("Patch(tags) tags (-want +got):\n%s", diff)
		}
		if got.Properties["color"] != "red" || got.Properties["provisioningState"] != "Succeeded" {
			t.Errorf("Patch(tags) properties = %v, want them untouched", got.Properties)
		}
		if got.SystemData == nil || got.SystemData.CreatedBy != alice.Name || got.SystemData.LastModifiedBy != bob.Name {
			t.Errorf("Patch(tags) systemData = %+v, want created by %s, modified by %s", got.SystemData, alice.Name, bob.Name)
		}
		if resp.Header.Get("ETag") != got.ETag || got.ETag == "" {
			t.Errorf("Patch(tags) ETag header %q, body %q", resp.Header.Get("ETag"), got.ETag)
		}
		resp, err = e.svc.Patch(t.Context(), req(t, id, `{"tags":{}}`))
		if got := resourceOf(t, must(t, "Patch(tags {})", resp, err)); len(got.Tags) != 0 {
			t.Errorf("Patch(tags {}) tags = %v, want none", got.Tags)
		}
	})

	t.Run("properties merged on a sync type", func(t *testing.T) {
		resp, err := e.svc.Patch(t.Context(), req(t, id, `{"properties":{"size":2,"color":null,"serial":"hacked"}}`))
		got := resourceOf(t, wantStatus(t, "Patch(properties)", resp, err, http.StatusOK))
		want := map[string]any{"size": 2.0, "serial": "SN-w1", "provisioningState": "Succeeded"}
		if diff := cmp.Diff(want, got.Properties); diff != "" {
			t.Errorf("Patch(properties) properties (-want +got):\n%s", diff)
		}
		if resp.Header.Get("Azure-AsyncOperation") != "" || resp.Header.Get("Location") != "" {
			t.Errorf("Patch(properties) of a sync type has polling headers %v", resp.Header)
		}
	})

	t.Run("properties merged on a provisioned type", func(t *testing.T) {
		sid := slowID("rg", "s1")
		resp := e.put(t, sid, `{"location":"local","tags":{"x":"y"},"properties":{"color":"red","size":{"w":1,"h":2}}}`)
		e.waitOp(t, opID(t, resp.Header.Get("Azure-AsyncOperation")))

		resp, err := e.svc.Patch(t.Context(), req(t, sid, `{"properties":{"color":null,"size":{"h":3},"shape":"round"}}`))
		resp = wantStatus(t, "Patch(slow properties)", resp, err, http.StatusAccepted)
		loc, async := resp.Header.Get("Location"), resp.Header.Get("Azure-AsyncOperation")
		if !strings.HasPrefix(loc, baseURL+"/subscriptions/"+subID+"/providers/Test.Widgets/locations/local/operationResults/") {
			t.Errorf("Patch(slow properties) Location = %q, want an absolute operationResults URL", loc)
		}
		if opID(t, loc) != opID(t, async) {
			t.Errorf("Patch(slow properties) Location %q and Azure-AsyncOperation %q name different operations", loc, async)
		}
		if st := e.waitOp(t, opID(t, async)); st.Status != resource.OpSucceeded {
			t.Fatalf("Patch operation ended %s: %+v", st.Status, st.Error)
		}
		resp, err = e.svc.OperationResult(t.Context(), req(t, sid, ""), subID, opID(t, loc))
		got := resourceOf(t, wantStatus(t, "OperationResult(patch)", resp, err, http.StatusOK))
		want := map[string]any{
			"size":              map[string]any{"w": 1.0, "h": 3.0},
			"shape":             "round",
			"endpoint":          "https://s1.widgets.example.test",
			"provisioningState": "Succeeded",
		}
		if diff := cmp.Diff(want, got.Properties); diff != "" {
			t.Errorf("after Patch(slow properties) properties (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{"x": "y"}, got.Tags); diff != "" {
			t.Errorf("Patch(properties) changed tags (-want +got):\n%s", diff)
		}

		// A tags-only PATCH needs no provisioning.
		resp, err = e.svc.Patch(t.Context(), req(t, sid, `{"tags":{"only":"tags"}}`))
		got = resourceOf(t, wantStatus(t, "Patch(slow tags)", resp, err, http.StatusOK))
		if got.Properties["provisioningState"] != "Succeeded" || resp.Header.Get("Azure-AsyncOperation") != "" {
			t.Errorf("Patch(slow tags) = state %v, headers %v; want a synchronous Succeeded", got.Properties["provisioningState"], resp.Header)
		}
	})

	t.Run("errors", func(t *testing.T) {
		_, err := e.svc.Patch(t.Context(), req(t, widgetID("rg", "nope"), `{"tags":{}}`))
		checkError(t, "Patch(missing)", err, http.StatusNotFound, "ResourceNotFound", "")
		_, err = e.svc.Patch(t.Context(), req(t, widgetID("nope", "w1"), `{"tags":{}}`))
		checkError(t, "Patch(missing group)", err, http.StatusNotFound, "ResourceGroupNotFound", "")
		_, err = e.svc.Patch(t.Context(), req(t, id, `{"tags":{"a/b":"c"}}`))
		checkError(t, "Patch(bad tag)", err, http.StatusBadRequest, "InvalidRequestContent", "tags")
		_, err = e.svc.Patch(t.Context(), req(t, id, `{"properties":{"provisioningState":"Deleting"}}`))
		checkError(t, "Patch(provisioningState)", err, http.StatusBadRequest, "InvalidRequestContent", "properties.provisioningState")
		_, err = e.svc.Patch(t.Context(), req(t, id, `{"properties":[1]}`))
		checkError(t, "Patch(properties an array)", err, http.StatusBadRequest, "InvalidRequestContent", "properties")
		_, err = e.svc.Patch(t.Context(), req(t, id, `{"properties":{"size":"big"}}`))
		checkError(t, "Patch(property of the wrong type)", err, http.StatusBadRequest, "InvalidRequestContent", "properties.size")
		_, err = e.svc.Patch(t.Context(), req(t, id, `nope`))
		checkError(t, "Patch(not JSON)", err, http.StatusBadRequest, "InvalidRequestContent", "")
	})
}

func TestDeleteSync(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	id := widgetID("rg", "w1")
	e.put(t, id, `{"location":"local"}`)
	e.put(t, gearID("rg", "w1", "g1"), `{}`)
	e.put(t, gearID("rg", "w1", "g2"), `{}`)
	e.put(t, widgetID("rg", "w10"), `{"location":"local"}`) // shares w1's prefix
	e.put(t, gearID("rg", "w10", "g1"), `{}`)

	resp, err := e.svc.Delete(t.Context(), req(t, widgetID("RG", "W1"), ""))
	wantStatus(t, "Delete(widget)", resp, err, http.StatusOK)
	_, err = e.get(t, id)
	checkError(t, "Get after Delete", err, http.StatusNotFound, "ResourceNotFound", "")
	_, err = e.get(t, gearID("rg", "w1", "g1"))
	checkError(t, "Get(child) after Delete", err, http.StatusNotFound, "ParentResourceNotFound", "")

	// The children are gone from the store, not just hidden by their
	// missing parent: a new w1 has no gears.
	e.put(t, id, `{"location":"local"}`)
	for _, g := range []string{"g1", "g2"} {
		_, err = e.get(t, gearID("rg", "w1", g))
		checkError(t, "Get(old child of a recreated parent)", err, http.StatusNotFound, "ResourceNotFound", "")
	}
	if _, err := e.get(t, gearID("rg", "w10", "g1")); err != nil {
		t.Errorf("Get(child of w10) after deleting w1: %v", err)
	}

	tests := []struct {
		name, id string
		status   int
		code     string
	}{
		{"missing resource", widgetID("rg", "nope"), http.StatusNoContent, ""},
		{"missing child", gearID("rg", "w1", "nope"), http.StatusNoContent, ""},
		{"child of a missing parent", gearID("rg", "nope", "g1"), http.StatusNoContent, ""},
		{"resource in a missing group", widgetID("nope", "w1"), http.StatusNotFound, "ResourceGroupNotFound"},
		// ARM answers a DELETE of a group that does not exist with 404
		// (az group delete reports "(ResourceGroupNotFound)").
		{"missing group", groupID("nope"), http.StatusNotFound, "ResourceGroupNotFound"},
		{"resource in a missing subscription", "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Test.Widgets/widgets/w1", http.StatusNotFound, "SubscriptionNotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := e.svc.Delete(t.Context(), req(t, tt.id, ""))
			if tt.code == "" {
				wantStatus(t, "Delete("+tt.id+")", resp, err, tt.status)
				return
			}
			if err == nil {
				t.Errorf("Delete(%s) = %d, want %d %s", tt.id, resp.Status, tt.status, tt.code)
				return
			}
			checkError(t, "Delete("+tt.id+")", err, tt.status, tt.code, "")
		})
	}
}

// TestPutConcurrentSameResource races PUTs of one long-running resource.
// Conflicts are retried from the request body each time: none may see
// state left by its own failed attempt (a regression: the retry once saw
// the provisioningState its first attempt had set and refused with 400).
func TestPutConcurrentSameResource(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "rg")
	runOperations(t, e.svc, "replica-1") // so that the stored state keeps changing
	id := slowID("rg", "contended")
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 5 {
				resp, err := e.svc.Put(t.Context(), req(t, id, `{"location":"local","properties":{}}`))
				if err != nil {
					var ae *arm.Error
					if !errors.As(err, &ae) || ae.Code != arm.CodeConflict {
						t.Errorf("Put(%s) = %v, want success or Conflict", id, err)
					}
					continue
				}
				if resp.Status != http.StatusOK && resp.Status != http.StatusCreated {
					t.Errorf("Put(%s) status = %d, want 200 or 201", id, resp.Status)
				}
			}
		})
	}
	wg.Wait()
}
