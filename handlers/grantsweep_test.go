package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/bulk"
	"github.com/onbehalf/onbehalf/oauthflow"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// endSessions makes every session look expired, as a timeout would,
// without touching the grants or Zendesk's tokens.
func endSessions(t *testing.T, app *testApp) {
	t.Helper()
	if _, err := app.DB.SQL().Exec(`UPDATE sessions SET expires_at = 1, idle_expires_at = 1`); err != nil {
		t.Fatal(err)
	}
}

// sweep runs one grant sweep as the periodic job does.
func sweep(t *testing.T, app *testApp) bulk.SweepResult {
	t.Helper()
	res, err := app.Engine.SweepGrants(t.Context(), bulk.GrantSweep{Revoke: app.Flow.Revoke, Swept: app.Metrics.GrantSwept})
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	return res
}

// TestPeriodicSweepRevokesGrantOfEndedSession checks the case: a
// session that ends by timeout leaves its live token behind; the periodic
// sweep revokes it at Zendesk (access and refresh token) and deletes it,
// and counts it in a metric.
func TestPeriodicSweepRevokesGrantOfEndedSession(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{SweepEvery: 100 * time.Millisecond, Switches: sandbox.Switches{ExpiringTokens: true}})
	loginAs(t, app, sandbox.DemoAdminEmail)
	grant := onlyGrantOf(t, app, 1)

	// While the session lives, and during the grace after login, nothing
	// is swept.
	time.Sleep(300 * time.Millisecond)
	app.clock.Advance(2 * time.Minute)
	time.Sleep(300 * time.Millisecond)
	if !app.Sandbox.TokenActive(grant.Token.AccessToken) {
		t.Fatal("the sweep revoked the grant of a live session")
	}

	endSessions(t, app)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := app.DB.FindGrantByID(t.Context(), grant.ID)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the grant of an ended session is still stored after 10 s (err %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if app.Sandbox.TokenActive(grant.Token.AccessToken) {
		t.Error("the swept grant's access token still works at Zendesk")
	}
	if _, err := app.Flow.Refresh(context.Background(), grant.Token.RefreshToken); !errors.Is(err, oauthflow.ErrInvalidGrant) {
		t.Errorf("refreshing the swept grant: err %v, want invalid_grant", err)
	}
	if got := app.metric(`onbehalf_grants_swept_total{outcome="revoked"}`); got != "1" {
		t.Errorf("grants swept (revoked) = %q, want 1", got)
	}
}

// TestBulkRunKeepsItsGrantUntilItEnds checks that a run that has not ended
// keeps its admin's sign-in after their session ends, and that the sign-in
// is revoked once the run is over.
func TestBulkRunKeepsItsGrantUntilItEnds(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	id := runIDFrom(t, s.upload("rate", "keep.csv", []byte(ratingCSV())))
	grant := onlyGrantOf(t, app, 1)
	endSessions(t, app)
	app.clock.Advance(2 * time.Minute)

	for _, state := range []string{store.RunPreview, store.RunPaused} {
		if state != store.RunPreview {
			if _, err := app.DB.SetRunState(t.Context(), id, []string{store.RunPreview}, state, "test"); err != nil {
				t.Fatal(err)
			}
		}
		if res := sweep(t, app); res.Revoked+res.Dead+res.Failed != 0 {
			t.Fatalf("run %s: the sweep took its grant (%+v)", state, res)
		}
		if !app.Sandbox.TokenActive(grant.Token.AccessToken) {
			t.Fatalf("run %s: its grant was revoked", state)
		}
	}
	if _, err := app.DB.SetRunState(t.Context(), id, []string{store.RunPaused}, store.RunCancelled, "test"); err != nil {
		t.Fatal(err)
	}
	if res := sweep(t, app); res.Revoked != 1 {
		t.Errorf("after the run ended: %+v, want its grant revoked", res)
	}
	if app.Sandbox.TokenActive(grant.Token.AccessToken) {
		t.Error("the ended run's grant still works at Zendesk")
	}
	if _, err := app.DB.FindGrantByID(t.Context(), grant.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the ended run's grant is still stored (err %v)", err)
	}
}

// TestSweepRefreshesBeforeRevoking checks that a grant whose access token
// has expired is refreshed first, so that its refresh token (which would
// otherwise live on for weeks) dies too; and that a grant Zendesk no
// longer honours is deleted as dead.
func TestSweepRefreshesBeforeRevoking(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{Switches: sandbox.Switches{ExpiringTokens: true}})
	loginAs(t, app, sandbox.DemoAdminEmail)
	loginAs(t, app, sandbox.DemoAdminEmail)
	expired, dead := onlyGrantOf(t, app, 1), onlyGrantOf(t, app, 2)
	app.Sandbox.RevokeRefreshToken(dead.Token.RefreshToken)
	endSessions(t, app)
	// Past the access tokens' 30 minutes: only the refresh tokens work.
	app.clock.Advance(31 * time.Minute)
	app.Sandbox.ResetStats()

	res := sweep(t, app)
	if res.Revoked != 1 || res.Dead != 1 || res.Failed != 0 {
		t.Errorf("sweep: %+v, want one revoked, one dead", res)
	}
	calls := app.Sandbox.Stats().Calls
	if calls["DELETE /api/v2/oauth/tokens/current"] != 1 {
		t.Errorf("calls at Zendesk: %v, want one DELETE current (with the refreshed token)", calls)
	}
	// The refresh rotated the pair; the new pair was revoked. The old
	// refresh token was spent by the rotation; either way it is dead.
	if _, err := app.Flow.Refresh(context.Background(), expired.Token.RefreshToken); !errors.Is(err, oauthflow.ErrInvalidGrant) {
		t.Errorf("the expired grant's refresh token: err %v, want invalid_grant", err)
	}
	for _, g := range []*store.Grant{expired, dead} {
		if _, err := app.DB.FindGrantByID(t.Context(), g.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("grant %d still stored after the sweep (err %v)", g.ID, err)
		}
	}
}

// TestSweepExpiresAWeekOldPreviewAndItsHold: a preview nobody confirmed
// keeps its admin's sign-in only for store.PreviewLifetime; the periodic
// sweep deletes it after that, whether or not anyone opens the bulk page,
// and then revokes the sign-in it held.
func TestSweepExpiresAWeekOldPreviewAndItsHold(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	s := loginAs(t, app, sandbox.DemoAdminEmail)
	id := runIDFrom(t, s.upload("rate", "forgotten.csv", []byte(ratingCSV())))
	grant := onlyGrantOf(t, app, 1)
	endSessions(t, app)

	app.clock.Advance(store.PreviewLifetime - time.Hour)
	if res := sweep(t, app); res.Previews != 0 || res.Revoked != 0 {
		t.Fatalf("a six-day-old preview: %+v, want it and its grant kept", res)
	}
	app.clock.Advance(2 * time.Hour)
	if res := sweep(t, app); res.Previews != 1 || res.Revoked != 1 {
		t.Errorf("a week-old preview: %+v, want it deleted and its grant revoked", res)
	}
	if _, err := app.DB.FindRunByID(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the week-old preview is still stored (err %v)", err)
	}
	if app.Sandbox.TokenActive(grant.Token.AccessToken) {
		t.Error("the grant the preview held still works at Zendesk")
	}
}

// Logging out while a confirmed run is still sending keeps the sign-in the
// run sends with (a run keeps its admin's sign-in until it ends): every row
// is sent, none fails for a deleted sign-in; the signed-out page says so,
// and the sweep revokes the sign-in once the run has ended.
func TestLogoutKeepsTheSignInOfARunStillSending(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	ada := loginAs(t, app, sandbox.DemoAdminEmail)
	var b strings.Builder
	b.WriteString("email,ticket_id,score,comment\n")
	for i := range 20 { // one ticket: one row at a time
		fmt.Fprintf(&b, "%s,%d,good,row %d\n", sandbox.DemoBeaEmail, sandbox.TicketBeaSolved, i)
	}
	id := runIDFrom(t, ada.upload("rate", "logout.csv", []byte(b.String())))
	gate := sandbox.NewGate(nil)
	app.Sandbox.SetHooks(sandbox.Hooks{AfterWrite: gate.AfterWrite})
	t.Cleanup(gate.Release)
	if r := ada.act(fmt.Sprintf("/bulk/runs/%d/confirm", id), url.Values{"writes": {"20"}}); r.Status != http.StatusSeeOther {
		t.Fatalf("confirm: status %d: %.400s", r.Status, r.Body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := gate.WaitHeld(ctx, 1); err != nil {
		t.Fatalf("no write reached Zendesk: %v", err)
	}

	r := ada.act("/logout", url.Values{})
	if r.Status != http.StatusSeeOther || r.Location != "/?signed_out=runs" {
		t.Fatalf("logout with a run sending: %d to %q", r.Status, r.Location)
	}
	if n := ada.follow(r).doc(t).Find(`[data-testid="notice"]`).Text(); !strings.Contains(n, "still sending go on") {
		t.Errorf("the signed-out page says %q; want it to say the runs go on", n)
	}
	grantID := mustFindRun(t, app, id).GrantID
	if _, err := app.DB.FindGrantByID(context.Background(), grantID); err != nil {
		t.Fatalf("the run's sign-in after logout: %v, want kept", err)
	}

	gate.Release()
	waitRunState(t, app, id, store.RunDone)
	if c := mustRunCounts(t, app, id); c.Done != 20 || c.Failed != 0 {
		t.Errorf("after logging out mid-run: %+v, want all 20 done", c)
	}
	if !app.Sandbox.TokenActive(onlyGrantOf(t, app, grantID).Token.AccessToken) {
		t.Error("the run's sign-in was revoked at Zendesk while it was still sending")
	}
	app.clock.Advance(2 * time.Minute) // past the age that spares a login under way
	if res := sweep(t, app); res.Revoked != 1 {
		t.Errorf("the sweep after the run ended: %+v, want its sign-in revoked", res)
	}
	if _, err := app.DB.FindGrantByID(context.Background(), grantID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the run's sign-in after the run ended and the sweep: %v, want deleted", err)
	}
}

// Two sweeps that overlap (a slow one and the next period's, or two
// replicas') may both find and revoke the same unused grant; it is counted
// once, by the sweep that deletes it.
func TestOverlappingSweepsCountAGrantOnce(t *testing.T) {
	t.Parallel()
	app := newTestApp(t, testAppOptions{})
	loginAs(t, app, sandbox.DemoAdminEmail)
	endSessions(t, app)
	app.clock.Advance(2 * time.Minute)
	// Each sweep's revoke waits until both sweeps have got that far.
	arrived := make(chan struct{}, 2)
	revoke := func(ctx context.Context, tok string) error {
		arrived <- struct{}{}
		deadline := time.After(10 * time.Second)
		for len(arrived) < 2 {
			select {
			case <-deadline:
				return errors.New("the other sweep never reached the revoke")
			case <-time.After(5 * time.Millisecond):
			}
		}
		return app.Flow.Revoke(ctx, tok)
	}
	results := make(chan bulk.SweepResult, 2)
	for range 2 {
		go func() {
			res, err := app.Engine.SweepGrants(t.Context(), bulk.GrantSweep{Revoke: revoke, Swept: app.Metrics.GrantSwept})
			if err != nil {
				t.Errorf("sweep: %v", err)
			}
			results <- res
		}()
	}
	a, b := <-results, <-results
	if a.Revoked+b.Revoked != 1 || a.Failed+b.Failed != 0 {
		t.Errorf("two overlapping sweeps: %+v and %+v, want the grant revoked once in all", a, b)
	}
	if got := app.metric(`onbehalf_grants_swept_total{outcome="revoked"}`); got != "1" {
		t.Errorf("grants swept (revoked) = %q, want 1", got)
	}
}
