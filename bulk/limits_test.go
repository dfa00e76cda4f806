package bulk

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/onbehalf/onbehalf/actions"
)

// TestReadCellLongerThanZendeskTakesIsRowError checks that a cell longer
// than Zendesk accepts for its field (or, for a column no field uses, than
// any field takes) makes its row invalid at preview, and that the stored
// copy of such a cell is cut, so a run page never carries megabytes of it.
func TestReadCellLongerThanZendeskTakesIsRowError(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("x", 3<<20)
	input := "email,ticket_id,score,notes\n" +
		"bea@example.com,1,good,short note\n" +
		"bea@example.com,2,good," + huge + "\n" +
		"bea@example.com,3,good," + strings.Repeat("y", maxCellLen) + "\n"
	_, rows := mustRead(t, input, actions.KindRate, Options{})
	if len(rows) != 3 {
		t.Fatalf("got %d rows, want 3", len(rows))
	}
	if rows[0].Action == nil || rows[2].Action == nil {
		t.Errorf("rows 2 and 4 should be valid: %v / %v", rows[0].Errors, rows[2].Errors)
	}
	long := rows[1]
	if long.Action != nil || len(long.Errors) != 1 || !strings.Contains(long.Errors[0], `"notes"`) || !strings.Contains(long.Errors[0], "3,145,728 characters") {
		t.Fatalf("row with a 3 MB cell: action %v, errors %q; want one error naming the column and its length", long.Action, long.Errors)
	}
	if n := utf8.RuneCountInString(long.Cells[3]); n > 1000 {
		t.Errorf("the stored long cell has %d characters; want it cut to a short excerpt", n)
	}

	// A mapped field has Zendesk's limit for that field: a subject over
	// 255 characters is refused, whatever else the row holds.
	subj := strings.Repeat("s", actions.MaxSubjectLen+1)
	_, rows = mustRead(t, "email,subject,description\nbea@example.com,"+subj+",hi\n", actions.KindCreateRequest, Options{})
	if rows[0].Action != nil || !strings.Contains(strings.Join(rows[0].Errors, " "), "256 characters") {
		t.Errorf("subject of 256 characters: errors %q, want a length error", rows[0].Errors)
	}
}

// TestRemapKeepsCutCellInvalid checks that a cell cut at upload stays an
// error when the stored rows are read again under a new mapping.
func TestRemapKeepsCutCellInvalid(t *testing.T) {
	t.Parallel()
	cells := []string{"bea@example.com", "1", "good", strings.Repeat("z", maxCellLen+5)}
	header := []string{"email", "ticket_id", "score", "notes"}
	m := Mapping{FieldUser: 0, FieldTicket: 1, FieldScore: 2}
	if errs := limitCells(m, header, cells); len(errs) != 1 {
		t.Fatalf("first read: errors %q, want one", errs)
	}
	again := limitCells(m, header, cells)
	if len(again) != 1 || !strings.Contains(again[0], "65,005 characters") {
		t.Errorf("second read of the cut cell: errors %q, want one naming its original length", again)
	}
}
