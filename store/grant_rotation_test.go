package store

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/oauthflow"
	"github.com/onbehalf/onbehalf/zendesk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// These tests run the grant's token source under a real Zendesk client
// against the sandbox, whose refresh grant rotates the pair (§1.3): the old
// access token is refused the moment a refresh succeeds.

const (
	rotationClientID = "onbehalf-rotation-test"
	rotationScope    = "read write impersonate"
	rateEndpoint     = "POST /api/v2/tickets/{id}/satisfaction_rating"
)

// rotationEnv is a sandbox on clock, an OAuth flow for it, and a grant of
// its admin stored in db.
type rotationEnv struct {
	srv   *sandbox.Server
	flow  *oauthflow.Flow
	grant *Grant
}

func newRotationEnv(t *testing.T, db *DB, clock *testClock, sw sandbox.Switches) *rotationEnv {
	t.Helper()
	sw.ExpiringTokens = true
	srv, err := sandbox.Start(sandbox.Options{
		Now:       clock.Now,
		Switches:  sw,
		RateLimit: 1_000_000, RateBurst: 100_000,
		Clients: []sandbox.Client{{Identifier: rotationClientID, Public: true,
			RedirectURIs: []string{"http://127.0.0.1:1/oauth/callback"}}},
	})
	if err != nil {
		t.Fatalf("sandbox.Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	flow, err := oauthflow.New(oauthflow.Config{BaseURL: srv.URL, ClientID: rotationClientID,
		RedirectURL: "http://127.0.0.1:1/oauth/callback", Now: clock.Now})
	if err != nil {
		t.Fatalf("oauthflow.New: %v", err)
	}
	issued, err := srv.IssueToken(sandbox.DemoAdminEmail, rotationScope)
	if err != nil {
		t.Fatalf("IssueToken: %v", err)
	}
	g := &Grant{AdminID: sandbox.DemoAdminID, AdminName: "Ada Admin", AdminEmail: sandbox.DemoAdminEmail,
		Token: &oauth2.Token{AccessToken: issued.AccessToken, RefreshToken: issued.RefreshToken, TokenType: "Bearer",
			Expiry: issued.ExpiresAt}}
	if err := db.CreateGrant(t.Context(), g); err != nil {
		t.Fatalf("CreateGrant: %v", err)
	}
	return &rotationEnv{srv: srv, flow: flow, grant: g}
}

// refresh is the RefreshFunc the app uses, on the sandbox's token endpoint.
func (e *rotationEnv) refresh(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
	return e.flow.Refresh(ctx, old.RefreshToken)
}

// client is a Zendesk client on db's token source for the grant.
func (e *rotationEnv) client(t *testing.T, db *DB, opts ...zendesk.Option) *zendesk.Client {
	t.Helper()
	zc, err := zendesk.New(e.srv.URL, db.TokenSource(e.grant.ID, e.refresh), opts...)
	if err != nil {
		t.Fatalf("zendesk.New: %v", err)
	}
	return zc
}

// holdRatings makes the sandbox hold satisfaction ratings as they arrive,
// before their token is checked, until the gate is released.
func (e *rotationEnv) holdRatings(t *testing.T) *sandbox.Gate {
	t.Helper()
	gate := sandbox.NewGate(func(r *http.Request) bool { return r.Method == http.MethodPost })
	e.srv.SetHooks(sandbox.Hooks{BeforeCall: gate.BeforeCall})
	t.Cleanup(gate.Release)
	return gate
}

// rateAsBea sends Bea's rating of TicketBeaSolved in the background.
func rateAsBea(t *testing.T, zc *zendesk.Client) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := zc.As(sandbox.DemoBeaEmail).RateTicket(context.WithoutCancel(t.Context()), sandbox.TicketBeaSolved,
			zendesk.RatingInput{Score: zendesk.ScoreGood, Comment: "Thanks"})
		errc <- err
	}()
	return errc
}

// checkOneRating asserts that err is nil and that the sandbox recorded
// exactly one rating, Bea's, and made exactly wantRefreshes refreshes.
func (e *rotationEnv) checkOneRating(t *testing.T, err error, wantRefreshes int) {
	t.Helper()
	if errors.Is(err, zendesk.ErrUnknownUser) {
		t.Fatalf("rating failed as an unknown user although only its token was replaced: %v", err)
	}
	if err != nil {
		t.Fatalf("rating: %v; want it sent again with the new token", err)
	}
	writes := e.srv.Writes()
	if len(writes) != 1 || writes[0].ActorID != sandbox.DemoBeaID || writes[0].Status != http.StatusOK {
		t.Errorf("writes = %+v, want exactly one rating, by Bea, answered 200", writes)
	}
	st := e.srv.Stats()
	if st.Refreshes != wantRefreshes {
		t.Errorf("refreshes = %d, want %d", st.Refreshes, wantRefreshes)
	}
	if n := st.Calls["GET /api/v2/users/me"]; n != 0 {
		t.Errorf("%d users/me probes: the replaced token was taken for a dead one or an unknown user", n)
	}
}

func TestRefreshByAnotherReplicaDuringWrite(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		other := mustOpen(t, dsn, Options{Now: clock.Now}) // another replica
		env := newRotationEnv(t, db, clock, sandbox.Switches{})
		zc := env.client(t, db)
		// The client's token is cached; make a call so it is.
		if _, err := zc.Me(t.Context()); err != nil {
			t.Fatal(err)
		}
		env.srv.ResetStats()
		gate := env.holdRatings(t)
		errc := rateAsBea(t, zc)
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		if err := gate.WaitHeld(ctx, 1); err != nil {
			t.Fatalf("the rating never reached the sandbox: %v", err)
		}
		// While the rating is on its way, the token comes within its
		// refresh margin and the other replica refreshes it; Zendesk
		// rotates the pair.
		clock.Add(29*time.Minute + 30*time.Second)
		if _, err := other.RefreshGrant(ctx, env.grant.ID, env.refresh); err != nil {
			t.Fatalf("refresh by the other replica: %v", err)
		}
		gate.Release()
		env.checkOneRating(t, <-errc, 1)
		if n := env.srv.Stats().Calls[rateEndpoint]; n != 2 {
			t.Errorf("rating sent %d times, want 2 (refused with the old token, then sent with the new)", n)
		}
	})
}

// statusSignal passes requests to base and reports every answer with
// status on ch.
type statusSignal struct {
	base   http.RoundTripper
	status int
	ch     chan struct{}
}

func (s *statusSignal) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.base.RoundTrip(req)
	if err == nil && resp.StatusCode == s.status {
		select {
		case s.ch <- struct{}{}:
		default:
		}
	}
	return resp, err
}

func TestRefreshInFlightDuringWrite(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		other := mustOpen(t, dsn, Options{Now: clock.Now})
		env := newRotationEnv(t, db, clock, sandbox.Switches{})
		refused := &statusSignal{base: zendesk.NewTransport(0), status: http.StatusUnauthorized, ch: make(chan struct{}, 1)}
		zc := env.client(t, db, zendesk.WithHTTPClient(&http.Client{Transport: refused}))
		if _, err := zc.Me(t.Context()); err != nil {
			t.Fatal(err)
		}
		env.srv.ResetStats()
		gate := env.holdRatings(t)
		errc := rateAsBea(t, zc)
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := gate.WaitHeld(ctx, 1); err != nil {
			t.Fatalf("the rating never reached the sandbox: %v", err)
		}
		// The other replica refreshes: Zendesk rotates the pair at once,
		// but the new pair is saved only when unblock is closed. Until
		// then the other replica holds the refresh lease.
		clock.Add(29*time.Minute + 30*time.Second)
		rotated, unblock := make(chan struct{}), make(chan struct{})
		slowRefresh := func(ctx context.Context, old *oauth2.Token) (*oauth2.Token, error) {
			tok, err := env.refresh(ctx, old)
			close(rotated)
			<-unblock
			return tok, err
		}
		refreshed := make(chan error, 1)
		go func() {
			_, err := other.RefreshGrant(context.WithoutCancel(ctx), env.grant.ID, slowRefresh)
			refreshed <- err
		}()
		select {
		case <-rotated:
		case <-ctx.Done():
			t.Fatal("the other replica never refreshed")
		}
		gate.Release()
		select {
		case <-refused.ch:
		case <-ctx.Done():
			t.Fatal("the rating was never refused with the old token")
		}
		// The client must wait for the refresh in flight, neither failing
		// nor refreshing on its own.
		select {
		case err := <-errc:
			close(unblock)
			t.Fatalf("rating ended (%v) while the refresh that replaced its token was still saving", err)
		case <-time.After(300 * time.Millisecond):
		}
		close(unblock)
		if err := <-refreshed; err != nil {
			t.Fatalf("refresh by the other replica: %v", err)
		}
		env.checkOneRating(t, <-errc, 1)
	})
}

func TestRefusalsStillClassifiedWithStoredGrant(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})

		t.Run("unknown user", func(t *testing.T) {
			env := newRotationEnv(t, db, clock, sandbox.Switches{})
			zc := env.client(t, db)
			_, err := zc.As("ghost@example.com").RateTicket(t.Context(), sandbox.TicketBeaSolved, zendesk.RatingInput{Score: zendesk.ScoreGood})
			if !errors.Is(err, zendesk.ErrUnknownUser) {
				t.Errorf("err = %v, want ErrUnknownUser", err)
			}
		})
		t.Run("dead token", func(t *testing.T) {
			env := newRotationEnv(t, db, clock, sandbox.Switches{})
			zc := env.client(t, db)
			if err := env.flow.Revoke(t.Context(), env.grant.Token.AccessToken); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			_, err := zc.As(sandbox.DemoBeaEmail).RateTicket(t.Context(), sandbox.TicketBeaSolved, zendesk.RatingInput{Score: zendesk.ScoreGood})
			if !errors.Is(err, zendesk.ErrTokenInvalid) {
				t.Errorf("err = %v, want ErrTokenInvalid", err)
			}
			if n := env.srv.Stats().Calls[rateEndpoint]; n != 1 {
				t.Errorf("rating sent %d times, want once", n)
			}
			for _, w := range env.srv.Writes() {
				if w.Endpoint == rateEndpoint {
					t.Errorf("rating recorded with a revoked token: %+v", w)
				}
			}
		})
	})
}

func TestRefreshMargin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lifetime time.Duration
		want     time.Duration
	}{
		{0, time.Minute}, // unknown
		{40 * time.Second, 10 * time.Second},
		{2 * time.Minute, 30 * time.Second},
		{4 * time.Minute, time.Minute},
		{30 * time.Minute, time.Minute},
		{48 * time.Hour, time.Minute},
	}
	for _, tt := range tests {
		tok := &oauth2.Token{AccessToken: "a", ExpiresIn: lifetimeSeconds(tt.lifetime)}
		if got := refreshMargin(tok); got != tt.want {
			t.Errorf("refreshMargin(lifetime %v) = %v, want %v", tt.lifetime, got, tt.want)
		}
	}
}

// callsOverTime makes n reads through zc, moving clock by step before each,
// and fails the test if one fails.
func callsOverTime(t *testing.T, zc *zendesk.Client, clock *testClock, n int, step time.Duration) {
	t.Helper()
	for i := range n {
		clock.Add(step)
		if _, err := zc.As(sandbox.DemoBeaEmail).ShowRequest(t.Context(), sandbox.TicketBeaOpen); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

func TestShortLivedTokenRefreshedOncePerLifetime(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		env := newRotationEnv(t, db, clock, sandbox.Switches{AccessTokenTTL: 40 * time.Second})
		zc := env.client(t, db)
		// 20 calls over one 40 s lifetime: the margin is 10 s, so the
		// token is refreshed once, 30 s in.
		callsOverTime(t, zc, clock, 20, 2*time.Second)
		if n := env.srv.Stats().Refreshes; n != 1 {
			t.Errorf("%d refreshes for 20 calls over one 40 s lifetime, want 1", n)
		}
		// And then every 30 s (three quarters of each new token's
		// lifetime): at 60, 90 and 120 s.
		callsOverTime(t, zc, clock, 40, 2*time.Second)
		if n := env.srv.Stats().Refreshes; n != 4 {
			t.Errorf("%d refreshes for 60 calls over 120 s of 40 s tokens, want 4", n)
		}
	})
}

func TestLongLivedTokenMarginStaysAMinute(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		env := newRotationEnv(t, db, clock, sandbox.Switches{}) // 30 min tokens
		zc := env.client(t, db)
		callsOverTime(t, zc, clock, 1, 30*time.Minute-61*time.Second)
		if n := env.srv.Stats().Refreshes; n != 0 {
			t.Errorf("refreshed %d times 61 s before expiry, want 0", n)
		}
		callsOverTime(t, zc, clock, 1, 2*time.Second)
		if n := env.srv.Stats().Refreshes; n != 1 {
			t.Errorf("refreshed %d times 59 s before expiry, want 1", n)
		}
	})
}

func TestLegacyStoredTokenLifetimeEstimated(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		g := newTestGrant(t, db, 1, clock.Now().Add(40*time.Second))
		// Rewrite the token as it was saved before lifetimes were kept.
		sealed, err := db.seal(g.ID, g.AdminID, storedToken{AccessToken: g.Token.AccessToken,
			RefreshToken: g.Token.RefreshToken, TokenType: "Bearer", Expiry: g.Token.Expiry.UTC()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.exec(t.Context(), `UPDATE grants SET token = ? WHERE id = ?`, sealed, g.ID); err != nil {
			t.Fatal(err)
		}
		if got := mustFindGrant(t, db, g.ID).Token.ExpiresIn; got != 40 {
			t.Errorf("estimated lifetime = %d s, want 40 (expiry minus the row's last update)", got)
		}
		rf := &countingRefresh{now: clock.Now}
		ts := db.TokenSource(g.ID, rf.refresh)
		clock.Add(25 * time.Second)
		if tok, err := ts.Token(); err != nil || tok.AccessToken != g.Token.AccessToken || rf.calls.Load() != 0 {
			t.Errorf("25 s into a 40 s token: %v, %v after %d refreshes; want the stored token, no refresh", tok, err, rf.calls.Load())
		}
		clock.Add(6 * time.Second)
		if tok, err := ts.Token(); err != nil || tok.AccessToken != "new-access-1" {
			t.Errorf("31 s into a 40 s token: %v, %v; want it refreshed", tok, err)
		}
	})
}

func TestReloadToken(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		other := mustOpen(t, dsn, Options{Now: clock.Now})
		g := newTestGrant(t, db, 1, clock.Now().Add(time.Hour))
		rf := &countingRefresh{now: clock.Now}
		ts, ok := db.TokenSource(g.ID, rf.refresh).(zendesk.TokenReloader)
		if !ok {
			t.Fatal("the grant's token source does not implement zendesk.TokenReloader")
		}
		stale := g.Token

		tok, err := ts.ReloadToken(t.Context(), stale)
		if err != nil || tok.AccessToken != stale.AccessToken {
			t.Fatalf("ReloadToken with nothing newer = %v, %v; want the same token", tok, err)
		}
		// Another replica refreshes (its clock says the token is due).
		clock.Add(59*time.Minute + 30*time.Second)
		if _, err := other.RefreshGrant(t.Context(), g.ID, rf.refresh); err != nil {
			t.Fatal(err)
		}
		clock.Add(-59*time.Minute - 30*time.Second)
		tok, err = ts.ReloadToken(t.Context(), stale)
		if err != nil || tok.AccessToken != "new-access-1" {
			t.Fatalf("ReloadToken after another replica's refresh = %v, %v; want new-access-1", tok, err)
		}
		// The reloaded token is cached: Token serves it.
		if tok, err := ts.(oauth2.TokenSource).Token(); err != nil || tok.AccessToken != "new-access-1" {
			t.Errorf("Token after ReloadToken = %v, %v; want new-access-1", tok, err)
		}
		// A lease held by a holder that never saves: ReloadToken waits,
		// within its context, and does not refresh by itself.
		if _, err := db.exec(t.Context(), `UPDATE grants SET lease_until = ?, lease_holder = 'other' WHERE id = ?`,
			toDBTime(clock.Now().Add(leaseTTL)), g.ID); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		if tok, err := ts.ReloadToken(ctx, &oauth2.Token{AccessToken: "new-access-1"}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ReloadToken during a live lease = %v, %v; want it to wait until its context ends", tok, err)
		}
		// Once the lease lapses, nothing replaced the token.
		clock.Add(leaseTTL + time.Second)
		if tok, err := ts.ReloadToken(t.Context(), &oauth2.Token{AccessToken: "new-access-1"}); err != nil || tok.AccessToken != "new-access-1" {
			t.Errorf("ReloadToken after the lease lapsed = %v, %v; want the same token", tok, err)
		}
		if n := rf.calls.Load(); n != 1 {
			t.Errorf("refresh called %d times, want 1 (the other replica's)", n)
		}
	})
}
