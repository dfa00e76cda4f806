package actions_test

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/zendesk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// newTestAdminClient starts a sandbox with data (nil = Demo) and returns it
// with the admin's client.
func newTestAdminClient(t *testing.T, data *sandbox.Data) (*sandbox.Server, *zendesk.Client) {
	t.Helper()
	srv := newTestSandbox(t, sandbox.Options{Data: data})
	tok, err := srv.IssueToken(sandbox.DemoAdminEmail, fullScope)
	if err != nil {
		t.Fatal(err)
	}
	return srv, newTestClient(t, srv, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken}))
}

func TestDirectLookup(t *testing.T) {
	t.Parallel()
	srv, zc := newTestAdminClient(t, nil)
	look := actions.NewLookup(zc)
	ctx := t.Context()

	u, err := look.User(ctx, "BEA@example.com")
	if err != nil || u.ID != sandbox.DemoBeaID {
		t.Fatalf("User by email = %+v, %v", u, err)
	}
	// Cached by the reference, the id and the email.
	for _, ref := range []string{"bea@example.com", " bea@example.com ", fmt.Sprint(sandbox.DemoBeaID)} {
		if u, err := look.User(ctx, ref); err != nil || u.ID != sandbox.DemoBeaID {
			t.Errorf("User(%q) = %+v, %v", ref, u, err)
		}
	}
	if _, err := look.User(ctx, "nobody@example.com"); !errors.Is(err, zendesk.ErrNotFound) {
		t.Errorf("unknown email: err = %v, want ErrNotFound", err)
	}
	if _, err := look.User(ctx, "nobody@example.com"); !errors.Is(err, zendesk.ErrNotFound) {
		t.Errorf("unknown email again: err = %v, want ErrNotFound", err)
	}
	if u, err := look.User(ctx, fmt.Sprint(sandbox.DemoCarlosID)); err != nil || u.Email != sandbox.DemoCarlosEmail {
		t.Errorf("User by id = %+v, %v", u, err)
	}
	if _, err := look.User(ctx, "4242"); !errors.Is(err, zendesk.ErrNotFound) {
		t.Errorf("unknown id: err = %v, want ErrNotFound", err)
	}
	for range 2 {
		if tk, err := look.Ticket(ctx, sandbox.TicketBeaSolved); err != nil || tk.RequesterID != sandbox.DemoBeaID {
			t.Errorf("Ticket = %+v, %v", tk, err)
		}
		if _, err := look.Ticket(ctx, 9999); !errors.Is(err, zendesk.ErrNotFound) {
			t.Errorf("unknown ticket: err = %v, want ErrNotFound", err)
		}
	}
	calls := srv.Stats().Calls
	if calls["GET /api/v2/users/search"] != 2 || calls["GET /api/v2/users/{id}"] != 2 || calls["GET /api/v2/tickets/{id}"] != 2 {
		t.Errorf("calls = %v, want 2 searches, 2 user shows and 2 ticket shows (each value asked once)", calls)
	}
}

func TestBatchPrefetchCalls(t *testing.T) {
	t.Parallel()
	const users, tickets = 150, 250
	srv, zc := newTestAdminClient(t, sandbox.Generate(1, users, tickets))
	var refs []string
	var ids []int64
	for n := range tickets {
		ids = append(ids, sandbox.GeneratedFirstTicketID+int64(n))
		refs = append(refs, sandbox.GeneratedUserEmail(n%users))
	}
	b := actions.NewBatch(zc)
	if err := b.Prefetch(t.Context(), refs, ids); err != nil {
		t.Fatal(err)
	}
	st := srv.Stats()
	limit := 2 + (tickets+99)/100*2
	if n := apiCalls(st); n > limit {
		t.Errorf("Prefetch made %d calls for %d rows, want <= %d: %v", n, tickets, limit, st.Calls)
	}
	if st.Calls["GET /api/v2/users/search"] != 0 {
		t.Errorf("searched %d times although every email is a requester", st.Calls["GET /api/v2/users/search"])
	}
	srv.ResetStats()
	for n := range tickets {
		u, err := b.User(t.Context(), refs[n])
		if err != nil {
			t.Fatalf("User(%q): %v", refs[n], err)
		}
		tk, err := b.Ticket(t.Context(), ids[n])
		if err != nil {
			t.Fatalf("Ticket(%d): %v", ids[n], err)
		}
		if tk.RequesterID != u.ID {
			t.Fatalf("ticket %d requester %d, user %d", ids[n], tk.RequesterID, u.ID)
		}
	}
	if n := apiCalls(srv.Stats()); n != 0 {
		t.Errorf("answers after Prefetch made %d calls, want 0", n)
	}
	// A second Prefetch of the same values asks for nothing.
	if err := b.Prefetch(t.Context(), refs, ids); err != nil {
		t.Fatal(err)
	}
	if n := apiCalls(srv.Stats()); n != 0 {
		t.Errorf("repeated Prefetch made %d calls, want 0", n)
	}
}

func TestBatchMissesAndFallbacks(t *testing.T) {
	t.Parallel()
	srv, zc := newTestAdminClient(t, nil)
	b := actions.NewBatch(zc)
	ctx := t.Context()
	err := b.Prefetch(ctx,
		[]string{sandbox.DemoBeaEmail, sandbox.DemoBeauEmail, "ghost@example.com", "4242", fmt.Sprint(sandbox.DemoCarlosID)},
		[]int64{sandbox.TicketBeaSolved, 9999})
	if err != nil {
		t.Fatal(err)
	}
	calls := srv.Stats().Calls
	// Beau is no requester of the prefetched tickets and ghost is nobody:
	// one search each; Bea came with her ticket.
	if calls["GET /api/v2/users/search"] != 2 || calls["GET /api/v2/users/show_many"] != 1 || calls["GET /api/v2/tickets/show_many"] != 1 {
		t.Errorf("Prefetch calls = %v", calls)
	}
	srv.ResetStats()
	for _, ref := range []string{"ghost@example.com", "4242"} {
		if _, err := b.User(ctx, ref); !errors.Is(err, zendesk.ErrNotFound) {
			t.Errorf("User(%q) err = %v, want ErrNotFound", ref, err)
		}
	}
	if _, err := b.Ticket(ctx, 9999); !errors.Is(err, zendesk.ErrNotFound) {
		t.Errorf("Ticket(9999) err = %v, want ErrNotFound", err)
	}
	for _, ref := range []string{sandbox.DemoBeauEmail, fmt.Sprint(sandbox.DemoCarlosID), fmt.Sprint(sandbox.DemoBeaID)} {
		if _, err := b.User(ctx, ref); err != nil {
			t.Errorf("User(%q): %v", ref, err)
		}
	}
	if n := apiCalls(srv.Stats()); n != 0 {
		t.Errorf("known values and known misses made %d calls: %v", n, srv.Stats().Calls)
	}
	// Values never prefetched: one call each, then memory.
	for range 2 {
		if u, err := b.User(ctx, sandbox.DemoSuspendedEmail); err != nil || u.ID != sandbox.DemoSuspendedID {
			t.Errorf("fallback User = %+v, %v", u, err)
		}
		if tk, err := b.Ticket(ctx, sandbox.TicketBeauOpen); err != nil || tk.ID != sandbox.TicketBeauOpen {
			t.Errorf("fallback Ticket = %+v, %v", tk, err)
		}
	}
	if calls := srv.Stats().Calls; calls["GET /api/v2/users/search"] != 1 || calls["GET /api/v2/tickets/{id}"] != 1 {
		t.Errorf("fallback calls = %v, want one search and one ticket show", calls)
	}
}

// TestBatchRunSkipPreflight is the bulk path: one Prefetch, then each row
// costs exactly its write.
func TestBatchRunSkipPreflight(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sandbox.Options{}, fullScope, fullScope)
	rows := []actions.Action{
		actions.Rate{User: sandbox.DemoBeaEmail, Ticket: sandbox.TicketBeaSolved, Score: "good"},
		actions.Rate{User: sandbox.DemoBeauEmail, Ticket: sandbox.TicketBeauSolved, Score: "bad", Comment: "Too slow"},
		actions.Rate{User: sandbox.DemoBeauEmail, Ticket: sandbox.TicketBeauSolved2, Score: "good"},
		actions.Rate{User: sandbox.DemoCarlosEmail, Ticket: sandbox.TicketCarlosSolved, Score: "good"},
		actions.Rate{User: sandbox.DemoBeaEmail, Ticket: sandbox.TicketCarlosSolved, Score: "good"}, // not hers
		actions.Rate{User: sandbox.DemoCarlosEmail, Ticket: sandbox.TicketCarlosClosed, Score: "good"},
		actions.Comment{User: sandbox.DemoBeaEmail, Request: sandbox.TicketBeaSolved, Body: "One more thing."},
		actions.Solve{User: sandbox.DemoBeaEmail, Request: sandbox.TicketBeaOpenUnassigned},
		actions.Solve{User: sandbox.DemoBeaEmail, Request: sandbox.TicketBeaOpenAssigned},
		actions.Comment{User: sandbox.DemoBeauEmail, Request: sandbox.TicketBeaOpen, Body: "Not mine."},
	}
	wantCodes := []string{"", "", "", "", actions.CodeNotRequester, actions.CodeClosed, "", actions.CodeCannotBeSolved, "", actions.CodeNotRequester}
	var refs []string
	var ids []int64
	for _, a := range rows {
		refs = append(refs, a.EndUser())
		ids = append(ids, a.TicketID())
	}
	b := actions.NewBatch(e.zc)
	if err := b.Prefetch(t.Context(), refs, ids); err != nil {
		t.Fatal(err)
	}
	e.srv.ResetStats()
	for i, a := range rows {
		out, ref := e.runWith(t, a, b, actions.RunOptions{RunID: 3, RowID: int64(i + 1), SkipPreflight: true})
		code := ""
		if ref != nil {
			code = ref.Code
		}
		if code != wantCodes[i] {
			t.Errorf("row %d: code %q, want %q (outcome %+v)", i, code, wantCodes[i], out)
		}
		if i == 6 && out.Warning == "" {
			t.Errorf("row %d: no warning for commenting on a solved request", i)
		}
	}
	st := e.srv.Stats()
	ws := e.writes(t)
	// Every row that was not refused costs its one write; the solve also
	// reads the request back to confirm it.
	wantCalls := len(ws) + 1
	if n := apiCalls(st); n != wantCalls || len(ws) != 6 {
		t.Errorf("rows made %d calls with %d writes, want %d calls and 6 writes: %v", n, len(ws), wantCalls, st.Calls)
	}
	for _, w := range ws {
		if w.ActorID == sandbox.DemoAdminID || w.Status >= 400 {
			t.Errorf("write %+v", w)
		}
	}
}
