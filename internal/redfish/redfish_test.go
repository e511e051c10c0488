package redfish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	rackSystem  = "/redfish/v1/Systems/437XR1138R2"
	towerSystem = "/redfish/v1/Systems/437XR1238R2"
)

// summary is what TestDeviations compares: enough to see that each peer
// deviation still leads to the same machine.
type summary struct {
	Host, Serial                        string
	CPUs, DIMMs, Drives, NICs, Firmware int
	MemoryGiB                           float64
	Media                               string
	Auth                                string // "basic", "session" or "session, again"
	LoggedOut                           bool
}

func TestDeviations(t *testing.T) {
	rack := summary{
		Host: rackSystem, Serial: "437XR1138R2",
		CPUs: 3, DIMMs: 4, Drives: 4, NICs: 4, Firmware: 3, MemoryGiB: 96,
		Media: rackSystem + "/VirtualMedia/CD1", Auth: "session", LoggedOut: true,
	}
	with := func(s summary, change func(*summary)) summary { change(&s); return s }
	tests := []struct {
		name   string
		mockup string
		bend   bend
		want   summary
	}{
		{"DMTF rackmount1 as is", rackmount1, bend{}, rack},
		{"DMTF tower: media under the manager, Storage drives", tower, bend{}, summary{
			Host: towerSystem, Serial: "437XR1238R2",
			CPUs: 10, DIMMs: 16, Drives: 18, NICs: 2, Firmware: 2, MemoryGiB: 1024,
			Media: "/redfish/v1/Managers/BMC/VirtualMedia/CD1", Auth: "session", LoggedOut: true,
		}},
		{"HPE iLO: trailing slashes", rackmount1, bend{trailingSlash: true}, rack},
		{"HPE iLO: lower-case links", rackmount1, bend{lowercaseLinks: true}, rack},
		{"HPE iLO: trailing slashes and lower-case links", rackmount1, bend{trailingSlash: true, lowercaseLinks: true}, rack},
		{"DMTF mockup server: 204 and a fixed token", rackmount1, bend{login: login204Fixed}, rack},
		{"iLO emulator: no Location, Basic on login", rackmount1, bend{login: loginNoLocation, basicOnLogin: true}, rack},
		{"no Location and no body: no logout", rackmount1, bend{login: loginNoLocationBody}, with(rack, func(s *summary) { s.LoggedOut = false })},
		{"sushy-tools: no SessionService", rackmount1, bend{noSessions: true}, with(rack, func(s *summary) { s.Auth, s.LoggedOut = "basic", false })},
		{"session expires", rackmount1, bend{expireAfter: 5}, with(rack, func(s *summary) { s.Auth = "session, again" })},
		{"AMI: ActionInfo, MediaTypes null", rackmount1, bend{actionInfo: true, mediaTypesNull: true}, rack},
		{"GB300: GPU baseboard first, paged", rackmount1, bend{firstSystem: "gpu", pageSize: 1}, rack},
		{"Dell: ids with ':' and '.'", rackmount1, bend{rename: map[string]string{"437XR1138R2": "System.Embedded.1:Node.1", "DIMM": "DIMM.Socket:A"}},
			with(rack, func(s *summary) {
				s.Host, s.Serial = "/redfish/v1/Systems/System.Embedded.1:Node.1", "System.Embedded.1:Node.1"
				s.Media = s.Host + "/VirtualMedia/CD1"
			})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.bend.mediaActions = true
			f := newFakeBMC(t, tt.mockup, tt.bend)
			synctest.Test(t, func(t *testing.T) {
				ctx := t.Context()
				c, err := Dial(ctx, serveFake(t, f))
				if err != nil {
					t.Fatalf("Dial() = %v", err)
				}
				host, err := c.HostSystem(ctx)
				if err != nil {
					t.Fatalf("HostSystem() = %v", err)
				}
				inv, err := c.Inventory(ctx, host)
				if err != nil {
					t.Fatalf("Inventory(%s) = %v", host, err)
				}
				media, err := c.VirtualMedia(ctx, host)
				if err != nil {
					t.Fatalf("VirtualMedia(%s) = %v", host, err)
				}
				if err := c.Close(ctx); err != nil {
					t.Errorf("Close() = %v", err)
				}
				got := summary{
					Host: trimSlash(host), Serial: inv.SerialNumber,
					CPUs: len(inv.Processors), DIMMs: len(inv.Memory), Drives: len(inv.Drives), NICs: len(inv.NICs), Firmware: len(inv.Firmware),
					MemoryGiB: inv.MemoryGiB, Media: trimSlash(media),
					Auth:      []string{"basic", "session", "session, again"}[min(f.logins, 2)],
					LoggedOut: slices.ContainsFunc(f.requests, func(r string) bool { return strings.HasPrefix(r, "DELETE "+sessionsPath) }),
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("summary mismatch (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// TestCaseCorrection checks that a lower-cased link is corrected from the
// parents' links, not guessed.
func TestCaseCorrection(t *testing.T) {
	f := newFakeBMC(t, rackmount1, bend{lowercaseLinks: true})
	synctest.Test(t, func(t *testing.T) {
		c := dialFake(t, f)
		if _, err := c.Inventory(t.Context(), rackSystem); err != nil {
			t.Fatalf("Inventory() = %v", err)
		}
		for _, tt := range []struct {
			request string
			want    int
		}{
			{"GET /redfish/v1/systems/437xr1138r2/Memory", 1},
			{"GET /redfish/v1/Systems/437XR1138R2/Memory", 1},
			{"GET /redfish/v1/systems/437xr1138r2/Processors", 1},
			{"GET /redfish/v1/Systems/437XR1138R2/Processors", 1},
		} {
			if got := f.count(tt.request); got != tt.want {
				t.Errorf("%q sent %d times, want %d", tt.request, got, tt.want)
			}
		}
	})
}

func TestInventoryGolden(t *testing.T) {
	f := newFakeBMC(t, rackmount1, bend{})
	synctest.Test(t, func(t *testing.T) {
		c := dialFake(t, f)
		inv, err := c.Inventory(t.Context(), rackSystem)
		if err != nil {
			t.Fatalf("Inventory() = %v", err)
		}
		got, err := json.MarshalIndent(inv, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		path := filepath.Join("testdata", "inventory-rackmount1.golden.json")
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./internal/redfish -update to create it)", err)
		}
		if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")); diff != "" {
			t.Errorf("%s mismatch (-want +got); run go test ./internal/redfish -update if the change is intended:\n%s", path, diff)
		}
	})
}

// TestInventorySpotChecks pins what hardware validation relies on,
// independently of the golden file.
func TestInventorySpotChecks(t *testing.T) {
	f := newFakeBMC(t, rackmount1, bend{})
	synctest.Test(t, func(t *testing.T) {
		c := dialFake(t, f)
		inv, err := c.Inventory(t.Context(), rackSystem)
		if err != nil {
			t.Fatalf("Inventory() = %v", err)
		}
		absent := 0
		for _, d := range inv.Memory {
			if d.State == "Absent" {
				absent++
			}
		}
		got := map[string]any{
			"absent DIMMs":  absent,
			"NIC 1 MAC":     inv.NICs[0].MACAddress,
			"BMC firmware":  inv.BMCFirmwareVersion,
			"first drive":   inv.Drives[0].Model,
			"CPU1 cores":    inv.Processors[0].TotalCores,
			"firmware BIOS": inv.Firmware[2].Version,
		}
		want := map[string]any{
			"absent DIMMs":  1,
			"NIC 1 MAC":     "12:44:6a:3b:04:11",
			"BMC firmware":  "1.45.455b66-rev4",
			"first drive":   "3000GT8",
			"CPU1 cores":    8,
			"firmware BIOS": "P79 v1.45",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Inventory() mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestHostSystem(t *testing.T) {
	tests := []struct {
		name    string
		bend    bend
		want    string
		wantErr string
	}{
		{"one system", bend{}, rackSystem, ""},
		{"GPU baseboard listed first", bend{firstSystem: "gpu"}, rackSystem, ""},
		{"two hosts", bend{firstSystem: "twin"}, "", "choose one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBMC(t, rackmount1, tt.bend)
			synctest.Test(t, func(t *testing.T) {
				got, err := dialFake(t, f).HostSystem(t.Context())
				if got != tt.want || !errorContains(err, tt.wantErr) {
					t.Errorf("HostSystem() = %q, %v, want %q, error containing %q", got, err, tt.want, tt.wantErr)
				}
			})
		})
	}
}

func errorContains(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}

func TestPower(t *testing.T) {
	dell := []string{"On", "ForceOff", "ForceRestart", "GracefulShutdown", "PushPowerButton", "Nmi"}
	ami := []string{"GracefulShutdown", "ForceRestart", "ForceOff", "On"}
	on := func(ctx context.Context, c *Client) error { return c.PowerOn(ctx, rackSystem) }
	off := func(force bool) func(ctx context.Context, c *Client) error {
		return func(ctx context.Context, c *Client) error { return c.PowerOff(ctx, rackSystem, force, time.Minute) }
	}
	restart := func(ctx context.Context, c *Client) error { return c.Restart(ctx, rackSystem, time.Minute) }
	reset := func(t string) func(ctx context.Context, c *Client) error {
		return func(ctx context.Context, c *Client) error { return c.Reset(ctx, rackSystem, t) }
	}
	tests := []struct {
		name       string
		bend       bend
		op         func(context.Context, *Client) error
		wantResets []string
		wantState  string
		wantTook   time.Duration // in fake time: polls at 50 ms, doubling to 2 s (0.05, 0.15, 0.35, 0.75, 1.55, 3.15, 5.15, 7.15 … s)
		wantErr    string
	}{
		{"on from off", bend{powerState: Off, transition: 10 * time.Second}, on, []string{"On"}, On, 11150 * time.Millisecond, ""},
		{"on when on", bend{sameState400: true}, on, nil, On, 0, ""},
		{"on while powering on, refused (iLO)", bend{powerState: Off, transition: 10 * time.Second, sameState400: true},
			func(ctx context.Context, c *Client) error {
				if err := c.Reset(ctx, rackSystem, On); err != nil {
					return err
				}
				return c.PowerOn(ctx, rackSystem)
			}, []string{"On"}, On, 11150 * time.Millisecond, ""},
		{"off, graceful", bend{transition: 5 * time.Second}, off(false), []string{"GracefulShutdown"}, Off, 5150 * time.Millisecond, ""},
		{"off, graceful ignored, forced after the timeout", bend{ignoreGraceful: true}, off(false), []string{"GracefulShutdown", "ForceOff"}, Off, time.Minute, ""},
		{"off, forced", bend{}, off(true), []string{"ForceOff"}, Off, 0, ""},
		{"off when off", bend{powerState: Off, sameState400: true}, off(false), nil, Off, 0, ""},
		{"restart, graceful", bend{}, restart, []string{"GracefulRestart"}, On, 0, ""},
		{"restart without GracefulRestart (Dell)", bend{resetTypes: dell}, restart, []string{"GracefulShutdown", "On"}, On, 0, ""},
		{"restart, reset types in ActionInfo (AMI)", bend{resetTypes: ami, actionInfo: true}, restart, []string{"GracefulShutdown", "On"}, On, 0, ""},
		{"restart when off", bend{powerState: Off}, restart, []string{"On"}, On, 0, ""},
		{"reset type not allowed", bend{resetTypes: ami, actionInfo: true}, reset("Nmi"), nil, On, 0, "allows only GracefulShutdown, ForceRestart, ForceOff, On"},
		{"reset answered with a task monitor", bend{taskMonitor: true}, reset("ForceRestart"), []string{"ForceRestart"}, On, 9 * time.Second, ""},
		{"power on times out", bend{powerState: Off, transition: time.Hour}, on, []string{"On"}, "PoweringOn", 10 * time.Minute, "still PoweringOn after 10m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBMC(t, rackmount1, tt.bend)
			synctest.Test(t, func(t *testing.T) {
				c := dialFake(t, f)
				t0 := time.Now()
				err := tt.op(t.Context(), c)
				took := time.Since(t0)
				if !errorContains(err, tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				if diff := cmp.Diff(tt.wantResets, f.resets, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("resets mismatch (-want +got):\n%s", diff)
				}
				if got := f.state(rackSystem)["PowerState"]; got != tt.wantState {
					t.Errorf("PowerState = %v, want %s", got, tt.wantState)
				}
				if took != tt.wantTook {
					t.Errorf("took %v, want %v", took, tt.wantTook)
				}
			})
		})
	}
}

func TestBootOverride(t *testing.T) {
	cdOnce := BootOverride{Target: "Cd", Enabled: "Once", Mode: "UEFI"}
	tests := []struct {
		name        string
		bend        bend
		set         BootOverride
		wantBoot    BootOverride
		wantIfMatch []string
		wantErr     string
	}{
		{"once", bend{}, cdOnce, cdOnce, []string{""}, ""},
		{"Once read back as Continuous (sushy-tools)", bend{onceToContinuous: true}, cdOnce, BootOverride{"Cd", "Continuous", "UEFI"}, []string{""}, ""},
		{"target not allowed", bend{}, BootOverride{Target: "UefiHttp", Enabled: "Once"}, BootOverride{"Pxe", "Once", "UEFI"}, nil, "allows only None, Pxe, Cd"},
		{"with an ETag", bend{etag: true}, cdOnce, cdOnce, []string{`W/"gen-0"`}, ""},
		{"ETag changed once", bend{etag: true, stale412: 1}, cdOnce, cdOnce, []string{`W/"gen-0"`, `W/"gen-1"`}, ""},
		{"ETag changed twice", bend{etag: true, stale412: 2}, cdOnce, BootOverride{"Pxe", "Once", "UEFI"}, []string{`W/"gen-0"`, `W/"gen-1"`}, "412 Precondition Failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBMC(t, rackmount1, tt.bend)
			synctest.Test(t, func(t *testing.T) {
				c := dialFake(t, f)
				err := c.SetBootOverride(t.Context(), rackSystem, tt.set)
				if !errorContains(err, tt.wantErr) {
					t.Fatalf("SetBootOverride() = %v, want an error containing %q", err, tt.wantErr)
				}
				s, err := c.System(t.Context(), rackSystem)
				if err != nil {
					t.Fatal(err)
				}
				if s.Boot != tt.wantBoot {
					t.Errorf("Boot = %+v, want %+v", s.Boot, tt.wantBoot)
				}
				if diff := cmp.Diff(tt.wantIfMatch, f.ifMatch); diff != "" {
					t.Errorf("If-Match mismatch (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestVirtualMedia(t *testing.T) {
	const image = "https://images.test/ubuntu-24.04.iso"
	tests := []struct {
		name      string
		mockup    string
		bend      bend
		image     string
		wantMedia string
		wantErr   string
	}{
		{"under the system (DMTF rackmount1)", rackmount1, bend{mediaActions: true}, image, rackSystem + "/VirtualMedia/CD1", ""},
		{"under the manager (DMTF tower)", tower, bend{mediaActions: true}, image, "/redfish/v1/Managers/BMC/VirtualMedia/CD1", ""},
		{"MediaTypes null (AMI)", rackmount1, bend{mediaActions: true, mediaTypesNull: true}, image, rackSystem + "/VirtualMedia/CD1", ""},
		{"protocol allowed (Dell)", rackmount1, bend{mediaActions: true, protocols: []string{"CIFS", "HTTP", "HTTPS", "NFS"}}, image, rackSystem + "/VirtualMedia/CD1", ""},
		{"protocol not allowed", rackmount1, bend{mediaActions: true, protocols: []string{"CIFS", "NFS"}}, image, rackSystem + "/VirtualMedia/CD1", "images over CIFS, NFS only"},
		{"no InsertMedia anywhere (Supermicro X10, Intel)", rackmount1, bend{}, image, "", ErrNoVirtualMedia.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBMC(t, tt.mockup, tt.bend)
			synctest.Test(t, func(t *testing.T) {
				c := dialFake(t, f)
				ctx := t.Context()
				host, err := c.HostSystem(ctx)
				if err != nil {
					t.Fatal(err)
				}
				media, err := c.VirtualMedia(ctx, host)
				if media != tt.wantMedia || err != nil && !errors.Is(err, ErrNoVirtualMedia) {
					t.Fatalf("VirtualMedia() = %q, %v, want %q", media, err, tt.wantMedia)
				}
				err = c.InsertMedia(ctx, host, tt.image)
				if !errorContains(err, tt.wantErr) {
					t.Fatalf("InsertMedia() = %v, want an error containing %q", err, tt.wantErr)
				}
				if err != nil {
					return
				}
				if got := f.state(media); got["Image"] != tt.image || got["Inserted"] != true || got["WriteProtected"] != true {
					t.Errorf("after InsertMedia: Image %v, Inserted %v, WriteProtected %v; want %s, true, true", got["Image"], got["Inserted"], got["WriteProtected"], tt.image)
				}
				if err := c.EjectMedia(ctx, host); err != nil {
					t.Fatalf("EjectMedia() = %v", err)
				}
				if err := c.EjectMedia(ctx, host); err != nil {
					t.Fatalf("EjectMedia() when empty = %v", err)
				}
				if got := f.state(media)["Inserted"]; got != false {
					t.Errorf("after EjectMedia: Inserted %v, want false", got)
				}
			})
		})
	}
}

func TestReimage(t *testing.T) {
	const image = "http://images.test/install.iso"
	tests := []struct {
		name       string
		bend       bend
		wantSteps  []string
		wantResets []string
	}{
		{"on", bend{mediaActions: true}, []string{"insert media", "set boot override Cd once", "reset ForceRestart", "wait for power on"}, []string{"ForceRestart"}},
		{"off", bend{mediaActions: true, powerState: Off, transition: 30 * time.Second}, []string{"insert media", "set boot override Cd once", "reset On", "wait for power on"}, []string{"On"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBMC(t, rackmount1, tt.bend)
			synctest.Test(t, func(t *testing.T) {
				c := dialFake(t, f)
				var steps []string
				if err := c.Reimage(t.Context(), rackSystem, image, func(s string) { steps = append(steps, s) }); err != nil {
					t.Fatalf("Reimage() = %v", err)
				}
				if diff := cmp.Diff(tt.wantSteps, steps); diff != "" {
					t.Errorf("steps mismatch (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tt.wantResets, f.resets); diff != "" {
					t.Errorf("resets mismatch (-want +got):\n%s", diff)
				}
				sys := f.state(rackSystem)
				boot := sys["Boot"].(map[string]any)
				got := []any{sys["PowerState"], boot["BootSourceOverrideTarget"], boot["BootSourceOverrideEnabled"], f.state(rackSystem + "/VirtualMedia/CD1")["Image"]}
				if diff := cmp.Diff([]any{On, "Cd", "Once", image}, got); diff != "" {
					t.Errorf("PowerState, boot target, boot enabled, image mismatch (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestTrust(t *testing.T) {
	srv := httptest.NewUnstartedServer(newFakeBMC(t, rackmount1, bend{}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are the point
	srv.StartTLS()
	defer srv.Close()
	sum := sha256.Sum256(srv.Certificate().Raw)
	colons := strings.ToUpper(hex.EncodeToString(sum[:]))
	for i := len(colons) - 2; i > 0; i -= 2 {
		colons = colons[:i] + ":" + colons[i:]
	}
	wrong := sha256.Sum256([]byte("another certificate"))
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	tests := []struct {
		name    string
		trust   func(*Config)
		wantErr string
	}{
		{"fingerprint", func(c *Config) { c.Fingerprint = hex.EncodeToString(sum[:]) }, ""},
		{"fingerprint with colons, upper case", func(c *Config) { c.Fingerprint = colons }, ""},
		{"wrong fingerprint", func(c *Config) { c.Fingerprint = hex.EncodeToString(wrong[:]) }, "does not match the pinned"},
		{"pinned CA", func(c *Config) { c.CACertPEM = ca }, ""},
		{"insecure", func(c *Config) { c.Insecure = true }, ""},
		{"system roots", func(c *Config) {}, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Endpoint: srv.URL, Username: fakeUser, Password: fakePassword}
			tt.trust(&cfg)
			c, err := Dial(t.Context(), cfg)
			if !errorContains(err, tt.wantErr) {
				t.Fatalf("Dial() = %v, want an error containing %q", err, tt.wantErr)
			}
			if err == nil {
				if got := c.ServiceRoot().RedfishVersion; got != "1.15.0" {
					t.Errorf("RedfishVersion = %q, want 1.15.0", got)
				}
				if err := c.Close(t.Context()); err != nil {
					t.Errorf("Close() = %v", err)
				}
			}
		})
	}
}

func TestDialErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(*Config)
		wantErr string
	}{
		{"wrong password", func(c *Config) { c.Password = "wrong" }, "401 Unauthorized Base.1.8.NoValidSession"},
		{"wrong password, Basic only", func(c *Config) { c.Password = "wrong" }, "401 Unauthorized"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeBMC(t, rackmount1, bend{noSessions: i == 1})
			synctest.Test(t, func(t *testing.T) {
				cfg := serveFake(t, f)
				tt.cfg(&cfg)
				_, err := Dial(t.Context(), cfg)
				if !errorContains(err, tt.wantErr) {
					t.Errorf("Dial() = %v, want an error containing %q", err, tt.wantErr)
				}
			})
		})
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Endpoint: "https://10.0.0.5", Username: "root"}
	tests := []struct {
		name    string
		change  func(*Config)
		wantErr string
	}{
		{"ok", func(*Config) {}, ""},
		{"with port and slash", func(c *Config) { c.Endpoint = "https://bmc-1.rack-2:8443/" }, ""},
		{"no endpoint", func(c *Config) { c.Endpoint = "" }, "--endpoint is required"},
		{"no scheme", func(c *Config) { c.Endpoint = "10.0.0.5" }, "must look like https://host[:port]"},
		{"a path", func(c *Config) { c.Endpoint = "https://10.0.0.5/redfish/v1" }, "must look like https://host[:port]"},
		{"no user", func(c *Config) { c.Username = "" }, "--username is required"},
		{"two kinds of trust", func(c *Config) { c.Insecure, c.Fingerprint = true, strings.Repeat("ab", 32) }, "exclude each other"},
		{"short fingerprint", func(c *Config) { c.Fingerprint = "ab:cd" }, "want a SHA-256"},
		{"fingerprint not hex", func(c *Config) { c.Fingerprint = strings.Repeat("zz", 32) }, "fingerprint: "},
		{"negative timeout", func(c *Config) { c.RequestTimeout = -time.Second }, "cannot be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.change(&cfg)
			if err := cfg.Validate(); !errorContains(err, tt.wantErr) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecodeError(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *Error
	}{
		{"extended info", `{"error": {"code": "Base.1.8.GeneralError", "message": "general", "@Message.ExtendedInfo": [
			{"MessageId": "iLO.2.14.InvalidOperationForSystemState", "Message": "not in this state"}]}}`,
			&Error{StatusCode: 400, Code: "Base.1.8.GeneralError", MessageID: "iLO.2.14.InvalidOperationForSystemState", Message: "not in this state"}},
		{"code only", `{"error": {"code": "Base.1.8.InsufficientPrivilege", "message": "no"}}`,
			&Error{StatusCode: 400, Code: "Base.1.8.InsufficientPrivilege", MessageID: "Base.1.8.InsufficientPrivilege", Message: "no"}},
		{"not JSON", "<html>Bad Request</html>", &Error{StatusCode: 400, Message: "<html>Bad Request</html>"}},
		{"empty", "", &Error{StatusCode: 400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeError(400, []byte(tt.body))
			if diff := cmp.Diff(tt.want, got, cmpopts.IgnoreUnexported(Error{})); diff != "" {
				t.Errorf("decodeError() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHasMessage(t *testing.T) {
	state := decodeError(400, []byte(`{"error": {"code": "Base.1.8.GeneralError", "@Message.ExtendedInfo": [
		{"MessageId": "Base.1.8.Success"}, {"MessageId": "iLO.2.14.InvalidOperationForSystemState"}]}}`))
	tests := []struct {
		name   string
		err    error
		suffix string
		want   bool
	}{
		{"second message", state, "InvalidOperationForSystemState", true},
		{"wrapped", errors.Join(errors.New("reset"), state), "InvalidOperationForSystemState", true},
		{"the code", state, "GeneralError", true},
		{"another message", state, "PropertyValueNotInList", false},
		{"not a Redfish error", errors.New("InvalidOperationForSystemState"), "InvalidOperationForSystemState", false},
		{"nil", nil, "Success", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HasMessage(tt.err, tt.suffix); got != tt.want {
				t.Errorf("HasMessage(%v, %q) = %v, want %v", tt.err, tt.suffix, got, tt.want)
			}
		})
	}
}

func TestNormalizeMAC(t *testing.T) {
	tests := []struct{ in, want string }{
		{"12:44:6A:3B:04:11", "12:44:6a:3b:04:11"},
		{"12-44-6a-3b-04-11", "12:44:6a:3b:04:11"},
		{"1244.6a3b.0411", "12:44:6a:3b:04:11"},
		{"12446A3B0411", "12:44:6a:3b:04:11"},
		{" 12:44:6A:3B:04:11 ", "12:44:6a:3b:04:11"},
		{"", ""},
		{"Not Available", "not available"},
		{"00:11:22:33:44:55:66:77", "00:11:22:33:44:55:66:77"},
	}
	for _, tt := range tests {
		if got := normalizeMAC(tt.in); got != tt.want {
			t.Errorf("normalizeMAC(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", pollInterval},
		{"5", 5 * time.Second},
		{"0", time.Second},
		{"3600", time.Minute},
		{"soon", pollInterval},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.header != "" {
			h.Set("Retry-After", tt.header)
		}
		if got := retryAfter(h); got != tt.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tt.header, got, tt.want)
		}
	}
}

// FuzzDecode feeds every decoder the same bytes: none may panic,
// whatever a BMC sends.
func FuzzDecode(f *testing.F) {
	// One resource of each kind a decoder reads; small, so that the
	// fuzzer can mutate them quickly.
	rack, tow := loadMockup(f, rackmount1), loadMockup(f, tower)
	for _, v := range []any{
		rack["/redfish/v1"],
		rack["/redfish/v1/SessionService"],
		rack["/redfish/v1/Systems"],
		rack[rackSystem],
		rack[rackSystem+"/Processors/CPU1"],
		rack[rackSystem+"/Memory/DIMM1"],
		rack[rackSystem+"/SimpleStorage/1"],
		rack[rackSystem+"/EthernetInterfaces/12446A3B0411"],
		rack[rackSystem+"/VirtualMedia/CD1"],
		rack[rackSystem+"/Bios"],
		rack["/redfish/v1/Managers/BMC"],
		rack["/redfish/v1/UpdateService"],
		rack["/redfish/v1/UpdateService/FirmwareInventory/BMC"],
		rack["/redfish/v1/UpdateService/SimpleUpdateActionInfo"],
		tow[towerSystem+"/Storage/RAIDIntegrated"],
		tow["/redfish/v1/Chassis/Tower/Drives/Disk-1-0"],
		tow["/redfish/v1/TaskService/Tasks/545"],
	} {
		b, err := json.Marshal(v)
		if err != nil || v == nil {
			f.Fatalf("seed %v: %v", v, err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"v1": "/redfish/v1/"}`,
		`{"error": {"code": "Base.1.8.GeneralError", "@Message.ExtendedInfo": [{"MessageId": 1}, null]}}`,
		`{"Actions": {"#ComputerSystem.Reset": {"target": 7, "ResetType@Redfish.AllowableValues": "On"}}}`,
		`{"Actions": {"#ComputerSystem.Reset": null}, "Links": {"ManagedBy": [null, {"@odata.id": null}]}}`,
		`{"Members": [{"@odata.id": "/a"}, null, 3], "Members@odata.nextLink": {"x": 1}}`,
		`{"Parameters": [{"Name": "ResetType", "AllowableValues": [null, 1]}]}`,
		`{"MACAddress": "AA-BB-CC-DD-EE-FF", "SpeedMbps": 1e400}`,
		`{"Attributes": [1], "@Redfish.Settings": {"SettingsObject": "x", "SupportedApplyTimes": [null, 2]}}`,
		`{"Actions": {"#UpdateService.SimpleUpdate": {"target": "/u", "TransferProtocol@Redfish.AllowableValues": ["HTTPS"]}}}`,
		`{"Actions": {"#UpdateService.SimpleUpdate": {"target": ["x"], "@Redfish.ActionInfo": 3}}, "FirmwareInventory": "x"}`,
		`{"Actions": [1], "FirmwareInventory": {"@odata.id": "/f"}}`,
		`{"@odata.id": "/t/1", "TaskState": "Exception", "TaskStatus": "Critical", "Messages": [{"MessageId": "Update.1.0.ApplyFailed"}, {"Message": "x"}, null]}`,
		`{"TaskState": "Completed", "Messages": {"Message": "x"}}`,
		`[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]`,
		"\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeVersions(b)
		decodeResource(b)
		decodeServiceRoot(b)
		decodeSessionService(b)
		decodeCollection(b)
		linksIn(b)
		if e := decodeError(500, b); e == nil || e.Error() == "" {
			t.Fatalf("decodeError(%q) = %v", b, e)
		}
		decodeActionInfo(b)
		if task, err := decodeTask(b); err == nil && task.ended() && task.failure("/monitor") == nil {
			t.Fatalf("decodeTask(%q).failure() = nil", b)
		}
		decodeManager(b)
		if s, err := decodeSystem(b); err == nil && s == nil {
			t.Fatalf("decodeSystem(%q) = nil, nil", b)
		}
		decodeMedia(b)
		decodeProcessor(b)
		decodeDIMM(b)
		decodeDrive(b)
		decodeStorage(b)
		decodeSimpleStorage(b)
		decodeNIC(b)
		decodeFirmware(b)
		if us, err := decodeUpdateService(b); err == nil {
			us.simpleUpdate()
		}
		decodeBIOS(b)
		normalizeMAC(string(b))
	})
}

// BenchmarkInventory reads the rackmount1 inventory from a fake BMC that
// serves it from memory over loopback.
func BenchmarkInventory(b *testing.B) {
	srv := httptest.NewServer(newFakeBMC(b, rackmount1, bend{}))
	defer srv.Close()
	c, err := Dial(b.Context(), Config{Endpoint: srv.URL, Username: fakeUser, Password: fakePassword})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	for b.Loop() {
		if _, err := c.Inventory(b.Context(), rackSystem); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNewRequest(t *testing.T) {
	c := &Client{base: &url.URL{Scheme: "https", Host: "10.0.0.5:443"}}
	tests := []struct{ ref, want string }{
		{"/redfish/v1/Systems/1/", "https://10.0.0.5:443/redfish/v1/Systems/1/"},
		{"/redfish/v1/Systems/System.Embedded.1/Storage/Disk.Bay.0:Enclosure.Internal.0-1:RAID.Slot.7-1",
			"https://10.0.0.5:443/redfish/v1/Systems/System.Embedded.1/Storage/Disk.Bay.0:Enclosure.Internal.0-1:RAID.Slot.7-1"},
		{"/redfish/v1/Systems?$skip=2", "https://10.0.0.5:443/redfish/v1/Systems?$skip=2"},
		// An absolute link keeps only its path: the token stays with the BMC.
		{"https://ilo-internal.example/redfish/v1/SessionService/Sessions/7", "https://10.0.0.5:443/redfish/v1/SessionService/Sessions/7"},
		{"http://user:pw@elsewhere.example:8080/redfish/v1/", "https://10.0.0.5:443/redfish/v1/"},
	}
	for _, tt := range tests {
		req, err := c.newRequest(t.Context(), http.MethodGet, tt.ref, nil)
		if err != nil {
			t.Fatalf("newRequest(%q) = %v", tt.ref, err)
		}
		if got := req.URL.String(); got != tt.want {
			t.Errorf("newRequest(%q) URL = %s, want %s", tt.ref, got, tt.want)
		}
		if req.Header.Get("OData-Version") != "4.0" || req.Header.Get("Accept") != "application/json" {
			t.Errorf("newRequest(%q) headers = %v, want Accept and OData-Version", tt.ref, req.Header)
		}
	}
}
