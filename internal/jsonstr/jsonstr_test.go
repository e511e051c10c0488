package jsonstr

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// stdlib is what encoding/json writes for s.
func stdlib(t testing.TB, s string, escapeHTML bool) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

func TestAppend(t *testing.T) {
	for _, tc := range []struct {
		name, in    string
		html, plain string
	}{
		{"empty", "", `""`, `""`},
		{"plain", "Ethernet0 up", `"Ethernet0 up"`, `"Ethernet0 up"`},
		{"quotes and backslash", `a"b\c`, `"a\"b\\c"`, `"a\"b\\c"`},
		{"short escapes", "\b\f\n\r\t", `"\b\f\n\r\t"`, `"\b\f\n\r\t"`},
		{"other controls", "\x00\x01\x1f\x7f", `"\u0000\u0001\u001f` + "\x7f" + `"`, `"\u0000\u0001\u001f` + "\x7f" + `"`},
		{"html", "<a & b>", `"\u003ca \u0026 b\u003e"`, `"<a & b>"`},
		{"line separators", "a\u2028b\u2029c", `"a\u2028b\u2029c"`, `"a\u2028b\u2029c"`},
		{"invalid UTF-8", "a\xffb\xc3", `"a\ufffdb\ufffd"`, `"a\ufffdb\ufffd"`},
		{"multibyte", "é日本", `"é日本"`, `"é日本"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, html := range []bool{true, false} {
				want := map[bool]string{true: tc.html, false: tc.plain}[html]
				if got := string(Append(nil, tc.in, html)); got != want {
					t.Errorf("Append(%q, escapeHTML=%v) = %s, want %s", tc.in, html, got, want)
				}
				if std := stdlib(t, tc.in, html); std != want {
					t.Errorf("encoding/json writes %s for %q (escapeHTML=%v), the table says %s", std, tc.in, html, want)
				}
			}
		})
	}
}

func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "plain", "\b\x00<&>\u2028\xff\"\\", "é\xc3"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, escapeHTML bool) {
		if got, want := string(Append(nil, s, escapeHTML)), stdlib(t, s, escapeHTML); got != want {
			t.Fatalf("Append(%q, %v) = %s, encoding/json writes %s", s, escapeHTML, got, want)
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	s := "/subscriptions/6f1c7a0e-58c1-4c5e-9f6e-0a3d2b1c9e8f/resourceGroups/rg/providers/Microsoft.NetworkCloud/virtualMachines/vm-1"
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = Append(buf[:0], s, true)
	}
}
