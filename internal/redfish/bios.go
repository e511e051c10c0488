package redfish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
)

// ErrNoBIOS means the system links no Bios resource: the BMC does not
// show its BIOS settings (older Supermicro and Intel BMCs).
var ErrNoBIOS = errors.New("the system has no Bios resource")

// bios is a system's Bios resource as the client needs it.
type bios struct {
	id         string
	etag       string
	attributes map[string]any
	// settings is the settings object where changes wait for the next
	// reset (@Redfish.Settings.SettingsObject); "" when the BMC has none.
	settings   string
	applyTimes []string // @Redfish.Settings.SupportedApplyTimes
}

func decodeBIOS(b []byte) (bios, error) {
	v, err := decode[struct {
		ODataID    string `json:"@odata.id"`
		ETag       string `json:"@odata.etag"`
		Attributes map[string]any
		Settings   struct {
			SettingsObject      link
			SupportedApplyTimes []string
		} `json:"@Redfish.Settings"`
	}](b)
	return bios{id: v.ODataID, etag: v.ETag, attributes: v.Attributes,
		settings: v.Settings.SettingsObject.ID, applyTimes: v.Settings.SupportedApplyTimes}, err
}

// BIOS reads the system's current BIOS attributes from the Bios resource
// its Bios link names. Values are as the BMC reports them: strings,
// numbers (float64), booleans, or nil for null. Changes staged with SetBIOS
// show only after the reset that applies them.
func (c *Client) BIOS(ctx context.Context, sys string) (map[string]any, error) {
	b, err := c.bios(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("redfish %s: bios %s: %w", c.cfg.Endpoint, sys, err)
	}
	if b.attributes == nil {
		b.attributes = map[string]any{}
	}
	return b.attributes, nil
}

// SetBIOS changes BIOS attributes. Where the Bios resource has a settings
// object (@Redfish.Settings, Bios/Settings on most BMCs) it PATCHes the
// attributes there, asking for them to apply on reset when the BMC lists
// that apply time (Dell creates the configuration job then): they take
// effect at the system's next reset, which is the caller's to request.
// Where there is no settings object it PATCHes the Bios resource itself,
// with If-Match when the BMC gave an ETag, reading it again and retrying
// once on 412.
func (c *Client) SetBIOS(ctx context.Context, sys string, attrs map[string]any) error {
	if err := c.setBIOS(ctx, sys, attrs); err != nil {
		return fmt.Errorf("redfish %s: set bios %s: %w", c.cfg.Endpoint, sys, err)
	}
	return nil
}

func (c *Client) setBIOS(ctx context.Context, sys string, attrs map[string]any) error {
	if len(attrs) == 0 {
		return nil
	}
	b, err := c.bios(ctx, sys)
	if err != nil {
		return err
	}
	body := map[string]any{"Attributes": attrs}
	if b.settings != "" {
		if slices.Contains(b.applyTimes, "OnReset") {
			body["@Redfish.SettingsApplyTime"] = map[string]any{"ApplyTime": "OnReset"}
		}
		resp, err := c.patch(ctx, b.settings, body, "")
		if err != nil {
			return err
		}
		c.log.InfoContext(ctx, "redfish bios settings staged", "system", sys, "settings", b.settings, "attributes", len(attrs), "status", resp.status)
		return nil
	}
	_, err = c.patch(ctx, b.id, body, b.etag)
	if isStatus(err, http.StatusPreconditionFailed) {
		c.log.InfoContext(ctx, "redfish etag changed, retrying", "bios", b.id)
		if b, err = c.bios(ctx, sys); err != nil {
			return err
		}
		_, err = c.patch(ctx, b.id, body, b.etag)
	}
	if err != nil {
		return err
	}
	c.log.InfoContext(ctx, "redfish bios attributes set", "system", sys, "bios", b.id, "attributes", len(attrs))
	return nil
}

// bios reads the system's Bios resource.
func (c *Client) bios(ctx context.Context, sys string) (*bios, error) {
	s, err := c.system(ctx, sys)
	if err != nil {
		return nil, err
	}
	if s.links.bios == "" {
		return nil, ErrNoBIOS
	}
	resp, err := c.get(ctx, s.links.bios)
	if err != nil {
		return nil, err
	}
	b, err := decodeBIOS(resp.body)
	if err != nil {
		return nil, fmt.Errorf("bios %s: %w", s.links.bios, err)
	}
	if b.id == "" {
		b.id = s.links.bios
	}
	if etag := resp.header.Get("ETag"); etag != "" {
		b.etag = etag
	}
	return &b, nil
}

// patch sends a PATCH to a link. When the link 404s it retries once with
// the path spelled as the BMC's own links spell it, as get does: HPE iLO
// links its Bios settings in lower case.
func (c *Client) patch(ctx context.Context, ref string, in any, etag string) (*response, error) {
	resp, err := c.do(ctx, http.MethodPatch, ref, in, etag)
	if !isStatus(err, http.StatusNotFound) {
		return resp, err
	}
	fixed, ok := c.fixCase(ctx, ref)
	if !ok || fixed == trimSlash(ref) {
		return nil, err
	}
	c.log.DebugContext(ctx, "redfish link case corrected", "link", ref, "path", fixed)
	return c.do(ctx, http.MethodPatch, fixed, in, etag)
}
