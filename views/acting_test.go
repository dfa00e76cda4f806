package views

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"
)

// The next-page link carries Zendesk's cursor whole: a cursor is opaque and
// may hold "+", "/" or "=", which a query string would otherwise read as a
// space or a separator.
func TestRequestsNextPageKeepsTheCursorWhole(t *testing.T) {
	cursor := "eyJvIjoiLWNyZWF0ZWRfYXQ+In0=/x&y"
	p := RequestsPage{Page: Page{Title: "Requests", ActingAs: &EndUser{ID: 1, Name: "Bea"}}, Next: cursor,
		Requests: []RequestRow{{ID: 1, Subject: "x"}}}
	var b bytes.Buffer
	if err := Requests(p).Render(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	i := strings.Index(html, `href="/as?after=`)
	if i < 0 {
		t.Fatalf("no next-page link in:\n%s", html)
	}
	href := html[i+len(`href="`):]
	href = strings.ReplaceAll(href[:strings.IndexByte(href, '"')], "&amp;", "&")
	u, err := url.Parse(href)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Query().Get("after"); got != cursor {
		t.Errorf("the link %q gives the cursor %q, want %q", href, got, cursor)
	}
}
