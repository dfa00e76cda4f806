package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// newTestGrant stores a grant for adminID whose token expires at expiry.
func newTestGrant(t *testing.T, db *DB, adminID int64, expiry time.Time) *Grant {
	t.Helper()
	g := &Grant{
		AdminID:    adminID,
		AdminName:  fmt.Sprintf("Admin %d", adminID),
		AdminEmail: fmt.Sprintf("admin%d@example.com", adminID),
		Token: &oauth2.Token{
			AccessToken:  fmt.Sprintf("access-secret-%d", adminID),
			RefreshToken: fmt.Sprintf("refresh-secret-%d", adminID),
			TokenType:    "Bearer",
			Expiry:       expiry,
		},
	}
	if err := db.CreateGrant(t.Context(), g); err != nil {
		t.Fatalf("CreateGrant: %v", err)
	}
	return g
}

// countingRefresh is a RefreshFunc that counts calls, optionally waits, and
// returns the pair "<prefix>-access-N"/"<prefix>-refresh-N".
type countingRefresh struct {
	calls atomic.Int64
	delay time.Duration
	now   func() time.Time
}

func (c *countingRefresh) refresh(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
	n := c.calls.Add(1)
	if old.RefreshToken == "" {
		return nil, errors.New("no refresh token passed")
	}
	time.Sleep(c.delay)
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	return &oauth2.Token{
		AccessToken:  fmt.Sprintf("new-access-%d", n),
		RefreshToken: fmt.Sprintf("new-refresh-%d", n),
		TokenType:    "Bearer",
		Expiry:       now().Add(time.Hour),
	}, nil
}

func mustFindGrant(t *testing.T, db *DB, id int64) *Grant {
	t.Helper()
	g, err := db.FindGrantByID(t.Context(), id)
	if err != nil {
		t.Fatalf("FindGrantByID(%d): %v", id, err)
	}
	return g
}

func TestGrantRoundTrip(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		expiry := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
		tok := (&oauth2.Token{AccessToken: "a1", RefreshToken: "r1", TokenType: "bearer", Expiry: expiry}).
			WithExtra(map[string]any{"scope": "read write impersonate"})
		g := &Grant{AdminID: 7, AdminName: "Ann", AdminEmail: "ann@example.com", Token: tok}
		if err := db.CreateGrant(t.Context(), g); err != nil {
			t.Fatalf("CreateGrant: %v", err)
		}
		if g.ID == 0 || g.Version != 1 || !g.CreatedAt.Equal(clock.Now()) || !g.UpdatedAt.Equal(clock.Now()) {
			t.Errorf("after CreateGrant: %+v, want ID set, Version 1, times now", g)
		}
		got := mustFindGrant(t, db, g.ID)
		if got.ID != g.ID || got.AdminID != 7 || got.AdminName != "Ann" || got.AdminEmail != "ann@example.com" ||
			got.Version != 1 || !got.CreatedAt.Equal(g.CreatedAt) {
			t.Errorf("FindGrantByID = %+v, want %+v", *got, *g)
		}
		gt := got.Token
		if gt.AccessToken != "a1" || gt.RefreshToken != "r1" || gt.TokenType != "bearer" ||
			!gt.Expiry.Equal(expiry) || gt.Extra("scope") != "read write impersonate" {
			t.Errorf("token = %+v scope %v, want the stored pair", gt, gt.Extra("scope"))
		}
	})
}

func TestGrantNotFound(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		if _, err := db.FindGrantByID(t.Context(), 404); !errors.Is(err, ErrNotFound) {
			t.Errorf("FindGrantByID(404): err = %v, want ErrNotFound", err)
		}
		g := newTestGrant(t, db, 1, time.Time{})
		if err := db.DeleteGrant(t.Context(), g.ID); err != nil {
			t.Fatalf("DeleteGrant: %v", err)
		}
		if _, err := db.FindGrantByID(t.Context(), g.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("FindGrantByID after delete: err = %v, want ErrNotFound", err)
		}
		if err := db.DeleteGrant(t.Context(), g.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second DeleteGrant: err = %v, want ErrNotFound", err)
		}
		if err := db.CreateGrant(t.Context(), &Grant{AdminID: 1}); !errors.Is(err, ErrInvalid) {
			t.Errorf("CreateGrant without token: err = %v, want ErrInvalid", err)
		}
	})
}

func TestGrantCiphertextHidesToken(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		g := newTestGrant(t, db, 1, time.Now().Add(time.Hour))
		var sealed []byte
		if err := db.queryRow(t.Context(), `SELECT token FROM grants WHERE id = ?`, g.ID).Scan(&sealed); err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{g.Token.AccessToken, g.Token.RefreshToken} {
			if bytes.Contains(sealed, []byte(secret)) {
				t.Errorf("ciphertext contains %q", secret)
			}
		}
		// Two grants with equal tokens still get different ciphertexts
		// (random nonce).
		g2 := newTestGrant(t, db, 1, g.Token.Expiry)
		var sealed2 []byte
		if err := db.queryRow(t.Context(), `SELECT token FROM grants WHERE id = ?`, g2.ID).Scan(&sealed2); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(sealed[1:13], sealed2[1:13]) {
			t.Error("two ciphertexts share a nonce")
		}
	})
}

func TestGrantTokenNotInSQLiteFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := mustOpen(t, "sqlite:"+filepath.Join(dir, "x.db"), Options{})
	g := newTestGrant(t, db, 1, time.Now().Add(-time.Minute))
	if tok, err := db.RefreshGrant(t.Context(), g.ID, (&countingRefresh{}).refresh); err != nil || tok.AccessToken != "new-access-1" {
		t.Fatalf("RefreshGrant = %v, %v", tok, err)
	}
	// Both pairs went through the database; look in every file SQLite
	// wrote (main file and WAL).
	files, _ := filepath.Glob(filepath.Join(dir, "x.db*"))
	if len(files) == 0 {
		t.Fatal("no database files found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"access-secret", "refresh-secret", "new-access", "new-refresh"} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s contains %q in clear", filepath.Base(f), secret)
			}
		}
	}
}

func TestGrantWrongKeyCannotDecrypt(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		g := newTestGrant(t, db, 1, time.Time{})
		other := mustOpen(t, dsn, Options{SecretKey: bytes.Repeat([]byte("x"), 32)})
		_, err := other.FindGrantByID(t.Context(), g.ID)
		if !errors.Is(err, ErrDecrypt) {
			t.Fatalf("FindGrantByID under another key: err = %v, want ErrDecrypt", err)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("error %q mentions token material", err)
		}
	})
}

func TestGrantCiphertextBoundToRow(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		tests := []struct {
			name   string
			adminA int64
			adminB int64
		}{
			{name: "different admins", adminA: 1, adminB: 2},
			{name: "same admin, different grants", adminA: 3, adminB: 3},
		}
		for _, tc := range tests {
			a := newTestGrant(t, db, tc.adminA, time.Time{})
			b := newTestGrant(t, db, tc.adminB, time.Time{})
			var ca, cb []byte
			db.queryRow(t.Context(), `SELECT token FROM grants WHERE id = ?`, a.ID).Scan(&ca)
			db.queryRow(t.Context(), `SELECT token FROM grants WHERE id = ?`, b.ID).Scan(&cb)
			db.exec(t.Context(), `UPDATE grants SET token = ? WHERE id = ?`, cb, a.ID)
			db.exec(t.Context(), `UPDATE grants SET token = ? WHERE id = ?`, ca, b.ID)
			for _, id := range []int64{a.ID, b.ID} {
				if _, err := db.FindGrantByID(t.Context(), id); !errors.Is(err, ErrDecrypt) {
					t.Errorf("%s: grant %d with the other row's ciphertext: err = %v, want ErrDecrypt", tc.name, id, err)
				}
			}
		}
		// Changing the admin id of a row breaks it too.
		c := newTestGrant(t, db, 5, time.Time{})
		db.exec(t.Context(), `UPDATE grants SET admin_id = 6 WHERE id = ?`, c.ID)
		if _, err := db.FindGrantByID(t.Context(), c.ID); !errors.Is(err, ErrDecrypt) {
			t.Errorf("grant moved to another admin: err = %v, want ErrDecrypt", err)
		}
	})
}

func TestGrantPrintingHidesToken(t *testing.T) {
	t.Parallel()
	g := Grant{ID: 1, AdminID: 2, Token: &oauth2.Token{AccessToken: "access-secret", RefreshToken: "refresh-secret"}}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "grant", g, "ptr", &g)
	for _, out := range []string{fmt.Sprint(g), fmt.Sprintf("%+v", g), fmt.Sprintf("%v", &g), buf.String()} {
		if strings.Contains(out, "secret") {
			t.Errorf("printed grant %q contains a token", out)
		}
	}
}

func TestRefreshGrantOnceAcrossGoroutines(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		g := newTestGrant(t, db, 1, time.Now().Add(-time.Minute))
		rf := &countingRefresh{delay: 50 * time.Millisecond}
		toks := make([]*oauth2.Token, 20)
		errs := make([]error, 20)
		var wg sync.WaitGroup
		for i := range toks {
			wg.Go(func() { toks[i], errs[i] = db.RefreshGrant(t.Context(), g.ID, rf.refresh) })
		}
		wg.Wait()
		if n := rf.calls.Load(); n != 1 {
			t.Errorf("refresh called %d times, want 1", n)
		}
		for i := range toks {
			if errs[i] != nil || toks[i] == nil || toks[i].AccessToken != "new-access-1" {
				t.Fatalf("caller %d got %v, %v; want new-access-1", i, toks[i], errs[i])
			}
		}
		got := mustFindGrant(t, db, g.ID)
		if got.Version != 2 || got.Token.AccessToken != "new-access-1" || got.Token.RefreshToken != "new-refresh-1" {
			t.Errorf("stored grant version %d token %s/%s, want 2 new-access-1/new-refresh-1",
				got.Version, got.Token.AccessToken, got.Token.RefreshToken)
		}
		if n := mustCount(t, db, `SELECT COUNT(*) FROM grants WHERE lease_until IS NOT NULL OR lease_holder IS NOT NULL`); n != 0 {
			t.Error("lease not cleared after refresh")
		}
	})
}

func TestRefreshGrantOnceAcrossProcesses(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		// Two handles on one database stand for two replicas: their
		// singleflight groups are separate, only the lease is shared.
		db1 := mustOpen(t, dsn, Options{})
		db2 := mustOpen(t, dsn, Options{})
		g := newTestGrant(t, db1, 1, time.Now().Add(-time.Minute))
		rf := &countingRefresh{delay: 100 * time.Millisecond}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []string
		for _, db := range []*DB{db1, db2} {
			for range 10 {
				wg.Go(func() {
					tok, err := db.RefreshGrant(t.Context(), g.ID, rf.refresh)
					if err != nil || tok.AccessToken != "new-access-1" {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%v %v", tok, err))
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		if n := rf.calls.Load(); n != 1 {
			t.Errorf("refresh called %d times across two handles, want 1", n)
		}
		if len(failures) > 0 {
			t.Errorf("%d callers did not get new-access-1: %v", len(failures), failures)
		}
		if got := mustFindGrant(t, db2, g.ID); got.Version != 2 {
			t.Errorf("version = %d, want 2", got.Version)
		}
	})
}

func TestRefreshGrantTakesOverStaleLease(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		g := newTestGrant(t, db, 1, clock.Now().Add(-time.Minute))
		// A holder that died mid-refresh left its lease behind.
		if _, err := db.exec(t.Context(), `UPDATE grants SET lease_until = ?, lease_holder = 'dead' WHERE id = ?`,
			toDBTime(clock.Now().Add(leaseTTL)), g.ID); err != nil {
			t.Fatal(err)
		}
		rf := &countingRefresh{now: clock.Now}
		type result struct {
			tok *oauth2.Token
			err error
		}
		done := make(chan result, 1)
		go func() {
			tok, err := db.RefreshGrant(t.Context(), g.ID, rf.refresh)
			done <- result{tok, err}
		}()
		// While the lease is live nobody may refresh.
		select {
		case r := <-done:
			t.Fatalf("RefreshGrant returned %v, %v while another holder's lease was live", r.tok, r.err)
		case <-time.After(300 * time.Millisecond):
		}
		if n := rf.calls.Load(); n != 0 {
			t.Fatalf("refresh called %d times during a live lease", n)
		}
		clock.Add(leaseTTL + time.Second)
		select {
		case r := <-done:
			if r.err != nil || r.tok.AccessToken != "new-access-1" {
				t.Fatalf("after the lease lapsed: %v, %v; want new-access-1", r.tok, r.err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("RefreshGrant did not take over the lapsed lease")
		}
		if n := rf.calls.Load(); n != 1 {
			t.Errorf("refresh called %d times, want 1", n)
		}
		if got := mustFindGrant(t, db, g.ID); got.Version != 2 || got.Token.AccessToken != "new-access-1" {
			t.Errorf("stored grant version %d token %s, want 2 new-access-1", got.Version, got.Token.AccessToken)
		}
	})
}

var errTestInvalidGrant = errors.New("oauth2: invalid_grant")

func TestRefreshGrantErrorReleasesLease(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		g := newTestGrant(t, db, 1, time.Now().Add(-time.Minute))
		failing := func(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
			return nil, fmt.Errorf("zendesk: refresh: %w", errTestInvalidGrant)
		}
		_, err := db.RefreshGrant(t.Context(), g.ID, failing)
		if !errors.Is(err, errTestInvalidGrant) {
			t.Fatalf("RefreshGrant error = %v, want errors.Is invalid_grant", err)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("error %q carries token material", err)
		}
		if n := mustCount(t, db, `SELECT COUNT(*) FROM grants WHERE lease_until IS NOT NULL`); n != 0 {
			t.Fatal("lease still held after a failed refresh")
		}
		if got := mustFindGrant(t, db, g.ID); got.Version != 1 || got.Token.AccessToken != g.Token.AccessToken {
			t.Errorf("failed refresh changed the grant: version %d", got.Version)
		}
		// The next attempt claims the lease at once (a held lease would
		// make it wait leaseTTL, far beyond this deadline).
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		rf := &countingRefresh{}
		tok, err := db.RefreshGrant(ctx, g.ID, rf.refresh)
		if err != nil || tok.AccessToken != "new-access-1" {
			t.Fatalf("refresh after a failure: %v, %v", tok, err)
		}
	})
}

func TestRefreshGrantSurvivesCallerCancel(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		g := newTestGrant(t, db, 1, time.Now().Add(-time.Minute))
		started := make(chan struct{})
		release := make(chan struct{})
		refreshCtxErr := make(chan error, 1)
		refresh := func(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
			close(started)
			<-release
			// Zendesk has rotated the pair by now.
			refreshCtxErr <- ctx.Err()
			return &oauth2.Token{AccessToken: "rotated-access", RefreshToken: "rotated-refresh",
				Expiry: time.Now().Add(time.Hour)}, nil
		}
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := db.RefreshGrant(ctx, g.ID, refresh)
			errc <- err
		}()
		<-started
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled caller: err = %v, want context.Canceled", err)
		}
		close(release)
		if err := <-refreshCtxErr; err != nil {
			t.Errorf("refresh saw its context end (%v) when the caller cancelled", err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			got := mustFindGrant(t, db, g.ID)
			if got.Version == 2 {
				if got.Token.AccessToken != "rotated-access" || got.Token.RefreshToken != "rotated-refresh" {
					t.Errorf("saved pair %s/%s, want rotated-access/rotated-refresh", got.Token.AccessToken, got.Token.RefreshToken)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the rotated pair was never saved after the caller cancelled")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestRefreshGrantFreshTokenSkipsRefresh(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		tests := []struct {
			name   string
			expiry time.Time
		}{
			{"valid for an hour", time.Now().Add(time.Hour)},
			{"no expiry", time.Time{}},
		}
		for _, tc := range tests {
			g := newTestGrant(t, db, 1, tc.expiry)
			rf := &countingRefresh{}
			tok, err := db.RefreshGrant(t.Context(), g.ID, rf.refresh)
			if err != nil || tok.AccessToken != g.Token.AccessToken || rf.calls.Load() != 0 {
				t.Errorf("%s: RefreshGrant = %v, %v after %d refresh calls; want stored token, 0 calls",
					tc.name, tok, err, rf.calls.Load())
			}
		}
	})
}

func TestRefreshGrantKeepsRefreshTokenWhenNoneReturned(t *testing.T) {
	t.Parallel()
	db := mustOpen(t, newSQLiteDSN(t), Options{})
	g := newTestGrant(t, db, 1, time.Now().Add(-time.Minute))
	refresh := func(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
		return &oauth2.Token{AccessToken: "only-access", Expiry: time.Now().Add(time.Hour)}, nil
	}
	if _, err := db.RefreshGrant(t.Context(), g.ID, refresh); err != nil {
		t.Fatal(err)
	}
	if got := mustFindGrant(t, db, g.ID); got.Token.RefreshToken != g.Token.RefreshToken {
		t.Errorf("refresh token = %q, want the old %q kept", got.Token.RefreshToken, g.Token.RefreshToken)
	}
}

func TestRefreshGrantNotFound(t *testing.T) {
	t.Parallel()
	db := mustOpen(t, newSQLiteDSN(t), Options{})
	if _, err := db.RefreshGrant(t.Context(), 12345, (&countingRefresh{}).refresh); !errors.Is(err, ErrNotFound) {
		t.Errorf("RefreshGrant(missing): err = %v, want ErrNotFound", err)
	}
}

func TestTokenSource(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})

		t.Run("cached while valid", func(t *testing.T) {
			g := newTestGrant(t, db, 1, clock.Now().Add(time.Hour))
			rf := &countingRefresh{now: clock.Now}
			ts := db.TokenSource(g.ID, rf.refresh)
			if tok, err := ts.Token(); err != nil || tok.AccessToken != g.Token.AccessToken {
				t.Fatalf("Token = %v, %v", tok, err)
			}
			// The grant is gone, yet the cached token is still served: no
			// database access while it is valid.
			if err := db.DeleteGrant(t.Context(), g.ID); err != nil {
				t.Fatal(err)
			}
			if tok, err := ts.Token(); err != nil || tok.AccessToken != g.Token.AccessToken {
				t.Fatalf("second Token = %v, %v; want the cached token", tok, err)
			}
			// Within a minute of expiry it goes back to the database.
			clock.Add(59*time.Minute + time.Second)
			if _, err := ts.Token(); !errors.Is(err, ErrNotFound) {
				t.Errorf("Token near expiry of a deleted grant: err = %v, want ErrNotFound", err)
			}
			if n := rf.calls.Load(); n != 0 {
				t.Errorf("refresh called %d times", n)
			}
		})

		t.Run("refreshes when expired", func(t *testing.T) {
			g := newTestGrant(t, db, 2, clock.Now().Add(-time.Second))
			rf := &countingRefresh{now: clock.Now}
			ts := db.TokenSource(g.ID, rf.refresh)
			for range 3 {
				tok, err := ts.Token()
				if err != nil || tok.AccessToken != "new-access-1" {
					t.Fatalf("Token = %v, %v; want new-access-1", tok, err)
				}
			}
			if n := rf.calls.Load(); n != 1 {
				t.Errorf("refresh called %d times, want 1", n)
			}
		})

		t.Run("no expiry never refreshes", func(t *testing.T) {
			g := newTestGrant(t, db, 3, time.Time{})
			rf := &countingRefresh{now: clock.Now}
			ts := db.TokenSource(g.ID, rf.refresh)
			clock.Add(1000 * time.Hour)
			if tok, err := ts.Token(); err != nil || tok.AccessToken != g.Token.AccessToken {
				t.Fatalf("Token = %v, %v", tok, err)
			}
			if n := rf.calls.Load(); n != 0 {
				t.Errorf("refresh called %d times for a token without expiry", n)
			}
		})
	})
}

func TestCloseWaitsForRefreshToSave(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		g := newTestGrant(t, db, 1, time.Now().Add(-time.Minute))
		started := make(chan struct{})
		release := make(chan struct{})
		refresh := func(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
			close(started)
			<-release
			return &oauth2.Token{AccessToken: "rotated-access", RefreshToken: "rotated-refresh",
				Expiry: time.Now().Add(time.Hour)}, nil
		}
		ctx, cancel := context.WithCancel(t.Context())
		go db.RefreshGrant(ctx, g.ID, refresh)
		<-started
		cancel() // the request that triggered the refresh is gone
		closed := make(chan error, 1)
		go func() { closed <- db.Close() }()
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) while a refresh was talking to Zendesk", err)
		case <-time.After(200 * time.Millisecond):
		}
		close(release)
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		reopened := mustOpen(t, dsn, Options{})
		if got := mustFindGrant(t, reopened, g.ID); got.Version != 2 || got.Token.RefreshToken != "rotated-refresh" {
			t.Errorf("after Close: version %d refresh %s, want the rotated pair saved", got.Version, got.Token.RefreshToken)
		}
	})
}

func TestCloseStopsWaitingRefresh(t *testing.T) {
	t.Parallel()
	db := mustOpen(t, newSQLiteDSN(t), Options{})
	g := newTestGrant(t, db, 1, time.Now().Add(-time.Minute))
	if _, err := db.exec(t.Context(), `UPDATE grants SET lease_until = ?, lease_holder = 'other' WHERE id = ?`,
		toDBTime(time.Now().Add(time.Hour)), g.ID); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := db.RefreshGrant(t.Context(), g.ID, (&countingRefresh{}).refresh)
		errc <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the flight start polling (if it has not, Close refuses it)
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close waited for a refresh that was only polling another holder's lease")
	}
	if err := <-errc; err == nil {
		t.Error("RefreshGrant succeeded although the database closed while it waited")
	}
}
