package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/devicetls"
)

// Connection is a parsed management connection string,
// "https://10.0.0.9:8443?fingerprint=ab:cd:…": the appliance's API and how
// its certificate is trusted (fingerprint=, or insecure=true).
type Connection struct {
	Endpoint string // "https://host:port"
	Host     string // "host:port"
	Trust    devicetls.Trust
}

// ParseConnection reads a management connection string.
func ParseConnection(s string) (Connection, error) {
	if s == "" {
		return Connection{}, errors.New("the management connection string is empty")
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || strings.Trim(u.Path, "/") != "" {
		return Connection{}, fmt.Errorf("'%s' is not a URL such as https://10.0.0.9:8443?fingerprint=…", s)
	}
	q := u.Query()
	c := Connection{Endpoint: u.Scheme + "://" + u.Host, Host: strings.ToLower(u.Host),
		Trust: devicetls.Trust{Fingerprint: q.Get("fingerprint"), Insecure: q.Get("insecure") == "true"}}
	if err := c.Trust.Validate(); err != nil {
		return Connection{}, fmt.Errorf("'%s': %w", s, err)
	}
	return c, nil
}

// Client calls one appliance's management API. It is safe for concurrent
// use.
type Client struct {
	endpoint           string
	username, password string
	http               *http.Client
}

// Dial returns a client for the appliance at conn that authenticates with
// username and password. It does not connect until the first call.
func Dial(conn Connection, username, password string, caCertPEM []byte) (*Client, error) {
	trust := conn.Trust
	if trust.Fingerprint == "" && !trust.Insecure {
		trust.CACertPEM = caCertPEM
	}
	tlsCfg, err := trust.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("storage appliance %s: trust: %w", conn.Endpoint, err)
	}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsCfg,
		TLSHandshakeTimeout: 5 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     time.Minute,
	}
	return &Client{endpoint: conn.Endpoint, username: username, password: password,
		http: &http.Client{Transport: transport, Timeout: 30 * time.Second}}, nil
}

// Close drops the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Error is an error the appliance answered.
type Error struct {
	Status int
	APIError
}

func (e *Error) Error() string { return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code) }

// IsCode reports whether err is an answer of the appliance with code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// Status reads the appliance's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Volumes lists the appliance's volumes with their exports.
func (c *Client) Volumes(ctx context.Context) ([]Volume, error) {
	var vs []Volume
	return vs, c.do(ctx, http.MethodGet, "/v1/volumes", nil, &vs)
}

// PutVolume creates the volume serial at sizeMiB, or grows it to that.
func (c *Client) PutVolume(ctx context.Context, serial string, sizeMiB int64) (Volume, error) {
	var v Volume
	return v, c.do(ctx, http.MethodPut, "/v1/volumes/"+url.PathEscape(serial), VolumeSpec{SizeMiB: sizeMiB}, &v)
}

// DeleteVolume deletes the volume serial; deleting what is not there
// succeeds.
func (c *Client) DeleteVolume(ctx context.Context, serial string) error {
	return c.do(ctx, http.MethodDelete, "/v1/volumes/"+url.PathEscape(serial), nil, nil)
}

// PutExport exports the volume serial as name to whoever holds spec's key.
func (c *Client) PutExport(ctx context.Context, serial, name string, spec ExportSpec) (Export, error) {
	var e Export
	return e, c.do(ctx, http.MethodPut, "/v1/volumes/"+url.PathEscape(serial)+"/exports/"+url.PathEscape(name), spec, &e)
}

// DeleteExport ends the export name of the volume serial; ending what is
// not there succeeds.
func (c *Client) DeleteExport(ctx context.Context, serial, name string) error {
	return c.do(ctx, http.MethodDelete, "/v1/volumes/"+url.PathEscape(serial)+"/exports/"+url.PathEscape(name), nil, nil)
}

// Run runs one of the ReadCommands.
func (c *Client) Run(ctx context.Context, cmd Command) (CommandResult, error) {
	var r CommandResult
	return r, c.do(ctx, http.MethodPost, "/v1/commands", cmd, &r)
}

// SetVendorManagement turns remote vendor management on until vm.Until,
// or off.
func (c *Client) SetVendorManagement(ctx context.Context, vm VendorManagement) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodPut, "/v1/remote-vendor-management", vm, &s)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+path, body)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.username, c.password)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("storage appliance %s: %w", c.endpoint, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("storage appliance %s: %s %s: %w", c.endpoint, method, path, err)
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		if json.Unmarshal(b, &e.APIError) != nil || e.Message == "" {
			e.Code, e.Message = http.StatusText(resp.StatusCode), strings.TrimSpace(string(b))
		}
		return e
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("storage appliance %s: %s %s: decode: %w", c.endpoint, method, path, err)
	}
	return nil
}
