package main

// Helpers for the browser end-to-end tests: finding Chromium, starting the app
// and a headless browser, the login steps, and screenshots for review. They
// are kept separate from the tests so later flows (bulk upload) reuse them.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

const (
	// e2eTestTimeout bounds one whole browser test; at its end the browser
	// process is killed, whatever state it is in. It is generous: the
	// tests that review every page run axe-core twice a page, and on a
	// small shared machine several browsers share two cores.
	e2eTestTimeout = 120 * time.Second
	// e2eStepTimeout bounds one step (a click and its page load, a wait for
	// an element), so a missing element fails with a useful message while the
	// browser can still report where it is.
	e2eStepTimeout = 20 * time.Second
)

// requireChromium returns the path of Debian's chromium. Without it the
// browser tests are skipped, unless E2E=1 makes them required (as CI does).
func requireChromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err == nil {
		return path
	}
	if os.Getenv("E2E") == "1" {
		t.Fatalf("E2E=1 requires the browser tests, but chromium is not on PATH: %v", err)
	}
	t.Skip("browser tests skipped: chromium not found; install Debian's chromium or set E2E=1 to require them")
	return ""
}

// e2eApp is one running onbehalf in sandbox mode, as `go run .` starts it.
type e2eApp struct {
	// URL is what the app printed after "Open ".
	URL string
}

// newTestE2EApp starts the app on a free loopback port with its own data
// directory and the built-in sandbox Zendesk; it stops when the test ends.
func newTestE2EApp(t *testing.T) *e2eApp {
	t.Helper()
	return newTestE2EAppEnv(t, nil)
}

// newTestE2EAppEnv is newTestE2EApp with more settings, named as in the
// environment (e.g. ZENDESK_RATE_LIMIT).
func newTestE2EAppEnv(t *testing.T, env map[string]string) *e2eApp {
	t.Helper()
	all := map[string]string{"ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir()}
	for k, v := range env {
		all[k] = v
	}
	u, _, _ := startRun(t, all)
	return &e2eApp{URL: strings.TrimRight(u, "/")}
}

// e2eBrowser is one headless Chromium with one tab, for one test. Its
// methods named mustX fail the test (with the page's address and text) when
// the step does not succeed.
type e2eBrowser struct {
	t     *testing.T
	ctx   context.Context
	shots string // SHOTS_DIR, or "" for no screenshots
	seq   int
	// Name tells apart the screenshots of a test's browsers ("ada", "ola").
	Name string

	mu      sync.Mutex
	console []string // errors the page wrote to the console
}

// newTestBrowser starts a headless Chromium that may only reach loopback. The
// whole browser lives under a 120 s deadline and is closed (and waited for)
// when the test ends. Console errors and uncaught exceptions of the pages
// fail the test: they mean broken JS or a CSP violation.
func newTestBrowser(t *testing.T) *e2eBrowser {
	t.Helper()
	path := requireChromium(t)
	deadline, cancelDeadline := context.WithTimeout(context.Background(), e2eTestTimeout)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		// Without these Chromium tries to reach Google's servers, which the
		// machine refuses; they also keep the runs quiet and repeatable.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(deadline, opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	b := &e2eBrowser{t: t, ctx: ctx, shots: os.Getenv("SHOTS_DIR")}
	t.Cleanup(func() {
		b.mu.Lock()
		if len(b.console) > 0 {
			t.Errorf("the pages wrote errors to the browser console:\n  %s", strings.Join(b.console, "\n  "))
		}
		b.mu.Unlock()
		closeCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_ = chromedp.Cancel(closeCtx) // graceful close; the cancels below make sure
		cancel()
		cancelTab()
		cancelAlloc() // waits for the browser process to exit
		cancelDeadline()
	})
	// The first run starts the browser; it must use the tab's own context
	// (a shorter deadline here would end the whole browser with it).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if b.shots != "" {
		if err := os.MkdirAll(b.shots, 0o755); err != nil {
			t.Fatalf("create SHOTS_DIR: %v", err)
		}
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// Network entries are failed loads (a 403 error page, a missing
			// favicon): the tests assert statuses through the page content.
			if (m.Type == chromedp.ConsoleError || m.IsException()) && m.Source != "network" {
				b.mu.Lock()
				b.console = append(b.console, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line+1))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// tid selects the first element with this data-testid.
func tid(id string) chromedp.CSS {
	return chromedp.CSS(`[data-testid="` + id + `"]`)
}

// step runs one action under the step timeout.
func step[T any](b *e2eBrowser, a chromedp.Action[T]) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, e2eStepTimeout)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// fail ends the test with what the browser shows, so a failed wait says
// where the browser was and what the page said.
func (b *e2eBrowser) fail(format string, args ...any) {
	b.t.Helper()
	msg := fmt.Sprintf(format, args...)
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if len(text) > 1500 {
		text = text[:1500] + "…"
	}
	if b.shots != "" {
		b.shot("FAILED")
	}
	b.t.Fatalf("%s\n  at %s\n  page text:\n%s", msg, loc, indent(text))
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ")
}

// mustNavigate opens url and waits for its load event.
func (b *e2eBrowser) mustNavigate(url string) {
	b.t.Helper()
	if _, err := step(b, chromedp.Navigate(url)); err != nil {
		b.fail("open %s: %v", url, err)
	}
}

// mustClickAndLoad clicks the element and waits for the page that the click
// loads (a link, a form submission, a chain of redirects).
func (b *e2eBrowser) mustClickAndLoad(sel chromedp.CSS) {
	b.t.Helper()
	if _, err := step(b, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(sel))); err != nil {
		b.fail("click %s and wait for the next page: %v", sel, err)
	}
}

// mustClick clicks the element without waiting for a page load (a radio
// button, a control that changes the page in place).
func (b *e2eBrowser) mustClick(sel chromedp.CSS) {
	b.t.Helper()
	if _, err := step(b, chromedp.Click(sel)); err != nil {
		b.fail("click %s: %v", sel, err)
	}
}

// mustWaitVisible waits until the element is shown.
func (b *e2eBrowser) mustWaitVisible(sel chromedp.CSS) {
	b.t.Helper()
	if _, err := step(b, chromedp.WaitVisible(sel)); err != nil {
		b.fail("wait for %s to be visible: %v", sel, err)
	}
}

// mustText is the visible text of the element, once it is shown.
func (b *e2eBrowser) mustText(sel chromedp.CSS) string {
	b.t.Helper()
	b.mustWaitVisible(sel)
	s, err := step(b, chromedp.Text(sel))
	if err != nil {
		b.fail("read the text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// mustAttr is an attribute of the element ("" when it has none).
func (b *e2eBrowser) mustAttr(sel chromedp.CSS, name string) string {
	b.t.Helper()
	r, err := step(b, chromedp.AttributeValue(sel, name))
	if err != nil {
		b.fail("read the attribute %s of %s: %v", name, sel, err)
	}
	return r.Value
}

// mustType types text into the element, key by key, as a person would
// (so input events fire).
func (b *e2eBrowser) mustType(sel chromedp.CSS, text string) {
	b.t.Helper()
	if _, err := step(b, chromedp.SendKeys(sel, text)); err != nil {
		b.fail("type %q into %s: %v", text, sel, err)
	}
}

// mustSetValue sets a form control's value (e.g. picks a select's option).
func (b *e2eBrowser) mustSetValue(sel chromedp.CSS, value string) {
	b.t.Helper()
	if _, err := step(b, chromedp.SetValue(sel, value)); err != nil {
		b.fail("set %s to %q: %v", sel, value, err)
	}
}

// mustLocation is the address of the page shown.
func (b *e2eBrowser) mustLocation() string {
	b.t.Helper()
	loc, err := step(b, chromedp.Location())
	if err != nil {
		b.fail("read the location: %v", err)
	}
	return loc
}

// mustEval evaluates a JavaScript expression in the page.
func mustEval[T any](b *e2eBrowser, expr string) T {
	b.t.Helper()
	v, err := step(b, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail("evaluate %s: %v", expr, err)
	}
	return v
}

// count is how many elements match a CSS selector right now (no waiting).
func (b *e2eBrowser) count(css string) int {
	b.t.Helper()
	return mustEval[int](b, fmt.Sprintf("document.querySelectorAll(%q).length", css))
}

// mustDisableJavaScript turns scripts off for the tab, to check that pages
// work without them.
func (b *e2eBrowser) mustDisableJavaScript() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, e2eStepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		b.fail("disable JavaScript: %v", err)
	}
}

// shot saves a full-page PNG of what the browser shows into SHOTS_DIR (when
// set) as <test>-<nn>-<name>.png, for a person to review the screens. It
// never fails the test: screenshots are for review, not assertions.
func (b *e2eBrowser) shot(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	b.seq++
	buf, err := step(b, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	prefix := kebab(strings.TrimPrefix(b.t.Name(), "TestE2E"))
	if b.Name != "" {
		prefix += "-" + b.Name
	}
	file := filepath.Join(b.shots, fmt.Sprintf("%s-%02d-%s.png", prefix, b.seq, name))
	if err := os.WriteFile(file, buf, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
	}
}

// kebab turns "ActAsEndUser/sub_test" into "act-as-end-user-sub-test".
func kebab(s string) string {
	var sb strings.Builder
	for i, r := range s {
		switch {
		case unicode.IsUpper(r):
			if i > 0 {
				sb.WriteByte('-')
			}
			sb.WriteRune(unicode.ToLower(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			sb.WriteRune(r)
		default:
			sb.WriteByte('-')
		}
	}
	return strings.Trim(strings.ReplaceAll(sb.String(), "--", "-"), "-")
}

// mustReachConsent goes from the app's login page to the Zendesk sign-in
// and consent page by clicking "Log in with Zendesk", checks that it is the
// Zendesk the login page promised, and returns that Zendesk's base URL.
func (b *e2eBrowser) mustReachConsent(app *e2eApp) string {
	b.t.Helper()
	b.mustNavigate(app.URL + "/")
	b.mustWaitVisible(tid("login"))
	// The login page says where it sends you: "You will be sent to <code>url</code>".
	zendeskURL := mustEval[string](b, `(document.querySelector('[data-testid="login"]').closest('section').querySelector('code') || {}).textContent || ""`)
	if !strings.HasPrefix(zendeskURL, "http://127.0.0.1:") || zendeskURL == app.URL {
		b.fail("the login page names %q as the Zendesk it sends you to; want the sandbox on loopback", zendeskURL)
	}
	b.shot("login")
	b.mustClickAndLoad(tid("login"))
	b.mustWaitVisible(chromedp.CSS(`select[data-testid="user"]`))
	if loc := b.mustLocation(); !strings.HasPrefix(loc, zendeskURL+"/oauth/authorizations/new?") {
		b.fail("the login button led to %s, want the authorize page of %s", loc, zendeskURL)
	}
	b.shot("sandbox-consent")
	return zendeskURL
}

// mustConsent signs in on the sandbox's consent page as the user with this
// email and clicks decision ("allow" or "deny"), then waits for the page the
// app answers with.
func (b *e2eBrowser) mustConsent(email, decision string) {
	b.t.Helper()
	b.mustSetValue(chromedp.CSS(`select[data-testid="user"]`), email)
	if got := mustEval[string](b, `document.querySelector('select[data-testid="user"]').value`); got != email {
		b.fail("the sandbox's user list has no %s (selected %q)", email, got)
	}
	b.mustClickAndLoad(tid(decision))
}

// mustLoginAs logs in through the sandbox Zendesk as the admin with this
// email and waits until the app shows the admin signed in.
func (b *e2eBrowser) mustLoginAs(app *e2eApp, email string) {
	b.t.Helper()
	b.mustReachConsent(app)
	b.mustConsent(email, "allow")
	b.mustWaitVisible(tid("signed-in"))
	b.shot("home")
}

// e2eWidths are the widths every reviewed page is looked at: a laptop's
// window and a small phone's.
var e2eWidths = []int64{1280, 390}

// mustReview looks at the page shown at each of e2eWidths: a screenshot for
// a person to review (SHOTS_DIR), a check that nothing but the wide tables'
// own scroll boxes is wider than the screen, and an axe-core accessibility
// check. The window returns to 1280 px afterwards.
func (b *e2eBrowser) mustReview(name string) {
	b.t.Helper()
	defer b.mustSetWidth(1280)
	for _, w := range e2eWidths {
		b.mustSetWidth(w)
		b.shot(fmt.Sprintf("%s-%dpx", name, w))
		if over := mustEval[int](b, `document.documentElement.scrollWidth - document.documentElement.clientWidth`); over > 0 {
			b.t.Errorf("%s at %d px: the page is %d px wider than the screen", name, w, over)
		}
		b.checkAccessibility(fmt.Sprintf("%s at %d px", name, w))
	}
}

// mustSetWidth makes the viewport w px wide (and 900 high).
func (b *e2eBrowser) mustSetWidth(w int64) {
	b.t.Helper()
	if _, err := step(b, chromedp.EmulateViewport(w, 900, chromedp.EmulatePortrait)); err != nil {
		b.fail("set the viewport to %d px: %v", w, err)
	}
}

// axeViolation is one rule axe-core found broken, with the elements.
type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// checkAccessibility runs axe-core on the page shown and fails the test for
// each violation. axe-core is not part of the repository: AXE_JS names its
// axe.min.js (npm install --prefix DIR axe-core@4 gives
// DIR/node_modules/axe-core/axe.min.js; .ci/run does so). Without AXE_JS the
// check is skipped with a note, unless E2E=1 makes it required.
func (b *e2eBrowser) checkAccessibility(what string) {
	b.t.Helper()
	path := os.Getenv("AXE_JS")
	if path == "" {
		if os.Getenv("E2E") == "1" {
			b.t.Fatalf("E2E=1 requires the accessibility checks, but AXE_JS is not set: run npm install --prefix DIR axe-core@4 and set AXE_JS=DIR/node_modules/axe-core/axe.min.js")
		}
		b.t.Logf("accessibility check of %s skipped: set AXE_JS to axe-core's axe.min.js to run it", what)
		return
	}
	src, err := os.ReadFile(path)
	if err != nil {
		b.t.Fatalf("read axe-core from AXE_JS: %v", err)
	}
	if !mustEval[bool](b, `typeof window.axe === "object"`) {
		if _, err := step(b, chromedp.Evaluate[chromedp.Void](string(src))); err != nil {
			b.fail("load axe-core into the page: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(b.ctx, e2eStepTimeout)
	defer cancel()
	found, err := chromedp.Run(ctx, chromedp.Evaluate[[]axeViolation](`axe.run(document, {resultTypes: ["violations"]}).then(r =>
		r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help,
			nodes: v.nodes.map(n => n.target.join(" ") + " — " + (n.failureSummary || "").replace(/\s+/g, " "))})))`, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail("run axe-core on %s: %v", what, err)
	}
	for _, v := range found {
		b.t.Errorf("accessibility (axe-core) on %s: %s (%s): %s\n  %s", what, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n  "))
	}
	if len(found) == 0 {
		b.t.Logf("axe-core: no violations on %s", what)
	}
}

// newTab opens a second tab of the same browser (same cookies, its own
// sessionStorage), closed when the test ends.
func (b *e2eBrowser) newTab(name string) *e2eBrowser {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("open a second tab: %v", err)
	}
	return &e2eBrowser{t: b.t, ctx: ctx, shots: b.shots, Name: name}
}

// mustClearCookies drops every cookie of the browser: the app's session
// ends, as after a timeout or a restart with a new key.
func (b *e2eBrowser) mustClearCookies() {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, e2eStepTimeout)
	defer cancel()
	if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		b.fail("clear the cookies: %v", err)
	}
}
