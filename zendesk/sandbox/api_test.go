package sandbox

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestBearerErrors(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	expired := mustToken(t, srv.Sandbox, DemoAdminEmail, "read")
	srv.ExpireAccessToken(expired.AccessToken)
	revoked := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write")
	wantStatus(t, do(t, srv, "DELETE", "/api/v2/oauth/tokens/current", revoked.AccessToken, nil), http.StatusNoContent)

	for _, tt := range []struct{ name, token string }{
		{"garbage", "not-a-token"},
		{"expired", expired.AccessToken},
		{"revoked", revoked.AccessToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wantInvalidToken(t, do(t, srv, "GET", "/api/v2/users/search?query=bea", tt.token, nil))
			wantInvalidToken(t, do(t, srv, "GET", "/api/v2/users/me", tt.token, nil))
		})
	}
	t.Run("no token", func(t *testing.T) {
		t.Parallel()
		r := do(t, srv, "GET", "/api/v2/requests.json", "", nil)
		wantStatus(t, r, http.StatusUnauthorized)
		if r.str("error") != "Couldn't authenticate you" {
			t.Errorf("body %s", r.Raw)
		}
	})
	t.Run("basic auth", func(t *testing.T) {
		t.Parallel()
		r := do(t, srv, "GET", "/api/v2/requests.json", "", nil, withHeader("Authorization", "Basic YTpi"))
		wantStatus(t, r, http.StatusUnauthorized)
	})
	t.Run("anonymous me", func(t *testing.T) {
		t.Parallel()
		r := do(t, srv, "GET", "/api/v2/users/me.json", "", nil)
		wantStatus(t, r, http.StatusOK)
		if r.get("user", "id") != nil || r.str("user", "name") != "Anonymous user" {
			t.Errorf("anonymous me = %s", r.Raw)
		}
	})
	t.Run("suspended owner", func(t *testing.T) {
		t.Parallel()
		tok := mustToken(t, srv.Sandbox, DemoSuspendedEmail, "read")
		wantInvalidToken(t, do(t, srv, "GET", "/api/v2/users/me", tok.AccessToken, nil))
	})
}

func TestScopes(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	rate := map[string]any{"satisfaction_rating": map[string]any{"score": "good"}}
	newReq := map[string]any{"request": map[string]any{"subject": "s", "comment": map[string]any{"body": "b"}}}
	tests := []struct {
		name, email, scope, method, path string
		body                             any
		want                             int
	}{
		{"write does not imply read", DemoAdminEmail, "write", "GET", "/api/v2/users/me", nil, 403},
		{"read cannot write", DemoBeaEmail, "read", "POST", "/api/v2/requests", newReq, 403},
		{"read reads", DemoAdminEmail, "read", "GET", "/api/v2/users/search?query=bea", nil, 200},
		{"users:read reads users", DemoAdminEmail, "users:read", "GET", "/api/v2/users/show_many?ids=1", nil, 200},
		{"users:read is not tickets", DemoAdminEmail, "users:read", "GET", "/api/v2/tickets/101", nil, 403},
		{"requests:read lists", DemoBeaEmail, "requests:read", "GET", "/api/v2/requests", nil, 200},
		{"requests:read cannot create", DemoBeaEmail, "requests:read", "POST", "/api/v2/requests", newReq, 403},
		{"requests:write creates", DemoBeaEmail, "requests:write", "POST", "/api/v2/requests", newReq, 201},
		{"tickets:read is not requests", DemoBeaEmail, "tickets:read", "GET", "/api/v2/requests", nil, 403},
		{"satisfaction_ratings:write rates", DemoBeaEmail, "satisfaction_ratings:write", "POST", fmt.Sprintf("/api/v2/tickets/%d/satisfaction_rating", TicketBeaSolved), rate, 200},
		{"current token needs read", DemoBeaEmail, "write", "GET", "/api/v2/oauth/tokens/current", nil, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok := mustToken(t, srv.Sandbox, tt.email, tt.scope)
			r := do(t, srv, tt.method, tt.path, tok.AccessToken, tt.body)
			if tt.want == 403 {
				wantForbidden(t, r)
				return
			}
			wantStatus(t, r, tt.want)
		})
	}
}

func TestImpersonation(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	full := "read write impersonate"
	tests := []struct {
		name, email, scope, obo string
		want                    int
		wantID                  int64
	}{
		{"by email", DemoAdminEmail, full, DemoBeaEmail, 200, DemoBeaID},
		{"by email any case", DemoAdminEmail, full, "BEA@Example.com", 200, DemoBeaID},
		{"by id", DemoAdminEmail, full, "11", 200, DemoBeauID},
		{"unverified allowed", DemoAdmin2Email, full, DemoUnverifiedEmail, 200, DemoUnverifiedID},
		{"agent token", DemoAgentEmail, full, DemoBeaEmail, 403, 0},
		{"end-user token", DemoBeaEmail, full, DemoBeauEmail, 403, 0},
		{"no impersonate scope", DemoAdminEmail, "read write", DemoBeaEmail, 403, 0},
		{"unknown email", DemoAdminEmail, full, "nobody@example.com", 401, 0},
		{"unknown id", DemoAdminEmail, full, "424242", 401, 0},
		{"agent target", DemoAdminEmail, full, DemoAgentEmail, 403, 0},
		{"admin target", DemoAdminEmail, full, DemoAdmin2Email, 403, 0},
		{"suspended target", DemoAdminEmail, full, DemoSuspendedEmail, 403, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok := mustToken(t, srv.Sandbox, tt.email, tt.scope)
			r := do(t, srv, "GET", "/api/v2/users/me.json", tok.AccessToken, nil, withOBO(tt.obo))
			switch tt.want {
			case 401:
				wantInvalidToken(t, r)
			case 403:
				wantForbidden(t, r)
			default:
				wantStatus(t, r, tt.want)
				if got := int64(r.num("user", "id")); got != tt.wantID {
					t.Errorf("me as %s = %d, want %d", tt.obo, got, tt.wantID)
				}
			}
		})
	}
}

func TestStaffOnlyEndpointsRefuseEndUsers(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	admin := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate")
	bea := mustToken(t, srv.Sandbox, DemoBeaEmail, "read")
	for _, path := range []string{
		"/api/v2/users/search?query=bea", "/api/v2/users/autocomplete?name=be", "/api/v2/users/show_many?ids=10,11",
		"/api/v2/users/11", "/api/v2/tickets/101", "/api/v2/tickets/show_many?ids=101", "/api/v2/users/10/requests",
	} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			wantForbidden(t, do(t, srv, "GET", path, admin.AccessToken, nil, withOBO(DemoBeaEmail)))
			wantForbidden(t, do(t, srv, "GET", path, bea.AccessToken, nil))
			wantStatus(t, do(t, srv, "GET", path, admin.AccessToken, nil), http.StatusOK)
		})
	}
	t.Run("self", func(t *testing.T) {
		t.Parallel()
		wantStatus(t, do(t, srv, "GET", "/api/v2/users/10.json", bea.AccessToken, nil), http.StatusOK)
	})
}

func TestUsersEndpoints(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	agent := mustToken(t, srv.Sandbox, DemoAgentEmail, "read").AccessToken
	get := func(t *testing.T, path string) resp {
		t.Helper()
		return do(t, srv, "GET", path, agent, nil)
	}
	tests := []struct {
		name  string
		path  string
		want  []int64
		count int
	}{
		{"search email exact", "/api/v2/users/search.json?query=" + url.QueryEscape("email:bea@example.com"), []int64{DemoBeaID}, 1},
		{"search email any case", "/api/v2/users/search?query=" + url.QueryEscape("email:BEA@example.com"), []int64{DemoBeaID}, 1},
		{"search substring", "/api/v2/users/search?query=bea", []int64{DemoBeaID, DemoBeauID}, 2},
		{"search name part", "/api/v2/users/search?query=MENDES", []int64{DemoCarlosID}, 1},
		{"search none", "/api/v2/users/search?query=zzz", []int64{}, 0},
		{"autocomplete first word", "/api/v2/users/autocomplete?name=be", []int64{DemoBeaID, DemoBeauID}, 2},
		{"autocomplete any word", "/api/v2/users/autocomplete.json?name=trem", []int64{DemoBeauID}, 1},
		{"autocomplete not inside a word", "/api/v2/users/autocomplete?name=ndqv", []int64{}, 0},
		{"show_many", "/api/v2/users/show_many.json?ids=12,1,999", []int64{DemoCarlosID, DemoAdminID}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := get(t, tt.path)
			wantStatus(t, r, http.StatusOK)
			if got := ids(t, r.get("users")); !slices.Equal(got, tt.want) {
				t.Errorf("ids = %v, want %v", got, tt.want)
			}
			if int(r.num("count")) != tt.count {
				t.Errorf("count = %v, want %d", r.get("count"), tt.count)
			}
		})
	}
	t.Run("search offset pagination", func(t *testing.T) {
		t.Parallel()
		var got []int64
		next := "/api/v2/users/search?query=example.com&per_page=3"
		pages := 0
		for next != "" {
			r := get(t, next)
			wantStatus(t, r, http.StatusOK)
			if int(r.num("count")) != 8 {
				t.Fatalf("count = %v, want 8", r.get("count"))
			}
			if pages == 0 && r.get("previous_page") != nil {
				t.Error("first page has previous_page")
			}
			if pages > 0 && r.str("previous_page") == "" {
				t.Error("later page lacks previous_page")
			}
			got = append(got, ids(t, r.get("users"))...)
			next = strings.TrimPrefix(r.str("next_page"), srv.URL)
			pages++
		}
		if pages != 3 || !slices.Equal(got, []int64{1, 2, 3, 10, 11, 12, 13, 14}) {
			t.Errorf("pages %d ids %v", pages, got)
		}
	})
	t.Run("show", func(t *testing.T) {
		t.Parallel()
		r := get(t, "/api/v2/users/13.json")
		wantStatus(t, r, http.StatusOK)
		u := r.get("user").(map[string]any)
		if u["email"] != DemoUnverifiedEmail || u["role"] != "end-user" || u["verified"] != false || u["active"] != true ||
			u["suspended"] != false || u["name"] != "Dana Park" || !strings.HasSuffix(u["url"].(string), "/api/v2/users/13.json") {
			t.Errorf("user = %v", u)
		}
	})
	t.Run("show unknown", func(t *testing.T) {
		t.Parallel()
		r := get(t, "/api/v2/users/999")
		wantStatus(t, r, http.StatusNotFound)
		if r.str("error") != "RecordNotFound" {
			t.Errorf("body %s", r.Raw)
		}
	})
	t.Run("show_many over 100", func(t *testing.T) {
		t.Parallel()
		var many []string
		for i := range 101 {
			many = append(many, fmt.Sprint(i+1))
		}
		r := get(t, "/api/v2/users/show_many?ids="+strings.Join(many, ","))
		wantStatus(t, r, http.StatusBadRequest)
		if errs, _ := r.get("errors").([]any); len(errs) != 1 {
			t.Errorf("body %s, want the errors array", r.Raw)
		}
	})
}

func TestTicketEndpoints(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	admin := mustToken(t, srv.Sandbox, DemoAdminEmail, "read").AccessToken
	r := do(t, srv, "GET", fmt.Sprintf("/api/v2/tickets/%d.json", TicketBeaSolvedProblem), admin, nil)
	wantStatus(t, r, http.StatusOK)
	tk := r.get("ticket").(map[string]any)
	want := map[string]any{"status": "solved", "type": "problem", "requester_id": float64(DemoBeaID),
		"assignee_id": float64(DemoAgentID), "submitter_id": float64(DemoBeaID), "subject": "Mobile app crashes on start"}
	for k, v := range want {
		if tk[k] != v {
			t.Errorf("ticket.%s = %v, want %v", k, tk[k], v)
		}
	}
	for _, k := range []string{"description", "created_at", "updated_at", "satisfaction_rating"} {
		if tk[k] == nil {
			t.Errorf("ticket lacks %s", k)
		}
	}
	r = do(t, srv, "GET", "/api/v2/tickets/show_many?ids=101,118,5", admin, nil)
	wantStatus(t, r, http.StatusOK)
	if got := ids(t, r.get("tickets")); !slices.Equal(got, []int64{101, 118}) {
		t.Errorf("show_many ids %v", got)
	}
	wantStatus(t, do(t, srv, "GET", "/api/v2/tickets/99999", admin, nil), http.StatusNotFound)
}

func TestTicketRatingState(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	admin := mustToken(t, srv.Sandbox, DemoAdminEmail, "read").AccessToken
	tests := []struct {
		id   int64
		want string
	}{
		{TicketBeaNew, "unoffered"}, {TicketBeaOpen, "unoffered"}, {TicketBeaPending, "unoffered"},
		{TicketBeaSolved, "offered"}, {TicketBeaSolvedRated, "good"}, {TicketBeaClosed, "offered"},
		{TicketBeaReopened, "offered"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.id), func(t *testing.T) {
			t.Parallel()
			r := do(t, srv, "GET", fmt.Sprintf("/api/v2/tickets/%d", tt.id), admin, nil)
			wantStatus(t, r, http.StatusOK)
			if got := r.str("ticket", "satisfaction_rating", "score"); got != tt.want {
				t.Errorf("score = %q, want %q", got, tt.want)
			}
		})
	}
}

// requestsAs lists every page of GET /api/v2/requests by following
// links.next.
func followCursor(t *testing.T, srv *Server, token, first string, opts ...reqOpt) ([]int64, int) {
	t.Helper()
	var got []int64
	pages := 0
	next := first
	for next != "" {
		r := do(t, srv, "GET", next, token, nil, opts...)
		wantStatus(t, r, http.StatusOK)
		list := r.get("requests")
		if list == nil {
			list = r.get("comments")
		}
		got = append(got, ids(t, list)...)
		pages++
		hasMore, _ := r.get("meta", "has_more").(bool)
		next = strings.TrimPrefix(r.str("links", "next"), srv.URL)
		if hasMore != (next != "") {
			t.Fatalf("has_more %v but next %q", hasMore, next)
		}
		if pages > 50 {
			t.Fatal("cursor pagination does not end")
		}
	}
	return got, pages
}

func TestRequestsList(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	admin := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
	asBea := withOBO(DemoBeaEmail)
	beaAll := []int64{101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111}

	t.Run("cursor", func(t *testing.T) {
		t.Parallel()
		got, pages := followCursor(t, srv, admin, "/api/v2/requests.json?page[size]=4", asBea)
		if pages != 3 || !slices.Equal(got, beaAll) {
			t.Errorf("pages %d ids %v", pages, got)
		}
	})
	t.Run("cursor desc", func(t *testing.T) {
		t.Parallel()
		got, _ := followCursor(t, srv, admin, "/api/v2/requests?page[size]=5&sort=-created_at", asBea)
		want := slices.Clone(beaAll)
		slices.Reverse(want)
		if !slices.Equal(got, want) {
			t.Errorf("ids %v, want %v", got, want)
		}
	})
	t.Run("cursor prev", func(t *testing.T) {
		t.Parallel()
		r := do(t, srv, "GET", "/api/v2/requests?page[size]=4", admin, nil, asBea)
		r = do(t, srv, "GET", strings.TrimPrefix(r.str("links", "next"), srv.URL), admin, nil, asBea)
		prev := strings.TrimPrefix(r.str("links", "prev"), srv.URL)
		if prev == "" {
			t.Fatal("second page has no prev link")
		}
		r = do(t, srv, "GET", prev, admin, nil, asBea)
		if got := ids(t, r.get("requests")); !slices.Equal(got, beaAll[:4]) {
			t.Errorf("prev page ids %v", got)
		}
	})
	t.Run("offset", func(t *testing.T) {
		t.Parallel()
		r := do(t, srv, "GET", "/api/v2/requests?page=2&per_page=5", admin, nil, asBea)
		wantStatus(t, r, http.StatusOK)
		if got := ids(t, r.get("requests")); !slices.Equal(got, beaAll[5:10]) {
			t.Errorf("ids %v", got)
		}
		if int(r.num("count")) != 11 || !strings.Contains(r.str("next_page"), "page=3") || !strings.Contains(r.str("previous_page"), "page=1") {
			t.Errorf("offset fields: count %v next %q prev %q", r.get("count"), r.str("next_page"), r.str("previous_page"))
		}
	})
	t.Run("status filter and sort", func(t *testing.T) {
		t.Parallel()
		r := do(t, srv, "GET", "/api/v2/requests?status=solved,closed&sort_by=created_at&sort_order=desc", admin, nil, asBea)
		wantStatus(t, r, http.StatusOK)
		if got := ids(t, r.get("requests")); !slices.Equal(got, []int64{108, 107, 106, 105}) {
			t.Errorf("ids %v", got)
		}
	})
	t.Run("admin sees own", func(t *testing.T) {
		t.Parallel()
		r := do(t, srv, "GET", "/api/v2/requests", admin, nil)
		wantStatus(t, r, http.StatusOK)
		if got := ids(t, r.get("requests")); len(got) != 0 {
			t.Errorf("admin's own requests %v", got)
		}
	})
	t.Run("bad params", func(t *testing.T) {
		t.Parallel()
		for _, q := range []string{"page[size]=101", "page[size]=4&page[after]=notacursor", "status=bogus", "sort_order=up", "per_page=0"} {
			wantStatus(t, do(t, srv, "GET", "/api/v2/requests?"+q, admin, nil, asBea), http.StatusBadRequest)
		}
	})
	t.Run("per user", func(t *testing.T) {
		t.Parallel()
		r := do(t, srv, "GET", "/api/v2/users/11/requests.json", admin, nil)
		if got := ids(t, r.get("requests")); !slices.Equal(got, []int64{112, 113, 114}) {
			t.Errorf("ids %v", got)
		}
	})
}

// TestCursorSortSwitches covers the unconfirmed sort parameters of cursor
// pages (§3.2): by default both styles are honoured; CursorIgnoresSortBy
// keeps only sort; CursorIgnoresSort lists oldest first whatever is asked.
// Offset pages always honour sort_by/sort_order.
func TestCursorSortSwitches(t *testing.T) {
	t.Parallel()
	beaAsc := []int64{101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111}
	beaDesc := slices.Clone(beaAsc)
	slices.Reverse(beaDesc)
	commentsAsc := []int64{1004, 1005} // TicketBeaPending: Bea's question, then the agent's reply
	commentsDesc := []int64{1005, 1004}
	const (
		cursorSortBy = "/api/v2/requests?page[size]=100&sort_by=created_at&sort_order=desc"
		cursorSort   = "/api/v2/requests?page[size]=100&sort=-created_at"
		cursorBoth   = "/api/v2/requests?page[size]=100&sort=-created_at&sort_by=created_at&sort_order=desc"
		offsetSortBy = "/api/v2/requests?sort_by=created_at&sort_order=desc"
		comments     = "/api/v2/requests/103/comments?page[size]=100&sort=-created_at"
	)
	tests := []struct {
		name string
		sw   Switches
		path string
		want []int64
	}{
		{"default: sort_by on cursor", Switches{}, cursorSortBy, beaDesc},
		{"default: sort on cursor", Switches{}, cursorSort, beaDesc},
		{"default: comments sort", Switches{}, comments, commentsDesc},
		{"ignores sort_by: sort_by on cursor", Switches{CursorIgnoresSortBy: true}, cursorSortBy, beaAsc},
		{"ignores sort_by: sort on cursor", Switches{CursorIgnoresSortBy: true}, cursorSort, beaDesc},
		{"ignores sort_by: both on cursor", Switches{CursorIgnoresSortBy: true}, cursorBoth, beaDesc},
		{"ignores sort_by: offset", Switches{CursorIgnoresSortBy: true}, offsetSortBy, beaDesc},
		{"ignores sort_by: comments sort", Switches{CursorIgnoresSortBy: true}, comments, commentsDesc},
		{"ignores sort: sort on cursor", Switches{CursorIgnoresSort: true}, cursorSort, beaAsc},
		{"ignores sort: both on cursor", Switches{CursorIgnoresSort: true}, cursorBoth, beaAsc},
		{"ignores sort: offset", Switches{CursorIgnoresSort: true}, offsetSortBy, beaDesc},
		{"ignores sort: comments sort", Switches{CursorIgnoresSort: true}, comments, commentsAsc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, Options{Switches: tt.sw})
			admin := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
			r := do(t, srv, "GET", tt.path, admin, nil, withOBO(DemoBeaEmail))
			wantStatus(t, r, http.StatusOK)
			list := r.get("requests")
			if strings.Contains(tt.path, "/comments") {
				list = r.get("comments")
			}
			if got := ids(t, list); !slices.Equal(got, tt.want) {
				t.Errorf("ids %v, want %v", got, tt.want)
			}
		})
	}
}

// TestImpersonationIgnoredOnCreate checks the switch that makes Zendesk
// open a request as the token's owner despite X-On-Behalf-Of.
func TestImpersonationIgnoredOnCreate(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{Switches: Switches{ImpersonationIgnoredOnCreate: true}})
	admin := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
	body := map[string]any{"request": map[string]any{"subject": "Help!", "comment": map[string]any{"body": "As whom?"}}}
	r := do(t, srv, "POST", "/api/v2/requests", admin, body, withOBO(DemoBeaEmail))
	wantStatus(t, r, http.StatusCreated)
	id := int64(r.num("request", "id"))
	if got := int64(r.num("request", "requester_id")); got != DemoAdminID {
		t.Errorf("requester_id = %d, want the admin %d", got, DemoAdminID)
	}
	tk, _ := srv.TicketByID(id)
	if tk.RequesterID != DemoAdminID || tk.Comments[0].AuthorID != DemoAdminID {
		t.Errorf("stored request %+v, want it the admin's", tk)
	}
	if w := srv.Writes(); len(w) != 1 || w[0].ActorID != DemoAdminID || w[0].OnBehalfOf != DemoBeaEmail {
		t.Errorf("writes %+v, want one recorded under the admin despite X-On-Behalf-Of", w)
	}
	// Bea does not see it; other writes still act as her.
	wantStatus(t, do(t, srv, "GET", fmt.Sprintf("/api/v2/requests/%d", id), admin, nil, withOBO(DemoBeaEmail)), http.StatusNotFound)
	comment := map[string]any{"request": map[string]any{"comment": map[string]any{"body": "Me again"}}}
	wantStatus(t, do(t, srv, "PUT", fmt.Sprintf("/api/v2/requests/%d", TicketBeaOpen), admin, comment, withOBO(DemoBeaEmail)), http.StatusOK)
	if w := srv.Writes(); len(w) != 2 || w[1].ActorID != DemoBeaID {
		t.Errorf("update recorded as %+v, want Bea", w)
	}
}

func TestRequestsCollaboratorSees(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	admin := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
	srv.UpdateTicket(TicketBeaOpen, func(tk *Ticket) { tk.CollaboratorIDs = []int64{DemoCarlosID} })
	r := do(t, srv, "GET", "/api/v2/requests", admin, nil, withOBO(DemoCarlosEmail))
	if got := ids(t, r.get("requests")); !slices.Equal(got, []int64{102, 115, 116}) {
		t.Errorf("Carlos sees %v", got)
	}
	wantStatus(t, do(t, srv, "GET", "/api/v2/requests/102", admin, nil, withOBO(DemoCarlosEmail)), http.StatusOK)
	r = do(t, srv, "GET", "/api/v2/requests/ccd", admin, nil, withOBO(DemoCarlosEmail))
	if got := ids(t, r.get("requests")); !slices.Equal(got, []int64{102}) {
		t.Errorf("ccd %v", got)
	}
	srv.UpdateTicket(TicketBeaOpen, func(tk *Ticket) { tk.CollaboratorIDs = nil })
	wantStatus(t, do(t, srv, "GET", "/api/v2/requests/102", admin, nil, withOBO(DemoCarlosEmail)), http.StatusNotFound)
}

func TestRequestShow(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	admin := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
	tests := []struct {
		id       int64
		status   int
		solvable bool
	}{
		{TicketBeaOpenAssigned, 200, true}, {TicketBeaOpenUnassigned, 200, false}, {TicketBeaSolvedProblem, 200, false},
		{TicketBeaSolved, 200, false}, {TicketBeauOpen, 404, false}, {99999, 404, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.id), func(t *testing.T) {
			t.Parallel()
			r := do(t, srv, "GET", fmt.Sprintf("/api/v2/requests/%d.json", tt.id), admin, nil, withOBO(DemoBeaEmail))
			wantStatus(t, r, tt.status)
			if tt.status != 200 {
				if r.str("error") != "RecordNotFound" {
					t.Errorf("body %s", r.Raw)
				}
				return
			}
			if got, _ := r.get("request", "can_be_solved_by_me").(bool); got != tt.solvable {
				t.Errorf("can_be_solved_by_me = %v, want %v", got, tt.solvable)
			}
			for _, k := range []string{"url", "subject", "description", "status", "requester_id", "collaborator_ids", "solved", "created_at", "updated_at"} {
				if r.get("request", k) == nil {
					t.Errorf("request lacks %s", k)
				}
			}
		})
	}
}

func TestRequestCreate(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	admin := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
	body := map[string]any{"request": map[string]any{"subject": "Help!", "comment": map[string]any{"body": "My printer is on fire."}}}
	r := do(t, srv, "POST", "/api/v2/requests.json", admin, body, withOBO(DemoBeauEmail))
	wantStatus(t, r, http.StatusCreated)
	id := int64(r.num("request", "id"))
	if r.str("request", "status") != "new" || int64(r.num("request", "requester_id")) != DemoBeauID || id <= TicketEliSolved {
		t.Fatalf("created %s", r.Raw)
	}
	if !strings.HasSuffix(r.Header.Get("Location"), fmt.Sprintf("/api/v2/requests/%d.json", id)) {
		t.Errorf("Location = %q", r.Header.Get("Location"))
	}
	tk, ok := srv.TicketByID(id)
	if !ok || tk.Description != "My printer is on fire." || len(tk.Comments) != 1 || tk.Comments[0].AuthorID != DemoBeauID {
		t.Errorf("stored ticket %+v", tk)
	}
	w := srv.Writes()
	if len(w) != 1 || w[0].ActorID != DemoBeauID || w[0].TokenUserID != DemoAdminID || w[0].TicketID != id ||
		w[0].Status != 201 || w[0].Endpoint != "POST /api/v2/requests" || w[0].OnBehalfOf != DemoBeauEmail ||
		w[0].Path != "/api/v2/requests.json" || !strings.Contains(w[0].Body, "printer") {
		t.Errorf("writes %+v", w)
	}

	t.Run("missing comment", func(t *testing.T) {
		t.Parallel()
		for _, b := range []any{
			map[string]any{"request": map[string]any{"subject": "x"}},
			map[string]any{"request": map[string]any{"subject": "x", "comment": map[string]any{"body": "  "}}},
		} {
			wantInvalid(t, do(t, srv, "POST", "/api/v2/requests", admin, b, withOBO(DemoBeaEmail)), "description")
		}
	})
	t.Run("subject from body", func(t *testing.T) {
		t.Parallel()
		b := map[string]any{"request": map[string]any{"comment": map[string]any{"body": "No subject here\nsecond line"}}}
		r := do(t, srv, "POST", "/api/v2/requests", admin, b, withOBO(DemoBeaEmail))
		wantStatus(t, r, http.StatusCreated)
		if r.str("request", "subject") != "No subject here" {
			t.Errorf("subject %q", r.str("request", "subject"))
		}
	})
	t.Run("unverified", func(t *testing.T) {
		t.Parallel()
		strict := newTestServer(t, Options{})
		tok := mustToken(t, strict.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
		wantForbidden(t, do(t, strict, "POST", "/api/v2/requests", tok, body, withOBO(DemoUnverifiedEmail)))
		wantStatus(t, do(t, strict, "POST", "/api/v2/requests", tok, body, withOBO(DemoBeaEmail)), http.StatusCreated)
		if w := strict.Writes(); len(w) != 2 || w[0].Status != 403 || w[0].ActorID != DemoUnverifiedID {
			t.Errorf("strict writes %+v", w)
		}
		lenient := newTestServer(t, Options{Switches: Switches{UnverifiedAllowed: true}})
		tok = mustToken(t, lenient.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
		wantStatus(t, do(t, lenient, "POST", "/api/v2/requests", tok, body, withOBO(DemoUnverifiedEmail)), http.StatusCreated)
	})
}

func TestRequestUpdate(t *testing.T) {
	t.Parallel()
	comment := map[string]any{"request": map[string]any{"comment": map[string]any{"body": "Any news?"}}}
	solve := map[string]any{"request": map[string]any{"solved": true}}
	solveStr := map[string]any{"request": map[string]any{"solved": "true"}}
	tests := []struct {
		name       string
		setup      func(*Ticket)
		id         int64
		body       any
		want       int
		wantStatus string
		wasSolved  bool
		comments   int // added
	}{
		{"comment on pending reopens", nil, TicketBeaPending, comment, 200, "open", false, 1},
		{"comment on solved reopens", nil, TicketBeaSolved, comment, 200, "open", true, 1},
		{"comment on new stays new", nil, TicketBeaNew, comment, 200, "new", false, 1},
		{"comment on hold stays hold", nil, TicketBeaHold, comment, 200, "hold", false, 1},
		{"solve assigned", nil, TicketBeaOpenAssigned, solve, 200, "solved", false, 0},
		{"solve as string", nil, TicketBeaOpenAssigned, solveStr, 200, "solved", false, 0},
		{"comment and solve", nil, TicketBeaOpenAssigned, map[string]any{"request": map[string]any{"solved": true, "comment": map[string]any{"body": "Thanks!"}}}, 200, "solved", false, 1},
		{"solve unassigned", nil, TicketBeaOpenUnassigned, solve, 422, "open", false, 0},
		{"solve problem", func(tk *Ticket) { tk.Status = "open" }, TicketBeaSolvedProblem, solve, 422, "open", false, 0},
		{"closed", nil, TicketBeaClosed, comment, 422, "closed", false, 0},
		{"not theirs", nil, TicketBeauOpen, comment, 404, "open", false, 0},
		{"blank comment", nil, TicketBeaOpen, map[string]any{"request": map[string]any{"comment": map[string]any{"body": ""}}}, 422, "open", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, Options{})
			if tt.setup != nil {
				srv.UpdateTicket(tt.id, tt.setup)
			}
			before, _ := srv.TicketByID(tt.id)
			admin := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
			r := do(t, srv, "PUT", fmt.Sprintf("/api/v2/requests/%d.json", tt.id), admin, tt.body, withOBO(DemoBeaEmail))
			wantStatus(t, r, tt.want)
			if tt.want == 422 {
				field := map[string]string{"closed": "status", "blank comment": "comment"}[tt.name]
				wantInvalid(t, r, cmp.Or(field, "base"))
				if tt.name == "closed" && !strings.Contains(string(r.Raw), "Status: closed prevents ticket update") {
					t.Errorf("body %s", r.Raw)
				}
			}
			after, _ := srv.TicketByID(tt.id)
			if after.Status != tt.wantStatus || after.WasSolved != tt.wasSolved || len(after.Comments)-len(before.Comments) != tt.comments {
				t.Errorf("after: status %s wasSolved %v comments +%d", after.Status, after.WasSolved, len(after.Comments)-len(before.Comments))
			}
			if tt.comments > 0 {
				last := after.Comments[len(after.Comments)-1]
				if last.AuthorID != DemoBeaID || !last.Public {
					t.Errorf("comment %+v not by Bea or not public", last)
				}
			}
			w := srv.Writes()
			if len(w) != 1 || w[0].ActorID != DemoBeaID || w[0].TicketID != tt.id || w[0].Status != tt.want || w[0].Endpoint != "PUT /api/v2/requests/{id}" {
				t.Errorf("writes %+v", w)
			}
		})
	}
}

func TestRequestComments(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	admin := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
	asBea := withOBO(DemoBeaEmail)
	for i := range 4 {
		b := map[string]any{"request": map[string]any{"comment": map[string]any{"body": fmt.Sprint("note ", i)}}}
		wantStatus(t, do(t, srv, "PUT", fmt.Sprintf("/api/v2/requests/%d", TicketBeaReopened), admin, b, asBea), http.StatusOK)
	}
	srv.UpdateTicket(TicketBeaReopened, func(tk *Ticket) {
		tk.Comments = append(tk.Comments, Comment{ID: 99999, AuthorID: DemoAgentID, Body: "internal", Public: false, CreatedAt: tk.CreatedAt})
	})
	tk, _ := srv.TicketByID(TicketBeaReopened)
	var want []int64
	for _, c := range tk.Comments {
		if c.Public {
			want = append(want, c.ID)
		}
	}
	if len(want) != 7 {
		t.Fatalf("setup: %d public comments", len(want))
	}
	path := fmt.Sprintf("/api/v2/requests/%d/comments.json", TicketBeaReopened)
	got, pages := followCursor(t, srv, admin, path+"?page[size]=3", asBea)
	if pages != 3 || !slices.Equal(got, want) {
		t.Errorf("cursor: pages %d ids %v, want %v", pages, got, want)
	}
	r := do(t, srv, "GET", path+"?sort_order=desc&per_page=2&page=1", admin, nil, asBea)
	wantStatus(t, r, http.StatusOK)
	if g := ids(t, r.get("comments")); !slices.Equal(g, []int64{want[6], want[5]}) || int(r.num("count")) != 7 || r.str("next_page") == "" {
		t.Errorf("offset desc %s", r.Raw)
	}
	first := r.get("comments").([]any)[0].(map[string]any)
	if first["author_id"] != float64(DemoBeaID) || first["body"] != "note 3" || first["public"] != true {
		t.Errorf("comment %v", first)
	}
	if us, _ := r.get("users").([]any); len(us) == 0 {
		t.Error("no users sideload")
	}
	wantStatus(t, do(t, srv, "GET", fmt.Sprintf("/api/v2/requests/%d/comments", TicketBeauOpen), admin, nil, asBea), http.StatusNotFound)
}

func rateBody(score string, extra ...any) map[string]any {
	r := map[string]any{"score": score}
	for i := 0; i+1 < len(extra); i += 2 {
		r[extra[i].(string)] = extra[i+1]
	}
	return map[string]any{"satisfaction_rating": r}
}

func TestSatisfactionRating(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		sw      Switches
		setup   func(*Ticket)
		email   string // token owner
		obo     string
		id      int64
		body    any
		want    int
		field   string // 422 detail
		wantSet string // stored score after
	}{
		{"good", Switches{}, nil, DemoAdminEmail, DemoBeaEmail, TicketBeaSolved, rateBody("good", "comment", "Thanks"), 200, "", "good"},
		{"bad with reason", Switches{}, nil, DemoAdminEmail, DemoBeaEmail, TicketBeaSolved, rateBody("bad", "reason_code", 5), 200, "", "bad"},
		{"replaces earlier", Switches{}, nil, DemoAdminEmail, DemoBeaEmail, TicketBeaSolvedRated, rateBody("bad"), 200, "", "bad"},
		{"reopened after solved", Switches{}, nil, DemoAdminEmail, DemoBeaEmail, TicketBeaReopened, rateBody("good"), 200, "", "good"},
		{"own end-user token", Switches{}, nil, DemoBeaEmail, "", TicketBeaSolved, rateBody("good"), 200, "", "good"},
		{"reason with good", Switches{}, nil, DemoAdminEmail, DemoBeaEmail, TicketBeaSolved, rateBody("good", "reason_code", 5), 422, "reason_code", ""},
		{"unknown reason", Switches{}, nil, DemoAdminEmail, DemoBeaEmail, TicketBeaSolved, rateBody("bad", "reason_code", 3), 422, "reason_code", ""},
		{"score offered", Switches{}, nil, DemoAdminEmail, DemoBeaEmail, TicketBeaSolved, rateBody("offered"), 422, "score", ""},
		{"score missing", Switches{}, nil, DemoAdminEmail, DemoBeaEmail, TicketBeaSolved, rateBody(""), 422, "score", ""},
		{"closed", Switches{}, nil, DemoAdminEmail, DemoBeaEmail, TicketBeaClosed, rateBody("good"), 422, "status", ""},
		{"never solved", Switches{}, nil, DemoAdminEmail, DemoBeaEmail, TicketBeaOpen, rateBody("good"), 422, "base", ""},
		{"closed after reopen", Switches{}, func(tk *Ticket) { tk.Status = "closed" }, DemoAdminEmail, DemoBeaEmail, TicketBeaReopened, rateBody("good"), 422, "status", ""},
		{"not the requester", Switches{}, nil, DemoAdminEmail, DemoBeauEmail, TicketBeaSolved, rateBody("good"), 403, "", ""},
		{"collaborator is not requester", Switches{}, func(tk *Ticket) { tk.CollaboratorIDs = []int64{DemoBeauID} }, DemoAdminEmail, DemoBeauEmail, TicketBeaSolved, rateBody("good"), 403, "", ""},
		{"admin without impersonation", Switches{}, nil, DemoAdminEmail, "", TicketBeaSolved, rateBody("good"), 403, "", ""},
		{"agent", Switches{}, nil, DemoAgentEmail, "", TicketBeaSolved, rateBody("good"), 403, "", ""},
		{"agent who requested it", Switches{}, func(tk *Ticket) { tk.RequesterID = DemoAgentID }, DemoAgentEmail, "", TicketBeaSolved, rateBody("good"), 403, "", ""},
		{"unverified refused", Switches{}, nil, DemoAdminEmail, DemoUnverifiedEmail, TicketDanaSolved, rateBody("good"), 403, "", ""},
		{"unverified allowed by switch", Switches{UnverifiedAllowed: true}, nil, DemoAdminEmail, DemoUnverifiedEmail, TicketDanaSolved, rateBody("good"), 200, "", "good"},
		{"verified with switch", Switches{UnverifiedAllowed: true}, nil, DemoAdminEmail, DemoBeaEmail, TicketBeaSolved, rateBody("good"), 200, "", "good"},
		{"legacy CSAT off", Switches{LegacyCSATOff: true}, nil, DemoAdminEmail, DemoBeaEmail, TicketBeaSolved, rateBody("good"), 403, "", ""},
		{"unknown ticket", Switches{}, nil, DemoAdminEmail, DemoBeaEmail, 99999, rateBody("good"), 404, "", ""},
		{"malformed body", Switches{}, nil, DemoAdminEmail, DemoBeaEmail, TicketBeaSolved, `{"score":"good"}`, 400, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, Options{Switches: tt.sw})
			if tt.setup != nil {
				srv.UpdateTicket(tt.id, tt.setup)
			}
			before, _ := srv.TicketByID(tt.id)
			tok := mustToken(t, srv.Sandbox, tt.email, "read write impersonate").AccessToken
			var opts []reqOpt
			if tt.obo != "" {
				opts = append(opts, withOBO(tt.obo))
			}
			path := fmt.Sprintf("/api/v2/tickets/%d/satisfaction_rating.json", tt.id)
			r := do(t, srv, "POST", path, tok, tt.body, opts...)
			switch {
			case tt.want == 403:
				wantForbidden(t, r)
			case tt.want == 422:
				wantInvalid(t, r, tt.field)
			default:
				wantStatus(t, r, tt.want)
			}
			after, _ := srv.TicketByID(tt.id)
			if tt.want != 200 {
				if (before.Rating == nil) != (after.Rating == nil) || (after.Rating != nil && *after.Rating != *before.Rating) {
					t.Errorf("refused rating changed the ticket: %+v -> %+v", before.Rating, after.Rating)
				}
			} else {
				if after.Rating == nil || after.Rating.Score != tt.wantSet {
					t.Fatalf("stored rating %+v, want %s", after.Rating, tt.wantSet)
				}
				// The documented answer is an array of one (§3.2).
				list, _ := r.get("satisfaction_rating").([]any)
				var answer map[string]any
				if len(list) == 1 {
					answer, _ = list[0].(map[string]any)
				}
				if answer["score"] != tt.wantSet || answer["ticket_id"] != float64(tt.id) {
					t.Errorf("answer %s", r.Raw)
				}
				if before.Rating != nil && after.Rating.ID != before.Rating.ID {
					t.Errorf("replacement changed id %d -> %d", before.Rating.ID, after.Rating.ID)
				}
				if tt.name == "bad with reason" && (after.Rating.Reason != "The issue took too long to resolve" || answer["reason_id"] != float64(5)) {
					t.Errorf("reason %+v", after.Rating)
				}
			}
			if tt.want != 404 || tt.id == 99999 {
				w := srv.Writes()
				wantActor := map[string]int64{"": 0, DemoBeaEmail: DemoBeaID, DemoBeauEmail: DemoBeauID, DemoUnverifiedEmail: DemoUnverifiedID}[tt.obo]
				if tt.obo == "" {
					u, _ := srv.UserByEmail(tt.email)
					wantActor = u.ID
				}
				if len(w) != 1 || w[0].ActorID != wantActor || w[0].Status != tt.want || w[0].Endpoint != "POST /api/v2/tickets/{id}/satisfaction_rating" {
					t.Errorf("writes %+v, want one by %d with %d", w, wantActor, tt.want)
				}
			}
		})
	}
}

func TestSatisfactionRatingShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		sw    Switches
		array bool
	}{
		{"array by default, as documented", Switches{}, true},
		{"object with RatingAsObject", Switches{RatingAsObject: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestServer(t, Options{Switches: tt.sw})
			tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
			r := do(t, srv, "POST", fmt.Sprintf("/api/v2/tickets/%d/satisfaction_rating", TicketBeaSolved), tok, rateBody("good"), withOBO(DemoBeaEmail))
			wantStatus(t, r, http.StatusOK)
			var rating map[string]any
			switch v := r.get("satisfaction_rating").(type) {
			case []any:
				if tt.array && len(v) == 1 {
					rating, _ = v[0].(map[string]any)
				}
			case map[string]any:
				if !tt.array {
					rating = v
				}
			}
			if rating["score"] != "good" {
				t.Fatalf("answer %s, want the rating as an array of one: %v", r.Raw, tt.array)
			}
			// The ticket's own field stays an object.
			tr := do(t, srv, "GET", fmt.Sprintf("/api/v2/tickets/%d", TicketBeaSolved), tok, nil)
			if tr.str("ticket", "satisfaction_rating", "score") != "good" {
				t.Errorf("ticket rating %s", tr.Raw)
			}
		})
	}
}

func TestUnknownRoutesAndCallStats(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
	for _, tt := range []struct{ method, path string }{
		{"POST", "/api/v2/satisfaction_ratings"}, // the wrong path of §3.2
		{"GET", "/api/v2/nothing/here.json"},
		{"DELETE", "/api/v2/users/me"},
		{"GET", "/api/v2/users/abc"},
		{"GET", "/elsewhere"},
	} {
		r := do(t, srv, tt.method, tt.path, tok, map[string]any{})
		wantStatus(t, r, http.StatusNotFound)
		if r.str("error") != "InvalidEndpoint" || r.str("description") != "Not found" {
			t.Errorf("%s %s: body %s", tt.method, tt.path, r.Raw)
		}
	}
	srv.ResetStats()
	do(t, srv, "GET", "/api/v2/users/show_many.json?ids=1", tok, nil)
	do(t, srv, "GET", "/api/v2/users/show_many?ids=2", tok, nil)
	do(t, srv, "POST", "/api/v2/tickets/105/satisfaction_rating.json", tok, rateBody("good"), withOBO(DemoBeaEmail))
	do(t, srv, "GET", "/api/v2/requests/105/comments", tok, nil, withOBO(DemoBeaEmail))
	do(t, srv, "GET", "/api/v2/widgets/77.json", tok, nil)
	want := map[string]int{
		"GET /api/v2/users/show_many":                   2,
		"POST /api/v2/tickets/{id}/satisfaction_rating": 1,
		"GET /api/v2/requests/{id}/comments":            1,
		"GET /api/v2/widgets/{id}":                      1,
	}
	got := srv.Stats().Calls
	if len(got) != len(want) {
		t.Errorf("calls %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("calls[%q] = %d, want %d (all %v)", k, got[k], v, got)
		}
	}
}

func TestConcurrentImpersonatedWrites(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, Options{})
	tok := mustToken(t, srv.Sandbox, DemoAdminEmail, "read write impersonate").AccessToken
	people := []string{DemoBeaEmail, DemoBeauEmail, DemoCarlosEmail}
	const perUser = 20
	var wg sync.WaitGroup
	for _, who := range people {
		for i := range perUser {
			wg.Go(func() {
				b := map[string]any{"request": map[string]any{"subject": who, "comment": map[string]any{"body": fmt.Sprint(i)}}}
				r := do(t, srv, "POST", "/api/v2/requests", tok, b, withOBO(who))
				if r.Status != http.StatusCreated {
					t.Errorf("create as %s: %d", who, r.Status)
				}
				do(t, srv, "GET", "/api/v2/requests?page[size]=10", tok, nil, withOBO(who))
			})
		}
	}
	wg.Wait()
	writes := srv.Writes()
	if len(writes) != len(people)*perUser {
		t.Fatalf("%d writes", len(writes))
	}
	seen := map[int64]bool{}
	for _, w := range writes {
		u, _ := srv.UserByID(w.ActorID)
		if !strings.Contains(w.Body, `"subject":"`+u.Email+`"`) {
			t.Errorf("write by %d has body %s", w.ActorID, w.Body)
		}
		tk, _ := srv.TicketByID(w.TicketID)
		if tk.RequesterID != w.ActorID || seen[w.TicketID] {
			t.Errorf("ticket %d requester %d actor %d (dup %v)", w.TicketID, tk.RequesterID, w.ActorID, seen[w.TicketID])
		}
		seen[w.TicketID] = true
	}
}
