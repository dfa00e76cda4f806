package zendesk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/onbehalf/onbehalf/zendesk"
)

func TestNewValidatesBaseURL(t *testing.T) {
	t.Parallel()
	ts := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: testToken})
	tests := []struct {
		base   string
		wantOK bool
	}{
		{"https://acme.zendesk.com", true},
		{"https://acme.zendesk.com/", true},
		{"http://127.0.0.1:8080", true},
		{"http://localhost:9000", true},
		{"http://[::1]:9000", true},
		{"http://acme.zendesk.com", false},
		{"ftp://acme.zendesk.com", false},
		{"acme.zendesk.com", false},
		{"https://acme.zendesk.com/api/v2", false},
		{"https://acme.zendesk.com?x=1", false},
		{"https://user:pw@acme.zendesk.com", false},
		{"", false},
		{"://", false},
	}
	for _, tt := range tests {
		t.Run(tt.base, func(t *testing.T) {
			t.Parallel()
			c, err := zendesk.New(tt.base, ts)
			if (err == nil) != tt.wantOK {
				t.Fatalf("New(%q) error = %v, want ok=%v", tt.base, err, tt.wantOK)
			}
			if err == nil && strings.HasSuffix(c.BaseURL(), "/") {
				t.Errorf("BaseURL() = %q has a trailing slash", c.BaseURL())
			}
		})
	}
	t.Run("nil token source", func(t *testing.T) {
		t.Parallel()
		if _, err := zendesk.New("https://acme.zendesk.com", nil); err == nil {
			t.Error("New with a nil token source succeeded")
		}
	})
}

// echoHandler answers /api/v2/users/me with the X-On-Behalf-Of it received.
func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := r.Header.Get("X-On-Behalf-Of")
		id := int64(1)
		if who != "" {
			id = 1000 + int64(len(who))
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"user": map[string]any{"id": id, "email": who, "role": "end-user"}})
	})
}

func TestAsReturnsIndependentCopies(t *testing.T) {
	t.Parallel()
	base := newTestClient(t, echoHandler())
	bea := base.As("bea@example.com")
	beau := bea.As("beau@example.com")
	byID := beau.AsID(12)
	self := byID.As("")

	for _, tt := range []struct {
		c    *zendesk.Client
		want string
	}{
		{base, ""}, {bea, "bea@example.com"}, {beau, "beau@example.com"}, {byID, "12"}, {self, ""},
	} {
		if got := tt.c.ActingAs(); got != tt.want {
			t.Errorf("ActingAs() = %q, want %q", got, tt.want)
		}
		u, err := tt.c.Me(t.Context())
		if err != nil {
			t.Fatalf("Me as %q: %v", tt.want, err)
		}
		if u.Email != tt.want {
			t.Errorf("server saw X-On-Behalf-Of %q, want %q", u.Email, tt.want)
		}
	}
}

func TestAsConcurrentValuesNeverMix(t *testing.T) {
	t.Parallel()
	base := newTestClient(t, echoHandler())
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			who := fmt.Sprintf("user%d@example.com", i)
			c := base.As(who)
			for range 3 {
				u, err := c.Me(context.Background())
				if err != nil {
					errs <- err
					return
				}
				if u.Email != who {
					errs <- fmt.Errorf("acting as %q, server saw %q", who, u.Email)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if base.ActingAs() != "" {
		t.Errorf("base client now acts as %q", base.ActingAs())
	}
}

func TestContextDeadlineHonoured(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		case <-time.After(30 * time.Second):
		}
	}))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.AutocompleteUsers(ctx, "bea")
	elapsed := time.Since(start)
	if !errors.Is(err, zendesk.ErrNetwork) {
		t.Errorf("err = %v, want ErrNetwork", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want it to wrap context.DeadlineExceeded", err)
	}
	// The handler would hold the call for 30 s; anything well below that
	// shows the deadline, not the server, ended the call.
	if elapsed > 10*time.Second {
		t.Errorf("call took %v despite a 50ms deadline", elapsed)
	}
}

func TestCancelledContextSendsNothing(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
	}))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.CreateRequest(ctx, zendesk.NewRequest{Subject: "s", Body: "b"})
	if !errors.Is(err, context.Canceled) || !errors.Is(err, zendesk.ErrNetwork) {
		t.Errorf("err = %v, want ErrNetwork wrapping context.Canceled", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 0 {
		t.Errorf("server got %d calls with a cancelled context", calls)
	}
}

// dropHandler hijacks the connection and closes it without answering.
func dropHandler(t *testing.T) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
	})
}

func TestDroppedConnectionIsNetworkError(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, dropHandler(t))
	_, err := c.SearchUsers(t.Context(), "email:secret-person@example.com", 2, 10)
	ze := mustZendeskError(t, err)
	if ze.Kind != zendesk.ErrNetwork || ze.Status != 0 {
		t.Errorf("kind %v status %d, want network error without status", ze.Kind, ze.Status)
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Fatalf("err %v does not wrap a *url.Error", err)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("err = %v, want it to wrap EOF", err)
	}
	if strings.Contains(err.Error(), "secret-person") || strings.Contains(err.Error(), "?") {
		t.Errorf("Error() leaks the query string: %q", err.Error())
	}
	if !zendesk.IsRetryable(err) {
		t.Error("a dropped connection is not retryable")
	}
}

func TestConnectionRefusedIsNetworkError(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := mustNew(t, "http://"+addr, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: testToken}))
	_, err = c.ShowTicket(t.Context(), 1)
	if !errors.Is(err, zendesk.ErrNetwork) {
		t.Errorf("err = %v, want ErrNetwork", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		t.Errorf("err = %v, want the *net.OpError inspectable", err)
	}
}

// TestTokenNeverInErrorStrings uses a hostile server that echoes the
// Authorization header back in every error shape.
func TestTokenNeverInErrorStrings(t *testing.T) {
	t.Parallel()
	shapes := []struct {
		status int
		ctype  string
		body   string
	}{
		{401, "application/json", `{"error":"invalid_token","error_description":"bad %s"}`},
		{403, "application/json", `{"error":{"title":"Forbidden %s","message":"no %s"}}`},
		{422, "application/json", `{"error":"RecordInvalid","description":"x","details":{"%s":[{"description":"field %s","error":"%s"}]}}`},
		{400, "application/json", `{"errors":[{"code":"%s","title":"t %s"},{"code":"c","title":"%s"}]}`},
		{400, "text/plain", "you sent %s"},
		{429, "text/plain", strings.Repeat("x", 290) + "%s"},
		{500, "application/json", `{"error":"%s"}`},
	}
	for _, sh := range shapes {
		t.Run(fmt.Sprintf("%d %s", sh.status, sh.ctype), func(t *testing.T) {
			t.Parallel()
			c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				auth := r.Header.Get("Authorization")
				if auth != "Bearer "+testToken {
					t.Errorf("Authorization = %q", auth)
				}
				w.Header().Set("Content-Type", sh.ctype)
				w.WriteHeader(sh.status)
				fmt.Fprint(w, strings.ReplaceAll(sh.body, "%s", auth))
			}))
			_, err := c.SearchUsers(t.Context(), "query-secret", 1, 5)
			if err == nil {
				t.Fatal("no error")
			}
			ze := mustZendeskError(t, err)
			for _, s := range []string{err.Error(), fmt.Sprintf("%+v", ze), fmt.Sprint(ze.Details)} {
				if strings.Contains(s, testToken) || strings.Contains(s, testToken[:12]) {
					t.Errorf("error text contains the token: %q", s)
				}
				if strings.Contains(s, "query-secret") {
					t.Errorf("error text contains the query: %q", s)
				}
			}
		})
	}
}

func TestRequestHeadersAndBodies(t *testing.T) {
	t.Parallel()
	type seen struct {
		Method, Path, Query             string
		Accept, ContentType, OnBehalfOf string
		Body                            string
	}
	var mu sync.Mutex
	var got []seen
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Accept"), r.Header.Get("Content-Type"),
			r.Header.Get("X-On-Behalf-Of"), string(b)})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/satisfaction_rating"):
			io.WriteString(w, `{"satisfaction_rating":{"id":5,"score":"bad"}}`)
		case r.Method == http.MethodPost:
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"request":{"id":300,"status":"new"}}`)
		default:
			io.WriteString(w, `{"request":{"id":300,"status":"open"}}`)
		}
	}))
	bea := c.As("bea@example.com")
	ctx := t.Context()
	if _, err := bea.CreateRequest(ctx, zendesk.NewRequest{Subject: "Printer", Body: "It is on fire"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bea.UpdateRequest(ctx, 300, zendesk.RequestUpdate{Comment: "Still burning", Solved: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := bea.UpdateRequest(ctx, 300, zendesk.RequestUpdate{Solved: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := bea.RateTicket(ctx, 105, zendesk.RatingInput{Score: "bad", Comment: "slow", ReasonCode: 7}); err != nil {
		t.Fatal(err)
	}
	if _, err := bea.RateTicket(ctx, 105, zendesk.RatingInput{Score: "good"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListRequests(ctx, zendesk.ListRequestsOptions{PageSize: 500, After: "abc", SortBy: "updated_at", SortOrder: "desc", Status: []string{"solved", "open"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := bea.UpdateRequest(ctx, 300, zendesk.RequestUpdate{}); err == nil {
		t.Error("an empty update succeeded")
	}
	const js = "application/json"
	want := []seen{
		{"POST", "/api/v2/requests", "", js, js, "bea@example.com", `{"request":{"comment":{"body":"It is on fire"},"subject":"Printer"}}`},
		{"PUT", "/api/v2/requests/300", "", js, js, "bea@example.com", `{"request":{"comment":{"body":"Still burning"},"solved":true}}`},
		{"PUT", "/api/v2/requests/300", "", js, js, "bea@example.com", `{"request":{"solved":true}}`},
		{"POST", "/api/v2/tickets/105/satisfaction_rating", "", js, js, "bea@example.com", `{"satisfaction_rating":{"comment":"slow","reason_code":7,"score":"bad"}}`},
		{"POST", "/api/v2/tickets/105/satisfaction_rating", "", js, js, "bea@example.com", `{"satisfaction_rating":{"score":"good"}}`},
		{"GET", "/api/v2/requests", "page%5Bafter%5D=abc&page%5Bsize%5D=100&sort=-updated_at&sort_by=updated_at&sort_order=desc&status=solved%2Copen", js, "", "", ""},
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestDecoding(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v2/requests/1":
			io.WriteString(w, `{"request":{"id":1,"solved":"true","can_be_solved_by_me":true,"status":"solved","priority":null,"created_at":"2026-01-02T03:04:05Z"}}`)
		case "/api/v2/requests/2":
			io.WriteString(w, `{"request":{"id":2,"solved":false,"status":"open"}}`)
		case "/api/v2/tickets/1":
			io.WriteString(w, `{"ticket":{"id":1,"status":"solved","satisfaction_rating":{"score":"good","id":77,"comment":null}}}`)
		case "/api/v2/tickets/2":
			io.WriteString(w, `{"ticket":{"id":2,"status":"solved","satisfaction_rating":{"score":"offered"}}}`)
		case "/api/v2/tickets/3":
			io.WriteString(w, `{"ticket":{"id":3,"status":"open","satisfaction_rating":null}}`)
		case "/api/v2/tickets/1/satisfaction_rating":
			io.WriteString(w, `{"satisfaction_rating":[{"id":9,"score":"good","ticket_id":1}]}`)
		case "/api/v2/tickets/2/satisfaction_rating":
			io.WriteString(w, `{"satisfaction_rating":{"id":10,"score":"bad","ticket_id":2,"reason_id":3}}`)
		case "/api/v2/tickets/3/satisfaction_rating":
			io.WriteString(w, `{"satisfaction_rating":[]}`)
		case "/api/v2/users/me":
			io.WriteString(w, `{"user":{"id":null,"name":"Anonymous user","role":"end-user"}}`)
		case "/api/v2/users/10":
			io.WriteString(w, `{"user":{"id":10,"role":"end-user","external_id":null,"organization_id":null,"last_login_at":null,"verified":true}}`)
		case "/api/v2/users/1":
			io.WriteString(w, `{"user":{"id":1,"role":"admin"}}`)
		default:
			http.NotFound(w, r)
		}
	}))
	ctx := t.Context()

	r1, err := c.ShowRequest(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !r1.Solved || !r1.CanBeSolvedByMe || r1.Priority != "" || !r1.CreatedAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("request 1 = %+v", r1)
	}
	if r2, err := c.ShowRequest(ctx, 2); err != nil || r2.Solved {
		t.Errorf("request 2 = %+v, %v; want solved false", r2, err)
	}

	for id, want := range map[int64]bool{1: true, 2: false, 3: false} {
		tk, err := c.ShowTicket(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Rated() != want {
			t.Errorf("ticket %d Rated() = %v, want %v (%+v)", id, tk.Rated(), want, tk.SatisfactionRating)
		}
	}

	if sr, err := c.RateTicket(ctx, 1, zendesk.RatingInput{Score: "good"}); err != nil || sr.ID != 9 || sr.Score != "good" {
		t.Errorf("array rating = %+v, %v", sr, err)
	}
	if sr, err := c.RateTicket(ctx, 2, zendesk.RatingInput{Score: "bad"}); err != nil || sr.ID != 10 || sr.ReasonID != 3 {
		t.Errorf("object rating = %+v, %v", sr, err)
	}
	if _, err := c.RateTicket(ctx, 3, zendesk.RatingInput{Score: "good"}); !errors.Is(err, zendesk.ErrUnexpected) {
		t.Errorf("empty rating array: err = %v, want ErrUnexpected", err)
	}

	if _, err := c.Me(ctx); !errors.Is(err, zendesk.ErrTokenInvalid) {
		t.Errorf("anonymous Me: err = %v, want ErrTokenInvalid", err)
	}
	u, err := c.ShowUser(ctx, 10)
	if err != nil || !u.IsEndUser() || u.IsAdmin() || !u.Verified || !u.LastLoginAt.IsZero() {
		t.Errorf("user 10 = %+v, %v", u, err)
	}
	if a, err := c.ShowUser(ctx, 1); err != nil || a.IsEndUser() || !a.IsAdmin() {
		t.Errorf("user 1 = %+v, %v", a, err)
	}
}

func TestShowManyChunksAndDedupes(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var batches [][]string
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids := strings.Split(r.URL.Query().Get("ids"), ",")
		mu.Lock()
		batches = append(batches, ids)
		mu.Unlock()
		key := "users"
		if strings.HasPrefix(r.URL.Path, "/api/v2/tickets/") {
			key = "tickets"
		}
		var items []map[string]any
		for _, id := range ids {
			n, _ := strconv.Atoi(id)
			if n%50 != 0 { // ids divisible by 50 are "unknown"
				items = append(items, map[string]any{"id": n})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{key: items})
	}))
	var ids []int64
	for i := range 250 {
		ids = append(ids, int64(i+1))
	}
	ids = append(ids, 1, 2, 3) // duplicates

	users, err := c.ShowManyUsers(t.Context(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 245 {
		t.Errorf("got %d users, want 245", len(users))
	}
	tickets, err := c.ShowManyTickets(t.Context(), ids[:150])
	if err != nil {
		t.Fatal(err)
	}
	if len(tickets) != 147 {
		t.Errorf("got %d tickets, want 147", len(tickets))
	}
	none, err := c.ShowManyUsers(t.Context(), nil)
	if err != nil || len(none) != 0 {
		t.Errorf("no ids: %v, %v", none, err)
	}
	mu.Lock()
	defer mu.Unlock()
	var sizes []int
	for _, b := range batches {
		sizes = append(sizes, len(b))
	}
	if diff := cmp.Diff([]int{100, 100, 50, 100, 50}, sizes); diff != "" {
		t.Errorf("batch sizes (-want +got):\n%s", diff)
	}
}

func TestSearchUsersPaging(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("query") != "name:bea" {
			t.Errorf("query = %q", q.Get("query"))
		}
		switch q.Get("page") {
		case "":
			if q.Get("per_page") != "100" {
				t.Errorf("per_page = %q, want 100 (clamped)", q.Get("per_page"))
			}
			io.WriteString(w, `{"users":[{"id":1}],"next_page":"https://x.zendesk.com/api/v2/users/search?page=2&per_page=100&query=name%3Abea","count":3}`)
		case "2":
			io.WriteString(w, `{"users":[{"id":2}],"next_page":"https://x.zendesk.com/api/v2/users/search?per_page=100","count":3}`)
		default:
			io.WriteString(w, `{"users":[{"id":3}],"next_page":null,"count":3}`)
		}
	}))
	tests := []struct {
		page     int
		wantNext int
	}{{0, 2}, {2, 3}, {3, 0}}
	for _, tt := range tests {
		p, err := c.SearchUsers(t.Context(), "name:bea", tt.page, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if p.NextPage != tt.wantNext || p.Count != 3 || len(p.Users) != 1 {
			t.Errorf("page %d: %+v, want next %d", tt.page, p, tt.wantNext)
		}
	}
}

func TestListCommentsFollowsPages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter, q url.Values)
		want    []int64
		wantErr zendesk.Kind
	}{
		{
			name: "cursor",
			handler: func(w http.ResponseWriter, q url.Values) {
				switch q.Get("page[after]") {
				case "":
					io.WriteString(w, `{"comments":[{"id":1},{"id":2}],"meta":{"has_more":true,"after_cursor":"c1"}}`)
				case "c1":
					io.WriteString(w, `{"comments":[{"id":3}],"meta":{"has_more":true,"after_cursor":"c2"}}`)
				default:
					io.WriteString(w, `{"comments":[{"id":4}],"meta":{"has_more":false,"after_cursor":"c3"}}`)
				}
			},
			want: []int64{1, 2, 3, 4},
		},
		{
			name: "offset",
			handler: func(w http.ResponseWriter, q url.Values) {
				switch q.Get("page") {
				case "":
					io.WriteString(w, `{"comments":[{"id":1}],"next_page":"http://h/api/v2/requests/7/comments?page=2","count":2}`)
				default:
					io.WriteString(w, `{"comments":[{"id":2}],"next_page":null,"count":2}`)
				}
			},
			want: []int64{1, 2},
		},
		{
			name: "cursor that does not advance",
			handler: func(w http.ResponseWriter, q url.Values) {
				io.WriteString(w, `{"comments":[{"id":1}],"meta":{"has_more":true,"after_cursor":"same"}}`)
			},
			wantErr: zendesk.ErrUnexpected,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v2/requests/7/comments" {
					t.Errorf("path %q", r.URL.Path)
				}
				tt.handler(w, r.URL.Query())
			}))
			comments, err := c.ListComments(t.Context(), 7)
			if tt.wantErr != "" {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []int64
			for _, cm := range comments {
				ids = append(ids, cm.ID)
			}
			if diff := cmp.Diff(tt.want, ids); diff != "" {
				t.Errorf("comment ids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAllRequestsStopsOnBrokenCursor(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"requests":[{"id":1}],"meta":{"has_more":true,"after_cursor":""}}`)
	}))
	var ids []int64
	var errs []error
	for r, err := range c.AllRequests(t.Context(), zendesk.ListRequestsOptions{}) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids = append(ids, r.ID)
	}
	if len(ids) != 1 || len(errs) != 1 || !errors.Is(errs[0], zendesk.ErrUnexpected) {
		t.Errorf("ids %v errs %v; want one request then one ErrUnexpected", ids, errs)
	}
}

func TestAllRequestsStopsWhenConsumerBreaks(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		fmt.Fprintf(w, `{"requests":[{"id":%d},{"id":%d}],"meta":{"has_more":true,"after_cursor":"c%d"}}`, 2*n-1, 2*n, n)
	}))
	seen := 0
	for _, err := range c.AllRequests(t.Context(), zendesk.ListRequestsOptions{PageSize: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		seen++
		if seen == 3 {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Errorf("server got %d list calls for 3 items of pages of 2, want 2", calls)
	}
}

func TestControlCharactersInActingUserAreRefusedLocally(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := 0
	c := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
	}))
	_, err := c.As("bea@example.com\r\nX-Evil: 1").Me(t.Context())
	if !errors.Is(err, zendesk.ErrBadRequest) || zendesk.IsRetryable(err) {
		t.Errorf("err = %v, want a permanent ErrBadRequest", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 0 {
		t.Errorf("server got %d calls", calls)
	}
}

func TestWriteInFlightOutlivesCallerDeadline(t *testing.T) {
	t.Parallel()
	var completed atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		if r.Method == http.MethodGet {
			w.Write([]byte(`{"request":{"id":7}}`))
			return
		}
		completed.Add(1)
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"request":{"id":7,"status":"new"}}`))
	}))
	t.Cleanup(srv.Close)
	c, err := zendesk.New(srv.URL, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok"}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r, err := c.CreateRequest(ctx, zendesk.NewRequest{Subject: "s", Body: "b"})
	if err != nil || r.ID != 7 {
		t.Errorf("a write whose caller's deadline passed in flight: %v, %+v; want Zendesk's answer", err, r)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := c.ShowRequest(ctx2, 7); !errors.Is(err, zendesk.ErrNetwork) {
		t.Errorf("a read past its deadline: %v, want ErrNetwork (reads stay cancellable)", err)
	}
	ctx3, cancel3 := context.WithCancel(context.Background())
	cancel3()
	before := completed.Load()
	if _, err := c.CreateRequest(ctx3, zendesk.NewRequest{Subject: "s", Body: "b"}); err == nil {
		t.Error("a write whose context was cancelled before sending was sent")
	}
	time.Sleep(400 * time.Millisecond)
	if completed.Load() != before {
		t.Error("a write cancelled before it was sent reached the server")
	}
}
