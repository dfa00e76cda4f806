package bulk

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/store"
)

// Recheck is what a re-check of a previewed run changes: all of it is
// read again from the cells stored at upload, without a new upload.
type Recheck struct {
	// Kind is the run's new action; "" keeps it.
	Kind actions.Kind
	// Mapping is the column mapping to read the cells with.
	Mapping Mapping
	// Scores is the score mapping (scoreKey of a value to ScoreGood,
	// ScoreBad or ScoreLeftOut); with KeepScores the run's own is kept.
	Scores     map[string]string
	KeepScores bool
	// Reasons is the account's list of reasons for a bad rating; nil
	// takes any whole-number code.
	Reasons Reasons
}

// RecheckRun reads every row of a run still in preview again as rc says, in
// one transaction, and records the new action, mappings and counts with
// the run. A run that left preview gives store.ErrConflict.
func RecheckRun(ctx context.Context, db *store.DB, runID int64, rc Recheck) error {
	run, err := db.FindRunByID(ctx, runID)
	if err != nil {
		return fmt.Errorf("bulk: remap run %d: %w", runID, err)
	}
	k := actions.Kind(run.Kind)
	if rc.Kind != "" {
		k = rc.Kind
	}
	if req, _ := Fields(k); req == nil {
		return fmt.Errorf("bulk: remap run %d: unknown action %q", runID, k)
	}
	m, err := effectiveMapping(k, rc.Mapping, len(run.Header))
	if err != nil {
		return fmt.Errorf("bulk: remap run %d: %w", runID, err)
	}
	scores := rc.Scores
	if rc.KeepScores {
		scores = run.ScoreMap
	}
	if k != actions.KindRate {
		scores = nil
	}
	p := parser{kind: k, m: m, scores: scores, reasons: rc.Reasons}
	stored := make(map[string]int, len(m))
	for f, i := range m {
		stored[string(f)] = i
	}
	spec := store.RecheckSpec{Mapping: stored, ScoreMap: scores, SetScoreMap: true}
	if k != actions.Kind(run.Kind) {
		spec.Kind = string(k)
	}
	seen := map[string]struct{}{}
	var encErr error
	err = db.RecheckRun(ctx, runID, spec, func(old store.RunRow) store.RemapRow {
		// A row broken in itself (quoting, cell count, encoding) stays as
		// it was: its stored cells were repaired for storage and no
		// mapping can make it right.
		if !old.Valid && old.State != store.RowSkipped && !onlyFieldErrors(old.Errors) {
			return store.RemapRow{Errors: old.Errors}
		}
		row := buildRow(p, run.Header, record{number: old.Number, cells: old.Cells})
		if row.LeftOut != "" {
			return store.RemapRow{LeftOut: row.LeftOut}
		}
		if row.Action == nil {
			return store.RemapRow{Errors: row.Errors}
		}
		b, err := json.Marshal(row.Action)
		if err != nil && encErr == nil {
			encErr = err
		}
		key := rowKey(row.Action)
		_, dup := seen[key]
		seen[key] = struct{}{}
		return store.RemapRow{Action: b, Valid: true, Key: key, Duplicate: dup}
	})
	if err == nil {
		err = encErr
	}
	if err != nil {
		return fmt.Errorf("bulk: remap run %d: %w", runID, err)
	}
	return nil
}

// MappingOf reads a run's stored mapping back into a Mapping.
func MappingOf(run *store.Run) Mapping {
	m := make(Mapping, len(run.Mapping))
	for f, i := range run.Mapping {
		m[Field(f)] = i
	}
	return m
}

// MissingFields lists the required fields of kind k that m gives no column.
func MissingFields(k actions.Kind, m Mapping) []Field {
	req, _ := Fields(k)
	var out []Field
	for _, f := range req {
		if i, ok := m[f]; !ok || i < 0 {
			out = append(out, f)
		}
	}
	return out
}

// onlyFieldErrors reports whether every error names a field ("score:
// ..."), i.e. comes from reading the cells, not from the row's shape. Any
// kind's fields count, as a re-check may change the action.
func onlyFieldErrors(errs []string) bool {
	all := []Field{FieldUser, FieldTicket, FieldScore, FieldComment, FieldReason, FieldSubject, FieldBody}
	for _, e := range errs {
		ok := false
		for _, f := range all {
			if strings.HasPrefix(e, string(f)+": ") {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
