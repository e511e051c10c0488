package arm

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

const undeserializable = "The request content was invalid and could not be deserialized"

// DecodeStrict decodes a request body into v. Unknown properties are ignored,
// as ARM does; everything else that is wrong is a 400 InvalidRequestContent:
// an empty body, a syntax error (with its byte offset), or a value of the
// wrong type, reported as a FieldError whose Target is the JSON path, e.g.
// "properties.ipPrefixRules[0].sequenceNumber: expected number, got string".
// An *Error returned by a custom UnmarshalJSON passes through unchanged.
func DecodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return Errorf(statusBadRequest, CodeInvalidRequestContent, "%s: the body is empty.", undeserializable)
	}
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	if e, ok := errors.AsType[*json.SyntaxError](err); ok {
		return Errorf(statusBadRequest, CodeInvalidRequestContent, "%s: %v at offset %d.", undeserializable, e, e.Offset)
	}
	if e, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		path := jsonPathAt(data, e.Offset)
		if path == "" {
			path = e.Field
		}
		msg := "expected " + jsonKind(e.Type, e.Value) + ", got " + gotKind(e.Value)
		if path == "" {
			return FieldError("", "%s: %s.", undeserializable, msg)
		}
		return FieldError(path, "%s: %s", path, msg)
	}
	if _, ok := errors.AsType[*json.InvalidUnmarshalError](err); ok {
		return fmt.Errorf("arm: decode: %w", err) // a programming error, not the client's
	}
	return Errorf(statusBadRequest, CodeInvalidRequestContent, "%s: %v.", undeserializable, err)
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// jsonKind names the JSON a Go type wants. got is the UnmarshalTypeError's
// Value: for a number that does not fit ("number 300" into uint8) the range
// is spelled out.
func jsonKind(t reflect.Type, got string) string {
	if t == nil {
		return "a different value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "string"
	}
	number := strings.HasPrefix(got, "number")
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if number {
			shift := 64 - t.Bits()
			return fmt.Sprintf("integer from %d to %d", math.MinInt64>>shift, math.MaxInt64>>shift)
		}
		return "number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if number {
			return "integer from 0 to " + strconv.FormatUint(math.MaxUint64>>(64-t.Bits()), 10)
		}
		return "number"
	case reflect.Float32, reflect.Float64:
		if number {
			return fmt.Sprintf("number within float%d range", t.Bits())
		}
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "base64 string"
		}
		return "array"
	case reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return "a different value"
}

// gotKind names the JSON an UnmarshalTypeError's Value describes: "string",
// "boolean", "array", "object", "number" or the number itself ("300").
func gotKind(v string) string {
	if v == "bool" {
		return "boolean"
	}
	return strings.TrimPrefix(v, "number ")
}

// jsonPathAt returns the path ("properties.rules[1].name") of the innermost
// value of data that covers byte offset-1, which is where encoding/json
// reports a type mismatch: just past a mismatched literal, or just past the
// opening bracket of a mismatched object or array. data must be valid JSON;
// if it is not, jsonPathAt returns "".
func jsonPathAt(data []byte, offset int64) string {
	s := pathScanner{data: data, offset: int(offset)}
	s.value()
	return s.found
}

type pathScanner struct {
	data   []byte
	pos    int
	offset int
	sel    []string // selector of the current child in each open container: ".key" or "[i]"
	found  string
	done   bool
}

func (s *pathScanner) path(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.TrimPrefix(strings.Join(s.sel[:n], ""), ".")
}

func (s *pathScanner) skipSpace() {
	for s.pos < len(s.data) && isJSONSpace(s.data[s.pos]) {
		s.pos++
	}
}

// value scans one value at pos and sets found once the target is known.
func (s *pathScanner) value() {
	s.skipSpace()
	if s.done || s.pos >= len(s.data) {
		s.done = true
		return
	}
	if s.pos >= s.offset { // the enclosing container was the culprit
		s.found, s.done = s.path(len(s.sel)-1), true
		return
	}
	switch s.data[s.pos] {
	case '{':
		s.container('}', true)
	case '[':
		s.container(']', false)
	case '"':
		s.pos = endOfString(s.data, s.pos)
	default:
		for s.pos < len(s.data) && !isJSONSpace(s.data[s.pos]) && !strings.ContainsRune(",:]}", rune(s.data[s.pos])) {
			s.pos++
		}
	}
	if !s.done && s.pos >= s.offset {
		s.found, s.done = s.path(len(s.sel)), true
	}
}

func (s *pathScanner) container(end byte, object bool) {
	s.pos++
	s.sel = append(s.sel, "")
	for i := 0; !s.done; i++ {
		s.skipSpace()
		if s.pos >= len(s.data) {
			s.done = true
			return
		}
		if s.data[s.pos] == end {
			if i == 0 && s.pos >= s.offset { // an empty container
				s.found, s.done = s.path(len(s.sel)-1), true
			}
			s.pos++
			break
		}
		if i > 0 {
			if s.data[s.pos] != ',' {
				s.done = true
				return
			}
			s.pos++
			s.skipSpace()
		}
		if object {
			start := s.pos
			s.pos = endOfString(s.data, s.pos)
			var key string
			if json.Unmarshal(s.data[start:s.pos], &key) != nil {
				s.done = true
				return
			}
			s.sel[len(s.sel)-1] = "." + key
			s.skipSpace()
			if s.pos >= len(s.data) || s.data[s.pos] != ':' {
				s.done = true
				return
			}
			s.pos++
		} else {
			s.sel[len(s.sel)-1] = "[" + strconv.Itoa(i) + "]"
		}
		s.value()
	}
	s.sel = s.sel[:len(s.sel)-1]
}

// endOfString returns the index just past the string literal that starts at
// data[i] (a '"'), or len(data) if it is not closed.
func endOfString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(data)
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// DecodeLenient decodes a body that az 2.45 sends for deployments: its
// template is spliced in as `, template:{...}` (an unquoted key) and may hold
// JSONC comments and trailing commas, which ARM's template engine accepts.
// Outside string literals it quotes a template key that follows '{', '[' or
// ',', strips // and /* */ comments and drops a comma before '}' or ']',
// then decodes as [DecodeStrict]. Byte offsets in syntax errors refer to
// the rewritten body.
func DecodeLenient(data []byte, v any) error {
	return DecodeStrict(lenient(data), v)
}

// lenient rewrites az's JSONC into JSON. It copies string literals verbatim,
// so "http://x" and "template:" inside strings are left alone.
func lenient(data []byte) []byte {
	if bytes.IndexByte(data, '/') < 0 && bytes.IndexByte(data, ',') < 0 && !bytes.Contains(data, []byte("template")) {
		return data
	}
	out := make([]byte, 0, len(data)+2)
	var last byte // last non-space byte copied outside strings
	for i := 0; i < len(data); {
		c := data[i]
		switch {
		case c == '"':
			j := endOfString(data, i)
			out = append(out, data[i:j]...)
			last, i = '"', j
		case c == '/' && i+1 < len(data) && data[i+1] == '/':
			j := bytes.IndexByte(data[i:], '\n')
			if j < 0 {
				j = len(data) - i
			}
			i += j
		case c == '/' && i+1 < len(data) && data[i+1] == '*':
			j := bytes.Index(data[i+2:], []byte("*/"))
			if j < 0 {
				i = len(data)
			} else {
				i += 2 + j + 2
			}
			out = append(out, ' ')
		case c == 't' && (last == '{' || last == '[' || last == ',') && isTemplateKey(data[i:]):
			out = append(out, `"template"`...)
			last, i = '"', i+len("template")
		case c == ',' && closesNext(data[i+1:]):
			i++ // a trailing comma
		default:
			out = append(out, c)
			if !isJSONSpace(c) {
				last = c
			}
			i++
		}
	}
	return out
}

// closesNext reports whether the next token of b, past spaces and
// comments, closes an object or an array.
func closesNext(b []byte) bool {
	for i := 0; i < len(b); {
		switch c := b[i]; {
		case isJSONSpace(c):
			i++
		case c == '/' && i+1 < len(b) && b[i+1] == '/':
			j := bytes.IndexByte(b[i:], '\n')
			if j < 0 {
				return false
			}
			i += j
		case c == '/' && i+1 < len(b) && b[i+1] == '*':
			j := bytes.Index(b[i+2:], []byte("*/"))
			if j < 0 {
				return false
			}
			i += 2 + j + 2
		default:
			return c == '}' || c == ']'
		}
	}
	return false
}

// isTemplateKey reports whether b starts with `template`, optional space and ':'.
func isTemplateKey(b []byte) bool {
	rest, ok := bytes.CutPrefix(b, []byte("template"))
	if !ok {
		return false
	}
	rest = bytes.TrimLeft(rest, " \t\r\n")
	return len(rest) > 0 && rest[0] == ':'
}

// MergePatch applies an RFC 7396 JSON merge patch to target and returns the
// result: members of patch replace those of target, recursively for objects,
// and null members delete. The patch must be a JSON object (a 400
// otherwise); an empty target is treated as {}. Numbers are kept verbatim;
// object members come out sorted by name.
func MergePatch(target, patch []byte) ([]byte, error) {
	var p any
	if err := decodeNumbers(patch, &p); err != nil {
		return nil, err
	}
	if _, ok := p.(map[string]any); !ok {
		return nil, FieldError("", "The patch must be a JSON object.")
	}
	var t any
	if len(bytes.TrimSpace(target)) > 0 {
		if err := decodeNumbers(target, &t); err != nil {
			return nil, errors.New("arm: merge patch: the target is not valid JSON")
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(mergePatch(t, p)); err != nil {
		return nil, fmt.Errorf("arm: merge patch: %w", err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

func mergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = make(map[string]any, len(p))
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergePatch(t[k], v)
	}
	return t
}

// decodeNumbers decodes data like DecodeStrict but keeps numbers as
// json.Number, so a merge patch does not round them through float64.
func decodeNumbers(data []byte, v *any) error {
	if len(bytes.TrimSpace(data)) == 0 || !json.Valid(data) {
		return DecodeStrict(data, v)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}
