package sandbox

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (c *call) userJSON(u *User) map[string]any {
	return map[string]any{
		"id": u.ID, "url": fmt.Sprintf("%s/api/v2/users/%d.json", c.base, u.ID), "name": u.Name, "email": u.Email,
		"role": u.Role, "role_type": nil, "verified": u.Verified, "active": u.Active, "suspended": u.Suspended,
		"external_id": nullStr(u.ExternalID), "organization_id": nullID(u.OrganizationID), "locale": u.Locale,
		"time_zone": u.TimeZone, "phone": nil, "tags": []string{}, "user_fields": map[string]any{},
		"created_at": ts(u.CreatedAt), "updated_at": ts(u.UpdatedAt), "last_login_at": nil,
	}
}

// ratingState is the ticket's satisfaction_rating field (§3.2): the rating,
// or "offered" once the ticket was solved, else "unoffered".
func ratingState(t *Ticket) map[string]any {
	if r := t.Rating; r != nil {
		if r.Score == "good" || r.Score == "bad" {
			return map[string]any{"id": r.ID, "score": r.Score, "comment": nullStr(r.Comment),
				"reason": nullStr(r.Reason), "reason_id": nullID(r.ReasonID)}
		}
		return map[string]any{"score": r.Score}
	}
	if t.Status == "solved" || t.Status == "closed" || t.WasSolved {
		return map[string]any{"score": "offered"}
	}
	return map[string]any{"score": "unoffered"}
}

func (c *call) ticketJSON(t *Ticket) map[string]any {
	return map[string]any{
		"id": t.ID, "url": fmt.Sprintf("%s/api/v2/tickets/%d.json", c.base, t.ID), "subject": t.Subject,
		"raw_subject": t.Subject, "description": t.Description, "status": t.Status, "type": nullStr(t.Type),
		"priority": nullStr(t.Priority), "requester_id": t.RequesterID, "submitter_id": t.SubmitterID,
		"assignee_id": nullID(t.AssigneeID), "group_id": nullID(t.GroupID), "organization_id": nil,
		"collaborator_ids": nonNil(t.CollaboratorIDs), "satisfaction_rating": ratingState(t),
		"via": map[string]any{"channel": "web"}, "is_public": true,
		"created_at": ts(t.CreatedAt), "updated_at": ts(t.UpdatedAt),
	}
}

func nonNil(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}

// canBeSolvedByMe follows §3.1: assigned to an agent and not a problem
// ticket; a ticket already solved or closed cannot be solved again.
func canBeSolvedByMe(t *Ticket) bool {
	return t.AssigneeID != 0 && t.Type != "problem" && t.Status != "solved" && t.Status != "closed"
}

func (c *call) requestJSON(t *Ticket) map[string]any {
	return map[string]any{
		"id": t.ID, "url": fmt.Sprintf("%s/api/v2/requests/%d.json", c.base, t.ID), "subject": t.Subject,
		"description": t.Description, "status": t.Status, "custom_status_id": nil, "priority": nullStr(t.Priority),
		"type": nullStr(t.Type), "requester_id": t.RequesterID, "assignee_id": nullID(t.AssigneeID),
		"group_id": nullID(t.GroupID), "organization_id": nil, "collaborator_ids": nonNil(t.CollaboratorIDs),
		"email_cc_ids": nonNil(t.CollaboratorIDs), "can_be_solved_by_me": canBeSolvedByMe(t),
		"solved": t.Status == "solved" || t.Status == "closed", "is_public": true,
		"via": map[string]any{"channel": "web"}, "custom_fields": []any{},
		"created_at": ts(t.CreatedAt), "updated_at": ts(t.UpdatedAt),
	}
}

func (c *call) commentJSON(t *Ticket, cm *Comment) map[string]any {
	return map[string]any{
		"id": cm.ID, "type": "Comment", "request_id": t.ID, "body": cm.Body,
		"html_body": "<p>" + html.EscapeString(cm.Body) + "</p>", "plain_body": cm.Body, "public": cm.Public,
		"author_id": cm.AuthorID, "attachments": []any{}, "created_at": ts(cm.CreatedAt),
	}
}

func (c *call) ratingJSON(t *Ticket) map[string]any {
	r := t.Rating
	return map[string]any{
		"id": r.ID, "url": fmt.Sprintf("%s/api/v2/satisfaction_ratings/%d.json", c.base, r.ID),
		"assignee_id": nullID(t.AssigneeID), "group_id": nullID(t.GroupID), "requester_id": t.RequesterID,
		"ticket_id": t.ID, "score": r.Score, "comment": nullStr(r.Comment), "reason": nullStr(r.Reason),
		"reason_id": nullID(r.ReasonID), "created_at": ts(r.CreatedAt), "updated_at": ts(t.UpdatedAt),
	}
}

// ---- users ----

func (c *call) me() {
	if c.tok == nil {
		// §1.6: without a token, Zendesk answers with an anonymous user.
		writeJSON(c.w, http.StatusOK, map[string]any{"user": map[string]any{
			"id": nil, "url": nil, "name": "Anonymous user", "email": "invalid@example.com", "role": "end-user",
			"verified": false, "active": true, "suspended": false, "locale": "en-US", "time_zone": "UTC"}})
		return
	}
	c.s.mu.Lock()
	u := c.s.users[c.actor.ID]
	out := c.userJSON(u)
	c.s.mu.Unlock()
	writeJSON(c.w, http.StatusOK, map[string]any{"user": out})
}

func (c *call) showUser() {
	id := c.params[0]
	// End users may see themselves only.
	if c.actor.Role == "end-user" && id != c.actor.ID {
		forbidden(c.w)
		return
	}
	c.s.mu.Lock()
	u, ok := c.s.users[id]
	var out map[string]any
	if ok {
		out = c.userJSON(u)
	}
	c.s.mu.Unlock()
	if !ok {
		notFound(c.w)
		return
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"user": out})
}

// parseIDs reads a comma-separated id list of at most 100 ids.
func (c *call) parseIDs() ([]int64, bool) {
	raw := c.r.URL.Query().Get("ids")
	if raw == "" {
		badRequest(c.w, "InvalidParameter", "ids is required")
		return nil, false
	}
	var ids []int64
	for p := range strings.SplitSeq(raw, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil {
			badRequest(c.w, "InvalidParameter", "ids must be a comma-separated list of numbers")
			return nil, false
		}
		if !slices.Contains(ids, n) {
			ids = append(ids, n)
		}
	}
	if len(ids) > 100 {
		badRequest(c.w, "TooManyIds", "show_many accepts at most 100 ids")
		return nil, false
	}
	return ids, true
}

func (c *call) showManyUsers() {
	ids, ok := c.parseIDs()
	if !ok {
		return
	}
	out := []map[string]any{}
	c.s.mu.Lock()
	for _, id := range ids {
		if u, ok := c.s.users[id]; ok {
			out = append(out, c.userJSON(u))
		}
	}
	c.s.mu.Unlock()
	writeJSON(c.w, http.StatusOK, map[string]any{"users": out, "next_page": nil, "previous_page": nil, "count": len(out)})
}

func (c *call) searchUsers() {
	q := strings.TrimSpace(c.r.URL.Query().Get("query"))
	var match func(u *User) bool
	if email, ok := strings.CutPrefix(strings.ToLower(q), "email:"); ok {
		email = strings.Trim(email, `"`)
		match = func(u *User) bool { return strings.EqualFold(u.Email, email) }
	} else {
		needle := strings.ToLower(q)
		match = func(u *User) bool {
			return strings.Contains(strings.ToLower(u.Name), needle) || strings.Contains(strings.ToLower(u.Email), needle)
		}
	}
	c.userList(match)
}

func (c *call) autocompleteUsers() {
	name := strings.ToLower(strings.TrimSpace(c.r.URL.Query().Get("name")))
	if name == "" {
		badRequest(c.w, "InvalidParameter", "name is required")
		return
	}
	c.userList(func(u *User) bool {
		for _, w := range strings.Fields(strings.ToLower(u.Name)) {
			if strings.HasPrefix(w, name) {
				return true
			}
		}
		return false
	})
}

// userList answers an offset-paginated list of the users that match, in id
// order (§3.3, §3.4).
func (c *call) userList(match func(*User) bool) {
	pg, ok := c.offsetParams()
	if !ok {
		return
	}
	var out []map[string]any
	total := 0
	c.s.mu.Lock()
	for _, id := range c.s.userIDs {
		u := c.s.users[id]
		if !match(u) {
			continue
		}
		if total >= pg.start() && total < pg.start()+pg.perPage {
			out = append(out, c.userJSON(u))
		}
		total++
	}
	c.s.mu.Unlock()
	resp := map[string]any{"users": nonNilMaps(out)}
	c.offsetLinks(resp, pg, total)
	writeJSON(c.w, http.StatusOK, resp)
}

func nonNilMaps(m []map[string]any) []map[string]any {
	if m == nil {
		return []map[string]any{}
	}
	return m
}

// ---- tickets ----

func (c *call) showTicket() {
	c.s.mu.Lock()
	t, ok := c.s.tickets[c.params[0]]
	var out map[string]any
	if ok {
		out = c.ticketJSON(t)
	}
	c.s.mu.Unlock()
	if !ok {
		notFound(c.w)
		return
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"ticket": out})
}

func (c *call) showManyTickets() {
	ids, ok := c.parseIDs()
	if !ok {
		return
	}
	out := []map[string]any{}
	c.s.mu.Lock()
	for _, id := range ids {
		if t, ok := c.s.tickets[id]; ok {
			out = append(out, c.ticketJSON(t))
		}
	}
	c.s.mu.Unlock()
	writeJSON(c.w, http.StatusOK, map[string]any{"tickets": out, "next_page": nil, "previous_page": nil, "count": len(out)})
}

// rateTicket serves POST /api/v2/tickets/{id}/satisfaction_rating with the
// rules of §3.2.
func (c *call) rateTicket() {
	var in struct {
		Rating *struct {
			Score      string `json:"score"`
			Comment    string `json:"comment"`
			ReasonCode *int64 `json:"reason_code"`
			ReasonID   *int64 `json:"reason_id"`
		} `json:"satisfaction_rating"`
	}
	if err := json.Unmarshal(c.body, &in); err != nil || in.Rating == nil {
		badRequest(c.w, "InvalidBody", `expected {"satisfaction_rating":{...}}`)
		return
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tickets[c.params[0]]
	if !ok {
		notFound(c.w)
		return
	}
	switch {
	case s.switches.LegacyCSATOff:
		forbidden(c.w)
		return
	case c.actor.Role != "end-user" || c.actor.ID != t.RequesterID:
		// Agents and admins can never rate, even their own tickets (§3.2).
		forbidden(c.w)
		return
	case !s.switches.UnverifiedAllowed && !c.actor.Verified:
		// "The end user must be a verified user" (§3.2).
		forbidden(c.w)
		return
	case t.Status == "closed":
		invalid(c.w, "status", "InvalidValue", "Status: closed prevents ticket update")
		return
	case t.Status != "solved" && !t.WasSolved:
		invalid(c.w, "base", "InvalidValue", "Satisfaction rating can only be given for solved tickets")
		return
	}
	r := in.Rating
	if r.Score != "good" && r.Score != "bad" {
		invalid(c.w, "score", "InvalidValue", "Score: is not included in the list (good, bad)")
		return
	}
	code := r.ReasonCode
	if code == nil {
		code = r.ReasonID
	}
	reason := ""
	if code != nil {
		if r.Score != "bad" {
			invalid(c.w, "reason_code", "InvalidValue", "Reason: can only be given with a bad rating")
			return
		}
		text, ok := reasons[*code]
		if !ok {
			invalid(c.w, "reason_code", "InvalidValue", "Reason: is invalid")
			return
		}
		reason = text
	}
	now := s.now()
	rating := &Rating{Score: r.Score, Comment: r.Comment, Reason: reason, CreatedAt: now}
	if code != nil {
		rating.ReasonID = *code
	}
	if t.Rating != nil && t.Rating.ID != 0 {
		// A second rating replaces the first and keeps its id, as the
		// legacy survey lets a customer change their mind.
		rating.ID, rating.CreatedAt = t.Rating.ID, t.Rating.CreatedAt
	} else {
		s.nextRatingID++
		rating.ID = s.nextRatingID
	}
	t.Rating = rating
	t.UpdatedAt = now
	out := c.ratingJSON(t)
	if s.switches.RatingAsObject {
		writeJSON(c.w, http.StatusOK, map[string]any{"satisfaction_rating": out})
		return
	}
	// The docs and the OAS show an array of one (§3.2).
	writeJSON(c.w, http.StatusOK, map[string]any{"satisfaction_rating": []any{out}})
}

// ---- requests ----

// visibleLocked reports whether the actor sees the ticket through the
// Requests API: as its requester or a collaborator (§3.1).
func (c *call) visibleLocked(t *Ticket) bool {
	return t.RequesterID == c.actor.ID || slices.Contains(t.CollaboratorIDs, c.actor.ID)
}

func (c *call) listRequests() {
	who := c.actor.ID
	c.listRequestsOf(who, c.r.URL.Path)
}

func (c *call) userRequests() {
	c.s.mu.Lock()
	_, ok := c.s.users[c.params[0]]
	c.s.mu.Unlock()
	if !ok {
		notFound(c.w)
		return
	}
	c.listRequestsOf(c.params[0], c.r.URL.Path)
}

var statuses = []string{"new", "open", "pending", "hold", "solved", "closed"}

func (c *call) listRequestsOf(who int64, path string) {
	q := c.r.URL.Query()
	path = strings.TrimSuffix(path, ".json")
	var want []string
	ccdOnly := false
	switch {
	case strings.HasSuffix(path, "/requests/open"):
		want = []string{"new", "open", "pending", "hold"}
	case strings.HasSuffix(path, "/requests/solved"):
		want = []string{"solved", "closed"}
	case strings.HasSuffix(path, "/requests/ccd"):
		ccdOnly = true
	}
	if st := q.Get("status"); st != "" {
		for p := range strings.SplitSeq(st, ",") {
			p = strings.TrimSpace(p)
			if !slices.Contains(statuses, p) {
				badRequest(c.w, "InvalidParameter", "status must be a list of new, open, pending, hold, solved, closed")
				return
			}
			want = append(want, p)
		}
	}
	sortBy, desc, ok := c.sortParams("created_at", "updated_at")
	if !ok {
		return
	}

	c.s.mu.Lock()
	var ids []int64
	if !ccdOnly {
		ids = append(ids, c.s.byRequester[who]...)
	}
	for _, id := range c.s.byCollab[who] {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	var list []*Ticket
	for _, id := range ids {
		t := c.s.tickets[id]
		if len(want) == 0 || slices.Contains(want, t.Status) {
			list = append(list, t)
		}
	}
	key := func(t *Ticket) cursorKey {
		if sortBy == "updated_at" {
			return cursorKey{t.UpdatedAt.UnixNano(), t.ID}
		}
		return cursorKey{t.CreatedAt.UnixNano(), t.ID}
	}
	sortByKey(list, key, desc)
	resp := map[string]any{}
	start, end, ok := c.paginate(resp, len(list), func(i int) cursorKey { return key(list[i]) }, desc)
	if ok {
		out := make([]map[string]any, 0, end-start)
		for _, t := range list[start:end] {
			out = append(out, c.requestJSON(t))
		}
		resp["requests"] = out
	}
	c.s.mu.Unlock()
	if ok {
		writeJSON(c.w, http.StatusOK, resp)
	}
}

func (c *call) showRequest() {
	c.s.mu.Lock()
	t, ok := c.s.tickets[c.params[0]]
	ok = ok && c.visibleLocked(t)
	var out map[string]any
	if ok {
		out = c.requestJSON(t)
	}
	c.s.mu.Unlock()
	if !ok {
		notFound(c.w)
		return
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"request": out})
}

type commentIn struct {
	Body     string `json:"body"`
	HTMLBody string `json:"html_body"`
	Public   *bool  `json:"public"`
}

func (ci *commentIn) text() string {
	if ci == nil {
		return ""
	}
	if strings.TrimSpace(ci.Body) != "" {
		return ci.Body
	}
	return ci.HTMLBody
}

// unverifiedRefusedLocked refuses an unverified end user's write, as the
// Requests API does (§3.1), unless the UnverifiedAllowed switch is on (§2).
func (c *call) unverifiedRefusedLocked() bool {
	if !c.s.switches.UnverifiedAllowed && c.actor.Role == "end-user" && !c.actor.Verified {
		forbidden(c.w)
		return true
	}
	return false
}

func (c *call) createRequest() {
	var in struct {
		Request *struct {
			Subject string     `json:"subject"`
			Comment *commentIn `json:"comment"`
		} `json:"request"`
	}
	if err := json.Unmarshal(c.body, &in); err != nil || in.Request == nil {
		badRequest(c.w, "InvalidBody", `expected {"request":{...}}`)
		return
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.switches.ImpersonationIgnoredOnCreate && c.impersonating {
		// Zendesk took the request from the token's owner, as if
		// X-On-Behalf-Of had not been sent.
		c.actor = c.user
	}
	if c.unverifiedRefusedLocked() {
		return
	}
	body := in.Request.Comment.text()
	if strings.TrimSpace(body) == "" {
		invalid(c.w, "description", "BlankValue", "Description: cannot be blank")
		return
	}
	subject := strings.TrimSpace(in.Request.Subject)
	if subject == "" {
		// Zendesk derives a missing subject from the description.
		subject = firstLine(body, 50)
	}
	now := s.now()
	s.nextTicketID++
	s.nextCommentID++
	t := &Ticket{ID: s.nextTicketID, Subject: subject, Description: body, Status: "new",
		RequesterID: c.actor.ID, SubmitterID: c.actor.ID, CreatedAt: now, UpdatedAt: now,
		Comments: []Comment{{ID: s.nextCommentID, AuthorID: c.actor.ID, Body: body, Public: true, CreatedAt: now}}}
	s.tickets[t.ID] = t
	s.index(t)
	c.ticketID = t.ID
	c.w.Header().Set("Location", fmt.Sprintf("%s/api/v2/requests/%d.json", c.base, t.ID))
	writeJSON(c.w, http.StatusCreated, map[string]any{"request": c.requestJSON(t)})
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}

func (c *call) updateRequest() {
	var in struct {
		Request *struct {
			Comment *commentIn `json:"comment"`
			Solved  any        `json:"solved"`
		} `json:"request"`
	}
	if err := json.Unmarshal(c.body, &in); err != nil || in.Request == nil {
		badRequest(c.w, "InvalidBody", `expected {"request":{...}}`)
		return
	}
	// §3.1 shows "solved":"true" as a string; accept a boolean too.
	solve := false
	switch v := in.Request.Solved.(type) {
	case bool:
		solve = v
	case string:
		solve = v == "true"
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tickets[c.params[0]]
	if !ok || !c.visibleLocked(t) {
		notFound(c.w)
		return
	}
	if c.unverifiedRefusedLocked() {
		return
	}
	if t.Status == "closed" {
		invalid(c.w, "status", "InvalidValue", "Status: closed prevents ticket update")
		return
	}
	if in.Request.Comment != nil && strings.TrimSpace(in.Request.Comment.text()) == "" {
		invalid(c.w, "comment", "BlankValue", "Comment: cannot be blank")
		return
	}
	if solve && t.Status != "solved" && !canBeSolvedByMe(t) {
		invalid(c.w, "base", "InvalidValue", "This request cannot be solved by you: it must be assigned to an agent and not be a problem ticket")
		return
	}
	now := s.now()
	if in.Request.Comment != nil {
		s.nextCommentID++
		t.Comments = append(t.Comments, Comment{ID: s.nextCommentID, AuthorID: c.actor.ID,
			Body: in.Request.Comment.text(), Public: true, CreatedAt: now})
		if c.actor.Role == "end-user" && (t.Status == "pending" || t.Status == "solved") {
			// An end user's reply reopens the ticket; a reopened solved
			// ticket can still be rated (§3.2).
			if t.Status == "solved" {
				t.WasSolved = true
			}
			t.Status = "open"
		}
		t.UpdatedAt = now
	}
	if solve && t.Status != "solved" {
		t.Status = "solved"
		t.UpdatedAt = now
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"request": c.requestJSON(t)})
}

func (c *call) listComments() {
	sortBy, desc, ok := c.sortParams("created_at")
	if !ok {
		return
	}
	_ = sortBy
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	t, found := s.tickets[c.params[0]]
	if !found || !c.visibleLocked(t) {
		notFound(c.w)
		return
	}
	var list []*Comment
	for i := range t.Comments {
		// The Requests API shows end users the public conversation only.
		if t.Comments[i].Public {
			list = append(list, &t.Comments[i])
		}
	}
	key := func(cm *Comment) cursorKey { return cursorKey{cm.CreatedAt.UnixNano(), cm.ID} }
	sortByKey(list, key, desc)
	resp := map[string]any{}
	start, end, ok := c.paginate(resp, len(list), func(i int) cursorKey { return key(list[i]) }, desc)
	if !ok {
		return
	}
	out := make([]map[string]any, 0, end-start)
	var authors []int64
	for _, cm := range list[start:end] {
		out = append(out, c.commentJSON(t, cm))
		if !slices.Contains(authors, cm.AuthorID) {
			authors = append(authors, cm.AuthorID)
		}
	}
	users := make([]map[string]any, 0, len(authors))
	for _, id := range authors {
		if u, ok := s.users[id]; ok {
			users = append(users, map[string]any{"id": u.ID, "name": u.Name, "agent": u.Role != "end-user",
				"organization_id": nullID(u.OrganizationID), "photo": nil})
		}
	}
	resp["comments"] = out
	resp["users"] = users
	writeJSON(c.w, http.StatusOK, resp)
}

// ---- oauth tokens (§1.6) ----

func (c *call) tokenJSON(t *tokenRec) map[string]any {
	var clientID any
	if cl, ok := c.s.clients[t.client]; ok {
		clientID = cl.id
	}
	var refresh any
	if t.refresh != "" {
		refresh = t.refresh[:10]
	}
	return map[string]any{
		"id": t.id, "url": fmt.Sprintf("%s/api/v2/oauth/tokens/%d.json", c.base, t.id), "client_id": clientID,
		"user_id": t.userID, "token": t.access[:10], "refresh_token": refresh, "scopes": t.scopes,
		"created_at": ts(t.createdAt), "expires_at": ts(t.expiresAt),
		"refresh_token_expires_at": ts(t.refreshExpiresAt), "used_at": ts(t.usedAt),
	}
}

func (c *call) currentToken() {
	c.s.mu.Lock()
	out := c.tokenJSON(c.tok)
	c.s.mu.Unlock()
	writeJSON(c.w, http.StatusOK, map[string]any{"token": out})
}

func (c *call) revokeCurrent() {
	c.s.mu.Lock()
	if !c.s.switches.RevokeCurrentIgnored {
		c.tok.revoked = true
		c.s.stats.Revocations++
	}
	c.s.mu.Unlock()
	c.w.WriteHeader(http.StatusNoContent)
}

func (c *call) revokeByID() {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[c.params[0]]
	if !ok || t.revoked {
		notFound(c.w)
		return
	}
	if t.userID != c.tok.userID {
		// Only an admin with write access may revoke someone else's token.
		if c.user.Role != "admin" || !c.hasScopeFor(http.MethodDelete) {
			forbidden(c.w)
			return
		}
	}
	t.revoked = true
	s.stats.Revocations++
	c.w.WriteHeader(http.StatusNoContent)
}
