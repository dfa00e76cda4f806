package bulk

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"iter"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/onbehalf/onbehalf/actions"
)

func TestSafeCell(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"=1+2", "'=1+2"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=cmd", "'\t=cmd"},
		{"\r=cmd", "'\r=cmd"},
		{"  =HYPERLINK(\"http://x\")", "'  =HYPERLINK(\"http://x\")"},
		{"＝1+2", "'＝1+2"},
		{"＠x", "'＠x"},
		// Harmless cells are untouched.
		{"", ""},
		{"   ", "   "},
		{"bea@example.com", "bea@example.com"},
		{"1+1", "1+1"},
		{"a=b", "a=b"},
		{"#12", "#12"},
		{"'quoted", "'quoted"},
		// Leading apostrophes are looked past, so UnsafeCell can tell
		// "'+1" from "+1" neutralised.
		{"'+1", "''+1"},
		{"''=x", "'''=x"},
		{"Très bien", "Très bien"},
		{"line\n=two", "line\n=two"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			t.Parallel()
			if got := SafeCell(tt.in); got != tt.want {
				t.Errorf("SafeCell(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// seqOf yields rows, then err if it is not nil.
func seqOf(rows []ResultRow, err error) iter.Seq2[ResultRow, error] {
	return func(yield func(ResultRow, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
		if err != nil {
			yield(ResultRow{}, err)
		}
	}
}

// mustParseResults strips the BOM and reads the CSV back.
func mustParseResults(t *testing.T, b []byte) [][]string {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("\uFEFF")) {
		t.Fatalf("results do not start with a UTF-8 BOM: %q", b[:min(len(b), 10)])
	}
	cr := csv.NewReader(bytes.NewReader(b[3:]))
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatalf("results are not valid CSV: %v", err)
	}
	return recs
}

// TestWriteResultsRoundTrip checks that every line has the same columns
// whatever the row's shape (a short row is padded, a long row's surplus
// goes into extra_cells rather than shifting the result columns), that
// the row number, outcome, message and error each have their own column,
// and that every cell is safe for spreadsheets.
func TestWriteResultsRoundTrip(t *testing.T) {
	t.Parallel()
	header := []string{"email", "ticket_id", "=score"}
	rows := []ResultRow{
		{Number: 2, Cells: []string{"bea@example.com", "12", "good"}, Outcome: "done", Message: "Rated good as the end user.", HTTPStatus: 200, ZendeskID: 9001},
		{Number: 3, Cells: []string{"-bob@example.com", "13", "bad"}, Outcome: "failed", HTTPStatus: 422, Message: "Not done.",
			Error: "Zendesk said: \"Score, invalid\"\nsecond line"},
		{Number: 4, Cells: []string{"=HYPERLINK(\"http://evil\")", "#14", "good"}, Outcome: "invalid", Message: "Not sent.", Error: "-user: bad"},
		{Number: 6, Cells: []string{"short"}, Outcome: "invalid", Error: "This row has 1 cells"},
		{Number: 7, Cells: []string{"a@x.io", "15", "good", "extra", "@more"}, Outcome: "skipped", Message: "Cancelled."},
		{Number: 8, Cells: []string{"Très bien, \"merci\"", "16", "\xff"}, Outcome: "done"},
	}
	var buf bytes.Buffer
	if err := WriteResults(&buf, header, ";", seqOf(rows, nil)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte("\r\n")) {
		t.Errorf("results lines do not end with CRLF")
	}
	want := [][]string{
		{"email", "ticket_id", "'=score", "row", "outcome", "message", "error", "zendesk_id", "http_status", "extra_cells"},
		{"bea@example.com", "12", "good", "2", "done", "Rated good as the end user.", "", "9001", "200", ""},
		{"'-bob@example.com", "13", "bad", "3", "failed", "Not done.", "Zendesk said: \"Score, invalid\"\nsecond line", "", "422", ""},
		{"'=HYPERLINK(\"http://evil\")", "#14", "good", "4", "invalid", "Not sent.", "'-user: bad", "", "", ""},
		{"short", "", "", "6", "invalid", "", "This row has 1 cells", "", "", ""},
		{"a@x.io", "15", "good", "7", "skipped", "Cancelled.", "", "", "", "extra;@more"},
		{"Très bien, \"merci\"", "16", "\uFFFD", "8", "done", "", "", "", "", ""},
	}
	got := mustParseResults(t, buf.Bytes())
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results read back (-want +got):\n%s", diff)
	}
	for i, line := range got {
		if len(line) != len(got[0]) {
			t.Errorf("line %d has %d cells, the header %d", i+1, len(line), len(got[0]))
		}
	}
}

func TestWriteResultsStopsOnError(t *testing.T) {
	t.Parallel()
	boom := errors.New("database gone")
	var buf bytes.Buffer
	rows := []ResultRow{{Cells: []string{"a@x.io"}, Outcome: "done"}}
	err := WriteResults(&buf, []string{"email"}, ",", seqOf(rows, boom))
	if !errors.Is(err, boom) {
		t.Fatalf("WriteResults = %v, want the iterator's error", err)
	}
	// What was written before the error is still whole CSV lines.
	recs := mustParseResults(t, buf.Bytes())
	if len(recs) != 2 || !strings.EqualFold(recs[1][0], "a@x.io") {
		t.Errorf("written before the error: %q, want header and one row", recs)
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestWriteResultsWriterError(t *testing.T) {
	t.Parallel()
	err := WriteResults(failWriter{}, []string{"email"}, ",", seqOf(nil, nil))
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("WriteResults to a failing writer = %v, want its error", err)
	}
}

// TestResultsCSVUploadedAgainKeepsCells: cells SafeCell neutralised in the
// results CSV (comments starting with + - = @, a header cell) come back as
// they were when that CSV is uploaded again, so the same actions are read;
// an apostrophe the file itself had stays.
func TestResultsCSVUploadedAgainKeepsCells(t *testing.T) {
	t.Parallel()
	input := "email,ticket_id,score,comment,-note\n" +
		"bea@example.com,12,good,+1 thanks,=x\n" +
		"bea@example.com,13,bad,-5 stars,\n" +
		"bea@example.com,14,good,=SUM(A1),@y\n" +
		"bea@example.com,15,good,@support great,\n" +
		"bea@example.com,16,good,＋ full width,\n" +
		"bea@example.com,17,good,'kept as typed,\n" +
		"bea@example.com,18,good,plain,\n"
	sum, rows := mustRead(t, input, actions.KindRate, Options{})
	if sum.Valid != len(rows) {
		t.Fatalf("%d of %d rows valid in the original", sum.Valid, len(rows))
	}
	var buf bytes.Buffer
	results := make([]ResultRow, len(rows))
	for i, r := range rows {
		results[i] = ResultRow{Number: r.Number, Cells: r.Cells, Outcome: "done", Message: "Rated."}
	}
	if err := WriteResults(&buf, sum.Header, ",", seqOf(results, nil)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "'+1 thanks") {
		t.Fatalf("the results CSV does not neutralise the comment \"+1 thanks\":\n%s", buf.String())
	}
	again, back := mustRead(t, buf.String(), actions.KindRate, Options{})
	if diff := cmp.Diff(sum.Header, again.Header[:len(sum.Header)]); diff != "" {
		t.Errorf("header uploaded again (-original +again):\n%s", diff)
	}
	if len(back) != len(rows) {
		t.Fatalf("%d rows uploaded again, want %d", len(back), len(rows))
	}
	for i := range rows {
		if diff := cmp.Diff(rows[i].Cells, back[i].Cells[:len(rows[i].Cells)]); diff != "" {
			t.Errorf("row %d's cells uploaded again (-original +again):\n%s", rows[i].Number, diff)
		}
		if diff := cmp.Diff(rows[i].Action, back[i].Action); diff != "" {
			t.Errorf("row %d's action uploaded again (-original +again):\n%s", rows[i].Number, diff)
		}
	}
	if c := back[0].Action.(actions.Rate).Comment; c != "+1 thanks" {
		t.Errorf("the comment \"+1 thanks\" comes back as %q", c)
	}
	if c := back[5].Action.(actions.Rate).Comment; c != "'kept as typed" {
		t.Errorf("the comment \"'kept as typed\" comes back as %q", c)
	}
}
