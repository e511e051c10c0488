package redfish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// ErrNoVirtualMedia means the BMC has no virtual CD/DVD drive that takes
// an image by URL: Supermicro X10 (OEM only), Intel and stock OpenBMC.
var ErrNoVirtualMedia = errors.New("no virtual CD/DVD with an InsertMedia action")

// media is a VirtualMedia device.
type media struct {
	ODataID        string `json:"@odata.id"`
	ID             string `json:"Id"`
	MediaTypes     []string
	Image          string
	Inserted       bool
	WriteProtected bool
	Actions        map[string]action
}

const (
	insertAction = "#VirtualMedia.InsertMedia"
	ejectAction  = "#VirtualMedia.EjectMedia"
)

func decodeMedia(b []byte) (media, error) { return decode[media](b) }

// VirtualMedia returns the @odata.id of the system's virtual CD/DVD
// drive: the first device with a CD or DVD media type and an InsertMedia
// action, looked for under the system first (DMTF, sushy-tools, iDRAC9),
// then under each manager that manages it (HPE iLO, older iDRAC, AMI).
// AMI reports MediaTypes null: then an Id containing "CD" counts.
func (c *Client) VirtualMedia(ctx context.Context, sys string) (string, error) {
	m, err := c.virtualMedia(ctx, sys)
	if err != nil {
		return "", fmt.Errorf("redfish %s: virtual media of %s: %w", c.cfg.Endpoint, sys, err)
	}
	return m.ODataID, nil
}

func (c *Client) virtualMedia(ctx context.Context, sys string) (media, error) {
	s, err := c.system(ctx, sys)
	if err != nil {
		return media{}, err
	}
	if m, ok, err := c.findCD(ctx, s.links.virtualMedia); ok || err != nil {
		return m, err
	}
	for _, id := range s.links.managedBy {
		mgr, err := read(ctx, c, id, decodeManager)
		if err != nil {
			return media{}, err
		}
		if m, ok, err := c.findCD(ctx, mgr.VirtualMedia.ID); ok || err != nil {
			return m, err
		}
	}
	return media{}, ErrNoVirtualMedia
}

// findCD returns the first CD/DVD drive with an InsertMedia action in a
// VirtualMedia collection, if any.
func (c *Client) findCD(ctx context.Context, col string) (media, bool, error) {
	if col == "" {
		return media{}, false, nil
	}
	ids, err := c.members(ctx, col)
	if err != nil {
		return media{}, false, err
	}
	for _, id := range ids {
		m, err := c.media(ctx, id)
		if err != nil {
			return media{}, false, err
		}
		if m.Actions[insertAction].target != "" && isCD(m) {
			return m, true, nil
		}
	}
	return media{}, false, nil
}

func isCD(m media) bool {
	if m.MediaTypes == nil {
		return strings.Contains(strings.ToUpper(m.ID), "CD")
	}
	return slices.ContainsFunc(m.MediaTypes, func(t string) bool {
		return strings.EqualFold(t, "CD") || strings.EqualFold(t, "DVD")
	})
}

func (c *Client) media(ctx context.Context, id string) (media, error) {
	m, err := read(ctx, c, id, decodeMedia)
	if m.ODataID == "" {
		m.ODataID = id
	}
	return m, err
}

// InsertMedia mounts the image at imageURL, read-only, in the system's
// virtual CD/DVD drive, ejecting what is there first, and reads back that
// it is inserted. The BMC fetches the image itself: the URL must be
// reachable from the BMC's network.
func (c *Client) InsertMedia(ctx context.Context, sys, imageURL string) error {
	if err := c.insertMedia(ctx, sys, imageURL); err != nil {
		return fmt.Errorf("redfish %s: insert media %s into %s: %w", c.cfg.Endpoint, redact(imageURL), sys, err)
	}
	return nil
}

func (c *Client) insertMedia(ctx context.Context, sys, imageURL string) error {
	u, err := url.Parse(imageURL)
	if err != nil {
		return err
	}
	if u.Scheme == "" || u.Host == "" {
		return errors.New("the image URL needs a scheme and a host")
	}
	m, err := c.virtualMedia(ctx, sys)
	if err != nil {
		return err
	}
	if m.Inserted || m.Image != "" {
		if err := c.eject(ctx, m); err != nil {
			return err
		}
	}
	insert := m.Actions[insertAction]
	body := map[string]any{"Image": imageURL, "Inserted": true, "WriteProtected": true}
	allowed, err := c.allowable(ctx, insert, "TransferProtocolType")
	if err != nil {
		return err
	}
	// Sent only where the BMC lists it: older services reject unknown
	// properties.
	if proto := transferProtocol(u.Scheme); allowed != nil {
		if !slices.Contains(allowed, proto) {
			return fmt.Errorf("the BMC takes images over %s only", strings.Join(allowed, ", "))
		}
		body["TransferProtocolType"] = proto
	}
	if _, err := c.do(ctx, http.MethodPost, insert.target, body, ""); err != nil {
		return err
	}
	c.log.InfoContext(ctx, "redfish media inserted", "system", sys, "media", m.ODataID, "image", redact(imageURL))
	got, err := c.media(ctx, m.ODataID)
	if err != nil {
		return err
	}
	if !got.Inserted {
		return fmt.Errorf("read back %s: not inserted", m.ODataID)
	}
	return nil
}

// redact hides the password of an image URL in logs and errors.
func redact(imageURL string) string {
	u, err := url.Parse(imageURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// transferProtocol maps a URL scheme to a TransferProtocolType.
func transferProtocol(scheme string) string {
	if strings.EqualFold(scheme, "smb") {
		return "CIFS"
	}
	return strings.ToUpper(scheme)
}

// EjectMedia empties the system's virtual CD/DVD drive; an empty drive is
// success.
func (c *Client) EjectMedia(ctx context.Context, sys string) error {
	if err := c.ejectMedia(ctx, sys); err != nil {
		return fmt.Errorf("redfish %s: eject media from %s: %w", c.cfg.Endpoint, sys, err)
	}
	return nil
}

func (c *Client) ejectMedia(ctx context.Context, sys string) error {
	m, err := c.virtualMedia(ctx, sys)
	if err != nil {
		return err
	}
	if !m.Inserted && m.Image == "" {
		return nil
	}
	if err := c.eject(ctx, m); err != nil {
		return err
	}
	got, err := c.media(ctx, m.ODataID)
	if err != nil {
		return err
	}
	if got.Inserted {
		return fmt.Errorf("read back %s: still inserted", m.ODataID)
	}
	return nil
}

// eject posts EjectMedia. A refusal is ignored when the drive reads as
// empty afterwards: BMCs refuse to eject what is not inserted, each with
// its own message.
func (c *Client) eject(ctx context.Context, m media) error {
	target := m.Actions[ejectAction].target
	if target == "" {
		return fmt.Errorf("%s has no EjectMedia action", m.ODataID)
	}
	_, err := c.do(ctx, http.MethodPost, target, nil, "")
	if err == nil {
		c.log.InfoContext(ctx, "redfish media ejected", "media", m.ODataID)
		return nil
	}
	if got, rerr := c.media(ctx, m.ODataID); rerr == nil && !got.Inserted {
		c.log.DebugContext(ctx, "redfish eject refused, drive empty", "media", m.ODataID, "error", err)
		return nil
	}
	return err
}

// Reimage boots the system from an image: once any power change in
// progress has ended, insert it (ejecting what was there), set a one-time
// UEFI boot from CD, then ForceRestart if the system is on or On if it is
// off, and wait until it is On. progress, if
// not nil, hears each step. Ejecting the image after the install is the
// caller's.
func (c *Client) Reimage(ctx context.Context, sys, imageURL string, progress func(step string)) error {
	if progress == nil {
		progress = func(string) {}
	}
	if err := c.reimage(ctx, sys, imageURL, progress); err != nil {
		return fmt.Errorf("redfish %s: reimage %s from %s: %w", c.cfg.Endpoint, sys, redact(imageURL), err)
	}
	return nil
}

func (c *Client) reimage(ctx context.Context, sys, imageURL string, progress func(string)) error {
	s, err := c.systemForReset(ctx, sys)
	if err != nil {
		return err
	}
	// A BMC refuses a reset while the system changes state, and a boot in
	// progress would take the one-time override meant for this one (a
	// reimage started again after an interruption finds the machine
	// booting): let the change end first.
	if settled, ok := map[string]string{"PoweringOn": On, "PoweringOff": Off}[s.PowerState]; ok {
		progress("wait for " + settled)
		if err := c.waitPower(ctx, sys, settled, c.cfg.PowerTimeout); err != nil {
			return err
		}
		if s, err = c.systemForReset(ctx, sys); err != nil {
			return err
		}
	}
	progress("insert media")
	if err := c.insertMedia(ctx, sys, imageURL); err != nil {
		return err
	}
	progress("set boot override Cd once")
	if err := c.setBoot(ctx, sys, BootOverride{Target: "Cd", Enabled: "Once", Mode: "UEFI"}); err != nil {
		return err
	}
	resetType := "ForceRestart"
	if s.PowerState == Off {
		resetType = On
	}
	progress("reset " + resetType)
	if err := c.reset(ctx, s, resetType); err != nil {
		return err
	}
	progress("wait for power on")
	return c.waitPower(ctx, sys, On, c.cfg.PowerTimeout)
}
