package handlers

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/bulk"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/views"
)

// rowsPageSize is how many rows a run page shows at once.
const rowsPageSize = 50

// kindOptions lists the bulk actions for the form, with the columns each needs.
func kindOptions() ([]views.KindOption, map[string]string) {
	var opts []views.KindOption
	cols := map[string]string{}
	for _, k := range actions.Kinds() {
		opts = append(opts, views.KindOption{Value: string(k), Label: k.Label()})
		req, opt := bulk.Fields(k)
		var names []string
		for _, f := range req {
			names = append(names, fieldLabel(f))
		}
		s := strings.Join(names, ", ")
		if len(opt) > 0 {
			var o []string
			for _, f := range opt {
				o = append(o, fieldLabel(f))
			}
			s += "; optional " + strings.Join(o, ", ")
		}
		cols[string(k)] = s
	}
	return opts, cols
}

// fieldLabel names a CSV field the way the help text and mapping form do.
func fieldLabel(f bulk.Field) string {
	switch f {
	case bulk.FieldUser:
		return "end user (email or id)"
	case bulk.FieldTicket:
		return "ticket / request id"
	case bulk.FieldScore:
		return "score (good or bad, or a survey score)"
	case bulk.FieldReason:
		return "reason (code or name)"
	}
	return string(f)
}

// bulkPage builds the start page with the run history.
func (a *app) bulkPage(c echo.Context) (views.BulkPage, error) {
	kinds, cols := kindOptions()
	p := views.BulkPage{Page: a.page(c, "Bulk runs"), Kinds: kinds, Columns: cols,
		MaxMB: int(a.maxUpload >> 20), MaxRows: bulk.DefaultMaxRows}
	p.Nav = "bulk"
	if a.sandbox != nil {
		p.SampleURL = sampleCSVPath
	}
	p.Reference = reference(a.reasonsFor(c))
	runs, _, err := a.db.ListRuns(c.Request().Context(), store.RunFilter{Limit: 50})
	if err != nil {
		return p, err
	}
	for _, r := range runs {
		counts, err := a.db.RunCounts(c.Request().Context(), r.ID)
		if err != nil {
			return p, err
		}
		p.Runs = append(p.Runs, runSummary(r, counts))
	}
	return p, nil
}

func runSummary(r store.Run, c store.RunCounts) views.RunSummary {
	return views.RunSummary{ID: r.ID, CreatedAt: r.CreatedAt, Admin: r.AdminName, FileName: r.FileName,
		Kind: actions.Kind(r.Kind).Label(), State: r.State, Total: r.Total, Done: c.Done, Failed: c.Failed,
		Skipped: c.Skipped, Invalid: c.Invalid}
}

// handleBulk shows the upload form and past runs.
func (a *app) handleBulk() echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := a.bulkPage(c)
		if err != nil {
			return err
		}
		p.Form.Kind = c.QueryParam("kind")
		return render(c, http.StatusOK, views.Bulk(p))
	}
}

// handleUpload reads an uploaded or pasted CSV into a new run in preview.
// Nothing is sent to Zendesk here; a bad file is refused whole, with a
// sentence saying what to fix, and leaves nothing stored.
func (a *app) handleUpload() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		admin := adminOf(c)
		kind, kindErr := actions.ParseKind(c.FormValue("kind"))
		pasted := c.FormValue("pasted")
		fail := func(status int, msg string) error {
			p, err := a.bulkPage(c)
			if err != nil {
				return err
			}
			p.Error = msg
			p.Form = views.BulkForm{Kind: string(kind), Pasted: pasted}
			p.DraftSent = views.DraftKept // refused whole: nothing stored
			return render(c, status, views.Bulk(p))
		}
		if kindErr != nil {
			return fail(http.StatusUnprocessableEntity, "Choose what to do for each row.")
		}
		var src io.Reader
		name := "pasted rows"
		if fh, err := c.FormFile("file"); err == nil && fh.Size > 0 {
			if fh.Size > a.maxUpload {
				return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("The file is %.1f MB; onbehalf accepts up to %d MB. Split it into smaller files.", float64(fh.Size)/(1<<20), a.maxUpload>>20))
			}
			f, err := fh.Open()
			if err != nil {
				return fmt.Errorf("open upload: %w", err)
			}
			defer f.Close()
			src, name = f, filepath.Base(fh.Filename)
		} else if strings.TrimSpace(pasted) != "" {
			src = strings.NewReader(pasted)
		} else {
			return fail(http.StatusUnprocessableEntity, "Choose a CSV file or paste rows (with the header line) first.")
		}
		run := &store.Run{AdminID: admin.ID, AdminName: admin.Name, GrantID: int64Value(sessionOf(c), keyGrantID),
			Kind: string(kind), FileName: name}
		var reasons bulk.Reasons
		if kind == actions.KindRate {
			reasons, _ = a.reasonsFor(c)
		}
		_, err := bulk.Import(ctx, a.db, run, src, bulk.Options{MaxBytes: a.maxUpload, MaxRows: bulk.DefaultMaxRows,
			AllowMissingColumns: true, Reasons: reasons})
		if err != nil {
			var fe *bulk.FileError
			if errors.As(err, &fe) {
				status := http.StatusUnprocessableEntity
				if errors.Is(err, bulk.ErrTooLarge) {
					status = http.StatusRequestEntityTooLarge
				}
				return fail(status, fe.Message)
			}
			return err
		}
		// The rows are stored: the browser tab forgets the pasted rows.
		sess := sessionOf(c)
		sess.Values[keyDraftDone] = true
		if err := sess.Save(c.Request(), c.Response()); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/bulk/runs/%d", run.ID))
	}
}

// rowFilters maps the tabs of the rows table to store filters.
var rowFilters = map[string]store.RowFilter{
	"":        {},
	"invalid": {States: []string{store.RowInvalid}},
	// Rows the pre-flight expects Zendesk to refuse: pending (or, once
	// the run went, skipped or sent) with the pre-flight's reason, so no
	// state tab holds them all.
	"refused": {OnlyPreflightErrors: true},
	"failed":  {States: []string{store.RowFailed}},
	"done":    {States: []string{store.RowDone}},
}

// handleRun shows a run: the preview before confirmation, live progress
// while it runs, and results after.
func (a *app) handleRun() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		id := runOf(c).ID
		// The rows section alone, fetched again by the page's script while
		// the run goes: counts and rows, nothing else.
		fragment := c.QueryParam("fragment") == "rows"
		prog, err := a.bulk.Progress(ctx, id)
		if err != nil {
			return err
		}
		run, counts := prog.Run, prog.Counts
		// A fragment is fetched in the background: it must not take the
		// one-time notice meant for the next page the admin opens.
		pg := views.Page{Title: fmt.Sprintf("Run #%d", id)}
		if !fragment {
			pg = a.page(c, pg.Title)
		}
		p := views.RunPage{Page: pg, Run: runSummary(run, counts), Header: run.Header}
		p.Nav = "bulk"
		p.Counts = viewCounts(run, prog)
		p.Owner = isOwner(&run, p.Admin)
		p.Preview = run.State == store.RunPreview
		p.Cancellable = underWay(&run)
		p.Cancelling = cancellingNote(run, counts)
		p.Queuing = queuingNote(run)
		p.Active = p.Cancellable || p.Cancelling != ""
		p.Finished = (run.State == store.RunDone || run.State == store.RunCancelled) && p.Cancelling == ""
		if !fragment {
			p.Chart = a.runChart(c.Request().Context(), &run, p.Finished)
		}
		p.Preflighted = run.Preflighted
		p.Writes = counts.Pending
		p.ConfirmedBy, p.ConfirmedAt = run.ConfirmedBy.Name, run.StartedAt
		p.CancelledBy, p.CancelledAt = run.CancelledBy.Name, run.FinishedAt
		// A run cancelled by an admin says who did (CancelledBy); one that
		// onbehalf stopped, or that waits for a new sign-in, says why.
		if run.State == store.RunPaused || (run.State == store.RunCancelled && run.CancelledBy.ID == 0) {
			p.PausedReason = run.PausedReason
		}
		if run.State == store.RunPaused && !p.Owner {
			// Only the owner's new sign-in resumes it; another admin's
			// "Log in again" would only end their own session.
			p.PausedReason = fmt.Sprintf("This run waits for %s to log in again: the Zendesk sign-in it runs under expired or was revoked.", run.AdminName)
		}
		p.ScoreMap = scoreMapText(run.ScoreMap)
		if p.Preview && !fragment {
			if err := a.previewPage(ctx, &p, &run, prog.Counts); err != nil {
				return err
			}
		}
		if p.Finished && counts.Failed > 0 && !fragment {
			if err := a.retryChoices(ctx, &p, run.ID); err != nil {
				return err
			}
		}
		p.ToFix = counts.Failed + counts.Invalid + counts.PreflightErrors
		tab := c.QueryParam("rows")
		f, ok := rowFilters[tab]
		if !ok {
			tab, f = "", store.RowFilter{}
		}
		p.RowFilter = tab
		page, _ := strconv.Atoi(c.QueryParam("page"))
		page = max(page, 1)
		f.Limit, f.Offset = rowsPageSize, (page-1)*rowsPageSize
		rows, total, err := a.db.ListRunRows(ctx, id, f)
		if err != nil {
			return err
		}
		for _, r := range rows {
			p.Rows = append(p.Rows, rowView(r, run.Kind, len(run.Header)))
		}
		link := func(n int) string {
			v := url.Values{"page": {strconv.Itoa(n)}}
			if tab != "" {
				v.Set("rows", tab)
			}
			return fmt.Sprintf("/bulk/runs/%d?%s", id, v.Encode())
		}
		if page > 1 {
			p.PrevURL = link(page - 1)
		}
		if page*rowsPageSize < total {
			p.NextURL = link(page + 1)
		}
		p.RowsURL = link(page) + "&fragment=rows"
		if fragment {
			return render(c, http.StatusOK, views.RowsFragment(p))
		}
		return render(c, http.StatusOK, views.Run(p))
	}
}

// rowView is a row as the rows table shows it: exactly one cell per header
// column, whatever the row's shape (the surplus cells of a row with a
// delimiter too many are shown in its details), so the columns stay lined
// up.
func rowView(r store.RunRow, kind string, width int) views.RowView {
	cells := make([]string, width)
	copy(cells, r.Cells)
	v := views.RowView{Number: r.Number, Cells: cells, State: r.State, Errors: r.Errors, Duplicate: r.Duplicate,
		HTTP: r.HTTPStatus, Error: r.Error, ZendeskID: r.ZendeskID}
	if len(r.Cells) > width {
		v.Extra = r.Cells[width:]
	}
	if r.ZendeskID != 0 {
		if actions.Kind(kind) == actions.KindRate {
			v.ZendeskLabel = fmt.Sprintf("Zendesk rating %d", r.ZendeskID)
		} else {
			v.ZendeskLabel = fmt.Sprintf("request #%d", r.ZendeskID)
		}
	}
	// The pre-flight's finding matters only until the row is sent or
	// skipped: then its own outcome says what happened, once.
	if r.PreflightError != "" && (r.State == store.RowPending || r.State == store.RowQueued) {
		v.Errors = append(v.Errors, "Zendesk would refuse it: "+r.PreflightError)
	}
	return v
}

// viewCounts turns the engine's progress into the page's counts.
func viewCounts(run store.Run, p bulk.Progress) views.RunCounts {
	c := p.Counts
	vc := views.RunCounts{Total: c.Total, Invalid: c.Invalid, Duplicates: run.Duplicates, Pending: c.Pending, Queued: c.Queued,
		Done: c.Done, Failed: c.Failed, Skipped: c.Skipped, Waiting: c.Waiting, Remaining: c.Remaining(), WouldFail: c.PreflightErrors}
	if sendable := c.Total - c.Invalid; sendable > 0 {
		vc.Percent = (c.Done + c.Failed + c.Skipped) * 100 / sendable
	}
	switch {
	case vc.Remaining == 0:
		vc.ETA = "—"
	case p.ETA > 0:
		vc.ETA = "about " + roundDuration(p.ETA)
	default:
		vc.ETA = "working it out"
	}
	return vc
}

func roundDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()+0.5))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()+0.5))
	}
	return fmt.Sprintf("%.1f h", d.Hours())
}

// handleMapping re-checks a previewed run's rows under the columns chosen
// in the mapping form.
func (a *app) handleMapping() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		run := runOf(c)
		id := run.ID
		req, opt := bulk.Fields(actions.Kind(run.Kind))
		m := bulk.Mapping{}
		for _, f := range append(req, opt...) {
			col, err := strconv.Atoi(c.FormValue("map_" + string(f)))
			if err == nil && col >= 0 && col < len(run.Header) {
				m[f] = col
			}
		}
		reasons, _ := a.reasonsFor(c)
		if err := bulk.RecheckRun(ctx, a.db, id, bulk.Recheck{Mapping: m, KeepScores: true, Reasons: reasons}); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return &pageError{Status: http.StatusConflict, Heading: "Already started",
					Message:    "This run was confirmed, so its columns can no longer change. Upload the file again for a new run.",
					ActionHref: fmt.Sprintf("/bulk/runs/%d", id), ActionLabel: "Back to the run"}
			}
			return err
		}
		if err := a.setNotice(c, "The rows were checked again with the columns you chose."); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/bulk/runs/%d", id))
	}
}

// maxPreflightRows bounds the pre-flight check a page waits for: at about
// two batched reads per 100 rows it stays within a minute at the lowest plan's
// rate limit. Larger runs are checked row by row as they are sent.
const maxPreflightRows = 5000

// handleRunPreflight checks every row of a previewed run against Zendesk
// without changing anything, and marks the rows that would fail.
func (a *app) handleRunPreflight() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		run := runOf(c)
		id := run.ID
		back := fmt.Sprintf("/bulk/runs/%d", id)
		if run.Valid > maxPreflightRows {
			if err := a.setNotice(c, fmt.Sprintf("This run has %d rows: too many to check before sending (at most %d). Each row is still checked just before it is sent.", run.Valid, maxPreflightRows)); err != nil {
				return err
			}
			return c.Redirect(http.StatusSeeOther, back)
		}
		sum, err := a.bulk.Preflight(ctx, id)
		if err != nil {
			if isLoginExpired(err) {
				return err
			}
			return &pageError{Status: http.StatusBadGateway, Heading: "The check did not finish",
				Message:    "onbehalf could not check the rows with Zendesk (" + actions.Explain(err).Message + ") Nothing was changed; try again.",
				ActionHref: back, ActionLabel: "Back to the preview", Err: err}
		}
		msg := fmt.Sprintf("Checked %d rows with Zendesk: %d would be refused.", sum.Checked, sum.Failing)
		if sum.Failing > 0 {
			msg += " They are listed with the reason. Send the others and the refused rows are skipped; download them to fix them."
		}
		if sum.Unchecked > 0 {
			msg += fmt.Sprintf(" %d could not be checked right now (Zendesk busy or unavailable).", sum.Unchecked)
		}
		if err := a.setNotice(c, msg); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, back)
	}
}

// handleConfirm starts a previewed run for its owner (loadRun let only
// them through). The form carries the number of writes the admin saw; if the
// run changed since, nothing starts. A confirmation is an audit event.
func (a *app) handleConfirm() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		run := runOf(c)
		id := run.ID
		back := fmt.Sprintf("/bulk/runs/%d", id)
		alreadyStarted := &pageError{Status: http.StatusConflict, Heading: "Already started",
			Message:    "This run was already confirmed (perhaps in another tab). Nothing was sent twice.",
			ActionHref: back, ActionLabel: "See its progress"}
		// Checked before the counts: once a run is confirmed its rows leave
		// "pending" as they are queued, and a second confirmation would
		// otherwise be told the run changed.
		if run.State != store.RunPreview {
			return alreadyStarted
		}
		counts, err := a.db.RunCounts(ctx, id)
		if err != nil {
			return err
		}
		// "accepted" sends only the rows the pre-flight found Zendesk
		// would accept: StartRun skips the others with their reason.
		skip := c.FormValue("send") == "accepted" && run.Preflighted
		writes := counts.Pending
		if skip {
			writes -= counts.PreflightErrors
		}
		if seen, _ := strconv.Atoi(c.FormValue("writes")); seen != writes {
			return &pageError{Status: http.StatusConflict, Heading: "The run changed",
				Message:    fmt.Sprintf("You confirmed %d changes, but the run now has %d to send. Nothing was sent; look at the preview again.", seen, writes),
				ActionHref: back, ActionLabel: "Back to the preview"}
		}
		if err := a.db.SetSkipRefused(ctx, id, skip); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return alreadyStarted
			}
			return err
		}
		admin := adminOf(c)
		if err := a.bulk.Confirm(ctx, id, actions.Admin{ID: admin.ID, Name: admin.Name}, int64Value(sessionOf(c), keyGrantID)); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return alreadyStarted
			}
			a.auditRun(c, run, opConfirm, store.OutcomeFailed, fmt.Sprintf("Could not confirm run #%d", id))
			return err
		}
		detail := fmt.Sprintf("Confirmed run #%d (%s to send)", id, countOf(writes, "row", "rows"))
		if skip && counts.PreflightErrors > 0 {
			detail = fmt.Sprintf("Confirmed run #%d (%s to send; %s Zendesk would refuse skipped)", id,
				countOf(writes, "row", "rows"), countOf(counts.PreflightErrors, "row", "rows"))
		}
		a.auditRun(c, run, opConfirm, store.OutcomeOK, detail)
		return c.Redirect(http.StatusSeeOther, back)
	}
}

// handleCancel skips the rows of a run that are not yet sent. Any admin may
// cancel a run under way (loadRun); the audit trail and the run page name
// who did. Rows whose write was already on its way finish, and the notice
// says so rather than promise they were stopped.
func (a *app) handleCancel() echo.HandlerFunc {
	return func(c echo.Context) error {
		run := runOf(c)
		id := run.ID
		back := fmt.Sprintf("/bulk/runs/%d", id)
		admin := adminOf(c)
		res, err := a.bulk.Cancel(c.Request().Context(), id, actions.Admin{ID: admin.ID, Name: admin.Name})
		if errors.Is(err, store.ErrConflict) {
			return &pageError{Status: http.StatusConflict, Heading: "The run had already ended",
				Message:    fmt.Sprintf("Run #%d had already finished or been cancelled, so there was nothing left to cancel. Its page shows how every row ended.", id),
				ActionHref: back, ActionLabel: "Back to the run"}
		}
		if err != nil {
			a.auditRun(c, run, opCancel, store.OutcomeFailed, fmt.Sprintf("Could not cancel run #%d", id))
			return err
		}
		a.auditRun(c, run, opCancel, store.OutcomeOK,
			fmt.Sprintf("Cancelled run #%d: %s skipped, %d being sent", id, countOf(res.Skipped, "row", "rows"), res.InFlight))
		msg := fmt.Sprintf("The run was cancelled: %s skipped.", countOf(res.Skipped, "row not yet sent was", "rows not yet sent were"))
		switch {
		case res.InFlight == 1:
			msg += " 1 row was already on its way to Zendesk and could not be stopped; its result shows here when Zendesk answers."
		case res.InFlight > 1:
			msg += fmt.Sprintf(" %d rows were already on their way to Zendesk and could not be stopped; their results show here when Zendesk answers.", res.InFlight)
		}
		if err := a.setNotice(c, msg); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, back)
	}
}

// handleRetry starts a new run (in preview) from a run's failed rows, under
// the owner's current sign-in; it is an audit event.
func (a *app) handleRetry() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		run := runOf(c)
		id := run.ID
		admin := adminOf(c)
		// By default only the rows whose failure may pass by itself; "all"
		// also takes the rows Zendesk refused for what they are.
		onlyMayPass := c.FormValue("rows") != "all"
		newID, err := bulk.RetryRows(ctx, a.db, id, actions.Admin{ID: admin.ID, Name: admin.Name}, int64Value(sessionOf(c), keyGrantID), onlyMayPass)
		if errors.Is(err, bulk.ErrNoFailedRows) {
			msg := "This run has no failed rows, so no new run was made. Its page shows how every row ended."
			if onlyMayPass {
				msg = "None of this run's failed rows failed for a reason that may pass by itself, so no new run was made. Fix the causes listed on its page (download the rows to fix), then upload them again."
			}
			return &pageError{Status: http.StatusConflict, Heading: "Nothing to retry",
				Message: msg, ActionHref: fmt.Sprintf("/bulk/runs/%d", id), ActionLabel: "Back to the run"}
		}
		if pending := (*store.RetryPendingError)(nil); errors.As(err, &pending) {
			// A second click, or a retry asked for again: the one that
			// exists is the one to confirm.
			if err := a.setNotice(c, fmt.Sprintf("Run #%d already retries the failed rows of run #%d, so no second run was made.", pending.RunID, id)); err != nil {
				return err
			}
			return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/bulk/runs/%d", pending.RunID))
		}
		if err != nil {
			a.auditRun(c, run, opRetry, store.OutcomeFailed, fmt.Sprintf("Could not retry the failed rows of run #%d", id))
			return err
		}
		retry, err := a.db.FindRunByID(ctx, newID)
		if err != nil {
			return err
		}
		a.auditRun(c, run, opRetry, store.OutcomeOK,
			fmt.Sprintf("Retried the %s of run #%d as run #%d (in preview)", countOf(retry.Total, "failed row", "failed rows"), id, newID))
		if err := a.setNotice(c, fmt.Sprintf("A new run was prepared from the failed rows of run #%d. Check it and confirm to send.", id)); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/bulk/runs/%d", newID))
	}
}

// cancellingNote says that a cancelled run still waits for rows whose
// write was on its way when it was cancelled; "" otherwise.
func cancellingNote(run store.Run, c store.RunCounts) string {
	if run.State != store.RunCancelled || c.InFlight == 0 {
		return ""
	}
	if c.InFlight == 1 {
		return "Cancelling… 1 row still being sent. It was already on its way to Zendesk when the run was cancelled; the final counts show when Zendesk answers."
	}
	return fmt.Sprintf("Cancelling… %d rows still being sent. They were already on their way to Zendesk when the run was cancelled; the final counts show when Zendesk answers.", c.InFlight)
}

// queuingNote is the run page's sentence while a confirmed run's rows are
// still being queued in the background, "" once they all are.
func queuingNote(run store.Run) string {
	if !run.Queuing() {
		return ""
	}
	return fmt.Sprintf("Queuing rows… %s of %s. Rows already queued are being sent meanwhile.",
		views.Thousands(run.QueuedRows), views.Thousands(run.Valid))
}

// countOf is "1 row", "2 rows".
func countOf(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// handleResults downloads the run's rows with how each ended.
func (a *app) handleResults() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		run := runOf(c)
		id := run.ID
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="onbehalf-run-%d-results.csv"`, id))
		c.Response().WriteHeader(http.StatusOK)
		if err := bulk.WriteResults(c.Response(), run.Header, cmp.Or(run.Delimiter, ","), bulk.RunResults(ctx, a.db, run)); err != nil {
			// The status line is gone; end the file visibly rather than
			// let a short file pass for the whole run.
			a.log.Error("write results csv", "run", id, "err", err)
			_, _ = io.WriteString(c.Response(), "\r\nERROR: the download stopped early; download the results again\r\n")
		}
		return nil
	}
}

// progressEvent is one Server-Sent Event of a run's progress.
type progressEvent struct {
	State     string `json:"state"`
	Done      int    `json:"done"`
	Failed    int    `json:"failed"`
	Skipped   int    `json:"skipped"`
	Waiting   int    `json:"waiting"`
	Remaining int    `json:"remaining"`
	Percent   int    `json:"percent"`
	ETA       string `json:"eta"`
	// Cancellable is true while the run may be cancelled.
	Cancellable bool `json:"cancellable"`
	// Cancelling is the run page's "Cancelling…" sentence while rows of a
	// cancelled run are still being sent, "" otherwise.
	Cancelling string `json:"cancelling"`
	// Queuing is the "Queuing rows… n of N" sentence while a confirmed
	// run's rows are still being queued, "" otherwise.
	Queuing  string `json:"queuing"`
	Finished bool   `json:"finished"`
}

// startEventStream sends the headers of a Server-Sent Events stream: not
// cached, not buffered by a proxy.
func startEventStream(w *echo.Response) {
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
}

// handleEvents streams a run's progress as Server-Sent Events, about once a
// second, until the run ends or the browser leaves. Every viewer of a run
// shares one reader (progressHub), so an audience costs the database no
// more than one viewer does; a viewer on a slow connection skips to the
// newest event rather than hold up the others.
func (a *app) handleEvents() echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		id := runOf(c).ID
		w := c.Response()
		startEventStream(w)
		v, ok := a.progress.subscribe(id)
		if !ok {
			return nil
		}
		defer v.leave()
		for {
			fr, ok := v.next(ctx)
			if !ok {
				return nil
			}
			if fr.data != nil {
				if _, err := w.Write(fr.data); err != nil {
					return nil
				}
				w.Flush()
			}
			if fr.last {
				return nil
			}
		}
	}
}

// readProgress reads run runID's progress as one encoded progress event,
// and whether it is the run's last: the run is done or cancelled, with no
// row still on its way to Zendesk.
func (a *app) readProgress(ctx context.Context, runID int64) ([]byte, bool, error) {
	prog, err := a.bulk.Progress(ctx, runID)
	if err != nil {
		return nil, false, err
	}
	vc := viewCounts(prog.Run, prog)
	ev := progressEvent{State: prog.Run.State, Done: vc.Done, Failed: vc.Failed, Skipped: vc.Skipped, Waiting: vc.Waiting,
		Remaining: vc.Remaining, Percent: vc.Percent, ETA: vc.ETA,
		Cancellable: underWay(&prog.Run), Cancelling: cancellingNote(prog.Run, prog.Counts), Queuing: queuingNote(prog.Run)}
	ev.Finished = (prog.Run.State == store.RunDone || prog.Run.State == store.RunCancelled) && ev.Cancelling == ""
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, false, fmt.Errorf("encode progress of run %d: %w", runID, err)
	}
	frame := make([]byte, 0, len(data)+len("event: progress\ndata: \n\n"))
	frame = append(frame, "event: progress\ndata: "...)
	frame = append(frame, data...)
	frame = append(frame, "\n\n"...)
	return frame, ev.Finished, nil
}
