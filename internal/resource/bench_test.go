package resource_test

import (
	"testing"
)

// BenchmarkPutGet measures the framework's own cost around the store: a
// PUT that replaces a synchronous widget and a GET of it.
func BenchmarkPutGet(b *testing.B) {
	e := newEnv(b)
	e.putGroup(b, "rg")
	id := widgetID("rg", "bench")
	body := `{"location":"local","tags":{"env":"bench"},"properties":{"size":3,"color":"red"}}`
	e.put(b, id, body)
	ctx := b.Context()
	put, get := req(b, id, body), req(b, id, "")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.svc.Put(ctx, put); err != nil {
			b.Fatalf("Put: %v", err)
		}
		if _, err := e.svc.Get(ctx, get); err != nil {
			b.Fatalf("Get: %v", err)
		}
	}
}
