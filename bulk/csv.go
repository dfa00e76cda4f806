// Package bulk runs one action for many end users from a CSV: it reads the
// file as a stream (size and row limits, UTF-8 with or without BOM, comma,
// semicolon or tab), maps columns to fields, validates every row with the
// actions package so a support lead sees exactly what is wrong with which
// row before anything is sent, and writes the per-row results CSV with every
// cell made safe for spreadsheet apps.
package bulk

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/onbehalf/onbehalf/actions"
)

// Limits applied when Options leaves them zero. They bound what one upload
// can make the server hold and the database store (security promise 10).
const (
	DefaultMaxBytes = 20 << 20 // 20 MB
	DefaultMaxRows  = 100_000
)

// batchSize is how many rows Read hands to emit at a time: big enough that
// one INSERT transaction per batch is cheap, small enough to keep memory flat.
const batchSize = 1000

// Options tunes Read. The zero value uses the defaults and guesses the
// mapping from the header.
type Options struct {
	// MaxBytes is the largest file accepted; 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxRows is the most data rows accepted; 0 means DefaultMaxRows.
	MaxRows int
	// Mapping overrides GuessMapping, e.g. after the mapping form. Fields
	// the action does not use are ignored.
	Mapping Mapping
	// AllowMissingColumns reads a file whose header lacks a required field
	// instead of refusing it: the rows come back invalid and
	// Summary.MissingColumns says what is missing, so the preview can offer
	// the mapping form (see Remap).
	AllowMissingColumns bool
	// Reasons is the account's list of reasons for a bad rating: a
	// reason cell must give one of their codes or names. nil takes any
	// whole-number code (the list could not be read).
	Reasons Reasons
}

// Row is one data row of the file, valid or not.
type Row struct {
	// Number is the row number a person sees in a spreadsheet: the header
	// is row 1 and the first data row is row 2. Blank lines are not Rows but
	// keep their numbers, as spreadsheet apps show them.
	Number int
	// Cells are the input cells as read, for the results CSV: leading
	// spaces are dropped with , and ; delimiters, and invalid UTF-8 and NUL
	// become U+FFFD so the cells can be stored in a text column.
	Cells []string
	// Action is the row's action, or nil when the row is invalid.
	Action actions.Action
	// Errors are sentences saying what is wrong, e.g.
	// `score: The score must be good or bad, not "great" (...)`.
	Errors []string
	// Key names the target of a valid row (e.g. "rate:ticket:123") for
	// duplicate detection; it is empty for invalid rows.
	Key string
	// Duplicate reports that an earlier row has the same Key. The row stays
	// valid; the preview counts and shows it.
	Duplicate bool
	// LeftOut, when not "", says why the score mapping leaves this row
	// out: it has no Action and no Errors, and nothing is sent for it.
	LeftOut string
}

// Summary describes a file Read went through.
type Summary struct {
	Header    []string // the header cells, trimmed
	Mapping   Mapping  // the mapping used: the override or the guess, limited to the action's fields
	Delimiter rune     // ',', ';' or '\t'
	BOM       bool     // the file started with a UTF-8 byte order mark
	// Rows counts the data rows (blank lines excluded); Valid + Invalid = Rows.
	Rows, Valid, Invalid int
	// Duplicates counts valid rows whose Key an earlier row already had.
	Duplicates int
	// Unmapped lists the header names no field uses ("column N" for an
	// unnamed column).
	Unmapped []string
	// MissingColumns says which required fields have no column, when
	// Options.AllowMissingColumns let reading go on without them.
	MissingColumns string
}

// FileError is a problem with the file as a whole, with a sentence for the
// person who uploaded it. Nothing from such a file may be stored: when Read
// returns one after emitting rows, the caller rolls those back.
type FileError struct {
	Message string // a full sentence saying what is wrong and what to do
	Err     error  // one of the Err* kinds below, possibly wrapping a cause
}

// Error returns the Message.
func (e *FileError) Error() string { return e.Message }

// Unwrap returns the kind of problem, for errors.Is.
func (e *FileError) Unwrap() error { return e.Err }

// Kinds of FileError, for errors.Is (an upload handler may answer
// ErrTooLarge with 413, for instance).
var (
	ErrEmptyFile      = errors.New("bulk: empty file")
	ErrNoDataRows     = errors.New("bulk: header but no data rows")
	ErrTooLarge       = errors.New("bulk: file too large")
	ErrTooManyRows    = errors.New("bulk: too many rows")
	ErrNotUTF8        = errors.New("bulk: not UTF-8 text")
	ErrWrongDelimiter = errors.New("bulk: wrong delimiter")
	ErrMissingColumns = errors.New("bulk: required columns missing")
	ErrBadMapping     = errors.New("bulk: mapping points outside the header")
	ErrBadHeader      = errors.New("bulk: header row unreadable")
)

const notUTF8Message = "The file is not UTF-8 text. Save it as 'CSV UTF-8' and upload it again."

// Read reads a CSV of rows for actions of kind k and hands them to emit in
// batches of up to 1000, in file order, without ever holding the whole file.
// Every non-blank line after the header becomes a Row, valid or with Errors.
//
// Problems with the whole file are returned as a *FileError (possibly after
// some batches were emitted: the caller stores batches in one transaction
// and rolls back on any error). When the error is ErrMissingColumns the
// Summary still carries the Header, so a mapping form can be shown. An error
// from emit stops reading and is returned wrapped.
func Read(r io.Reader, k actions.Kind, opt Options, emit func(batch []Row) error) (Summary, error) {
	var sum Summary
	if req, _ := Fields(k); req == nil {
		return sum, fmt.Errorf("bulk: read: unknown action %q", k)
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.MaxRows <= 0 {
		opt.MaxRows = DefaultMaxRows
	}
	lim := &limitReader{r: r, max: opt.MaxBytes}
	br := bufio.NewReaderSize(&crReader{r: lim}, 64<<10)

	head, err := br.Peek(br.Size())
	if lim.over {
		return sum, tooLarge(opt.MaxBytes)
	}
	if err != nil && err != io.EOF {
		return sum, fmt.Errorf("bulk: read: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, []byte("\xEF\xBB\xBF")):
		sum.BOM = true
		head = head[3:]
		if _, err := br.Discard(3); err != nil {
			return sum, fmt.Errorf("bulk: read: %w", err)
		}
	case bytes.HasPrefix(head, []byte("\xFF\xFE")), bytes.HasPrefix(head, []byte("\xFE\xFF")):
		// UTF-16, as "Unicode Text" exports are; csv would read garbage.
		return sum, &FileError{Message: notUTF8Message, Err: ErrNotUTF8}
	}
	sum.Delimiter = detectDelimiter(head)

	cr := csv.NewReader(br)
	cr.Comma = sum.Delimiter
	cr.FieldsPerRecord = -1 // counted here, so a short row is an error on that row alone
	cr.ReuseRecord = true
	// "a, b" is common in hand-written files; but with tabs, trimming
	// leading white space would swallow empty cells.
	cr.TrimLeadingSpace = sum.Delimiter != '\t'
	rs := &recordSource{csv: cr, lim: lim, nextLine: 1}

	hdr, err := rs.next()
	switch {
	case err == io.EOF:
		return sum, &FileError{Message: "The file is empty. Upload a CSV with a header row and at least one data row.", Err: ErrEmptyFile}
	case errors.Is(err, errTooLarge):
		return sum, tooLarge(opt.MaxBytes)
	case err != nil:
		return sum, err
	case hdr.parseErr != nil:
		return sum, &FileError{
			Message: fmt.Sprintf("The header row could not be read: %s", quoteProblem(hdr.parseErr, nil, len(hdr.cells))),
			Err:     fmt.Errorf("%w: %w", ErrBadHeader, hdr.parseErr),
		}
	}
	for _, c := range hdr.cells {
		// A NUL in the header is the mark of UTF-16 without a BOM.
		if !utf8.ValidString(c) || strings.IndexByte(c, 0) >= 0 {
			return sum, &FileError{Message: notUTF8Message, Err: ErrNotUTF8}
		}
	}
	sum.Header = make([]string, len(hdr.cells))
	for i, c := range hdr.cells {
		sum.Header[i] = strings.TrimSpace(c)
	}

	req, _ := Fields(k)
	if len(sum.Header) == 1 && len(req) > 1 {
		return sum, &FileError{
			Message: fmt.Sprintf("The header row has only one column (%q), but this action needs at least %d. "+
				"The columns are probably separated by something other than a comma, semicolon or tab "+
				"(wrong delimiter). Save the file as CSV and upload it again.", sum.Header[0], len(req)),
			Err: ErrWrongDelimiter,
		}
	}
	m := opt.Mapping
	if m == nil {
		m = GuessMapping(k, sum.Header)
	}
	if sum.Mapping, err = effectiveMapping(k, m, len(sum.Header)); err != nil {
		return sum, err
	}
	sum.Unmapped = unmapped(sum.Mapping, sum.Header)
	if err := missingColumns(k, sum.Mapping, sum.Header); err != nil {
		if !opt.AllowMissingColumns {
			return sum, err
		}
		// Keep going: every row will say which field it lacks, and the
		// preview's mapping form can fix the columns without a new upload.
		var fe *FileError
		if errors.As(err, &fe) {
			sum.MissingColumns = fe.Message
		}
	}

	seen := map[string]struct{}{}
	batch, batchBytes := make([]Row, 0, batchSize), 0
	for {
		rec, err := rs.next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, errTooLarge) {
			return sum, tooLarge(opt.MaxBytes)
		}
		if err != nil {
			return sum, err
		}
		sum.Rows++
		if sum.Rows > opt.MaxRows {
			return sum, &FileError{
				Message: fmt.Sprintf("The file has more than %s rows. Split it into files of at most %s rows and upload them one by one.",
					thousands(opt.MaxRows), thousands(opt.MaxRows)),
				Err: ErrTooManyRows,
			}
		}
		row := buildRow(parser{kind: k, m: sum.Mapping, reasons: opt.Reasons}, sum.Header, rec)
		if row.Action == nil {
			sum.Invalid++
		} else {
			sum.Valid++
			row.Key = rowKey(row.Action)
			if _, dup := seen[row.Key]; dup {
				row.Duplicate = true
				sum.Duplicates++
			} else {
				seen[row.Key] = struct{}{}
			}
		}
		batch = append(batch, row)
		if batchBytes += rowBytes(row); len(batch) == batchSize || batchBytes >= maxBatchBytes {
			if err := emit(batch); err != nil {
				return sum, fmt.Errorf("bulk: read: emit rows: %w", err)
			}
			// A fresh slice: the caller may keep the one it was given.
			batch, batchBytes = make([]Row, 0, batchSize), 0
		}
	}
	if sum.Rows == 0 {
		return sum, &FileError{Message: "The file has a header row but no data rows. Add one row per action below the header.", Err: ErrNoDataRows}
	}
	if len(batch) > 0 {
		if err := emit(batch); err != nil {
			return sum, fmt.Errorf("bulk: read: emit rows: %w", err)
		}
	}
	return sum, nil
}

// buildRow checks one record's shape and encoding, then parses it.
func buildRow(p parser, header []string, rec record) Row {
	row := Row{Number: rec.number, Cells: storableCells(rec.cells)}
	row.Errors = limitCells(p.m, header, row.Cells)
	switch {
	case rec.parseErr != nil:
		row.Errors = append(row.Errors, quoteProblem(rec.parseErr, header, len(rec.cells)))
	case len(rec.cells) != len(header):
		row.Errors = append(row.Errors, fmt.Sprintf(
			"This row has %d cells but the header has %d; a delimiter is missing or extra "+
				"(a value that contains %s needs quotes around it).",
			len(rec.cells), len(header), delimName(rec.delim)))
	}
	for i, c := range rec.cells {
		if !utf8.ValidString(c) || strings.IndexByte(c, 0) >= 0 {
			row.Errors = append(row.Errors, fmt.Sprintf(
				"The cell %s is not UTF-8 text. Save the file as 'CSV UTF-8' and upload it again.", cellName(header, i)))
			break
		}
	}
	if len(row.Errors) > 0 {
		return row
	}
	row.Action, row.Errors, row.LeftOut = p.parse(rec.cells)
	return row
}

// cellName says where cell i is: `under "score" (column 3)`.
func cellName(header []string, i int) string {
	if i < len(header) && header[i] != "" {
		return fmt.Sprintf("under %q (column %d)", header[i], i+1)
	}
	return fmt.Sprintf("in column %d", i+1)
}

// storableCells copies the cells (csv reuses its slice), replacing what a
// database text column would refuse: invalid UTF-8 and NUL.
func storableCells(cells []string) []string {
	out := slices.Clone(cells)
	for i, c := range out {
		if !utf8.ValidString(c) || strings.IndexByte(c, 0) >= 0 {
			out[i] = strings.ReplaceAll(strings.ToValidUTF8(c, "\uFFFD"), "\x00", "\uFFFD")
		}
	}
	return out
}

// quoteProblem explains a csv.ParseError in words. cell is the index of the
// cell being read when it failed (csv returns the cells before it).
func quoteProblem(pe *csv.ParseError, header []string, cell int) string {
	switch {
	case pe.StartLine != pe.Line:
		// A quote opened and not closed on its line swallows the following
		// lines into one cell until the next quote (or the end of the file);
		// say which lines, so none of them goes unnoticed.
		return fmt.Sprintf("A quoted cell %s that starts on line %d is not closed properly, so lines %d to %d were read as this one row. "+
			"Check the quotes on line %d and upload the file again.", cellName(header, cell), pe.StartLine, pe.StartLine, pe.Line, pe.StartLine)
	case errors.Is(pe.Err, csv.ErrBareQuote):
		return fmt.Sprintf("A quote (\") appears inside the cell %s, which does not start with one (line %d). "+
			"Put the whole cell in quotes and write the quote twice (\"\"), or remove it.", cellName(header, cell), pe.Line)
	case errors.Is(pe.Err, csv.ErrQuote):
		return fmt.Sprintf("The quoted cell %s has a stray quote (\") after its closing quote (line %d). "+
			"Inside quotes write a quote twice (\"\"), and put only the delimiter after the closing quote.", cellName(header, cell), pe.Line)
	}
	return fmt.Sprintf("This row could not be read (line %d): %v.", pe.Line, pe.Err)
}

func delimName(d rune) string {
	switch d {
	case ';':
		return "a semicolon"
	case '\t':
		return "a tab"
	}
	return "a comma"
}

// detectDelimiter picks the delimiter that splits the first non-blank line
// of head into the most columns, counting only delimiters outside quotes.
// Ties (including a single column) go to the comma.
func detectDelimiter(head []byte) rune {
	for len(head) > 0 {
		line, rest, _ := bytes.Cut(head, []byte("\n"))
		if len(bytes.TrimSpace(line)) > 0 {
			head = line
			break
		}
		head = rest
	}
	var commas, semis, tabs int
	inQuote := false
	for _, b := range head {
		switch b {
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				commas++
			}
		case ';':
			if !inQuote {
				semis++
			}
		case '\t':
			if !inQuote {
				tabs++
			}
		}
	}
	switch {
	case semis > commas && semis >= tabs:
		return ';'
	case tabs > commas && tabs > semis:
		return '\t'
	}
	return ','
}

// record is one CSV record with its place in the file.
type record struct {
	number   int      // spreadsheet row number
	cells    []string // valid until the next call to next
	parseErr *csv.ParseError
	delim    rune
}

// recordSource numbers csv records the way a spreadsheet app does and
// skips blank ones.
type recordSource struct {
	csv      *csv.Reader
	lim      *limitReader
	nextLine int // the physical line after the previous record
	number   int // the spreadsheet row number of the previous record
}

// next returns the next non-blank record, io.EOF at the end, or an error
// wrapping errTooLarge once the size limit is passed.
func (s *recordSource) next() (record, error) {
	for {
		cells, err := s.csv.Read()
		if s.lim.over {
			return record{}, errTooLarge
		}
		if err == io.EOF {
			return record{}, io.EOF
		}
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			return record{}, fmt.Errorf("bulk: read: %w", err)
		}
		var start, end int
		if pe != nil {
			// csv drops the rest of the line that failed, so the next
			// record starts on the line after.
			start, end = pe.StartLine, pe.Line
		} else {
			start, _ = s.csv.FieldPos(0)
			end = start
			for _, c := range cells {
				end += strings.Count(c, "\n") // newlines inside quoted cells
			}
		}
		// csv skips empty lines silently; spreadsheet apps show each as an
		// empty row, so they still take a number.
		s.number += start - s.nextLine + 1
		s.nextLine = end + 1
		if pe == nil && blank(cells) {
			continue
		}
		// A file onbehalf wrote (the rows to fix, the results) has an
		// apostrophe before cells a spreadsheet would take as formulas
		// (SafeCell); uploaded again, its cells are what they were.
		for i, c := range cells {
			cells[i] = UnsafeCell(c)
		}
		return record{number: s.number, cells: cells, parseErr: pe, delim: s.csv.Comma}, nil
	}
}

// blank reports whether every cell is empty after trimming, as in the
// ",,,," lines spreadsheet exports leave below the data.
func blank(cells []string) bool {
	for _, c := range cells {
		if strings.TrimSpace(c) != "" {
			return false
		}
	}
	return true
}

var errTooLarge = errors.New("bulk: size limit passed")

// limitReader counts bytes and fails once more than max have been read.
type limitReader struct {
	r    io.Reader
	max  int64
	n    int64
	over bool
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.over {
		return 0, errTooLarge
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		l.over = true
		return n, errTooLarge
	}
	return n, err
}

func tooLarge(max int64) *FileError {
	return &FileError{
		Message: fmt.Sprintf("The file is larger than %s. Split it into smaller files and upload them one by one.", sizeText(max)),
		Err:     ErrTooLarge,
	}
}

// crReader turns lone carriage returns into newlines, so files saved with
// old Mac line endings ("CSV (Macintosh)") are read line by line. CRLF inside
// a chunk passes through for encoding/csv to handle; a CR that ends a chunk
// becomes a newline at once and a LF right after it is dropped, so nothing
// is held back between reads.
type crReader struct {
	r      io.Reader
	lastCR bool // the previous chunk ended in a CR, already made a newline
}

func (c *crReader) Read(p []byte) (int, error) {
	for {
		n, err := c.r.Read(p)
		if n > 0 {
			if c.lastCR && p[0] == '\n' {
				n = copy(p, p[1:n])
			}
			c.lastCR = false
		}
		for i, b := range p[:n] {
			switch {
			case b != '\r':
			case i+1 == n:
				p[i] = '\n'
				c.lastCR = true
			case p[i+1] != '\n':
				p[i] = '\n'
			}
		}
		if n > 0 || err != nil || len(p) == 0 {
			return n, err
		}
	}
}

// sizeText writes a byte count the way the limit is spoken of.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// thousands writes n with comma separators: 100000 -> "100,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, d := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
