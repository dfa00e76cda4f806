package views

import (
	"slices"
	"sort"
	"strconv"
	"strings"
)

func roleLabel(role string) string {
	if role == "end-user" {
		return "end user"
	}
	return role
}

func statusClass(status string) string {
	switch status {
	case "solved":
		return "badge-ok"
	case "new", "open":
		return "badge-info"
	}
	return ""
}

func pageSuffix(first bool) string {
	if first {
		return ""
	}
	return " on this page"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// inOrder is m's keys: those in order first, in that order, then the rest
// sorted.
func inOrder(m map[string]string, order []string) []string {
	keys := make([]string, 0, len(m))
	for _, k := range order {
		if _, ok := m[k]; ok {
			keys = append(keys, k)
		}
	}
	var rest []string
	for k := range m {
		if !slices.Contains(order, k) {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(keys, rest...)
}

// Thousands writes n with commas between groups of three digits: 100,000.
func Thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func hashID(n int64) string {
	if n == 0 {
		return ""
	}
	return "#" + strconv.FormatInt(n, 10)
}

// actionNames are the audit trail's action codes in plain words.
var actionNames = map[string]string{
	"rate":           "Rate a ticket",
	"create_request": "Open a request",
	"comment":        "Comment",
	"solve":          "Mark solved",
	"login":          "Log in",
	"login_refused":  "Login refused",
	"login_expired":  "Sign-in expired",
	"logout":         "Log out",
	"state_mismatch": "Login check failed",
	"bulk_confirm":   "Confirm a bulk run",
	"bulk_cancel":    "Cancel a bulk run",
	"bulk_retry":     "Retry failed rows",
	"bulk_mapping":   "Change a run's columns",
	"bulk_preflight": "Check a run with Zendesk",
}

// ActionName is an audit action in plain words ("create_request" is "Open
// a request"); a code it does not know is shown with spaces for its
// underscores, never raw.
func ActionName(code string) string {
	if n, ok := actionNames[code]; ok {
		return n
	}
	s := strings.ReplaceAll(code, "_", " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
