package resource_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// listReq is a collection GET: id is the parent scope, tail the collection.
func listReq(t testing.TB, id, tail string, top int) *resource.Request {
	t.Helper()
	r := req(t, id, "")
	r.Path = r.ID.String() + "/" + tail
	r.Top = top
	return r
}

// followNextLink checks that a nextLink is an absolute URL of the same
// collection and points r at the page it names.
func followNextLink(t testing.TB, r *resource.Request, next string) {
	t.Helper()
	u, err := url.Parse(next)
	if err != nil {
		t.Fatalf("nextLink %q: %v", next, err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != baseURL+r.Path {
		t.Errorf("nextLink %q is not %s?…", next, baseURL+r.Path)
	}
	q := u.Query()
	if q.Get("api-version") != r.APIVersion {
		t.Errorf("nextLink %q: api-version %q, want %q", next, q.Get("api-version"), r.APIVersion)
	}
	if r.Top > 0 && q.Get("$top") != fmt.Sprint(r.Top) {
		t.Errorf("nextLink %q: $top %q, want %d", next, q.Get("$top"), r.Top)
	}
	if q.Get("$filter") != r.Filter {
		t.Errorf("nextLink %q: $filter %q, want %q", next, q.Get("$filter"), r.Filter)
	}
	tok := q.Get("$skipToken")
	if tok == "" {
		t.Fatalf("nextLink %q has no $skipToken", next)
	}
	if r.SkipToken, err = arm.DecodeSkipToken(tok); err != nil {
		t.Fatalf("nextLink %q: %v", next, err)
	}
}

// listAll pages through List and returns the IDs and the page sizes.
func listAll(t testing.TB, e *env, r *resource.Request, typeName string) (ids []string, sizes []int) {
	t.Helper()
	for range 50 {
		resp, err := e.svc.List(t.Context(), r, typeName)
		resp = wantStatus(t, "List("+r.Path+")", resp, err, http.StatusOK)
		page := decode[resource.Page[resource.Resource]](t, resp.Body)
		sizes = append(sizes, len(page.Value))
		for _, v := range page.Value {
			ids = append(ids, v.ID)
		}
		if page.NextLink == "" {
			return ids, sizes
		}
		followNextLink(t, r, page.NextLink)
	}
	t.Fatalf("List(%s) did not end after 50 pages; got %v", r.Path, ids)
	return nil, nil
}

// listResourcesAll pages through ListResources.
func listResourcesAll(t testing.TB, e *env, r *resource.Request, f arm.Filter, expand string) (items []resource.GenericResource) {
	t.Helper()
	for range 50 {
		resp, err := e.svc.ListResources(t.Context(), r, f, expand)
		resp = wantStatus(t, "ListResources("+r.Path+")", resp, err, http.StatusOK)
		page := decode[resource.Page[resource.GenericResource]](t, resp.Body)
		items = append(items, page.Value...)
		if page.NextLink == "" {
			return items
		}
		followNextLink(t, r, page.NextLink)
	}
	t.Fatalf("ListResources(%s) did not end after 50 pages; got %d items", r.Path, len(items))
	return nil
}

func idsOf(items []resource.GenericResource) []string {
	var ids []string
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	return ids
}

func TestList(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "paged")
	e.putGroup(t, "other")
	e.putGroup(t, "empty")
	var paged []string
	for i := range 25 {
		id := widgetID("paged", fmt.Sprintf("w%02d", i))
		e.put(t, id, `{"location":"local"}`)
		paged = append(paged, id)
	}
	var other []string
	for i := range 3 {
		id := widgetID("other", fmt.Sprintf("w%02d", i))
		e.put(t, id, `{"location":"local"}`)
		other = append(other, id)
	}
	// Children, and a parent whose name extends another's.
	e.put(t, gearID("paged", "w00", "g1"), `{}`)
	for _, s := range []string{"s1", "s10"} {
		e.put(t, slowID("paged", s), `{"location":"local"}`) // stays Accepted: no controller
	}
	e.put(t, partID("paged", "s1", "p1"), `{}`)
	e.put(t, partID("paged", "s1", "p2"), `{}`)
	e.put(t, partID("paged", "s10", "p1"), `{}`)

	t.Run("pages", func(t *testing.T) {
		r := listReq(t, groupID("paged")+"/providers/Test.Widgets", "widgets", 10)
		ids, sizes := listAll(t, e, r, "widgets")
		if diff := cmp.Diff(paged, ids); diff != "" {
			t.Errorf("List(widgets, $top=10) ids (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]int{10, 10, 5}, sizes); diff != "" {
			t.Errorf("List(widgets, $top=10) page sizes (-want +got):\n%s", diff)
		}
	})

	t.Run("one page", func(t *testing.T) {
		r := listReq(t, groupID("paged")+"/providers/Test.Widgets", "widgets", 0)
		resp, err := e.svc.List(t.Context(), r, "widgets")
		page := decode[resource.Page[resource.Resource]](t, must(t, "List", resp, err).Body)
		if len(page.Value) != 25 || page.NextLink != "" {
			t.Errorf("List(widgets) = %d items, nextLink %q; want 25 and none", len(page.Value), page.NextLink)
		}
		for _, w := range page.Value {
			if w.ETag == "" || w.Location != "local" || w.Properties["provisioningState"] != "Succeeded" {
				t.Errorf("List item %+v lacks its etag, location or provisioningState", w)
			}
		}
	})

	t.Run("whole subscription", func(t *testing.T) {
		r := listReq(t, "/subscriptions/"+subID+"/providers/Test.Widgets", "widgets", 10)
		ids, _ := listAll(t, e, r, "widgets")
		want := slices.Concat(other, paged) // by group: "other" < "paged"
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("List(subscription widgets) ids (-want +got):\n%s", diff)
		}
	})

	t.Run("children not at the parent level", func(t *testing.T) {
		tests := []struct {
			scope, typeName string
			want            []string
		}{
			{groupID("paged") + "/providers/Test.Widgets", "slowWidgets", []string{slowID("paged", "s1"), slowID("paged", "s10")}},
			{slowID("paged", "s1"), "parts", []string{partID("paged", "s1", "p1"), partID("paged", "s1", "p2")}},
			{slowID("PAGED", "S10"), "parts", []string{partID("paged", "s10", "p1")}},
			{widgetID("paged", "w00"), "gears", []string{gearID("paged", "w00", "g1")}},
			{widgetID("paged", "w01"), "gears", nil},
			{groupID("other") + "/providers/Test.Widgets", "slowWidgets", nil},
		}
		for _, tt := range tests {
			r := listReq(t, tt.scope, tt.typeName, 0)
			ids, _ := listAll(t, e, r, tt.typeName)
			if diff := cmp.Diff(tt.want, ids); diff != "" {
				t.Errorf("List(%s) ids (-want +got):\n%s", r.Path, diff)
			}
		}
	})

	t.Run("resource groups", func(t *testing.T) {
		r := listReq(t, "/subscriptions/"+subID, "resourceGroups", 2)
		ids, _ := listAll(t, e, r, "Microsoft.Resources/resourceGroups")
		want := []string{groupID("empty"), groupID("other"), groupID("paged")}
		if diff := cmp.Diff(want, ids); diff != "" {
			t.Errorf("List(resourceGroups) ids (-want +got):\n%s", diff)
		}
	})

	t.Run("empty", func(t *testing.T) {
		r := listReq(t, groupID("empty")+"/providers/Test.Widgets", "widgets", 0)
		resp, err := e.svc.List(t.Context(), r, "widgets")
		b, _ := json.Marshal(must(t, "List(empty group)", resp, err).Body)
		if string(b) != `{"value":[]}` {
			t.Errorf("List(empty group) = %s, want {\"value\":[]}", b)
		}
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name, scope, typeName string
			status                int
			code                  string
		}{
			{"missing group", groupID("nope") + "/providers/Test.Widgets", "widgets", 404, "ResourceGroupNotFound"},
			{"missing parent", slowID("paged", "nope"), "parts", 404, "ResourceNotFound"},
			{"missing subscription", "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Test.Widgets", "widgets", 404, "SubscriptionNotFound"},
			{"unknown type", groupID("paged") + "/providers/Test.Widgets", "gizmos", 400, "InvalidResourceType"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := e.svc.List(t.Context(), listReq(t, tt.scope, tt.typeName, 0), tt.typeName)
				checkError(t, "List("+tt.scope+"/"+tt.typeName+")", err, tt.status, tt.code, "")
			})
		}
		r := listReq(t, groupID("paged")+"/providers/Test.Widgets", "widgets", 0)
		r.APIVersion = "2020-01-01"
		_, err := e.svc.List(t.Context(), r, "widgets")
		checkError(t, "List(api-version 2020-01-01)", err, 400, "NoRegisteredProviderFound", "")
	})
}

func TestListResources(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "a")
	e.putGroup(t, "b")
	e.put(t, widgetID("a", "w1"), `{"location":"local","tags":{"env":"prod"}}`)
	e.put(t, widgetID("a", "w2"), `{"location":"local","tags":{"env":"dev","team":"x"}}`)
	e.put(t, gearID("a", "w1", "g1"), `{}`)
	e.put(t, slowID("a", "s1"), `{"location":"local"}`) // stays Accepted: no controller
	e.put(t, partID("a", "s1", "p1"), `{}`)
	e.put(t, widgetID("b", "W1"), `{"location":"local","tags":{"Env":"Prod"}}`)
	sub := "/subscriptions/" + subID

	tests := []struct {
		name   string
		scope  string
		filter arm.Filter
		want   []string
	}{
		{"group", groupID("a"), arm.Filter{}, []string{slowID("a", "s1"), widgetID("a", "w1"), widgetID("a", "w2")}},
		{"subscription", sub, arm.Filter{}, []string{slowID("a", "s1"), widgetID("a", "w1"), widgetID("a", "w2"), widgetID("b", "W1")}},
		{"resourceType", sub, arm.Filter{ResourceType: "test.widgets/WIDGETS"}, []string{widgetID("a", "w1"), widgetID("a", "w2"), widgetID("b", "W1")}},
		{"resourceType of a child", sub, arm.Filter{ResourceType: "Test.Widgets/slowWidgets/parts"}, nil},
		{"name", sub, arm.Filter{Name: "w1"}, []string{widgetID("a", "w1"), widgetID("b", "W1")}},
		{"name in a group", groupID("b"), arm.Filter{Name: "w1"}, []string{widgetID("b", "W1")}},
		{"tag name", sub, arm.Filter{TagName: "env"}, []string{widgetID("a", "w1"), widgetID("a", "w2"), widgetID("b", "W1")}},
		{"tag name and value", sub, arm.Filter{TagName: "env", TagValue: "prod"}, []string{widgetID("a", "w1"), widgetID("b", "W1")}},
		{"tag name absent", sub, arm.Filter{TagName: "owner"}, nil},
		{"resourceGroup", sub, arm.Filter{ResourceGroup: "B"}, []string{widgetID("b", "W1")}},
		{"type and tag", sub, arm.Filter{ResourceType: "Test.Widgets/widgets", TagName: "team"}, []string{widgetID("a", "w2")}},
	}
	for _, tt := range tests {
		for _, top := range []int{0, 1, 2} {
			t.Run(fmt.Sprintf("%s top %d", tt.name, top), func(t *testing.T) {
				r := listReq(t, tt.scope, "resources", top)
				r.APIVersion = groupAPI
				r.Filter = "(the $filter as sent)"
				got := idsOf(listResourcesAll(t, e, r, tt.filter, ""))
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("ListResources(%s, %+v, $top=%d) (-want +got):\n%s", tt.scope, tt.filter, top, diff)
				}
			})
		}
	}

	t.Run("expand", func(t *testing.T) {
		r := listReq(t, groupID("a"), "resources", 0)
		items := listResourcesAll(t, e, r, arm.Filter{}, "createdTime, provisioningState")
		states := map[string]string{}
		for _, it := range items {
			states[it.Name] = it.ProvisioningState
			if it.CreatedTime == nil || it.CreatedTime.IsZero() || it.ChangedTime != nil {
				t.Errorf("item %s: createdTime %v, changedTime %v; want only createdTime", it.Name, it.CreatedTime, it.ChangedTime)
			}
		}
		if diff := cmp.Diff(map[string]string{"s1": "Accepted", "w1": "Succeeded", "w2": "Succeeded"}, states); diff != "" {
			t.Errorf("ListResources($expand=provisioningState) states (-want +got):\n%s", diff)
		}
		for _, it := range listResourcesAll(t, e, r, arm.Filter{}, "") {
			if it.CreatedTime != nil || it.ChangedTime != nil || it.ProvisioningState != "" {
				t.Errorf("item %s without $expand: %+v, want no createdTime, changedTime or provisioningState", it.Name, it)
			}
		}
		w1 := listResourcesAll(t, e, r, arm.Filter{Name: "w1"}, "changedTime")
		want := resource.GenericResource{ID: widgetID("a", "w1"), Name: "w1", Type: "Test.Widgets/widgets", Location: "local", Tags: map[string]string{"env": "prod"}}
		if len(w1) != 1 || w1[0].ChangedTime == nil {
			t.Fatalf("ListResources(name w1, $expand=changedTime) = %+v, want w1 with its changedTime", w1)
		}
		w1[0].ChangedTime = nil
		if diff := cmp.Diff(want, w1[0]); diff != "" {
			t.Errorf("ListResources(name w1) (-want +got):\n%s", diff)
		}
	})

	t.Run("missing scope", func(t *testing.T) {
		_, err := e.svc.ListResources(t.Context(), listReq(t, groupID("nope"), "resources", 0), arm.Filter{}, "")
		checkError(t, "ListResources(missing group)", err, 404, "ResourceGroupNotFound", "")
		_, err = e.svc.ListResources(t.Context(), listReq(t, "/subscriptions/00000000-0000-0000-0000-000000000000", "resources", 0), arm.Filter{}, "")
		checkError(t, "ListResources(missing subscription)", err, 404, "SubscriptionNotFound", "")
	})
}

// TestListResourcesTypeNamePrefix pages through two types where one's name
// is the start of the other's ("widgets", "widgetSets"), as with
// NetworkCloud "racks" and "rackSkus" or ManagedNetworkFabric
// "networkFabrics" and "networkFabricSkus".
func TestListResourcesTypeNamePrefix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putGroup(t, "sets")
	var want []string
	for _, n := range []string{"x1", "x2", "x3"} {
		e.put(t, widgetID("sets", n), `{"location":"local"}`)
		want = append(want, widgetID("sets", n))
	}
	for _, n := range []string{"y1", "y2", "y3"} {
		e.put(t, widgetSetID("sets", n), `{"location":"local"}`)
		want = append(want, widgetSetID("sets", n))
	}
	for _, top := range []int{0, 1, 2, 3, 4, 5} {
		t.Run(fmt.Sprintf("top %d", top), func(t *testing.T) {
			r := listReq(t, groupID("sets"), "resources", top)
			seen := map[string]int{}
			for _, id := range idsOf(listResourcesAll(t, e, r, arm.Filter{}, "")) {
				seen[id]++
			}
			var missing, repeated []string
			for _, id := range want {
				switch n := seen[id]; {
				case n == 0:
					missing = append(missing, id[strings.LastIndex(id, "/providers/")+len("/providers/"):])
				case n > 1:
					repeated = append(repeated, fmt.Sprintf("%s×%d", id[strings.LastIndex(id, "/providers/")+len("/providers/"):], n))
				}
			}
			if len(missing) > 0 || len(repeated) > 0 {
				t.Errorf("ListResources($top=%d) must return each resource once; missing %v, repeated %v", top, missing, repeated)
			}
		})
	}
}

// TestListSkipTokenIsolation sends $skipTokens that point outside the
// listed scope, as a client may craft them: they are opaque, not trusted.
// A list must never return a resource outside its scope.
func TestListSkipTokenIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const tenant2, sub2 = "9c2f4a71-5d1e-4b7a-8d6e-0a1b2c3d4e5f", "0a0a0a0a-0000-0000-0000-000000000002"
	if err := e.svc.CreateTenancy(t.Context(), resource.Tenant{ID: tenant2}, resource.Subscription{ID: sub2, TenantID: tenant2, State: "Enabled"}); err != nil {
		t.Fatalf("CreateTenancy(second): %v", err)
	}
	waitFor(t, "the second subscription", func() bool {
		_, err := e.svc.Subscription(t.Context(), sub2)
		return err == nil
	})
	for _, rg := range []string{"alpha", "bravo", "bravo-x", "charlie"} {
		e.putGroup(t, rg)
		for _, n := range []string{"w1", "w2", "w3"} {
			e.put(t, widgetID(rg, n), `{"location":"local"}`)
		}
		e.put(t, slowID(rg, "s1"), `{"location":"local"}`)
	}
	sub2Group := "/subscriptions/" + sub2 + "/resourceGroups/bravo"
	if _, err := e.svc.Put(t.Context(), req(t, sub2Group, `{"location":"local"}`)); err != nil {
		t.Fatalf("Put(group in second subscription): %v", err)
	}
	if _, err := e.svc.Put(t.Context(), req(t, sub2Group+"/providers/Test.Widgets/widgets/w1", `{"location":"local"}`)); err != nil {
		t.Fatalf("Put(widget in second subscription): %v", err)
	}

	// A real token from another group's list.
	first := listReq(t, groupID("alpha")+"/providers/Test.Widgets", "widgets", 1)
	resp, err := e.svc.List(t.Context(), first, "widgets")
	page := decode[resource.Page[resource.Resource]](t, must(t, "List(alpha)", resp, err).Body)
	if page.NextLink == "" {
		t.Fatalf("List(alpha, $top=1) has no nextLink")
	}
	followNextLink(t, first, page.NextLink)
	alphaTok := first.SkipToken // the key of alpha/w1
	if !strings.Contains(alphaTok, "/resourcegroups/alpha/") {
		t.Fatalf("skip token %q does not look like a store key in alpha; the test needs updating", alphaTok)
	}
	swap := func(from, to string) string { return strings.Replace(alphaTok, from, to, 1) }
	tokens := map[string]string{
		"another group, before":        alphaTok,
		"another group, after":         swap("/alpha/", "/charlie/"),
		"a group sharing the name":     swap("/alpha/", "/bravo-x/"),
		"just before the prefix":       swap("/alpha/providers/test.widgets/widgets/w1", "/bravo"),
		"the bare prefix":              swap("/alpha/providers/test.widgets/widgets/w1", "/bravo/"),
		"another subscription":         swap(strings.ToLower(subID), sub2),
		"another subscription's group": swap(strings.ToLower(subID)+"/resourcegroups/alpha/", sub2+"/resourcegroups/bravo/"),
		"another type":                 swap("test.widgets/widgets|", "test.widgets/slowwidgets|"),
		"the collection start":         "",
		"a low byte":                   "\x00",
		"the end of everything":        "\xff\xff",
		"not a key":                    "../../etc/passwd",
	}

	check := func(t *testing.T, scope string, ids []string) {
		t.Helper()
		sid, _ := arm.ParseID(scope)
		for _, id := range ids {
			rid, err := arm.ParseID(id)
			if err != nil || !sid.Contains(rid) {
				t.Errorf("list of %s returned %s, which is outside it", scope, id)
			}
		}
	}
	for name, tok := range tokens {
		t.Run(name, func(t *testing.T) {
			for _, scope := range []string{groupID("bravo"), "/subscriptions/" + subID} {
				r := listReq(t, scope+"/providers/Test.Widgets", "widgets", 2)
				r.SkipToken = tok
				ids, _ := listAll(t, e, r, "widgets")
				check(t, scope, ids)

				r = listReq(t, scope, "resources", 2)
				r.SkipToken = tok
				check(t, scope, idsOf(listResourcesAll(t, e, r, arm.Filter{}, "")))
			}
			r := listReq(t, slowID("bravo", "s1"), "parts", 2)
			r.SkipToken = tok
			ids, _ := listAll(t, e, r, "parts")
			check(t, slowID("bravo", "s1"), ids)
		})
	}

	t.Run("a token from the same list resumes it", func(t *testing.T) {
		r := listReq(t, groupID("bravo")+"/providers/Test.Widgets", "widgets", 0)
		r.SkipToken = swap("/alpha/", "/bravo/")
		ids, _ := listAll(t, e, r, "widgets")
		if diff := cmp.Diff([]string{widgetID("bravo", "w2"), widgetID("bravo", "w3")}, ids); diff != "" {
			t.Errorf("List(bravo) after w1 (-want +got):\n%s", diff)
		}
	})
}
