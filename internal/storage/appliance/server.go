package appliance

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/citadel-cloud/citadel/internal/storage"
)

const (
	// maxBody is the largest request body accepted.
	maxBody = 1 << 20
	// maxVolumeMiB is the largest volume (1 PiB), which keeps sums of
	// sizes far from overflowing.
	maxVolumeMiB = 1 << 30
)

// Server is an appliance's management API (package storage's routes) over
// a Driver. It serialises mutations, so a driver sees one at a time.
type Server struct {
	cfg          Config
	d            Driver
	log          *slog.Logger
	user, passwd [sha256.Size]byte
	now          func() time.Time
	mux          *http.ServeMux

	mu     sync.Mutex // held by every mutation
	vendor atomic.Pointer[storage.VendorManagement]
}

// NewServer serves d as the appliance cfg describes (its identity,
// credentials and logger; the listen address and data directory are the
// Service's).
func NewServer(cfg Config, d Driver) *Server {
	s := &Server{cfg: cfg, d: d, log: cfg.logger().With("component", "storage_api"), now: time.Now, mux: http.NewServeMux(),
		user: sha256.Sum256([]byte(cfg.Username)), passwd: sha256.Sum256([]byte(cfg.Password))}
	s.vendor.Store(&storage.VendorManagement{})
	s.handle("GET /v1/status", s.status)
	s.handle("GET /v1/volumes", s.volumes)
	s.handle("PUT /v1/volumes/{serial}", s.putVolume)
	s.handle("DELETE /v1/volumes/{serial}", s.deleteVolume)
	s.handle("PUT /v1/volumes/{serial}/exports/{name}", s.putExport)
	s.handle("DELETE /v1/volumes/{serial}/exports/{name}", s.deleteExport)
	s.handle("POST /v1/commands", s.command)
	s.handle("PUT /v1/remote-vendor-management", s.setVendorManagement)
	s.handle("/", func(r *http.Request) (any, error) {
		return nil, &apiError{http.StatusNotFound, storage.CodeNotFound, fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)}
	})
	return s
}

// ServeHTTP authenticates the request, then routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, passwd, ok := r.BasicAuth()
	u, p := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(passwd))
	if subtle.ConstantTimeCompare(u[:], s.user[:])&subtle.ConstantTimeCompare(p[:], s.passwd[:]) != 1 || !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="citadel storage appliance"`)
		s.writeError(w, r, &apiError{http.StatusUnauthorized, storage.CodeUnauthorized, "the user name or password is wrong"})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// handle routes pattern to h, which answers a value as JSON (nil: 204) or
// an error.
func (s *Server) handle(pattern string, h func(*http.Request) (any, error)) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		out, err := h(r)
		switch {
		case err != nil:
			s.writeError(w, r, err)
		case out == nil:
			w.WriteHeader(http.StatusNoContent)
		default:
			writeJSON(w, http.StatusOK, out)
		}
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away
}

// apiError is an error answered as it is.
type apiError struct {
	status        int
	code, message string
}

func (e *apiError) Error() string { return e.message }

func invalid(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, storage.CodeInvalid, fmt.Sprintf(format, args...)}
}

func conflict(format string, args ...any) error {
	return &apiError{http.StatusConflict, storage.CodeConflict, fmt.Sprintf(format, args...)}
}

// writeError is the one place an error becomes a status: an apiError as
// it is, a driver's ErrInsufficient as 507, anything else as 500 with
// the details in the log only.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := errors.AsType[*apiError](err)
	switch {
	case ok:
	case errors.Is(err, ErrInsufficient):
		s.log.WarnContext(r.Context(), "request refused for space", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &apiError{http.StatusInsufficientStorage, storage.CodeInsufficient, "the appliance has no room for the volume"}
	default:
		s.log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		e = &apiError{http.StatusInternalServerError, http.StatusText(http.StatusInternalServerError), "the appliance failed; its log has the details"}
	}
	writeJSON(w, e.status, storage.APIError{Code: e.code, Message: e.message})
}

// decode reads r's body strictly into v: one JSON value, no unknown
// fields, at most maxBody bytes.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return invalid("the request body has more than one JSON value")
		}
		return nil
	}
	if errors.Is(err, io.EOF) {
		return invalid("the request body is empty")
	}
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return invalid("the request body is larger than %d bytes", maxBody)
	}
	return invalid("the request body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// pathName is the path value key, checked with storage.ValidName.
func pathName(r *http.Request, key, what string) (string, error) {
	v := r.PathValue(key)
	if !storage.ValidName(v) {
		return "", invalid("%s %q must be 1 to 63 letters, digits or '-', starting with a letter or digit", what, v)
	}
	return v, nil
}

func (s *Server) status(*http.Request) (any, error) {
	c, err := s.d.Capacity()
	if err != nil {
		return nil, err
	}
	health, message := s.d.Health()
	return storage.Status{
		SerialNumber: s.cfg.SerialNumber, Manufacturer: s.cfg.Manufacturer, Model: s.cfg.Model, Version: s.cfg.Version,
		Driver: s.d.Name(), CapacityMiB: c.CapacityMiB, UsedMiB: c.UsedMiB, ProvisionedMiB: c.ProvisionedMiB,
		Health: health, HealthMessage: message, ExpansionShelves: []storage.Shelf{}, VendorManagement: s.vendorManagement(),
	}, nil
}

// vendorManagement is the switch as it stands now: off once Until has
// passed.
func (s *Server) vendorManagement() storage.VendorManagement {
	vm := *s.vendor.Load()
	if vm.Enabled && !s.now().Before(vm.Until) {
		vm.Enabled = false
	}
	return vm
}

func (s *Server) volumes(*http.Request) (any, error) { return s.d.Volumes() }

func (s *Server) putVolume(r *http.Request) (any, error) {
	serial, err := pathName(r, "serial", "volume serial number")
	if err != nil {
		return nil, err
	}
	var spec storage.VolumeSpec
	if err := decode(r, &spec); err != nil {
		return nil, err
	}
	if spec.SizeMiB < 1 || spec.SizeMiB > maxVolumeMiB {
		return nil, invalid("sizeMiB %d must be from 1 to %d", spec.SizeMiB, maxVolumeMiB)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, exists, err := s.d.Volume(serial)
	if err != nil {
		return nil, err
	}
	if exists && spec.SizeMiB < old.SizeMiB {
		return nil, conflict("volume %q is %d MiB and cannot shrink to %d MiB", serial, old.SizeMiB, spec.SizeMiB)
	}
	if growth := spec.SizeMiB - old.SizeMiB; growth > 0 {
		c, err := s.d.Capacity()
		if err != nil {
			return nil, err
		}
		if growth > c.FreeMiB {
			return nil, &apiError{http.StatusInsufficientStorage, storage.CodeInsufficient,
				fmt.Sprintf("volume %q needs %d MiB more and the appliance has %d MiB free", serial, growth, c.FreeMiB)}
		}
	}
	v, err := s.d.PutVolume(r.Context(), serial, spec.SizeMiB)
	if err != nil {
		return nil, err
	}
	switch {
	case !exists:
		s.log.InfoContext(r.Context(), "volume created", "volume", serial, "size_mib", v.SizeMiB)
	case v.SizeMiB > old.SizeMiB:
		s.log.InfoContext(r.Context(), "volume grown", "volume", serial, "size_mib", v.SizeMiB, "old_size_mib", old.SizeMiB)
	}
	return v, nil
}

func (s *Server) deleteVolume(r *http.Request) (any, error) {
	serial, err := pathName(r, "serial", "volume serial number")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, exists, err := s.d.Volume(serial)
	if err != nil || !exists {
		return nil, err
	}
	if len(v.Exports) > 0 {
		names := make([]string, len(v.Exports))
		for i, e := range v.Exports {
			names[i] = e.Name
		}
		return nil, conflict("volume %q is exported as %s: delete its exports first", serial, strings.Join(names, ", "))
	}
	if err := s.d.DeleteVolume(r.Context(), serial); err != nil {
		return nil, err
	}
	s.log.InfoContext(r.Context(), "volume deleted", "volume", serial, "size_mib", v.SizeMiB)
	return nil, nil
}

// exportPath reads the volume and export names of an export's route.
func exportPath(r *http.Request) (serial, name string, err error) {
	if serial, err = pathName(r, "serial", "volume serial number"); err != nil {
		return "", "", err
	}
	name, err = pathName(r, "name", "export name")
	return serial, name, err
}

func (s *Server) putExport(r *http.Request) (any, error) {
	serial, name, err := exportPath(r)
	if err != nil {
		return nil, err
	}
	var spec storage.ExportSpec
	if err := decode(r, &spec); err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, invalid("%v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, exists, err := s.d.Volume(serial); err != nil || !exists {
		if err == nil {
			err = &apiError{http.StatusNotFound, storage.CodeNotFound, fmt.Sprintf("volume %q not found", serial)}
		}
		return nil, err
	}
	e, err := s.d.PutExport(r.Context(), serial, name, spec)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(r.Context(), "export put", "volume", serial, "export", name, "psk_identity", e.PSKIdentity, "port", e.Port)
	return e, nil
}

func (s *Server) deleteExport(r *http.Request) (any, error) {
	serial, name, err := exportPath(r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.d.DeleteExport(r.Context(), serial, name); err != nil {
		return nil, err
	}
	s.log.InfoContext(r.Context(), "export deleted", "volume", serial, "export", name)
	return nil, nil
}

func (s *Server) setVendorManagement(r *http.Request) (any, error) {
	var vm storage.VendorManagement
	if err := decode(r, &vm); err != nil {
		return nil, err
	}
	switch {
	case vm.Enabled && !vm.Until.After(s.now()):
		return nil, invalid("until must be in the future to enable remote vendor management")
	case !vm.Enabled:
		vm.Until = time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vendor.Store(&vm)
	s.log.InfoContext(r.Context(), "remote vendor management set", "enabled", vm.Enabled, "until", vm.Until)
	return s.status(r)
}

func (s *Server) command(r *http.Request) (any, error) {
	var cmd storage.Command
	if err := decode(r, &cmd); err != nil {
		return nil, err
	}
	if _, ok := storage.ReadCommands[cmd.Command]; !ok {
		return nil, invalid("command %q is not allowed; the commands are %s", cmd.Command,
			strings.Join(slices.Sorted(maps.Keys(storage.ReadCommands)), ", "))
	}
	switch n := len(cmd.Arguments); {
	case cmd.Command == "volumes" && n > 1:
		return nil, invalid("command %q takes at most one argument, a volume serial number", cmd.Command)
	case cmd.Command != "volumes" && n > 0:
		return nil, invalid("command %q takes no arguments", cmd.Command)
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	exit, err := s.run(tw, cmd)
	if err != nil {
		return nil, err
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	return storage.CommandResult{Output: b.String(), ExitCode: exit}, nil
}

// run writes a read command's output, computed from the driver's state.
// Keys are never part of it: drivers do not return them.
func (s *Server) run(w io.Writer, cmd storage.Command) (int, error) {
	switch cmd.Command {
	case "capacity":
		c, err := s.d.Capacity()
		if err != nil {
			return 0, err
		}
		fmt.Fprintf(w, "capacity\t%d MiB\nused\t%d MiB\nprovisioned\t%d MiB\nfree\t%d MiB\n", c.CapacityMiB, c.UsedMiB, c.ProvisionedMiB, c.FreeMiB)
	case "health":
		health, message := s.d.Health()
		fmt.Fprintln(w, strings.TrimSuffix(health+": "+message, ": "))
	case "version":
		fmt.Fprintf(w, "manufacturer\t%s\nmodel\t%s\nversion\t%s\ndriver\t%s\nexpansion shelves\tnone\n",
			s.cfg.Manufacturer, s.cfg.Model, s.cfg.Version, s.d.Name())
	case "volumes":
		vs, err := s.d.Volumes()
		if err != nil {
			return 0, err
		}
		if len(cmd.Arguments) == 1 {
			vs = slices.DeleteFunc(vs, func(v storage.Volume) bool { return v.SerialNumber != cmd.Arguments[0] })
			if len(vs) == 0 {
				fmt.Fprintf(w, "no volume %q\n", cmd.Arguments[0])
				return 1, nil
			}
		}
		fmt.Fprintln(w, "SERIAL\tSIZE MiB\tALLOCATED MiB\tEXPORTS")
		for _, v := range vs {
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\n", v.SerialNumber, v.SizeMiB, v.AllocatedMiB, len(v.Exports))
		}
	case "exports":
		vs, err := s.d.Volumes()
		if err != nil {
			return 0, err
		}
		fmt.Fprintln(w, "VOLUME\tEXPORT\tADDRESS\tEXPORT NAME\tPSK IDENTITY")
		for _, v := range vs {
			for _, e := range v.Exports {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", v.SerialNumber, e.Name, net.JoinHostPort(e.Host, strconv.Itoa(e.Port)), e.ExportName, e.PSKIdentity)
			}
		}
	}
	return 0, nil
}
