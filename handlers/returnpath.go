package handlers

import (
	"net/url"
	"strings"
	"unicode"
)

// safeReturnPath returns p if it is a path on this site, else "/"
// (security promise 6). It refuses anything a browser could read as another
// origin: schemes, "//host", "/\host", encoded or whitespace-padded variants,
// and paths back into the login flow.
func safeReturnPath(p string) string {
	const home = "/"
	if p == "" || len(p) > 2048 || p[0] != '/' {
		return home
	}
	for _, r := range p {
		// Browsers strip tabs and newlines and treat backslashes as slashes.
		if r == '\\' || unicode.IsControl(r) || unicode.IsSpace(r) {
			return home
		}
	}
	if strings.HasPrefix(p, "//") {
		return home
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return home
	}
	// Decode once more: a path like /%2F%2Fevil.com is harmless to a browser
	// but may be decoded by a proxy; refuse it rather than reason about it.
	dec, err := url.PathUnescape(u.EscapedPath())
	if err != nil || strings.HasPrefix(dec, "//") || strings.ContainsAny(dec, "\\") {
		return home
	}
	for _, r := range dec {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return home
		}
	}
	if dec == "/login" || dec == "/logout" || strings.HasPrefix(dec, "/oauth/") {
		return home
	}
	return p
}
