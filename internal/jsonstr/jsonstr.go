// Package jsonstr writes JSON strings without reflection, escaped exactly
// as encoding/json escapes them, for the encoders that write their bytes
// by hand because the bytes are what they compare or hash: the activity
// log's stored events and a switch's config_db.json.
package jsonstr

import "unicode/utf8"

// Append appends s as a JSON string, escaped as encoding/json escapes it:
// quotes, backslashes and control characters (\b, \f, \n, \r and \t
// short, the rest as \u00XX), U+2028 and U+2029, and each byte of invalid
// UTF-8 as U+FFFD; with escapeHTML also <, > and &, as json.Marshal does
// (an Encoder with SetEscapeHTML(false) does not).
func Append(b []byte, s string, escapeHTML bool) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && (!escapeHTML || c != '<' && c != '>' && c != '&') {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
