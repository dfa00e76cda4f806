package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
)

// SessionAdminKey is the session value holding the logged-in admin's Zendesk
// user id (an int64). Save mirrors it into the record's admin_id column so
// DeleteSessionsByAdmin can end every session of one admin.
const SessionAdminKey = "admin_id"

// SessionGrantKey is the session value holding the id of the grant the
// session uses (an int64). Save mirrors it into the record's grant_id
// column, so the grant sweep can tell which grants no live session uses.
const SessionGrantKey = "grant_id"

// Session defaults; see SessionOptions.
const (
	// DefaultSessionCookieName is the cookie name when none is configured.
	DefaultSessionCookieName = "onbehalf"
	// SecureCookiePrefix starts the default cookie name on https.
	SecureCookiePrefix = "__Host-"
	// DefaultSessionIdleTimeout ends sessions unused for this long.
	DefaultSessionIdleTimeout = 2 * time.Hour
	// DefaultSessionAbsoluteTimeout ends sessions this long after login.
	DefaultSessionAbsoluteTimeout = 12 * time.Hour
)

// sessionTouchInterval bounds how often loading a session writes last_seen:
// pages must serve >= 1000 requests/s, so reads must not turn into writes.
// The cost is that the idle timeout may end a session up to this much early.
const sessionTouchInterval = time.Minute

// sessionIDLen is the size of a session id: 256 random bits.
const sessionIDLen = 32

// SessionOptions configures a SessionStore.
type SessionOptions struct {
	// CookieName is used when Get or New is called with an empty name;
	// default "onbehalf", or "__Host-onbehalf" when Secure: browsers then
	// accept the cookie only if it is Secure, for Path=/ and set by this
	// exact host, so neither a sibling subdomain nor a plain-http page can
	// plant or overwrite it.
	CookieName string
	// Secure sets the cookie's Secure attribute (whenever PUBLIC_URL is https).
	Secure bool
	// IdleTimeout ends a session not used for this long; default 2h.
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after it was created, however
	// busy; default 12h.
	AbsoluteTimeout time.Duration
}

// SessionStore is a github.com/gorilla/sessions Store that keeps sessions in
// the database (security promise 4). The cookie holds only a random 256-bit
// id, signed with HMAC-SHA-256 under a key derived from SecretKey; the table
// holds only the id's SHA-256, so neither a stolen cookie signing key nor a
// copy of the table alone yields a usable session.
//
// Session values must have string keys and values of these types: string,
// bool, int, int64, float64, []byte, []string, time.Time, or []any of those
// (which is how flashes are kept). They are stored as typed JSON so they
// come back with the same Go types; Save refuses anything else.
type SessionStore struct {
	db    *DB
	opts  SessionOptions
	codec *securecookie.SecureCookie
	// decoded keeps the values of recently loaded sessions, so that a
	// page load whose record has not changed skips decoding it.
	decoded decodedSessions
}

// decodedSessions maps a session's id hash to its stored text and the
// values decoded from it. An entry serves only a load that reads the very
// same text from the database, so it can never be stale: the record is
// always read, only its decoding is saved. It holds at most
// maxDecodedSessions entries and starts afresh when full.
type decodedSessions struct {
	mu sync.Mutex
	m  map[string]decodedSession
}

type decodedSession struct {
	data   string
	values map[any]any
}

// maxDecodedSessions bounds decodedSessions (a few MB at most).
const maxDecodedSessions = 4096

// get returns a copy of the values decoded from data for hash, if kept.
func (d *decodedSessions) get(hash []byte, data string) (map[any]any, bool) {
	d.mu.Lock()
	e, ok := d.m[string(hash)]
	d.mu.Unlock()
	if !ok || e.data != data {
		return nil, false
	}
	return cloneSessionValues(e.values), true
}

// put keeps a copy of values, decoded from data, for hash.
func (d *decodedSessions) put(hash []byte, data string, values map[any]any) {
	e := decodedSession{data: data, values: cloneSessionValues(values)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.m == nil || len(d.m) >= maxDecodedSessions {
		d.m = make(map[string]decodedSession)
	}
	d.m[string(hash)] = e
}

func (d *decodedSessions) forget(hash []byte) {
	d.mu.Lock()
	delete(d.m, string(hash))
	d.mu.Unlock()
}

// cloneSessionValues copies values deeply enough that a handler changing
// the copy (appending a flash, editing a slice) cannot change the original:
// the allowed scalar types are immutable, slices are copied.
func cloneSessionValues(values map[any]any) map[any]any {
	out := make(map[any]any, len(values))
	for k, v := range values {
		out[k] = cloneSessionValue(v)
	}
	return out
}

func cloneSessionValue(v any) any {
	switch x := v.(type) {
	case []byte:
		return slices.Clone(x)
	case []string:
		return slices.Clone(x)
	case []any:
		list := make([]any, len(x))
		for i, e := range x {
			list[i] = cloneSessionValue(e)
		}
		return list
	}
	return v
}

var _ sessions.Store = (*SessionStore)(nil)

// SessionStore returns a session store on db. Zero fields of opts take their
// defaults.
func (db *DB) SessionStore(opts SessionOptions) *SessionStore {
	if opts.CookieName == "" {
		opts.CookieName = DefaultSessionCookieName
		if opts.Secure {
			opts.CookieName = SecureCookiePrefix + DefaultSessionCookieName
		}
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultSessionIdleTimeout
	}
	if opts.AbsoluteTimeout <= 0 {
		opts.AbsoluteTimeout = DefaultSessionAbsoluteTimeout
	}
	// The id is random, so signing is enough: there is nothing to hide.
	codec := securecookie.New(db.cookieKey, nil).
		SetSerializer(securecookie.NopEncoder{}).
		// The database decides expiry; the codec's own (wall-clock) age check
		// is only a backstop and must never be the stricter of the two.
		MaxAge(int((opts.AbsoluteTimeout + time.Hour) / time.Second))
	return &SessionStore{db: db, opts: opts, codec: codec}
}

// Get returns the session for name, shared by every caller within one
// request through gorilla's request registry. An empty name means
// SessionOptions.CookieName.
func (s *SessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, s.cookieName(name))
}

// New loads the session whose id the request's cookie carries. A missing,
// tampered, unknown, expired or idle cookie yields a new empty session
// (IsNew, no ID) and no error; expired records are deleted on sight. The
// returned session is never nil, even with an error (a database failure).
func (s *SessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	name = s.cookieName(name)
	sess := s.newSession(name)
	c, err := r.Cookie(name)
	if err != nil {
		return sess, nil
	}
	var raw []byte
	if err := s.codec.Decode(name, c.Value, &raw); err != nil || len(raw) != sessionIDLen {
		return sess, nil
	}
	ctx := r.Context()
	hash := hashSessionID(raw)
	var (
		data                             string
		lastSeen, idleExpires, expiresAt int64
	)
	err = s.db.queryRow(ctx, `SELECT data, last_seen, idle_expires_at, expires_at
		FROM sessions WHERE id_hash = ?`, hash).
		Scan(&data, &lastSeen, &idleExpires, &expiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return sess, nil
	}
	if err != nil {
		return sess, fmt.Errorf("store: load session: %w", err)
	}
	now := toDBTime(s.db.now())
	if now >= expiresAt || now >= idleExpires {
		if _, err := s.db.exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, hash); err != nil {
			s.db.log.WarnContext(ctx, "store: delete expired session", "err", err)
		}
		return sess, nil
	}
	values, ok := s.decoded.get(hash, data)
	if !ok {
		values, err = decodeSessionValues(data)
		if err != nil {
			// Only a bug or a downgrade can produce a record we cannot
			// read; failing every request until the cookie expires would
			// lock the admin out, so treat it like an expired session.
			s.db.log.WarnContext(ctx, "store: unreadable session record, starting afresh", "err", err)
			if _, err := s.db.exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, hash); err != nil {
				s.db.log.WarnContext(ctx, "store: delete unreadable session", "err", err)
			}
			return sess, nil
		}
		s.decoded.put(hash, data, values)
	}
	if now-lastSeen >= sessionTouchInterval.Microseconds() {
		idle := min(now+s.opts.IdleTimeout.Microseconds(), expiresAt)
		// The condition keeps concurrent requests from racing last_seen
		// backwards; a failed touch only shortens the idle window.
		if _, err := s.db.exec(ctx, `UPDATE sessions SET last_seen = ?, idle_expires_at = ?
			WHERE id_hash = ? AND last_seen < ?`, now, idle, hash, now); err != nil {
			s.db.log.WarnContext(ctx, "store: touch session", "err", err)
		}
	}
	sess.ID = encodeSessionID(raw)
	sess.Values = values
	sess.IsNew = false
	return sess, nil
}

// Save writes the session and sets its cookie.
//
// A new session lives until the absolute timeout, or sess.Options.MaxAge
// seconds when that is shorter (login attempts ask for a short life).
//
// With Options.MaxAge < 0 it deletes the record and sends an expiring cookie
// instead. Otherwise a session without an ID gets a fresh random one and a
// new record; a session with an ID must still have its record — a session
// ended meanwhile (logout elsewhere, DeleteSessionsByAdmin, expiry) is not
// brought back: Save clears the cookie and returns ErrNotFound. The cookie is
// HttpOnly, SameSite=Lax, Path=/, Secure per SessionOptions, and lives until
// the session's absolute deadline.
func (s *SessionStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	ctx := r.Context()
	name := s.cookieName(sess.Name())
	if sess.Options != nil && sess.Options.MaxAge < 0 {
		if err := s.Destroy(ctx, sess); err != nil {
			return err
		}
		http.SetCookie(w, s.cookie(name, "", -1))
		return nil
	}
	data, adminID, err := encodeSessionValues(sess.Values)
	if err != nil {
		return fmt.Errorf("store: save session: %w", err)
	}
	grantID, err := mirroredID(sess.Values, SessionGrantKey)
	if err != nil {
		return fmt.Errorf("store: save session: %w", err)
	}
	now := toDBTime(s.db.now())
	var raw []byte
	var maxAge int64
	if sess.ID == "" {
		raw = make([]byte, sessionIDLen)
		rand.Read(raw) // never fails; panics if the OS RNG is broken
		lifetime := s.opts.AbsoluteTimeout
		if sess.Options != nil && sess.Options.MaxAge > 0 {
			// A shorter life asked for a new session (the pre-login one)
			// is kept; a longer one is not granted.
			lifetime = min(lifetime, time.Duration(sess.Options.MaxAge)*time.Second)
		}
		expires := now + lifetime.Microseconds()
		idle := min(now+s.opts.IdleTimeout.Microseconds(), expires)
		if _, err := s.db.exec(ctx, `INSERT INTO sessions
			(id_hash, admin_id, grant_id, data, created_at, last_seen, idle_expires_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			hashSessionID(raw), adminID, grantID, data, now, now, idle, expires); err != nil {
			return fmt.Errorf("store: create session: %w", err)
		}
		maxAge = expires - now
	} else {
		raw, err = decodeSessionID(sess.ID)
		if err != nil {
			return fmt.Errorf("store: save session: %w", err)
		}
		var expires int64
		err = s.db.queryRow(ctx, `UPDATE sessions
			SET admin_id = ?, grant_id = ?, data = ?, last_seen = ?,
			    idle_expires_at = CASE WHEN ? < expires_at THEN ? ELSE expires_at END
			WHERE id_hash = ? AND expires_at > ? AND idle_expires_at > ?
			RETURNING expires_at`,
			adminID, grantID, data, now,
			now+s.opts.IdleTimeout.Microseconds(), now+s.opts.IdleTimeout.Microseconds(),
			hashSessionID(raw), now, now).Scan(&expires)
		if errors.Is(err, sql.ErrNoRows) {
			http.SetCookie(w, s.cookie(name, "", -1))
			return fmt.Errorf("store: save session: %w", ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: save session: %w", err)
		}
		maxAge = expires - now
	}
	value, err := s.codec.Encode(name, raw)
	if err != nil {
		return fmt.Errorf("store: save session: encode cookie: %w", err)
	}
	sess.ID = encodeSessionID(raw)
	sess.IsNew = false
	// Round up so the cookie never outlives the record by less than a second
	// nor dies early.
	http.SetCookie(w, s.cookie(name, value, int((maxAge+999_999)/1_000_000)))
	return nil
}

// Destroy deletes the session's record now and empties sess (no ID, no
// values, IsNew), so that a later Save issues a brand-new id. Login calls it
// to drop the pre-login session before storing the admin's identity, which
// defeats session fixation.
func (s *SessionStore) Destroy(ctx context.Context, sess *sessions.Session) error {
	if sess.ID != "" {
		raw, err := decodeSessionID(sess.ID)
		if err == nil {
			hash := hashSessionID(raw)
			if _, err := s.db.exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, hash); err != nil {
				return fmt.Errorf("store: destroy session: %w", err)
			}
			s.decoded.forget(hash)
		}
	}
	sess.ID = ""
	sess.Values = make(map[any]any)
	sess.IsNew = true
	return nil
}

// DeleteSessionsByAdmin ends every session of one admin (after Zendesk
// answers invalid_grant, or on logout everywhere) and reports how many.
func (db *DB) DeleteSessionsByAdmin(ctx context.Context, adminID int64) (int64, error) {
	res, err := db.exec(ctx, `DELETE FROM sessions WHERE admin_id = ?`, adminID)
	if err != nil {
		return 0, fmt.Errorf("store: delete sessions of admin %d: %w", adminID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete sessions of admin %d: %w", adminID, err)
	}
	return n, nil
}

// DeleteExpiredSessions removes sessions past their idle or absolute
// deadline and reports how many. Loading already ignores them; this only
// keeps the table small, so run it now and then.
func (db *DB) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	now := toDBTime(db.now())
	res, err := db.exec(ctx, `DELETE FROM sessions WHERE expires_at <= ? OR idle_expires_at <= ?`, now, now)
	if err != nil {
		return 0, fmt.Errorf("store: delete expired sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete expired sessions: %w", err)
	}
	return n, nil
}

func (s *SessionStore) cookieName(name string) string {
	if name == "" {
		return s.opts.CookieName
	}
	return name
}

func (s *SessionStore) newSession(name string) *sessions.Session {
	sess := sessions.NewSession(s, name)
	sess.IsNew = true
	sess.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   int(s.opts.AbsoluteTimeout / time.Second),
		Secure:   s.opts.Secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	return sess
}

// cookie builds the session cookie. Attributes come from the store, not from
// sess.Options, so a handler cannot weaken them by accident.
func (s *SessionStore) cookie(name, value string, maxAge int) *http.Cookie {
	c := &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   s.opts.Secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
	if maxAge < 0 {
		c.Expires = time.Unix(1, 0)
	}
	return c
}

func hashSessionID(raw []byte) []byte {
	h := sha256.Sum256(raw)
	return h[:]
}

func encodeSessionID(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }

func decodeSessionID(id string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil || len(raw) != sessionIDLen {
		return nil, fmt.Errorf("malformed session id: %w", ErrInvalid)
	}
	return raw, nil
}

// sessionValue is one session value in the stored JSON, tagged with its Go
// type so that it decodes to the same type (plain JSON would turn an int64
// admin id into a float64).
type sessionValue struct {
	Type  string          `json:"t"`
	Value json.RawMessage `json:"v"`
}

// mirroredID is the integer session value under key, as a column value:
// nil when absent, an error when it is not an integer.
func mirroredID(values map[any]any, key string) (any, error) {
	switch id := values[key].(type) {
	case nil:
		return nil, nil
	case int64:
		return id, nil
	case int:
		return int64(id), nil
	default:
		return nil, fmt.Errorf("session value %q has type %T, want int64: %w", key, id, ErrInvalid)
	}
}

// encodeSessionValues encodes values as typed JSON and returns the admin id
// to mirror into the admin_id column (nil when absent).
func encodeSessionValues(values map[any]any) (string, any, error) {
	out := make(map[string]sessionValue, len(values))
	var adminID any
	for k, v := range values {
		key, ok := k.(string)
		if !ok {
			return "", nil, fmt.Errorf("session key %v has type %T, want string: %w", k, k, ErrInvalid)
		}
		sv, err := encodeSessionValue(v)
		if err != nil {
			return "", nil, fmt.Errorf("session value %q: %w", key, err)
		}
		out[key] = sv
		if key == SessionAdminKey {
			switch id := v.(type) {
			case int64:
				adminID = id
			case int:
				adminID = int64(id)
			default:
				return "", nil, fmt.Errorf("session value %q has type %T, want int64: %w", key, v, ErrInvalid)
			}
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return "", nil, err
	}
	return string(b), adminID, nil
}

func encodeSessionValue(v any) (sessionValue, error) {
	var typ string
	switch x := v.(type) {
	case string:
		typ = "string"
	case bool:
		typ = "bool"
	case int:
		typ = "int"
	case int64:
		typ = "int64"
	case float64:
		typ = "float64"
	case []byte:
		typ = "bytes"
	case []string:
		typ = "strings"
	case time.Time:
		typ = "time"
	case []any:
		list := make([]sessionValue, len(x))
		for i, e := range x {
			if _, nested := e.([]any); nested {
				return sessionValue{}, fmt.Errorf("nested list in session value: %w", ErrInvalid)
			}
			sv, err := encodeSessionValue(e)
			if err != nil {
				return sessionValue{}, err
			}
			list[i] = sv
		}
		b, err := json.Marshal(list)
		if err != nil {
			return sessionValue{}, err
		}
		return sessionValue{Type: "list", Value: b}, nil
	default:
		return sessionValue{}, fmt.Errorf("type %T is not allowed in a session: %w", v, ErrInvalid)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return sessionValue{}, err
	}
	return sessionValue{Type: typ, Value: b}, nil
}

func decodeSessionValues(data string) (map[any]any, error) {
	var in map[string]sessionValue
	if err := json.Unmarshal([]byte(data), &in); err != nil {
		return nil, fmt.Errorf("decode session values: %w", err)
	}
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic error messages
	out := make(map[any]any, len(in))
	for _, k := range keys {
		v, err := decodeSessionValue(in[k])
		if err != nil {
			return nil, fmt.Errorf("decode session value %q: %w", k, err)
		}
		out[k] = v
	}
	return out, nil
}

// decodeSessionValue decodes one typed value. Every signed-in page loads
// its session, so the common scalars (plain strings, integers, booleans)
// are read directly rather than through encoding/json's reflection; any
// other form goes through encoding/json.
func decodeSessionValue(sv sessionValue) (any, error) {
	switch sv.Type {
	case "string":
		if v, ok := plainJSONString(sv.Value); ok {
			return v, nil
		}
		return unmarshalAs[string](sv.Value)
	case "bool":
		switch string(sv.Value) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return unmarshalAs[bool](sv.Value)
	case "int":
		if v, ok := plainJSONInt(sv.Value, strconv.IntSize); ok {
			return int(v), nil
		}
		return unmarshalAs[int](sv.Value)
	case "int64":
		if v, ok := plainJSONInt(sv.Value, 64); ok {
			return v, nil
		}
		return unmarshalAs[int64](sv.Value)
	case "float64":
		return unmarshalAs[float64](sv.Value)
	case "bytes":
		return unmarshalAs[[]byte](sv.Value)
	case "strings":
		return unmarshalAs[[]string](sv.Value)
	case "time":
		return unmarshalAs[time.Time](sv.Value)
	case "list":
		var list []sessionValue
		if err := json.Unmarshal(sv.Value, &list); err != nil {
			return nil, err
		}
		out := make([]any, len(list))
		for i, e := range list {
			v, err := decodeSessionValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown session value type %q", sv.Type)
}

// plainJSONString returns the text of a JSON string literal that has no
// escapes and only printable ASCII or multi-byte UTF-8 (what
// encoding/json writes for ids, names, emails and tokens), and false for
// anything else.
func plainJSONString(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", false
	}
	b = b[1 : len(b)-1]
	for _, c := range b {
		if c < 0x20 || c == '"' || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

// plainJSONInt parses a JSON integer literal as encoding/json writes one
// (no sign but '-', no fraction or exponent).
func plainJSONInt(b []byte, bits int) (int64, bool) {
	if len(b) == 0 || b[0] == '+' {
		return 0, false
	}
	v, err := strconv.ParseInt(string(b), 10, bits)
	return v, err == nil
}

func unmarshalAs[T any](b []byte) (any, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}
