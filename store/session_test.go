package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"
)

// mustSave saves sess through a fresh response and returns the cookie set.
func mustSave(t *testing.T, s *SessionStore, r *http.Request, sess *sessions.Session) *http.Cookie {
	t.Helper()
	w := httptest.NewRecorder()
	if err := s.Save(r, w, sess); err != nil {
		t.Fatalf("Save: %v", err)
	}
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("Save set %d cookies, want 1", len(cookies))
	}
	return cookies[0]
}

// mustGet loads the session a request with cookie c (may be nil) sees.
func mustGet(t *testing.T, s *SessionStore, c *http.Cookie) *sessions.Session {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if c != nil {
		r.AddCookie(c)
	}
	sess, err := s.Get(r, "")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return sess
}

// newTestSession creates and saves a session holding values and returns it
// with its cookie.
func newTestSession(t *testing.T, s *SessionStore, values map[any]any) (*sessions.Session, *http.Cookie) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	sess, err := s.Get(r, "")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	for k, v := range values {
		sess.Values[k] = v
	}
	return sess, mustSave(t, s, r, sess)
}

func assertNewEmpty(t *testing.T, sess *sessions.Session) {
	t.Helper()
	if !sess.IsNew || sess.ID != "" || len(sess.Values) != 0 {
		t.Errorf("session = {IsNew:%v ID:%q Values:%v}, want a new empty session", sess.IsNew, sess.ID, sess.Values)
	}
}

func TestSessionRoundTrip(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, Options{}).SessionStore(SessionOptions{})
		first := mustGet(t, s, nil)
		assertNewEmpty(t, first)

		when := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
		values := map[any]any{
			SessionAdminKey: int64(42),
			"name":          "Ann Admin",
			"count":         3,
			"ok":            true,
			"ratio":         0.5,
			"verifier":      []byte{0, 1, 2, 255},
			"scopes":        []string{"read", "write"},
			"at":            when,
		}
		sess, cookie := newTestSession(t, s, values)
		sess.AddFlash("saved")
		sess.AddFlash(int64(7))
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(cookie)
		cookie = mustSave(t, s, r, sess) // second Save updates the same record

		got := mustGet(t, s, cookie)
		if got.IsNew || got.ID != sess.ID {
			t.Fatalf("loaded session IsNew=%v ID=%q, want existing %q", got.IsNew, got.ID, sess.ID)
		}
		want := map[any]any{}
		for k, v := range values {
			want[k] = v
		}
		want["_flash"] = []any{"saved", int64(7)}
		if diff := cmp.Diff(want, got.Values); diff != "" {
			t.Errorf("values after round trip (-want +got):\n%s", diff)
		}
		db := s.db
		if n := mustCount(t, db, `SELECT COUNT(*) FROM sessions`); n != 1 {
			t.Errorf("sessions rows = %d, want 1 (second Save must update)", n)
		}
		if n := mustCount(t, db, `SELECT COUNT(*) FROM sessions WHERE admin_id = 42`); n != 1 {
			t.Errorf("admin_id column does not mirror the session value")
		}
	})
}

func TestSessionGetSharesWithinRequest(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, newSQLiteDSN(t), Options{}).SessionStore(SessionOptions{})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	a, err := s.Get(r, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Get(r, "onbehalf")
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("two Gets in one request returned different sessions")
	}
}

func TestSessionCookieHoldsOnlySignedID(t *testing.T) {
	t.Parallel()
	dsn := newSQLiteDSN(t)
	db := mustOpen(t, dsn, Options{})
	s := db.SessionStore(SessionOptions{})
	sess, cookie := newTestSession(t, s, map[any]any{"secret": "tell-no-one", SessionAdminKey: int64(99)})

	raw, err := base64.URLEncoding.DecodeString(cookie.Value)
	if err != nil {
		t.Fatalf("cookie is not base64: %v", err)
	}
	if bytes.Contains(raw, []byte("tell-no-one")) || strings.Contains(cookie.Value, "tell-no-one") {
		t.Error("cookie carries session data")
	}

	// With the right key the cookie decodes to exactly the 256-bit id.
	key, err := deriveKey(testKey(), "cookie")
	if err != nil {
		t.Fatal(err)
	}
	var id []byte
	if err := securecookie.New(key, nil).SetSerializer(securecookie.NopEncoder{}).Decode("onbehalf", cookie.Value, &id); err != nil {
		t.Fatalf("decode with the right key: %v", err)
	}
	if got := base64.RawURLEncoding.EncodeToString(id); len(id) != 32 || got != sess.ID {
		t.Errorf("cookie holds %d bytes %q, want the 32-byte id %q", len(id), got, sess.ID)
	}

	// With another key it does not decode, and a store under another
	// SecretKey on the same database treats it as no session.
	otherKey := bytes.Repeat([]byte("o"), 32)
	wrong, _ := deriveKey(otherKey, "cookie")
	if err := securecookie.New(wrong, nil).SetSerializer(securecookie.NopEncoder{}).Decode("onbehalf", cookie.Value, &id); err == nil {
		t.Error("cookie decoded with the wrong key")
	}
	other := mustOpen(t, dsn, Options{SecretKey: otherKey}).SessionStore(SessionOptions{})
	assertNewEmpty(t, mustGet(t, other, cookie))
	// The cookie is bound to its name too.
	renamed := *cookie
	renamed.Name = "other"
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&renamed)
	got, err := s.Get(r, "other")
	if err != nil {
		t.Fatal(err)
	}
	assertNewEmpty(t, got)
}

func TestSessionTamperedCookie(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, newSQLiteDSN(t), Options{}).SessionStore(SessionOptions{})
	_, cookie := newTestSession(t, s, map[any]any{"k": "v"})
	if got := mustGet(t, s, cookie); got.IsNew {
		t.Fatal("untampered cookie did not load the session")
	}
	tests := map[string]func(string) string{
		"flipped char": func(v string) string {
			b := []byte(v)
			i := len(b) / 2
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			return string(b)
		},
		"truncated": func(v string) string { return v[:len(v)-4] },
		"garbage":   func(string) string { return "not-a-cookie" },
		"empty":     func(string) string { return "" },
	}
	for name, tamper := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := *cookie
			c.Value = tamper(c.Value)
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.AddCookie(&c)
			sess, err := s.New(r, "onbehalf")
			if err != nil {
				t.Fatalf("New with tampered cookie: err = %v, want nil", err)
			}
			assertNewEmpty(t, sess)
		})
	}
}

func TestSessionIdleTimeout(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		s := db.SessionStore(SessionOptions{IdleTimeout: 2 * time.Hour, AbsoluteTimeout: 12 * time.Hour})
		_, cookie := newTestSession(t, s, map[any]any{"k": "v"})

		// Each load within the idle window keeps the session alive.
		for range 3 {
			clock.Add(2*time.Hour - time.Minute)
			if got := mustGet(t, s, cookie); got.IsNew {
				t.Fatalf("session ended after %v idle, before the 2h idle timeout", 2*time.Hour-time.Minute)
			}
		}
		clock.Add(2 * time.Hour)
		assertNewEmpty(t, mustGet(t, s, cookie))
		if n := mustCount(t, db, `SELECT COUNT(*) FROM sessions`); n != 0 {
			t.Errorf("idle session record still stored (%d rows)", n)
		}
	})
}

func TestSessionTouchAtMostOncePerMinute(t *testing.T) {
	t.Parallel()
	clock := newTestClock()
	db := mustOpen(t, newSQLiteDSN(t), Options{Now: clock.Now})
	s := db.SessionStore(SessionOptions{})
	_, cookie := newTestSession(t, s, nil)
	created := toDBTime(clock.Now())
	lastSeen := func() int64 {
		t.Helper()
		var v int64
		if err := db.queryRow(t.Context(), `SELECT last_seen FROM sessions`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	clock.Add(59 * time.Second)
	mustGet(t, s, cookie)
	if got := lastSeen(); got != created {
		t.Errorf("last_seen written %v after creation; want no write within a minute", fromDBTime(got).Sub(fromDBTime(created)))
	}
	clock.Add(time.Second)
	mustGet(t, s, cookie)
	if got, want := lastSeen(), toDBTime(clock.Now()); got != want {
		t.Errorf("last_seen = %v, want touched to %v after a minute", fromDBTime(got), fromDBTime(want))
	}
}

func TestSessionAbsoluteTimeout(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		s := db.SessionStore(SessionOptions{IdleTimeout: 2 * time.Hour, AbsoluteTimeout: 3 * time.Hour})
		sess, cookie := newTestSession(t, s, map[any]any{"k": "v"})
		clock.Add(90 * time.Minute)
		if got := mustGet(t, s, cookie); got.IsNew {
			t.Fatal("session ended before its absolute timeout")
		}
		clock.Add(89 * time.Minute) // busy, never idle, but 2h59m old
		if got := mustGet(t, s, cookie); got.IsNew {
			t.Fatal("session ended before its absolute timeout")
		}
		clock.Add(time.Minute)
		assertNewEmpty(t, mustGet(t, s, cookie))

		// Saving the stale session object does not bring it back.
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		err := s.Save(r, httptest.NewRecorder(), sess)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Save of an expired session: err = %v, want ErrNotFound", err)
		}
		if n := mustCount(t, db, `SELECT COUNT(*) FROM sessions`); n != 0 {
			t.Errorf("expired session record stored (%d rows)", n)
		}
	})
}

func TestSessionMaxAgeNegativeDeletes(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		s := db.SessionStore(SessionOptions{})
		_, cookie := newTestSession(t, s, map[any]any{SessionAdminKey: int64(5)})

		sess := mustGet(t, s, cookie)
		sess.Options.MaxAge = -1
		r := httptest.NewRequest(http.MethodPost, "/logout", nil)
		r.AddCookie(cookie)
		w := httptest.NewRecorder()
		if err := s.Save(r, w, sess); err != nil {
			t.Fatalf("Save with MaxAge -1: %v", err)
		}
		cs := w.Result().Cookies()
		if len(cs) != 1 || cs[0].Name != "onbehalf" || cs[0].MaxAge >= 0 || cs[0].Value != "" {
			t.Errorf("logout cookies = %+v, want one expiring onbehalf cookie", cs)
		}
		if n := mustCount(t, db, `SELECT COUNT(*) FROM sessions`); n != 0 {
			t.Errorf("sessions rows = %d after logout, want 0", n)
		}
		// A replayed old cookie gets nothing.
		assertNewEmpty(t, mustGet(t, s, cookie))
	})
}

func TestSessionCookieAttributes(t *testing.T) {
	t.Parallel()
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[secure], func(t *testing.T) {
			t.Parallel()
			s := mustOpen(t, newSQLiteDSN(t), Options{}).SessionStore(SessionOptions{
				CookieName: "sid", Secure: secure, AbsoluteTimeout: 5 * time.Hour,
			})
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			sess, err := s.Get(r, "")
			if err != nil {
				t.Fatal(err)
			}
			sess.Options.Path = "/weaker" // the store's attributes win
			sess.Options.HttpOnly = false
			w := httptest.NewRecorder()
			if err := s.Save(r, w, sess); err != nil {
				t.Fatal(err)
			}
			header := w.Header().Get("Set-Cookie")
			c := w.Result().Cookies()[0]
			if c.Name != "sid" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" ||
				c.Secure != secure || c.MaxAge != 5*3600 {
				t.Errorf("Set-Cookie: %s\nwant name sid, HttpOnly, SameSite=Lax, Path=/, Secure=%v, Max-Age=18000", header, secure)
			}
		})
	}
}

func TestSessionDBHoldsOnlyIDHash(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		s := db.SessionStore(SessionOptions{})
		sess, _ := newTestSession(t, s, map[any]any{"k": "v"})
		raw, err := base64.RawURLEncoding.DecodeString(sess.ID)
		if err != nil {
			t.Fatal(err)
		}
		var hash []byte
		var data string
		if err := db.queryRow(t.Context(), `SELECT id_hash, data FROM sessions`).Scan(&hash, &data); err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(raw)
		if !bytes.Equal(hash, want[:]) {
			t.Errorf("id_hash = %x, want SHA-256 of the id %x", hash, want)
		}
		if bytes.Contains(hash, raw) || strings.Contains(data, sess.ID) {
			t.Error("the table holds the session id itself")
		}
	})
}

func TestDeleteSessionsByAdmin(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		s := db.SessionStore(SessionOptions{})
		_, a1 := newTestSession(t, s, map[any]any{SessionAdminKey: int64(1)})
		_, a2 := newTestSession(t, s, map[any]any{SessionAdminKey: int64(1)})
		_, b := newTestSession(t, s, map[any]any{SessionAdminKey: int64(2)})
		_, anon := newTestSession(t, s, map[any]any{"state": "x"})

		n, err := db.DeleteSessionsByAdmin(t.Context(), 1)
		if err != nil || n != 2 {
			t.Fatalf("DeleteSessionsByAdmin(1) = %d, %v; want 2, nil", n, err)
		}
		assertNewEmpty(t, mustGet(t, s, a1))
		assertNewEmpty(t, mustGet(t, s, a2))
		if mustGet(t, s, b).IsNew || mustGet(t, s, anon).IsNew {
			t.Error("sessions of other admins or anonymous ones were ended")
		}
	})
}

func TestSessionSaveDoesNotResurrect(t *testing.T) {
	t.Parallel()
	db := mustOpen(t, newSQLiteDSN(t), Options{})
	s := db.SessionStore(SessionOptions{})
	_, cookie := newTestSession(t, s, map[any]any{SessionAdminKey: int64(3)})
	// A request loads the session, then invalid_grant ends the admin's
	// sessions before the request saves.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(cookie)
	sess, err := s.Get(r, "")
	if err != nil || sess.IsNew {
		t.Fatalf("Get: %v (IsNew %v)", err, sess.IsNew)
	}
	if _, err := db.DeleteSessionsByAdmin(t.Context(), 3); err != nil {
		t.Fatal(err)
	}
	sess.Values["more"] = "x"
	w := httptest.NewRecorder()
	if err := s.Save(r, w, sess); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Save after the record was deleted: err = %v, want ErrNotFound", err)
	}
	if n := mustCount(t, db, `SELECT COUNT(*) FROM sessions`); n != 0 {
		t.Errorf("ended session was written back (%d rows)", n)
	}
	if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 {
		t.Errorf("cookies = %+v, want one expiring cookie", cs)
	}
}

func TestSessionDestroyIssuesNewID(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		s := db.SessionStore(SessionOptions{})
		_, preLogin := newTestSession(t, s, map[any]any{"oauth_state": "abc"})

		r := httptest.NewRequest(http.MethodGet, "/oauth/callback", nil)
		r.AddCookie(preLogin)
		sess, err := s.Get(r, "")
		if err != nil {
			t.Fatal(err)
		}
		oldID := sess.ID
		if err := s.Destroy(r.Context(), sess); err != nil {
			t.Fatalf("Destroy: %v", err)
		}
		if sess.ID != "" || len(sess.Values) != 0 || !sess.IsNew {
			t.Errorf("after Destroy: {ID:%q Values:%v IsNew:%v}, want empty new session", sess.ID, sess.Values, sess.IsNew)
		}
		sess.Values[SessionAdminKey] = int64(10)
		loggedIn := mustSave(t, s, r, sess)
		if sess.ID == "" || sess.ID == oldID {
			t.Errorf("ID after login = %q, want a fresh id (old %q)", sess.ID, oldID)
		}
		assertNewEmpty(t, mustGet(t, s, preLogin))
		if got := mustGet(t, s, loggedIn); got.Values[SessionAdminKey] != int64(10) {
			t.Errorf("new session values = %v", got.Values)
		}
		if n := mustCount(t, db, `SELECT COUNT(*) FROM sessions`); n != 1 {
			t.Errorf("sessions rows = %d, want 1", n)
		}
	})
}

func TestSessionRejectsUnsupportedValues(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, newSQLiteDSN(t), Options{}).SessionStore(SessionOptions{})
	tests := map[string]map[any]any{
		"struct value":      {"k": struct{ A int }{1}},
		"map value":         {"k": map[string]string{}},
		"non-string key":    {1: "v"},
		"admin id a string": {SessionAdminKey: "42"},
		"nested list":       {"k": []any{[]any{"x"}}},
	}
	for name, values := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			sess, _ := s.New(r, "onbehalf")
			sess.Values = values
			if err := s.Save(r, httptest.NewRecorder(), sess); !errors.Is(err, ErrInvalid) {
				t.Errorf("Save(%v): err = %v, want ErrInvalid", values, err)
			}
		})
	}
}

func TestDeleteExpiredSessions(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		short := db.SessionStore(SessionOptions{IdleTimeout: time.Hour, AbsoluteTimeout: 12 * time.Hour})
		long := db.SessionStore(SessionOptions{IdleTimeout: 3 * time.Hour, AbsoluteTimeout: 12 * time.Hour})
		newTestSession(t, short, nil)
		newTestSession(t, short, nil)
		newTestSession(t, long, nil)
		clock.Add(2 * time.Hour)
		n, err := db.DeleteExpiredSessions(t.Context())
		if err != nil || n != 2 {
			t.Fatalf("DeleteExpiredSessions = %d, %v; want 2, nil", n, err)
		}
		if left := mustCount(t, db, `SELECT COUNT(*) FROM sessions`); left != 1 {
			t.Errorf("%d sessions left, want 1", left)
		}
	})
}

// BenchmarkSessionGet measures loading a logged-in session, the work every
// authenticated page does.
func BenchmarkSessionGet(b *testing.B) {
	db, err := Open(b.Context(), newSQLiteDSN(b), Options{SecretKey: testKey()})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := db.SessionStore(SessionOptions{})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	sess, _ := s.Get(r, "")
	sess.Values[SessionAdminKey] = int64(1)
	sess.Values["grant_id"] = int64(2)
	w := httptest.NewRecorder()
	if err := s.Save(r, w, sess); err != nil {
		b.Fatal(err)
	}
	cookie := w.Result().Cookies()[0]
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.AddCookie(cookie)
			sess, err := s.Get(r, "")
			if err != nil || sess.IsNew {
				b.Fatalf("Get: %v (IsNew %v)", err, sess.IsNew)
			}
		}
	})
}

// TestSessionLoadsAreIndependentCopies loads one session twice: values the
// first request changes in place (a flash appended, a slice edited) must
// not show in the second, though its decoding is kept between loads.
func TestSessionLoadsAreIndependentCopies(t *testing.T) {
	t.Parallel()
	s := mustOpen(t, newSQLiteDSN(t), Options{}).SessionStore(SessionOptions{})
	_, cookie := newTestSession(t, s, map[any]any{
		"scopes":   []string{"read", "write"},
		"verifier": []byte{1, 2, 3},
		"_flash":   []any{"saved", []string{"a"}},
	})
	first := mustGet(t, s, cookie)
	first.Values["scopes"].([]string)[0] = "changed"
	first.Values["verifier"].([]byte)[0] = 9
	first.Values["_flash"].([]any)[1].([]string)[0] = "changed"
	first.Values["extra"] = "added"

	second := mustGet(t, s, cookie)
	want := map[any]any{
		"scopes":   []string{"read", "write"},
		"verifier": []byte{1, 2, 3},
		"_flash":   []any{"saved", []string{"a"}},
	}
	if diff := cmp.Diff(want, second.Values); diff != "" {
		t.Errorf("second load saw the first one's changes (-want +got):\n%s", diff)
	}
}

// TestSessionLoadSeesSaveElsewhere saves new values through another store
// on the same database (another replica): the next load through the first
// store, which has decoded the old record, returns the new values.
func TestSessionLoadSeesSaveElsewhere(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		s := mustOpen(t, dsn, Options{}).SessionStore(SessionOptions{})
		other := mustOpen(t, dsn, Options{}).SessionStore(SessionOptions{})
		_, cookie := newTestSession(t, s, map[any]any{"name": "before"})
		if got := mustGet(t, s, cookie).Values["name"]; got != "before" {
			t.Fatalf("name = %v, want before", got)
		}

		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(cookie)
		sess, err := other.Get(r, "")
		if err != nil {
			t.Fatal(err)
		}
		sess.Values["name"] = "after"
		mustSave(t, other, r, sess)

		if got := mustGet(t, s, cookie).Values["name"]; got != "after" {
			t.Errorf("name = %v after a save elsewhere, want after", got)
		}
	})
}

// TestDecodeSessionValueFastPaths checks that the direct readers of
// strings, integers and booleans agree with encoding/json on what it
// writes, and leave everything else to it.
func TestDecodeSessionValueFastPaths(t *testing.T) {
	t.Parallel()
	values := []any{
		"", "plain", "Ann Admin <ann@example.com>", "tab\there", `quote"d`, `back\slash`,
		"émoji ✓ 🎉", "\u2028", "invalid \xff utf-8",
		0, -1, 42, int(math.MaxInt32),
		int64(0), int64(-7), int64(math.MaxInt64), int64(math.MinInt64),
		true, false,
	}
	for _, v := range values {
		sv, err := encodeSessionValue(v)
		if err != nil {
			t.Fatalf("encode %#v: %v", v, err)
		}
		got, err := decodeSessionValue(sv)
		if err != nil {
			t.Errorf("decode %s: %v", sv.Value, err)
			continue
		}
		want := reflect.New(reflect.TypeOf(v))
		if err := json.Unmarshal(sv.Value, want.Interface()); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want.Elem().Interface()) {
			t.Errorf("decode %s = %#v, encoding/json gives %#v", sv.Value, got, want.Elem().Interface())
		}
	}
	for _, raw := range []string{`"\u0041"`, `"a`, `+5`, `5.0`, `1e3`, ` 5`} {
		if _, ok := plainJSONString([]byte(raw)); ok {
			t.Errorf("plainJSONString accepted %s", raw)
		}
		if _, ok := plainJSONInt([]byte(raw), 64); ok {
			t.Errorf("plainJSONInt accepted %s", raw)
		}
	}
}
