package handlers

import (
	"github.com/labstack/echo/v4"

	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/views"
)

// homeItems is how many recent runs and events the home page lists.
const homeItems = 5

// homePage is the signed-in home page: where to start, the latest bulk runs
// (anyone's) and the admin's own latest activity.
func (a *app) homePage(c echo.Context, page views.Page) (views.HomePage, error) {
	ctx := c.Request().Context()
	p := views.HomePage{Page: page, ZendeskURL: a.zendeskURL}
	runs, _, err := a.db.ListRuns(ctx, store.RunFilter{Limit: homeItems})
	if err != nil {
		return p, err
	}
	for _, r := range runs {
		counts, err := a.db.RunCounts(ctx, r.ID)
		if err != nil {
			return p, err
		}
		p.Runs = append(p.Runs, runSummary(r, counts))
	}
	events, _, err := a.db.FindAuditEvents(ctx, store.AuditFilter{AdminID: page.Admin.ID, Limit: homeItems})
	if err != nil {
		return p, err
	}
	for _, e := range events {
		p.Activity = append(p.Activity, auditRow(e))
	}
	return p, nil
}
