package bulk

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/onbehalf/onbehalf/actions"
)

// ColumnName is the column name a template uses for field f of kind k; the
// upload recognises it (and its synonyms) without the mapping form.
func ColumnName(k actions.Kind, f Field) string {
	_, name := fieldNoun(k, f)
	return name
}

// Accepts says in a few words what a column of field f takes, for the
// bulk page's reference.
func Accepts(k actions.Kind, f Field) string {
	switch f {
	case FieldUser:
		return "the end user's email address, or their Zendesk user id"
	case FieldTicket:
		if k == actions.KindRate {
			return "the ticket number: 123 or #123 (solved, or solved and reopened; not closed)"
		}
		return "the request number: 123 or #123, one the end user can see"
	case FieldScore:
		return "good or bad. Survey scores (1–5 stars, 0–10, satisfied / unsatisfied, yes / no, 👍 / 👎) are translated on the preview, where you choose what each value means"
	case FieldComment:
		if k == actions.KindSolve {
			return "optional: a last comment, added as the end user"
		}
		return "optional: the rating's comment"
	case FieldReason:
		return "optional, only with bad: one of the account's reasons below, by code or by name"
	case FieldSubject:
		return "the new request's subject"
	case FieldBody:
		if k == actions.KindComment {
			return "the comment, added as the end user"
		}
		return "the new request's description"
	}
	return ""
}

// WriteTemplate writes a CSV template for kind k: the header in the names
// the upload recognises and two example rows (with reasons, a bad rating
// gives the first reason of the account's list). Like the results CSV it
// starts with a byte order mark.
func WriteTemplate(w io.Writer, k actions.Kind, reasons Reasons) error {
	req, opt := Fields(k)
	if req == nil {
		return fmt.Errorf("bulk: template: unknown action %q", k)
	}
	if _, err := io.WriteString(w, "\uFEFF"); err != nil {
		return fmt.Errorf("bulk: template: %w", err)
	}
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	var header []string
	for _, f := range append(req, opt...) {
		header = append(header, ColumnName(k, f))
	}
	var rows [][]string
	switch k {
	case actions.KindRate:
		reason := ""
		for _, r := range reasons {
			if r.Code != 0 {
				reason = strconv.Itoa(r.Code)
				break
			}
		}
		rows = [][]string{
			{"customer@example.com", "123", "good", "Quick and friendly help", ""},
			{"another.customer@example.com", "#124", "bad", "It took a week to hear back", reason},
		}
	case actions.KindCreateRequest:
		rows = [][]string{
			{"customer@example.com", "Invoice copy", "Please send me a copy of my last invoice."},
			{"another.customer@example.com", "Change of address", "We moved; our new address is in the attachment we sent by post."},
		}
	case actions.KindComment:
		rows = [][]string{
			{"customer@example.com", "123", "Thanks, the replacement arrived today."},
			{"another.customer@example.com", "#124", "I have the order number now: 5512."},
		}
	case actions.KindSolve:
		rows = [][]string{
			{"customer@example.com", "123", "All sorted, thank you."},
			{"another.customer@example.com", "#124", ""},
		}
	}
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("bulk: template: %w", err)
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("bulk: template: %w", err)
	}
	return nil
}

// Estimate is about how long sending rows rows of kind k takes at
// ratePerMinute Zendesk calls a minute (the throttle's rate); 0 when the
// rate is unknown.
func Estimate(k actions.Kind, rows int, ratePerMinute float64) time.Duration {
	if rows <= 0 || ratePerMinute <= 0 {
		return 0
	}
	return time.Duration(float64(rows) * callsPerRow(k) / ratePerMinute * float64(time.Minute))
}
