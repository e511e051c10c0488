package redfishsim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/redfishsim"
)

// mockupsDir holds the DMTF mockups of the shared corpus.
const mockupsDir = "../../../shared/corpora/redfish-mockups"

// mockup returns the directory of a DMTF mockup; it skips the test when the
// corpus is missing, except under CI, where that is a failure.
func mockup(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(mockupsDir, name)
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		msg := "the Redfish mockup corpus is missing (shared/corpora/redfish-mockups): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dir
}

// clock is a settable clock for Options.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const (
	user     = "admin"
	password = "s3cret"
)

// testOptions are the options of most tests: credentials, a logger on the
// test output and the given clock.
func testOptions(t testing.TB, c *clock) redfishsim.Options {
	opts := redfishsim.Options{
		Username: user, Password: password,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if c != nil {
		opts.Now = c.Now
	}
	return opts
}

// serve serves b over plain HTTP for the test.
func serve(t testing.TB, b *redfishsim.BMC) *redfishsim.Server {
	t.Helper()
	s, err := redfishsim.Serve(b, false)
	if err != nil {
		t.Fatalf("Serve() error = %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// client sends Redfish requests with plain net/http: Basic auth when basic
// is set, else the session token when there is one.
type client struct {
	t     testing.TB
	base  string
	http  *http.Client
	basic bool
	token string
}

func newClient(t testing.TB, s *redfishsim.Server) *client {
	return &client{t: t, base: s.URL, http: &http.Client{Timeout: 10 * time.Second}, basic: true}
}

// response is an answer with its body decoded when it is JSON.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// do sends a request; body is JSON-encoded unless it is a string, which is
// sent as is. header holds extra name, value pairs.
func (c *client) do(method, path string, body any, header ...string) response {
	c.t.Helper()
	var r io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(v)
	default:
		data, err := json.Marshal(v)
		if err != nil {
			c.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-Version", "4.0")
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.token != "":
		req.Header.Set("X-Auth-Token", c.token)
	case c.basic:
		req.SetBasicAuth(user, password)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	out := response{status: resp.StatusCode, header: resp.Header, raw: raw}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			c.t.Fatalf("%s %s: body is not a JSON object: %v\n%s", method, path, err, raw)
		}
	}
	return out
}

// get fetches a resource and fails the test unless it answers 200.
func (c *client) get(path string) map[string]any {
	c.t.Helper()
	resp := c.do(http.MethodGet, path, nil)
	if resp.status != http.StatusOK {
		c.t.Fatalf("GET %s = %d, want 200\n%s", path, resp.status, resp.raw)
	}
	return resp.body
}

// messageIDs lists the MessageIds of an error answer without their registry
// version: "Base.PropertyNotWritable".
func (r response) messageIDs() []string {
	e, _ := r.body["error"].(map[string]any)
	infos, _ := e["@Message.ExtendedInfo"].([]any)
	var ids []string
	for _, i := range infos {
		id, _ := i.(map[string]any)["MessageId"].(string)
		parts := strings.Split(id, ".")
		ids = append(ids, parts[0]+"."+parts[len(parts)-1])
	}
	return ids
}

// field walks a decoded JSON object: field(obj, "Boot", "BootSourceOverrideTarget").
func field(obj map[string]any, keys ...string) any {
	var v any = obj
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// sample is a generated BMC with credentials on the given clock.
func sample(t testing.TB, c *clock, mutate func(*redfishsim.Options)) (*redfishsim.BMC, *client) {
	t.Helper()
	opts := testOptions(t, c)
	if mutate != nil {
		mutate(&opts)
	}
	b := redfishsim.New(redfishsim.SampleMachine("SN1234"), opts)
	return b, newClient(t, serve(t, b))
}

const (
	system  = "/redfish/v1/Systems/SN1234"
	resetAt = system + "/Actions/ComputerSystem.Reset"
	cd      = system + "/VirtualMedia/CD1"
)
