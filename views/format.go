package views

import (
	"sort"
	"strconv"
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
		return "ok"
	case "new", "open":
		return "warn"
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

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Thousands writes n with commas between groups of three digits: 100,000.
func Thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
