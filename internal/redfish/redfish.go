// Package redfish is Citadel's client for BMCs speaking DMTF Redfish: it
// reads a machine's inventory, switches its power, sets a one-time boot
// override, mounts virtual media to reimage it, reads and stages its
// BIOS settings, and has it flash firmware from a URL
// (UpdateService.SimpleUpdate, following the task to its end).
//
// Real BMCs differ from the schemas and from each other, so the client
// navigates by links only, compares @odata.id without a trailing '/',
// retries a link that 404s with the case its parent actually uses, reads
// allowable values from AllowableValues or ActionInfo, logs in with a
// session where there is a SessionService and with Basic auth where there
// is none, and trusts each BMC on its own terms (pinned CA, certificate
// fingerprint, or explicit insecure). The facts behind each choice are in
// docs/redfish.md of the shared tree.
//
// It uses net/http, and of Citadel only package machine, whose terms
// Inventory.Hardware speaks for hardware validation. Any package that
// drives a BMC may import it: the NetworkCloud provider and the citadel
// CLI do.
package redfish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/devicetls"
)

// Config says how to reach and trust one BMC.
type Config struct {
	// Endpoint is "https://host[:port]" or "http://host[:port]"; the
	// service root is found from there via GET /redfish.
	Endpoint           string
	Username, Password string

	// Trust: at most one of CACertPEM (a pinned CA), Fingerprint (the
	// SHA-256 of the leaf certificate's DER, hex, colons optional) and
	// Insecure. With none of them the system roots are used.
	CACertPEM   []byte
	Fingerprint string
	Insecure    bool

	// RequestTimeout bounds each HTTP request (default 30s).
	RequestTimeout time.Duration
	// PowerTimeout bounds how long PowerOn, PowerOff, Restart and Reimage
	// wait for the power state to settle (default 10m).
	PowerTimeout time.Duration
	Logger       *slog.Logger

	// dial replaces the TCP dialer; tests use it for an in-memory network.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DefaultConfig returns a Config with the default timeouts.
func DefaultConfig() Config {
	return Config{RequestTimeout: 30 * time.Second, PowerTimeout: 10 * time.Minute}
}

// AddFlags binds the configuration to command-line flags. The CA
// certificate is bytes, so the caller reads --ca-file itself.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Endpoint, "endpoint", c.Endpoint, "the BMC, https://host[:port]")
	fs.StringVar(&c.Username, "username", c.Username, "BMC user name")
	fs.StringVar(&c.Password, "password", c.Password, "BMC password")
	fs.StringVar(&c.Fingerprint, "fingerprint", c.Fingerprint, "SHA-256 of the BMC's certificate (hex, colons optional) to trust instead of a CA")
	fs.BoolVar(&c.Insecure, "insecure", c.Insecure, "do not verify the BMC's certificate")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", c.RequestTimeout, "timeout of each request to the BMC")
}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	u, err := url.Parse(c.Endpoint)
	switch {
	case c.Endpoint == "":
		return errors.New("--endpoint is required")
	case err != nil:
		return fmt.Errorf("--endpoint %q: %w", c.Endpoint, err)
	case u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || strings.Trim(u.Path, "/") != "":
		return fmt.Errorf("--endpoint %q must look like https://host[:port]", c.Endpoint)
	case c.Username == "":
		return errors.New("--username is required")
	case c.RequestTimeout < 0 || c.PowerTimeout < 0:
		return errors.New("timeouts cannot be negative")
	}
	return c.trust().Validate()
}

func (c *Config) trust() devicetls.Trust {
	return devicetls.Trust{CACertPEM: c.CACertPEM, Fingerprint: c.Fingerprint, Insecure: c.Insecure}
}

// Client talks to one BMC. It is safe for concurrent use.
type Client struct {
	cfg       Config
	log       *slog.Logger
	base      *url.URL
	transport *http.Transport
	http      *http.Client
	rootPath  string // "/redfish/v1/" or what GET /redfish said
	root      serviceRoot
	sessions  string // the session collection; "" with Basic auth only

	loginMu sync.Mutex // one re-login at a time
	mu      sync.Mutex
	basic   bool   // send Basic credentials when there is no token
	token   string // X-Auth-Token of the session
	session string // the session to DELETE on Close; "" when unknown
}

// Dial reads the service root without credentials, then logs in: with a
// session where the BMC has a SessionService, else with Basic auth on
// every request. When a session expires (401), the client logs in again
// once and retries the request.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("redfish: %w", err)
	}
	def := DefaultConfig()
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = def.RequestTimeout
	}
	if cfg.PowerTimeout == 0 {
		cfg.PowerTimeout = def.PowerTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	tlsCfg, err := cfg.trust().ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("redfish %s: trust: %w", cfg.Endpoint, err)
	}
	dial := cfg.dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	// One transport per BMC: its trust is its own, and BMCs cap connections.
	tr := &http.Transport{
		DialContext:         dial,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     60 * time.Second,
	}
	u, _ := url.Parse(cfg.Endpoint) // checked by Validate
	c := &Client{
		cfg:       cfg,
		log:       cfg.Logger.With("component", "redfish", "bmc", cfg.Endpoint),
		base:      &url.URL{Scheme: u.Scheme, Host: u.Host},
		transport: tr,
		http: &http.Client{
			Transport: tr,
			Timeout:   cfg.RequestTimeout,
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if req.URL.Host != u.Host || len(via) >= 5 {
					return fmt.Errorf("redirect to %s refused", req.URL.Redacted())
				}
				return nil
			},
		},
	}
	if err := c.open(ctx); err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("redfish %s: dial: %w", cfg.Endpoint, err)
	}
	return c, nil
}

func (c *Client) open(ctx context.Context) error {
	c.rootPath = "/redfish/v1/"
	resp, err := c.do(ctx, http.MethodGet, "/redfish", nil, "")
	if _, answered := errors.AsType[*Error](err); err != nil && !answered {
		return err // unreachable; an error answer leaves the usual root
	}
	if err == nil {
		if v, err := decodeVersions(resp.body); err == nil && v.V1 != "" {
			c.rootPath = v.V1
		}
	}
	resp, err = c.do(ctx, http.MethodGet, c.rootPath, nil, "")
	if err != nil {
		return err
	}
	if c.root, err = decodeServiceRoot(resp.body); err != nil {
		return fmt.Errorf("service root: %w", err)
	}
	if c.root.systems == "" {
		return errors.New("the service root links no Systems")
	}
	c.basic = true // until a session opens
	c.sessions = c.root.sessions
	if c.sessions == "" && c.root.sessionService != "" {
		resp, err := c.get(ctx, c.root.sessionService)
		if err != nil {
			return err
		}
		ss, err := decodeSessionService(resp.body)
		if err != nil {
			return fmt.Errorf("session service: %w", err)
		}
		c.sessions = ss.Sessions.ID
	}
	if c.sessions == "" {
		c.log.InfoContext(ctx, "redfish basic auth", "reason", "no SessionService")
		_, err := c.get(ctx, c.root.systems) // checks the credentials now
		return err
	}
	return c.login(ctx)
}

// login opens a session. It sends Basic credentials too: the iLO emulator
// wants them on the login POST.
func (c *Client) login(ctx context.Context) error {
	body, err := json.Marshal(map[string]string{"UserName": c.cfg.Username, "Password": c.cfg.Password})
	if err != nil {
		return err
	}
	req, err := c.newRequest(ctx, http.MethodPost, c.sessions, body)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	resp, err := c.roundTrip(ctx, req)
	if err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	if resp.status >= 400 {
		return fmt.Errorf("log in: %w", statusError(req, resp))
	}
	token := resp.header.Get("X-Auth-Token")
	if token == "" {
		return fmt.Errorf("log in: %s answered %d without an X-Auth-Token", c.sessions, resp.status)
	}
	// The session to log out of: Location, else the body's @odata.id
	// (the iLO emulator sends no Location), else none.
	session := resp.header.Get("Location")
	if session == "" {
		if s, err := decodeResource(resp.body); err == nil {
			session = s.ODataID
		}
	}
	c.mu.Lock()
	c.token, c.session = token, session
	c.mu.Unlock()
	c.log.InfoContext(ctx, "redfish session opened", "session", session, "status", resp.status)
	return nil
}

// relogin opens a new session after a 401, unless another request already
// replaced the token that was refused.
func (c *Client) relogin(ctx context.Context, refused string) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	c.mu.Lock()
	current := c.token
	c.mu.Unlock()
	if current != refused {
		return nil
	}
	c.log.InfoContext(ctx, "redfish session expired, logging in again")
	return c.login(ctx)
}

// Close logs out of the session, if there is one the BMC told us about.
func (c *Client) Close(ctx context.Context) error {
	defer c.transport.CloseIdleConnections()
	c.mu.Lock()
	session, token := c.session, c.token
	c.session, c.token = "", ""
	c.mu.Unlock()
	if session == "" {
		if token != "" {
			c.log.InfoContext(ctx, "redfish session left to time out", "reason", "the BMC did not say where it is")
		}
		return nil
	}
	req, err := c.newRequest(ctx, http.MethodDelete, session, nil)
	if err != nil {
		return fmt.Errorf("redfish %s: log out: %w", c.cfg.Endpoint, err)
	}
	req.Header.Set("X-Auth-Token", token)
	resp, err := c.roundTrip(ctx, req)
	if err != nil {
		return fmt.Errorf("redfish %s: log out: %w", c.cfg.Endpoint, err)
	}
	// 401 and 404: the session is gone already.
	if resp.status >= 400 && resp.status != http.StatusUnauthorized && resp.status != http.StatusNotFound {
		return fmt.Errorf("redfish %s: log out: %w", c.cfg.Endpoint, statusError(req, resp))
	}
	c.log.InfoContext(ctx, "redfish session closed", "session", session)
	return nil
}

// ServiceRoot is what the BMC says about itself without credentials.
// Vendor and Product are empty on older services (Intel, Supermicro X10,
// OpenBMC, iDRAC7): use the system's Manufacturer then.
type ServiceRoot struct {
	RedfishVersion, Vendor, Product, UUID string
}

// ServiceRoot returns the service root read by Dial.
func (c *Client) ServiceRoot() ServiceRoot { return c.root.ServiceRoot }

type response struct {
	status int
	header http.Header
	body   []byte
}

// maxBody bounds what the client reads of one answer.
const maxBody = 16 << 20

func (c *Client) newRequest(ctx context.Context, method, ref string, body []byte) (*http.Request, error) {
	u, err := url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("link %q: %w", ref, err)
	}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body) // sets Content-Length
	}
	// Links and Location headers are used for their path only: a BMC may
	// name itself by an address the client does not use, and the session
	// token must not go anywhere else.
	target := c.base.ResolveReference(u)
	target.Scheme, target.Host, target.User = c.base.Scheme, c.base.Host, nil
	req, err := http.NewRequestWithContext(ctx, method, target.String(), r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("OData-Version", "4.0")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

func (c *Client) roundTrip(ctx context.Context, req *http.Request) (*response, error) {
	t0 := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	c.log.DebugContext(ctx, "redfish request", "method", req.Method, "url", req.URL.String(), "status", resp.StatusCode, "took", time.Since(t0))
	return &response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// do sends one request with the client's credentials and returns the
// answer, or an *Error for a status of 400 and above. On a 401 with a
// session it logs in again once and retries. A POST without a body sends
// {}: some services answer 411 to an empty one. etag, when known, goes
// out as If-Match.
func (c *Client) do(ctx context.Context, method, ref string, in any, etag string) (*response, error) {
	var body []byte
	switch {
	case in != nil:
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = b
	case method == http.MethodPost:
		body = []byte("{}")
	}
	for attempt := 0; ; attempt++ {
		req, err := c.newRequest(ctx, method, ref, body)
		if err != nil {
			return nil, err
		}
		if etag != "" {
			req.Header.Set("If-Match", etag)
		}
		c.mu.Lock()
		token := c.token
		switch {
		case token != "":
			req.Header.Set("X-Auth-Token", token)
		case c.basic:
			req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
		}
		c.mu.Unlock()
		resp, err := c.roundTrip(ctx, req)
		if err != nil {
			return nil, err
		}
		if resp.status == http.StatusUnauthorized && token != "" && attempt == 0 {
			if err := c.relogin(ctx, token); err != nil {
				return nil, err
			}
			continue
		}
		if resp.status >= 400 {
			return nil, statusError(req, resp)
		}
		return resp, nil
	}
}

// get reads a resource by its link. When the link 404s it retries once
// with the path spelled as the BMC's own links spell it: HPE iLO links
// /redfish/v1/systems/1/bios into a tree of Systems/1/Bios.
func (c *Client) get(ctx context.Context, ref string) (*response, error) {
	resp, err := c.do(ctx, http.MethodGet, ref, nil, "")
	if !isStatus(err, http.StatusNotFound) {
		return resp, err
	}
	fixed, ok := c.fixCase(ctx, ref)
	if !ok || fixed == trimSlash(ref) {
		return nil, err
	}
	c.log.DebugContext(ctx, "redfish link case corrected", "link", ref, "path", fixed)
	return c.do(ctx, http.MethodGet, fixed, nil, "")
}

// fixCase walks from the service root to ref one segment at a time: it
// reads the parent (spelled as corrected so far), finds the parent's link
// that matches the next segment case-insensitively, and takes that link's
// spelling of the segment. The parent's own prefix may be as wrong as
// ref's: only the last segment of the link is taken.
func (c *Client) fixCase(ctx context.Context, ref string) (string, bool) {
	u, err := url.Parse(ref)
	if err != nil {
		return "", false
	}
	root, p := trimSlash(c.rootPath), trimSlash(u.Path)
	if len(p) <= len(root) || !strings.EqualFold(p[:len(root)], root) || p[len(root)] != '/' {
		return "", false
	}
	cur, parent := root, c.rootPath
	for seg := range strings.SplitSeq(p[len(root)+1:], "/") {
		resp, err := c.do(ctx, http.MethodGet, parent, nil, "")
		if err != nil {
			return "", false
		}
		next := ""
		for _, id := range linksIn(resp.body) {
			if id = trimSlash(id); strings.EqualFold(id, cur+"/"+seg) {
				next = cur + id[strings.LastIndexByte(id, '/'):]
				break
			}
		}
		if next == "" {
			return "", false
		}
		cur, parent = next, next
	}
	return cur, true
}

// members lists a collection's @odata.id values, following nextLink.
func (c *Client) members(ctx context.Context, ref string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for ref != "" && !seen[ref] {
		seen[ref] = true
		resp, err := c.get(ctx, ref)
		if err != nil {
			return nil, err
		}
		col, err := decodeCollection(resp.body)
		if err != nil {
			return nil, fmt.Errorf("collection %s: %w", ref, err)
		}
		out = append(out, col.members...)
		ref = col.next
	}
	return out, nil
}

// trimSlash is how @odata.id values are compared: HPE iLO answers with a
// trailing '/'.
func trimSlash(id string) string {
	if len(id) > 1 {
		return strings.TrimSuffix(id, "/")
	}
	return id
}

// sameID compares two @odata.id values.
func sameID(a, b string) bool { return trimSlash(a) == trimSlash(b) }

// Error is a Redfish error answer.
type Error struct {
	StatusCode int
	Code       string // error.code, e.g. Base.1.8.GeneralError
	MessageID  string // the first @Message.ExtendedInfo MessageId, else Code
	Message    string
	Method     string
	URL        string

	messageIDs []string // every MessageId and the code, for HasMessage
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.MessageID != "" {
		s += " " + e.MessageID
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// HasMessage reports whether err is a Redfish error carrying a message
// whose MessageId ends in suffix, e.g. "InvalidOperationForSystemState".
// Match on message ids, never on text.
func HasMessage(err error, suffix string) bool {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		return false
	}
	for _, id := range e.messageIDs {
		if strings.HasSuffix(id, suffix) {
			return true
		}
	}
	return false
}

func isStatus(err error, status int) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.StatusCode == status
}

func statusError(req *http.Request, resp *response) *Error {
	e := decodeError(resp.status, resp.body)
	e.Method, e.URL = req.Method, req.URL.String()
	return e
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
