// Package redfishsim simulates Redfish BMCs over real HTTP(S), so that
// Citadel's control plane can drive simulated machines through its Redfish
// client exactly as it drives real ones.
//
// A BMC is a tree of Redfish resources, loaded from a DMTF mockup directory
// (FromMockup) or generated for one server (New), plus the live state a real
// BMC keeps: power, boot override, virtual media, sessions and event
// subscriptions. It answers like the real peers described in
// docs/redfish.md: sessions and Basic auth, ComputerSystem.Reset through
// PoweringOn and PoweringOff, a one-time boot override that a boot clears,
// virtual media insert and eject, BIOS settings staged in Bios/Settings
// and applied at the next boot, firmware flashed by
// UpdateService.SimpleUpdate in a TaskService task, ETags with If-Match,
// Base registry errors, and events pushed to subscribers. Faults (an unreachable BMC, a failed
// DIMM, a power loss, a BIOS setting changed by hand) are injected at run
// time.
//
// The fleet simulator runs thousands of BMCs, so a BMC keeps its resources
// as compact JSON, computes power transitions from timestamps when it is
// read, and starts goroutines only to deliver events and to fetch firmware
// packages. Serve and Fleet put BMCs on loopback listeners.
//
// # Firmware packages
//
// UpdateService.SimpleUpdate answers 202 with a task monitor, and the task
// fetches ImageURI with Options.HTTPClient, the client and trust virtual
// media use (always, whatever FetchImages says). A simulated BMC flashes
// only Citadel's simulated firmware packages, whose first line is
//
//	citadel-firmware <component> <version>\n
//
// where component is the Id of a FirmwareInventory member ("BIOS", "BMC",
// "NIC1"); the rest of the package is read and ignored. The simulated BMC
// applies a package at once: when the task completes, the member's Version
// (and for the BIOS the system's BiosVersion) is the package's, with no
// reset, where a real BMC would often wait for one. A package that cannot
// be fetched, is not such a package, is for a component the BMC lacks or
// for one the request's Targets leave out ends the task in an Exception,
// with an Update registry message that says why.
//
// The fleet simulator (internal/sim) and tests import this package; it
// imports only the standard library and github.com/google/uuid.
package redfishsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a simulated BMC.
type Options struct {
	// Username and Password are the credentials the BMC accepts, in a
	// session login or as Basic auth. An empty Username turns
	// authentication off.
	Username, Password string
	// PowerOnDelay and PowerOffDelay are the times the system spends in
	// PoweringOn and PoweringOff before it is On or Off.
	PowerOnDelay, PowerOffDelay time.Duration
	// InitialPower is "On" or "Off". A generated BMC starts Off unless it
	// is "On"; a loaded one keeps the mockup's PowerState when it is empty.
	InitialPower string
	// FetchImages makes InsertMedia check the image URL with a HEAD request
	// (GET when HEAD is not allowed), as real BMCs fetch the image, and
	// refuse the insert when it is unreachable or does not answer 2xx.
	FetchImages bool
	// HTTPClient fetches images and firmware packages and delivers
	// events; nil means a client with a 10 s timeout that verifies
	// certificates.
	HTTPClient *http.Client
	// Now is the clock for power transitions and session expiry; nil means
	// time.Now.
	Now func() time.Time
	// OnInstall, if set, is called, in a goroutine of its own, when the
	// host boots from virtual media: a reimage installed image (the fleet
	// simulator gives the machine a pristine OS then).
	OnInstall func(image string)
	Logger    *slog.Logger
}

var defaultClient = &http.Client{Timeout: 10 * time.Second}

// BMC is one simulated BMC: a tree of Redfish resources, keyed by URL path
// without a trailing slash, plus live state. It is safe for concurrent use
// and serves the Redfish API as an http.Handler.
type BMC struct {
	opts        Options
	log         *slog.Logger
	unreachable atomic.Bool

	// Found by following links once, at construction, and not changed after.
	system, sessionsPath, subsPath string
	tasksPath                      string                 // the TaskService's Tasks, where update tasks go
	bios, biosSettings             string                 // the host's Bios and its settings object, or ""
	posts                          map[string]postHandler // action targets and collections that take POST
	sessionTimeout                 time.Duration

	mu    sync.Mutex        // guards the tree and the state below
	res   map[string][]byte // resource path → compact JSON object; replaced, never changed in place
	files map[string]file   // other documents of a mockup ($metadata, registries)

	power      power
	sessions   map[string]*session    // X-Auth-Token → session
	subHeaders map[string]http.Header // subscription path → HttpHeaders to send
	outbox     []delivery
	delivering bool
	eventID    int
	taskID     int               // the Id of the last task
	monitors   map[string]string // task monitor → task
	resets     int
	reimages   int
	booted     string
}

// postHandler answers a POST to an action target or a collection; body is
// the request body.
type postHandler func(b *BMC, w http.ResponseWriter, r *http.Request, body []byte) error

// file is a document of a mockup that is not a Redfish resource.
type file struct {
	contentType string
	body        []byte
}

// newBMC wraps a resource tree, finds the paths it acts on and applies the
// initial power state.
func newBMC(res map[string][]byte, files map[string]file, opts Options) (*BMC, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = defaultClient
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	b := &BMC{opts: opts, log: log.With("component", "redfishsim"), res: res, files: files}
	if _, ok := b.res[rootPath]; !ok {
		return nil, fmt.Errorf("no service root %s", rootPath)
	}
	b.index()
	if b.system == "" {
		return nil, fmt.Errorf("no computer system with a #ComputerSystem.Reset action")
	}
	sys, _ := b.object(b.system)
	b.power.observed, _ = sys["PowerState"].(string)
	if opts.InitialPower != "" {
		if opts.InitialPower != "On" && opts.InitialPower != "Off" {
			return nil, fmt.Errorf("initial power %q: want On or Off", opts.InitialPower)
		}
		b.power.observed = opts.InitialPower
		sys["PowerState"] = opts.InitialPower
		b.put(b.system, sys)
	}
	return b, nil
}

const rootPath = "/redfish/v1"

// index follows the links from the service root to the resources the
// simulator acts on: the host system and its Reset target, the session and
// subscription collections, and the action targets of virtual media and the
// event service.
func (b *BMC) index() {
	b.posts = map[string]postHandler{}
	root, _ := b.object(rootPath)
	for _, m := range b.members(linkOf(root, "Systems")) {
		sys, _ := b.object(m)
		if t := actionTarget(sys, "#ComputerSystem.Reset"); t != "" {
			b.system = m
			b.posts[t] = (*BMC).reset
			b.bios = linkOf(sys, "Bios")
			bios, _ := b.object(b.bios)
			b.biosSettings = linkOf(child(bios, "@Redfish.Settings"), "SettingsObject")
			break
		}
	}
	sessionService, _ := b.object(linkOf(root, "SessionService"))
	b.sessionsPath = linkOf(sessionService, "Sessions")
	if b.sessionsPath == "" {
		b.sessionsPath = rootPath + "/SessionService/Sessions"
	}
	b.posts[b.sessionsPath] = (*BMC).login
	b.sessionTimeout = 30 * time.Minute
	if n, ok := number(sessionService["SessionTimeout"]); ok && n > 0 {
		b.sessionTimeout = time.Duration(n * float64(time.Second))
	}
	events, _ := b.object(linkOf(root, "EventService"))
	b.subsPath = linkOf(events, "Subscriptions")
	if b.subsPath != "" {
		b.posts[b.subsPath] = (*BMC).subscribe
	}
	if t := actionTarget(events, "#EventService.SubmitTestEvent"); t != "" {
		b.posts[t] = (*BMC).submitTestEvent
	}
	b.monitors = map[string]string{}
	if t := actionTarget(b.updateService(), "#UpdateService.SimpleUpdate"); t != "" {
		b.posts[t] = (*BMC).simpleUpdate
		b.indexTasks(root)
	}
	for p, body := range b.res {
		if !isType(body, "VirtualMedia") {
			continue
		}
		vm, _ := b.object(p)
		if t := actionTarget(vm, "#VirtualMedia.InsertMedia"); t != "" {
			b.posts[t] = func(b *BMC, w http.ResponseWriter, r *http.Request, in []byte) error {
				return b.insertMedia(w, r, p, in)
			}
		}
		if t := actionTarget(vm, "#VirtualMedia.EjectMedia"); t != "" {
			b.posts[t] = func(b *BMC, w http.ResponseWriter, r *http.Request, in []byte) error {
				return b.ejectMedia(w, r, p, in)
			}
		}
	}
}

// indexTasks finds the TaskService's Tasks collection, where update
// tasks go, and makes a TaskService with one where the tree has none.
// Older services (the DMTF mockups) link the TaskService as Tasks.
func (b *BMC) indexTasks(root map[string]any) {
	service := linkOf(root, "TaskService")
	if service == "" {
		service = linkOf(root, "Tasks")
	}
	taskService, ok := b.object(service)
	if b.tasksPath = linkOf(taskService, "Tasks"); b.tasksPath != "" {
		return
	}
	if !ok {
		service = rootPath + "/TaskService"
		root["TaskService"] = link(service)
		b.put(rootPath, root)
		taskService = map[string]any{"@odata.id": service, "@odata.type": "#TaskService.v1_3_0.TaskService", "Id": "TaskService", "Name": "Task Service",
			"ServiceEnabled": true, "CompletedTaskOverWritePolicy": "Oldest", "Status": map[string]any{"State": "Enabled", "Health": "OK"}}
	}
	b.tasksPath = service + "/Tasks"
	taskService["Tasks"] = link(b.tasksPath)
	b.put(service, taskService)
	if _, ok := b.object(b.tasksPath); !ok {
		b.put(b.tasksPath, map[string]any{"@odata.id": b.tasksPath, "@odata.type": "#TaskCollection.TaskCollection", "Name": "Task Collection", "Members": []any{}, "Members@odata.count": 0})
	}
}

// isType reports whether a compact JSON document has the @odata.type of
// a resource (not a collection) of the given schema.
func isType(body []byte, schema string) bool {
	return bytes.Contains(body, []byte(`"@odata.type":"#`+schema+`.v`))
}

// object decodes the resource at p into a fresh map that the caller may
// change and store back with put.
func (b *BMC) object(p string) (map[string]any, bool) {
	body, ok := b.res[p]
	if !ok {
		return nil, false
	}
	obj, err := decodeObject(body)
	if err != nil {
		panic(fmt.Sprintf("redfishsim: stored resource %s is not a JSON object: %v", p, err))
	}
	return obj, true
}

// put stores obj as the resource at p.
func (b *BMC) put(p string, obj map[string]any) { b.res[p] = encode(obj) }

// members lists the member paths of the collection at p.
func (b *BMC) members(p string) []string {
	coll, _ := b.object(p)
	list, _ := coll["Members"].([]any)
	var out []string
	for _, m := range list {
		if id := ref(m); id != "" {
			out = append(out, id)
		}
	}
	return out
}

// setMembers rewrites the Members of the collection at p.
func (b *BMC) setMembers(p string, paths []string) {
	coll, ok := b.object(p)
	if !ok {
		return
	}
	list := make([]any, len(paths))
	for i, m := range paths {
		list[i] = link(m)
	}
	coll["Members"] = list
	coll["Members@odata.count"] = len(paths)
	b.put(p, coll)
}

func (b *BMC) addMember(coll, p string) { b.setMembers(coll, append(b.members(coll), p)) }

func (b *BMC) removeMember(coll, p string) {
	b.setMembers(coll, slices.DeleteFunc(b.members(coll), func(m string) bool { return m == p }))
}

// Hostname is the BMC's host name, from the first manager's network
// protocol settings; Serve puts it in the certificate.
func (b *BMC) Hostname() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	root, _ := b.object(rootPath)
	for _, m := range b.members(linkOf(root, "Managers")) {
		mgr, _ := b.object(m)
		proto, _ := b.object(linkOf(mgr, "NetworkProtocol"))
		if name, _ := proto["HostName"].(string); name != "" {
			return name
		}
	}
	return "bmc"
}

// etag is the strong entity tag of a stored document.
func etag(body []byte) string {
	h := fnv.New64a()
	h.Write(body)
	return `"` + strconv.FormatUint(h.Sum64(), 16) + `"`
}

// cleanPath drops trailing slashes, as real BMCs tolerate them; case is kept,
// as the DMTF server is strict about it.
func cleanPath(p string) string {
	if u, err := parseURLPath(p); err == nil {
		p = u
	}
	for len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	return p
}

// parseURLPath accepts an action target or link given as an absolute URL
// or a path and returns its path.
func parseURLPath(s string) (string, error) {
	if !strings.Contains(s, "://") {
		return path.Clean("/" + s), nil
	}
	_, rest, _ := strings.Cut(s, "://")
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return "", fmt.Errorf("no path in %q", s)
	}
	return path.Clean(rest[i:]), nil
}

// decodeObject decodes a JSON object, keeping numbers exact. Anything else,
// including trailing data, is an error.
func decodeObject(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, fmt.Errorf("not a JSON object")
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("data after the JSON object")
	}
	return obj, nil
}

// encode renders v as compact JSON without HTML escaping.
func encode(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("redfishsim: encode: %v", err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// link is a Redfish reference to p.
func link(p string) map[string]any { return map[string]any{"@odata.id": p} }

// ref returns the path a decoded Redfish reference points to, or "".
func ref(v any) string {
	obj, _ := v.(map[string]any)
	id, _ := obj["@odata.id"].(string)
	if id == "" {
		return ""
	}
	return cleanPath(id)
}

// linkOf returns the path obj[key] refers to, or "".
func linkOf(obj map[string]any, key string) string { return ref(obj[key]) }

// child returns obj[key] as an object, or nil, which reads as empty.
func child(obj map[string]any, key string) map[string]any {
	m, _ := obj[key].(map[string]any)
	return m
}

// sub returns obj[key] as an object, creating it when it is missing.
func sub(obj map[string]any, key string) map[string]any {
	m, ok := obj[key].(map[string]any)
	if !ok {
		m = map[string]any{}
		obj[key] = m
	}
	return m
}

// actionTarget is the target path of an action of obj, or "".
func actionTarget(obj map[string]any, action string) string {
	a := child(child(obj, "Actions"), action)
	t, _ := a["target"].(string)
	if t == "" {
		return ""
	}
	return cleanPath(t)
}

// number reads a decoded JSON number.
func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case int:
		return float64(n), true
	}
	return 0, false
}

// stringList reads a decoded JSON array of strings, skipping other values.
func stringList(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, s := range list {
		if s, ok := s.(string); ok {
			out = append(out, s)
		}
	}
	return out
}
