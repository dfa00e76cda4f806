package handlers

import (
	"fmt"
	"unicode/utf8"
)

// maxSearchLen bounds a user search. Names, email addresses (at most 254
// characters) and ids are far shorter; a longer term is a mistake (or an
// attempt to make onbehalf forward megabytes to Zendesk), so it is not
// sent, and the page says why.
const maxSearchLen = 254

// searchTooLong returns a sentence for a search term over maxSearchLen
// characters and the start of the term to show back in the search box, or
// "" and q itself.
func searchTooLong(q string) (msg, shown string) {
	n := utf8.RuneCountInString(q)
	if n <= maxSearchLen {
		return "", q
	}
	cut, kept := q, 0
	for i := range q {
		if kept == maxSearchLen {
			cut = q[:i]
			break
		}
		kept++
	}
	return fmt.Sprintf("The search is %d characters long; names, email addresses and ids are at most %d. Search for a shorter part of the name or address.", n, maxSearchLen), cut
}
