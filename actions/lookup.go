package actions

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/onbehalf/onbehalf/zendesk"
)

// Lookup is how pre-flight reads Zendesk. The web path uses a DirectLookup
// (one call per read); bulk runs use a Batch filled ahead with show_many.
// Both answer a missing user or ticket with an error that matches
// zendesk.ErrNotFound.
type Lookup interface {
	// User finds a user by email address or numeric id.
	User(ctx context.Context, ref string) (zendesk.User, error)
	// Ticket finds a ticket as an admin sees it.
	Ticket(ctx context.Context, id int64) (zendesk.Ticket, error)
}

// DirectLookup reads Zendesk as the admin, one call per value, and
// remembers what it found (and what it did not), so one page or one action
// never asks twice. It never forgets: make one per request or task. It is
// safe for concurrent use.
type DirectLookup struct {
	zc *zendesk.Client

	mu      sync.Mutex
	users   map[string]userResult
	tickets map[int64]ticketResult
}

type userResult struct {
	user  zendesk.User
	found bool
}

type ticketResult struct {
	ticket zendesk.Ticket
	found  bool
}

// NewLookup returns a DirectLookup reading with zc, the admin's own client
// (not one acting as an end user: users search, show and tickets show are
// for agents and admins only, §3.3).
func NewLookup(zc *zendesk.Client) *DirectLookup {
	return &DirectLookup{zc: zc, users: make(map[string]userResult), tickets: make(map[int64]ticketResult)}
}

// User finds a user by numeric id (ShowUser) or email (a search for
// "email:<ref>", keeping only an exact, case-insensitive match).
func (l *DirectLookup) User(ctx context.Context, ref string) (zendesk.User, error) {
	key := userKey(ref)
	l.mu.Lock()
	res, ok := l.users[key]
	l.mu.Unlock()
	if ok {
		return res.user, foundOrNotFound(res.found, "user", ref)
	}
	u, err := fetchUser(ctx, l.zc, ref)
	if err != nil && !isNotFound(err) {
		return zendesk.User{}, err
	}
	l.mu.Lock()
	l.users[key] = userResult{user: u, found: err == nil}
	if err == nil {
		l.users[strconv.FormatInt(u.ID, 10)] = userResult{user: u, found: true}
		if u.Email != "" {
			l.users[userKey(u.Email)] = userResult{user: u, found: true}
		}
	}
	l.mu.Unlock()
	return u, err
}

// Ticket finds a ticket with ShowTicket.
func (l *DirectLookup) Ticket(ctx context.Context, id int64) (zendesk.Ticket, error) {
	l.mu.Lock()
	res, ok := l.tickets[id]
	l.mu.Unlock()
	if ok {
		return res.ticket, foundOrNotFound(res.found, "ticket", strconv.FormatInt(id, 10))
	}
	t, err := l.zc.ShowTicket(ctx, id)
	if err != nil && !isNotFound(err) {
		return zendesk.Ticket{}, fmt.Errorf("actions: find ticket %d: %w", id, err)
	}
	l.mu.Lock()
	l.tickets[id] = ticketResult{ticket: t, found: err == nil}
	l.mu.Unlock()
	if err != nil {
		return zendesk.Ticket{}, fmt.Errorf("actions: find ticket %d: %w", id, err)
	}
	return t, nil
}

// Batch is a Lookup filled ahead with show_many (at most 100 ids a call,
// §3.3), for bulk runs: after Prefetch, User and Ticket answer from memory
// and fall back to one call for a value that was not prefetched. It is safe
// for concurrent use.
type Batch struct {
	zc *zendesk.Client

	mu             sync.Mutex
	users          map[int64]zendesk.User
	byEmail        map[string]int64 // lower-case email -> id
	missingUsers   map[string]bool  // userKey -> known not to exist
	tickets        map[int64]zendesk.Ticket
	missingTickets map[int64]bool
}

// NewBatch returns an empty Batch reading with zc, the admin's own client.
func NewBatch(zc *zendesk.Client) *Batch {
	return &Batch{
		zc:             zc,
		users:          make(map[int64]zendesk.User),
		byEmail:        make(map[string]int64),
		missingUsers:   make(map[string]bool),
		tickets:        make(map[int64]zendesk.Ticket),
		missingTickets: make(map[int64]bool),
	}
}

// Prefetch loads the tickets (show_many), then the users (show_many) given
// by id together with the requesters of those tickets, and finally searches
// one by one for the emails still unknown. A rating row given by email
// usually names the ticket's requester, so it needs no search: n rating rows
// cost about 2×ceil(n/100) calls. Values already known are not asked for
// again, and ids Zendesk does not know are remembered as missing. On error,
// what was loaded so far stays.
func (b *Batch) Prefetch(ctx context.Context, userRefs []string, ticketIDs []int64) error {
	var askTickets []int64
	b.mu.Lock()
	for _, id := range ticketIDs {
		if _, ok := b.tickets[id]; !ok && !b.missingTickets[id] && id > 0 {
			askTickets = append(askTickets, id)
		}
	}
	b.mu.Unlock()
	if len(askTickets) > 0 {
		ts, err := b.zc.ShowManyTickets(ctx, askTickets)
		if err != nil {
			return fmt.Errorf("actions: prefetch %d tickets: %w", len(askTickets), err)
		}
		b.mu.Lock()
		for _, t := range ts {
			b.tickets[t.ID] = t
		}
		for _, id := range askTickets {
			if _, ok := b.tickets[id]; !ok {
				b.missingTickets[id] = true
			}
		}
		b.mu.Unlock()
	}

	// Users by id: the numeric references and every requester of the
	// tickets asked about.
	var askUsers []int64
	asked := make(map[int64]bool)
	var emails []string
	b.mu.Lock()
	want := func(id int64) {
		if _, ok := b.users[id]; !ok && !asked[id] && id > 0 && !b.missingUsers[strconv.FormatInt(id, 10)] {
			asked[id] = true
			askUsers = append(askUsers, id)
		}
	}
	for _, id := range ticketIDs {
		if t, ok := b.tickets[id]; ok {
			want(t.RequesterID)
		}
	}
	for _, ref := range userRefs {
		ref = strings.TrimSpace(ref)
		if id, ok := IsUserID(ref); ok {
			want(id)
		} else if ref != "" {
			emails = append(emails, ref)
		}
	}
	b.mu.Unlock()
	if len(askUsers) > 0 {
		us, err := b.zc.ShowManyUsers(ctx, askUsers)
		if err != nil {
			return fmt.Errorf("actions: prefetch %d users: %w", len(askUsers), err)
		}
		b.mu.Lock()
		for _, u := range us {
			b.addUserLocked(u)
		}
		for _, id := range askUsers {
			if _, ok := b.users[id]; !ok {
				b.missingUsers[strconv.FormatInt(id, 10)] = true
			}
		}
		b.mu.Unlock()
	}

	// Emails that no prefetched user has: one search each.
	searched := make(map[string]bool)
	for _, email := range emails {
		key := userKey(email)
		b.mu.Lock()
		_, known := b.byEmail[key]
		skip := known || b.missingUsers[key] || searched[key]
		b.mu.Unlock()
		if skip {
			continue
		}
		searched[key] = true
		if _, err := b.fetchUser(ctx, email); err != nil && !isNotFound(err) {
			return fmt.Errorf("actions: prefetch users: %w", err)
		}
	}
	return nil
}

func (b *Batch) addUserLocked(u zendesk.User) {
	b.users[u.ID] = u
	if u.Email != "" {
		b.byEmail[userKey(u.Email)] = u.ID
	}
}

// User answers from memory, or asks Zendesk once for a user that was not
// prefetched.
func (b *Batch) User(ctx context.Context, ref string) (zendesk.User, error) {
	key := userKey(ref)
	b.mu.Lock()
	if b.missingUsers[key] {
		b.mu.Unlock()
		return zendesk.User{}, foundOrNotFound(false, "user", ref)
	}
	id, ok := IsUserID(strings.TrimSpace(ref))
	if !ok {
		id, ok = b.byEmail[key]
	}
	u, found := b.users[id]
	b.mu.Unlock()
	if ok && found {
		return u, nil
	}
	return b.fetchUser(ctx, ref)
}

// fetchUser asks Zendesk for one user and remembers the answer.
func (b *Batch) fetchUser(ctx context.Context, ref string) (zendesk.User, error) {
	u, err := fetchUser(ctx, b.zc, ref)
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case err == nil:
		b.addUserLocked(u)
	case isNotFound(err):
		b.missingUsers[userKey(ref)] = true
	}
	return u, err
}

// Ticket answers from memory, or asks Zendesk once for a ticket that was
// not prefetched.
func (b *Batch) Ticket(ctx context.Context, id int64) (zendesk.Ticket, error) {
	b.mu.Lock()
	t, ok := b.tickets[id]
	missing := b.missingTickets[id]
	b.mu.Unlock()
	switch {
	case ok:
		return t, nil
	case missing:
		return zendesk.Ticket{}, foundOrNotFound(false, "ticket", strconv.FormatInt(id, 10))
	}
	t, err := b.zc.ShowTicket(ctx, id)
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case err == nil:
		b.tickets[id] = t
	case isNotFound(err):
		b.missingTickets[id] = true
	}
	if err != nil {
		return zendesk.Ticket{}, fmt.Errorf("actions: find ticket %d: %w", id, err)
	}
	return t, nil
}

// fetchUser reads one user as the admin: ShowUser for an id, a search for
// "email:<ref>" otherwise. Zendesk's search matches more loosely than we
// want, so only an exact (case-insensitive) email match counts.
func fetchUser(ctx context.Context, zc *zendesk.Client, ref string) (zendesk.User, error) {
	ref = strings.TrimSpace(ref)
	if id, ok := IsUserID(ref); ok {
		u, err := zc.ShowUser(ctx, id)
		if err != nil {
			return zendesk.User{}, fmt.Errorf("actions: find user %d: %w", id, err)
		}
		return u, nil
	}
	if ref == "" {
		return zendesk.User{}, fmt.Errorf("actions: find user: empty reference: %w", zendesk.ErrNotFound)
	}
	page, err := zc.SearchUsers(ctx, "email:"+ref, 1, 100)
	if err != nil {
		return zendesk.User{}, fmt.Errorf("actions: find user %q: %w", ref, err)
	}
	for _, u := range page.Users {
		if strings.EqualFold(u.Email, ref) {
			return u, nil
		}
	}
	return zendesk.User{}, fmt.Errorf("actions: find user %q: %w", ref, zendesk.ErrNotFound)
}

func userKey(ref string) string { return strings.ToLower(strings.TrimSpace(ref)) }

func isNotFound(err error) bool { return err != nil && errors.Is(err, zendesk.ErrNotFound) }

// foundOrNotFound is nil when found, else a not-found error naming what.
func foundOrNotFound(found bool, what, ref string) error {
	if found {
		return nil
	}
	return fmt.Errorf("actions: find %s %q: %w", what, ref, zendesk.ErrNotFound)
}
