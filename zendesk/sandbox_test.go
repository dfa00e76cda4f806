package zendesk_test

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/zendesk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

const fullScope = "read write impersonate"

// newTestSandbox starts a Demo sandbox on loopback. Unless the test sets a
// rate limit, the limit is high enough never to interfere.
func newTestSandbox(t *testing.T, opts sandbox.Options) *sandbox.Server {
	t.Helper()
	if opts.RateLimit == 0 {
		opts.RateLimit, opts.RateBurst = 1_000_000, 100_000
	}
	srv, err := sandbox.Start(opts)
	if err != nil {
		t.Fatalf("sandbox.Start: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// mustToken issues a token for email with scope and returns it.
func mustToken(t *testing.T, srv *sandbox.Server, email, scope string) sandbox.Token {
	t.Helper()
	tok, err := srv.IssueToken(email, scope)
	if err != nil {
		t.Fatalf("IssueToken(%q, %q): %v", email, scope, err)
	}
	return tok
}

// newSandboxClient returns a client authenticated as email with scope.
func newSandboxClient(t *testing.T, srv *sandbox.Server, email, scope string, opts ...zendesk.Option) *zendesk.Client {
	t.Helper()
	tok := mustToken(t, srv, email, scope)
	return mustNew(t, srv.URL, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken}), opts...)
}

func TestSandboxReads(t *testing.T) {
	t.Parallel()
	srv := newTestSandbox(t, sandbox.Options{})
	admin := newSandboxClient(t, srv, sandbox.DemoAdminEmail, fullScope)
	bea := admin.As(sandbox.DemoBeaEmail)

	t.Run("Me", func(t *testing.T) {
		t.Parallel()
		me, err := admin.Me(t.Context())
		if err != nil || me.ID != sandbox.DemoAdminID || !me.IsAdmin() || me.Email != sandbox.DemoAdminEmail {
			t.Errorf("admin Me = %+v, %v", me, err)
		}
		me, err = bea.Me(t.Context())
		if err != nil || me.ID != sandbox.DemoBeaID || !me.IsEndUser() {
			t.Errorf("Me as Bea = %+v, %v", me, err)
		}
		me, err = admin.AsID(sandbox.DemoBeauID).Me(t.Context())
		if err != nil || me.ID != sandbox.DemoBeauID {
			t.Errorf("Me as Beau by id = %+v, %v", me, err)
		}
	})
	t.Run("SearchUsers by email", func(t *testing.T) {
		t.Parallel()
		p, err := admin.SearchUsers(t.Context(), "email:"+sandbox.DemoBeaEmail, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Users) != 1 || p.Users[0].ID != sandbox.DemoBeaID || p.Count != 1 || p.NextPage != 0 {
			t.Errorf("page = %+v", p)
		}
	})
	t.Run("SearchUsers paging", func(t *testing.T) {
		t.Parallel()
		var ids []int64
		page, pages := 1, 0
		for page != 0 {
			p, err := admin.SearchUsers(t.Context(), "example.com", page, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Users) > 3 {
				t.Errorf("page %d has %d users, want <= 3", page, len(p.Users))
			}
			for _, u := range p.Users {
				ids = append(ids, u.ID)
			}
			page = p.NextPage
			if pages++; pages > 10 {
				t.Fatal("paging does not end")
			}
		}
		want := []int64{1, 2, 3, 10, 11, 12, 13, 14}
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			t.Errorf("paged ids = %v, want %v", ids, want)
		}
	})
	t.Run("AutocompleteUsers", func(t *testing.T) {
		t.Parallel()
		users, err := admin.AutocompleteUsers(t.Context(), "bea")
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, u := range users {
			ids = append(ids, u.ID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []int64{sandbox.DemoBeaID, sandbox.DemoBeauID}) {
			t.Errorf("autocomplete ids = %v", ids)
		}
	})
	t.Run("ShowUser", func(t *testing.T) {
		t.Parallel()
		u, err := admin.ShowUser(t.Context(), sandbox.DemoUnverifiedID)
		if err != nil || u.Email != sandbox.DemoUnverifiedEmail || u.Verified || !u.IsEndUser() {
			t.Errorf("ShowUser = %+v, %v", u, err)
		}
		if _, err := admin.ShowUser(t.Context(), 999999); !errors.Is(err, zendesk.ErrNotFound) {
			t.Errorf("unknown user: err = %v, want ErrNotFound", err)
		}
	})
	t.Run("ShowManyUsers", func(t *testing.T) {
		t.Parallel()
		users, err := admin.ShowManyUsers(t.Context(), []int64{sandbox.DemoAdminID, sandbox.DemoBeaID, sandbox.DemoSuspendedID, 999999})
		if err != nil {
			t.Fatal(err)
		}
		got := map[int64]zendesk.User{}
		for _, u := range users {
			got[u.ID] = u
		}
		if len(got) != 3 || !got[sandbox.DemoSuspendedID].Suspended || got[sandbox.DemoAdminID].Role != zendesk.RoleAdmin {
			t.Errorf("ShowManyUsers = %+v", users)
		}
	})
	t.Run("ShowTicket", func(t *testing.T) {
		t.Parallel()
		tk, err := admin.ShowTicket(t.Context(), sandbox.TicketBeaSolved)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Status != zendesk.StatusSolved || tk.RequesterID != sandbox.DemoBeaID || tk.AssigneeID != sandbox.DemoAgentID ||
			tk.SatisfactionRating == nil || tk.SatisfactionRating.Score != zendesk.ScoreOffered || tk.Rated() || tk.CreatedAt.IsZero() {
			t.Errorf("ticket = %+v (rating %+v)", tk, tk.SatisfactionRating)
		}
		rated, err := admin.ShowTicket(t.Context(), sandbox.TicketBeaSolvedRated)
		if err != nil || !rated.Rated() {
			t.Errorf("rated ticket = %+v, %v", rated, err)
		}
		if _, err := admin.ShowTicket(t.Context(), 424242); !errors.Is(err, zendesk.ErrNotFound) {
			t.Errorf("unknown ticket: err = %v, want ErrNotFound", err)
		}
	})
	t.Run("ShowManyTickets", func(t *testing.T) {
		t.Parallel()
		var ids []int64
		for id := int64(sandbox.TicketBeaNew); id <= sandbox.TicketEliSolved; id++ {
			ids = append(ids, id)
		}
		tickets, err := admin.ShowManyTickets(t.Context(), ids)
		if err != nil || len(tickets) != len(ids) {
			t.Fatalf("ShowManyTickets = %d tickets, %v; want %d", len(tickets), err, len(ids))
		}
		for _, tk := range tickets {
			if tk.ID == sandbox.TicketBeaClosed && tk.Status != zendesk.StatusClosed {
				t.Errorf("ticket %d status %q, want closed", tk.ID, tk.Status)
			}
		}
	})
	t.Run("ShowRequest", func(t *testing.T) {
		t.Parallel()
		r, err := bea.ShowRequest(t.Context(), sandbox.TicketBeaOpenAssigned)
		if err != nil || !r.CanBeSolvedByMe || r.RequesterID != sandbox.DemoBeaID || r.Status != zendesk.StatusOpen {
			t.Errorf("request = %+v, %v", r, err)
		}
		r, err = bea.ShowRequest(t.Context(), sandbox.TicketBeaOpenUnassigned)
		if err != nil || r.CanBeSolvedByMe {
			t.Errorf("unassigned request = %+v, %v; want can_be_solved_by_me false", r, err)
		}
		if _, err := bea.ShowRequest(t.Context(), sandbox.TicketBeauOpen); !errors.Is(err, zendesk.ErrNotFound) {
			t.Errorf("someone else's request: err = %v, want ErrNotFound", err)
		}
	})
	t.Run("ListComments", func(t *testing.T) {
		t.Parallel()
		comments, err := bea.ListComments(t.Context(), sandbox.TicketBeaSolved)
		if err != nil || len(comments) == 0 || comments[0].AuthorID != sandbox.DemoBeaID || comments[0].Body == "" {
			t.Errorf("comments = %+v, %v", comments, err)
		}
	})
	t.Run("end user on agent endpoint", func(t *testing.T) {
		t.Parallel()
		_, err := bea.ShowTicket(t.Context(), sandbox.TicketBeaSolved)
		if !errors.Is(err, zendesk.ErrForbidden) {
			t.Errorf("err = %v, want ErrForbidden", err)
		}
	})
}

// TestSandboxListRequestsOrder checks that the order asked for reaches a
// Zendesk that honours only the cursor-style sort on cursor pages (§3.2),
// and that one ignoring every sort parameter lists oldest first, which is
// why callers must check dates.
func TestSandboxListRequestsOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		sw        sandbox.Switches
		wantFirst int64
	}{
		{"sort parameters honoured", sandbox.Switches{}, sandbox.TicketBeaOpenUnassigned},
		{"sort_by ignored on cursor pages", sandbox.Switches{CursorIgnoresSortBy: true}, sandbox.TicketBeaOpenUnassigned},
		{"every sort ignored on cursor pages", sandbox.Switches{CursorIgnoresSort: true}, sandbox.TicketBeaNew},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestSandbox(t, sandbox.Options{Switches: tt.sw})
			bea := newSandboxClient(t, srv, sandbox.DemoAdminEmail, fullScope).As(sandbox.DemoBeaEmail)
			page, err := bea.ListRequests(t.Context(), zendesk.ListRequestsOptions{PageSize: 5, SortBy: "created_at", SortOrder: "desc"})
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Requests) != 5 || page.Requests[0].ID != tt.wantFirst {
				t.Fatalf("first page %+v, want it to start with #%d", page.Requests, tt.wantFirst)
			}
		})
	}
}

func TestSandboxAllRequestsPaginates(t *testing.T) {
	t.Parallel()
	srv := newTestSandbox(t, sandbox.Options{})
	bea := newSandboxClient(t, srv, sandbox.DemoAdminEmail, fullScope).As(sandbox.DemoBeaEmail)
	tests := []struct {
		name      string
		status    []string
		wantIDs   []int64
		wantCalls int
	}{
		{"all", nil, []int64{101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111}, 6},
		{"solved", []string{"solved"}, []int64{105, 106, 107}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: the call count comes from the shared Stats.
			srv.ResetStats()
			var ids []int64
			for r, err := range bea.AllRequests(t.Context(), zendesk.ListRequestsOptions{PageSize: 2, Status: tt.status, SortBy: "created_at", SortOrder: "asc"}) {
				if err != nil {
					t.Fatal(err)
				}
				if r.RequesterID != sandbox.DemoBeaID {
					t.Errorf("request %d has requester %d", r.ID, r.RequesterID)
				}
				ids = append(ids, r.ID)
			}
			sorted := slices.Clone(ids)
			slices.Sort(sorted)
			if !slices.Equal(sorted, tt.wantIDs) {
				t.Errorf("ids = %v, want %v", ids, tt.wantIDs)
			}
			if got := srv.Stats().Calls["GET /api/v2/requests"]; got != tt.wantCalls {
				t.Errorf("list calls = %d, want %d (pages of 2)", got, tt.wantCalls)
			}
		})
	}
}

func TestSandboxWrites(t *testing.T) {
	t.Parallel()
	srv := newTestSandbox(t, sandbox.Options{})
	admin := newSandboxClient(t, srv, sandbox.DemoAdminEmail, fullScope)
	beau := admin.As(sandbox.DemoBeauEmail)
	bea := admin.As(sandbox.DemoBeaEmail)
	ctx := t.Context()

	created, err := beau.CreateRequest(ctx, zendesk.NewRequest{Subject: "Lost parcel", Body: "Where is it?"})
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == 0 || created.Status != zendesk.StatusNew || created.RequesterID != sandbox.DemoBeauID || created.Subject != "Lost parcel" {
		t.Errorf("created = %+v", created)
	}

	updated, err := beau.UpdateRequest(ctx, created.ID, zendesk.RequestUpdate{Comment: "Any news?"})
	if err != nil {
		t.Fatal(err)
	}
	if updated.ID != created.ID {
		t.Errorf("updated = %+v", updated)
	}
	comments, err := beau.ListComments(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(comments) != 2 || comments[1].Body != "Any news?" || comments[1].AuthorID != sandbox.DemoBeauID || !comments[1].Public {
		t.Errorf("comments = %+v", comments)
	}

	solved, err := bea.UpdateRequest(ctx, sandbox.TicketBeaOpenAssigned, zendesk.RequestUpdate{Solved: true})
	if err != nil || solved.Status != zendesk.StatusSolved {
		t.Errorf("solve = %+v, %v", solved, err)
	}
	_, err = bea.UpdateRequest(ctx, sandbox.TicketBeaOpenUnassigned, zendesk.RequestUpdate{Solved: true})
	if !errors.Is(err, zendesk.ErrValidation) {
		t.Errorf("solve unassigned: err = %v, want ErrValidation", err)
	}
	_, err = bea.UpdateRequest(ctx, sandbox.TicketBeaClosed, zendesk.RequestUpdate{Comment: "hello?"})
	if ze := mustZendeskError(t, err); ze.Kind != zendesk.ErrValidation || len(ze.Details) == 0 {
		t.Errorf("comment on closed: %v (details %v), want ErrValidation with details", err, ze.Details)
	}
	_, err = beau.CreateRequest(ctx, zendesk.NewRequest{Subject: "No body"})
	if ze := mustZendeskError(t, err); ze.Kind != zendesk.ErrValidation || len(ze.Details) == 0 {
		t.Errorf("create without body: %v (details %v), want ErrValidation with details", err, ze.Details)
	}

	rating, err := bea.RateTicket(ctx, sandbox.TicketBeaSolved, zendesk.RatingInput{Score: zendesk.ScoreGood, Comment: "Thanks"})
	if err != nil {
		t.Fatal(err)
	}
	if rating.Score != zendesk.ScoreGood || rating.Comment != "Thanks" {
		t.Errorf("rating = %+v", rating)
	}
	tk, err := admin.ShowTicket(ctx, sandbox.TicketBeaSolved)
	if err != nil || !tk.Rated() || tk.SatisfactionRating.Score != zendesk.ScoreGood {
		t.Errorf("ticket after rating = %+v, %v", tk.SatisfactionRating, err)
	}

	wantActors := map[int64]int64{created.ID: sandbox.DemoBeauID, sandbox.TicketBeaSolved: sandbox.DemoBeaID, sandbox.TicketBeaOpenAssigned: sandbox.DemoBeaID}
	for _, w := range srv.Writes() {
		if w.TokenUserID != sandbox.DemoAdminID {
			t.Errorf("write %s %s made with the token of %d", w.Method, w.Path, w.TokenUserID)
		}
		if want, ok := wantActors[w.TicketID]; ok && w.ActorID != want {
			t.Errorf("write %s %s recorded as %d, want %d", w.Method, w.Path, w.ActorID, want)
		}
	}
}

func TestSandboxRatingVariants(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		switches sandbox.Switches
		as       string // "" = the admin itself
		ticket   int64
		input    zendesk.RatingInput
		wantErr  zendesk.Kind // "" = success
		details  bool         // a 422 must carry details
	}{
		{name: "array answer", as: sandbox.DemoBeaEmail, ticket: sandbox.TicketBeaSolved, input: zendesk.RatingInput{Score: "good", Comment: "great"}},
		{name: "object answer", switches: sandbox.Switches{RatingAsObject: true}, as: sandbox.DemoBeaEmail, ticket: sandbox.TicketBeaSolved, input: zendesk.RatingInput{Score: "bad", Comment: "meh"}},
		{name: "token status created is irrelevant", switches: sandbox.Switches{TokenStatusCreated: true}, as: sandbox.DemoBeaEmail, ticket: sandbox.TicketBeaSolved, input: zendesk.RatingInput{Score: "good"}},
		{name: "replaces a rating", as: sandbox.DemoBeaEmail, ticket: sandbox.TicketBeaSolvedRated, input: zendesk.RatingInput{Score: "bad"}},
		{name: "reopened after solved", as: sandbox.DemoBeaEmail, ticket: sandbox.TicketBeaReopened, input: zendesk.RatingInput{Score: "good"}},
		{name: "unverified refused by default", as: sandbox.DemoUnverifiedEmail, ticket: sandbox.TicketDanaSolved, input: zendesk.RatingInput{Score: "good"}, wantErr: zendesk.ErrForbidden},
		{name: "unverified allowed by the switch", switches: sandbox.Switches{UnverifiedAllowed: true}, as: sandbox.DemoUnverifiedEmail, ticket: sandbox.TicketDanaSolved, input: zendesk.RatingInput{Score: "good"}},
		{name: "verified fine with the switch", switches: sandbox.Switches{UnverifiedAllowed: true}, as: sandbox.DemoBeaEmail, ticket: sandbox.TicketBeaSolved, input: zendesk.RatingInput{Score: "good"}},
		{name: "legacy CSAT off", switches: sandbox.Switches{LegacyCSATOff: true}, as: sandbox.DemoBeaEmail, ticket: sandbox.TicketBeaSolved, input: zendesk.RatingInput{Score: "good"}, wantErr: zendesk.ErrForbidden},
		{name: "closed ticket", as: sandbox.DemoCarlosEmail, ticket: sandbox.TicketCarlosClosed, input: zendesk.RatingInput{Score: "good"}, wantErr: zendesk.ErrValidation, details: true},
		{name: "never solved", as: sandbox.DemoBeaEmail, ticket: sandbox.TicketBeaOpen, input: zendesk.RatingInput{Score: "good"}, wantErr: zendesk.ErrValidation},
		{name: "score offered", as: sandbox.DemoBeaEmail, ticket: sandbox.TicketBeaSolved, input: zendesk.RatingInput{Score: "offered"}, wantErr: zendesk.ErrValidation},
		{name: "reason with good", as: sandbox.DemoBeaEmail, ticket: sandbox.TicketBeaSolved, input: zendesk.RatingInput{Score: "good", ReasonCode: 5}, wantErr: zendesk.ErrValidation},
		{name: "not the requester", as: sandbox.DemoBeauEmail, ticket: sandbox.TicketBeaSolved, input: zendesk.RatingInput{Score: "good"}, wantErr: zendesk.ErrForbidden},
		{name: "admin without impersonation", ticket: sandbox.TicketBeaSolved, input: zendesk.RatingInput{Score: "good"}, wantErr: zendesk.ErrForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestSandbox(t, sandbox.Options{Switches: tt.switches})
			c := newSandboxClient(t, srv, sandbox.DemoAdminEmail, fullScope).As(tt.as)
			before, _ := srv.TicketByID(tt.ticket)
			sr, err := c.RateTicket(t.Context(), tt.ticket, tt.input)
			if tt.wantErr != "" {
				ze := mustZendeskError(t, err)
				if ze.Kind != tt.wantErr {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if tt.details && len(ze.Details) == 0 {
					t.Errorf("422 without details: %v", err)
				}
				if after, _ := srv.TicketByID(tt.ticket); !cmp.Equal(before.Rating, after.Rating) {
					t.Errorf("a refused rating changed the ticket: %+v -> %+v", before.Rating, after.Rating)
				}
				return
			}
			if err != nil {
				t.Fatalf("RateTicket: %v", err)
			}
			if sr.Score != tt.input.Score || sr.Comment != tt.input.Comment {
				t.Errorf("rating = %+v, want score %q comment %q", sr, tt.input.Score, tt.input.Comment)
			}
			tk, _ := srv.TicketByID(tt.ticket)
			if tk.Rating == nil || tk.Rating.Score != tt.input.Score {
				t.Errorf("sandbox ticket rating = %+v, want %q", tk.Rating, tt.input.Score)
			}
			ws := srv.Writes()
			if len(ws) != 1 || ws[0].ActorID != tk.RequesterID {
				t.Errorf("writes = %+v, want one by the requester %d", ws, tk.RequesterID)
			}
		})
	}
}

func TestSandboxImpersonationAndScopeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		email     string // token owner
		scope     string
		as        string
		write     bool // CreateRequest; else Me (read)
		expire    bool // expire the token first
		wantKind  zendesk.Kind
		wantScope string // MissingScope for 403s
	}{
		{name: "unknown user", email: sandbox.DemoAdminEmail, scope: fullScope, as: "ghost@example.com", wantKind: zendesk.ErrUnknownUser},
		{name: "unknown user id on a write", email: sandbox.DemoAdminEmail, scope: fullScope, as: "987654", write: true, wantKind: zendesk.ErrUnknownUser},
		{name: "expired token while impersonating", email: sandbox.DemoAdminEmail, scope: fullScope, as: sandbox.DemoBeaEmail, expire: true, wantKind: zendesk.ErrTokenInvalid},
		{name: "expired token", email: sandbox.DemoAdminEmail, scope: fullScope, expire: true, wantKind: zendesk.ErrTokenInvalid},
		{name: "non-admin impersonating", email: sandbox.DemoAgentEmail, scope: fullScope, as: sandbox.DemoBeaEmail, write: true, wantKind: zendesk.ErrForbidden, wantScope: "write"},
		{name: "no impersonate scope", email: sandbox.DemoAdminEmail, scope: "read write", as: sandbox.DemoBeaEmail, wantKind: zendesk.ErrForbidden, wantScope: "read"},
		{name: "missing write scope", email: sandbox.DemoAdminEmail, scope: "read impersonate", as: sandbox.DemoBeaEmail, write: true, wantKind: zendesk.ErrForbidden, wantScope: "write"},
		{name: "missing read scope", email: sandbox.DemoAdminEmail, scope: "write", wantKind: zendesk.ErrForbidden, wantScope: "read"},
		{name: "agent target", email: sandbox.DemoAdminEmail, scope: fullScope, as: sandbox.DemoAgentEmail, wantKind: zendesk.ErrForbidden, wantScope: "read"},
		{name: "suspended target", email: sandbox.DemoAdminEmail, scope: fullScope, as: sandbox.DemoSuspendedEmail, write: true, wantKind: zendesk.ErrForbidden, wantScope: "write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestSandbox(t, sandbox.Options{})
			tok := mustToken(t, srv, tt.email, tt.scope)
			if tt.expire {
				srv.ExpireAccessToken(tok.AccessToken)
			}
			c := mustNew(t, srv.URL, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok.AccessToken})).As(tt.as)
			var err error
			if tt.write {
				_, err = c.CreateRequest(t.Context(), zendesk.NewRequest{Subject: "s", Body: "b"})
			} else {
				_, err = c.Me(t.Context())
			}
			ze := mustZendeskError(t, err)
			if ze.Kind != tt.wantKind {
				t.Errorf("err = %v, want %v", err, tt.wantKind)
			}
			if ze.MissingScope != tt.wantScope {
				t.Errorf("MissingScope = %q, want %q", ze.MissingScope, tt.wantScope)
			}
			if strings.Contains(err.Error(), tok.AccessToken) {
				t.Errorf("Error() contains the token: %q", err.Error())
			}
			if zendesk.IsRetryable(err) {
				t.Errorf("%v is retryable", err)
			}
			for _, w := range srv.Writes() {
				if w.Status < 300 {
					t.Errorf("a refused call left a successful write: %+v", w)
				}
			}
		})
	}
}

func TestSandboxFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		faults     sandbox.Faults
		wantKind   zendesk.Kind
		wantStatus []int
		wantRetry  time.Duration
		wantClass  zendesk.Transience
		stat       func(sandbox.Stats) int
	}{
		{"429 burst", sandbox.Faults{Rate429: 1, RetryAfter: 3 * time.Second}, zendesk.ErrRateLimited, []int{429}, 3 * time.Second, zendesk.WaitAndRetry,
			func(s sandbox.Stats) int { return s.Injected429 }},
		{"429 rounds Retry-After up", sandbox.Faults{Rate429: 1, RetryAfter: 1500 * time.Millisecond}, zendesk.ErrRateLimited, []int{429}, 2 * time.Second, zendesk.WaitAndRetry,
			func(s sandbox.Stats) int { return s.Injected429 }},
		{"503", sandbox.Faults{Rate503: 1, RetryAfter: 2 * time.Second}, zendesk.ErrUnavailable, []int{503}, 2 * time.Second, zendesk.WaitAndRetry,
			func(s sandbox.Stats) int { return s.Injected503 }},
		{"500 or 502", sandbox.Faults{Rate5xx: 1}, zendesk.ErrUnavailable, []int{500, 502}, 0, zendesk.BackoffAndRetry,
			func(s sandbox.Stats) int { return s.Injected5xx }},
		{"dropped connection", sandbox.Faults{DropRate: 1}, zendesk.ErrNetwork, []int{0}, 0, zendesk.BackoffAndRetry,
			func(s sandbox.Stats) int { return s.Dropped }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestSandbox(t, sandbox.Options{Seed: 7, Faults: tt.faults})
			lim := &recordingLimiter{}
			c := newSandboxClient(t, srv, sandbox.DemoAdminEmail, fullScope, zendesk.WithLimiter(lim)).As(sandbox.DemoBeaEmail)
			// A POST: Go's transport would silently resend a GET whose
			// connection drops, and the request must not be created twice.
			_, err := c.CreateRequest(t.Context(), zendesk.NewRequest{Subject: "s", Body: "b"})
			ze := mustZendeskError(t, err)
			if ze.Kind != tt.wantKind || !slices.Contains(tt.wantStatus, ze.Status) || ze.RetryAfter != tt.wantRetry {
				t.Errorf("err = %v (status %d, retry %v); want %v, status in %v, retry %v", err, ze.Status, ze.RetryAfter, tt.wantKind, tt.wantStatus, tt.wantRetry)
			}
			class, wait := zendesk.Classify(err)
			if class != tt.wantClass || (class == zendesk.WaitAndRetry && wait != tt.wantRetry) {
				t.Errorf("Classify = %v, %v; want %v", class, wait, tt.wantClass)
			}
			if n := tt.stat(srv.Stats()); n != 1 {
				t.Errorf("sandbox counted %d injected faults, want 1", n)
			}
			waits, infos := lim.snapshot()
			wantObs := 1
			if tt.wantKind == zendesk.ErrNetwork {
				wantObs = 0
			}
			if waits != 1 || len(infos) != wantObs {
				t.Errorf("limiter: %d waits, %d observations; want 1, %d", waits, len(infos), wantObs)
			}
			if wantObs == 1 && (infos[0].Status != ze.Status || infos[0].RetryAfter != tt.wantRetry) {
				t.Errorf("observed %+v", infos[0])
			}
		})
	}
}

func TestSandboxRateLimiter(t *testing.T) {
	t.Parallel()
	srv := newTestSandbox(t, sandbox.Options{RateLimit: 60, RateBurst: 2})
	lim := &recordingLimiter{}
	c := newSandboxClient(t, srv, sandbox.DemoAdminEmail, fullScope, zendesk.WithLimiter(lim))
	var err error
	for range 3 {
		if _, err = c.Me(t.Context()); err != nil {
			break
		}
	}
	ze := mustZendeskError(t, err)
	if ze.Kind != zendesk.ErrRateLimited || ze.RetryAfter < time.Second {
		t.Fatalf("third call: %v (retry %v), want ErrRateLimited with Retry-After >= 1s", err, ze.RetryAfter)
	}
	if n := srv.Stats().Throttled; n != 1 {
		t.Errorf("Throttled = %d, want 1", n)
	}
	_, infos := lim.snapshot()
	if len(infos) != 3 || infos[0].Limit != 60 || infos[0].Remaining < 0 || infos[2].Status != http.StatusTooManyRequests {
		t.Errorf("observed %+v", infos)
	}
	if infos[0].Remaining <= infos[1].Remaining {
		t.Errorf("Remaining did not decrease: %d then %d", infos[0].Remaining, infos[1].Remaining)
	}
}

// TestSandboxConcurrentActorsNeverMix has two client values from one base act
// as two end users at once; every write must be recorded under the user
// whose marker is in its body. Run with -race.
func TestSandboxConcurrentActorsNeverMix(t *testing.T) {
	t.Parallel()
	srv := newTestSandbox(t, sandbox.Options{})
	base := newSandboxClient(t, srv, sandbox.DemoAdminEmail, fullScope)
	actors := []struct {
		c  *zendesk.Client
		id int64
	}{
		{base.As(sandbox.DemoBeaEmail), sandbox.DemoBeaID},
		{base.AsID(sandbox.DemoBeauID), sandbox.DemoBeauID},
	}
	const perActor = 50
	var wg sync.WaitGroup
	errs := make(chan error, 2*perActor)
	for _, a := range actors {
		for i := range perActor {
			wg.Go(func() {
				marker := fmt.Sprintf("actor-%d-n-%d", a.id, i)
				r, err := a.c.CreateRequest(t.Context(), zendesk.NewRequest{Subject: marker, Body: marker})
				if err != nil {
					errs <- err
					return
				}
				if r.RequesterID != a.id {
					errs <- fmt.Errorf("%s: created with requester %d", marker, r.RequesterID)
				}
				if _, err := a.c.UpdateRequest(t.Context(), r.ID, zendesk.RequestUpdate{Comment: "comment " + marker}); err != nil {
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	writes := srv.Writes()
	if len(writes) != 2*2*perActor {
		t.Errorf("got %d writes, want %d", len(writes), 4*perActor)
	}
	for _, w := range writes {
		var want int64
		for _, a := range actors {
			if strings.Contains(w.Body, fmt.Sprintf("actor-%d-n-", a.id)) {
				want = a.id
			}
		}
		if want == 0 || w.ActorID != want || w.TokenUserID != sandbox.DemoAdminID || w.Status >= 300 {
			t.Errorf("write %s %s (status %d) by actor %d, token user %d, body %q; want actor %d",
				w.Method, w.Path, w.Status, w.ActorID, w.TokenUserID, w.Body, want)
		}
	}
}

func TestSandboxListCommentsAcrossPages(t *testing.T) {
	t.Parallel()
	srv := newTestSandbox(t, sandbox.Options{})
	srv.UpdateTicket(sandbox.TicketBeaNew, func(tk *sandbox.Ticket) {
		for i := range 150 {
			tk.Comments = append(tk.Comments, sandbox.Comment{ID: int64(90000 + i), AuthorID: sandbox.DemoAgentID,
				Body: fmt.Sprintf("reply %d", i), Public: true, CreatedAt: tk.CreatedAt.Add(time.Duration(i+1) * time.Minute)})
		}
	})
	want, _ := srv.TicketByID(sandbox.TicketBeaNew)
	bea := newSandboxClient(t, srv, sandbox.DemoAdminEmail, fullScope).As(sandbox.DemoBeaEmail)
	srv.ResetStats()
	comments, err := bea.ListComments(t.Context(), sandbox.TicketBeaNew)
	if err != nil {
		t.Fatal(err)
	}
	if len(comments) != len(want.Comments) || len(comments) < 151 {
		t.Fatalf("got %d comments, want %d", len(comments), len(want.Comments))
	}
	seen := map[int64]bool{}
	for _, c := range comments {
		if seen[c.ID] {
			t.Errorf("comment %d listed twice", c.ID)
		}
		seen[c.ID] = true
	}
	if got := srv.Stats().Calls["GET /api/v2/requests/{id}/comments"]; got != 2 {
		t.Errorf("comment list calls = %d, want 2 (pages of 100)", got)
	}
}
