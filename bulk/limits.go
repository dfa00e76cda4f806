package bulk

import (
	"fmt"
	"regexp"
	"unicode/utf8"

	"github.com/onbehalf/onbehalf/actions"
)

// maxCellLen bounds a cell no field uses. Such cells are never sent to
// Zendesk but are stored and shown on the run page and in the results, so
// they get the limit of the longest field Zendesk takes: a comment or
// description (actions.MaxBodyLen; zendesk-api.md documents no field
// lengths, so this is UNCONFIRMED and deliberately conservative).
const maxCellLen = actions.MaxBodyLen

// cutCell matches a cell limitCells cut, and the length it had.
var cutCell = regexp.MustCompile(`…\[cut from ([0-9,]+) characters\]$`)

// cutCellLen is how much of a too-long cell is kept: enough to recognise
// it in the preview and the results.
const cutCellLen = 200

// fieldMaxLen is the most characters Zendesk takes for field f, or 0 for a
// field whose values are short by nature (checked by actions.Validate).
func fieldMaxLen(f Field) int {
	switch f {
	case FieldSubject:
		return actions.MaxSubjectLen
	case FieldBody:
		return actions.MaxBodyLen
	case FieldComment:
		return actions.MaxCommentLen
	}
	// An email address has at most 254 characters (RFC 5321), a number or
	// score far fewer; 1000 leaves room for a mistaken value to be named
	// by Validate without storing a whole file in a cell.
	return 1000
}

// limitCells returns an error for each cell longer than Zendesk accepts for
// its field (maxCellLen for a column no field uses) and cuts such cells in
// place to their first cutCellLen characters and a note of their length,
// so the stored row stays small; the error says how long the cell was. A
// cell cut earlier (read again after a new mapping) is an error again.
func limitCells(m Mapping, header []string, cells []string) []string {
	var errs []string
	for i, c := range cells {
		limit := maxCellLen
		for f, col := range m {
			if col == i {
				limit = fieldMaxLen(f)
			}
		}
		if m := cutCell.FindStringSubmatch(c); m != nil {
			// Cut at upload; a new mapping (Remap) reads the stored cells.
			errs = append(errs, fmt.Sprintf("The cell %s was %s characters long; Zendesk accepts at most %s there. Shorten it (only its start is kept here).",
				cellName(header, i), m[1], thousands(limit)))
			continue
		}
		if len(c) <= limit {
			continue
		}
		n := utf8.RuneCountInString(c)
		if n <= limit {
			continue
		}
		errs = append(errs, fmt.Sprintf("The cell %s is %s characters long; Zendesk accepts at most %s there. Shorten it (only its start is kept here).",
			cellName(header, i), thousands(n), thousands(limit)))
		cut, kept := c, 0
		for j := range c {
			if kept == cutCellLen {
				cut = c[:j]
				break
			}
			kept++
		}
		cells[i] = fmt.Sprintf("%s…[cut from %s characters]", cut, thousands(n))
	}
	return errs
}

// maxBatchBytes ends a batch of rows early when its cells add up to this
// much, so a file of long rows is held a megabyte at a time, not a
// thousand long rows at a time.
const maxBatchBytes = 1 << 20

// rowBytes is the size of a row's cells.
func rowBytes(r Row) int {
	n := 0
	for _, c := range r.Cells {
		n += len(c)
	}
	return n
}
