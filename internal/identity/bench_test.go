package identity

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkValidate is the per-request cost of authentication in the front
// door for a token seen before (clients reuse a token for its hour).
func BenchmarkValidate(b *testing.B) {
	f := newFixture(b)
	tok := f.mint(b, nil)
	ctx := context.Background()
	if _, err := f.iss.Validate(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.iss.Validate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateParallel(b *testing.B) {
	f := newFixture(b)
	tok := f.mint(b, nil)
	ctx := context.Background()
	if _, err := f.iss.Validate(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := f.iss.Validate(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkValidateUncached is the first validation of a token: RS256
// verification, JSON and claim checks.
func BenchmarkValidateUncached(b *testing.B) {
	f := newFixture(b)
	tok := f.mint(b, nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		f.iss.validated.reset()
		if _, err := f.iss.Validate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

func (c *tokenCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}

// BenchmarkValidateForged is the cost of refusing a token with a bad
// signature (what an attacker can make the server do).
func BenchmarkValidateForged(b *testing.B) {
	f := newFixture(b)
	tok := f.mint(b, nil)
	tok = tok[:len(tok)-4] + "AAAA"
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.iss.Validate(ctx, tok); err == nil {
			b.Fatal("forged token validated")
		}
	}
}

// BenchmarkIssueToken is the cost of minting a service principal's access
// token (claims + RS256 signature), without authenticating the client.
func BenchmarkIssueToken(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	sp, _, err := f.iss.CreateServicePrincipal(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	it, err := f.iss.getSP(ctx, sp.AppID)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.iss.appToken(ctx, &it.Value, "1", "bench", ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenEndpointSecret is a whole client_credentials request with a
// client secret, as az sends it: one store read, one argon2id verification
// (which dominates; see BenchmarkVerifySecret) and the signature.
func BenchmarkTokenEndpointSecret(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	sp, secret, err := f.iss.CreateServicePrincipal(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	body := f.secretForm(sp.AppID, secret).Encode()
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/adfs/oauth2/token", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		f.iss.serveToken(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("token request = %d %s", w.Code, w.Body)
		}
	}
}

// BenchmarkVerifySecret is one argon2id verification (m=19 MiB, t=2, p=1).
func BenchmarkVerifySecret(b *testing.B) {
	ctx := context.Background()
	h, err := hashSecret(ctx, "secret")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := verifySecret(ctx, h, "secret"); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
