package bulk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/onbehalf/onbehalf/actions"
)

// mustRead reads input and returns the summary and every emitted row,
// failing the test on any error.
func mustRead(t *testing.T, input string, k actions.Kind, opt Options) (Summary, []Row) {
	t.Helper()
	var rows []Row
	sum, err := Read(strings.NewReader(input), k, opt, func(b []Row) error {
		rows = append(rows, b...)
		return nil
	})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return sum, rows
}

// genReader yields a header line and then n lines made by row, lazily, so
// tests can read files of many megabytes without holding them.
type genReader struct {
	header string
	row    func(i int) string
	n, i   int
	buf    []byte
	read   int64 // bytes handed out so far
	total  int64 // header + rows, when known (see size)
}

func newGenReader(header string, n int, row func(i int) string) *genReader {
	return &genReader{header: header, row: row, n: n, i: -1}
}

func (g *genReader) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		switch {
		case g.i < 0:
			g.buf = []byte(g.header)
		case g.i >= g.n:
			return 0, io.EOF
		default:
			g.buf = []byte(g.row(g.i))
		}
		g.i++
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	g.read += int64(n)
	return n, nil
}

// size returns how many bytes the generator produces in all.
func (g *genReader) size() int64 {
	s := int64(len(g.header))
	for i := range g.n {
		s += int64(len(g.row(i)))
	}
	return s
}

func ratingLine(i int) string {
	return fmt.Sprintf("user%d@example.com,#%d,good,Thanks for the help\n", i, i+1)
}

const ratingHeader = "email,ticket_id,score,comment\n"

func TestReadFileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		input   string
		kind    actions.Kind
		opt     Options
		want    error
		wantMsg string // the whole message, or a part of it when partial is set
		partial bool
	}{
		{name: "empty", input: "", want: ErrEmptyFile,
			wantMsg: "The file is empty. Upload a CSV with a header row and at least one data row."},
		{name: "BOM only", input: "\uFEFF", want: ErrEmptyFile, wantMsg: "The file is empty.", partial: true},
		{name: "blank lines only", input: "\n\r\n  \n", want: ErrEmptyFile, wantMsg: "The file is empty.", partial: true},
		{name: "header only", input: "email,ticket_id,score\n", want: ErrNoDataRows,
			wantMsg: "The file has a header row but no data rows. Add one row per action below the header."},
		{name: "header and blank rows only", input: "email,ticket_id,score\n\n,,\n , \n", want: ErrNoDataRows,
			wantMsg: "no data rows", partial: true},
		{name: "wrong delimiter", input: "email|ticket_id|score\nbea@example.com|1|good\n", want: ErrWrongDelimiter,
			wantMsg: `The header row has only one column ("email|ticket_id|score"), but this action needs at least 3. ` +
				"The columns are probably separated by something other than a comma, semicolon or tab (wrong delimiter). " +
				"Save the file as CSV and upload it again."},
		{name: "missing ticket column", input: "email,rating\nbea@example.com,good\n", want: ErrMissingColumns,
			wantMsg: "No column for the ticket number; the columns are: email, rating. Name a column ticket_id or choose it in the mapping form."},
		{name: "missing two columns", input: "email,notes\nbea@example.com,hi\n", want: ErrMissingColumns,
			wantMsg: "No columns for the ticket number and the score; the columns are: email, notes. " +
				"Name the columns ticket_id and score or choose them in the mapping form."},
		{name: "missing request body", kind: actions.KindCreateRequest, input: "email;title;\nbea@example.com;Hi;\n",
			want:    ErrMissingColumns,
			wantMsg: "No column for the description; the columns are: email, title, column 3. Name a column description or choose it in the mapping form."},
		{name: "non-UTF-8 header", input: "e-mail,ticket_id,sc\xf6re\nbea@example.com,1,good\n", want: ErrNotUTF8,
			wantMsg: "The file is not UTF-8 text. Save it as 'CSV UTF-8' and upload it again."},
		{name: "UTF-16 with BOM", input: "\xFF\xFEe\x00m\x00", want: ErrNotUTF8, wantMsg: "not UTF-8", partial: true},
		{name: "UTF-16 without BOM", input: "e\x00m\x00a\x00i\x00l\x00,\x00t\x00\n\x00", want: ErrNotUTF8,
			wantMsg: "not UTF-8", partial: true},
		{name: "too many rows", opt: Options{MaxRows: 2},
			input: ratingHeader + ratingLine(1) + ratingLine(2) + ratingLine(3), want: ErrTooManyRows,
			wantMsg: "The file has more than 2 rows. Split it into files of at most 2 rows and upload them one by one."},
		{name: "too large", opt: Options{MaxBytes: 40},
			input: ratingHeader + ratingLine(1), want: ErrTooLarge,
			wantMsg: "The file is larger than 40 bytes. Split it into smaller files and upload them one by one."},
		{name: "mapping outside the header", opt: Options{Mapping: Mapping{FieldUser: 0, FieldTicket: 1, FieldScore: 7}},
			input: "a,b,c\nbea@example.com,1,good\n", want: ErrBadMapping,
			wantMsg: "The mapping puts the score in column 8, but the file has only 3 columns. Choose the columns again in the mapping form."},
		{name: "broken header quoting", input: "email,\"ticket\"id,score\nbea@example.com,1,good\n", want: ErrBadHeader,
			wantMsg: "The header row could not be read: The quoted cell in column 2 has a stray quote", partial: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kind := tt.kind
			if kind == "" {
				kind = actions.KindRate
			}
			emitted := 0
			_, err := Read(strings.NewReader(tt.input), kind, tt.opt, func(b []Row) error {
				emitted += len(b)
				return nil
			})
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("Read error = %v (%T), want a *FileError", err, err)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Read error kind = %v, want %v", fe.Err, tt.want)
			}
			if tt.partial && !strings.Contains(fe.Message, tt.wantMsg) || !tt.partial && fe.Message != tt.wantMsg {
				t.Errorf("message = %q\nwant %q (partial=%v)", fe.Message, tt.wantMsg, tt.partial)
			}
			if emitted != 0 {
				t.Errorf("emitted %d rows before a whole-file error", emitted)
			}
		})
	}
}

func TestReadUnknownKind(t *testing.T) {
	t.Parallel()
	_, err := Read(strings.NewReader(ratingHeader+ratingLine(1)), "dance", Options{}, func([]Row) error { return nil })
	var fe *FileError
	if err == nil || errors.As(err, &fe) {
		t.Fatalf("Read with an unknown kind = %v, want a plain error", err)
	}
}

func TestReadSizeLimitBoundary(t *testing.T) {
	t.Parallel()
	input := ratingHeader + ratingLine(1) + ratingLine(2)
	for _, tt := range []struct {
		name    string
		max     int64
		wantErr bool
	}{
		{"exactly the limit", int64(len(input)), false},
		{"one byte over", int64(len(input)) - 1, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Read(strings.NewReader(input), actions.KindRate, Options{MaxBytes: tt.max}, func([]Row) error { return nil })
			if got := errors.Is(err, ErrTooLarge); got != tt.wantErr {
				t.Fatalf("Read with %d bytes and MaxBytes %d: err = %v, want too large = %v", len(input), tt.max, err, tt.wantErr)
			}
		})
	}
}

// A 21 MB file is refused under the default limit, and the message names it.
func TestReadTooLarge21MB(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 400)
	g := newGenReader(ratingHeader, 55_000, func(i int) string {
		return fmt.Sprintf("user%d@example.com,%d,good,%s\n", i, i+1, long)
	})
	if s := g.size(); s < 21<<20 {
		t.Fatalf("generator makes %d bytes, want at least 21 MB", s)
	}
	_, err := Read(g, actions.KindRate, Options{}, func([]Row) error { return nil })
	var fe *FileError
	if !errors.As(err, &fe) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Read 21 MB = %v, want FileError ErrTooLarge", err)
	}
	if want := "larger than 20 MB"; !strings.Contains(fe.Message, want) {
		t.Errorf("message %q does not say %q", fe.Message, want)
	}
	if g.read > DefaultMaxBytes+(1<<20) {
		t.Errorf("Read consumed %d bytes before refusing; it should stop soon after the limit", g.read)
	}
}

func TestReadRowLimit(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		rows    int
		wantErr bool
	}{
		{DefaultMaxRows, false},
		{DefaultMaxRows + 1, true},
	} {
		t.Run(fmt.Sprint(tt.rows), func(t *testing.T) {
			t.Parallel()
			n := 0
			sum, err := Read(newGenReader(ratingHeader, tt.rows, ratingLine), actions.KindRate, Options{},
				func(b []Row) error { n += len(b); return nil })
			if !tt.wantErr {
				if err != nil || sum.Rows != tt.rows || n != tt.rows || sum.Valid != tt.rows {
					t.Fatalf("Read %d rows: err %v, Rows %d, Valid %d, emitted %d", tt.rows, err, sum.Rows, sum.Valid, n)
				}
				return
			}
			var fe *FileError
			if !errors.As(err, &fe) || !errors.Is(err, ErrTooManyRows) {
				t.Fatalf("Read %d rows = %v, want FileError ErrTooManyRows", tt.rows, err)
			}
			if want := "more than 100,000 rows"; !strings.Contains(fe.Message, want) {
				t.Errorf("message %q does not say %q", fe.Message, want)
			}
		})
	}
}

// wantRow is what a test expects of one emitted Row.
type wantRow struct {
	number int
	action actions.Action // nil: invalid
	errs   []string       // each must be contained in the matching Row.Errors entry
	dup    bool
}

func TestReadRows(t *testing.T) {
	t.Parallel()
	bea := func(ticket int64, score string) actions.Action {
		return actions.Rate{User: "bea@example.com", Ticket: ticket, Score: score}
	}
	tests := []struct {
		name  string
		kind  actions.Kind
		input string
		want  []wantRow
		check func(t *testing.T, sum Summary, rows []Row)
	}{
		{
			name:  "semicolon delimiter",
			input: "email;ticket_id;score;comment\nbea@example.com;12;good;Thanks, all\n",
			want:  []wantRow{{number: 2, action: actions.Rate{User: "bea@example.com", Ticket: 12, Score: "good", Comment: "Thanks, all"}}},
			check: func(t *testing.T, sum Summary, _ []Row) {
				if sum.Delimiter != ';' {
					t.Errorf("Delimiter = %q, want ';'", sum.Delimiter)
				}
			},
		},
		{
			name:  "tab delimiter keeps empty cells",
			input: "email\tticket\tscore\tcomment\treason\nbea@example.com\t12\tbad\t\t7\n",
			want:  []wantRow{{number: 2, action: actions.Rate{User: "bea@example.com", Ticket: 12, Score: "bad", ReasonCode: 7}}},
			check: func(t *testing.T, sum Summary, _ []Row) {
				if sum.Delimiter != '\t' {
					t.Errorf("Delimiter = %q, want tab", sum.Delimiter)
				}
			},
		},
		{
			name:  "BOM",
			input: "\uFEFFemail,ticket_id,score\nbea@example.com,12,good\n",
			want:  []wantRow{{number: 2, action: bea(12, "good")}},
			check: func(t *testing.T, sum Summary, _ []Row) {
				if !sum.BOM || sum.Header[0] != "email" || sum.Mapping[FieldUser] != 0 {
					t.Errorf("BOM %v, header %q, mapping %v; want BOM stripped from the first column", sum.BOM, sum.Header, sum.Mapping)
				}
			},
		},
		{
			name:  "CRLF line ends",
			input: "email,ticket_id,score\r\nbea@example.com,12,good\r\nbea@example.com,13,bad\r\n",
			want:  []wantRow{{number: 2, action: bea(12, "good")}, {number: 3, action: bea(13, "bad")}},
		},
		{
			name:  "old Mac line ends",
			input: "email,ticket_id,score\rbea@example.com,12,good\rbea@example.com,13,bad",
			want:  []wantRow{{number: 2, action: bea(12, "good")}, {number: 3, action: bea(13, "bad")}},
		},
		{
			name:  "blank lines are skipped but keep their row numbers",
			input: "email,ticket_id,score\n\nbea@example.com,12,good\n\n\nbea@example.com,13,bad\n,,\n  \n",
			want:  []wantRow{{number: 3, action: bea(12, "good")}, {number: 6, action: bea(13, "bad")}},
			check: func(t *testing.T, sum Summary, _ []Row) {
				if sum.Rows != 2 {
					t.Errorf("Rows = %d, want 2 (blank lines not counted)", sum.Rows)
				}
			},
		},
		{
			name:  "cells trimmed, #id, score case, reason",
			input: "email , ticket_id , score , reason\n  bea@example.com ,  #12 , Bad ,  5 \n",
			want:  []wantRow{{number: 2, action: actions.Rate{User: "bea@example.com", Ticket: 12, Score: "bad", ReasonCode: 5}}},
			check: func(t *testing.T, _ Summary, rows []Row) {
				if got := rows[0].Cells[1]; got != "#12 " {
					t.Errorf("Cells[1] = %q; want the cell as read (leading space trimmed by the reader only)", got)
				}
			},
		},
		{
			name:  "numeric user id",
			input: "user_id,ticket,score\n1004,12,GOOD\n",
			want:  []wantRow{{number: 2, action: actions.Rate{User: "1004", Ticket: 12, Score: "good"}}},
		},
		{
			name: "field errors carry the field name",
			input: "email,ticket_id,score,reason\n" +
				"bob,12,good,\n" +
				"bea@example.com,abc,great,\n" +
				"bea@example.com,12,good,x\n" +
				"bea@example.com,12,good,3\n",
			want: []wantRow{
				{number: 2, errs: []string{`user: "bob" is neither an email address nor a Zendesk user id`}},
				{number: 3, errs: []string{`ticket: "abc" is not a ticket number; write it as 123 or #123.`,
					`score: "great" is neither good nor bad`}},
				{number: 4, errs: []string{`reason: "x" is not a reason code`}},
				{number: 5, errs: []string{"reason: A reason can only be given with a bad rating."}},
			},
		},
		{
			name: "bare quote mid-file is that row's error only",
			input: "email,ticket_id,score\n" +
				"bea@example.com,12,good\n" +
				"bea@example.com,1\"3,good\n" +
				"bea@example.com,14,good\n",
			want: []wantRow{
				{number: 2, action: bea(12, "good")},
				{number: 3, errs: []string{`A quote (") appears inside the cell under "ticket_id" (column 2), which does not start with one (line 3).`}},
				{number: 4, action: bea(14, "good")},
			},
		},
		{
			name: "stray quote after a quoted cell",
			input: "email,ticket_id,score\n" +
				"bea@example.com,\"13\"x,good\n" +
				"bea@example.com,14,good\n",
			want: []wantRow{
				{number: 2, errs: []string{`The quoted cell under "ticket_id" (column 2) has a stray quote (") after its closing quote (line 2).`}},
				{number: 3, action: bea(14, "good")},
			},
		},
		{
			name: "unclosed quote names the lines it swallowed",
			input: "email,ticket_id,score,comment\n" +
				"bea@example.com,12,good,\"Thanks\n" +
				"bea@example.com,13,good,\n" +
				"bea@example.com,14,good,\"ok\"\n" +
				"bea@example.com,15,good,\n",
			want: []wantRow{
				{number: 2, errs: []string{`A quoted cell under "comment" (column 4) that starts on line 2 is not closed properly, so lines 2 to 4 were read as this one row.`}},
				{number: 3, action: bea(15, "good")},
			},
		},
		{
			name: "multi-line quoted cell is one row and numbering follows the spreadsheet",
			input: "email,ticket_id,score,comment\n" +
				"bea@example.com,12,good,\"Line one\r\nline two\"\n" +
				"bea@example.com,13,good,\n",
			want: []wantRow{
				{number: 2, action: actions.Rate{User: "bea@example.com", Ticket: 12, Score: "good", Comment: "Line one\nline two"}},
				{number: 3, action: bea(13, "good")},
			},
		},
		{
			name: "non-UTF-8 row",
			input: "email,ticket_id,score,comment\n" +
				"bea@example.com,12,good,Tr\xe8s bien\n" +
				"bea@example.com,13,good,Très bien\n",
			want: []wantRow{
				{number: 2, errs: []string{`The cell under "comment" (column 4) is not UTF-8 text. Save the file as 'CSV UTF-8' and upload it again.`}},
				{number: 3, action: actions.Rate{User: "bea@example.com", Ticket: 13, Score: "good", Comment: "Très bien"}},
			},
			check: func(t *testing.T, _ Summary, rows []Row) {
				if got := rows[0].Cells[3]; got != "Tr\uFFFDs bien" || !utf8.ValidString(got) {
					t.Errorf("Cells[3] = %q, want the bad byte replaced by U+FFFD", got)
				}
			},
		},
		{
			name: "cell count differs from the header",
			input: "email,ticket_id,score\n" +
				"bea@example.com,12\n" +
				"bea@example.com,13,good,extra\n" +
				"bea@example.com,14,good\n",
			want: []wantRow{
				{number: 2, errs: []string{"This row has 2 cells but the header has 3; a delimiter is missing or extra (a value that contains a comma needs quotes around it)."}},
				{number: 3, errs: []string{"This row has 4 cells but the header has 3"}},
				{number: 4, action: bea(14, "good")},
			},
		},
		{
			name: "duplicates flagged and still valid",
			input: "email,ticket_id,score\n" +
				"bea@example.com,12,good\n" +
				"beau@example.com,#12,bad\n" +
				"bea@example.com,13,good\n",
			want: []wantRow{
				{number: 2, action: bea(12, "good")},
				{number: 3, action: actions.Rate{User: "beau@example.com", Ticket: 12, Score: "bad"}, dup: true},
				{number: 4, action: bea(13, "good")},
			},
			check: func(t *testing.T, sum Summary, rows []Row) {
				if sum.Duplicates != 1 || sum.Valid != 3 || sum.Invalid != 0 {
					t.Errorf("Duplicates %d Valid %d Invalid %d, want 1 3 0", sum.Duplicates, sum.Valid, sum.Invalid)
				}
				if rows[0].Key != "rate:ticket:12" || rows[1].Key != rows[0].Key {
					t.Errorf("keys %q %q, want rate:ticket:12 twice", rows[0].Key, rows[1].Key)
				}
			},
		},
		{
			name: "comment rows: same text on the same request is a duplicate, other text is not",
			kind: actions.KindComment,
			input: "email,request_id,comment\n" +
				"bea@example.com,7,Called back\n" +
				"bea@example.com,7,Called again\n" +
				"bea@example.com,7,Called back\n",
			want: []wantRow{
				{number: 2, action: actions.Comment{User: "bea@example.com", Request: 7, Body: "Called back"}},
				{number: 3, action: actions.Comment{User: "bea@example.com", Request: 7, Body: "Called again"}},
				{number: 4, action: actions.Comment{User: "bea@example.com", Request: 7, Body: "Called back"}, dup: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kind := tt.kind
			if kind == "" {
				kind = actions.KindRate
			}
			sum, rows := mustRead(t, tt.input, kind, Options{})
			if len(rows) != len(tt.want) {
				t.Fatalf("got %d rows, want %d: %+v", len(rows), len(tt.want), rows)
			}
			valid, invalid := 0, 0
			for i, w := range tt.want {
				r := rows[i]
				if r.Number != w.number {
					t.Errorf("row %d: Number = %d, want %d", i, r.Number, w.number)
				}
				if diff := cmp.Diff(w.action, r.Action); diff != "" {
					t.Errorf("row %d: Action (-want +got):\n%s", r.Number, diff)
				}
				if w.action != nil {
					valid++
				} else {
					invalid++
				}
				if len(r.Errors) != len(w.errs) {
					t.Errorf("row %d: Errors = %q, want %d matching %q", r.Number, r.Errors, len(w.errs), w.errs)
				} else {
					for j, e := range w.errs {
						if !strings.Contains(r.Errors[j], e) {
							t.Errorf("row %d: Errors[%d] = %q, want it to contain %q", r.Number, j, r.Errors[j], e)
						}
					}
				}
				if r.Duplicate != w.dup {
					t.Errorf("row %d: Duplicate = %v, want %v", r.Number, r.Duplicate, w.dup)
				}
				if (r.Key == "") != (w.action == nil) {
					t.Errorf("row %d: Key = %q; want a key exactly for valid rows", r.Number, r.Key)
				}
			}
			if sum.Rows != len(rows) || sum.Valid != valid || sum.Invalid != invalid {
				t.Errorf("Summary Rows %d Valid %d Invalid %d, want %d %d %d", sum.Rows, sum.Valid, sum.Invalid, len(rows), valid, invalid)
			}
			if tt.check != nil {
				tt.check(t, sum, rows)
			}
		})
	}
}

func TestReadSummary(t *testing.T) {
	t.Parallel()
	input := "Email, Ticket ID ,Rating,Notes,Internal,\n" +
		"bea@example.com,12,good,hi,x,\n" +
		"bea@example.com,12,good,again,x,\n" +
		"nobody,13,good,,x,\n"
	sum, _ := mustRead(t, input, actions.KindRate, Options{})
	want := Summary{
		Header:    []string{"Email", "Ticket ID", "Rating", "Notes", "Internal", ""},
		Mapping:   Mapping{FieldUser: 0, FieldTicket: 1, FieldScore: 2, FieldComment: 3},
		Delimiter: ',',
		Rows:      3, Valid: 2, Invalid: 1, Duplicates: 1,
		Unmapped: []string{"Internal", "column 6"},
	}
	if diff := cmp.Diff(want, sum); diff != "" {
		t.Errorf("Summary (-want +got):\n%s", diff)
	}
}

func TestReadMappingOverride(t *testing.T) {
	t.Parallel()
	input := "who,which,how,extra\nbea@example.com,12,good,x\n"

	sum, err := Read(strings.NewReader(input), actions.KindRate, Options{}, func([]Row) error { return nil })
	if !errors.Is(err, ErrMissingColumns) {
		t.Fatalf("Read without a mapping = %v, want ErrMissingColumns", err)
	}
	if diff := cmp.Diff([]string{"who", "which", "how", "extra"}, sum.Header); diff != "" {
		t.Errorf("Summary.Header on a missing-column error, for the mapping form (-want +got):\n%s", diff)
	}

	// Fields the action does not use (subject) are dropped from the mapping.
	opt := Options{Mapping: Mapping{FieldUser: 0, FieldTicket: 1, FieldScore: 2, FieldSubject: 3}}
	sum, rows := mustRead(t, input, actions.KindRate, opt)
	if diff := cmp.Diff(Mapping{FieldUser: 0, FieldTicket: 1, FieldScore: 2}, sum.Mapping); diff != "" {
		t.Errorf("Summary.Mapping (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"extra"}, sum.Unmapped); diff != "" {
		t.Errorf("Summary.Unmapped (-want +got):\n%s", diff)
	}
	want := actions.Rate{User: "bea@example.com", Ticket: 12, Score: "good"}
	if len(rows) != 1 || !cmp.Equal(rows[0].Action, actions.Action(want)) {
		t.Errorf("rows = %+v, want one %+v", rows, want)
	}
}

// Read hands rows over in batches while it reads, instead of holding the
// file: the first batch arrives long before the input is used up.
func TestReadStreams(t *testing.T) {
	t.Parallel()
	const n = 10_500
	g := newGenReader(ratingHeader, n, ratingLine)
	total := g.size()
	var batches [][]Row
	var readAtFirst int64 = -1
	sum, err := Read(g, actions.KindRate, Options{}, func(b []Row) error {
		if readAtFirst < 0 {
			readAtFirst = g.read
		}
		batches = append(batches, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(batches) != 11 {
		t.Fatalf("emit called %d times, want 11 batches for %d rows", len(batches), n)
	}
	if readAtFirst <= 0 || readAtFirst > total/2 {
		t.Errorf("first batch emitted after %d of %d bytes were read; want well before the end", readAtFirst, total)
	}
	// Batches given to emit are not reused: each still holds its own rows.
	next := 2
	for i, b := range batches {
		if want := min(batchSize, n-i*batchSize); len(b) != want {
			t.Errorf("batch %d has %d rows, want %d", i, len(b), want)
		}
		for _, r := range b {
			if r.Number != next {
				t.Fatalf("batch %d: row Number %d, want %d (batches overwritten?)", i, r.Number, next)
			}
			next++
		}
	}
	if sum.Rows != n || sum.Valid != n {
		t.Errorf("Rows %d Valid %d, want %d", sum.Rows, sum.Valid, n)
	}
}

func TestReadEmitError(t *testing.T) {
	t.Parallel()
	stop := errors.New("disk full")
	calls := 0
	_, err := Read(newGenReader(ratingHeader, 3000, ratingLine), actions.KindRate, Options{}, func([]Row) error {
		calls++
		return stop
	})
	var fe *FileError
	if !errors.Is(err, stop) || errors.As(err, &fe) {
		t.Fatalf("Read = %v, want the emit error wrapped (not a FileError)", err)
	}
	if calls != 1 {
		t.Errorf("emit called %d times after failing, want 1", calls)
	}
}

// Every non-blank line becomes exactly one Row, whatever is wrong with it.
func TestReadNothingDropped(t *testing.T) {
	t.Parallel()
	lines := []string{
		"bea@example.com,1,good",
		"bea@example.com,2,meh",
		"",
		"bea@example.com,3",
		"bea@example.com,4,good,extra",
		"bea@exa\xffmple.com,5,good",
		"bea@example.com,6\",good",
		"bea@example.com,\"7\"x,good",
		"  ",
		"not an email,8,good",
		",,",
		",9,",
		"bea@example.com,10,good",
	}
	input := "email,ticket_id,score\n" + strings.Join(lines, "\n") + "\n"
	sum, rows := mustRead(t, input, actions.KindRate, Options{})
	var want []int
	for i, l := range lines {
		if strings.Trim(l, " ,") != "" {
			want = append(want, i+2)
		}
	}
	var got []int
	for _, r := range rows {
		got = append(got, r.Number)
		if r.Action == nil && len(r.Errors) == 0 {
			t.Errorf("row %d is invalid without an error", r.Number)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("row numbers (-want +got):\n%s", diff)
	}
	if sum.Valid != 2 || sum.Invalid != len(want)-2 {
		t.Errorf("Valid %d Invalid %d, want 2 and %d", sum.Valid, sum.Invalid, len(want)-2)
	}
}

func TestDetectDelimiter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		head string
		want rune
	}{
		{"a,b,c\n", ','},
		{"a;b;c\n1,5;2;3\n", ';'},
		{"a\tb\tc\n", '\t'},
		{"a;b,c\n", ','}, // a tie goes to the comma
		{"only\n", ','},
		{"\n  \na;b\n", ';'}, // leading blank lines are passed over
		{`email,ticket,"score; good; or; bad"` + "\n", ','},
		{`"a,b";"c,d";e` + "\n", ';'},
		{"a;b;c", ';'}, // no newline within the peeked bytes
	}
	for _, tt := range tests {
		if got := detectDelimiter([]byte(tt.head)); got != tt.want {
			t.Errorf("detectDelimiter(%q) = %q, want %q", tt.head, got, tt.want)
		}
	}
}

func TestCRReader(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"a\rb\rc", "a\nb\nc"},
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\r", "a\n"},
		{"\r\r\n\r", "\n\r\n\n"},
	}
	for _, tt := range tests {
		// One byte at a time exercises a CR at the end of every chunk.
		for _, chunk := range []int{1, 2, 64} {
			t.Run(fmt.Sprintf("%q/%d", tt.in, chunk), func(t *testing.T) {
				t.Parallel()
				got, err := io.ReadAll(&chunkReader{r: &crReader{r: strings.NewReader(tt.in)}, n: chunk})
				if err != nil {
					t.Fatal(err)
				}
				// A CRLF split across reads becomes a plain LF; both end a
				// line for encoding/csv.
				norm := strings.ReplaceAll(string(got), "\r\n", "\n")
				if want := strings.ReplaceAll(tt.want, "\r\n", "\n"); norm != want {
					t.Errorf("got %q, want %q (CRLF and LF alike)", got, tt.want)
				}
			})
		}
	}
}

// chunkReader reads at most n bytes at a time from r.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

func TestThousandsAndSize(t *testing.T) {
	t.Parallel()
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 100_000: "100,000", 1_234_567: "1,234,567", -4200: "-4,200"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[int64]string{20 << 20: "20 MB", 3 << 19: "1.5 MB", 64 << 10: "64 KB", 40: "40 bytes"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}

// BenchmarkRead100k reads, parses and validates a 100,000-row rating CSV
// (about 5 MB) held in memory, and reports rows/s, bytes allocated per read
// and the largest live heap seen while rows were being emitted.
func BenchmarkRead100k(b *testing.B) {
	const n = 100_000
	var buf bytes.Buffer
	buf.WriteString(ratingHeader)
	for i := range n {
		buf.WriteString(ratingLine(i))
	}
	data := buf.Bytes()
	var peak uint64
	var ms runtime.MemStats
	emit := func(batch []Row) error {
		if len(batch) == 0 {
			return errors.New("empty batch")
		}
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
		return nil
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		sum, err := Read(bytes.NewReader(data), actions.KindRate, Options{}, emit)
		if err != nil || sum.Valid != n {
			b.Fatalf("Read: %v (valid %d)", err, sum.Valid)
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/(1<<20), "alloc-MB/op")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}
