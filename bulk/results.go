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
// ended.
type ResultRow struct {
	Cells      []string // the input cells, as Read gave them in Row.Cells
	Status     string   // done, failed, skipped or invalid
	HTTPStatus int      // Zendesk's status for the write; 0 when none was sent
	Error      string   // why the row failed, was skipped or is invalid
	ZendeskID  int64    // the rating, request or comment's request id; 0 when none
}

// SafeCell neutralises a cell a spreadsheet app would run as a formula
// (CSV injection, security promise 10). The cell's first character that a
// spreadsheet does not skip or hide decides: spaces of every kind (no-break,
// ideographic, …), line breaks, zero-width and other format characters
// (byte-order marks, joiners, direction marks) and control characters are
// looked past. If that character is = + - or @ (or their full-width forms,
// which some apps accept), or the cell starts with a tab or a carriage
// return, the cell gets a leading apostrophe, which spreadsheets take as
// "this is text". Other cells are returned unchanged.
func SafeCell(s string) string {
	for i, r := range s {
		if i == 0 && (r == '\t' || r == '\r') {
			return "'" + s
		}
		if ignorableLeader(r) {
			continue
		}
		switch r {
		case '=', '+', '-', '@', '＝', '＋', '－', '＠':
			return "'" + s
		}
		return s
	}
	return s
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
// by status, http_status, error and zendesk_id, every cell through SafeCell.
// It starts with a UTF-8 byte order mark and ends lines with CRLF so that
// spreadsheet apps open it as UTF-8 without an import dialog. A row with
// fewer cells than the header is padded, so the result columns stay lined
// up; cells beyond the header's width follow the result columns rather than
// being dropped. An error from rows stops the writing and is returned.
func WriteResults(w io.Writer, header []string, rows iter.Seq2[ResultRow, error]) error {
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return fmt.Errorf("bulk: write results: %w", err)
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	line := make([]string, 0, len(header)+4)
	for _, h := range header {
		line = append(line, safeText(h))
	}
	line = append(line, "status", "http_status", "error", "zendesk_id")
	if err := cw.Write(line); err != nil {
		return fmt.Errorf("bulk: write results header: %w", err)
	}
	for rr, err := range rows {
		if err != nil {
			cw.Flush()
			return fmt.Errorf("bulk: write results: %w", err)
		}
		line = line[:0]
		for i := range max(len(header), len(rr.Cells)) {
			if i == len(header) {
				line = appendResult(line, rr)
			}
			c := ""
			if i < len(rr.Cells) {
				c = rr.Cells[i]
			}
			line = append(line, safeText(c))
		}
		if len(rr.Cells) <= len(header) {
			line = appendResult(line, rr)
		}
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

func appendResult(line []string, rr ResultRow) []string {
	status, id := "", ""
	if rr.HTTPStatus != 0 {
		status = strconv.Itoa(rr.HTTPStatus)
	}
	if rr.ZendeskID != 0 {
		id = strconv.FormatInt(rr.ZendeskID, 10)
	}
	return append(line, safeText(rr.Status), status, safeText(rr.Error), id)
}

// safeText is SafeCell on valid UTF-8: error texts may quote Zendesk's
// bytes, and the file promises UTF-8.
func safeText(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return SafeCell(s)
}
