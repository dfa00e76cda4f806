package handlers

import (
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// checkHost serves only requests addressed to PUBLIC_URL's host. Any other
// Host header (a DNS-rebinding page, a misrouted proxy, or a forged Host with
// a matching Origin, which the cross-origin check alone would pass) gets 421
// before a session is loaded. When PUBLIC_URL is on a loopback host, as with
// `go run .`, localhost, 127.0.0.1 and [::1] on the same port are all
// accepted, since a local browser may use any of them. Health checks answer
// on any host: probes address the pod or container directly.
func (a *app) checkHost() echo.MiddlewareFunc {
	want := strings.ToLower(a.publicURL.Host)
	wantHost, wantPort := splitHost(a.publicURL)
	loopback := isLoopback(wantHost)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.URL.Path == "/healthz" || req.URL.Path == "/readyz" {
				return next(c)
			}
			got := strings.ToLower(req.Host)
			if got == want {
				return next(c)
			}
			if loopback {
				u := &url.URL{Scheme: a.publicURL.Scheme, Host: got}
				if h, p := splitHost(u); isLoopback(h) && p == wantPort {
					return next(c)
				}
			}
			a.log.Warn("request for another host refused (if people reach onbehalf at this host, set PUBLIC_URL to it)",
				"host", req.Host, "public_url", a.publicURL.String(), "path", req.URL.Path)
			c.Response().Header().Set("Connection", "close")
			return &pageError{
				Status:      http.StatusMisdirectedRequest,
				Heading:     "This address is not onbehalf's",
				Message:     "The request was addressed to " + req.Host + ", but this onbehalf is reached at " + a.publicURL.Host + ", so it did not answer. Open onbehalf at its own address. If this is the address people use (behind a proxy, say), whoever runs onbehalf sets PUBLIC_URL to it.",
				ActionHref:  a.publicURL.String(),
				ActionLabel: "Open onbehalf",
			}
		}
	}
}

// splitHost returns u's host name and port, the port defaulted from the
// scheme.
func splitHost(u *url.URL) (host, port string) {
	host, port = u.Hostname(), u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	return host, port
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
