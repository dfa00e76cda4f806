package handlers

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/bulk"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/views"
)

// auditPageSize is how many events one audit page shows.
const auditPageSize = 50

// auditActions are the actions the filter offers, in the order shown.
var auditActions = []string{
	string(actions.KindRate), string(actions.KindCreateRequest), string(actions.KindComment), string(actions.KindSolve),
	"login", "login_refused", "login_expired", "logout", "state_mismatch",
	// Bulk runs (runOp): confirm, cancel and retry, and refused attempts
	// to change another admin's run.
	"bulk_confirm", "bulk_cancel", "bulk_retry", "bulk_mapping", "bulk_preflight",
}

// auditOutcomes are the outcome filter's choices: the words runs use too.
var auditOutcomes = []string{store.ResultDone, store.ResultFailed, store.ResultRefused}

// parseAuditFilter reads the filter form. Dates are whole days in UTC; "to"
// includes its day.
func parseAuditFilter(q url.Values) (views.AuditFilter, store.AuditFilter, error) {
	vf := views.AuditFilter{
		Admin: strings.TrimSpace(q.Get("admin")), EndUser: strings.TrimSpace(q.Get("end_user")),
		Action: q.Get("action"), Outcome: q.Get("outcome"), From: q.Get("from"), To: q.Get("to"),
		Run: strings.TrimPrefix(strings.TrimSpace(q.Get("run")), "#"),
	}
	var sf store.AuditFilter
	if vf.Admin != "" {
		id, err := strconv.ParseInt(vf.Admin, 10, 64)
		if err != nil {
			return vf, sf, fmt.Errorf("the admin filter must be an admin's Zendesk id")
		}
		sf.AdminID = id
	}
	if vf.Run != "" {
		id, err := strconv.ParseInt(vf.Run, 10, 64)
		if err != nil || id <= 0 {
			return vf, sf, fmt.Errorf("the run filter must be a run's number, as in 12")
		}
		sf.RunID = id
	}
	if vf.Outcome == store.OutcomeOK {
		// The word links and scripts made before the shared vocabulary
		// used: the same events as "done".
		vf.Outcome = store.ResultDone
	}
	if vf.Outcome != "" && !slices.Contains(auditOutcomes, vf.Outcome) {
		return vf, sf, fmt.Errorf("the outcome filter must be one of %s", strings.Join(auditOutcomes, ", "))
	}
	sf.EndUser, sf.Action, sf.Result = vf.EndUser, vf.Action, vf.Outcome
	if vf.From != "" {
		t, err := time.Parse(time.DateOnly, vf.From)
		if err != nil {
			return vf, sf, fmt.Errorf("the 'from' date must look like 2026-11-27")
		}
		sf.From = t
	}
	if vf.To != "" {
		t, err := time.Parse(time.DateOnly, vf.To)
		if err != nil {
			return vf, sf, fmt.Errorf("the 'to' date must look like 2026-11-27")
		}
		sf.To = t.AddDate(0, 0, 1)
	}
	return vf, sf, nil
}

// handleAudit shows the audit trail, filtered and paged.
func (a *app) handleAudit() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		q := c.Request().URL.Query()
		p := views.AuditPage{Page: a.page(c, "Audit trail"), Actions: auditActions, Outcomes: auditOutcomes}
		p.Nav = "audit"
		vf, sf, err := parseAuditFilter(q)
		p.Filter = vf
		if err != nil {
			p.Error = err.Error()
			return render(c, http.StatusBadRequest, views.Audit(p))
		}
		admins, err := a.db.ListAuditAdmins(ctx)
		if err != nil {
			return err
		}
		for _, ad := range admins {
			p.Admins = append(p.Admins, views.AuditAdmin{ID: ad.ID, Name: ad.Name})
		}
		page, _ := strconv.Atoi(q.Get("page"))
		page = max(page, 1)
		sf.Limit, sf.Offset = auditPageSize, (page-1)*auditPageSize
		events, total, err := a.db.FindAuditEvents(ctx, sf)
		if err != nil {
			return err
		}
		p.Total, p.Page1 = total, page
		p.Pages = max(1, (total+auditPageSize-1)/auditPageSize)
		for _, e := range events {
			p.Events = append(p.Events, auditRow(e))
		}
		link := func(n int) string {
			v := cloneValues(q)
			v.Set("page", strconv.Itoa(n))
			return "/audit?" + v.Encode()
		}
		if page > 1 {
			p.PrevURL = link(page - 1)
		}
		if page < p.Pages {
			p.NextURL = link(page + 1)
		}
		v := cloneValues(q)
		v.Del("page")
		p.CSVURL = "/audit.csv?" + v.Encode()
		return render(c, http.StatusOK, views.Audit(p))
	}
}

// handleAuditCSV exports every event matching the filter. Cells that a
// spreadsheet would run as a formula are neutralised (promise 10).
func (a *app) handleAuditCSV() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		_, sf, err := parseAuditFilter(c.Request().URL.Query())
		if err != nil {
			return &pageError{Status: http.StatusBadRequest, Heading: "Check the filter", Message: "The audit filter is not valid: " + err.Error() + ".", ActionHref: "/audit", ActionLabel: "Audit trail"}
		}
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="onbehalf-audit-%s.csv"`, a.now().UTC().Format("20060102-150405")))
		c.Response().WriteHeader(http.StatusOK)
		_, _ = c.Response().Write([]byte("\uFEFF")) // a byte order mark: spreadsheet apps then read the names as UTF-8
		w := csv.NewWriter(c.Response())
		// The page's columns with the page's words, then the ids a program
		// joins on.
		_ = w.Write(append(views.AuditColumns(), "Admin id", "End user id", "Zendesk id", "Request id"))
		sf.Limit = store.MaxAuditLimit
		for offset := 0; ; offset += sf.Limit {
			sf.Offset = offset
			events, _, err := a.db.FindAuditEvents(ctx, sf)
			if err != nil {
				// Headers are gone; end the file visibly rather than silently short.
				_ = w.Write([]string{"ERROR: the export stopped early; download it again"})
				w.Flush()
				a.log.Error("audit export", "err", err)
				return nil
			}
			for _, e := range events {
				r := auditRow(e)
				rec := []string{e.Time.UTC().Format(time.RFC3339), r.Admin, r.Action, r.EndUser, r.Ticket(), r.Run(), r.Outcome, r.Detail,
					id(e.AdminID), id(e.EndUserID), id(e.ZendeskID), e.RequestID}
				for i := range rec {
					rec[i] = bulk.SafeCell(rec[i])
				}
				if err := w.Write(rec); err != nil {
					return nil
				}
			}
			if len(events) < sf.Limit {
				break
			}
		}
		w.Flush()
		return w.Error()
	}
}

// auditRow is an event as the page and the CSV show it.
func auditRow(e store.AuditEvent) views.AuditRow {
	return views.AuditRow{Time: e.Time, Admin: e.AdminName, Action: views.ActionName(e.Action), EndUser: e.EndUser,
		EndUserID: e.EndUserID, TicketID: e.TicketID, RunID: e.RunID, Outcome: e.Result(), Detail: e.Detail, ZendeskID: e.ZendeskID}
}

func id(n int64) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatInt(n, 10)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}
