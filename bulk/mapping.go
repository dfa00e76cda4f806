package bulk

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/onbehalf/onbehalf/actions"
)

// Field is one input an action takes from a CSV row. Its value is also the
// key actions.FieldErrors uses, so a validation message lands on the right
// field.
type Field string

// The fields a bulk row can carry.
const (
	FieldUser    Field = "user"    // the end user: email address or numeric Zendesk id
	FieldTicket  Field = "ticket"  // the ticket or request id
	FieldScore   Field = "score"   // good or bad
	FieldComment Field = "comment" // a rating's or a solve's optional comment
	FieldReason  Field = "reason"  // a bad rating's reason code
	FieldSubject Field = "subject" // a new request's subject
	FieldBody    Field = "body"    // a new request's description or a comment's text
)

// Fields returns the fields an action of kind k needs (required) and may use
// (optional), in display order. Both are nil for an unknown kind.
func Fields(k actions.Kind) (required, optional []Field) {
	switch k {
	case actions.KindRate:
		return []Field{FieldUser, FieldTicket, FieldScore}, []Field{FieldComment, FieldReason}
	case actions.KindCreateRequest:
		return []Field{FieldUser, FieldSubject, FieldBody}, []Field{}
	case actions.KindComment:
		return []Field{FieldUser, FieldTicket, FieldBody}, []Field{}
	case actions.KindSolve:
		return []Field{FieldUser, FieldTicket}, []Field{FieldComment}
	}
	return nil, nil
}

// allFields is required followed by optional.
func allFields(k actions.Kind) []Field {
	req, opt := Fields(k)
	return append(req, opt...)
}

// Mapping says which column (0-based index into the header) holds each
// field. A field that is absent has no column.
type Mapping map[Field]int

// synonyms lists the header names that mean field f for kind k, normalised
// (see normHeader), best first: when a file has several candidate columns
// the earliest synonym wins.
func synonyms(k actions.Kind, f Field) []string {
	switch f {
	case FieldUser:
		return []string{"user", "email", "useremail", "enduser", "enduseremail", "requester", "requesteremail",
			"userid", "customer", "customeremail", "emailaddress"}
	case FieldTicket:
		return []string{"ticketid", "ticket", "request", "requestid", "id", "#", "ticket#", "ticketnumber",
			"ticketno", "requestnumber"}
	case FieldScore:
		return []string{"score", "rating", "satisfaction", "satisfactionrating", "satisfactionscore", "stars",
			"starrating", "csat", "csatscore", "nps", "npsscore", "surveyscore", "surveyrating"}
	case FieldComment:
		return []string{"comment", "note", "notes", "ratingcomment"}
	case FieldReason:
		return []string{"reason", "reasoncode", "reasonid"}
	case FieldSubject:
		return []string{"subject", "title"}
	case FieldBody:
		// "comment" means the body only for kinds that have no separate
		// comment field; Fields never offers both for one kind.
		if k == actions.KindCreateRequest || k == actions.KindComment {
			return []string{"body", "description", "message", "text", "comment"}
		}
		return []string{"body", "description", "message", "text"}
	}
	return nil
}

// normHeader folds a header name so that "Ticket ID", "ticket_id" and
// "TICKET-ID" compare equal.
func normHeader(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '_', '-', '\t':
			return -1
		}
		return r
	}, s)
}

// GuessMapping maps the fields of kind k to header columns by name, ignoring
// case, spaces, underscores and hyphens and accepting common synonyms
// (email for user, ticket_id for ticket, rating for score, ...). Each column
// serves at most one field; fields with no matching column are absent.
func GuessMapping(k actions.Kind, header []string) Mapping {
	norm := make([]string, len(header))
	for i, h := range header {
		norm[i] = normHeader(h)
	}
	used := make([]bool, len(header))
	m := Mapping{}
	for _, f := range allFields(k) {
	synonym:
		for _, syn := range synonyms(k, f) {
			for i, h := range norm {
				if !used[i] && h == syn {
					m[f] = i
					used[i] = true
					break synonym
				}
			}
		}
	}
	return m
}

// Parse turns one row's cells into an action of kind k using mapping m, or
// explains what is wrong. Cells are trimmed of surrounding spaces; a ticket
// may be written "#123"; the score ignores case; the reason is a number.
// Each error is a sentence prefixed with its field ("score: ..."), in the
// order of Fields. The action is nil whenever there is an error.
func Parse(k actions.Kind, m Mapping, cells []string) (actions.Action, []string) {
	a, errs, _ := parser{kind: k, m: m}.parse(cells)
	return a, errs
}

// parser reads rows of one kind: the column mapping, and for ratings the
// score mapping and the account's reasons for a bad rating.
type parser struct {
	kind actions.Kind
	m    Mapping
	// scores maps a score cell (scoreKey) to "good", "bad" or "" (leave
	// the row out); nil accepts good and bad only.
	scores map[string]string
	// reasons is the account's list; nil accepts any whole-number code.
	reasons Reasons
}

// parse is Parse with the score mapping and the reasons: leftOut, when not
// "", says why the score mapping leaves the row out (no action, no error).
func (p parser) parse(cells []string) (actions.Action, []string, string) {
	k, m := p.kind, p.m
	cell := func(f Field) string {
		i, ok := m[f]
		if !ok || i < 0 || i >= len(cells) {
			return ""
		}
		return strings.TrimSpace(cells[i])
	}
	// parseErrs holds problems found before Validate; they win over
	// Validate's message for the same field, which would only say the
	// value is missing.
	parseErrs := map[Field]string{}
	// A required field with no column is the mapping's fault, not the
	// row's: say so once per row, in the same words as the page.
	req, _ := Fields(k)
	for _, f := range req {
		if i, ok := m[f]; !ok || i < 0 {
			noun, _ := fieldNoun(k, f)
			parseErrs[f] = fmt.Sprintf("Not read yet: no column is chosen for %s.", noun)
		}
	}
	id := func(noun string) int64 {
		if _, ok := parseErrs[FieldTicket]; ok {
			return 0
		}
		s := cell(FieldTicket)
		n, ok := parseID(s)
		if !ok {
			parseErrs[FieldTicket] = fmt.Sprintf("%q is not a %s number; write it as 123 or #123.", s, noun)
		}
		return n
	}

	var a actions.Action
	switch k {
	case actions.KindRate:
		r := actions.Rate{User: cell(FieldUser), Comment: cell(FieldComment)}
		r.Ticket = id("ticket")
		r.Score = cell(FieldScore)
		if low := scoreKey(r.Score); low == "good" || low == "bad" {
			r.Score = low
		} else if to, ok := p.scores[low]; ok && r.Score != "" {
			if to == "" {
				return nil, nil, fmt.Sprintf("Left out: the score mapping leaves %q out.", r.Score)
			}
			r.Score = to
		} else if r.Score != "" {
			parseErrs[FieldScore] = fmt.Sprintf("%q is neither good nor bad. Choose what it means under “Scores” on the preview, or write good or bad in the file.", r.Score)
		}
		if s := cell(FieldReason); s != "" {
			code, msg := p.reasons.code(s)
			if msg != "" {
				parseErrs[FieldReason] = msg
			}
			r.ReasonCode = code
		}
		a = r
	case actions.KindCreateRequest:
		a = actions.CreateRequest{User: cell(FieldUser), Subject: cell(FieldSubject), Body: cell(FieldBody)}
	case actions.KindComment:
		a = actions.Comment{User: cell(FieldUser), Request: id("request"), Body: cell(FieldBody)}
	case actions.KindSolve:
		a = actions.Solve{User: cell(FieldUser), Request: id("request"), Comment: cell(FieldComment)}
	default:
		return nil, []string{fmt.Sprintf("Unknown action %q.", k)}, ""
	}

	msgs := map[string]string{}
	for f, msg := range parseErrs {
		msgs[string(f)] = msg
	}
	if err := a.Validate(); err != nil {
		var fe actions.FieldErrors
		if !errors.As(err, &fe) {
			msgs[""] = err.Error()
		}
		for f, msg := range fe {
			if _, ok := msgs[f]; !ok {
				msgs[f] = msg
			}
		}
	}
	if len(msgs) == 0 {
		return a, nil, ""
	}
	return nil, orderedErrors(k, msgs), ""
}

// orderedErrors renders field messages as "field: message", in the kind's
// field order, then any other fields by name.
func orderedErrors(k actions.Kind, msgs map[string]string) []string {
	out := make([]string, 0, len(msgs))
	for _, f := range allFields(k) {
		if msg, ok := msgs[string(f)]; ok {
			out = append(out, string(f)+": "+msg)
			delete(msgs, string(f))
		}
	}
	rest := make([]string, 0, len(msgs))
	for f := range msgs {
		rest = append(rest, f)
	}
	sort.Strings(rest)
	for _, f := range rest {
		if f == "" {
			out = append(out, msgs[f])
		} else {
			out = append(out, f+": "+msgs[f])
		}
	}
	return out
}

// parseID reads a ticket or request id written as 123 or #123. An empty
// cell is 0 and ok: Validate then says the number is missing.
func parseID(s string) (int64, bool) {
	s = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s), "#"))
	if s == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// rowKey names what a valid action targets, so two rows that would do the
// same thing twice are flagged. A ticket takes one rating and is solved
// once, so those are keyed by ticket alone; a comment or a new request is a
// duplicate only when its text repeats too (hashed to keep keys short).
func rowKey(a actions.Action) string {
	switch a := a.(type) {
	case actions.Rate:
		return "rate:ticket:" + strconv.FormatInt(a.Ticket, 10)
	case actions.Solve:
		return "solve:request:" + strconv.FormatInt(a.Request, 10)
	case actions.Comment:
		return "comment:request:" + strconv.FormatInt(a.Request, 10) + ":" + textHash(a.Body)
	case actions.CreateRequest:
		return "create_request:user:" + strings.ToLower(a.User) + ":" + textHash(a.Subject, a.Body)
	}
	return ""
}

func textHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// fieldNoun is how messages name a field to a person, and suggest is the
// column name to propose when it is missing.
func fieldNoun(k actions.Kind, f Field) (noun, suggest string) {
	switch f {
	case FieldUser:
		return "the end user (email or user id)", "email"
	case FieldTicket:
		if k == actions.KindRate {
			return "the ticket number", "ticket_id"
		}
		return "the request number", "request_id"
	case FieldScore:
		return "the score", "score"
	case FieldComment:
		return "the comment", "comment"
	case FieldReason:
		return "the reason code", "reason"
	case FieldSubject:
		return "the subject", "subject"
	case FieldBody:
		if k == actions.KindComment {
			return "the comment text", "comment"
		}
		return "the description", "description"
	}
	return string(f), string(f)
}

// joinWords lists words as "a", "a and b" or "a, b and c".
func joinWords(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// effectiveMapping keeps only the fields kind k uses, and reports the first
// index outside the header.
func effectiveMapping(k actions.Kind, m Mapping, columns int) (Mapping, error) {
	out := Mapping{}
	for _, f := range allFields(k) {
		i, ok := m[f]
		if !ok || i < 0 {
			continue
		}
		if i >= columns {
			noun, _ := fieldNoun(k, f)
			return nil, &FileError{
				Message: fmt.Sprintf("The mapping puts %s in column %d, but the file has only %d columns. Choose the columns again in the mapping form.", noun, i+1, columns),
				Err:     ErrBadMapping,
			}
		}
		out[f] = i
	}
	return out, nil
}

// missingColumns returns a FileError naming the required fields with no
// column, or nil.
func missingColumns(k actions.Kind, m Mapping, header []string) error {
	req, _ := Fields(k)
	var nouns, suggests []string
	for _, f := range req {
		if _, ok := m[f]; !ok {
			n, s := fieldNoun(k, f)
			nouns = append(nouns, n)
			suggests = append(suggests, s)
		}
	}
	if len(nouns) == 0 {
		return nil
	}
	cols := make([]string, len(header))
	for i := range header {
		cols[i] = headerLabel(header, i)
	}
	var msg string
	if len(nouns) == 1 {
		msg = fmt.Sprintf("No column for %s; the columns are: %s. Name a column %s or choose it in the mapping form.",
			nouns[0], strings.Join(cols, ", "), suggests[0])
	} else {
		msg = fmt.Sprintf("No columns for %s; the columns are: %s. Name the columns %s or choose them in the mapping form.",
			joinWords(nouns), strings.Join(cols, ", "), joinWords(suggests))
	}
	return &FileError{Message: msg, Err: ErrMissingColumns}
}

// unmapped lists the header names no field uses.
func unmapped(m Mapping, header []string) []string {
	used := make([]bool, len(header))
	for _, i := range m {
		used[i] = true
	}
	out := []string{}
	for i := range header {
		if !used[i] {
			out = append(out, headerLabel(header, i))
		}
	}
	return slices.Clip(out)
}

// headerLabel names column i: its header, or "column N" when the header
// cell is empty.
func headerLabel(header []string, i int) string {
	if i < len(header) && header[i] != "" {
		return header[i]
	}
	return fmt.Sprintf("column %d", i+1)
}
