package bulk

import (
	"encoding/csv"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ResultRow is one row of the results CSV: the input cells and how the row
// ended. Every row has the same columns, whatever its shape.
type ResultRow struct {
	Number int      // the spreadsheet row number in the uploaded file
	Cells  []string // the input cells, as Read gave them in Row.Cells
	// Outcome is the row's state: done, failed, skipped, invalid, or
	// pending or queued while the run goes.
	Outcome string
	// Message says what happened, for every row.
	Message string
	// Error says what went wrong, only for failed and invalid rows.
	Error      string
	HTTPStatus int   // Zendesk's status for the write; 0 when none was sent
	ZendeskID  int64 // the rating's id, or the request's; 0 when none
}

// ResultColumns are the columns the results CSV adds after the file's own
// (README.md, "Results CSV", explains each).
var ResultColumns = []string{"row", "outcome", "message", "error", "zendesk_id", "http_status", "extra_cells"}

// SafeCell neutralises a cell a spreadsheet app would run as a formula
// (CSV injection, security promise 10). The cell's first character that a
// spreadsheet does not skip or hide decides: spaces of every kind (no-break,
// ideographic, …), line breaks, zero-width and other format characters
// (byte-order marks, joiners, direction marks) and control characters are
// looked past. If that character is = + - or @ (or their full-width forms,
// which some apps accept), or the cell starts with a tab or a carriage
// return, the cell gets a leading apostrophe, which spreadsheets take as
// "this is text". Other cells are returned unchanged.
//
// UnsafeCell undoes it, so a CSV onbehalf wrote can be uploaded again with
// its cells as they were. For that, apostrophes already leading a cell are
// looked past too: the cell "'+1" gets a second apostrophe, or UnsafeCell
// could not tell it from "+1" neutralised.
func SafeCell(s string) string {
	if formulaLike(strings.TrimLeft(s, "'")) {
		return "'" + s
	}
	return s
}

// UnsafeCell is the inverse of SafeCell, for cells read from an uploaded or
// pasted CSV: a cell that starts with an apostrophe and whose rest SafeCell
// would neutralise loses that one apostrophe; any other cell, other leading
// apostrophes included, is returned unchanged. UnsafeCell(SafeCell(s)) == s
// for every s.
func UnsafeCell(s string) string {
	if rest, ok := strings.CutPrefix(s, "'"); ok && SafeCell(rest) == s {
		return rest
	}
	return s
}

// formulaLike reports whether a spreadsheet might take s as a formula (see
// SafeCell).
func formulaLike(s string) bool {
	for i, r := range s {
		if i == 0 && (r == '\t' || r == '\r') {
			return true
		}
		if ignorableLeader(r) {
			continue
		}
		switch r {
		case '=', '+', '-', '@', '＝', '＋', '－', '＠':
			return true
		}
		return false
	}
	return false
}

// ignorableLeader reports whether a spreadsheet may skip r, or show nothing
// for it, before the start of a formula.
func ignorableLeader(r rune) bool {
	switch r {
	case '\u115f', '\u1160', '\u3164', '\uffa0': // Hangul fillers: letters that show nothing
		return true
	}
	return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// WriteResults writes the results CSV: the input header and cells followed
// by ResultColumns, every cell through SafeCell. It starts with a UTF-8
// byte order mark and ends lines with CRLF so that spreadsheet apps open it
// as UTF-8 without an import dialog. Every line has the same number of
// cells: a row with fewer cells than the header is padded, and cells beyond
// the header's width go, joined by sep, into extra_cells. An error from
// rows stops the writing and is returned.
func WriteResults(w io.Writer, header []string, sep string, rows iter.Seq2[ResultRow, error]) error {
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return fmt.Errorf("bulk: write results: %w", err)
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	line := make([]string, 0, len(header)+len(ResultColumns))
	for _, h := range header {
		line = append(line, safeText(h))
	}
	line = append(line, ResultColumns...)
	if err := cw.Write(line); err != nil {
		return fmt.Errorf("bulk: write results header: %w", err)
	}
	for rr, err := range rows {
		if err != nil {
			cw.Flush()
			return fmt.Errorf("bulk: write results: %w", err)
		}
		line = appendCells(line[:0], len(header), rr.Cells)
		status, id := "", ""
		if rr.HTTPStatus != 0 {
			status = strconv.Itoa(rr.HTTPStatus)
		}
		if rr.ZendeskID != 0 {
			id = strconv.FormatInt(rr.ZendeskID, 10)
		}
		extra := ""
		if len(rr.Cells) > len(header) {
			extra = strings.Join(rr.Cells[len(header):], sep)
		}
		line = append(line, strconv.Itoa(rr.Number), safeText(rr.Outcome), safeText(rr.Message), safeText(rr.Error),
			id, status, safeText(extra))
		if err := cw.Write(line); err != nil {
			return fmt.Errorf("bulk: write results: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("bulk: write results: %w", err)
	}
	return nil
}

// appendCells appends exactly width cells: the row's, padded with empty
// ones or cut at the header's width.
func appendCells(line []string, width int, cells []string) []string {
	for i := range width {
		c := ""
		if i < len(cells) {
			c = cells[i]
		}
		line = append(line, safeText(c))
	}
	return line
}

// safeText is SafeCell on valid UTF-8: error texts may quote Zendesk's
// bytes, and the file promises UTF-8.
func safeText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return SafeCell(s)
}
