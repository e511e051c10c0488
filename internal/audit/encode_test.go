package audit

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// appendJSON must write exactly what json.Marshal writes: the stored bytes
// are what the chain hashes.
func checkAppendJSON(t *testing.T, s storedEvent) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.appendJSON(nil); string(got) != string(want) {
		t.Fatalf("appendJSON:\n got %s\nwant %s", got, want)
	}
}

func TestAppendJSON(t *testing.T) {
	sub := time.Date(2026, 12, 6, 8, 0, 0, 1, time.UTC)
	info := EventInfo{Time: sub, Caller: "user@citadel.local", Claims: map[string]string{"oid": "o", "tid": "t"},
		ClientIP: "10.0.0.7", Method: "PUT", OperationName: "Microsoft.Resources/subscriptions/resourceGroups/write",
		ResourceID: "/subscriptions/s/resourceGroups/rg", Status: StatusSucceeded, StatusCode: 201, TenantID: "t"}
	started := info
	started.Status, started.StatusCode, started.Level, started.Scope = StatusStarted, 0, LevelWarning, "/subscriptions/s"
	for name, s := range map[string]storedEvent{
		"empty":      {},
		"realistic":  NewEvent(info).store(),
		"overridden": NewEvent(started).store(),
		"escapes": {Caller: "a\"b\\c\b\f\n\r\t\x01\x1f\x7f<>&\u2028\u2029é\xff\xc3", EventDataID: "<id>",
			Claims: map[string]string{"z": "1", "a&": "\n", "": ""}, Properties: map[string]string{"m": "x"}},
		"overrides": {EventDataID: "e", Time: sub, Submitted: &sub, HTTPRequest: HTTPRequest{Method: "PUT"},
			Overrides: map[string]*string{"level": new("Warning"), "properties.entity": nil}},
		"zero time, some request": {HTTPRequest: HTTPRequest{ClientIPAddress: "::1"}, Time: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
	} {
		t.Run(name, func(t *testing.T) { checkAppendJSON(t, s) })
	}
}

// A field added to storedEvent and not to appendJSON fails here: every
// field is set, by reflection, to a value that is not empty.
func TestAppendJSONEveryField(t *testing.T) {
	var s storedEvent
	fill(t, reflect.ValueOf(&s).Elem())
	checkAppendJSON(t, s)
}

func fill(t *testing.T, v reflect.Value) {
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 12, 6, 8, 0, 0, 1, time.UTC)))
	case v.Kind() == reflect.String:
		v.SetString("<" + v.Type().String() + ">")
	case v.Kind() == reflect.Struct:
		for i := range v.NumField() {
			fill(t, v.Field(i))
		}
	case v.Kind() == reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem())
	case v.Kind() == reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for _, k := range []string{"b", "a"} {
			e := reflect.New(v.Type().Elem()).Elem()
			fill(t, e)
			v.SetMapIndex(reflect.ValueOf(k), e)
		}
	default:
		t.Fatalf("storedEvent has a field of kind %s, which fill (and maybe appendJSON) does not know", v.Kind())
	}
}

func FuzzAppendStoredEvent(f *testing.F) {
	f.Add("user@citadel.local", "oid", "o1", "d", "e1", "Microsoft.X/y/write", "statusMessage", "{\"a\":1}", "level", false, int64(1764979200123456789), int64(0), "PUT")
	f.Add("\xff<\u2028", "", "", "\x00", "", "", "", "", "properties.entity", true, int64(-1), int64(5), "")
	f.Fuzz(func(t *testing.T, caller, claimK, claimV, desc, id, op, propK, propV, override string, overrideNil bool, nanos, subDelta int64, method string) {
		s := storedEvent{Caller: caller, Description: desc, EventDataID: id, OperationName: op, ResourceID: op + id,
			Role: claimV, Status: propV, SubStatus: propK, TenantID: claimK, Time: canonicalTime(time.Unix(0, nanos)),
			HTTPRequest: HTTPRequest{Method: method, ClientIPAddress: desc, ClientRequestID: caller}}
		if claimK != "" || claimV != "" {
			s.Claims = map[string]string{claimK: claimV, "oid": caller}
		}
		if propK != "" {
			s.Properties = map[string]string{propK: propV}
		}
		if override != "" {
			s.Overrides = map[string]*string{override: nil, override + "x": &propV}
			if !overrideNil {
				s.Overrides[override] = &claimV
			}
		}
		if subDelta != 0 {
			sub := canonicalTime(s.Time.Add(time.Duration(subDelta)))
			s.Submitted = &sub
		}
		checkAppendJSON(t, s)
	})
}
