package redfishsim_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAuthentication(t *testing.T) {
	_, c := sample(t, nil, nil)
	tests := []struct {
		name   string
		method string
		path   string
		basic  bool
		token  string
		want   int
	}{
		{"service root without credentials", "GET", "/redfish/v1/", false, "", http.StatusOK},
		{"version document without credentials", "GET", "/redfish", false, "", http.StatusOK},
		{"system without credentials", "GET", system, false, "", http.StatusUnauthorized},
		{"unknown path without credentials", "GET", "/redfish/v1/Nope", false, "", http.StatusUnauthorized},
		{"system with Basic", "GET", system, true, "", http.StatusOK},
		{"system with a made-up token", "GET", system, false, "not-a-token", http.StatusUnauthorized},
		{"reset without credentials", "POST", resetAt, false, "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.basic, c.token = tt.basic, tt.token
			var body any
			if tt.method == "POST" {
				body = map[string]any{"ResetType": "On"}
			}
			resp := c.do(tt.method, tt.path, body)
			if resp.status != tt.want {
				t.Fatalf("%s %s = %d, want %d", tt.method, tt.path, resp.status, tt.want)
			}
			if tt.want == http.StatusUnauthorized {
				if diff := cmp.Diff([]string{"Base.NoValidSession"}, resp.messageIDs()); diff != "" {
					t.Errorf("401 messages (-want +got):\n%s", diff)
				}
			}
		})
	}
	c.basic = false
	if resp := c.do("GET", system, nil, "Authorization", "Basic YWRtaW46d3Jvbmc="); resp.status != http.StatusUnauthorized {
		t.Errorf("GET with a wrong Basic password = %d, want 401", resp.status)
	}
}

func TestSessions(t *testing.T) {
	clk := newClock()
	_, c := sample(t, clk, nil)
	c.basic = false
	const sessions = "/redfish/v1/SessionService/Sessions"

	for _, bad := range []map[string]any{{"UserName": user, "Password": "wrong"}, {"UserName": "root", "Password": password}} {
		if resp := c.do(http.MethodPost, sessions, bad); resp.status != http.StatusUnauthorized {
			t.Errorf("login %v = %d, want 401", bad, resp.status)
		}
	}
	resp := c.do(http.MethodPost, sessions, map[string]any{"UserName": user})
	if diff := cmp.Diff([]string{"Base.CreateFailedMissingReqProperties"}, resp.messageIDs()); resp.status != http.StatusBadRequest || diff != "" {
		t.Errorf("login without a password = %d, messages (-want +got):\n%s", resp.status, diff)
	}

	resp = c.do(http.MethodPost, sessions, map[string]any{"UserName": user, "Password": password})
	if resp.status != http.StatusCreated {
		t.Fatalf("login = %d, want 201\n%s", resp.status, resp.raw)
	}
	token, location := resp.header.Get("X-Auth-Token"), resp.header.Get("Location")
	if token == "" || location == "" {
		t.Fatalf("login headers X-Auth-Token = %q, Location = %q; want both", token, location)
	}
	if got := field(resp.body, "@odata.id"); got != location {
		t.Errorf("session @odata.id = %v, want the Location %s", got, location)
	}
	c.token = token
	if got := field(c.get(location), "UserName"); got != user {
		t.Errorf("session UserName = %v, want %s", got, user)
	}
	if !slices.ContainsFunc(c.get(sessions)["Members"].([]any), func(m any) bool { return field(m.(map[string]any), "@odata.id") == location }) {
		t.Errorf("session collection does not list %s", location)
	}

	// The token lives while it is used within SessionTimeout (1800 s).
	for range 3 {
		clk.Advance(20 * time.Minute)
		c.get(system)
	}
	clk.Advance(31 * time.Minute)
	if resp := c.do(http.MethodGet, system, nil); resp.status != http.StatusUnauthorized {
		t.Errorf("GET with a token idle for 31 min = %d, want 401", resp.status)
	}
	c.token = ""
	c.basic = true
	if resp := c.do(http.MethodGet, location, nil); resp.status != http.StatusNotFound {
		t.Errorf("GET of the expired session = %d, want 404", resp.status)
	}

	// Logout.
	c.basic = false
	resp = c.do(http.MethodPost, sessions, map[string]any{"UserName": user, "Password": password})
	c.token, location = resp.header.Get("X-Auth-Token"), resp.header.Get("Location")
	if resp := c.do(http.MethodDelete, location, nil); resp.status != http.StatusNoContent {
		t.Fatalf("logout = %d, want 204", resp.status)
	}
	if resp := c.do(http.MethodGet, system, nil); resp.status != http.StatusUnauthorized {
		t.Errorf("GET after logout = %d, want 401", resp.status)
	}
}

func TestSessionLimit(t *testing.T) {
	_, c := sample(t, nil, nil)
	const sessions = "/redfish/v1/SessionService/Sessions"
	status := 0
	for range 65 {
		status = c.do(http.MethodPost, sessions, map[string]any{"UserName": user, "Password": password}).status
	}
	if status != http.StatusServiceUnavailable {
		t.Errorf("65th login = %d, want 503", status)
	}
}
