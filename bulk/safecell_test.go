package bulk

import (
	"fmt"
	"testing"
)

// TestSafeCellLooksPastInvisibleLeaders checks that a formula trigger is
// found behind anything a spreadsheet skips or does not show: line breaks,
// zero-width characters, byte-order marks, no-break and other spaces.
func TestSafeCellLooksPastInvisibleLeaders(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"\n=1+1",
		"\r\n=1+1",
		"\n\n+1",
		"\u200b=1+1",     // zero-width space
		"\u200c\u200d=x", // zero-width non-joiner and joiner
		"\u2060@x",       // word joiner
		"\ufeff=1+1",     // byte order mark
		"\u00a0=1+1",     // no-break space
		"\u202f\u3000-1", // narrow no-break and ideographic spaces
		"\u200e=1+1",     // left-to-right mark
		"\v\f=1",         // vertical tab, form feed
		" \n \u200b ＝1",  // mixed, then a full-width trigger
	} {
		t.Run(fmt.Sprintf("%q", in), func(t *testing.T) {
			t.Parallel()
			if got, want := SafeCell(in), "'"+in; got != want {
				t.Errorf("SafeCell(%q) = %q, want %q", in, got, want)
			}
		})
	}
	for _, in := range []string{"\u200bhello", "\n1+1", "\u00a0bea@example.com", "\ufeff"} {
		if got := SafeCell(in); got != in {
			t.Errorf("SafeCell(%q) = %q, want it unchanged", in, got)
		}
	}
}
