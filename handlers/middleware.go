package handlers

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"github.com/onbehalf/onbehalf/store"
)

// Context keys for values middleware hands to handlers.
const (
	ctxRequestID = "request_id"
	ctxSession   = "session"
)

// Session value keys. The admin and grant id keys are the store's, so the
// session table can index sessions by admin (to end them all on
// invalid_grant) and by grant (for the grant sweep).
const (
	keyAdminID      = store.SessionAdminKey
	keyAdminName    = "admin_name"
	keyAdminEmail   = "admin_email"
	keyGrantID      = store.SessionGrantKey
	keyCSRF         = "csrf"
	keyOAuthState   = "oauth_state"
	keyOAuthVerify  = "oauth_verifier"
	keyOAuthReturn  = "oauth_return"
	keyOAuthStarted = "oauth_started"
)

// requestID gives every request a fresh id (incoming X-Request-Id headers
// are not trusted: they could forge log lines).
func requestID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			b := make([]byte, 8)
			rand.Read(b)
			id := hex.EncodeToString(b)
			c.Set(ctxRequestID, id)
			c.Response().Header().Set(echo.HeaderXRequestID, id)
			return next(c)
		}
	}
}

// accessLog writes one structured line per request. It logs the path only:
// query strings carry OAuth codes and state, which must never reach logs.
func (a *app) accessLog() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			req, res := c.Request(), c.Response()
			a.metrics.ObserveHTTP(c.Path(), res.Status, time.Since(start))
			level := slog.LevelInfo
			if res.Status >= 500 {
				level = slog.LevelError
			}
			a.log.LogAttrs(req.Context(), level, "http",
				slog.String("request_id", requestIDOf(c)),
				slog.String("method", req.Method),
				slog.String("path", req.URL.Path),
				slog.String("route", c.Path()),
				slog.Int("status", res.Status),
				slog.Int64("bytes", res.Size),
				slog.Duration("duration", time.Since(start)),
				slog.String("remote", c.RealIP()),
			)
			return nil
		}
	}
}

func requestIDOf(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// securityHeaders sets security promise 9 on every response: a CSP with no
// inline script, no framing, no referrer, nosniff. Pages hold personal data,
// so they are not cached. Forms may post to this app only, whose answer may
// redirect to zendeskOrigin: "Log in again" is a form whose answer goes on to
// Zendesk's authorize page, and browsers apply form-action to redirects.
func securityHeaders(https bool, zendeskOrigin string) echo.MiddlewareFunc {
	csp := "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; form-action 'self' " + zendeskOrigin + "; frame-ancestors 'none'; base-uri 'none'"
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Content-Type-Options", "nosniff")
			// Addresses (a search, a user's id) go to no other site; this
			// site's own pages get them, so a refused form can lead back
			// to the page it was on (formPage).
			h.Set("Referrer-Policy", "same-origin")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Cross-Origin-Opener-Policy", "same-origin")
			h.Set("Cache-Control", "no-store")
			if https {
				h.Set("Strict-Transport-Security", "max-age=31536000")
			}
			return next(c)
		}
	}
}

// withSession loads the server-side session for the request.
func (a *app) withSession() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if strings.HasPrefix(c.Request().URL.Path, "/static/") || c.Request().URL.Path == "/healthz" {
				return next(c)
			}
			// "" is the store's cookie name: __Host-onbehalf on https.
			sess, err := a.sessions.Get(c.Request(), "")
			if err != nil {
				// A cookie that fails to verify yields a fresh session; any
				// other error is the store's.
				if sess == nil {
					return err
				}
			}
			c.Set(ctxSession, sess)
			return next(c)
		}
	}
}

// sessionName is the session cookie's name on http; on https it carries
// the __Host- prefix (store.SessionOptions.CookieName).
const sessionName = store.DefaultSessionCookieName

func sessionOf(c echo.Context) *sessions.Session {
	s, _ := c.Get(ctxSession).(*sessions.Session)
	return s
}

// checkCSRF requires every state-changing request to carry the form token
// bound to its session (security promise 5, second layer; the first is
// http.CrossOriginProtection), compared in constant time.
//
// Nothing costly happens before sign-in (promise 12): a POST whose session
// holds no token (no one is signed in) is refused before a byte of its body
// is read. With a session, the token comes from the X-CSRF-Token header or
// the form: a urlencoded form is read up to maxFormBytes; of a multipart
// upload only the first part is read (the upload form sends _csrf first), so
// the file is not read at all unless the token matches. Only then is the
// form parsed, with uploaded files spooled to temporary files (removed when
// the request ends), never held whole in memory.
func (a *app) checkCSRF() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			switch req.Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
				return next(c)
			}
			want := stringValue(sessionOf(c), keyCSRF)
			if want == "" {
				// The body may be large and cannot help; closing the
				// connection spares reading it to keep the connection.
				c.Response().Header().Set("Connection", "close")
				return errFormExpired(req)
			}
			multipartForm := strings.HasPrefix(req.Header.Get(echo.HeaderContentType), echo.MIMEMultipartForm)
			if multipartForm {
				req.Body = http.MaxBytesReader(c.Response(), req.Body, a.maxUpload+1<<20)
			} else {
				req.Body = http.MaxBytesReader(c.Response(), req.Body, maxFormBytes)
			}
			got := req.Header.Get("X-CSRF-Token")
			if got == "" && multipartForm {
				got = firstPartToken(req)
			} else if got == "" {
				if err := req.ParseForm(); err != nil {
					return formReadError(err, a.maxUpload, multipartForm)
				}
				got = req.PostForm.Get("_csrf")
			}
			if subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
				c.Response().Header().Set("Connection", "close")
				return errFormExpired(req)
			}
			if multipartForm {
				if err := req.ParseMultipartForm(uploadMemory); err != nil {
					return formReadError(err, a.maxUpload, multipartForm)
				}
				// net/http removes the temporary files only for the request
				// it passed in; a middleware may have replaced it.
				defer req.MultipartForm.RemoveAll()
			}
			return next(c)
		}
	}
}

// Body limits. uploadMemory is how much of an uploaded file is kept in
// memory before the rest is spooled to a temporary file; maxFormBytes bounds
// a urlencoded form (a 65,000-character comment, percent-encoded, fits).
const (
	uploadMemory  = 256 << 10
	maxFormBytes  = 2 << 20
	firstPartSize = 4 << 10
)

// firstPartToken reads the _csrf field of a multipart body if it is the
// first part, reading at most firstPartSize bytes, and puts those bytes back
// in front of the rest of the body for the form parser. It returns "" if the
// first part is anything else.
func firstPartToken(req *http.Request) string {
	_, params, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || params["boundary"] == "" {
		return ""
	}
	br := bufio.NewReaderSize(req.Body, firstPartSize)
	req.Body = struct {
		io.Reader
		io.Closer
	}{br, req.Body}
	head, _ := br.Peek(firstPartSize)
	part, err := multipart.NewReader(bytes.NewReader(head), params["boundary"]).NextPart()
	if err != nil || part.FormName() != "_csrf" || part.FileName() != "" {
		return ""
	}
	v, err := io.ReadAll(io.LimitReader(part, 256))
	if err != nil {
		return ""
	}
	return string(v)
}

// errFormExpired is the answer to a POST without a valid form token. Its
// button leads back to the page the form was on (log in first if the
// session ended), where the browser tab fills in again what was typed
// (static/app.js keeps drafts of the forms marked data-draft).
func errFormExpired(req *http.Request) error {
	back, label := formPage(req), "Back to the form"
	if back == "/" {
		label = "Back to onbehalf"
	}
	return &pageError{
		Status:      http.StatusForbidden,
		Heading:     "This form has expired",
		Message:     "The form was opened in an older session (or on another site), so onbehalf did not act on it. Go back to the form, logging in again if asked, and send it again: this browser tab keeps what you typed and fills it in again.",
		ActionHref:  back,
		ActionLabel: label,
		NothingSent: true,
	}
}

// formPage is the path of the page a form was sent from (its Referer, when
// it is this site's), for a button back to it; "/" when unknown. A page
// shown in answer to a form (a refusal shows the form again at the address
// it was sent to) is named by the page that form lives on, since only a
// POST goes to that address.
func formPage(req *http.Request) string {
	ref, err := url.Parse(req.Referer())
	if err != nil || ref.Host != req.Host || (ref.Scheme != "http" && ref.Scheme != "https") {
		return "/"
	}
	p := safeReturnPath(ref.RequestURI())
	path := p
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	for _, m := range postedPages {
		if m.re.MatchString(path) {
			return m.re.ReplaceAllString(path, m.page)
		}
	}
	return p
}

// postedPages map the addresses forms are sent to onto the pages that
// show those forms.
var postedPages = []struct {
	re   *regexp.Regexp
	page string
}{
	{regexp.MustCompile(`^(/as/requests/\d+)/(rate|comment|solve)$`), "$1"},
	{regexp.MustCompile(`^/as/requests$`), "/as/requests/new"},
	{regexp.MustCompile(`^/acting(/stop)?$`), "/users"},
	{regexp.MustCompile(`^(/bulk/runs/\d+)/[a-z-]+$`), "$1"},
	{regexp.MustCompile(`^/(login|logout)$`), "/"},
}

// formReadError says why a form could not be read: a file past the upload
// limit, a form past maxFormBytes, an upload the server could not spool to
// its temporary storage (a full disk: the server's fault, and logged), or a
// body cut off on the way.
func formReadError(err error, maxUpload int64, multipartForm bool) error {
	var tooBig *http.MaxBytesError
	var spool *fs.PathError
	switch {
	case (errors.As(err, &tooBig) || errors.Is(err, multipart.ErrMessageTooLarge)) && multipartForm:
		return &pageError{Status: http.StatusRequestEntityTooLarge, Heading: "The file is too large",
			Message:    fmt.Sprintf("onbehalf accepts files up to %d MB (pasted rows up to 10 MB). Split the file into smaller ones and upload them one by one.", maxUpload>>20),
			ActionHref: "/bulk", ActionLabel: "Back to bulk runs", NothingSent: true}
	case errors.As(err, &tooBig):
		return &pageError{Status: http.StatusRequestEntityTooLarge, Heading: "The form is too large",
			Message:    fmt.Sprintf("onbehalf accepts forms up to %d MB, room for about 65,000 characters of text. Nothing was changed. Shorten the text and send it again.", maxFormBytes>>20),
			ActionHref: "/", ActionLabel: "Back to onbehalf", NothingSent: true}
	case errors.As(err, &spool):
		return &pageError{Status: http.StatusServiceUnavailable, Heading: "onbehalf could not store the upload",
			Message:    "The server could not write the file to its temporary storage (it may be out of disk space), so nothing was changed. Try again in a few minutes; if it keeps happening, tell whoever runs onbehalf.",
			ActionHref: "/bulk", ActionLabel: "Back to bulk runs", Err: err, NothingSent: true}
	}
	back, label := "/", "Back to onbehalf"
	if multipartForm {
		back, label = "/bulk", "Back to bulk runs"
	}
	return &pageError{Status: http.StatusBadRequest, Heading: "The form did not arrive whole",
		Message: "onbehalf could not read the form (the connection may have been interrupted), so nothing was changed. Send it again.", ActionHref: back, ActionLabel: label, Err: err, NothingSent: true}
}

// background reports whether a GET comes from a page's script (a live
// search, the rows table's refresh, the progress stream) rather than from
// the person: sent to /login, it would start a login and replace the
// pre-login session of one another tab may be in the middle of.
func background(req *http.Request) bool {
	if m := req.Header.Get("Sec-Fetch-Mode"); m != "" && m != "navigate" {
		return true
	}
	return req.URL.Query().Has("fragment") || strings.Contains(req.Header.Get("Accept"), "text/event-stream")
}

// requireAdmin lets signed-in admins through; others are sent to log in
// (GET) or told their session ended (anything else).
func (a *app) requireAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if adminOf(c) != nil {
			return next(c)
		}
		if c.Request().Method == http.MethodGet && !background(c.Request()) {
			return c.Redirect(http.StatusSeeOther, "/login?return_to="+queryEscape(c.Request().URL.RequestURI()))
		}
		return &pageError{
			Status:      http.StatusUnauthorized,
			Heading:     "Your session has ended",
			Message:     "You are not signed in any more, so nothing was changed. Log in with Zendesk and send the form again: this browser tab keeps what you typed and fills it in again.",
			ActionHref:  "/login?return_to=" + queryEscape(formPage(c.Request())),
			ActionLabel: "Log in with Zendesk",
			NothingSent: true,
		}
	}
}

// newCSRFToken is 256 random bits.
func newCSRFToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func stringValue(s *sessions.Session, key string) string {
	if s == nil {
		return ""
	}
	v, _ := s.Values[key].(string)
	return v
}

// int64Value reads an integer session value whatever numeric type the
// session encoding gave back.
func int64Value(s *sessions.Session, key string) int64 {
	if s == nil {
		return 0
	}
	switch v := s.Values[key].(type) {
	case int64:
		return v
	case int:
		return int64(v)
	case float64:
		return int64(v)
	}
	return 0
}
