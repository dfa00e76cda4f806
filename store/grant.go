package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Refresh timing. The lease must outlive the refresh call by a margin so a
// slow-but-alive holder is never taken over while its refresh may still
// rotate the pair; the margin also absorbs clock skew between replicas,
// because lease times come from each process's own clock.
const (
	refreshTimeout = 30 * time.Second
	leaseTTL       = 2 * refreshTimeout
	// flightTimeout bounds one refresh flight: wait out a dead holder's
	// lease, then refresh ourselves.
	flightTimeout = leaseTTL + refreshTimeout + 10*time.Second
	pollMin       = 10 * time.Millisecond
	pollMax       = 200 * time.Millisecond
	saveTimeout   = 10 * time.Second
	// maxRefreshMargin is how long before its expiry a token is refreshed,
	// unless a quarter of its lifetime is shorter; see refreshMargin.
	maxRefreshMargin = time.Minute
)

// Grant is one admin's Zendesk authorization: the OAuth token pair obtained
// at login, kept encrypted at rest (security promise 7).
type Grant struct {
	ID         int64
	AdminID    int64 // the admin's Zendesk user id
	AdminName  string
	AdminEmail string
	Token      *oauth2.Token
	// Version counts token rotations: 1 at creation, +1 per refresh.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// String describes the grant without its tokens, so printing a Grant can
// never leak them.
func (g Grant) String() string {
	return fmt.Sprintf("Grant{ID:%d AdminID:%d Version:%d}", g.ID, g.AdminID, g.Version)
}

// GoString keeps %#v from printing the tokens too.
func (g Grant) GoString() string { return g.String() }

// LogValue logs the grant without its tokens.
func (g Grant) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int64("id", g.ID),
		slog.Int64("admin_id", g.AdminID),
		slog.Int64("version", g.Version),
	)
}

// RefreshFunc exchanges a refresh token for a new token pair at Zendesk
// (zendesk-api.md §1.3: the old pair is invalidated on success). Its error is
// returned to RefreshGrant's callers wrapped, so errors.Is still finds
// invalid_grant.
type RefreshFunc func(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error)

// CreateGrant stores a new grant and sets its ID, Version (1), CreatedAt and
// UpdatedAt.
func (db *DB) CreateGrant(ctx context.Context, g *Grant) error {
	if g.Token == nil || g.Token.AccessToken == "" {
		return fmt.Errorf("store: create grant: no access token: %w", ErrInvalid)
	}
	now := db.now()
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: create grant: %w", err)
	}
	defer tx.Rollback()
	// The ciphertext is bound to the row id, which exists only after the
	// insert, hence insert-then-seal inside one transaction.
	var id int64
	err = tx.QueryRowContext(ctx, db.dialect.rebind(`INSERT INTO grants
		(admin_id, admin_name, admin_email, token, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, 1, ?, ?) RETURNING id`),
		g.AdminID, g.AdminName, g.AdminEmail, []byte{}, toDBTime(now), toDBTime(now)).Scan(&id)
	if err != nil {
		return fmt.Errorf("store: create grant: %w", err)
	}
	sealed, err := db.sealToken(id, g.AdminID, g.Token)
	if err != nil {
		return fmt.Errorf("store: create grant: %w", err)
	}
	if _, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE grants SET token = ? WHERE id = ?`), sealed, id); err != nil {
		return fmt.Errorf("store: create grant: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: create grant: %w", err)
	}
	g.ID = id
	g.Version = 1
	g.CreatedAt = fromDBTime(toDBTime(now))
	g.UpdatedAt = g.CreatedAt
	return nil
}

// FindGrantByID returns the grant with its decrypted token, ErrNotFound if
// there is none, or ErrDecrypt if the token cannot be decrypted.
func (db *DB) FindGrantByID(ctx context.Context, id int64) (*Grant, error) {
	g, _, err := db.findGrant(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("store: find grant %d: %w", id, err)
	}
	return g, nil
}

// DeleteGrant deletes the grant (logout), or returns ErrNotFound.
func (db *DB) DeleteGrant(ctx context.Context, id int64) error {
	res, err := db.exec(ctx, `DELETE FROM grants WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("store: delete grant %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: delete grant %d: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("store: delete grant %d: %w", id, ErrNotFound)
	}
	return nil
}

// RefreshGrant returns a fresh access token for the grant, calling refresh
// at most once per grant at a time across goroutines and processes.
//
// Zendesk rotates the pair on every refresh (zendesk-api.md §1.3), so two
// concurrent refreshes with the same refresh token would leave one side with
// a dead pair; hence: inside the process, callers share one flight (they all
// get the first caller's refresh function); across processes, the flight
// claims a lease on the row with a conditional UPDATE and losers poll until
// the version moves. A lease whose holder died is taken over once it lapses.
//
// The refresh call and the save of its result run on a context detached from
// ctx (with their own timeout): once Zendesk has rotated the pair, the new
// pair must reach the database even if the caller has gone. ctx bounds only
// how long this caller waits. If the stored token is already fresh, refresh is
// not called. A refresh error releases the lease and is returned wrapped.
func (db *DB) RefreshGrant(ctx context.Context, id int64, refresh RefreshFunc) (*oauth2.Token, error) {
	if refresh == nil {
		return nil, fmt.Errorf("store: refresh grant %d: nil refresh func: %w", id, ErrInvalid)
	}
	ch := db.refreshes.DoChan(strconv.FormatInt(id, 10), func() (any, error) {
		db.mu.Lock()
		if db.closed {
			db.mu.Unlock()
			return nil, fmt.Errorf("store: refresh grant %d: database closed", id)
		}
		db.flights.Add(1)
		db.mu.Unlock()
		defer db.flights.Done()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flightTimeout)
		defer cancel()
		return db.refreshFlight(fctx, id, refresh)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return cloneToken(res.Val.(*oauth2.Token)), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("store: refresh grant %d: %w", id, context.Cause(ctx))
	}
}

// refreshFlight is one process's attempt at refreshing grant id; see
// RefreshGrant.
func (db *DB) refreshFlight(ctx context.Context, id int64, refresh RefreshFunc) (*oauth2.Token, error) {
	var seen int64 // version at our first look
	delay := pollMin
	for {
		g, leaseUntil, err := db.findGrant(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("store: refresh grant %d: %w", id, err)
		}
		if seen != 0 && g.Version != seen {
			// Someone else refreshed while we waited: use their pair even
			// if our clock thinks it is stale, rather than refresh again.
			return g.Token, nil
		}
		now := db.now()
		if tokenFresh(g.Token, now) {
			return g.Token, nil
		}
		seen = g.Version
		if leaseUntil == 0 || leaseUntil < toDBTime(now) {
			if leaseUntil != 0 {
				db.log.WarnContext(ctx, "store: taking over a lapsed refresh lease", "grant", id)
			}
			holder, won, err := db.claimLease(ctx, id, g.Version, now)
			if err != nil {
				return nil, fmt.Errorf("store: refresh grant %d: claim lease: %w", id, err)
			}
			if won {
				return db.refreshAsHolder(ctx, g, holder, refresh)
			}
			// Lost the race for the lease; poll like any other loser.
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("store: refresh grant %d: waiting for another refresh: %w", id, context.Cause(ctx))
		case <-db.closing:
			t.Stop()
			return nil, fmt.Errorf("store: refresh grant %d: database closing", id)
		case <-t.C:
		}
		delay = min(delay*2, pollMax)
	}
}

// claimLease takes the refresh lease if the row is still at version and the
// lease is free or lapsed. The single conditional UPDATE is what makes the
// claim atomic across processes.
func (db *DB) claimLease(ctx context.Context, id, version int64, now time.Time) (holder string, won bool, err error) {
	b := make([]byte, 16)
	rand.Read(b)
	holder = hex.EncodeToString(b)
	res, err := db.exec(ctx, `UPDATE grants SET lease_until = ?, lease_holder = ?
		WHERE id = ? AND version = ? AND (lease_until IS NULL OR lease_until < ?)`,
		toDBTime(now.Add(leaseTTL)), holder, id, version, toDBTime(now))
	if err != nil {
		return "", false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return "", false, err
	}
	return holder, n == 1, nil
}

// refreshAsHolder calls refresh while holding the lease and saves the new
// pair (version+1, lease cleared) before returning it.
func (db *DB) refreshAsHolder(ctx context.Context, g *Grant, holder string, refresh RefreshFunc) (*oauth2.Token, error) {
	rctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	tok, err := refresh(rctx, cloneToken(g.Token))
	cancel()
	// Writes from here on must happen even if the flight ran out of time:
	// a lease left behind blocks everyone until it lapses, a lost pair
	// forces the admin to log in again.
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), saveTimeout)
	defer wcancel()
	if err == nil && (tok == nil || tok.AccessToken == "") {
		err = errors.New("refresh returned no access token")
	}
	if err != nil {
		if _, rerr := db.exec(wctx, `UPDATE grants SET lease_until = NULL, lease_holder = NULL
			WHERE id = ? AND lease_holder = ?`, g.ID, holder); rerr != nil {
			db.log.WarnContext(ctx, "store: release refresh lease", "grant", g.ID, "err", rerr)
		}
		// If our lease lapsed and another process saved a newer pair
		// meanwhile, that pair is good and our failure does not matter.
		if cur, _, ferr := db.findGrant(wctx, g.ID); ferr == nil && cur.Version != g.Version {
			return cur.Token, nil
		}
		return nil, fmt.Errorf("store: refresh grant %d: %w", g.ID, err)
	}
	tok = cloneToken(tok)
	if tok.RefreshToken == "" {
		// RFC 6749 §6: no new refresh token means the old one stays valid.
		tok.RefreshToken = g.Token.RefreshToken
	}
	if tok.ExpiresIn <= 0 {
		// The lifetime sets the refresh margin; the token returned must
		// carry it just like the one saved.
		tok.ExpiresIn = lifetimeSeconds(tokenLifetime(tok, db.now()))
	}
	sealed, err := db.sealToken(g.ID, g.AdminID, tok)
	if err != nil {
		return nil, fmt.Errorf("store: refresh grant %d: %w", g.ID, err)
	}
	// Conditioned on the version, not the holder: if our lease lapsed but
	// nobody saved meanwhile, our pair is the one Zendesk honours.
	res, err := db.exec(wctx, `UPDATE grants
		SET token = ?, version = version + 1, lease_until = NULL, lease_holder = NULL, updated_at = ?
		WHERE id = ? AND version = ?`, sealed, toDBTime(db.now()), g.ID, g.Version)
	if err != nil {
		return nil, fmt.Errorf("store: refresh grant %d: save: %w", g.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		if _, _, ferr := db.findGrant(wctx, g.ID); errors.Is(ferr, ErrNotFound) {
			// Deleted (logout) while we refreshed.
			return nil, fmt.Errorf("store: refresh grant %d: %w", g.ID, ErrNotFound)
		}
		db.log.ErrorContext(ctx, "store: refreshed pair lost: another process saved first (lease lapsed)", "grant", g.ID)
		return nil, fmt.Errorf("store: refresh grant %d: save: another process refreshed first: %w", g.ID, ErrConflict)
	}
	return tok, nil
}

// TokenSource returns an oauth2.TokenSource for the grant, for the Zendesk
// client. Token returns the cached token while it is fresh (see
// refreshMargin), else reloads the grant, and refreshes through
// RefreshGrant when the stored token is due too. Tokens without an expiry
// never refresh. The source also implements zendesk.TokenReloader, so that
// a request refused because a refresh elsewhere replaced its token is sent
// again with the new one.
func (db *DB) TokenSource(id int64, refresh RefreshFunc) oauth2.TokenSource {
	return &grantTokenSource{db: db, id: id, refresh: refresh}
}

type grantTokenSource struct {
	db      *DB
	id      int64
	refresh RefreshFunc

	mu  sync.Mutex
	tok *oauth2.Token
}

func (s *grantTokenSource) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tokenFresh(s.tok, s.db.now()) {
		return cloneToken(s.tok), nil
	}
	// oauth2.TokenSource has no context; bound the wait ourselves.
	ctx, cancel := context.WithTimeout(context.Background(), flightTimeout)
	defer cancel()
	g, err := s.db.FindGrantByID(ctx, s.id)
	if err != nil {
		return nil, err
	}
	tok := g.Token
	if !tokenFresh(tok, s.db.now()) {
		tok, err = s.db.RefreshGrant(ctx, s.id, s.refresh)
		if err != nil {
			return nil, err
		}
	}
	s.tok = tok
	return cloneToken(tok), nil
}

// ReloadToken returns the token that replaced stale, which Zendesk has just
// refused (zendesk.TokenReloader), or stale's token when nothing did.
//
// Zendesk rotates the pair on refresh and the old access token dies at
// once (zendesk-api.md §1.3), so a request whose token another source or
// replica refreshed meanwhile is refused although the grant is fine. The
// cache may not know yet, so the grant is read again: a different stored
// token is the replacement. The same stored token while a refresh lease is
// held means Zendesk may already have rotated the pair while the new one is
// not saved yet: ReloadToken then waits, like a refresh flight that lost the
// lease, for the version to move, or for the lease to be released or to
// lapse (then nothing replaced stale).
func (s *grantTokenSource) ReloadToken(ctx context.Context, stale *oauth2.Token) (*oauth2.Token, error) {
	if stale == nil {
		return s.Token()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != nil && s.tok.AccessToken != stale.AccessToken && tokenFresh(s.tok, s.db.now()) {
		return cloneToken(s.tok), nil
	}
	ctx, cancel := context.WithTimeout(ctx, flightTimeout)
	defer cancel()
	tok, err := s.db.reloadGrant(ctx, s.id, stale.AccessToken, s.refresh)
	if err != nil {
		return nil, err
	}
	s.tok = tok
	return cloneToken(tok), nil
}

// reloadGrant is ReloadToken's database side: the grant's token if it is
// not stale, after waiting out a refresh in flight; see ReloadToken.
func (db *DB) reloadGrant(ctx context.Context, id int64, stale string, refresh RefreshFunc) (*oauth2.Token, error) {
	delay := pollMin
	for {
		g, leaseUntil, err := db.findGrant(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("store: reload grant %d: %w", id, err)
		}
		now := db.now()
		switch {
		case g.Token.AccessToken != stale && tokenFresh(g.Token, now):
			return g.Token, nil
		case g.Token.AccessToken != stale:
			// Replaced, and due again already.
			return db.RefreshGrant(ctx, id, refresh)
		case leaseUntil == 0 || leaseUntil < toDBTime(now):
			// No refresh under way: nothing replaced stale.
			return g.Token, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("store: reload grant %d: waiting for a refresh: %w", id, context.Cause(ctx))
		case <-db.closing:
			t.Stop()
			return nil, fmt.Errorf("store: reload grant %d: database closing", id)
		case <-t.C:
		}
		delay = min(delay*2, pollMax)
	}
}

// tokenFresh reports whether t can be used now without refreshing: it has
// no expiry, or more than refreshMargin(t) to live.
func tokenFresh(t *oauth2.Token, now time.Time) bool {
	if t == nil || t.AccessToken == "" {
		return false
	}
	return t.Expiry.IsZero() || now.Before(t.Expiry.Add(-refreshMargin(t)))
}

// refreshMargin is how long before its expiry t is refreshed: a minute, to
// absorb clock skew between us and Zendesk and the time a call takes, but
// at most a quarter of t's lifetime (t.ExpiresIn, which the store fills
// from what it saved). A fixed minute would make a token that lives less
// than a minute look expired as soon as it arrives, and every call would
// refresh it (zendesk-api.md §1.3 rotates the pair each time); a quarter
// keeps it to about one refresh per lifetime. A token of unknown lifetime
// gets the minute.
func refreshMargin(t *oauth2.Token) time.Duration {
	lifetime := time.Duration(t.ExpiresIn) * time.Second
	if lifetime <= 0 {
		return maxRefreshMargin
	}
	return min(maxRefreshMargin, lifetime/4)
}

// tokenLifetime is how long t was issued to live: Zendesk's expires_in
// when the token carries it, else what is left until its expiry at now (a
// token is saved right after it is issued); 0 when unknown or it has none.
func tokenLifetime(t *oauth2.Token, now time.Time) time.Duration {
	switch {
	case t.ExpiresIn > 0:
		return time.Duration(t.ExpiresIn) * time.Second
	case !t.Expiry.IsZero() && t.Expiry.After(now):
		return t.Expiry.Sub(now)
	}
	return 0
}

// lifetimeSeconds is a lifetime as oauth2.Token.ExpiresIn holds it, rounded
// up so that a sub-second lifetime is not taken for "unknown".
func lifetimeSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

func cloneToken(t *oauth2.Token) *oauth2.Token {
	c := *t
	return &c
}

// findGrant loads and decrypts one grant, returning also its lease deadline
// (0 when free).
func (db *DB) findGrant(ctx context.Context, id int64) (*Grant, int64, error) {
	var (
		g          Grant
		sealed     []byte
		leaseUntil sql.NullInt64
		created    int64
		updated    int64
	)
	err := db.queryRow(ctx, `SELECT id, admin_id, admin_name, admin_email, token, version,
		lease_until, created_at, updated_at FROM grants WHERE id = ?`, id).
		Scan(&g.ID, &g.AdminID, &g.AdminName, &g.AdminEmail, &sealed, &g.Version,
			&leaseUntil, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, err
	}
	g.Token, err = db.openToken(g.ID, g.AdminID, sealed)
	if err != nil {
		return nil, 0, err
	}
	g.CreatedAt = fromDBTime(created)
	g.UpdatedAt = fromDBTime(updated)
	if g.Token.ExpiresIn == 0 && !g.Token.Expiry.IsZero() {
		// Saved before lifetimes were kept: the row was last updated when
		// its token was saved, right after Zendesk issued it.
		if d := g.Token.Expiry.Sub(g.UpdatedAt); d > 0 {
			g.Token.ExpiresIn = lifetimeSeconds(d)
		}
	}
	return &g, leaseUntil.Int64, nil
}

// storedToken is the plaintext inside a grant's ciphertext.
type storedToken struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	Scope        string    `json:"scope,omitempty"`
	// Lifetime is how long the access token was issued to live, which
	// sets its refresh margin (refreshMargin). Tokens saved before it was
	// kept have none; findGrant estimates it.
	Lifetime time.Duration `json:"lifetime,omitzero"`
}

// sealedFormat is the first byte of every grant ciphertext, so the format
// (or the key) can change later without guessing.
const sealedFormat = 1

// tokenAAD binds a ciphertext to its grant row and admin: a ciphertext
// copied into another row (another admin's grant) fails to decrypt instead
// of letting one admin act with another's token.
func tokenAAD(grantID, adminID int64) []byte {
	b := []byte("onbehalf grant-tokens v1\x00")
	b = binary.BigEndian.AppendUint64(b, uint64(grantID))
	return binary.BigEndian.AppendUint64(b, uint64(adminID))
}

// sealToken encrypts tok with AES-256-GCM under a random 96-bit nonce.
func (db *DB) sealToken(grantID, adminID int64, tok *oauth2.Token) ([]byte, error) {
	st := storedToken{
		AccessToken:  tok.AccessToken,
		TokenType:    tok.TokenType,
		RefreshToken: tok.RefreshToken,
		Expiry:       tok.Expiry.UTC(),
		Lifetime:     tokenLifetime(tok, db.now()),
	}
	if scope, ok := tok.Extra("scope").(string); ok {
		st.Scope = scope
	}
	return db.seal(grantID, adminID, st)
}

// seal encrypts st for the grant row.
func (db *DB) seal(grantID, adminID int64, st storedToken) ([]byte, error) {
	plain, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("seal token: %w", err)
	}
	nonce := make([]byte, db.grantAEAD.NonceSize())
	rand.Read(nonce)
	out := append([]byte{sealedFormat}, nonce...)
	return db.grantAEAD.Seal(out, nonce, plain, tokenAAD(grantID, adminID)), nil
}

// openToken reverses sealToken. Every failure is ErrDecrypt: the message
// must not help anyone probing ciphertexts, and the remedy is the same.
func (db *DB) openToken(grantID, adminID int64, sealed []byte) (*oauth2.Token, error) {
	ns := db.grantAEAD.NonceSize()
	if len(sealed) < 1+ns || sealed[0] != sealedFormat {
		return nil, ErrDecrypt
	}
	plain, err := db.grantAEAD.Open(nil, sealed[1:1+ns], sealed[1+ns:], tokenAAD(grantID, adminID))
	if err != nil {
		return nil, ErrDecrypt
	}
	var st storedToken
	if err := json.Unmarshal(plain, &st); err != nil {
		return nil, ErrDecrypt
	}
	tok := &oauth2.Token{
		AccessToken:  st.AccessToken,
		TokenType:    st.TokenType,
		RefreshToken: st.RefreshToken,
		Expiry:       st.Expiry,
		ExpiresIn:    lifetimeSeconds(st.Lifetime),
	}
	if st.Scope != "" {
		tok = tok.WithExtra(map[string]any{"scope": st.Scope})
	}
	return tok, nil
}
