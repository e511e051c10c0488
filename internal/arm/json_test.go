package arm

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type testRule struct {
	SequenceNumber int            `json:"sequenceNumber"`
	NetworkPrefix  string         `json:"networkPrefix"`
	Small          uint8          `json:"small"`
	Medium         int32          `json:"medium"`
	At             time.Time      `json:"at"`
	Addr           netip.Addr     `json:"addr"`
	Labels         map[string]int `json:"labels"`
	Grid           [][]int        `json:"grid"`
	Mode           testMode       `json:"mode"`
}

type testBody struct {
	Properties struct {
		IPPrefixRules []testRule `json:"ipPrefixRules"`
		Enabled       bool       `json:"enabled"`
		Count         *float32   `json:"count"`
	} `json:"properties"`
}

// testMode rejects anything but "A" with an *Error, as provider enums do.
type testMode string

func (m *testMode) UnmarshalJSON(b []byte) error {
	if string(b) != `"A"` {
		return FieldError("properties.mode", "mode must be A")
	}
	*m = "A"
	return nil
}

func TestDecodeStrict(t *testing.T) {
	var b testBody
	in := `{"properties":{"ipPrefixRules":[{"sequenceNumber":10,"networkPrefix":"10.0.0.0/8","unknown":{"x":[1]}}],"enabled":true},"extra":1}`
	if err := DecodeStrict([]byte(in), &b); err != nil {
		t.Fatalf("DecodeStrict(%s) = %v", in, err)
	}
	if len(b.Properties.IPPrefixRules) != 1 || b.Properties.IPPrefixRules[0].SequenceNumber != 10 || !b.Properties.Enabled {
		t.Errorf("DecodeStrict(%s) decoded %+v", in, b)
	}
}

func TestDecodeStrictErrors(t *testing.T) {
	const bad = "The request content was invalid and could not be deserialized"
	tests := []struct {
		name   string
		in     string
		code   string
		target string
		msg    string
	}{
		{"empty", "", CodeInvalidRequestContent, "", bad + ": the body is empty."},
		{"blank", " \n\t", CodeInvalidRequestContent, "", bad + ": the body is empty."},
		{"syntax", `{"properties":{"ipPrefixRules":[{"sequenceNumber":1},]}}`, CodeInvalidRequestContent, "",
			bad + ": invalid character ']' looking for beginning of value at offset 54."},
		{"truncated", `{"properties":`, CodeInvalidRequestContent, "", bad + ": unexpected end of JSON input at offset 14."},
		{"trailing", `{} x`, CodeInvalidRequestContent, "", bad + ": invalid character 'x' after top-level value at offset 4."},
		{"string for number", `{"properties":{"ipPrefixRules":[{"sequenceNumber":1},{"sequenceNumber":"x"}]}}`, CodeInvalidRequestContent,
			"properties.ipPrefixRules[1].sequenceNumber", "properties.ipPrefixRules[1].sequenceNumber: expected number, got string"},
		{"first element", `{"properties":{"ipPrefixRules":[{"sequenceNumber":true}]}}`, CodeInvalidRequestContent,
			"properties.ipPrefixRules[0].sequenceNumber", "properties.ipPrefixRules[0].sequenceNumber: expected number, got boolean"},
		{"user's key casing", `{"Properties":{"IPPREFIXRULES":[ {} , { "SequenceNumber" : [1] } ]}}`, CodeInvalidRequestContent,
			"Properties.IPPREFIXRULES[1].SequenceNumber", "Properties.IPPREFIXRULES[1].SequenceNumber: expected number, got array"},
		{"escaped key", `{"prop\u0065rties":{"enabled":"yes"}}`, CodeInvalidRequestContent,
			"properties.enabled", "properties.enabled: expected boolean, got string"},
		{"out of range", `{"properties":{"ipPrefixRules":[{"small":300}]}}`, CodeInvalidRequestContent,
			"properties.ipPrefixRules[0].small", "properties.ipPrefixRules[0].small: expected integer from 0 to 255, got 300"},
		{"fraction", `{"properties":{"ipPrefixRules":[{"medium":1.5}]}}`, CodeInvalidRequestContent,
			"properties.ipPrefixRules[0].medium", "properties.ipPrefixRules[0].medium: expected integer from -2147483648 to 2147483647, got 1.5"},
		{"float range", `{"properties":{"count":1e300}}`, CodeInvalidRequestContent,
			"properties.count", "properties.count: expected number within float32 range, got 1e300"},
		{"map value", `{"properties":{"ipPrefixRules":[{"labels":{"a":1,"b":"two"}}]}}`, CodeInvalidRequestContent,
			"properties.ipPrefixRules[0].labels.b", "properties.ipPrefixRules[0].labels.b: expected number, got string"},
		{"empty key", `{"properties":{"ipPrefixRules":[{"labels":{"":"0"}}]}}`, CodeInvalidRequestContent,
			"properties.ipPrefixRules[0].labels.", "properties.ipPrefixRules[0].labels.: expected number, got string"},
		{"nested arrays", `{"properties":{"ipPrefixRules":[{"grid":[[1],[2,"x"]]}]}}`, CodeInvalidRequestContent,
			"properties.ipPrefixRules[0].grid[1][1]", "properties.ipPrefixRules[0].grid[1][1]: expected number, got string"},
		{"object for array", `{"properties":{"ipPrefixRules":{"a":1}}}`, CodeInvalidRequestContent,
			"properties.ipPrefixRules", "properties.ipPrefixRules: expected array, got object"},
		{"empty object for array", `{"properties":{"ipPrefixRules":{}}}`, CodeInvalidRequestContent,
			"properties.ipPrefixRules", "properties.ipPrefixRules: expected array, got object"},
		{"empty array for object", `{"properties":[]}`, CodeInvalidRequestContent,
			"properties", "properties: expected object, got array"},
		{"number for text", `{"properties":{"ipPrefixRules":[{"addr":5}]}}`, CodeInvalidRequestContent,
			"properties.ipPrefixRules[0].addr", "properties.ipPrefixRules[0].addr: expected string, got number"},
		{"number for time", `{"properties":{"ipPrefixRules":[{"at":5}]}}`, CodeInvalidRequestContent, "",
			bad + ": Time.UnmarshalJSON: input is not a JSON string."},
		{"bad time", `{"properties":{"ipPrefixRules":[{"at":"yesterday"}]}}`, CodeInvalidRequestContent, "",
			bad + `: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006".`},
		{"top level", `[1,2]`, CodeInvalidRequestContent, "", bad + ": expected object, got array."},
		{"custom *Error passes through", `{"properties":{"ipPrefixRules":[{"mode":"B"}]}}`, CodeInvalidRequestContent,
			"properties.mode", "mode must be A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b testBody
			err := DecodeStrict([]byte(tt.in), &b)
			e, ok := errors.AsType[*Error](err)
			if !ok {
				t.Fatalf("DecodeStrict(%s) = %v, want *Error", tt.in, err)
			}
			if e.Status != 400 || e.Code != tt.code || e.Target != tt.target || e.Message != tt.msg {
				t.Errorf("DecodeStrict(%s) = %d %q %q %q\nwant %d %q %q %q", tt.in, e.Status, e.Code, e.Target, e.Message,
					400, tt.code, tt.target, tt.msg)
			}
		})
	}
}

func TestDecodeStrictNotAPointer(t *testing.T) {
	var b testBody
	err := DecodeStrict([]byte(`{}`), b)
	if _, ok := errors.AsType[*Error](err); ok || err == nil {
		t.Errorf("DecodeStrict into a non-pointer = %v, want a plain (internal) error", err)
	}
}

func TestDecodeLenient(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the same value as strict JSON
	}{
		{"strict JSON", `{"a":[1,"x"],"b":null}`, `{"a":[1,"x"],"b":null}`},
		{"az deployment",
			`{"properties": {"mode": "Incremental", template:{"a": "http://x//y", /* c */ "b": 1 // d
}}}`,
			`{"properties":{"mode":"Incremental","template":{"a":"http://x//y","b":1}}}`},
		{"template text in strings is kept",
			`{"properties": {"note": "x, template: y", "mode": "Incremental", template: {"s": "{ template: 1 } /* no */ // no"}}}`,
			`{"properties":{"note":"x, template: y","mode":"Incremental","template":{"s":"{ template: 1 } /* no */ // no"}}}`},
		{"spaces around the key",
			"{\"properties\": {\"mode\": \"Complete\"   ,\n  template \t :\n{}}}",
			`{"properties":{"mode":"Complete","template":{}}}`},
		{"comment before the key",
			`{"properties": {"mode": "Complete", /* the template */ template: {"x": 1}}}`,
			`{"properties":{"mode":"Complete","template":{"x":1}}}`},
		{"first key", `{template: 1}`, `{"template":1}`},
		{"escaped quotes", `{"a": "say \"//hi\" \\", // "odd
"b": "/*"}`, `{"a":"say \"//hi\" \\","b":"/*"}`},
		{"comment with quotes", `{"a": /* "x */ 1 /* it's */}`, `{"a":1}`},
		{"line comment at end", "{\"a\": 1} // done", `{"a":1}`},
		{"comment between tokens keeps them apart", `{"a": [1/**/,2]}`, `{"a":[1,2]}`},
		{"crlf", "{\r\n  // c\r\n  \"a\": 1\r\n}", `{"a":1}`},
		{"trailing commas", `{"a": [1, 2, /* c */], "b": {"c": 1, // d
}, "e": ",]",}`, `{"a":[1,2],"b":{"c":1},"e":",]"}`},
		{"ARM template with comments",
			`{"properties":{"mode":"Incremental", template:{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  // parameters
  "parameters": {"name": {"type": "string", "defaultValue": "[concat('a', '//b')]"}},
  /* resources
     span lines */
  "resources": []
}}}`,
			`{"properties":{"mode":"Incremental","template":{"$schema":"https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#","contentVersion":"1.0.0.0","parameters":{"name":{"type":"string","defaultValue":"[concat('a', '//b')]"}},"resources":[]}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got, want any
			if err := DecodeLenient([]byte(tt.in), &got); err != nil {
				t.Fatalf("DecodeLenient(%s) = %v", tt.in, err)
			}
			if err := json.Unmarshal([]byte(tt.want), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("DecodeLenient(%s) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestDecodeLenientErrors(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"other unquoted key", `{"properties": {"mode": "Incremental", templateLink: {}}}`},
		{"template as a value", `{"a": template}`},
		{"unquoted template not after a separator", `{"a": 1 template: 2}`},
		{"empty after comments", `// nothing`},
		{"unterminated string", `{"a": "b // c}`},
		{"unterminated comment", `{"a": 1 /* }`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			err := DecodeLenient([]byte(tt.in), &v)
			if e, ok := errors.AsType[*Error](err); !ok || e.Code != CodeInvalidRequestContent || e.Status != 400 {
				t.Errorf("DecodeLenient(%s) = %v, want 400 InvalidRequestContent", tt.in, err)
			}
		})
	}
}

func TestMergePatch(t *testing.T) {
	tests := []struct {
		target, patch, want string
	}{
		// RFC 7396 appendix A (results with object members sorted by name).
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`{"e":null}`, `{"a":1}`, `{"a":1,"e":null}`},
		{`[1,2]`, `{"a":"b","c":null}`, `{"a":"b"}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
		// The RFC 7396 section 3 example.
		{`{"title":"Goodbye!","author":{"givenName":"John","familyName":"Doe"},"tags":["example","sample"],"content":"This will be unchanged"}`,
			`{"title":"Hello!","phoneNumber":"+01-123-456-7890","author":{"familyName":null},"tags":["example"]}`,
			`{"author":{"givenName":"John"},"content":"This will be unchanged","phoneNumber":"+01-123-456-7890","tags":["example"],"title":"Hello!"}`},
		// Ours: empty target, numbers kept verbatim, no HTML escaping.
		{``, `{"properties":{"a":1}}`, `{"properties":{"a":1}}`},
		{`{"n":1.0,"big":12345678901234567890}`, `{"m":1e3}`, `{"big":12345678901234567890,"m":1e3,"n":1.0}`},
		{`{"tags":{"a":"1"}}`, `{"tags":{"b":"<&>"}}`, `{"tags":{"a":"1","b":"<&>"}}`},
		{`{"a":1}`, `{}`, `{"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.target+" "+tt.patch, func(t *testing.T) {
			got, err := MergePatch([]byte(tt.target), []byte(tt.patch))
			if err != nil || string(got) != tt.want {
				t.Errorf("MergePatch(%s, %s) = %s, %v; want %s", tt.target, tt.patch, got, err, tt.want)
			}
		})
	}
}

func TestMergePatchErrors(t *testing.T) {
	tests := []struct {
		name, target, patch string
		code                string // "" for an internal (non-*Error) error
	}{
		// RFC 7396 allows these; ARM PATCH bodies must be objects.
		{"array patch", `["a","b"]`, `["c","d"]`, CodeInvalidRequestContent},
		{"array patch on object", `{"a":"b"}`, `["c"]`, CodeInvalidRequestContent},
		{"null patch", `{"a":"foo"}`, `null`, CodeInvalidRequestContent},
		{"string patch", `{"a":"foo"}`, `"bar"`, CodeInvalidRequestContent},
		{"bad patch", `{}`, `{"a":`, CodeInvalidRequestContent},
		{"empty patch", `{}`, ``, CodeInvalidRequestContent},
		{"bad target", `{"a":`, `{}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MergePatch([]byte(tt.target), []byte(tt.patch))
			e, ok := errors.AsType[*Error](err)
			switch {
			case err == nil:
				t.Errorf("MergePatch(%s, %s) = %s, want an error", tt.target, tt.patch, got)
			case tt.code == "" && ok:
				t.Errorf("MergePatch(%s, %s) = %v, want an internal error", tt.target, tt.patch, err)
			case tt.code != "" && (!ok || e.Code != tt.code || e.Status != 400):
				t.Errorf("MergePatch(%s, %s) = %v, want 400 %s", tt.target, tt.patch, err, tt.code)
			}
		})
	}
}

func FuzzDecodeLenient(f *testing.F) {
	for _, s := range []string{
		`{"properties": {"mode": "Incremental", template:{"a": "http://x//y", /* c */ "b": 1 // d
}}}`,
		`{"a":"template:", template: 1}`, `{"a": "\"//"}`, `/* */{}`, `{"a":1}//`, `[1,2,{"b":null}]`, `"x"`, ``, `{`,
		`{"properties":{"ipPrefixRules":[{"sequenceNumber":"x"}]}}`,
		`{"properties":{"ipPrefixRules":[{"labels":{"a":"b"}},{"grid":[[1,{}]]}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var lenient any
		lerr := DecodeLenient(data, &lenient)
		var lb testBody
		lberr := DecodeLenient(data, &lb)
		for _, err := range []error{lerr, lberr} {
			if _, ok := errors.AsType[*Error](err); err != nil && !ok {
				t.Fatalf("DecodeLenient(%q) error %T %v, want *Error", data, err, err)
			}
		}
		if !json.Valid(data) {
			return
		}
		var strict any
		if err := DecodeStrict(data, &strict); errString(err) != errString(lerr) {
			t.Fatalf("valid JSON %q: DecodeStrict = %v, DecodeLenient = %v", data, err, lerr)
		}
		if diff := cmp.Diff(strict, lenient); diff != "" {
			t.Fatalf("valid JSON %q decodes differently (-strict +lenient):\n%s", data, diff)
		}
		var sb testBody
		sberr := DecodeStrict(data, &sb)
		if cmp.Diff(errString(sberr), errString(lberr)) != "" {
			t.Fatalf("valid JSON %q: DecodeStrict = %v, DecodeLenient = %v", data, sberr, lberr)
		}
		if e, ok := errors.AsType[*Error](sberr); ok && e.Target != "" && !strings.HasPrefix(e.Message, e.Target) &&
			e.Message != "mode must be A" {
			t.Fatalf("DecodeStrict(%q) = %q, message does not start with the target", data, e)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func FuzzMergePatch(f *testing.F) {
	for _, tp := range [][2]string{
		{`{"a":"b"}`, `{"a":"c"}`}, {`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`}, {`[1,2]`, `{"a":"b","c":null}`},
		{``, `{}`}, {`{"a":1}`, `[1]`}, {`{`, `{}`}, {`{"a":1.50}`, `{"a":{"b":null},"a":null}`},
	} {
		f.Add([]byte(tp[0]), []byte(tp[1]))
	}
	f.Fuzz(func(t *testing.T, target, patch []byte) {
		got, err := MergePatch(target, patch)
		if err != nil {
			return
		}
		if !json.Valid(got) {
			t.Fatalf("MergePatch(%q, %q) = %q, not valid JSON", target, patch, got)
		}
		again, err := MergePatch(got, patch)
		if err != nil || string(again) != string(got) {
			t.Fatalf("MergePatch is not idempotent: MergePatch(%q, %q) = %q, %v; want %q", got, patch, again, err, got)
		}
	})
}

func BenchmarkDecodeLenient(b *testing.B) {
	body := []byte(`{"properties": {"mode": "Incremental", template:{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "contentVersion": "1.0.0.0",
  // parameters
  "parameters": {"name": {"type": "string", "defaultValue": "[concat('rack', '-1')]"}},
  /* one resource */
  "resources": [{"type": "Microsoft.NetworkCloud/racks", "apiVersion": "2026-07-01", "name": "[parameters('name')]",
    "location": "local", "properties": {"rackLocation": "row 1", "rackSerialNumber": "AA1234", "rackSkuId": "sku"}}]
}}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var v struct {
			Properties struct {
				Mode     string         `json:"mode"`
				Template map[string]any `json:"template"`
			} `json:"properties"`
		}
		if err := DecodeLenient(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}
