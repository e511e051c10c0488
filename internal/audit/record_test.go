package audit_test

import (
	"crypto/sha256"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/citadel-cloud/citadel/internal/audit"
)

// TestRecordEncode pins the bytes a record's hash covers: the event's
// facts, with every field NewEvent derives left out, and an override for
// each derivable field whose value is not the derived one.
func TestRecordEncode(t *testing.T) {
	at := time.Date(2026, 1, 2, 4, 4, 5, 600, time.FixedZone("", 3600))
	tests := []struct {
		name string
		e    audit.Event
		want string
	}{
		{"built by NewEvent", audit.NewEvent(audit.EventInfo{
			Time: at, EventDataID: "e1", CorrelationID: "c1", OperationName: "Microsoft.Resources/subscriptions/resourceGroups/write",
			Caller: "alice", Claims: map[string]string{"oid": "o1"}, Method: "PUT", ClientIP: "10.0.0.1",
			ResourceID: "/subscriptions/s1/resourceGroups/rg1", Status: audit.StatusSucceeded, StatusCode: 201,
			Properties: map[string]string{"requestbody": "{}"},
		}), `{"caller":"alice","claims":{"oid":"o1"},"correlationId":"c1","eventDataId":"e1",` +
			`"eventTimestamp":"2026-01-02T03:04:05.0000006Z","httpRequest":{"clientIpAddress":"10.0.0.1","method":"PUT"},` +
			`"operationName":"Microsoft.Resources/subscriptions/resourceGroups/write","properties":{"requestbody":"{}"},` +
			`"resourceId":"/subscriptions/s1/resourceGroups/rg1","status":"Succeeded","subStatus":"Created"}`},
		{"built by hand", audit.Event{
			Caller:         "alice",
			Claims:         map[string]string{"oid": "o1", "appid": "a1", "Z": "z"},
			EventTimestamp: at,
			Properties:     map[string]string{"b": "<&>", "a": "ü"},
			Status:         audit.LocalizableString{Value: "Succeeded", LocalizedValue: "Succeeded"},
		}, `{"caller":"alice","claims":{"Z":"z","appid":"a1","oid":"o1"},"eventDataId":"","eventTimestamp":"2026-01-02T03:04:05.0000006Z",` +
			`"submissionTimestamp":"0001-01-01T00:00:00Z","properties":{"a":"ü","b":"\u003c\u0026\u003e"},"status":"Succeeded",` +
			`"overrides":{"category.value":"","channels":"","eventName.value":"","id":"","level":""}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := audit.Record{Seq: 7, Prev: audit.Digest{0xab}, Event: tt.e}
			want := `{"seq":7,"prev":"ab00000000000000000000000000000000000000000000000000000000000000","event":` + tt.want + `}`
			if got := string(r.Encode()); got != want {
				t.Errorf("Encode() =\n%s\nwant\n%s", got, want)
			}
			if h, want := r.Hash(), audit.Digest(sha256.Sum256([]byte(want))); h != want {
				t.Errorf("Hash() = %v, want SHA-256 of the encoding %v", h, want)
			}
			if b, err := json.Marshal(r); err != nil || string(b) != want {
				t.Errorf("json.Marshal(Record) = %s, %v; want the canonical encoding", b, err)
			}
			back, err := audit.DecodeRecord([]byte(want))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(audit.Next(r.Prev, r.Seq, tt.e), back, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("decoded event differs (-encoded +decoded):\n%s", diff)
			}
		})
	}
}

// TestRecordRoundTrip checks that decoding an encoding and encoding again
// yields the same bytes, so hashes survive a trip through the store or a file.
func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		e    audit.Event
	}{
		{"realistic", testEvent(3)},
		{"empty", audit.Event{}},
		{"local time", audit.Event{EventTimestamp: time.Date(2026, 6, 1, 12, 0, 0, 1, time.FixedZone("X", -7*3600-1800))}},
		{"monotonic clock", audit.Event{EventTimestamp: time.Now()}},
		{"invalid UTF-8", audit.Event{Caller: "a\xffb", Claims: map[string]string{"k\xfe": "v\xfd", "k\xff": "w"}}},
		{"unrepresentable year", audit.Event{EventTimestamp: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"empty maps", audit.Event{Claims: map[string]string{}, Properties: map[string]string{}}},
		{"escapes", audit.Event{Description: "line\nbreak \"quoted\" \u2028 \x00 \\"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := audit.Record{Seq: 3, Prev: audit.Digest{1, 2, 3}, Event: tt.e}
			enc := r.Encode()
			back, err := audit.DecodeRecord(enc)
			if err != nil {
				t.Fatalf("DecodeRecord(%s) error = %v", enc, err)
			}
			if again := back.Encode(); string(again) != string(enc) {
				t.Errorf("Encode(DecodeRecord(%s)) = %s, want the same bytes", enc, again)
			}
			// Next stores the canonical event, which decodes to itself.
			canon := audit.Next(r.Prev, r.Seq, tt.e)
			if diff := cmp.Diff(canon, back, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("DecodeRecord(Encode(r)) mismatch with Next (-want +got):\n%s", diff)
			}
			if canon.Hash() != r.Hash() {
				t.Errorf("Next(...).Hash() = %v, want %v: canonical form must not change the hash", canon.Hash(), r.Hash())
			}
		})
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	zero := strings.Repeat("0", 64)
	tests := []struct {
		name, in, msg string
	}{
		{"not JSON", `{`, "unexpected EOF"},
		{"no seq", `{"prev":"` + zero + `","event":{}}`, "no seq"},
		{"seq 0", `{"seq":0,"prev":"` + zero + `","event":{}}`, "seq 0"},
		{"negative seq", `{"seq":-1,"prev":"` + zero + `","event":{}}`, "cannot unmarshal"},
		{"float seq", `{"seq":1.5,"prev":"` + zero + `","event":{}}`, "cannot unmarshal"},
		{"no prev", `{"seq":1,"event":{}}`, "no prev"},
		{"short prev", `{"seq":1,"prev":"00","event":{}}`, "want 64 hex digits"},
		{"bad hex", `{"seq":1,"prev":"` + strings.Repeat("zz", 32) + `","event":{}}`, "invalid byte"},
		{"no event", `{"seq":1,"prev":"` + zero + `"}`, "no event"},
		{"unknown field", `{"seq":1,"prev":"` + zero + `","event":{},"x":1}`, "unknown field"},
		{"unknown event field", `{"seq":1,"prev":"` + zero + `","event":{"x":1}}`, "unknown field"},
		{"bad time", `{"seq":1,"prev":"` + zero + `","event":{"eventTimestamp":"yesterday"}}`, "cannot parse"},
		{"trailing data", `{"seq":1,"prev":"` + zero + `","event":{}} {}`, "data after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := audit.DecodeRecord([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("DecodeRecord(%s) error = %v, want one containing %q", tt.in, err, tt.msg)
			}
		})
	}
}

func TestHeadAppend(t *testing.T) {
	var h audit.Head
	var prev audit.Record
	for i := 1; i <= 3; i++ {
		r, next := h.Append(testEvent(i))
		switch {
		case r.Seq != uint64(i):
			t.Errorf("Append #%d: seq %d, want %d", i, r.Seq, i)
		case i == 1 && !r.Prev.IsZero():
			t.Errorf("Append #1: prev %v, want zero", r.Prev)
		case i > 1 && r.Prev != prev.Hash():
			t.Errorf("Append #%d: prev %v, want hash of record %d %v", i, r.Prev, i-1, prev.Hash())
		case next != (audit.Head{Seq: r.Seq, Hash: r.Hash()}):
			t.Errorf("Append #%d: head %v, want %d:%v", i, next, r.Seq, r.Hash())
		}
		if want := audit.Next(h.Hash, h.Seq+1, testEvent(i)); r.Hash() != want.Hash() {
			t.Errorf("Head.Append and Next disagree at %d", i)
		}
		h, prev = next, r
	}
}

func TestDigestText(t *testing.T) {
	d := audit.Digest{0xde, 0xad}
	b, err := json.Marshal(audit.Head{Seq: 2, Hash: d})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"seq":2,"hash":"dead` + strings.Repeat("0", 60) + `"}`
	if string(b) != want {
		t.Errorf("json.Marshal(Head) = %s, want %s", b, want)
	}
	var h audit.Head
	if err := json.Unmarshal(b, &h); err != nil || h.Hash != d {
		t.Errorf("json.Unmarshal(%s) = %v, %v; want hash %v", b, h, err, d)
	}
}

// TestDecodeRecordOverrides checks the overrides of a stored event: an
// unknown one or a null for a field is an error, a null property is one the
// event does not have, and an override equal to its derivation decodes but
// is not canonical, so Verify reports the line as edited.
func TestDecodeRecordOverrides(t *testing.T) {
	const head = `{"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","event":`
	base := `"eventDataId":"e1","eventTimestamp":"2026-01-02T03:04:05Z","operationName":"A/b/write","resourceId":"/subscriptions/s1","status":"Succeeded","subStatus":"OK"`
	tests := []struct {
		name, overrides string
		wantErr         string
		canonical       bool
		check           func(audit.Event) string
	}{
		{"none", ``, "", true, func(e audit.Event) string {
			if e.Properties["statusCode"] != "OK" || e.SubStatus.LocalizedValue != "OK (HTTP Status Code: 200)" || e.Level != "Informational" {
				return "derived fields not filled in"
			}
			return ""
		}},
		{"unknown", `"nope":"x"`, `unknown override "nope"`, false, nil},
		{"unknown property", `"properties.nope":"x"`, `unknown override "properties.nope"`, false, nil},
		{"null field", `"level":null`, "override level: null", false, nil},
		{"absent property", `"properties.statusCode":null`, "", true, func(e audit.Event) string {
			if _, ok := e.Properties["statusCode"]; ok {
				return "statusCode present"
			}
			return ""
		}},
		{"different", `"level":"Warning"`, "", true, func(e audit.Event) string {
			if e.Level != "Warning" {
				return "level " + e.Level
			}
			return ""
		}},
		{"equal to derived", `"level":"Informational"`, "", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := head + `{` + base
			if tt.overrides != "" {
				line += `,"overrides":{` + tt.overrides + `}`
			}
			line += `}}`
			r, err := audit.DecodeRecord([]byte(line))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("DecodeRecord: %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := string(r.Encode()) == line; got != tt.canonical {
				t.Errorf("canonical = %v, want %v: %s", got, tt.canonical, r.Encode())
			}
			if tt.check != nil {
				if msg := tt.check(r.Event); msg != "" {
					t.Error(msg)
				}
			}
		})
	}
}
