package fleet

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/agentauth"
)

// Devices is the fabric's side of its network devices (provider
// fabric): who may bootstrap, what each device should run, and what its
// reports change.
type Devices interface {
	// Bootstrap finds the device that awaits its zero-touch bootstrap
	// with serial number serial: its ID and configuration.
	Bootstrap(ctx context.Context, serial string) (device string, cfg agentapi.DeviceConfig, err error)
	DeviceConfig(ctx context.Context, device string) (agentapi.DeviceConfig, error)
	Report(ctx context.Context, device string, st agentapi.DeviceState) (agentapi.DeviceReply, error)
}

const deviceType = "Microsoft.ManagedNetworkFabric/networkDevices"

// ztp admits a device by its serial number while its networkDevice
// awaits it: the device gets a client certificate naming the
// networkDevice, and its configuration.
func (s *Server) ztp(w http.ResponseWriter, r *http.Request) {
	var req agentapi.ZTPRequest
	if err := decode(r, &req); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	device, cfg, err := s.cfg.Devices.Bootstrap(r.Context(), req.SerialNumber)
	if err != nil {
		s.log.DebugContext(r.Context(), "device bootstrap refused", "serial", req.SerialNumber, "err", err)
		fail(w, http.StatusForbidden, errors.New("no device awaits a bootstrap with this serial number"))
		return
	}
	certPEM, err := s.cfg.Auth.Admit(device, []byte(req.CSR))
	switch {
	case errors.Is(err, agentauth.ErrBadCSR):
		fail(w, http.StatusBadRequest, err)
		return
	case err != nil:
		fail(w, http.StatusInternalServerError, err)
		return
	}
	s.log.InfoContext(r.Context(), "device bootstrapped", "device", device)
	s.reply(w, agentapi.ZTPReply{Device: device, Certificate: string(certPEM), CACertificate: string(s.cfg.Auth.CACertPEM()),
		Config: cfg, ReportSeconds: int(s.cfg.DeviceReport / time.Second)})
}

// device wraps a handler for calls only devices make.
func (s *Server) device(h func(http.ResponseWriter, *http.Request, peer)) http.HandlerFunc {
	return s.authenticated(func(w http.ResponseWriter, r *http.Request, p peer) {
		if !strings.EqualFold(p.id.Type(), deviceType) {
			fail(w, http.StatusForbidden, errors.New("only network devices may call this"))
			return
		}
		h(w, r, p)
	})
}

func (s *Server) deviceConfig(w http.ResponseWriter, r *http.Request, p peer) {
	cfg, err := s.cfg.Devices.DeviceConfig(r.Context(), p.name)
	if err != nil {
		fail(w, http.StatusNotFound, err)
		return
	}
	s.reply(w, cfg)
}

func (s *Server) deviceState(w http.ResponseWriter, r *http.Request, p peer) {
	var st agentapi.DeviceState
	if err := decode(r, &st); err != nil {
		fail(w, http.StatusBadRequest, err)
		return
	}
	reply, err := s.cfg.Devices.Report(r.Context(), p.name, st)
	if err != nil {
		s.log.WarnContext(r.Context(), "device report refused", "device", p.name, "err", err)
		fail(w, http.StatusNotFound, err)
		return
	}
	s.reply(w, reply)
}
