package redfishsim

import (
	"crypto/rand"
	"crypto/subtle"
	"net/http"
	"path"
	"time"
)

// maxSessions caps concurrent sessions, as real BMCs do (iLO: tens).
const maxSessions = 64

// session is a logged-in client; it dies after the SessionService's
// SessionTimeout without use.
type session struct {
	path     string
	lastUsed time.Time
}

// authenticate accepts a live X-Auth-Token or Basic credentials.
func (b *BMC) authenticate(r *http.Request) error {
	if b.opts.Username == "" {
		return nil
	}
	if token := r.Header.Get("X-Auth-Token"); token != "" {
		b.mu.Lock()
		defer b.mu.Unlock()
		now := b.opts.Now()
		b.expireSessions(now)
		if s := b.sessions[token]; s != nil {
			s.lastUsed = now
			return nil
		}
		return refuse(http.StatusUnauthorized, msg("NoValidSession"))
	}
	if user, password, ok := r.BasicAuth(); ok && b.validCredentials(user, password) {
		return nil
	}
	return refuse(http.StatusUnauthorized, msg("NoValidSession"))
}

func (b *BMC) validCredentials(user, password string) bool {
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(b.opts.Username))
	passwordOK := subtle.ConstantTimeCompare([]byte(password), []byte(b.opts.Password))
	return userOK&passwordOK == 1
}

// login creates a session: 201 with X-Auth-Token and Location, like iLO,
// iDRAC and OpenBMC.
func (b *BMC) login(w http.ResponseWriter, r *http.Request, body []byte) error {
	in, err := newParams("", body)
	if err != nil {
		return err
	}
	user := in.str("UserName", true, nil)
	password := in.str("Password", true, nil)
	if err := in.err(); err != nil {
		return err
	}
	if b.opts.Username != "" && !b.validCredentials(user, password) {
		b.log.InfoContext(r.Context(), "login refused", "user", user)
		return refuse(http.StatusUnauthorized, msg("NoValidSession"))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.opts.Now()
	b.expireSessions(now)
	if len(b.sessions) >= maxSessions {
		return refuse(http.StatusServiceUnavailable, msg("SessionLimitExceeded"))
	}
	id, token := rand.Text()[:16], rand.Text()
	p := b.sessionsPath + "/" + id
	b.put(p, map[string]any{
		"@odata.type": "#Session.v1_7_0.Session",
		"@odata.id":   p,
		"Id":          id,
		"Name":        "User Session",
		"UserName":    user,
		"CreatedTime": now.UTC().Format(time.RFC3339),
	})
	b.addMember(b.sessionsPath, p)
	if b.sessions == nil {
		b.sessions = map[string]*session{}
	}
	b.sessions[token] = &session{path: p, lastUsed: now}
	w.Header().Set("X-Auth-Token", token)
	writeCreated(w, p, b.res[p])
	return nil
}

// expireSessions ends the sessions idle for longer than the timeout.
func (b *BMC) expireSessions(now time.Time) {
	for _, s := range b.sessions {
		if now.Sub(s.lastUsed) > b.sessionTimeout {
			b.endSession(s.path)
		}
	}
}

// endSession removes the session resource at p and its token, if any.
func (b *BMC) endSession(p string) {
	for token, s := range b.sessions {
		if s.path == p {
			delete(b.sessions, token)
		}
	}
	if _, ok := b.res[p]; ok && path.Dir(p) == b.sessionsPath {
		delete(b.res, p)
		b.removeMember(b.sessionsPath, p)
	}
}
