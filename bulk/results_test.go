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

func TestWriteResultsRoundTrip(t *testing.T) {
	t.Parallel()
	header := []string{"email", "ticket_id", "=score"}
	rows := []ResultRow{
		{Cells: []string{"bea@example.com", "12", "good"}, Status: "done", HTTPStatus: 200, ZendeskID: 9001},
		{Cells: []string{"-bob@example.com", "13", "bad"}, Status: "failed", HTTPStatus: 422,
			Error: "Zendesk said: \"Score, invalid\"\nsecond line"},
		{Cells: []string{"=HYPERLINK(\"http://evil\")", "#14", "good"}, Status: "invalid", Error: "-user: bad"},
		{Cells: []string{"short"}, Status: "invalid", Error: "This row has 1 cells"},
		{Cells: []string{"a@x.io", "15", "good", "extra", "@more"}, Status: "skipped"},
		{Cells: []string{"Très bien, \"merci\"", "16", "\xff"}, Status: "done"},
	}
	var buf bytes.Buffer
	if err := WriteResults(&buf, header, seqOf(rows, nil)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte("\r\n")) {
		t.Errorf("results lines do not end with CRLF")
	}
	want := [][]string{
		{"email", "ticket_id", "'=score", "status", "http_status", "error", "zendesk_id"},
		{"bea@example.com", "12", "good", "done", "200", "", "9001"},
		{"'-bob@example.com", "13", "bad", "failed", "422", "Zendesk said: \"Score, invalid\"\nsecond line", ""},
		{"'=HYPERLINK(\"http://evil\")", "#14", "good", "invalid", "", "'-user: bad", ""},
		{"short", "", "", "invalid", "", "This row has 1 cells", ""},
		{"a@x.io", "15", "good", "skipped", "", "", "", "extra", "'@more"},
		{"Très bien, \"merci\"", "16", "\uFFFD", "done", "", "", ""},
	}
	if diff := cmp.Diff(want, mustParseResults(t, buf.Bytes())); diff != "" {
		t.Errorf("results read back (-want +got):\n%s", diff)
	}
}

func TestWriteResultsStopsOnError(t *testing.T) {
	t.Parallel()
	boom := errors.New("database gone")
	var buf bytes.Buffer
	rows := []ResultRow{{Cells: []string{"a@x.io"}, Status: "done"}}
	err := WriteResults(&buf, []string{"email"}, seqOf(rows, boom))
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
	err := WriteResults(failWriter{}, []string{"email"}, seqOf(nil, nil))
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("WriteResults to a failing writer = %v, want its error", err)
	}
}
