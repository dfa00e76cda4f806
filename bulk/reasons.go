package bulk

import (
	"fmt"
	"strconv"
	"strings"
)

// Reason is one of the account's reasons for a bad rating (zendesk-api.md
// §3.2): the code a file may give and the name people see.
type Reason struct {
	Code int
	Name string
}

// Reasons is the account's list of reasons for a bad rating. A nil list
// means the list could not be read: any whole-number code is then taken as
// is, and names cannot be.
type Reasons []Reason

// code reads a reason cell, a code or a name (case and surrounding spaces
// ignored), and returns the code, or a sentence saying what is wrong.
func (rs Reasons) code(s string) (int, string) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		if rs == nil || rs.has(n) {
			return n, ""
		}
		return 0, fmt.Sprintf("%d is not one of this account's reasons for a bad rating; give one of %s.", n, rs.list())
	}
	for _, r := range rs {
		if strings.EqualFold(strings.TrimSpace(r.Name), s) {
			return r.Code, ""
		}
	}
	if rs == nil {
		return 0, fmt.Sprintf("%q is not a reason code; give Zendesk's reason code as a whole number.", s)
	}
	return 0, fmt.Sprintf("%q is not one of this account's reasons for a bad rating; give one of %s.", s, rs.list())
}

func (rs Reasons) has(code int) bool {
	for _, r := range rs {
		if r.Code == code {
			return true
		}
	}
	return false
}

// list names the reasons for a message: `5 ("The issue took too long"), …`.
func (rs Reasons) list() string {
	if len(rs) == 0 {
		return "none: this account lists no reasons, so leave the reason empty"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%d (%q)", r.Code, r.Name)
	}
	return "these codes or names: " + strings.Join(parts, ", ")
}
