package resource_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestExtendedLocationFixed: a resource's extendedLocation is set at
// creation; a PUT without one keeps it and a PUT naming another is
// refused, changing nothing.
func TestExtendedLocationFixed(t *testing.T) {
	e := newEnv(t)
	e.putGroup(t, "rg")
	id := widgetID("rg", "w1")
	const el = `{"name":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ExtendedLocation/customLocations/cl1","type":"CustomLocation"}`
	e.put(t, id, `{"location":"local","extendedLocation":`+el+`,"properties":{"size":1}}`)
	e.put(t, id, `{"location":"local","properties":{"size":2}}`)
	if got := string(e.mustGet(t, id).ExtendedLocation); got != el {
		t.Errorf("after a PUT without extendedLocation: %s, want %s", got, el)
	}
	e.put(t, id, `{"location":"local","extendedLocation":`+strings.Replace(el, "customLocations/cl1", "CUSTOMLOCATIONS/CL1", 1)+`,"properties":{"size":3}}`)
	other := strings.Replace(el, "cl1", "cl2", 1)
	_, err := e.svc.Put(t.Context(), req(t, id, `{"location":"local","extendedLocation":`+other+`,"properties":{"size":4}}`))
	checkError(t, "Put(another extendedLocation)", err, http.StatusBadRequest, "InvalidRequestContent", "extendedLocation")
	if r := e.mustGet(t, id); r.Properties["size"] != float64(3) || !strings.EqualFold(string(r.ExtendedLocation), el) {
		t.Errorf("the refused PUT changed the widget: %v %s", r.Properties, r.ExtendedLocation)
	}
}
