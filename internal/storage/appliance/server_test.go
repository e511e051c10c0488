package appliance

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/devicetls"
	"github.com/citadel-cloud/citadel/internal/storage"
)

const testPassword = "s3cret-password"

var (
	keyA = strings.Repeat("a1", 32)
	keyB = strings.Repeat("b2", 32)
)

// testConfig is an appliance on loopback with a fresh data directory.
func testConfig(t testing.TB, driver string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.Driver = driver
	cfg.Password = testPassword
	cfg.SerialNumber = "SA-TEST-1"
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	if driver == "sim" {
		cfg.CapacityMiB = 1024
	}
	return cfg
}

func startService(t testing.TB, cfg Config) *Service {
	t.Helper()
	svc, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return svc
}

// run runs svc until the test ends or stop is called, and returns a
// client of it that uses the configured credentials.
func run(t testing.TB, svc *Service, cfg Config) (c *storage.Client, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- svc.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return dial(t, svc, cfg.Username, cfg.Password), stop
}

func dial(t testing.TB, svc *Service, username, password string) *storage.Client {
	t.Helper()
	conn, err := storage.ParseConnection(svc.ConnectionString())
	if err != nil {
		t.Fatalf("ParseConnection(%q): %v", svc.ConnectionString(), err)
	}
	c, err := storage.Dial(conn, username, password, nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// checkErr reports err unless it is an appliance error with code, or
// nil when code is empty.
func checkErr(t *testing.T, err error, code string) {
	t.Helper()
	switch e, ok := errors.AsType[*storage.Error](err); {
	case code == "" && err != nil:
		t.Fatalf("err = %v, want none", err)
	case code != "" && !ok:
		t.Fatalf("err = %v, want code %s", err, code)
	case code != "" && e.Code != code:
		t.Fatalf("err = %v, want code %s", err, code)
	case code != "" && e.Status != statusOf[code]:
		t.Fatalf("err = %v, want status %d", err, statusOf[code])
	}
}

var statusOf = map[string]int{
	storage.CodeInvalid: 400, storage.CodeUnauthorized: 401, storage.CodeNotFound: 404,
	storage.CodeConflict: 409, storage.CodeInsufficient: 507,
}

// step is one call of a scenario; they run in order, on one appliance.
type step struct {
	name     string
	do       func(ctx context.Context) (any, error)
	want     any    // compared when code is empty
	code     string // the error code wanted
	contains string // in the error message
}

func runSteps(t *testing.T, steps []step) {
	t.Helper()
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			got, err := s.do(t.Context())
			checkErr(t, err, s.code)
			if err != nil && !strings.Contains(err.Error(), s.contains) {
				t.Errorf("err = %v, want it to contain %q", err, s.contains)
			}
			if err == nil {
				if diff := cmp.Diff(s.want, got); diff != "" {
					t.Errorf("result (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func putVolume(c *storage.Client, serial string, size int64) func(context.Context) (any, error) {
	return func(ctx context.Context) (any, error) { return c.PutVolume(ctx, serial, size) }
}

func putExport(c *storage.Client, serial, name, identity, key string) func(context.Context) (any, error) {
	return func(ctx context.Context) (any, error) {
		return c.PutExport(ctx, serial, name, storage.ExportSpec{PSKIdentity: identity, PSK: key})
	}
}

func noValue(f func(context.Context) error) func(context.Context) (any, error) {
	return func(ctx context.Context) (any, error) { return nil, f(ctx) }
}

func vol(serial string, size int64, exports ...storage.Export) storage.Volume {
	return storage.Volume{SerialNumber: serial, SizeMiB: size, Exports: append([]storage.Export{}, exports...)}
}

func export(name, serial, identity string, port int) storage.Export {
	return storage.Export{Name: name, Host: "127.0.0.1", Port: port, ExportName: serial, PSKIdentity: identity}
}

func TestVolumes(t *testing.T) {
	cfg := testConfig(t, "sim")
	c, _ := run(t, startService(t, cfg), cfg)
	runSteps(t, []step{
		{name: "create", do: putVolume(c, "vol-1", 100), want: vol("vol-1", 100)},
		{name: "same size again", do: putVolume(c, "vol-1", 100), want: vol("vol-1", 100)},
		{name: "grow", do: putVolume(c, "vol-1", 200), want: vol("vol-1", 200)},
		{name: "shrink refused", do: putVolume(c, "vol-1", 150), code: storage.CodeConflict, contains: "cannot shrink"},
		{name: "zero size", do: putVolume(c, "vol-2", 0), code: storage.CodeInvalid, contains: "sizeMiB"},
		{name: "invalid serial", do: putVolume(c, "vol_2", 10), code: storage.CodeInvalid, contains: "vol_2"},
		{name: "beyond free space", do: putVolume(c, "vol-2", 2000), code: storage.CodeInsufficient, contains: "1024 MiB free"},
		{name: "thin overcommit", do: putVolume(c, "vol-3", 1000), want: vol("vol-3", 1000)},
		{name: "grow beyond free space", do: putVolume(c, "vol-3", 2025), code: storage.CodeInsufficient},
		{name: "list", do: func(ctx context.Context) (any, error) { return c.Volumes(ctx) },
			want: []storage.Volume{vol("vol-1", 200), vol("vol-3", 1000)}},
		{name: "status", do: func(ctx context.Context) (any, error) { return c.Status(ctx) },
			want: storage.Status{SerialNumber: "SA-TEST-1", Manufacturer: "Citadel", Model: "citadel-nbd", Version: "1.0",
				Driver: "sim", CapacityMiB: 1024, ProvisionedMiB: 1200, Health: storage.HealthAvailable, ExpansionShelves: []storage.Shelf{}}},
		{name: "delete", do: noValue(func(ctx context.Context) error { return c.DeleteVolume(ctx, "vol-1") })},
		{name: "delete absent", do: noValue(func(ctx context.Context) error { return c.DeleteVolume(ctx, "vol-1") })},
		{name: "list after delete", do: func(ctx context.Context) (any, error) { return c.Volumes(ctx) },
			want: []storage.Volume{vol("vol-3", 1000)}},
	})
}

func TestExports(t *testing.T) {
	cfg := testConfig(t, "sim")
	c, _ := run(t, startService(t, cfg), cfg)
	att1 := export("att-1", "vol-1", "host-1", 10809)
	att2 := export("att-2", "vol-1", "host-2", 10810)
	rekeyed := export("att-1", "vol-1", "host-3", 10809)
	runSteps(t, []step{
		{name: "volume", do: putVolume(c, "vol-1", 100), want: vol("vol-1", 100)},
		{name: "export", do: putExport(c, "vol-1", "att-1", "host-1", keyA), want: att1},
		{name: "same key again", do: putExport(c, "vol-1", "att-1", "host-1", keyA), want: att1},
		{name: "another key", do: putExport(c, "vol-1", "att-1", "host-3", keyB), want: rekeyed},
		{name: "second attachment", do: putExport(c, "vol-1", "att-2", "host-2", keyB), want: att2},
		{name: "absent volume", do: putExport(c, "vol-9", "att-1", "host-1", keyA), code: storage.CodeNotFound, contains: "vol-9"},
		{name: "short key", do: putExport(c, "vol-1", "att-3", "host-1", "abcd"), code: storage.CodeInvalid, contains: "psk"},
		{name: "invalid identity", do: putExport(c, "vol-1", "att-3", "host 1", keyA), code: storage.CodeInvalid, contains: "pskIdentity"},
		{name: "invalid name", do: putExport(c, "vol-1", "-att", "host-1", keyA), code: storage.CodeInvalid, contains: "export name"},
		{name: "delete exported volume", do: noValue(func(ctx context.Context) error { return c.DeleteVolume(ctx, "vol-1") }),
			code: storage.CodeConflict, contains: "att-1, att-2"},
		{name: "list", do: func(ctx context.Context) (any, error) { return c.Volumes(ctx) },
			want: []storage.Volume{vol("vol-1", 100, rekeyed, att2)}},
		{name: "delete export", do: noValue(func(ctx context.Context) error { return c.DeleteExport(ctx, "vol-1", "att-1") })},
		{name: "delete export again", do: noValue(func(ctx context.Context) error { return c.DeleteExport(ctx, "vol-1", "att-1") })},
		{name: "delete export of absent volume", do: noValue(func(ctx context.Context) error { return c.DeleteExport(ctx, "vol-9", "att-1") })},
		{name: "freed port given again", do: putExport(c, "vol-1", "att-4", "host-4", keyA), want: export("att-4", "vol-1", "host-4", 10809)},
		{name: "delete the exports", do: noValue(func(ctx context.Context) error {
			return errors.Join(c.DeleteExport(ctx, "vol-1", "att-2"), c.DeleteExport(ctx, "vol-1", "att-4"))
		})},
		{name: "delete volume", do: noValue(func(ctx context.Context) error { return c.DeleteVolume(ctx, "vol-1") })},
	})
}

func TestAuth(t *testing.T) {
	cfg := testConfig(t, "sim")
	svc := startService(t, cfg)
	run(t, svc, cfg)
	for _, tc := range []struct{ name, user, password string }{
		{"wrong password", "admin", "guess"},
		{"wrong user", "root", testPassword},
		{"empty", "", ""},
		{"password as user", testPassword, "admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := dial(t, svc, tc.user, tc.password).Status(t.Context())
			checkErr(t, err, storage.CodeUnauthorized)
		})
	}
	t.Run("no credentials", func(t *testing.T) {
		conn, err := storage.ParseConnection(svc.ConnectionString())
		if err != nil {
			t.Fatal(err)
		}
		tlsCfg, err := devicetls.Trust{Fingerprint: conn.Trust.Fingerprint}.ClientConfig()
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
		resp, err := hc.Get(conn.Endpoint + "/v1/volumes")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("GET without credentials = %d, WWW-Authenticate %q; want 401 with a challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
}

func TestCommands(t *testing.T) {
	cfg := testConfig(t, "sim")
	cfg.SimUsedFraction = 0.5
	svc := startService(t, cfg)
	c, _ := run(t, svc, cfg)
	ctx := t.Context()
	if _, err := c.PutVolume(ctx, "vol-1", 100); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutVolume(ctx, "vol-2", 50); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutExport(ctx, "vol-1", "att-1", storage.ExportSpec{PSKIdentity: "host-1", PSK: keyA}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		cmd     storage.Command
		code    string
		exit    int
		want    []string // in the output, or in the error message
		notWant []string
	}{
		{name: "capacity", cmd: storage.Command{Command: "capacity"},
			want: []string{"capacity     1024 MiB", "used         75 MiB", "provisioned  150 MiB", "free         949 MiB"}},
		{name: "health", cmd: storage.Command{Command: "health"}, want: []string{"Available"}},
		{name: "version", cmd: storage.Command{Command: "version"}, want: []string{"Citadel", "citadel-nbd", "1.0", "sim"}},
		{name: "volumes", cmd: storage.Command{Command: "volumes"}, want: []string{"vol-1   100       50             1", "vol-2   50        25             0"}},
		{name: "one volume", cmd: storage.Command{Command: "volumes", Arguments: []string{"vol-2"}}, want: []string{"vol-2"}, notWant: []string{"vol-1"}},
		{name: "absent volume", cmd: storage.Command{Command: "volumes", Arguments: []string{"vol-9"}}, exit: 1, want: []string{`no volume "vol-9"`}},
		{name: "exports", cmd: storage.Command{Command: "exports"}, want: []string{"vol-1", "att-1", "127.0.0.1:10809", "host-1"}},
		{name: "not allowed", cmd: storage.Command{Command: "rm", Arguments: []string{"-rf", "/"}}, code: storage.CodeInvalid,
			want: []string{`"rm" is not allowed`, "capacity, exports, health, version, volumes"}},
		{name: "arguments refused", cmd: storage.Command{Command: "capacity", Arguments: []string{"x"}}, code: storage.CodeInvalid, want: []string{"no arguments"}},
		{name: "two volumes", cmd: storage.Command{Command: "volumes", Arguments: []string{"vol-1", "vol-2"}}, code: storage.CodeInvalid, want: []string{"at most one"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Run(t.Context(), tc.cmd)
			checkErr(t, err, tc.code)
			text := res.Output
			if err != nil {
				text = err.Error()
			}
			if res.ExitCode != tc.exit {
				t.Errorf("Run(%v) exit code = %d, want %d", tc.cmd, res.ExitCode, tc.exit)
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("Run(%v) = %q, want it to contain %q", tc.cmd, text, w)
				}
			}
			for _, w := range append(tc.notWant, keyA, strings.ToUpper(keyA)) {
				if strings.Contains(text, w) {
					t.Errorf("Run(%v) = %q, want no %q in it", tc.cmd, text, w)
				}
			}
		})
	}
	t.Run("degraded", func(t *testing.T) {
		svc.driver.(*Sim).SetDegraded("expansion shelf 2 lost power")
		res, err := c.Run(t.Context(), storage.Command{Command: "health"})
		if err != nil || res.Output != "Degraded: expansion shelf 2 lost power\n" {
			t.Errorf("Run(health) = %q, %v; want Degraded with the reason", res.Output, err)
		}
		st, err := c.Status(t.Context())
		if err != nil || st.Health != storage.HealthDegraded || st.HealthMessage != "expansion shelf 2 lost power" {
			t.Errorf("Status() = %s %q, %v; want Degraded with the reason", st.Health, st.HealthMessage, err)
		}
	})
}

// clock is a settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestVendorManagement(t *testing.T) {
	cfg := testConfig(t, "sim")
	svc := startService(t, cfg)
	clk := &clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	svc.server.now = clk.Now
	c, _ := run(t, svc, cfg)
	until := clk.Now().Add(time.Hour)
	set := func(vm storage.VendorManagement) func(context.Context) (any, error) {
		return func(ctx context.Context) (any, error) {
			st, err := c.SetVendorManagement(ctx, vm)
			return st.VendorManagement, err
		}
	}
	get := func(ctx context.Context) (any, error) {
		st, err := c.Status(ctx)
		return st.VendorManagement, err
	}
	runSteps(t, []step{
		{name: "off at first", do: get, want: storage.VendorManagement{}},
		{name: "enable for an hour", do: set(storage.VendorManagement{Enabled: true, Until: until}),
			want: storage.VendorManagement{Enabled: true, Until: until}},
		{name: "still on after 59 minutes", do: func(ctx context.Context) (any, error) { clk.Add(59 * time.Minute); return get(ctx) },
			want: storage.VendorManagement{Enabled: true, Until: until}},
		{name: "off once until passed", do: func(ctx context.Context) (any, error) { clk.Add(time.Minute); return get(ctx) },
			want: storage.VendorManagement{Until: until}},
		{name: "enable until the past", do: set(storage.VendorManagement{Enabled: true, Until: until}), code: storage.CodeInvalid, contains: "future"},
		{name: "enable without until", do: set(storage.VendorManagement{Enabled: true}), code: storage.CodeInvalid},
		{name: "disable", do: set(storage.VendorManagement{Enabled: false, Until: until.Add(time.Hour)}), want: storage.VendorManagement{}},
	})
}

// newTestServer is a Server over a sim appliance of 1 PiB holding vol-1,
// for calls without the network.
func newTestServer(t testing.TB) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Password, cfg.SerialNumber = testPassword, "SA-TEST-1"
	sim := NewSim(SimConfig{CapacityMiB: maxVolumeMiB, Host: "127.0.0.1", Ports: cfg.NBDPorts})
	if _, err := sim.PutVolume(t.Context(), "vol-1", 10); err != nil {
		t.Fatal(err)
	}
	return NewServer(cfg, sim)
}

func serve(s *Server, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.SetBasicAuth("admin", testPassword)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

func TestDecode(t *testing.T) {
	s := newTestServer(t)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"valid", "PUT", "/v1/volumes/vol-2", `{"sizeMiB": 5}`, 200, `"sizeMiB":5`},
		{"unknown field", "PUT", "/v1/volumes/vol-2", `{"size": 5}`, 400, `unknown field \"size\"`},
		{"wrong type", "PUT", "/v1/volumes/vol-2", `{"sizeMiB": "5"}`, 400, "sizeMiB"},
		{"empty", "PUT", "/v1/volumes/vol-2", ``, 400, "empty"},
		{"two values", "PUT", "/v1/volumes/vol-2", `{"sizeMiB": 5} {}`, 400, "more than one"},
		{"not JSON", "POST", "/v1/commands", `capacity`, 400, "invalid character"},
		{"too large", "POST", "/v1/commands", `{"command": "` + strings.Repeat("x", maxBody) + `"}`, 400, "larger than"},
		{"export unknown field", "PUT", "/v1/volumes/vol-1/exports/a", `{"pskIdentity": "h", "psk": "` + keyA + `", "x": 1}`, 400, `unknown field \"x\"`},
		{"vendor management wrong type", "PUT", "/v1/remote-vendor-management", `{"enabled": "yes"}`, 400, "enabled"},
		{"unknown route", "GET", "/v1/volumes/vol-1", ``, 404, storage.CodeNotFound},
		{"wrong method", "POST", "/v1/status", ``, 404, storage.CodeNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(s, tc.method, tc.path, tc.body)
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("%s %s = %d %s, want %d with %q", tc.method, tc.path, rec.Code, rec.Body, tc.status, tc.want)
			}
		})
	}
}

// FuzzDecodeRequest sends arbitrary bodies to every route that decodes
// one: the answer is never a 5xx, and nothing panics.
func FuzzDecodeRequest(f *testing.F) {
	routes := []struct{ method, path string }{
		{"PUT", "/v1/volumes/vol-1"},
		{"PUT", "/v1/volumes/vol-2"},
		{"PUT", "/v1/volumes/vol-1/exports/att-1"},
		{"POST", "/v1/commands"},
		{"PUT", "/v1/remote-vendor-management"},
	}
	for i, body := range []string{
		`{"sizeMiB": 20}`, `{"sizeMiB": 1073741824}`, `{"sizeMiB": -1}`,
		`{"pskIdentity": "host-1", "psk": "` + keyA + `"}`,
		`{"command": "volumes", "arguments": ["vol-1"]}`, `{"command": "exports"}`,
		`{"enabled": true, "until": "2999-01-01T00:00:00Z"}`, `{"enabled": true, "until": "x"}`,
		``, `null`, `[]`, `{"sizeMiB": 1e400}`, "{\"sizeMiB\": 5}\x00",
	} {
		f.Add(uint8(i), []byte(body))
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		s := newTestServer(t)
		r := routes[int(route)%len(routes)]
		if rec := serve(s, r.method, r.path, string(body)); rec.Code >= 500 {
			t.Errorf("%s %s %q = %d %s, want no 5xx", r.method, r.path, body, rec.Code, rec.Body)
		}
	})
}

func TestPortRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want PortRange
		ok   bool
	}{
		{"10809-11808", PortRange{10809, 11808}, true},
		{"10809 - 10809", PortRange{10809, 10809}, true},
		{"10809", PortRange{}, false},
		{"2-1", PortRange{}, false},
		{"0-10", PortRange{}, false},
		{"1-65536", PortRange{}, false},
		{"a-b", PortRange{}, false},
	} {
		var got PortRange
		err := got.Set(tc.in)
		if (err == nil) != tc.ok || tc.ok && got != tc.want {
			t.Errorf("Set(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	valid := testConfig(t, "sim")
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"valid", func(*Config) {}, ""},
		{"no password", func(c *Config) { c.Password = "" }, "--password"},
		{"bad driver", func(c *Config) { c.Driver = "iscsi" }, "--driver"},
		{"bad serial", func(c *Config) { c.SerialNumber = "" }, "--serial-number"},
		{"sim without capacity", func(c *Config) { c.CapacityMiB = 0 }, "--capacity-mib"},
		{"bad listen", func(c *Config) { c.Listen = "nowhere" }, "--listen"},
		{"bad fraction", func(c *Config) { c.SimUsedFraction = 2 }, "--sim-used-fraction"},
		{"bad nbd host", func(c *Config) { c.NBDHost = "a,b" }, "--nbd-host"},
		{"bad ports", func(c *Config) { c.NBDPorts = PortRange{2, 1} }, "--nbd-ports"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.change(&cfg)
			err := cfg.Validate()
			if got := fmt.Sprint(err); tc.want == "" && err != nil || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
