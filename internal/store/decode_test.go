package store

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// storedDoc has the kinds of fields stored documents have.
type storedDoc struct {
	Resource struct {
		ID         string            `json:"id"`
		Tags       map[string]string `json:"tags,omitempty"`
		Properties map[string]any    `json:"properties"`
	} `json:"resource"`
	When   time.Time       `json:"when"`
	Until  time.Time       `json:"until,omitzero"`
	Raw    json.RawMessage `json:"raw,omitempty"`
	Count  int64           `json:"count"`
	Ratio  float64         `json:"ratio"`
	Ptr    *string         `json:"ptr,omitempty"`
	List   []string        `json:"list,omitempty"`
	OK     bool            `json:"ok"`
	Nested []storedEntry   `json:"nested,omitempty"`
	storedEntry
}

type storedEntry struct {
	Name  string `json:"name"`
	Cores int    `json:"cores,omitempty"`
}

// FuzzDecodeJSON holds decodeJSON to encoding/json on what the store
// holds: documents written by json.Marshal, decoded untyped and into a
// struct with the kinds of fields records have.
func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		`{"resource":{"id":"/subscriptions/s/resourceGroups/g/providers/Microsoft.NetworkCloud/virtualMachines/v1","tags":{"env":"prod"},` +
			`"properties":{"cpuCores":2,"memorySizeGB":2.5,"powerState":"On","sshPublicKeys":[{"keyData":"ssh-ed25519 AAAA"}],"volumes":[],"hint":null}},` +
			`"when":"2026-12-06T02:01:06.123456Z","raw":{"a":[1,2,{"b":"c"}]},"count":9007199254740993,"ratio":-0.5,"ptr":"p","list":["x","y"],` +
			`"ok":true,"nested":[{"name":"n","cores":4}],"name":"embedded","cores":1}`,
		`{"resource":{"id":"\u003c\u0026\u003e \"q\" \\ \n\t é 𝄞 \u2028","properties":{"big":1e300,"small":-1e-300,"zero":-0,"s":"\ud834\udd1e"}},"when":"2026-12-06T02:01:06+02:00"}`,
		`{"when":"0001-01-01T00:00:00Z","count":-1,"ratio":1.7976931348623157e308,"Name":"case","CORES":3,"unknown":{"x":[true,false,null]}}`,
		`{"count":"not a number","when":"yesterday"}`,
		`[1,"two",{"three":3}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		var v any
		if json.Unmarshal(input, &v) != nil {
			return
		}
		doc := mustJSON(v) // what the store would hold
		var want, got any
		if err := json.Unmarshal(doc, &want); err != nil {
			t.Fatal(err)
		}
		if err := decodeJSON(doc, &got); err != nil {
			t.Fatalf("decodeJSON(%s) = %v; encoding/json decodes it", doc, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeJSON(%s) = %#v, want %#v", doc, got, want)
		}
		var wantDoc, gotDoc storedDoc
		wantErr, gotErr := json.Unmarshal(doc, &wantDoc), decodeJSON(doc, &gotDoc)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("decodeJSON(%s) into a struct: error %v, encoding/json's %v", doc, gotErr, wantErr)
		}
		// What was decoded keeps nothing of the decoder's buffers, which
		// the next decoding writes again.
		var other storedDoc
		decodeJSON(bytes.Repeat([]byte{' '}, len(doc)+1), &other)
		decodeJSON([]byte(`{"resource":{"id":"`+strings.Repeat("x", len(doc))+`"},"raw":[`+strings.Repeat("0,", len(doc))+`0]}`), &other)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeJSON(%s) changed after the next decoding: %#v, want %#v", doc, got, want)
		}
		if wantErr == nil && !reflect.DeepEqual(gotDoc, wantDoc) {
			t.Fatalf("decodeJSON(%s) into a struct = %+v, want %+v", doc, gotDoc, wantDoc)
		}
	})
}

// BenchmarkDecodeJSON decodes a virtual machine's record.
func BenchmarkDecodeJSON(b *testing.B) {
	doc := []byte(`{"resource":{"id":"/subscriptions/3f1c/resourceGroups/bv/providers/Microsoft.NetworkCloud/virtualMachines/b1vm0001","name":"b1vm0001",` +
		`"type":"Microsoft.NetworkCloud/virtualMachines","location":"local","tags":{"env":"prod"},"properties":{"provisioningState":"Succeeded",` +
		`"cpuCores":2,"memorySizeGB":2,"vmImage":"/images/tiny","bootMethod":"UEFI","powerState":"On","detailedStatus":"Running",` +
		`"bareMetalMachineId":"/subscriptions/3f1c/resourceGroups/bv/providers/Microsoft.NetworkCloud/bareMetalMachines/bv-c1-m03",` +
		`"sshPublicKeys":[{"keyData":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1234567890abcdefghijklmnopqrstuvwxyz user@host"}],` +
		`"networkAttachments":[{"attachedNetworkId":"/subscriptions/3f1c/resourceGroups/bv/providers/Microsoft.NetworkCloud/l3Networks/l3",` +
		`"ipAllocationMethod":"Dynamic","ipv4Address":"10.2.0.9","defaultGateway":"True","networkAttachmentName":"eth1"}],` +
		`"storageProfile":{"osDisk":{"createOption":"Ephemeral","deleteOption":"Delete","diskSizeGB":10}}}},` +
		`"when":"2026-12-06T02:01:06.123456Z","name":"b1vm0001"}`)
	for _, c := range []struct {
		name   string
		decode func([]byte, any) error
	}{{"encoding-json", json.Unmarshal}, {"decodeJSON", decodeJSON}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var d storedDoc
				if err := c.decode(doc, &d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
