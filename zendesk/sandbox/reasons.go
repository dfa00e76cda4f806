package sandbox

import (
	"fmt"
	"net/http"
)

// reason is one of the account's reasons for a bad rating (§3.2).
type reason struct {
	id     int64
	code   int64
	value  string
	custom bool
}

// CustomReasonCode is the code of the sandbox account's one custom reason
// for a bad rating, beside Zendesk's system reasons; CustomReasonName is
// its name.
const (
	CustomReasonCode = 1001
	CustomReasonName = "The product did not work as described"
)

// reasonList is the sandbox account's reasons: Zendesk's system reasons and
// one custom reason (custom codes are assigned by Zendesk, §3.2).
var reasonList = []reason{
	{id: 360001, code: 0, value: "No reason provided"},
	{id: 360002, code: 5, value: "The issue took too long to resolve"},
	{id: 360003, code: 6, value: "The issue was not resolved"},
	{id: 360004, code: 7, value: "The agent's knowledge is unsatisfactory"},
	{id: 360005, code: 8, value: "The agent's attitude is unsatisfactory"},
	{id: 360006, code: 100, value: "Some other reason"},
	{id: 360007, code: CustomReasonCode, value: CustomReasonName, custom: true},
}

// reasons maps a reason code to its name, as rateTicket checks them.
var reasons = func() map[int64]string {
	m := make(map[int64]string, len(reasonList))
	for _, r := range reasonList {
		m[r.code] = r.value
	}
	return m
}()

// listReasons serves GET /api/v2/satisfaction_reasons (§3.2): an admin's
// read of the account's reasons for a bad rating.
func (c *call) listReasons() {
	if c.user.Role != "admin" {
		writeJSON(c.w, http.StatusForbidden, map[string]any{"error": "Forbidden",
			"description": "You do not have access to this page. Please contact the account owner of this help desk for further help."})
		return
	}
	out := make([]map[string]any, 0, len(reasonList))
	for _, r := range reasonList {
		raw := r.value
		if !r.custom {
			raw = fmt.Sprintf("{{zd.satisfaction_reason_%d}}", r.code)
		}
		out = append(out, map[string]any{
			"id": r.id, "url": fmt.Sprintf("%s/api/v2/satisfaction_reasons/%d.json", c.base, r.id),
			"reason_code": r.code, "value": r.value, "raw_value": raw,
			"created_at": ts(demoEpoch), "updated_at": ts(demoEpoch), "deleted_at": nil,
		})
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"reasons": out, "next_page": nil, "previous_page": nil, "count": len(out)})
}
