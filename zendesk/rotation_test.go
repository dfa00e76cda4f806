package zendesk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/zendesk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

const (
	rotationClientID = "rotation-test"
	rateEndpoint     = "POST /api/v2/tickets/{id}/satisfaction_rating"
)

// newRotationSandbox starts a sandbox whose tokens expire and can be
// refreshed by the public client rotationClientID.
func newRotationSandbox(t *testing.T) *sandbox.Server {
	t.Helper()
	return newTestSandbox(t, sandbox.Options{
		Clients:  []sandbox.Client{{Identifier: rotationClientID, Public: true}},
		Switches: sandbox.Switches{ExpiringTokens: true},
	})
}

// sharedTokens stands for a token store shared by replicas: one current
// token, which rotate replaces through the sandbox's refresh grant, so the
// old access token dies at once (§1.3), as when another replica refreshes.
type sharedTokens struct {
	base string

	mu      sync.Mutex
	cur     *oauth2.Token
	reloads int
}

func newSharedTokens(t *testing.T, srv *sandbox.Server, email string) *sharedTokens {
	t.Helper()
	tok := mustToken(t, srv, email, fullScope)
	return &sharedTokens{base: srv.URL, cur: &oauth2.Token{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken}}
}

func (s *sharedTokens) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *s.cur
	return &c, nil
}

// ReloadToken implements zendesk.TokenReloader.
func (s *sharedTokens) ReloadToken(ctx context.Context, stale *oauth2.Token) (*oauth2.Token, error) {
	s.mu.Lock()
	s.reloads++
	s.mu.Unlock()
	return s.Token()
}

func (s *sharedTokens) reloadCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloads
}

// rotate refreshes the current pair at the sandbox.
func (s *sharedTokens) rotate(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	body, _ := json.Marshal(map[string]string{"grant_type": "refresh_token", "refresh_token": s.cur.RefreshToken, "client_id": rotationClientID})
	resp, err := http.Post(s.base+"/oauth/tokens", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		t.Fatalf("refresh: HTTP %d, %+v, %v", resp.StatusCode, out, err)
	}
	s.cur = &oauth2.Token{AccessToken: out.AccessToken, RefreshToken: out.RefreshToken}
}

// tokenOnly hides every method of a token source but Token.
type tokenOnly struct{ ts oauth2.TokenSource }

func (s tokenOnly) Token() (*oauth2.Token, error) { return s.ts.Token() }

// holdRatings makes the sandbox hold every satisfaction rating as it
// arrives, before authentication, until the returned gate is released.
func holdRatings(t *testing.T, srv *sandbox.Server) *sandbox.Gate {
	t.Helper()
	gate := sandbox.NewGate(func(r *http.Request) bool { return r.Method == http.MethodPost })
	srv.SetHooks(sandbox.Hooks{BeforeCall: gate.BeforeCall})
	t.Cleanup(gate.Release)
	return gate
}

// rateWhileRotating sends Bea's rating of TicketBeaSolved through c, rotates
// the token while the sandbox holds the rating, and returns the call's
// error.
func rateWhileRotating(t *testing.T, srv *sandbox.Server, tokens *sharedTokens, c *zendesk.Client) error {
	t.Helper()
	gate := holdRatings(t, srv)
	errc := make(chan error, 1)
	go func() {
		_, err := c.As(sandbox.DemoBeaEmail).RateTicket(context.WithoutCancel(t.Context()), sandbox.TicketBeaSolved,
			zendesk.RatingInput{Score: zendesk.ScoreGood, Comment: "Thanks"})
		errc <- err
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := gate.WaitHeld(ctx, 1); err != nil {
		t.Fatalf("the rating never reached the sandbox: %v", err)
	}
	tokens.rotate(t)
	gate.Release()
	return <-errc
}

func TestTokenReplacedMidFlightIsSentAgain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		source      func(*sharedTokens) oauth2.TokenSource
		wantReloads int // ReloadToken calls; a source without it is asked Token
	}{
		{"source reloads", func(s *sharedTokens) oauth2.TokenSource { return s }, 1},
		{"source only has Token", func(s *sharedTokens) oauth2.TokenSource { return tokenOnly{s} }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newRotationSandbox(t)
			tokens := newSharedTokens(t, srv, sandbox.DemoAdminEmail)
			c := mustNew(t, srv.URL, tt.source(tokens))

			if err := rateWhileRotating(t, srv, tokens, c); err != nil {
				t.Fatalf("rating sent with a token replaced in flight: %v; want it sent again with the new token", err)
			}
			if n := tokens.reloadCount(); n != tt.wantReloads {
				t.Errorf("ReloadToken called %d times, want %d", n, tt.wantReloads)
			}
			writes := srv.Writes()
			if len(writes) != 1 || writes[0].ActorID != sandbox.DemoBeaID || writes[0].Status != http.StatusOK ||
				writes[0].TicketID != sandbox.TicketBeaSolved {
				t.Errorf("writes = %+v, want one rating by Bea answered 200", writes)
			}
			st := srv.Stats()
			if n := st.Calls[rateEndpoint]; n != 2 {
				t.Errorf("rating calls = %d, want 2 (refused, then sent again)", n)
			}
			if n := st.Calls["GET /api/v2/users/me"]; n != 0 {
				t.Errorf("users/me probes = %d, want none: the token was replaced, not dead", n)
			}
			tk, ok := srv.TicketByID(sandbox.TicketBeaSolved)
			if !ok || tk.Rating == nil || tk.Rating.Score != zendesk.ScoreGood {
				t.Errorf("ticket rating = %+v, want good", tk.Rating)
			}
		})
	}
}

// staleOnReload is a token source whose Token hands out toks in turn (the
// last one forever) and whose ReloadToken says nothing replaced the token.
type staleOnReload struct {
	mu   sync.Mutex
	toks []string
}

func (s *staleOnReload) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tok := s.toks[0]
	if len(s.toks) > 1 {
		s.toks = s.toks[1:]
	}
	return &oauth2.Token{AccessToken: tok}, nil
}

func (s *staleOnReload) ReloadToken(ctx context.Context, stale *oauth2.Token) (*oauth2.Token, error) {
	return stale, nil
}

func TestRefusedTokenIsClassifiedWithItself(t *testing.T) {
	t.Parallel()
	srv := newRotationSandbox(t)
	dead := mustToken(t, srv, sandbox.DemoAdminEmail, fullScope).AccessToken
	srv.ExpireAccessToken(dead)
	alive := mustToken(t, srv, sandbox.DemoAdminEmail, fullScope).AccessToken
	tests := []struct {
		name string
		toks []string // what the source hands out in turn
		as   string
		want zendesk.Kind
	}{
		// The users/me probe must use the token Zendesk refused: the
		// source's next token works, and would make the dead one look like
		// an unknown user.
		{"dead token, working one next", []string{dead, alive}, sandbox.DemoBeaEmail, zendesk.ErrTokenInvalid},
		{"dead token", []string{dead}, sandbox.DemoBeaEmail, zendesk.ErrTokenInvalid},
		{"unknown user", []string{alive}, "ghost@example.com", zendesk.ErrUnknownUser},
		{"unknown user id", []string{alive}, "987654", zendesk.ErrUnknownUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustNew(t, srv.URL, &staleOnReload{toks: tt.toks}).As(tt.as)
			_, err := c.UpdateRequest(t.Context(), sandbox.TicketBeaOpen, zendesk.RequestUpdate{Comment: "hello"})
			if ze := mustZendeskError(t, err); ze.Kind != tt.want || ze.Status != http.StatusUnauthorized {
				t.Errorf("err = %v, want %v with status 401", err, tt.want)
			}
		})
	}
	if n := len(srv.Writes()); n != 0 {
		t.Errorf("%d writes recorded, want none", n)
	}
}

// expiringReloads hands out tokens that Zendesk refuses: every reload
// issues a new token and expires it at once.
type expiringReloads struct {
	srv     *sandbox.Server
	mu      sync.Mutex
	cur     string
	reloads int
}

func (s *expiringReloads) Token() (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &oauth2.Token{AccessToken: s.cur}, nil
}

func (s *expiringReloads) ReloadToken(ctx context.Context, stale *oauth2.Token) (*oauth2.Token, error) {
	tok, err := s.srv.IssueToken(sandbox.DemoAdminEmail, fullScope)
	if err != nil {
		return nil, err
	}
	s.srv.ExpireAccessToken(tok.AccessToken)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = tok.AccessToken
	s.reloads++
	return &oauth2.Token{AccessToken: s.cur}, nil
}

func TestTokenResendsAreBounded(t *testing.T) {
	t.Parallel()
	srv := newRotationSandbox(t)
	first := mustToken(t, srv, sandbox.DemoAdminEmail, fullScope).AccessToken
	srv.ExpireAccessToken(first)
	src := &expiringReloads{srv: srv, cur: first}
	c := mustNew(t, srv.URL, src).As(sandbox.DemoBeaEmail)
	_, err := c.UpdateRequest(t.Context(), sandbox.TicketBeaOpen, zendesk.RequestUpdate{Comment: "hello"})
	if !errors.Is(err, zendesk.ErrTokenInvalid) {
		t.Errorf("err = %v, want ErrTokenInvalid", err)
	}
	if n := srv.Stats().Calls["PUT /api/v2/requests/{id}"]; n != 3 {
		t.Errorf("update sent %d times, want 3 (once, then again with each of two new tokens)", n)
	}
	if src.reloads != 2 {
		t.Errorf("reloads = %d, want 2", src.reloads)
	}
}

var errRunCancelled = errors.New("run cancelled")

func TestBeforeWrite(t *testing.T) {
	t.Parallel()
	t.Run("refusal sends nothing", func(t *testing.T) {
		t.Parallel()
		srv := newTestSandbox(t, sandbox.Options{})
		var asked atomic.Int32
		c := newSandboxClient(t, srv, sandbox.DemoAdminEmail, fullScope).
			BeforeWrite(func(context.Context) error { asked.Add(1); return errRunCancelled }).
			As(sandbox.DemoBeaEmail)
		_, err := c.RateTicket(t.Context(), sandbox.TicketBeaSolved, zendesk.RatingInput{Score: zendesk.ScoreGood})
		if !errors.Is(err, errRunCancelled) {
			t.Errorf("err = %v, want it to wrap the check's error", err)
		}
		if n := len(srv.Writes()); n != 0 || srv.Stats().Calls[rateEndpoint] != 0 {
			t.Errorf("%d writes recorded, %d calls; want none", n, srv.Stats().Calls[rateEndpoint])
		}
		if asked.Load() != 1 {
			t.Errorf("check asked %d times, want 1", asked.Load())
		}
		// Reads are not writes: the check is not asked.
		if _, err := c.ShowRequest(t.Context(), sandbox.TicketBeaOpen); err != nil {
			t.Errorf("read with a refusing write check: %v", err)
		}
		if asked.Load() != 1 {
			t.Errorf("check asked %d times after a read, want still 1", asked.Load())
		}
	})
	t.Run("wait again goes back to the limiter", func(t *testing.T) {
		t.Parallel()
		srv := newTestSandbox(t, sandbox.Options{})
		tok := mustToken(t, srv, sandbox.DemoAdminEmail, fullScope)
		lim := &pausingLimiter{}
		var asked atomic.Int32
		c := mustNew(t, srv.URL, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken}), zendesk.WithLimiter(lim)).
			BeforeWrite(func(context.Context) error {
				if asked.Add(1) == 1 {
					return zendesk.ErrWaitAgain
				}
				return nil
			}).
			As(sandbox.DemoBeaEmail)
		if _, err := c.UpdateRequest(t.Context(), sandbox.TicketBeaOpen, zendesk.RequestUpdate{Comment: "after waiting again"}); err != nil {
			t.Fatalf("write after ErrWaitAgain: %v, want it sent", err)
		}
		if n := asked.Load(); n != 2 {
			t.Errorf("check asked %d times, want 2", n)
		}
		if lim.waits != 2 {
			t.Errorf("limiter waited %d times, want 2: ErrWaitAgain must send the write back to the limiter", lim.waits)
		}
		if n := srv.Stats().Calls["PUT /api/v2/requests/{id}"]; n != 1 {
			t.Errorf("update sent %d times, want 1", n)
		}
	})
	t.Run("asked again before sending again", func(t *testing.T) {
		t.Parallel()
		srv := newRotationSandbox(t)
		tokens := newSharedTokens(t, srv, sandbox.DemoAdminEmail)
		// The run is cancelled while the first attempt is refused: the
		// second attempt must not go out.
		var asked atomic.Int32
		c := mustNew(t, srv.URL, tokens).BeforeWrite(func(context.Context) error {
			if asked.Add(1) > 1 {
				return errRunCancelled
			}
			return nil
		})
		err := rateWhileRotating(t, srv, tokens, c)
		if !errors.Is(err, errRunCancelled) {
			t.Errorf("err = %v, want the check's error", err)
		}
		if asked.Load() != 2 {
			t.Errorf("check asked %d times, want 2", asked.Load())
		}
		if n := len(srv.Writes()); n != 0 {
			t.Errorf("%d writes recorded, want none", n)
		}
	})
}

// pausingLimiter reports a pause once, on the first Delay; it counts Wait
// calls.
type pausingLimiter struct {
	mu     sync.Mutex
	waits  int
	delays int
	pause  time.Duration
}

func (l *pausingLimiter) Wait(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.waits++
	return nil
}

func (l *pausingLimiter) Delay() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.delays++
	if l.delays == 1 {
		return l.pause
	}
	return 0
}

func (l *pausingLimiter) Observe(zendesk.RateInfo) {}

// countingTokens counts Token calls.
type countingTokens struct {
	ts    oauth2.TokenSource
	calls atomic.Int32
}

func (s *countingTokens) Token() (*oauth2.Token, error) {
	s.calls.Add(1)
	return s.ts.Token()
}

func TestLimiterPauseAfterTokenFetchWaitsAgain(t *testing.T) {
	t.Parallel()
	srv := newTestSandbox(t, sandbox.Options{})
	tok := mustToken(t, srv, sandbox.DemoAdminEmail, fullScope)
	ts := &countingTokens{ts: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken})}
	lim := &pausingLimiter{pause: time.Second}
	c := mustNew(t, srv.URL, ts, zendesk.WithLimiter(lim)).As(sandbox.DemoBeaEmail)
	if _, err := c.UpdateRequest(t.Context(), sandbox.TicketBeaOpen, zendesk.RequestUpdate{Comment: "after the pause"}); err != nil {
		t.Fatal(err)
	}
	if lim.waits != 2 {
		t.Errorf("limiter waited %d times, want 2: a pause that began while the token was fetched must be waited out", lim.waits)
	}
	if n := ts.calls.Load(); n != 2 {
		t.Errorf("token fetched %d times, want 2 (again after the second wait)", n)
	}
	if n := srv.Stats().Calls["PUT /api/v2/requests/{id}"]; n != 1 {
		t.Errorf("update sent %d times, want 1", n)
	}
}
