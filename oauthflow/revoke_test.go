package oauthflow_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/onbehalf/onbehalf/oauthflow"
)

// fakeRevokeServer plays Zendesk's token endpoints for one token with id 42,
// in one of several behaviours, and records the calls.
type fakeRevokeServer struct {
	*httptest.Server
	mu    sync.Mutex
	alive bool
	calls []string
}

type revokeMode struct {
	startDead     bool // the token is dead from the start
	ignoreCurrent bool // DELETE current.json answers 204 and does nothing
	ignoreByID    bool // DELETE tokens/{id}.json answers 204 and does nothing
	noRead        bool // GET current.json answers 403 for a live token (no read scope)
	lookupStatus  int  // if set, GET current.json answers this status with a body echoing the token
}

func newTestRevokeServer(t *testing.T, m revokeMode) *fakeRevokeServer {
	t.Helper()
	f := &fakeRevokeServer{alive: !m.startDead}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls = append(f.calls, r.Method+" "+r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		if !f.alive || r.Header.Get("Authorization") != "Bearer "+fakeAccess {
			w.Header().Set("WWW-Authenticate", `Bearer realm="Zendesk::OAuth Bearer Token Authentication", error="invalid_token"`)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_token","error_description":"The access token provided is expired, revoked, malformed or invalid for other reasons."}`)
			return
		}
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v2/oauth/tokens/current.json":
			if m.lookupStatus != 0 {
				w.WriteHeader(m.lookupStatus)
				fmt.Fprintf(w, `{"echo":"%s"}`, r.Header.Get("Authorization"))
				return
			}
			if m.noRead {
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `{"error":{"title":"Forbidden","message":"You do not have access to this page."}}`)
				return
			}
			fmt.Fprintf(w, `{"token":{"id":42,"user_id":1,"token":"%s","scopes":["read"]}}`, fakeAccess[:10])
		case r.Method == http.MethodDelete && r.URL.Path == "/api/v2/oauth/tokens/current.json":
			if !m.ignoreCurrent {
				f.alive = false
			}
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodDelete && r.URL.Path == "/api/v2/oauth/tokens/42.json":
			if !m.ignoreByID {
				f.alive = false
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"error":"InvalidEndpoint","description":"Not found"}`)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeRevokeServer) state() (bool, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.alive, append([]string(nil), f.calls...)
}

func TestRevokeWithFakes(t *testing.T) {
	t.Parallel()
	const (
		getCur = "GET /api/v2/oauth/tokens/current.json"
		delCur = "DELETE /api/v2/oauth/tokens/current.json"
		delID  = "DELETE /api/v2/oauth/tokens/42.json"
	)
	tests := []struct {
		name      string
		mode      revokeMode
		wantErr   bool
		wantCalls []string
	}{
		{"already dead", revokeMode{startDead: true}, false, []string{getCur}},
		{"delete current works", revokeMode{}, false, []string{getCur, delCur, getCur}},
		{"delete current ignored", revokeMode{ignoreCurrent: true}, false, []string{getCur, delCur, getCur, delID, getCur}},
		{"nothing works", revokeMode{ignoreCurrent: true, ignoreByID: true}, true, []string{getCur, delCur, getCur, delID, getCur}},
		{"no read scope", revokeMode{noRead: true}, false, []string{getCur, delCur, getCur}},
		{"no read scope, current ignored", revokeMode{noRead: true, ignoreCurrent: true}, true, []string{getCur, delCur, getCur}},
		{"lookup fails", revokeMode{lookupStatus: http.StatusInternalServerError}, true, []string{getCur}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := newTestRevokeServer(t, tt.mode)
			err := newTestFakeFlow(t, srv.URL, fakeSecret).Revoke(context.Background(), fakeAccess)
			if (err != nil) != tt.wantErr {
				t.Errorf("Revoke = %v, want error %v", err, tt.wantErr)
			}
			assertNoSecret(t, err, fakeSecrets...)
			if err != nil && strings.Contains(err.Error(), fakeAccess[:10]) {
				t.Errorf("Revoke error %q holds a token prefix", err)
			}
			alive, calls := srv.state()
			if alive == !tt.wantErr && !tt.mode.startDead {
				t.Errorf("token alive = %v after Revoke returned %v", alive, err)
			}
			if !reflect.DeepEqual(calls, tt.wantCalls) {
				t.Errorf("calls = %q\nwant %q", calls, tt.wantCalls)
			}
		})
	}
}

func TestRevokeUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	err := newTestFakeFlow(t, base, "").Revoke(context.Background(), fakeAccess)
	if err == nil {
		t.Fatal("Revoke against a closed port = nil, want an error")
	}
	assertNoSecret(t, err, fakeSecrets...)
	var se *oauthflow.StatusError
	if errors.As(err, &se) {
		t.Errorf("a transport failure should not look like an HTTP status: %v", err)
	}
}
