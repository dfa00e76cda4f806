package handlers

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// sampleCSVPath is where the sandbox's ready-to-run sample CSV is served.
const sampleCSVPath = "/bulk/sample.csv"

// sampleRatings is a bulk rating file for the sandbox Zendesk: solved
// tickets of its verified end users, one bad rating with a reason, and one
// row for Dana Park, whom Zendesk won't let anyone act as (unverified), so
// the pre-flight and the results have a refusal to show.
func sampleRatings() string {
	rows := [][]string{
		{"email", "ticket_id", "score", "comment", "reason"},
		{sandbox.DemoBeaEmail, fmt.Sprint(sandbox.TicketBeaSolved), "good", "Thanks for the quick fix", ""},
		{sandbox.DemoBeauEmail, fmt.Sprint(sandbox.TicketBeauSolved), "good", "Sorted on the phone", ""},
		{sandbox.DemoBeauEmail, fmt.Sprint(sandbox.TicketBeauSolved2), "bad", "It took three tries", "5"},
		{sandbox.DemoCarlosEmail, fmt.Sprint(sandbox.TicketCarlosSolved), "good", "", ""},
		{sandbox.DemoUnverifiedEmail, fmt.Sprint(sandbox.TicketDanaSolved), "good", "Dana has not verified her email", ""},
	}
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, ","))
		b.WriteString("\n")
	}
	return b.String()
}

// handleSampleCSV serves the sample file, only when the app runs against
// its sandbox: the tickets in it exist nowhere else.
func (a *app) handleSampleCSV() echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.sandbox == nil {
			return echo.ErrNotFound
		}
		h := c.Response().Header()
		h.Set(echo.HeaderContentDisposition, `attachment; filename="sandbox-ratings.csv"`)
		return c.Blob(http.StatusOK, "text/csv; charset=utf-8", []byte(sampleRatings()))
	}
}
