package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// TestE2EReauthIsAFormPost checks in Chromium that a paused run's "Log in
// again" is a form POST that works without JavaScript and comes back to the
// run, and that a GET /login?reauth=1 signs nobody out.
func TestE2EReauthIsAFormPost(t *testing.T) {
	t.Parallel()
	b := newTestBrowser(t) // first: it skips when there is no chromium
	dir := t.TempDir()
	app := newTestE2EAppEnv(t, map[string]string{"DATA_DIR": dir})
	b.mustLoginAs(app, sandbox.DemoAdminEmail)
	text := mustBulkCSV(t, newTestBulkRows())
	id := b.mustUpload(app, func() { b.mustPaste(tid("pasted"), text) })

	// The admin's sign-in dies while the run waits: the run is paused.
	key, err := os.ReadFile(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "onbehalf.db"), store.Options{SecretKey: []byte(strings.TrimSpace(string(key)))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.SetRunState(context.Background(), id, []string{store.RunPreview}, store.RunPaused,
		"Zendesk no longer accepts your sign-in, so the run waits. Log in again to continue."); err != nil {
		t.Fatal(err)
	}
	runURL := app.URL + "/bulk/runs/" + strconv.FormatInt(id, 10)

	// A link cannot sign the admin out.
	b.mustNavigate(app.URL + "/login?reauth=1&return_to=/audit")
	b.mustWaitVisible(tid("signed-in"))
	if loc := b.mustLocation(); loc != app.URL+"/audit" {
		t.Errorf("GET /login?reauth=1 signed in led to %s, want /audit", loc)
	}

	b.mustNavigate(runURL)
	b.mustWaitVisible(tid("reauth"))
	b.mustReview("paused-run")
	if m := b.mustAttr(tid("reauth"), "method"); m != "post" {
		t.Errorf("the Log in again form's method is %q, want post", m)
	}
	// The form works without JavaScript.
	b.mustDisableJavaScript()
	b.mustNavigate(runURL)
	b.mustClickAndLoad(chromedp.CSS(`[data-testid="reauth"] button`))
	b.mustConsent(sandbox.DemoAdminEmail, "allow")
	b.mustWaitVisible(tid("signed-in"))
	if loc := b.mustLocation(); loc != runURL {
		t.Errorf("after logging in again the browser is at %s, want the run %s", loc, runURL)
	}
}

// TestE2ESearchAndSignInLimits checks in Chromium that an overlong search
// is refused with a sentence, and that too many sign-ins from one address
// get a page saying to wait.
func TestE2ESearchAndSignInLimits(t *testing.T) {
	t.Parallel()
	b := newTestBrowser(t) // first: it skips when there is no chromium
	app := newTestE2EAppEnv(t, map[string]string{"LOGIN_RATE_LIMIT": "4"})
	b.mustLoginAs(app, sandbox.DemoAdminEmail) // /login and the callback count as sign-ins

	b.mustNavigate(app.URL + "/users?q=" + strings.Repeat("a", 300))
	msg := b.mustText(tid("search-error"))
	if !strings.Contains(msg, "300 characters") {
		t.Errorf("an overlong search says %q, want its length and the limit", msg)
	}
	b.mustReview("search-too-long")

	// The allowance refills as the test goes on (4 a minute), so ask until
	// it runs out; a signed-in GET /login only redirects home.
	for range 10 {
		b.mustNavigate(app.URL + "/login")
		if b.count(`[data-testid="error-message"]`) > 0 {
			break
		}
	}
	msg = b.mustText(tid("error-message"))
	if !strings.Contains(msg, "Wait") {
		t.Errorf("too many sign-in requests in a minute show %q, want a page saying to wait", msg)
	}
	b.mustReview("sign-in-rate-limited")
}
