package bulk

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/store"
)

// gaveUpNote ends the error of a row the worker failed after several
// attempts of a temporary failure (rate limit, time-out, Zendesk error).
const gaveUpNote = "(gave up after several attempts)"

// MayPassOnRetry reports whether a failed row failed for a reason that may
// pass by itself: Zendesk's rate limit, Zendesk unavailable (5xx), or
// temporary failures the worker gave up on after several attempts. Rows
// refused for what they are (a closed ticket, a suspended user) fail
// again until someone fixes the cause.
func MayPassOnRetry(r store.RunRow) bool {
	if r.State != store.RowFailed {
		return false
	}
	return r.HTTPStatus == 429 || r.HTTPStatus >= 500 || strings.HasSuffix(r.Error, gaveUpNote)
}

// RunResults yields the results CSV's rows of a run, in row order: what
// happened to each row in words (Message), and what went wrong only for
// failed and invalid rows (Error). A rating's note about the rating it
// replaced is made true at the moment the row was applied: when an earlier
// row of the run had rated the same ticket, the note names that rating
// rather than the one the ticket had before the run.
func RunResults(ctx context.Context, db *store.DB, run *store.Run) iter.Seq2[ResultRow, error] {
	kind := actions.Kind(run.Kind)
	type rating struct {
		row   int
		score string
	}
	lastRating := map[int64]rating{}
	return func(yield func(ResultRow, error) bool) {
		err := db.EachRunRow(ctx, run.ID, func(r store.RunRow) error {
			rr := ResultRow{Number: r.Number, Cells: r.Cells, Outcome: r.State, HTTPStatus: r.HTTPStatus, ZendeskID: r.ZendeskID}
			switch r.State {
			case store.RowDone:
				rr.Message = doneMessage(kind, r)
				if kind == actions.KindRate {
					if a, err := decodeAction(kind, r.Action); err == nil {
						rate := a.(actions.Rate)
						note := r.Error
						if prev, ok := lastRating[rate.Ticket]; ok {
							note = fmt.Sprintf("Ticket #%d had the %s rating row %d gave just before; this rating replaced it.",
								rate.Ticket, prev.score, prev.row)
						}
						lastRating[rate.Ticket] = rating{row: r.Number, score: rate.Score}
						rr.Message = strings.TrimSpace(rr.Message + " " + note)
						break
					}
				}
				rr.Message = strings.TrimSpace(rr.Message + " " + r.Error)
			case store.RowFailed:
				rr.Error = r.Error
				if MayPassOnRetry(r) {
					rr.Message = "Not done. The cause may pass: retrying later may work."
				} else {
					rr.Message = "Not done. Zendesk will refuse it again until the cause in error is fixed."
				}
			case store.RowSkipped:
				rr.Message = r.Error
			case store.RowInvalid:
				rr.Message = "Not sent: the row has errors in the file."
				rr.Error = strings.Join(r.Errors, " ")
			default:
				rr.Message = "Not sent yet."
				if r.PreflightError != "" {
					rr.Message += " The check before sending found Zendesk would refuse it: " + r.PreflightError
				}
			}
			if !yield(rr, nil) {
				return errStopped
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopped) {
			yield(ResultRow{}, err)
		}
	}
}

var errStopped = errors.New("bulk: stopped")

// doneMessage says what a done row did.
func doneMessage(k actions.Kind, r store.RunRow) string {
	switch k {
	case actions.KindRate:
		if a, err := decodeAction(k, r.Action); err == nil {
			return fmt.Sprintf("Rated %s as the end user.", a.(actions.Rate).Score)
		}
	case actions.KindCreateRequest:
		return fmt.Sprintf("Request #%d created as the end user.", r.ZendeskID)
	case actions.KindComment:
		return fmt.Sprintf("Comment added to request #%d as the end user.", r.ZendeskID)
	case actions.KindSolve:
		return fmt.Sprintf("Request #%d solved as the end user.", r.ZendeskID)
	}
	return "Done as the end user."
}

// ToFix reports whether a row belongs in the rows to fix, and why: a row
// that failed, that has errors in the file, that the check before sending
// found Zendesk would refuse (skipped or not sent yet).
func ToFix(r store.RunRow) (string, bool) {
	switch {
	case r.State == store.RowFailed:
		return r.Error, true
	case r.State == store.RowInvalid:
		return strings.Join(r.Errors, " "), true
	case r.State == store.RowSkipped && strings.HasPrefix(r.Error, store.RefusedAtPreflightNote):
		return strings.TrimPrefix(r.Error, store.RefusedAtPreflightNote), true
	case (r.State == store.RowPending || r.State == store.RowQueued) && r.PreflightError != "":
		return r.PreflightError, true
	}
	return "", false
}

// FixColumn is the column the rows to fix add after the file's own; it is
// no field's name, so the file can be uploaded again as it is.
const FixColumn = "problem"

// WriteRowsToFix writes the rows of a run that need fixing (ToFix) in the
// uploaded file's own columns and delimiter, plus a "problem" column, so
// they can be edited in a spreadsheet and uploaded again. Cells beyond the
// header's width (a delimiter too many, as in an unquoted comma) are joined
// back into the last column. It returns how many rows it wrote.
func WriteRowsToFix(ctx context.Context, w io.Writer, db *store.DB, run *store.Run) (int, error) {
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return 0, fmt.Errorf("bulk: write rows to fix: %w", err)
	}
	sep := run.Delimiter
	if sep == "" {
		sep = ","
	}
	cw := csv.NewWriter(w)
	cw.Comma = []rune(sep)[0]
	cw.UseCRLF = true
	width := len(run.Header)
	line := make([]string, 0, width+1)
	for _, h := range run.Header {
		line = append(line, safeText(h))
	}
	if err := cw.Write(append(line, FixColumn)); err != nil {
		return 0, fmt.Errorf("bulk: write rows to fix: %w", err)
	}
	n := 0
	err := db.EachRunRow(ctx, run.ID, func(r store.RunRow) error {
		why, ok := ToFix(r)
		if !ok {
			return nil
		}
		cells := r.Cells
		if len(cells) > width && width > 0 {
			joined := strings.Join(cells[width-1:], sep)
			cells = append(cells[:width-1:width-1], joined)
		}
		line = appendCells(line[:0], width, cells)
		line = append(line, safeText(fmt.Sprintf("Row %d: %s", r.Number, why)))
		n++
		return cw.Write(line)
	})
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	if err != nil {
		return n, fmt.Errorf("bulk: write rows to fix: %w", err)
	}
	return n, nil
}

// RetryRows starts a new run, in preview, from the failed rows of runID
// for admin with grantID: with onlyMayPass, only those whose failure may
// pass by itself (MayPassOnRetry). The rows keep their numbers and cells,
// so the new results line up with the original file. It returns the new
// run's id, or ErrNoFailedRows when no row qualifies.
func RetryRows(ctx context.Context, db *store.DB, runID int64, admin actions.Admin, grantID int64, onlyMayPass bool) (int64, error) {
	old, err := db.FindRunByID(ctx, runID)
	if err != nil {
		return 0, fmt.Errorf("bulk: retry run %d: %w", runID, err)
	}
	r := &store.Run{AdminID: admin.ID, AdminName: admin.Name, GrantID: grantID, Kind: old.Kind,
		FileName: old.FileName, Header: old.Header, Mapping: old.Mapping, Delimiter: old.Delimiter, RetryOf: old.ID,
		ScoreMap: old.ScoreMap}
	err = db.CreateRunWithRows(ctx, r, func(add func([]store.RunRow) error) error {
		var batch []store.RunRow
		n := 0
		err := db.EachRunRow(ctx, runID, func(row store.RunRow) error {
			if row.State != store.RowFailed || (onlyMayPass && !MayPassOnRetry(row)) {
				return nil
			}
			n++
			// Attempts come along: a row whose earlier write may have
			// reached Zendesk is checked there before it is sent again.
			batch = append(batch, store.RunRow{Number: row.Number, Cells: row.Cells, Action: row.Action,
				Valid: true, Key: row.Key, Duplicate: row.Duplicate, Attempts: row.Attempts})
			if len(batch) == 500 {
				if err := add(batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
			return nil
		})
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNoFailedRows
		}
		return add(batch)
	})
	if err != nil {
		return 0, fmt.Errorf("bulk: retry run %d: %w", runID, err)
	}
	return r.ID, nil
}
