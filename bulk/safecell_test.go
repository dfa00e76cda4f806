package bulk

import (
	"fmt"
	"math/rand/v2"
	"strings"
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

// cellSamples are cells for SafeCell and UnsafeCell: formulas behind every
// kind of leader, harmless cells, and cells that already start with one
// apostrophe or more.
var cellSamples = []string{
	"", " ", "'", "''", "'''", "a", "+1 thanks", "-5", "=SUM(A1)", "@support", "＝1", "＋1", "－1", "＠x",
	"\t=cmd", "\r=cmd", "\tplain", "\rplain", "\n=1+1", "\u200b=1", "\ufeff@x", "\u00a0-1", " \n \u200b ＝1",
	"1+1", "a=b", "#12", "bea@example.com", "Très bien", "line\n=two",
	"'quoted", "'1+1", "' hello", "'+1", "'=SUM(A1)", "''+1", "'''=x", "' =x", "'\t=x", "'\u200b@x", "'＝1",
	"+'1", "=''", "\u3164=x", "'\u3164=x",
}

// TestUnsafeCellUndoesSafeCell: whatever the cell, SafeCell and then
// UnsafeCell give it back unchanged, so a CSV onbehalf wrote can be uploaded
// again without its cells changing; tried on the samples, on every string
// of up to three characters from an alphabet of triggers, leaders and
// apostrophes, and on longer random ones.
func TestUnsafeCellUndoesSafeCell(t *testing.T) {
	t.Parallel()
	check := func(s string) {
		t.Helper()
		if got := UnsafeCell(SafeCell(s)); got != s {
			t.Errorf("UnsafeCell(SafeCell(%q)) = UnsafeCell(%q) = %q, want the cell back", s, SafeCell(s), got)
		}
	}
	for _, s := range cellSamples {
		check(s)
	}
	alphabet := []rune{'\'', '=', '+', '-', '@', '＝', 'a', '1', ' ', '\t', '\r', '\n', '\u200b', '\u00a0'}
	var all func(prefix string, n int)
	all = func(prefix string, n int) {
		check(prefix)
		if n == 0 {
			return
		}
		for _, r := range alphabet {
			all(prefix+string(r), n-1)
		}
	}
	all("", 3)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		var b strings.Builder
		for range 1 + rng.IntN(8) {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		check(b.String())
	}
}

// TestUnsafeCellStripsOnlySafeCellsApostrophe: one leading apostrophe goes
// when the rest is a cell SafeCell neutralises; any other apostrophe stays.
func TestUnsafeCellStripsOnlySafeCellsApostrophe(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"'+1 thanks", "+1 thanks"},
		{"'-5", "-5"},
		{"'=SUM(A1)", "=SUM(A1)"},
		{"'@support", "@support"},
		{"'＝1", "＝1"},
		{"'\t=cmd", "\t=cmd"},
		{"'\u200b=1", "\u200b=1"},
		{"' =x", " =x"},
		// Apostrophes SafeCell did not add stay.
		{"'", "'"},
		{"''", "''"},
		{"'quoted", "'quoted"},
		{"'1+1", "'1+1"},
		{"' hello", "' hello"},
		{"+1", "+1"},
		{"a'+1", "a'+1"},
		{" '+1", " '+1"},
	} {
		if got := UnsafeCell(tt.in); got != tt.want {
			t.Errorf("UnsafeCell(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, s := range cellSamples {
		if got := UnsafeCell(s); got != s && "'"+got != s {
			t.Errorf("UnsafeCell(%q) = %q: it may only drop one leading apostrophe", s, got)
		}
	}
}
