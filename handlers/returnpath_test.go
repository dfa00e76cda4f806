package handlers

import "testing"

func TestSafeReturnPathRejectsOpenRedirects(t *testing.T) {
	t.Parallel()
	payloads := []string{
		"//evil.example",
		"//evil.example/",
		"///evil.example",
		"////evil.example",
		"/\\evil.example",
		"\\\\evil.example",
		"/\\/evil.example",
		"\\/evil.example",
		"https://evil.example",
		"http://evil.example",
		"HTTPS://evil.example",
		"javascript:alert(1)",
		"JaVaScRiPt:alert(1)",
		"data:text/html,<script>alert(1)</script>",
		"vbscript:msgbox(1)",
		"evil.example",
		"evil.example/path",
		"@evil.example",
		"//@evil.example",
		"/%2F%2Fevil.example",
		"/%2f%2fevil.example",
		"/%5Cevil.example",
		"/%5cevil.example",
		"/%09/evil.example",
		"/\t/evil.example",
		"/\n/evil.example",
		"/\r/evil.example",
		" /evil",
		"/ /evil.example",
		"//evil.example%2F@good",
		"//evil.example?x=/",
		"//evil.example#/",
		"/%0D%0ALocation:%20https://evil.example",
		"/\x00/evil.example",
		"/\u3000/evil.example",
		"//\u3000evil.example",
		"/\u00a0/evil.example",
		"ftp://evil.example",
		"//127.0.0.1",
		"//[::1]",
		"//0x7f.1",
		"https:evil.example",
		"https:/evil.example",
		"/login",
		"/logout",
		"/oauth/callback?code=x&state=y",
		"/%6cogin",
		"",
		"?next=//evil.example",
		"#//evil.example",
		"./evil",
		"../evil",
		"/%E0%A4%A",
		"//%65vil.example",
		"/\\\\evil.example",
	}
	if len(payloads) < 50 {
		t.Fatalf("only %d payloads", len(payloads))
	}
	for _, p := range payloads {
		if got := safeReturnPath(p); got != "/" {
			t.Errorf("safeReturnPath(%q) = %q, want /", p, got)
		}
	}
}

func TestSafeReturnPathKeepsLocalPaths(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"/", "/audit", "/audit?admin=1&page=2", "/users/10/requests", "/bulk/runs/3#row-5", "/search?q=bea%20l"} {
		if got := safeReturnPath(p); got != p {
			t.Errorf("safeReturnPath(%q) = %q, want it kept", p, got)
		}
	}
}
