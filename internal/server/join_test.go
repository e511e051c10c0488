package server

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseJoinToken(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	tests := []struct {
		token   string
		wantErr bool
	}{
		{"citadel1::" + hash + "::s3cret", false},
		{"  citadel1::" + hash + "::s3cret\n", false},
		{"citadel1::" + hash + "::", true},
		{"citadel1::abc::s3cret", true},
		{"K10" + hash + "::server:s3cret", true},
		{"", true},
	}
	for _, tt := range tests {
		gotHash, secret, err := parseJoinToken(tt.token)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseJoinToken(%q) = %v, want error %v", tt.token, err, tt.wantErr)
		}
		if err == nil && (gotHash != hash || secret != "s3cret") {
			t.Errorf("parseJoinToken(%q) = %q, %q, want %q, s3cret", tt.token, gotHash, secret, hash)
		}
	}
}

func FuzzParseJoinToken(f *testing.F) {
	f.Add("citadel1::" + strings.Repeat("ab", 32) + "::s3cret")
	f.Add("citadel1::::")
	f.Fuzz(func(t *testing.T, token string) {
		hash, secret, err := parseJoinToken(token)
		if err == nil && (len(hash) != 64 || secret == "") {
			t.Errorf("parseJoinToken(%q) = %q, %q, nil: want a 64-digit hash and a secret", token, hash, secret)
		}
	})
}

// TestJoinRefusesWrongToken checks that the join endpoint refuses a
// missing or wrong token before it touches the store (here: none).
func TestJoinRefusesWrongToken(t *testing.T) {
	token := "citadel1::" + strings.Repeat("ab", 32) + "::right"
	mux := http.NewServeMux()
	(&Server{}).serveJoin(mux, "/nonexistent/ca.crt", token, slog.New(slog.NewTextHandler(t.Output(), nil)))
	for _, auth := range []string{"", "Bearer wrong", "Bearer " + token + "x", token} {
		req := httptest.NewRequest(http.MethodPost, "/citadel/cluster/join", strings.NewReader(`{"name":"x","peerURL":"https://127.0.0.1:1"}`))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("POST /citadel/cluster/join with Authorization %q = %d, want 401", auth, w.Code)
		}
	}
	// No token at all (external etcd): nobody joins.
	mux = http.NewServeMux()
	(&Server{}).serveJoin(mux, "/nonexistent/ca.crt", "", slog.New(slog.NewTextHandler(t.Output(), nil)))
	req := httptest.NewRequest(http.MethodPost, "/citadel/cluster/join", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer ")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("POST /citadel/cluster/join without a cluster token = %d, want 401", w.Code)
	}
}
