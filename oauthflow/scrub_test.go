package oauthflow

import (
	"strings"
	"testing"
)

func TestScrub(t *testing.T) {
	t.Parallel()
	hex64 := strings.Repeat("0a1b2c3d", 8)
	tests := []struct {
		name    string
		in      string
		secrets []string
		limit   int
		want    string
	}{
		{"known secret", "bad secret s3cr and more", []string{"s3cr"}, 100, "bad secret [redacted] and more"},
		{"zendesk token", "token " + hex64 + " is revoked", nil, 100, "token [redacted] is revoked"},
		{"base64url verifier", "verifier Ab-_9ZkQ2x7Yt0pLm3Nq8Rs is bad", nil, 100, "verifier [redacted] is bad"},
		{"long word survives", "internationalization failed", nil, 100, "internationalization failed"},
		{"long number survives", "request 123456789012345678901234 failed", nil, 100, "request 123456789012345678901234 failed"},
		{"short mixed survives", "HTTP 502 at v2 ab12", nil, 100, "HTTP 502 at v2 ab12"},
		{"whitespace and control", "a\r\n\t b\x00c\x7f", nil, 100, "a bc"},
		{"truncation", "abcdefghij", nil, 4, "abcd..."},
		{"truncation at a space", "abcd efgh", nil, 4, "abcd..."},
		{"secret cut by truncation is gone", "xx " + hex64, []string{hex64}, 6, "xx [re..."},
		{"unicode kept", "café déjà vu", nil, 100, "café déjà vu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := scrub(tt.in, tt.limit, tt.secrets...); got != tt.want {
				t.Errorf("scrub(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
