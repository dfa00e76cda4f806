package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// A big upload sent after the session ended is refused before its body is
// read (nothing costly before sign-in). The browser must still show the
// refusal page, not a connection reset.
func TestE2EBigUploadAfterTheSessionEndedShowsThePage(t *testing.T) {
	t.Parallel()
	b := newTestBrowser(t)
	app := newTestE2EApp(t)
	b.mustLoginAs(app, sandbox.DemoAdminEmail)
	b.mustNavigate(app.URL + "/bulk")
	path := filepath.Join(t.TempDir(), "big.csv")
	row := []byte("bea@example.com,105,good,padding padding padding padding padding\n")
	if err := os.WriteFile(path, append([]byte("email,ticket_id,score,comment\n"), bytes.Repeat(row, 15<<20/len(row))...), 0o600); err != nil {
		t.Fatal(err)
	}
	b.mustSetUploadFile(chromedp.CSS(`input[type="file"]`), path)
	b.mustClearCookies() // the session ends
	b.mustClickAndLoad(chromedp.CSS(`[data-testid="upload-form"] button[type="submit"]`))
	if h := b.mustText(chromedp.CSS("h1")); h != "This form has expired" {
		t.Errorf("a big upload after the session ended shows %q, want the refusal page", h)
	}
}
