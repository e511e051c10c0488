package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/client"
	"github.com/citadel-cloud/citadel/internal/servertest"
)

// azTimeout bounds one az invocation, so that a hung az fails its step
// instead of the whole test binary.
const azTimeout = 3 * time.Minute

// azSlow is how long an az command may take before the summary flags it:
// every command here needs well under a few seconds unless az falls back
// to its 30 s default poll interval.
const azSlow = 15 * time.Second

// requireAz finds the az CLI. Without it the test fails on CI and skips,
// saying why, elsewhere: the README's test command installs it.
func requireAz(t *testing.T) {
	t.Helper()
	requireTool(t, "az", "azure-cli 2.45")
}

// azCLI runs the real az CLI against one control plane, with a config
// directory of its own.
type azCLI struct {
	env    []string
	secret string // never shown in logs

	mu      sync.Mutex
	timings []azTiming
}

type azTiming struct {
	cmd  string
	took time.Duration
}

// azResult is the outcome of one az invocation.
type azResult struct {
	Stdout, Stderr string
	ExitCode       int
}

func newAzCLI(t *testing.T, cp *servertest.ControlPlane) *azCLI { return newAzCLIFor(t, cp.Creds) }

// newAzCLIFor is newAzCLI for a control plane known by its credentials.
func newAzCLIFor(t *testing.T, creds client.Credentials) *azCLI {
	t.Helper()
	env := append(os.Environ(),
		"AZURE_CONFIG_DIR="+t.TempDir(),
		"REQUESTS_CA_BUNDLE="+creds.CACertFile,
		"AZURE_CORE_COLLECT_TELEMETRY=no",
		"AZURE_CORE_ONLY_SHOW_ERRORS=1",
	)
	return &azCLI{env: env, secret: creds.ClientSecret}
}

// login points az at the control plane of c, as the cloud "citadel",
// and logs in as its service principal.
func (a *azCLI) login(t *testing.T, c client.Credentials) {
	t.Helper()
	a.ok(t, "cloud", "register", "-n", "citadel", "--endpoint-resource-manager", c.ARMEndpoint)
	a.ok(t, "cloud", "set", "-n", "citadel")
	a.ok(t, "login", "--service-principal", "-u", c.ClientID, "-p", c.ClientSecret, "--tenant", c.TenantID)
}

// jsonArg is v as JSON, for an az argument.
func jsonArg(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// show is the command line as a log line, without the client secret.
func (a *azCLI) show(args []string) string {
	quoted := make([]string, len(args))
	for i, s := range args {
		if a.secret != "" {
			s = strings.ReplaceAll(s, a.secret, "<secret>")
		}
		if k, v, ok := strings.Cut(s, "="); ok && strings.EqualFold(k, "Authorization") && len(v) > 24 {
			s = k + "=" + v[:24] + "…" // a token, forged or not, is noise in a log
		}
		if strings.ContainsAny(s, " \"'{}[]$&?") {
			s = "'" + s + "'"
		}
		quoted[i] = s
	}
	return "az " + strings.Join(quoted, " ")
}

// run runs az with args and returns what it printed and its exit code.
func (a *azCLI) run(t *testing.T, args ...string) azResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), azTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "az", args...)
	cmd.Env = a.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	a.mu.Lock()
	a.timings = append(a.timings, azTiming{cmd: a.show(args), took: took})
	a.mu.Unlock()
	res := azResult{Stdout: stdout.String(), Stderr: a.redact(stderr.String())}
	if ctx.Err() != nil {
		t.Fatalf("%s: no answer after %v (stderr: %s)", a.show(args), azTimeout, res.Stderr)
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", a.show(args), err)
	}
	t.Logf("%s: exit %d after %v", a.show(args), res.ExitCode, took.Round(time.Millisecond))
	return res
}

func (a *azCLI) redact(s string) string {
	if a.secret == "" {
		return s
	}
	return strings.ReplaceAll(s, a.secret, "<secret>")
}

// ok runs az, requires exit code 0 and returns stdout.
func (a *azCLI) ok(t *testing.T, args ...string) string {
	t.Helper()
	res := a.run(t, args...)
	if res.ExitCode != 0 {
		t.Fatalf("%s = exit %d, want 0; stderr:\n%s", a.show(args), res.ExitCode, res.Stderr)
	}
	return res.Stdout
}

// json runs az with "-o json", requires exit code 0 and decodes stdout
// into v.
func (a *azCLI) json(t *testing.T, v any, args ...string) {
	t.Helper()
	args = append(slices.Clone(args), "-o", "json")
	out := a.ok(t, args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s printed %q: %v", a.show(args), out, err)
	}
}

// fail runs az and requires it to fail with every one of wants in its
// stderr: az prints an ARM error as "(Code) Message", and az rest prints
// the response body.
func (a *azCLI) fail(t *testing.T, wants []string, args ...string) azResult {
	t.Helper()
	res := a.run(t, args...)
	if res.ExitCode == 0 {
		t.Fatalf("%s = exit 0, want a failure with %q; stdout:\n%s", a.show(args), wants, res.Stdout)
	}
	for _, w := range wants {
		if !strings.Contains(res.Stderr, w) {
			t.Errorf("%s: stderr = %q, want it to contain %q", a.show(args), azCut(res.Stderr, 400), w)
		}
	}
	return res
}

// logTimings writes how long each az command took, flagging slow ones.
func (a *azCLI) logTimings(t *testing.T) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var total time.Duration
	var b strings.Builder
	for _, tm := range a.timings {
		total += tm.took
		flag := ""
		if tm.took > azSlow {
			flag = "  <- slow: az waited for its 30 s default poll interval?"
		}
		fmt.Fprintf(&b, "%8.2fs  %s%s\n", tm.took.Seconds(), azCut(tm.cmd, 110), flag)
	}
	t.Logf("%d az commands in %v:\n%s", len(a.timings), total.Round(time.Millisecond), b.String())
}

func azCut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// azResource is the part of a resource, group or generic list item that
// the tests look at, as az prints it.
type azResource struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Type              string            `json:"type"`
	Location          string            `json:"location"`
	Tags              map[string]string `json:"tags"`
	ProvisioningState string            `json:"provisioningState"` // generic list items
	Properties        struct {
		ProvisioningState string   `json:"provisioningState"`
		IPPrefixRules     []azRule `json:"ipPrefixRules"`
	} `json:"properties"`
}

// azRule is an ipPrefixRules entry.
type azRule struct {
	Action           string `json:"action"`
	SequenceNumber   int64  `json:"sequenceNumber"`
	NetworkPrefix    string `json:"networkPrefix"`
	Condition        string `json:"condition,omitempty"`
	SubnetMaskLength string `json:"subnetMaskLength,omitempty"`
}

// azProperties is the properties JSON of an ipPrefix with these rules.
func azProperties(t *testing.T, rules ...azRule) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"ipPrefixRules": rules})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// azErrorEnvelope is ARM's error body (arm-contract §2.3).
type azErrorEnvelope struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Target  string `json:"target"`
	} `json:"error"`
}

// azErrorCode returns the code of an ARM error body, or why there is none.
func azErrorCode(body []byte) (string, error) {
	var env azErrorEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return "", fmt.Errorf("not an ARM error envelope: %w: %q", err, body)
	}
	if env.Error == nil || env.Error.Code == "" || env.Error.Message == "" {
		return "", fmt.Errorf("error envelope without error.code and error.message: %q", body)
	}
	return env.Error.Code, nil
}

// azForgeSignature changes one character in the middle of a JWT's
// signature, so that it still decodes but no longer verifies.
func azForgeSignature(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 || len(parts[2]) < 10 {
		t.Fatalf("token %.20q… is not a signed JWT", jwt)
	}
	sig := []byte(parts[2])
	i := len(sig) / 2
	if sig[i] == 'A' {
		sig[i] = 'B'
	} else {
		sig[i] = 'A'
	}
	return parts[0] + "." + parts[1] + "." + string(sig)
}

// azExpireClaims rewrites a JWT's claims so that it expired an hour ago,
// keeping the header and the (now wrong) signature: what a client holding
// a stale token, or forging a fresh-looking one, would send.
func azExpireClaims(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("token %.20q… is not a JWT", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode claims: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatalf("decode claims: %v", err)
	}
	now := time.Now().Unix()
	claims["iat"], claims["nbf"], claims["exp"] = now-7200, now-7200, now-3600
	raw, err = json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
}

// azUnsigned is a JWT with alg "none" and the claims of jwt.
func azUnsigned(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("token %.20q… is not a JWT", jwt)
	}
	hdr := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	return hdr + "." + parts[1] + "."
}

// azCheckPollURL checks that an LRO header is an absolute https URL on the
// control plane's host (arm-contract §2.7).
func azCheckPollURL(t *testing.T, what, header, value, endpoint string) {
	t.Helper()
	want, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(value)
	if err != nil || !u.IsAbs() || u.Scheme != "https" || u.Host != want.Host || u.Path == "" {
		t.Errorf("%s: %s = %q, want an absolute https URL on %s", what, header, value, want.Host)
	}
}

// azWaitSucceeded polls a resource with the admin client until its
// provisioningState is terminal, and requires Succeeded.
func azWaitSucceeded(t *testing.T, cp *servertest.ControlPlane, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := cp.Client.Do(t.Context(), http.MethodGet, path, nil)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		var r azResource
		if resp.Status != http.StatusOK || json.Unmarshal(resp.Body, &r) != nil {
			t.Fatalf("GET %s = %d %s, want 200 with a resource", path, resp.Status, resp.Body)
		}
		switch r.Properties.ProvisioningState {
		case "Succeeded":
			return
		case "Failed", "Canceled":
			t.Fatalf("GET %s: provisioningState = %s, want Succeeded", path, r.Properties.ProvisioningState)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: provisioningState still %q after 30 s, want Succeeded", path, r.Properties.ProvisioningState)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
