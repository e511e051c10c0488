package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/citadel-cloud/citadel/internal/authz"
	"github.com/citadel-cloud/citadel/internal/client"
)

// portalTimeout bounds each step a test waits for in the browser.
const portalTimeout = 60 * time.Second

// TestPortal drives the portal of a `citadel up` site in Debian's headless
// Chromium: the operator signs in, sees the fleet, cordons a machine and
// sees its state change and the activity-log entry; a Reader finds the
// actions disabled, and a forced call shows the server's refusal.
func TestPortal(t *testing.T) {
	chromium := requireTool(t, "chromium", "chromium")
	t.Parallel()
	bin := buildCitadel(t)
	dir, addr, agentAddr, simAddr := t.TempDir(), freeAddr(t), freeAddr(t), freeAddr(t)
	up := startUntil(t, bin, "Citadel is up: 9 machines in 4 racks",
		"up", "--data-dir", dir, "--listen", addr, "--agent-listen", agentAddr, "--racks", "3", "--machines-per-rack", "2",
		"--sim-control", simAddr, "--drift-check-interval", "1s", "--update-duration", "300ms")
	defer interrupt(t, up)
	creds, err := client.LoadCredentials(filepath.Join(dir, "bootstrap", "admin.json"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(creds)
	if err != nil {
		t.Fatal(err)
	}
	operatorPassword, err := os.ReadFile(filepath.Join(dir, "bootstrap", "operator-password"))
	if err != nil {
		t.Fatal(err)
	}
	const readerUPN, readerPassword = "reader@citadel.local", "reader-Password-1"
	createUser(t, admin, creds, readerUPN, readerPassword, authz.ReaderRole)

	importReleases(t, bin, filepath.Join(dir, "bootstrap", "admin.json"), "4.2.0", "4.3.0")

	portal := creds.ARMEndpoint + "portal/"
	browser := newBrowser(t, chromium)
	machineID := "/subscriptions/" + creds.SubscriptionID + "/resourceGroups/citadel-site/providers/Microsoft.NetworkCloud/bareMetalMachines/"
	machineLink := func(name string) string { return `a.machine[data-id="` + machineID + name + `"]` }

	// A machine changed by hand, which the fleet shows as drifted.
	r, err := http.Post("http://"+simAddr+"/faults", "application/json", strings.NewReader(`{"fault": "drift", "machine": "citadelr3m2"}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("drift fault: %s", r.Status)
	}

	t.Run("operator", func(t *testing.T) {
		ctx := newTab(t, browser)
		signIn(t, ctx, portal, "operator@citadel.local", strings.TrimSpace(string(operatorPassword)))
		run(t, ctx, "the fleet of 9 machines in 4 racks",
			chromedp.Poll[chromedp.Void](`document.querySelectorAll("section.rack[data-rack-id]").length === 4 &&
				document.querySelectorAll("a.machine[data-id]").length === 9`, chromedp.WithPollingTimeout(portalTimeout)))
		user := value(t, ctx, "the signed-in user", chromedp.Text(chromedp.CSS("#user")))
		if !strings.Contains(user, "operator@citadel.local") {
			t.Errorf("#user = %q, want the operator", user)
		}
		if unnamed := value(t, ctx, "controls without a name", chromedp.Evaluate[[]string](unnamedControls)); len(unnamed) > 0 {
			t.Errorf("controls on the fleet page without an accessible name: %v", unnamed)
		}
		png := value(t, ctx, "a screenshot of the fleet", chromedp.CaptureScreenshot())
		shot := filepath.Join(t.ArtifactDir(), "fleet.png")
		if err := os.WriteFile(shot, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("fleet page: %s (%d bytes)", shot, len(png))

		run(t, ctx, "citadelr1m1's page with its actions",
			chromedp.Click(chromedp.CSS(machineLink("citadelr1m1"))),
			chromedp.WaitEnabled(chromedp.CSS(`button[data-action="cordon"]`)),
			chromedp.Click(chromedp.CSS(`button[data-action="cordon"]`)),
			chromedp.WaitVisible(chromedp.CSS(`dialog#confirm button[value="confirm"]`)),
			chromedp.Click(chromedp.CSS(`dialog#confirm button[value="confirm"]`)))
		if unnamed := value(t, ctx, "controls without a name", chromedp.Evaluate[[]string](unnamedControls)); len(unnamed) > 0 {
			t.Errorf("controls on the machine page without an accessible name: %v", unnamed)
		}
		run(t, ctx, "the cordon in citadelr1m1's action history",
			chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("table#history tbody tr")].some(r =>
				r.textContent.includes("Microsoft.NetworkCloud/bareMetalMachines/cordon/action") && r.textContent.includes("Succeeded"))`,
				chromedp.WithPollingTimeout(portalTimeout)))
		run(t, ctx, "citadelr1m1 cordoned and citadelr3m2 drifted on the fleet page",
			chromedp.Navigate(portal+"#/fleet"),
			chromedp.WaitVisible(chromedp.CSS(machineLink("citadelr1m1")+`[data-cordon="Cordoned"]`)),
			chromedp.WaitVisible(chromedp.CSS(machineLink("citadelr3m2")+`[data-drift="Drifted"]`)))
		run(t, ctx, "the cordon in the activity log",
			chromedp.Navigate(portal+"#/governance"),
			chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("table#activity tbody tr")].some(r =>
				r.textContent.includes("bareMetalMachines/cordon/action") && r.textContent.includes("citadelr1m1"))`,
				chromedp.WithPollingTimeout(portalTimeout)))
		// The simulated site's strategy waits a minute between racks: the
		// first rack done and the next waiting is the progress to see.
		run(t, ctx, "the update to 4.2.0 going rack by rack",
			chromedp.Navigate(portal+"#/updates"),
			chromedp.WaitEnabled(chromedp.CSS(`button[data-action="updateVersion"]`)),
			chromedp.Click(chromedp.CSS(`button[data-action="updateVersion"]`)),
			chromedp.WaitVisible(chromedp.CSS(`dialog#confirm button[value="confirm"]`)),
			chromedp.Click(chromedp.CSS(`dialog#confirm button[value="confirm"]`)),
			chromedp.Poll[chromedp.Void](`(() => {
				const rows = [...document.querySelectorAll("table#rollout-citadel tbody tr")];
				return rows.length === 4 && rows[0].textContent.includes("3 of 3") && rows[0].textContent.includes("Succeeded") &&
					rows.slice(1).every(r => r.textContent.includes("Waiting")) &&
					document.querySelector("main").textContent.includes("Rack citadel-rack0 done");
			})()`, chromedp.WithPollingTimeout(portalTimeout)))
	})

	t.Run("reader", func(t *testing.T) {
		ctx := newTab(t, browser)
		signIn(t, ctx, portal, readerUPN, readerPassword)
		run(t, ctx, "citadelr1m2's actions",
			chromedp.Poll[chromedp.Void](`document.querySelectorAll("a.machine[data-id]").length === 9`, chromedp.WithPollingTimeout(portalTimeout)),
			chromedp.Click(chromedp.CSS(machineLink("citadelr1m2"))),
			chromedp.WaitVisible(chromedp.CSS(`button[data-action="cordon"]`)))
		if !value(t, ctx, "the Cordon button's state", chromedp.Evaluate[bool](`document.querySelector('button[data-action="cordon"]').disabled`)) {
			t.Error("the Reader's Cordon button is enabled")
		}
		run(t, ctx, "the refusal of a forced cordon",
			chromedp.Evaluate[chromedp.Void](`void window.citadel.forceAction("cordon")`),
			chromedp.Poll[chromedp.Void](`document.querySelector("#alert").textContent.includes("does not have authorization")`, chromedp.WithPollingTimeout(portalTimeout)))
		alert := value(t, ctx, "the alert", chromedp.Text(chromedp.CSS("#alert")))
		run(t, ctx, "the updates page",
			chromedp.Navigate(portal+"#/updates"),
			chromedp.WaitVisible(chromedp.CSS(`table#rollout-citadel`)))
		if !value(t, ctx, "the update buttons", chromedp.Evaluate[bool](`(() => {
			const bs = [...document.querySelectorAll('button[data-action="updateVersion"]')];
			return bs.length === 2 && bs.every(b => b.disabled);
		})()`)) {
			t.Error("the Reader does not see Update to 4.2.0 and to 4.3.0 disabled")
		}
		if want := "does not have authorization to perform action 'Microsoft.NetworkCloud/bareMetalMachines/cordon/action'"; !strings.Contains(alert, want) {
			t.Errorf("#alert = %q, want %q", alert, want)
		}
		var m struct {
			Properties struct {
				CordonStatus string `json:"cordonStatus"`
			} `json:"properties"`
		}
		r, err := admin.Do(t.Context(), http.MethodGet, machineID+"citadelr1m2?api-version=2026-07-01", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(r.Body, &m); err != nil || m.Properties.CordonStatus != "Uncordoned" {
			t.Errorf("citadelr1m2 after the refused cordon = %d %s, want Uncordoned", r.Status, r.Body)
		}
	})
}

// importReleases signs releases of versions with a vendor key of its own
// and imports them with the citadel CLI, as an operator would.
func importReleases(t *testing.T, bin, credentials string, versions ...string) {
	t.Helper()
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	if err := os.WriteFile(file("agent"), []byte("the agent"), 0o644); err != nil {
		t.Fatal(err)
	}
	steps := [][]string{
		{"update", "keys", "--out", file("keys.json")},
		{"update", "root", "--keys", file("keys.json"), "--out", file("root.json")},
		{"update", "trust", "add", file("root.json"), "--credentials", credentials},
	}
	for i, v := range versions {
		steps = append(steps,
			[]string{"update", "bundle", "build", "--keys", file("keys.json"), "--root", file("root.json"), "--cluster-version", v,
				"--version", fmt.Sprint(i + 1), "--target", "agent:citadel-agent:" + v + "=" + file("agent"), "--out", file(v + ".tar")},
			[]string{"update", "import", file(v + ".tar"), "--credentials", credentials})
	}
	for _, args := range steps {
		if out, code := alRunCitadel(t, bin, args...); code != 0 {
			t.Fatalf("citadel %s = exit %d:\n%s", strings.Join(args, " "), code, out)
		}
	}
}

// unnamedControls lists the page's links, buttons and form fields that a
// screen reader could not name (no text, aria-label, title or label), or
// that the keyboard cannot reach (a negative tabindex).
const unnamedControls = `[...document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea")]
	.filter(el => !el.closest("dialog:not([open])"))
	.filter(el => {
		const named = (el.textContent || "").trim() || el.getAttribute("aria-label") || el.getAttribute("title") ||
			(el.id && document.querySelector("label[for='" + el.id + "']")) || el.closest("label");
		return !named || el.tabIndex < 0;
	})
	.map(el => el.outerHTML.slice(0, 80))`

// createUser makes a local user through the ARM API and gives it role at
// the subscription.
func createUser(t *testing.T, admin *client.Client, creds client.Credentials, upn, password, role string) {
	t.Helper()
	ctx := t.Context()
	r, err := admin.Do(ctx, http.MethodPut, "/providers/Citadel.Identity/users/"+upn+"?api-version=2026-01-01",
		map[string]any{"properties": map[string]any{"password": password}})
	if err != nil {
		t.Fatal(err)
	}
	var u struct {
		Properties struct {
			ObjectID string `json:"objectId"`
		} `json:"properties"`
	}
	if err := r.Expect(200, 201); err != nil {
		t.Fatalf("creating %s: %v", upn, err)
	}
	if err := json.Unmarshal(r.Body, &u); err != nil {
		t.Fatal(err)
	}
	scope := "/subscriptions/" + creds.SubscriptionID
	r, err = admin.Do(ctx, http.MethodPut, scope+"/providers/Microsoft.Authorization/roleAssignments/"+uuid.NewSHA1(uuid.NameSpaceURL, []byte(upn+":"+role)).String()+"?api-version=2022-04-01",
		map[string]any{"properties": map[string]any{
			"roleDefinitionId": scope + "/providers/Microsoft.Authorization/roleDefinitions/" + role,
			"principalId":      u.Properties.ObjectID, "principalType": "User",
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Expect(200, 201); err != nil {
		t.Fatalf("assigning %s to %s: %v", role, upn, err)
	}
}

// newBrowser starts headless Chromium for the test, with the flags a
// machine without outside network needs, at the portal's design size.
func newBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		// The site's CA is the control plane's own, unknown to Chromium.
		chromedp.Flag("ignore-certificate-errors", true),
	)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// newTab opens a tab of its own (its own sessionStorage, so its own
// signed-in user) in browser.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			desc := d.Text
			if d.Exception != nil {
				desc += " " + d.Exception.Description
			}
			t.Logf("browser: exception at %s:%d: %s", d.URL, d.LineNumber+1, desc)
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, cmp.Or(a.Description, fmt.Sprint(a.Value)))
			}
			t.Logf("browser: console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	}))
	t.Cleanup(cancel)
	// The first run opens the tab, which lives as long as that run's
	// context: so not one with a step's timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return ctx
}

// signIn opens the portal, which sends the browser to the sign-in page,
// and signs in; it returns once the portal shows its first page.
func signIn(t *testing.T, ctx context.Context, portal, upn, password string) {
	t.Helper()
	run(t, ctx, "signing in as "+upn,
		chromedp.Navigate(portal),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), upn),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)))
}

// run runs browser actions, failing the test with what it was waiting
// for if they do not complete within portalTimeout.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	value(t, ctx, what, chromedp.Steps(steps...))
}

// value runs one browser action and returns its value, failing the test
// with what it was waiting for, the page and any alert on it if it does
// not complete within portalTimeout.
func value[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	limited, cancel := context.WithTimeout(ctx, portalTimeout)
	defer cancel()
	v, err := chromedp.Run(limited, a)
	if err != nil {
		short, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		page, _ := chromedp.Run(short, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText.slice(0, 2000)`))
		if png, err := chromedp.Run(short, chromedp.CaptureScreenshot()); err == nil {
			shot := filepath.Join(t.ArtifactDir(), "failed.png")
			os.WriteFile(shot, png, 0o644)
			t.Logf("the page when it failed: %s", shot)
		}
		t.Fatalf("%s: %v; the page:\n%s", what, err, page)
	}
	return v
}
