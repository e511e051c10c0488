package redfish

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// This file is a BMC for tests: it serves a real DMTF mockup from memory
// and can be bent into the deviations of real peers (docs/redfish.md of
// the shared tree). It is case-sensitive, like the DMTF mockup server.

// mockupDir holds the DMTF mockups, relative to the package directory.
const mockupDir = "../../../shared/corpora/redfish-mockups"

const (
	rackmount1 = "dmtf-public-rackmount1" // VirtualMedia under the system, SimpleStorage
	tower      = "dmtf-public-tower"      // VirtualMedia under the manager, Storage
)

var mockups sync.Map // name → map[string]any, never changed

// loadMockup returns a mockup's resources keyed by URL path without a
// trailing '/': /redfish/v1/<path> is <dir>/<path>/index.json.
func loadMockup(tb testing.TB, name string) map[string]any {
	tb.Helper()
	if v, ok := mockups.Load(name); ok {
		return v.(map[string]any)
	}
	dir := filepath.Join(mockupDir, name)
	if _, err := os.Stat(dir); err != nil {
		msg := fmt.Sprintf("the Redfish mockups are missing (they live in shared/corpora/redfish-mockups): %v", err)
		if os.Getenv("CI") == "true" {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	tree := map[string]any{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "index.json" {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber() // capacities beyond 2^53 stay exact
		var v any
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		rel, err := filepath.Rel(dir, filepath.Dir(p))
		if err != nil {
			return err
		}
		key := "/redfish/v1"
		if rel != "." {
			key += "/" + filepath.ToSlash(rel)
		}
		tree[key] = v
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	mockups.Store(name, tree)
	return tree
}

// bend is how a fake BMC departs from the mockup.
type bend struct {
	trailingSlash    bool              // every @odata.id and target ends in '/' (HPE iLO)
	lowercaseLinks   bool              // the system links its parts under a lower-case prefix (HPE iLO)
	actionInfo       bool              // reset types in an ActionInfo resource (AMI, OpenBMC)
	resetTypes       []string          // replaces the allowable reset types
	login            loginStyle        // how session login answers
	basicOnLogin     bool              // the login POST needs Basic auth too (iLO emulator)
	noSessions       bool              // no SessionService: Basic only (sushy-tools)
	expireAfter      int               // a session token dies after this many requests
	sameState400     bool              // On when On(ing), ForceOff when Off: 400 InvalidOperationForSystemState (iLO)
	ignoreGraceful   bool              // the OS ignores GracefulShutdown
	transition       time.Duration     // PoweringOn/PoweringOff this long
	taskMonitor      bool              // Reset answers 202 with a task monitor
	firstSystem      string            // "gpu": an NVIDIA GPU baseboard before the host (GB300); "twin": another host
	pageSize         int               // collections page this many members at a time
	onceToContinuous bool              // a Once boot override reads back Continuous (sushy-tools)
	etag             bool              // ETag on the system, If-Match checked
	stale412         int               // answer this many PATCHes with 412
	mediaActions     bool              // InsertMedia/EjectMedia on each VirtualMedia (the mockups have none)
	mediaTypesNull   bool              // MediaTypes null (AMI)
	protocols        []string          // TransferProtocolType@Redfish.AllowableValues on InsertMedia (Dell)
	rename           map[string]string // rewrite ids everywhere (Dell: ':' and '.')
	powerState       string            // the system's state at start
	noBIOS           bool              // the system links no Bios (Supermicro X10, Intel)
	noBIOSSettings   bool              // the Bios has no settings object: PATCH it directly
	biosApplyTimes   []string          // @Redfish.Settings.SupportedApplyTimes of the Bios (Dell)
	updateTask       string            // how SimpleUpdate ends (see simpleUpdate); "" answers 204 at once
	updateProtocols  []string          // replaces the TransferProtocol allowable values of SimpleUpdate
	noSimpleUpdate   bool              // the UpdateService has no actions (Intel, Supermicro X10)
}

type loginStyle int

const (
	login201            loginStyle = iota // 201, X-Auth-Token, Location
	login204Fixed                         // DMTF mockup server: 204 and a fixed token
	loginNoLocation                       // iLO emulator: no Location, @odata.id in the body
	loginNoLocationBody                   // no Location and no body: nothing to log out of
)

const (
	fakeUser, fakePassword = "admin", "secret"
	sessionsPath           = "/redfish/v1/SessionService/Sessions"
	fixedToken             = "123456SESSIONauthcode"
)

// fakeBMC is an http.Handler serving one mockup.
type fakeBMC struct {
	bend bend

	mu       sync.Mutex
	res      map[string]map[string]any
	tokens   map[string]int    // live token → requests served with it
	sessions map[string]string // session path → token
	logins   int
	requests []string // "METHOD /path" of each request
	resets   []string // reset types accepted
	patches  []patch  // PATCHes of Bios resources accepted
	ifMatch  []string // If-Match of each PATCH
	gen      int      // ETag generation of the systems
	stale    int      // PATCHes still to refuse with 412
	pending  map[string]pendingPower
	monitors map[string]int // task monitor → polls still answered 202
	updates  []map[string]any
	tasks    map[string]*fakeTask // task monitor and task path → the update task
}

// fakeTask is a task SimpleUpdate started: it runs for polls requests,
// then ends as final.
type fakeTask struct {
	path  string // the Task; its monitor is another path, or the same
	polls int
	final map[string]any
	gone  bool // the monitor 404s once the task ended
}

// patch is a PATCH a fake accepted: where, and the body.
type patch struct {
	Path string
	Body map[string]any
}

type pendingPower struct {
	to string
	at time.Time
}

func newFakeBMC(tb testing.TB, mockup string, b bend) *fakeBMC {
	tb.Helper()
	rename := func(s string) string {
		for from, to := range b.rename {
			s = strings.ReplaceAll(s, from, to)
		}
		return s
	}
	f := &fakeBMC{
		bend:     b,
		res:      map[string]map[string]any{},
		tokens:   map[string]int{},
		sessions: map[string]string{},
		pending:  map[string]pendingPower{},
		monitors: map[string]int{},
		tasks:    map[string]*fakeTask{},
		stale:    b.stale412,
	}
	for k, v := range loadMockup(tb, mockup) {
		if m, ok := clone(v, rename).(map[string]any); ok {
			f.res[rename(k)] = m
		}
	}
	root := f.res["/redfish/v1"]
	if b.noSessions {
		delete(root, "SessionService")
		delete(root["Links"].(map[string]any), "Sessions")
		for k := range f.res {
			if strings.HasPrefix(k, "/redfish/v1/SessionService") {
				delete(f.res, k)
			}
		}
	}
	for _, id := range f.systems() {
		sys := f.res[id]
		if b.powerState != "" {
			sys["PowerState"] = b.powerState
		}
		reset := sys["Actions"].(map[string]any)[resetAction].(map[string]any)
		if b.resetTypes != nil {
			reset["ResetType@Redfish.AllowableValues"] = toAny(b.resetTypes)
		}
		if b.actionInfo {
			info := id + "/ResetActionInfo"
			f.res[info] = map[string]any{
				"@odata.id": info, "@odata.type": "#ActionInfo.v1_4_2.ActionInfo", "Id": "ResetActionInfo",
				"Parameters": []any{map[string]any{"Name": "ResetType", "Required": true, "DataType": "String",
					"AllowableValues": reset["ResetType@Redfish.AllowableValues"]}},
			}
			delete(reset, "ResetType@Redfish.AllowableValues")
			reset["@Redfish.ActionInfo"] = info
		}
	}
	for id, m := range f.res {
		switch {
		case f.isSystem(id) && b.noBIOS:
			delete(m, "Bios")
		case f.isBIOS(id) && b.noBIOSSettings:
			if settings, ok := m["@Redfish.Settings"].(map[string]any); ok {
				delete(f.res, str(settings["SettingsObject"].(map[string]any)["@odata.id"]))
				delete(m, "@Redfish.Settings")
			}
		case f.isBIOS(id) && b.biosApplyTimes != nil:
			if settings, ok := m["@Redfish.Settings"].(map[string]any); ok {
				settings["SupportedApplyTimes"] = toAny(b.biosApplyTimes)
			}
		}
	}
	if b.firstSystem != "" {
		f.addFirstSystem(b.firstSystem)
	}
	if us, ok := f.res["/redfish/v1/UpdateService"]; ok && b.noSimpleUpdate {
		delete(us, "Actions")
	}
	if info, ok := f.res["/redfish/v1/UpdateService/SimpleUpdateActionInfo"]; ok && b.updateProtocols != nil {
		for _, p := range info["Parameters"].([]any) {
			if p := p.(map[string]any); p["Name"] == "TransferProtocol" {
				p["AllowableValues"] = toAny(b.updateProtocols)
			}
		}
	}
	for id, m := range f.res {
		if !strings.HasPrefix(str(m["@odata.type"]), "#VirtualMedia.v") {
			continue
		}
		if b.mediaTypesNull {
			m["MediaTypes"] = nil
		}
		if b.mediaActions {
			insert := map[string]any{"target": id + "/Actions/VirtualMedia.InsertMedia"}
			if b.protocols != nil {
				insert["TransferProtocolType@Redfish.AllowableValues"] = toAny(b.protocols)
			}
			m["Actions"] = map[string]any{
				insertAction: insert,
				ejectAction:  map[string]any{"target": id + "/Actions/VirtualMedia.EjectMedia"},
			}
		}
	}
	return f
}

// addFirstSystem lists another system before the host.
func (f *fakeBMC) addFirstSystem(kind string) {
	host := f.res[f.systems()[0]]
	var sys map[string]any
	switch kind {
	case "gpu":
		sys = map[string]any{
			"@odata.type": "#ComputerSystem.v1_22_0.ComputerSystem", "Id": "HGX_Baseboard_0",
			"Manufacturer": "NVIDIA", "Model": "GB300 NVL72", "SystemType": "Physical", "PowerState": "On",
			"Actions": map[string]any{resetAction: map[string]any{
				"target":                            "/redfish/v1/Systems/HGX_Baseboard_0/Actions/ComputerSystem.Reset",
				"ResetType@Redfish.AllowableValues": []any{"ForceRestart"},
			}},
		}
	case "twin":
		sys = clone(host, func(s string) string { return s }).(map[string]any)
		sys["Id"] = "Twin"
	}
	id := "/redfish/v1/Systems/" + str(sys["Id"])
	sys["@odata.id"] = id
	f.res[id] = sys
	col := f.res["/redfish/v1/Systems"]
	col["Members"] = append([]any{map[string]any{"@odata.id": id}}, col["Members"].([]any)...)
	col["Members@odata.count"] = len(col["Members"].([]any))
}

// systems lists the ComputerSystems of the mockup.
func (f *fakeBMC) systems() []string {
	var out []string
	for k, m := range f.res {
		if strings.HasPrefix(str(m["@odata.type"]), "#ComputerSystem.v") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func clone(v any, rewrite func(string) string) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[rewrite(k)] = clone(x, rewrite)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = clone(x, rewrite)
		}
		return s
	case string:
		return rewrite(v)
	}
	return v
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func (f *fakeBMC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := strings.TrimSuffix(r.URL.Path, "/")
	f.requests = append(f.requests, r.Method+" "+p)
	if r.Method == http.MethodPost && r.Header.Get("Content-Length") == "" {
		writeError(w, http.StatusLengthRequired, "Base.1.8.GeneralError", "Content-Length is required")
		return
	}
	switch {
	case r.Method == http.MethodGet && p == "/redfish":
		writeJSON(w, http.StatusOK, map[string]any{"v1": "/redfish/v1/"})
		return
	case r.Method == http.MethodGet && p == "/redfish/v1":
		f.get(w, r, p) // the service root needs no credentials
		return
	case r.Method == http.MethodPost && p == sessionsPath && !f.bend.noSessions:
		f.login(w, r)
		return
	}
	if !f.authorized(r) {
		writeError(w, http.StatusUnauthorized, "Base.1.8.NoValidSession", "There is no valid session established with the implementation.")
		return
	}
	switch r.Method {
	case http.MethodGet:
		f.get(w, r, p)
	case http.MethodPost:
		f.post(w, r, p)
	case http.MethodPatch:
		f.patch(w, r, p)
	case http.MethodDelete:
		f.delete(w, p)
	default:
		writeError(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", "The HTTP method is not allowed.")
	}
}

func (f *fakeBMC) authorized(r *http.Request) bool {
	if u, p, ok := r.BasicAuth(); ok {
		return u == fakeUser && p == fakePassword
	}
	tok := r.Header.Get("X-Auth-Token")
	n, ok := f.tokens[tok]
	if !ok {
		return false
	}
	if f.bend.expireAfter > 0 && n >= f.bend.expireAfter {
		delete(f.tokens, tok)
		return false
	}
	f.tokens[tok] = n + 1
	return true
}

func (f *fakeBMC) login(w http.ResponseWriter, r *http.Request) {
	if u, p, ok := r.BasicAuth(); f.bend.basicOnLogin && (!ok || u != fakeUser || p != fakePassword) {
		writeError(w, http.StatusUnauthorized, "Base.1.8.NoValidSession", "Basic credentials are required to log in.")
		return
	}
	var in struct{ UserName, Password string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.UserName != fakeUser || in.Password != fakePassword {
		writeError(w, http.StatusUnauthorized, "Base.1.8.NoValidSession", "Wrong user name or password.")
		return
	}
	f.logins++
	id := strconv.Itoa(f.logins)
	token, loc := "token-"+id, sessionsPath+"/"+id
	session := map[string]any{"@odata.id": loc, "@odata.type": "#Session.v1_7_0.Session", "Id": id, "UserName": in.UserName}
	if f.bend.login == login204Fixed {
		token, loc = fixedToken, sessionsPath+"/1234567890ABCDEF"
	}
	f.tokens[token] = 0
	f.sessions[loc] = token
	w.Header().Set("X-Auth-Token", token)
	switch f.bend.login {
	case login201:
		w.Header().Set("Location", loc)
		writeJSON(w, http.StatusCreated, session)
	case login204Fixed:
		w.Header().Set("Location", loc)
		w.WriteHeader(http.StatusNoContent)
	case loginNoLocation:
		writeJSON(w, http.StatusCreated, session)
	case loginNoLocationBody:
		w.WriteHeader(http.StatusCreated)
	}
}

func (f *fakeBMC) delete(w http.ResponseWriter, p string) {
	token, ok := f.sessions[p]
	if !ok {
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceNotFound", "No such session.")
		return
	}
	delete(f.sessions, p)
	delete(f.tokens, token)
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeBMC) get(w http.ResponseWriter, r *http.Request, p string) {
	if n, ok := f.monitors[p]; ok {
		w.Header().Set("Retry-After", "3")
		if n > 0 {
			f.monitors[p] = n - 1
			writeJSON(w, http.StatusAccepted, map[string]any{"TaskState": "Running", "PercentComplete": 50})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"@odata.type": "#Task.v1_7_0.Task", "TaskState": "Completed", "TaskStatus": "OK"})
		return
	}
	if t, ok := f.tasks[p]; ok {
		f.task(w, p, t)
		return
	}
	res, ok := f.res[p]
	if !ok {
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "The resource at the URI "+p+" was not found.")
		return
	}
	f.settle(p)
	out := clone(res, func(s string) string { return s }).(map[string]any)
	if f.bend.pageSize > 0 {
		if members, ok := out["Members"].([]any); ok {
			skip, _ := strconv.Atoi(r.URL.Query().Get("$skip"))
			skip = min(skip, len(members))
			end := min(skip+f.bend.pageSize, len(members))
			out["Members"] = members[skip:end]
			if end < len(members) {
				out["Members@odata.nextLink"] = p + "?$skip=" + strconv.Itoa(end)
			}
		}
	}
	if f.bend.lowercaseLinks && f.isSystem(p) {
		for k, v := range out {
			if l, ok := v.(map[string]any); ok && len(l) == 1 && strings.HasPrefix(str(l["@odata.id"]), p+"/") {
				l["@odata.id"] = strings.ToLower(p) + strings.TrimPrefix(str(l["@odata.id"]), p)
				out[k] = l
			}
		}
	}
	if f.bend.lowercaseLinks && f.isBIOS(p) {
		if l, ok := child(out["@Redfish.Settings"], "SettingsObject"); ok && strings.HasPrefix(str(l["@odata.id"]), p+"/") {
			l["@odata.id"] = strings.ToLower(p) + strings.TrimPrefix(str(l["@odata.id"]), p)
		}
	}
	if f.bend.trailingSlash {
		addSlashes(out)
	}
	if f.bend.etag && (f.isSystem(p) || f.isBIOS(p)) {
		etag := fmt.Sprintf(`W/"gen-%d"`, f.gen)
		out["@odata.etag"] = etag
		w.Header().Set("ETag", etag)
	}
	writeJSON(w, http.StatusOK, out)
}

// child is v[key] when v is an object and that is one too.
func child(v any, key string) (map[string]any, bool) {
	m, _ := v.(map[string]any)
	c, ok := m[key].(map[string]any)
	return c, ok
}

func addSlashes(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && (k == "@odata.id" || k == "target") && !strings.HasSuffix(s, "/") && !strings.Contains(s, "#") {
				v[k] = s + "/"
			} else {
				addSlashes(x)
			}
		}
	case []any:
		for _, x := range v {
			addSlashes(x)
		}
	}
}

func (f *fakeBMC) isSystem(p string) bool {
	return strings.HasPrefix(str(f.res[p]["@odata.type"]), "#ComputerSystem.v")
}

// isBIOS says whether p is a Bios resource or the settings object of one.
func (f *fakeBMC) isBIOS(p string) bool {
	return strings.HasPrefix(str(f.res[p]["@odata.type"]), "#Bios.v")
}

// settle finishes a power transition whose time has come.
func (f *fakeBMC) settle(sys string) {
	if pp, ok := f.pending[sys]; ok && !time.Now().Before(pp.at) {
		f.res[sys]["PowerState"] = pp.to
		delete(f.pending, sys)
	}
}

func (f *fakeBMC) power(sys, to string) {
	if f.bend.transition > 0 {
		f.res[sys]["PowerState"] = "Powering" + to
		f.pending[sys] = pendingPower{to: to, at: time.Now().Add(f.bend.transition)}
		return
	}
	f.res[sys]["PowerState"] = to
}

func (f *fakeBMC) post(w http.ResponseWriter, r *http.Request, p string) {
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", err.Error())
		return
	}
	switch base, action := path.Split(p); action {
	case "ComputerSystem.Reset":
		f.reset(w, strings.TrimSuffix(base, "/Actions/"), str(in["ResetType"]))
	case "VirtualMedia.InsertMedia":
		f.insert(w, strings.TrimSuffix(base, "/Actions/"), in)
	case "VirtualMedia.EjectMedia":
		f.eject(w, strings.TrimSuffix(base, "/Actions/"))
	case "UpdateService.SimpleUpdate":
		f.simpleUpdate(w, in)
	default:
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "No action at "+p)
	}
}

func (f *fakeBMC) allowedResets(sys string) []string {
	reset := f.res[sys]["Actions"].(map[string]any)[resetAction].(map[string]any)
	values := reset["ResetType@Redfish.AllowableValues"]
	if info := str(reset["@Redfish.ActionInfo"]); info != "" {
		values = f.res[info]["Parameters"].([]any)[0].(map[string]any)["AllowableValues"]
	}
	var out []string
	for _, v := range values.([]any) {
		out = append(out, str(v))
	}
	return out
}

func (f *fakeBMC) reset(w http.ResponseWriter, sys, resetType string) {
	if _, ok := f.res[sys]; !ok {
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "No system "+sys)
		return
	}
	if !slices.Contains(f.allowedResets(sys), resetType) {
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterValueNotInList", "ResetType "+resetType+" is not supported.")
		return
	}
	f.settle(sys)
	state := str(f.res[sys]["PowerState"])
	switch resetType {
	case "On", "ForceOn":
		if f.bend.sameState400 && (state == "On" || state == "PoweringOn") {
			writeError(w, http.StatusBadRequest, "iLO.2.14.InvalidOperationForSystemState", "The operation is not allowed in the current system power state.")
			return
		}
		f.power(sys, "On")
	case "ForceOff":
		if f.bend.sameState400 && (state == "Off" || state == "PoweringOff") {
			writeError(w, http.StatusBadRequest, "iLO.2.14.InvalidOperationForSystemState", "The operation is not allowed in the current system power state.")
			return
		}
		f.power(sys, "Off")
	case "GracefulShutdown":
		if !f.bend.ignoreGraceful {
			f.power(sys, "Off")
		}
	case "GracefulRestart", "ForceRestart", "PowerCycle":
		f.power(sys, "On")
	case "PushPowerButton":
		if state == "On" {
			f.power(sys, "Off")
		} else {
			f.power(sys, "On")
		}
	}
	f.resets = append(f.resets, resetType)
	if f.bend.taskMonitor {
		monitor := fmt.Sprintf("/redfish/v1/TaskService/Tasks/%d/Monitor", len(f.resets))
		f.monitors[monitor] = 2
		w.Header().Set("Location", monitor)
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// simpleUpdate takes a firmware update and, as bend.updateTask says,
// answers 204 ("") or starts a task that runs for two polls of its
// monitor and then ends: "ok" Completed OK, "exception" Exception,
// "warning" Completed with a warning, "monitorGone" Completed with a
// monitor that 404s then, "monitorIsTask" Completed with the task as its
// own monitor (Dell), "noTaskBody" with no Task in any answer, the
// operation's 204 at the end, "forever" never; "noMonitor" answers 202
// with nothing to follow.
func (f *fakeBMC) simpleUpdate(w http.ResponseWriter, in map[string]any) {
	info := f.res["/redfish/v1/UpdateService/SimpleUpdateActionInfo"]
	var protocols []any
	for _, p := range info["Parameters"].([]any) {
		if p := p.(map[string]any); p["Name"] == "TransferProtocol" {
			protocols = p["AllowableValues"].([]any)
		}
	}
	targets, _ := in["Targets"].([]any)
	for _, t := range targets {
		if _, ok := f.res[strings.TrimSuffix(str(t), "/")]; !ok {
			writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterValueNotInList", "No firmware "+str(t)+".")
			return
		}
	}
	switch {
	case str(in["ImageURI"]) == "":
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterMissing", "ImageURI is required.")
		return
	case !slices.Contains(protocols, in["TransferProtocol"]):
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterValueNotInList", "TransferProtocol is not supported.")
		return
	}
	f.updates = append(f.updates, in)
	switch f.bend.updateTask {
	case "":
		w.WriteHeader(http.StatusNoContent)
		return
	case "noMonitor":
		w.WriteHeader(http.StatusAccepted)
		return
	}
	id := strconv.Itoa(len(f.updates))
	t := &fakeTask{path: "/redfish/v1/TaskService/Tasks/" + id, polls: 2}
	message := func(id, text string) []any { return []any{map[string]any{"MessageId": id, "Message": text}} }
	done := func(state, status string, msgs []any) map[string]any {
		return map[string]any{"@odata.type": "#Task.v1_7_0.Task", "@odata.id": t.path, "Id": id, "TaskState": state, "TaskStatus": status, "Messages": msgs}
	}
	monitor := t.path + "/Monitor"
	switch f.bend.updateTask {
	case "ok", "monitorGone", "monitorIsTask":
		t.final = done("Completed", "OK", message("Update.1.0.UpdateSuccessful", "Device 'BIOS' successfully updated."))
		t.gone = f.bend.updateTask == "monitorGone"
		if f.bend.updateTask == "monitorIsTask" {
			monitor = t.path
		}
	case "exception":
		t.final = done("Exception", "Critical", append(message("Update.1.0.ApplyFailed", "Installation of image to 'BIOS' failed."),
			message("Update.1.0.VerificationFailed", "The package is not signed.")...))
	case "warning":
		t.final = done("Completed", "Warning", message("Update.1.0.AwaitToActivate", "Awaiting an action to activate."))
	case "forever":
		t.polls = 1 << 30
	}
	f.tasks[monitor], f.tasks[t.path] = t, t
	w.Header().Set("Location", monitor)
	w.Header().Set("Retry-After", "3")
	if f.bend.updateTask == "noTaskBody" {
		delete(f.tasks, t.path)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	writeJSON(w, http.StatusAccepted, done("Running", "OK", []any{}))
}

// task answers for an update task at p, its monitor or the task itself.
func (f *fakeBMC) task(w http.ResponseWriter, p string, t *fakeTask) {
	running := map[string]any{"@odata.type": "#Task.v1_7_0.Task", "@odata.id": t.path, "TaskState": "Running", "TaskStatus": "OK"}
	if t.polls > 0 {
		t.polls--
		if p == t.path {
			writeJSON(w, http.StatusOK, running) // the task itself is there while it runs
			return
		}
		w.Header().Set("Retry-After", "3")
		writeJSON(w, http.StatusAccepted, running)
		return
	}
	switch {
	case p != t.path && t.gone:
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "The task monitor is gone.")
	case t.final == nil:
		w.WriteHeader(http.StatusNoContent)
	default:
		writeJSON(w, http.StatusOK, t.final)
	}
}

func (f *fakeBMC) insert(w http.ResponseWriter, id string, in map[string]any) {
	m, ok := f.res[id]
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "No media "+id)
	case str(in["Image"]) == "":
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterMissing", "Image is required.")
	case m["Inserted"] == true:
		writeError(w, http.StatusBadRequest, "Contoso.1.0.MediaAlreadyInserted", "Eject the media first.")
	case f.bend.protocols != nil && !slices.Contains(f.bend.protocols, str(in["TransferProtocolType"])):
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterValueNotInList", "TransferProtocolType is not supported.")
	default:
		m["Image"], m["ImageName"], m["Inserted"], m["WriteProtected"], m["ConnectedVia"] = in["Image"], path.Base(str(in["Image"])), true, in["WriteProtected"], "URI"
		w.WriteHeader(http.StatusNoContent)
	}
}

func (f *fakeBMC) eject(w http.ResponseWriter, id string) {
	m, ok := f.res[id]
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "No media "+id)
	case m["Inserted"] != true:
		writeError(w, http.StatusBadRequest, "Contoso.1.0.MediaNotInserted", "No media is inserted.")
	default:
		m["Image"], m["ImageName"], m["Inserted"], m["ConnectedVia"] = nil, nil, false, "NotConnected"
		w.WriteHeader(http.StatusNoContent)
	}
}

func (f *fakeBMC) patch(w http.ResponseWriter, r *http.Request, p string) {
	if _, ok := f.res[p]; !ok {
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "The resource at the URI "+p+" was not found.")
		return
	}
	if !f.isSystem(p) && !f.isBIOS(p) {
		writeError(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", "PATCH is not allowed here.")
		return
	}
	match := r.Header.Get("If-Match")
	f.ifMatch = append(f.ifMatch, match)
	if f.bend.etag && f.stale > 0 {
		f.stale--
		f.gen++ // someone else changed the system meanwhile
	}
	if f.bend.etag && match != "" && match != fmt.Sprintf(`W/"gen-%d"`, f.gen) {
		writeError(w, http.StatusPreconditionFailed, "Base.1.8.PreconditionFailed", "The ETag does not match.")
		return
	}
	if f.isBIOS(p) {
		f.patchBIOS(w, r, p)
		return
	}
	var in struct{ Boot map[string]string }
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", err.Error())
		return
	}
	boot := f.res[p]["Boot"].(map[string]any)
	if allowed, ok := boot["BootSourceOverrideTarget@Redfish.AllowableValues"].([]any); ok && !slices.Contains(allowed, any(in.Boot["BootSourceOverrideTarget"])) {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueNotInList", "BootSourceOverrideTarget is not supported.")
		return
	}
	for k, v := range in.Boot {
		if k == "BootSourceOverrideEnabled" && v == "Once" && f.bend.onceToContinuous {
			v = "Continuous"
		}
		boot[k] = v
	}
	f.gen++
	w.WriteHeader(http.StatusNoContent)
}

// patchBIOS takes attributes into a settings object, or into a Bios
// without one; a Bios with a settings object is read-only, as on real
// BMCs. Attributes the Bios does not have are refused.
func (f *fakeBMC) patchBIOS(w http.ResponseWriter, r *http.Request, p string) {
	res := f.res[p]
	if _, ok := res["@Redfish.Settings"]; ok {
		writeError(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", "PATCH the settings object.")
		return
	}
	var in map[string]any
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", err.Error())
		return
	}
	attrs, ok := in["Attributes"].(map[string]any)
	if !ok {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueTypeError", "Attributes must be an object.")
		return
	}
	known := res
	if settings, ok := f.res[strings.TrimSuffix(p, "/Settings")]; ok && f.isBIOS(strings.TrimSuffix(p, "/Settings")) {
		known = settings
	}
	for k := range attrs {
		if _, ok := known["Attributes"].(map[string]any)[k]; !ok {
			writeError(w, http.StatusBadRequest, "Base.1.8.PropertyUnknown", "The property "+k+" is not in the list of valid properties for the resource.")
			return
		}
	}
	current, _ := res["Attributes"].(map[string]any)
	if current == nil {
		current = map[string]any{}
		res["Attributes"] = current
	}
	for k, v := range attrs {
		current[k] = v
	}
	f.patches = append(f.patches, patch{Path: p, Body: in})
	f.gen++
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("OData-Version", "4.0")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, messageID, message string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code":    "Base.1.8.GeneralError",
		"message": "A general error has occurred. See ExtendedInfo for more information.",
		"@Message.ExtendedInfo": []any{map[string]any{
			"MessageId": messageID, "Message": message, "Severity": "Warning", "Resolution": "None.",
		}},
	}})
}

// count returns how many requests matched "METHOD /path" exactly.
func (f *fakeBMC) count(request string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if r == request {
			n++
		}
	}
	return n
}

// state returns a copy of a resource as the fake holds it.
func (f *fakeBMC) state(p string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.settle(p)
	return clone(f.res[p], func(s string) string { return s }).(map[string]any)
}

// pipeNet is an in-memory network: inside a synctest bubble its
// connections block durably, so fake time can advance.
type pipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeNet() *pipeNet {
	return &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (n *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-n.conns:
		return c, nil
	case <-n.done:
		return nil, net.ErrClosed
	}
}

func (n *pipeNet) Close() error {
	n.once.Do(func() { close(n.done) })
	return nil
}

func (n *pipeNet) Addr() net.Addr { return pipeAddr{} }

func (n *pipeNet) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case n.conns <- server:
		return client, nil
	case <-n.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "bmc.test:80" }

// serveFake serves f on an in-memory network and returns a configuration
// to reach it. Call it inside a synctest bubble.
func serveFake(t *testing.T, f *fakeBMC) Config {
	t.Helper()
	ln := newPipeNet()
	srv := &http.Server{Handler: f}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return Config{
		Endpoint: "http://bmc.test",
		Username: fakeUser,
		Password: fakePassword,
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
		dial:     ln.dial,
	}
}

// dialFake serves f and dials it; the client closes with the test.
func dialFake(t *testing.T, f *fakeBMC) *Client {
	t.Helper()
	c, err := Dial(t.Context(), serveFake(t, f))
	if err != nil {
		t.Fatalf("Dial() = %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
