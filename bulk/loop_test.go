package bulk

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/store"
)

func TestGuessScores(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		keys []string
		want map[string]string
	}{
		{"stars", []string{"1", "2", "3", "4", "5"},
			map[string]string{"1": "bad", "2": "bad", "3": "", "4": "good", "5": "good"}},
		{"zero to ten", []string{"0", "6", "7", "8", "9", "10"},
			map[string]string{"0": "bad", "6": "bad", "7": "", "8": "", "9": "good", "10": "good"}},
		// A 0–10 survey whose answers happen to be 1–5 only is read as stars,
		// unless a value says /10.
		{"out of ten", []string{"3/10", "9/10"}, map[string]string{"3/10": "bad", "9/10": "good"}},
		{"star glyphs", []string{"★★★★★", "★★", "★★★"}, map[string]string{"★★★★★": "good", "★★": "bad", "★★★": ""}},
		{"words", []string{"satisfied", "unsatisfied", "very satisfied", "yes", "no", "👍", "👎", "positive", "negative", "neutral"},
			map[string]string{"satisfied": "good", "unsatisfied": "bad", "very satisfied": "good", "yes": "good", "no": "bad",
				"👍": "good", "👎": "bad", "positive": "good", "negative": "bad", "neutral": ""}},
		{"unknown left out", []string{"maybe", "42"}, map[string]string{"maybe": "", "42": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, GuessScores(tt.keys)); diff != "" {
				t.Errorf("GuessScores(%q) (-want +got):\n%s", tt.keys, diff)
			}
		})
	}
}

func TestReasonsCode(t *testing.T) {
	t.Parallel()
	rs := Reasons{{Code: 5, Name: "The issue took too long to resolve"}, {Code: 1001, Name: "Product defect"}}
	tests := []struct {
		in       string
		rs       Reasons
		want     int
		errWords string // "" for no error
	}{
		{"5", rs, 5, ""},
		{" product DEFECT ", rs, 1001, ""},
		{"99", rs, 0, "99 is not one of this account's reasons"},
		{"Rude", rs, 0, `"Rude" is not one of this account's reasons`},
		{"99", nil, 99, ""}, // the list could not be read: codes pass as they are
		{"Rude", nil, 0, "give Zendesk's reason code as a whole number"},
		{"5", Reasons{}, 0, "lists no reasons"},
	}
	for _, tt := range tests {
		got, msg := tt.rs.code(tt.in)
		if got != tt.want || (tt.errWords == "") != (msg == "") || !strings.Contains(msg, tt.errWords) {
			t.Errorf("code(%q) with %d reasons = %d, %q; want %d and an error with %q", tt.in, len(tt.rs), got, msg, tt.want, tt.errWords)
		}
	}
	if _, msg := rs.code("99"); !strings.Contains(msg, `1001 ("Product defect")`) {
		t.Errorf("the error %q does not list the reasons", msg)
	}
}

func TestParseWithScoreMap(t *testing.T) {
	t.Parallel()
	m := Mapping{FieldUser: 0, FieldTicket: 1, FieldScore: 2}
	p := parser{kind: actions.KindRate, m: m, scores: map[string]string{"5": "good", "satisfied": "good", "3": ""}}
	a, errs, out := p.parse([]string{"bea@example.com", "105", " Satisfied "})
	if a == nil || a.(actions.Rate).Score != "good" || errs != nil || out != "" {
		t.Errorf("mapped value: %v, %q, %q", a, errs, out)
	}
	a, errs, out = p.parse([]string{"bea@example.com", "105", "3"})
	if a != nil || errs != nil || !strings.Contains(out, `leaves "3" out`) {
		t.Errorf("left-out value: %v, %q, %q", a, errs, out)
	}
	_, errs, _ = p.parse([]string{"bea@example.com", "105", "7"})
	if len(errs) != 1 || !strings.Contains(errs[0], `"7" is neither good nor bad`) || !strings.Contains(errs[0], "Scores") {
		t.Errorf("unmapped value: %q", errs)
	}
	// A missing column is the mapping's fault, said once.
	_, errs, _ = parser{kind: actions.KindRate, m: Mapping{FieldUser: 0, FieldScore: 2}}.parse([]string{"bea@example.com", "105", "good"})
	if len(errs) != 1 || !strings.Contains(errs[0], "no column is chosen for the ticket number") {
		t.Errorf("missing ticket column: %q", errs)
	}
}

func TestMayPassOnRetry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		row  store.RunRow
		want bool
	}{
		{store.RunRow{State: store.RowFailed, HTTPStatus: 503, Error: "Zendesk is unavailable."}, true},
		{store.RunRow{State: store.RowFailed, HTTPStatus: 429}, true},
		{store.RunRow{State: store.RowFailed, Error: "The network failed. (gave up after several attempts)"}, true},
		{store.RunRow{State: store.RowFailed, HTTPStatus: 422, Error: "Ticket #108 is closed."}, false},
		{store.RunRow{State: store.RowFailed, Error: "This user is suspended."}, false},
		{store.RunRow{State: store.RowDone, HTTPStatus: 503}, false},
	}
	for _, tt := range tests {
		if got := MayPassOnRetry(tt.row); got != tt.want {
			t.Errorf("MayPassOnRetry(%d %q) = %v, want %v", tt.row.HTTPStatus, tt.row.Error, got, tt.want)
		}
	}
}

// TestRunResultsNotes checks that the note of a rating that replaced one is
// true at the moment the row was applied: after an earlier row of the run
// rated the ticket, the note names that rating, not the one before the run.
func TestRunResultsNotes(t *testing.T) {
	t.Parallel()
	db := mustOpenStore(t, "sqlite:"+filepath.Join(t.TempDir(), "db"))
	ctx := context.Background()
	run := &store.Run{AdminID: 1, AdminName: "Ada", GrantID: 1, Kind: string(actions.KindRate), FileName: "r.csv",
		Header: []string{"email", "ticket_id", "score"}}
	stale := "Ticket #106 already had a good rating; the new rating replaced it."
	err := db.CreateRunWithRows(ctx, run, func(add func([]store.RunRow) error) error {
		return add([]store.RunRow{
			{Number: 2, Cells: []string{"bea@example.com", "106", "bad"}, Valid: true, Key: "rate:ticket:106",
				Action: []byte(`{"User":"bea@example.com","Ticket":106,"Score":"bad"}`)},
			{Number: 3, Cells: []string{"bea@example.com", "106", "good"}, Valid: true, Key: "rate:ticket:106", Duplicate: true,
				Action: []byte(`{"User":"bea@example.com","Ticket":106,"Score":"good"}`)},
			{Number: 4, Cells: []string{"bea@example.com"}, Errors: []string{"This row has 1 cells but the header has 3."}},
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.StartRun(ctx, run.ID, store.Actor{ID: 1}, 0, func(*sql.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{2, 3} {
		// The worker's note came from the ticket as read before the run.
		if _, err := db.FinishRow(ctx, run.ID, n, store.RowResult{State: store.RowDone, HTTPStatus: 200, ZendeskID: int64(n), Error: stale}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := WriteResults(&buf, run.Header, ",", RunResults(ctx, db, run)); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(buf.String(), "\r\n")
	if !strings.Contains(lines[1], "Rated bad as the end user. "+stale) {
		t.Errorf("row 2's message %q, want its own note", lines[1])
	}
	if !strings.Contains(lines[2], "Rated good as the end user. Ticket #106 had the bad rating row 2 gave just before") {
		t.Errorf("row 3's message %q, want the rating row 2 gave", lines[2])
	}
	if !strings.HasPrefix(lines[3], "bea@example.com,,,4,invalid,") {
		t.Errorf("the short row %q is not padded to the header", lines[3])
	}
}

// TestRetryRows checks that a retry takes by default only the failed rows
// whose failure may pass, and all failed rows when asked.
func TestRetryRows(t *testing.T) {
	t.Parallel()
	db := mustOpenStore(t, "sqlite:"+filepath.Join(t.TempDir(), "db"))
	ctx := context.Background()
	run := &store.Run{AdminID: 1, AdminName: "Ada", GrantID: 1, Kind: string(actions.KindRate), FileName: "r.csv",
		Header: []string{"email", "ticket_id", "score"}, ScoreMap: map[string]string{"5": "good"}}
	err := db.CreateRunWithRows(ctx, run, func(add func([]store.RunRow) error) error {
		var rows []store.RunRow
		for n := 2; n <= 4; n++ {
			rows = append(rows, store.RunRow{Number: n, Cells: []string{"bea@example.com", "105", "5"}, Valid: true,
				Key: "k", Action: []byte(`{"User":"bea@example.com","Ticket":105,"Score":"good"}`)})
		}
		return add(rows)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.StartRun(ctx, run.ID, store.Actor{ID: 1}, 0, func(*sql.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	results := map[int]store.RowResult{
		2: {State: store.RowFailed, HTTPStatus: 503, Error: "Zendesk is unavailable. (gave up after several attempts)"},
		3: {State: store.RowFailed, HTTPStatus: 422, Error: "Ticket #105 is closed."},
		4: {State: store.RowDone, HTTPStatus: 200},
	}
	// Row 2's writes may have reached Zendesk: the retry must check first.
	if err := db.BeginWrite(ctx, run.ID, 2); err != nil {
		t.Fatal(err)
	}
	for n, res := range results {
		if _, err := db.FinishRow(ctx, run.ID, n, res, nil); err != nil {
			t.Fatal(err)
		}
	}
	admin := actions.Admin{ID: 1, Name: "Ada"}
	for _, tt := range []struct {
		only bool
		want []int
	}{{true, []int{2}}, {false, []int{2, 3}}} {
		id, err := RetryRows(ctx, db, run.ID, admin, 1, tt.only)
		if err != nil {
			t.Fatal(err)
		}
		rows, _, _ := db.ListRunRows(ctx, id, store.RowFilter{})
		var got []int
		for _, r := range rows {
			got = append(got, r.Number)
		}
		if !cmp.Equal(got, tt.want) {
			t.Errorf("RetryRows(only may pass %v) took rows %v, want %v", tt.only, got, tt.want)
		}
		if len(rows) == 0 || rows[0].Attempts != 1 {
			t.Errorf("the retried row 2 has %v attempts that may have acted, want 1 (its earlier write's outcome is unknown)", rows)
		}
		if nr, _ := db.FindRunByID(ctx, id); nr.RetryOf != run.ID || nr.ScoreMap["5"] != "good" {
			t.Errorf("retry run %+v, want RetryOf %d and the score map", nr, run.ID)
		}
		// One open retry of a run at a time: this one is dropped before
		// the next is made.
		if _, err := db.SetRunState(ctx, id, []string{store.RunPreview}, store.RunCancelled, "test"); err != nil {
			t.Fatal(err)
		}
	}
}
