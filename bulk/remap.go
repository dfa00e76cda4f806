package bulk

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/store"
)

// Remap re-checks a run still in preview under a new column mapping, from
// the cells stored at upload: the mapping form fixes a file's columns
// without a new upload. Rows keep their numbers; duplicates are found again
// in row order.
func Remap(ctx context.Context, db *store.DB, runID int64, m Mapping) error {
	run, err := db.FindRunByID(ctx, runID)
	if err != nil {
		return fmt.Errorf("bulk: remap run %d: %w", runID, err)
	}
	k := actions.Kind(run.Kind)
	if m, err = effectiveMapping(k, m, len(run.Header)); err != nil {
		return fmt.Errorf("bulk: remap run %d: %w", runID, err)
	}
	stored := make(map[string]int, len(m))
	for f, i := range m {
		stored[string(f)] = i
	}
	seen := map[string]struct{}{}
	var encErr error
	err = db.RemapRun(ctx, runID, stored, func(old store.RunRow) store.RemapRow {
		// A row broken in itself (quoting, cell count, encoding) stays as
		// it was: its stored cells were repaired for storage and no
		// mapping can make it right.
		if !old.Valid && !onlyFieldErrors(old.Errors, k) {
			return store.RemapRow{Errors: old.Errors}
		}
		row := buildRow(k, m, run.Header, record{number: old.Number, cells: old.Cells})
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

// onlyFieldErrors reports whether every error names one of kind k's fields
// ("score: ..."), i.e. comes from reading the cells, not from the row's shape.
func onlyFieldErrors(errs []string, k actions.Kind) bool {
	for _, e := range errs {
		ok := false
		for _, f := range allFields(k) {
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
