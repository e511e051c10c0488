package armexpr

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ParseJSON decodes a JSON document the way ARM accepts templates,
// parameter files and json() arguments: // and /* */ comments and trailing
// commas are allowed, a UTF-8 byte order mark is skipped, integers become
// int64 and other numbers float64. A repeated object key keeps its last
// value.
func ParseJSON(data []byte) (any, error) {
	d := &decoder{src: data}
	if len(data) >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF {
		d.pos = 3
	}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if err := d.space(); err != nil {
		return nil, err
	}
	if d.pos < len(d.src) {
		return nil, d.fail("unexpected %q after the value", d.src[d.pos])
	}
	return v, nil
}

// maxJSONDepth bounds nesting (ARM's own limit for objects is 128).
const maxJSONDepth = 512

type decoder struct {
	src []byte
	pos int
}

// fail reports an error at the current line and column.
func (d *decoder) fail(format string, args ...any) error {
	line, col := 1, 1
	for _, c := range d.src[:min(d.pos, len(d.src))] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return fmt.Errorf("invalid JSON at line %d, column %d: %s", line, col, fmt.Sprintf(format, args...))
}

// space skips whitespace and comments.
func (d *decoder) space() error {
	for d.pos < len(d.src) {
		switch c := d.src[d.pos]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			d.pos++
		case c == '/' && d.pos+1 < len(d.src) && d.src[d.pos+1] == '/':
			for d.pos < len(d.src) && d.src[d.pos] != '\n' {
				d.pos++
			}
		case c == '/' && d.pos+1 < len(d.src) && d.src[d.pos+1] == '*':
			end := strings.Index(string(d.src[d.pos+2:]), "*/")
			if end < 0 {
				return d.fail("the comment is not closed")
			}
			d.pos += end + 4
		default:
			return nil
		}
	}
	return nil
}

func (d *decoder) value(depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, d.fail("the document is nested more than %d deep", maxJSONDepth)
	}
	if err := d.space(); err != nil {
		return nil, err
	}
	if d.pos >= len(d.src) {
		return nil, d.fail("expected a value but the document ended")
	}
	switch c := d.src[d.pos]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		return d.string()
	case c == '-' || c >= '0' && c <= '9':
		return d.number()
	case d.word("true"):
		return true, nil
	case d.word("false"):
		return false, nil
	case d.word("null"):
		return nil, nil
	default:
		return nil, d.fail("unexpected %q", c)
	}
}

// word consumes a keyword.
func (d *decoder) word(w string) bool {
	if !strings.HasPrefix(string(d.src[d.pos:min(len(d.src), d.pos+len(w))]), w) {
		return false
	}
	d.pos += len(w)
	return true
}

func (d *decoder) object(depth int) (any, error) {
	d.pos++ // {
	obj := map[string]any{}
	for {
		if err := d.space(); err != nil {
			return nil, err
		}
		if d.pos < len(d.src) && d.src[d.pos] == '}' {
			d.pos++
			return obj, nil
		}
		if d.pos >= len(d.src) || d.src[d.pos] != '"' {
			return nil, d.fail("expected a property name or '}'")
		}
		key, err := d.string()
		if err != nil {
			return nil, err
		}
		if err := d.space(); err != nil {
			return nil, err
		}
		if d.pos >= len(d.src) || d.src[d.pos] != ':' {
			return nil, d.fail("expected ':' after the property name %q", key)
		}
		d.pos++
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		obj[key.(string)] = v
		if err := d.space(); err != nil {
			return nil, err
		}
		switch {
		case d.pos < len(d.src) && d.src[d.pos] == ',':
			d.pos++
		case d.pos < len(d.src) && d.src[d.pos] == '}':
			d.pos++
			return obj, nil
		default:
			return nil, d.fail("expected ',' or '}' in the object")
		}
	}
}

func (d *decoder) array(depth int) (any, error) {
	d.pos++ // [
	arr := []any{}
	for {
		if err := d.space(); err != nil {
			return nil, err
		}
		if d.pos < len(d.src) && d.src[d.pos] == ']' {
			d.pos++
			return arr, nil
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		if err := d.space(); err != nil {
			return nil, err
		}
		switch {
		case d.pos < len(d.src) && d.src[d.pos] == ',':
			d.pos++
		case d.pos < len(d.src) && d.src[d.pos] == ']':
			d.pos++
			return arr, nil
		default:
			return nil, d.fail("expected ',' or ']' in the array")
		}
	}
}

func (d *decoder) string() (any, error) {
	d.pos++ // opening quote
	var b []byte
	for d.pos < len(d.src) {
		c := d.src[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(b), nil
		case c == '\\':
			if d.pos+1 >= len(d.src) {
				return nil, d.fail("the string is not terminated")
			}
			esc := d.src[d.pos+1]
			d.pos += 2
			switch esc {
			case '"', '\\', '/':
				b = append(b, esc)
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r, err := d.unicodeEscape()
				if err != nil {
					return nil, err
				}
				b = utf8.AppendRune(b, r)
			default:
				return nil, d.fail("invalid escape '\\%c'", esc)
			}
		default:
			r, n := utf8.DecodeRune(d.src[d.pos:])
			b = utf8.AppendRune(b, r) // invalid UTF-8 becomes U+FFFD
			d.pos += n
		}
	}
	return nil, d.fail("the string is not terminated")
}

// unicodeEscape reads the XXXX of \uXXXX (and a low surrogate after it).
func (d *decoder) unicodeEscape() (rune, error) {
	hex4 := func() (rune, bool) {
		if d.pos+4 > len(d.src) {
			return 0, false
		}
		n, err := strconv.ParseUint(string(d.src[d.pos:d.pos+4]), 16, 32)
		if err != nil {
			return 0, false
		}
		d.pos += 4
		return rune(n), true
	}
	r, ok := hex4()
	if !ok {
		return 0, d.fail("invalid \\u escape")
	}
	if utf16.IsSurrogate(r) && d.pos+2 <= len(d.src) && d.src[d.pos] == '\\' && d.src[d.pos+1] == 'u' {
		save := d.pos
		d.pos += 2
		if lo, ok := hex4(); ok {
			if pair := utf16.DecodeRune(r, lo); pair != utf8.RuneError {
				return pair, nil
			}
		}
		d.pos = save
	}
	return r, nil
}

func (d *decoder) number() (any, error) {
	start := d.pos
	integer := true
	if d.src[d.pos] == '-' {
		d.pos++
	}
	for ; d.pos < len(d.src) && strings.IndexByte("0123456789.eE+-", d.src[d.pos]) >= 0; d.pos++ {
		if c := d.src[d.pos]; c < '0' || c > '9' {
			integer = false
		}
	}
	s := string(d.src[start:d.pos])
	if integer {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !isRangeError(err) {
		d.pos = start
		return nil, d.fail("invalid number %q", s)
	}
	return f, nil
}

func isRangeError(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// marshal writes a value as compact JSON, quoting strings with quote: '"'
// for string() and dataUri(), '\” where ARM prints values inside text
// (format(), concat()). Object keys are sorted.
func marshal(v any, quote byte) string {
	var b strings.Builder
	writeJSON(&b, v, quote)
	return b.String()
}

func writeJSON(b *strings.Builder, v any, quote byte) {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	case float64:
		b.WriteString(formatFloat(v))
	case string:
		writeQuoted(b, v, quote)
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, e, quote)
		}
		b.WriteByte(']')
	case map[string]any:
		b.WriteByte('{')
		for i, k := range slices.Sorted(maps.Keys(v)) {
			if i > 0 {
				b.WriteByte(',')
			}
			writeQuoted(b, k, quote)
			b.WriteByte(':')
			writeJSON(b, v[k], quote)
		}
		b.WriteByte('}')
	default:
		writeQuoted(b, fmt.Sprint(v), quote)
	}
}

func writeQuoted(b *strings.Builder, s string, quote byte) {
	b.WriteByte(quote)
	for _, r := range s {
		switch {
		case r == rune(quote) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(quote)
}

// formatFloat prints a float as .NET does in JSON: integral values keep a
// ".0", large and tiny ones use an exponent.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if strings.Contains(s, "e") {
		return strings.ToUpper(s)
	}
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}
