package sandbox

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// maxPageSize is Zendesk's page size limit for the endpoints served here
// (§3.4).
const maxPageSize = 100

// cursorKey is the sort position of a list item: its sort time and id.
type cursorKey struct {
	at int64
	id int64
}

func compareKeys(a, b cursorKey, desc bool) int {
	c := cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.id, b.id))
	if desc {
		return -c
	}
	return c
}

func sortByKey[T any](list []T, key func(T) cursorKey, desc bool) {
	slices.SortFunc(list, func(a, b T) int { return compareKeys(key(a), key(b), desc) })
}

// Cursors are opaque to clients; they carry the sort position of an item,
// so a cursor stays valid when items are added or change place.
func encodeCursor(k cursorKey) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%d:%d", k.at, k.id)))
}

func decodeCursor(s string) (cursorKey, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursorKey{}, false
	}
	a, i, ok := strings.Cut(string(b), ":")
	if !ok {
		return cursorKey{}, false
	}
	at, err1 := strconv.ParseInt(a, 10, 64)
	id, err2 := strconv.ParseInt(i, 10, 64)
	return cursorKey{at, id}, err1 == nil && err2 == nil
}

// sortParams reads sort_by/sort_order (offset style) or sort ("-field",
// cursor style). allowed[0] is the default field; the default order is
// ascending. On cursor pages the CursorIgnoresSortBy switch keeps only
// sort, and CursorIgnoresSort keeps neither (§3.2).
func (c *call) sortParams(allowed ...string) (string, bool, bool) {
	q := c.r.URL.Query()
	by, desc := allowed[0], false
	if v := q.Get("sort"); v != "" {
		desc = strings.HasPrefix(v, "-")
		by = strings.TrimPrefix(v, "-")
	}
	c.s.mu.Lock()
	sw := c.s.switches
	c.s.mu.Unlock()
	cursor := cursorPaged(q)
	if cursor && sw.CursorIgnoresSort {
		return allowed[0], false, true
	}
	if !cursor || !sw.CursorIgnoresSortBy {
		if v := q.Get("sort_by"); v != "" {
			by = v
		}
		switch q.Get("sort_order") {
		case "":
		case "asc":
			desc = false
		case "desc":
			desc = true
		default:
			badRequest(c.w, "InvalidParameter", "sort_order must be asc or desc")
			return "", false, false
		}
	}
	if !slices.Contains(allowed, by) {
		badRequest(c.w, "InvalidParameter", "cannot sort by "+by)
		return "", false, false
	}
	return by, desc, true
}

// cursorPaged reports whether the query asks for cursor pagination (§3.4).
func cursorPaged(q url.Values) bool {
	return q.Has("page[size]") || q.Has("page[after]") || q.Has("page[before]")
}

// paginate picks the page of an n-item list, sorted in display order, and
// adds the pagination fields to resp: cursor style (meta, links) when the
// query has page[size], page[after] or page[before], else offset style
// (next_page, previous_page, count) (§3.4). It answers 400 itself and
// reports false on bad parameters.
func (c *call) paginate(resp map[string]any, n int, keyAt func(int) cursorKey, desc bool) (int, int, bool) {
	q := c.r.URL.Query()
	if !cursorPaged(q) {
		pg, ok := c.offsetParams()
		if !ok {
			return 0, 0, false
		}
		c.offsetLinks(resp, pg, n)
		start := min(pg.start(), n)
		return start, min(start+pg.perPage, n), true
	}
	size := maxPageSize
	if v := q.Get("page[size]"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > maxPageSize {
			badRequest(c.w, "InvalidPaginationParameter", "page[size] must be between 1 and 100")
			return 0, 0, false
		}
		size = p
	}
	start, end := 0, min(size, n)
	switch {
	case q.Get("page[after]") != "":
		k, ok := decodeCursor(q.Get("page[after]"))
		if !ok {
			badRequest(c.w, "InvalidPaginationParameter", "page[after] is not a valid cursor")
			return 0, 0, false
		}
		start = n
		for i := range n {
			if compareKeys(keyAt(i), k, desc) > 0 {
				start = i
				break
			}
		}
		end = min(start+size, n)
	case q.Get("page[before]") != "":
		k, ok := decodeCursor(q.Get("page[before]"))
		if !ok {
			badRequest(c.w, "InvalidPaginationParameter", "page[before] is not a valid cursor")
			return 0, 0, false
		}
		end = 0
		for i := range n {
			if compareKeys(keyAt(i), k, desc) < 0 {
				end = i + 1
			}
		}
		start = max(0, end-size)
	}
	meta := map[string]any{"has_more": end < n, "after_cursor": nil, "before_cursor": nil}
	links := map[string]any{"next": nil, "prev": nil}
	if q.Get("page[before]") != "" {
		meta["has_more"] = start > 0
	}
	if start < end {
		after, before := encodeCursor(keyAt(end-1)), encodeCursor(keyAt(start))
		meta["after_cursor"], meta["before_cursor"] = after, before
		if end < n {
			links["next"] = c.pageURL(q, map[string]string{"page[size]": strconv.Itoa(size), "page[after]": after}, "page[before]")
		}
		if start > 0 {
			links["prev"] = c.pageURL(q, map[string]string{"page[size]": strconv.Itoa(size), "page[before]": before}, "page[after]")
		}
	}
	resp["meta"], resp["links"] = meta, links
	return start, end, true
}

type offsetPage struct{ page, perPage int }

func (p offsetPage) start() int { return (p.page - 1) * p.perPage }

// offsetParams reads page and per_page (default 1 and 100; per_page is
// capped at 100 as Zendesk does).
func (c *call) offsetParams() (offsetPage, bool) {
	q := c.r.URL.Query()
	pg := offsetPage{1, maxPageSize}
	if v := q.Get("page"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 {
			badRequest(c.w, "InvalidPaginationParameter", "page must be a positive number")
			return pg, false
		}
		pg.page = p
	}
	if v := q.Get("per_page"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 {
			badRequest(c.w, "InvalidPaginationParameter", "per_page must be a positive number")
			return pg, false
		}
		pg.perPage = min(p, maxPageSize)
	}
	return pg, true
}

func (c *call) offsetLinks(resp map[string]any, pg offsetPage, total int) {
	q := c.r.URL.Query()
	resp["count"] = total
	resp["next_page"], resp["previous_page"] = nil, nil
	pp := strconv.Itoa(pg.perPage)
	if pg.start()+pg.perPage < total {
		resp["next_page"] = c.pageURL(q, map[string]string{"page": strconv.Itoa(pg.page + 1), "per_page": pp})
	}
	if pg.page > 1 {
		resp["previous_page"] = c.pageURL(q, map[string]string{"page": strconv.Itoa(pg.page - 1), "per_page": pp})
	}
}

// pageURL is the current URL with set replacing and drop removing query
// parameters.
func (c *call) pageURL(q url.Values, set map[string]string, drop ...string) string {
	v := url.Values{}
	for k, vs := range q {
		v[k] = slices.Clone(vs)
	}
	for _, k := range drop {
		v.Del(k)
	}
	for k, val := range set {
		v.Set(k, val)
	}
	return c.base + c.r.URL.Path + "?" + v.Encode()
}
