package handlers

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/bulk"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/views"
)

// reasonsTTL is how long the account's reasons for a bad rating are kept
// before they are read again.
const reasonsTTL = 5 * time.Minute

// reasonsCache keeps the account's reasons for a bad rating for a few
// minutes: the bulk page, every upload and every re-check need them.
type reasonsCache struct {
	mu sync.Mutex
	m  map[string]cachedReasons
}

func newReasonsCache() *reasonsCache { return &reasonsCache{m: map[string]cachedReasons{}} }

func (rc *reasonsCache) get(account string) (cachedReasons, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	cr, ok := rc.m[account]
	return cr, ok
}

func (rc *reasonsCache) put(account string, cr cachedReasons) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.m[account] = cr
}

type cachedReasons struct {
	reasons bulk.Reasons
	note    string // why the list could not be read, "" when it was
	at      time.Time
}

// reasonsRetry is how soon a list that could not be read is asked for
// again: a Zendesk that does not answer must not slow every bulk page.
const reasonsRetry = 30 * time.Second

// reasonsFor returns the account's reasons for a bad rating, read as the
// signed-in admin (GET /api/v2/satisfaction_reasons). On failure it returns
// nil, which makes uploads take any whole-number code, and a sentence
// saying so.
func (a *app) reasonsFor(c echo.Context) (bulk.Reasons, string) {
	cr, ok := a.reasons.get(a.zendeskURL)
	if ok && (cr.note == "" && a.now().Sub(cr.at) < reasonsTTL || cr.note != "" && a.now().Sub(cr.at) < reasonsRetry) {
		return cr.reasons, cr.note
	}
	failed := func(note string) (bulk.Reasons, string) {
		a.reasons.put(a.zendeskURL, cachedReasons{note: note, at: a.now()})
		return nil, note
	}
	zc, err := a.zendeskFor(c)
	if err != nil {
		return failed("onbehalf could not read this account's reasons for a bad rating, so any whole-number reason code is taken as it is.")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 10*time.Second)
	defer cancel()
	list, err := zc.SatisfactionReasons(ctx)
	if err != nil {
		a.log.Warn("read satisfaction reasons", "err", err)
		return failed("onbehalf could not read this account's reasons for a bad rating (" + actions.Explain(err).Message +
			") Until it can, write reasons as their codes: any whole-number code is taken as it is, and names are refused.")
	}
	rs := make(bulk.Reasons, 0, len(list))
	for _, r := range list {
		rs = append(rs, bulk.Reason{Code: r.ReasonCode, Name: r.Value})
	}
	a.reasons.put(a.zendeskURL, cachedReasons{reasons: rs, at: a.now()})
	return rs, ""
}

// reference describes each action's columns and accepted values, for the
// bulk page.
func reference(reasons bulk.Reasons, reasonsNote string) []views.ActionRef {
	var out []views.ActionRef
	for _, k := range actions.Kinds() {
		ref := views.ActionRef{Kind: string(k), Label: k.Label(), Template: "/bulk/templates/" + string(k) + ".csv"}
		req, opt := bulk.Fields(k)
		for _, f := range req {
			ref.Columns = append(ref.Columns, views.ColumnRef{Name: bulk.ColumnName(k, f), Required: true, Accepts: bulk.Accepts(k, f)})
		}
		for _, f := range opt {
			ref.Columns = append(ref.Columns, views.ColumnRef{Name: bulk.ColumnName(k, f), Accepts: bulk.Accepts(k, f)})
		}
		if k == actions.KindRate {
			for _, r := range reasons {
				ref.Reasons = append(ref.Reasons, views.ReasonRef{Code: r.Code, Name: r.Name})
			}
			ref.ReasonsNote = reasonsNote
			if reasons != nil && len(reasons) == 0 && reasonsNote == "" {
				ref.ReasonsNote = "This account lists no reasons for a bad rating: leave the reason column empty."
			}
		}
		out = append(out, ref)
	}
	return out
}

// handleTemplate downloads a CSV template for one action: its header and
// example rows, ready to fill in.
func (a *app) handleTemplate() echo.HandlerFunc {
	return func(c echo.Context) error {
		name := strings.TrimSuffix(c.Param("kind"), ".csv")
		k, err := actions.ParseKind(name)
		if err != nil {
			return &pageError{Status: http.StatusNotFound, Heading: "No such template",
				Message:    "There is no template for that action. The bulk page links the template of each action.",
				ActionHref: "/bulk", ActionLabel: "Back to bulk runs"}
		}
		reasons, _ := a.reasonsFor(c)
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="onbehalf-%s-template.csv"`, k))
		c.Response().WriteHeader(http.StatusOK)
		return bulk.WriteTemplate(c.Response(), k, reasons)
	}
}

// handleKind re-checks a previewed run's stored cells as another action,
// with the columns guessed again from the header.
func (a *app) handleKind() echo.HandlerFunc {
	return func(c echo.Context) error {
		run := runOf(c)
		k, err := actions.ParseKind(c.FormValue("kind"))
		if err != nil {
			return &pageError{Status: http.StatusUnprocessableEntity, Heading: "Choose an action",
				Message:    "Choose what to do for each row from the list, then check the rows again.",
				ActionHref: fmt.Sprintf("/bulk/runs/%d", run.ID), ActionLabel: "Back to the preview"}
		}
		reasons, _ := a.reasonsFor(c)
		rc := bulk.Recheck{Kind: k, Mapping: bulk.GuessMapping(k, run.Header), Reasons: reasons, KeepScores: true}
		return a.recheck(c, run, rc, fmt.Sprintf("The rows were checked again as “%s”, with the columns guessed from the header.", k.Label()))
	}
}

// handleScores applies the score mapping form: each distinct value of the
// score column becomes good, bad or left out, read again from the stored
// cells.
func (a *app) handleScores() echo.HandlerFunc {
	return func(c echo.Context) error {
		run := runOf(c)
		if err := c.Request().ParseForm(); err != nil {
			return err
		}
		scores := map[string]string{}
		form := c.Request().PostForm
		for i := 0; ; i++ {
			key, ok := form["score_key_"+strconv.Itoa(i)]
			if !ok || len(key) == 0 {
				break
			}
			switch v := form.Get("score_" + strconv.Itoa(i)); v {
			case bulk.ScoreGood, bulk.ScoreBad:
				scores[key[0]] = v
			default:
				scores[key[0]] = bulk.ScoreLeftOut
			}
		}
		reasons, _ := a.reasonsFor(c)
		rc := bulk.Recheck{Mapping: bulk.MappingOf(run), Scores: scores, Reasons: reasons}
		return a.recheck(c, run, rc, "The rows were checked again with the scores you chose.")
	}
}

// recheck runs a re-check of a previewed run and goes back to its page.
func (a *app) recheck(c echo.Context, run *store.Run, rc bulk.Recheck, notice string) error {
	if err := bulk.RecheckRun(c.Request().Context(), a.db, run.ID, rc); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return &pageError{Status: http.StatusConflict, Heading: "Already started",
				Message:    "This run was confirmed, so its rows can no longer change. Upload the file again for a new run.",
				ActionHref: fmt.Sprintf("/bulk/runs/%d", run.ID), ActionLabel: "Back to the run"}
		}
		return err
	}
	if err := a.setNotice(c, notice); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/bulk/runs/%d", run.ID))
}

// handleDiscard deletes a run that was never confirmed.
func (a *app) handleDiscard() echo.HandlerFunc {
	return func(c echo.Context) error {
		run := runOf(c)
		if err := a.db.DiscardPreview(c.Request().Context(), run.ID); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return &pageError{Status: http.StatusConflict, Heading: "Already started",
					Message:    "This run was confirmed, so it stays on record with how every row ended. Cancel it instead to skip the rows not yet sent.",
					ActionHref: fmt.Sprintf("/bulk/runs/%d", run.ID), ActionLabel: "Back to the run"}
			}
			return err
		}
		if err := a.setNotice(c, fmt.Sprintf("The preview of %s (run #%d) was discarded; nothing was sent.", run.FileName, run.ID)); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/bulk")
	}
}

// handleRowsToFix downloads the rows that failed, have errors or would be
// refused, in the uploaded file's own columns plus a "problem" column.
func (a *app) handleRowsToFix() echo.HandlerFunc {
	return func(c echo.Context) error {
		run := runOf(c)
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
		h.Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="onbehalf-run-%d-rows-to-fix.csv"`, run.ID))
		c.Response().WriteHeader(http.StatusOK)
		if _, err := bulk.WriteRowsToFix(c.Request().Context(), c.Response(), a.db, run); err != nil {
			a.log.Error("write rows to fix", "run", run.ID, "err", err)
			w := csv.NewWriter(c.Response())
			_ = w.Write([]string{"ERROR: the download stopped early; download the rows to fix again"})
			w.Flush()
		}
		return nil
	}
}

// estimate says how long sending rows of kind k takes at the throttle's
// rate, "" when it cannot tell.
func (a *app) estimate(k actions.Kind, rows int) string {
	if rows <= 0 || a.bulk == nil {
		return ""
	}
	d := bulk.Estimate(k, rows, a.bulk.Throttle().RatePerMinute())
	if d <= 0 {
		return ""
	}
	if d < 5*time.Second {
		return "a few seconds"
	}
	return "about " + roundDuration(d)
}

// previewPage fills what a preview shows beyond the counts: the action
// and column choices, one instruction when columns are missing, the first
// row errors and refusals, the score mapping, and the time sending takes.
func (a *app) previewPage(ctx context.Context, p *views.RunPage, run *store.Run, counts store.RunCounts) error {
	kind := actions.Kind(run.Kind)
	p.Kinds, _ = kindOptions()
	p.Kind = run.Kind
	m := bulk.MappingOf(run)
	req, opt := bulk.Fields(kind)
	for _, f := range append(req, opt...) {
		col, ok := m[f]
		if !ok {
			col = -1
		}
		p.Mapping = append(p.Mapping, views.MappingField{Field: string(f), Label: fieldLabel(f), Required: slices.Contains(req, f), Column: col})
	}
	if missing := bulk.MissingFields(kind, m); len(missing) > 0 {
		var names []string
		for _, f := range missing {
			names = append(names, fieldLabel(f))
		}
		p.MappingIncomplete = true
		p.Error = fmt.Sprintf("No column of this file is chosen for %s, so the rows cannot be read yet. "+
			"Choose %s under “Action and columns” below (or change the action if this file is meant for another one); "+
			"the rows are then checked again from the file you uploaded, without a new upload.",
			joinAnd(names), map[bool]string{true: "it", false: "them"}[len(names) == 1])
	}
	errs, _, err := a.db.ListRunRows(ctx, run.ID, store.RowFilter{OnlyErrors: true, Limit: 200})
	if err != nil {
		return err
	}
	scoreErrors := false
	for _, r := range errs {
		for _, e := range r.Errors {
			if strings.HasPrefix(e, string(bulk.FieldScore)+": ") {
				scoreErrors = true
			}
		}
	}
	// The first rows the pre-flight expects Zendesk to refuse, read on
	// their own: among the first error rows above they may not be at all
	// (hundreds of invalid rows first).
	if counts.PreflightErrors > 0 {
		refused, _, err := a.db.ListRunRows(ctx, run.ID, store.RowFilter{OnlyPreflightErrors: true, Limit: 10})
		if err != nil {
			return err
		}
		for _, r := range refused {
			if r.Valid {
				p.FirstRefusals = append(p.FirstRefusals, views.RowView{Number: r.Number, Error: r.PreflightError})
			}
		}
	}
	p.LeftOut = counts.Skipped
	p.ScoreErrors = scoreErrors
	// A survey's own scale: no value is good or bad. Its rows' score
	// errors are then one matter for the score mapping, not a list.
	surveyScale := false
	if kind == actions.KindRate && !p.MappingIncomplete && (scoreErrors || len(run.ScoreMap) > 0) {
		vals, more, err := bulk.ScoreValues(ctx, a.db, run)
		if err != nil {
			return err
		}
		p.ScoresTooMany = more
		if bulk.NeedsScoreMap(vals) && !more {
			surveyScale = true
			for _, v := range vals {
				choice, ok := run.ScoreMap[v.Key]
				if !ok {
					choice = v.Guess
				}
				if v.Key == bulk.ScoreGood || v.Key == bulk.ScoreBad {
					choice, surveyScale = v.Key, false
				}
				p.Scores = append(p.Scores, views.ScoreChoice{Value: v.Value, Key: v.Key, Count: v.Count, Choice: choice})
			}
		}
	}
	p.SurveyScale = surveyScale
	for _, r := range errs {
		if !r.Valid && len(p.FirstErrors) < 10 && !p.MappingIncomplete && !(surveyScale && onlyScoreErrors(r.Errors)) {
			p.FirstErrors = append(p.FirstErrors, rowView(r, run.Kind, len(run.Header)))
		}
	}
	if run.Preflighted {
		p.Accepted = counts.Pending - counts.PreflightErrors
		p.EstimateAccepted = a.estimate(kind, p.Accepted)
	}
	p.EstimateAll = a.estimate(kind, counts.Pending)
	repeats, err := a.db.RepeatedRows(ctx, run.ID)
	if err != nil {
		return err
	}
	for _, r := range repeats {
		p.Repeats = append(p.Repeats, views.RepeatView{RunID: r.RunID, At: r.At, File: r.FileName, Rows: r.Rows})
	}
	return nil
}

// joinAnd lists words as "a", "a and b" or "a, b and c".
func joinAnd(words []string) string {
	if len(words) <= 1 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// maxRetryOthers bounds the failed rows a finished run lists as not worth
// retrying as they are.
const maxRetryOthers = 10

// retryChoices splits a finished run's failed rows into those whose failure
// may pass by itself (retried by default) and the others, listed with their
// reasons.
func (a *app) retryChoices(ctx context.Context, p *views.RunPage, runID int64) error {
	// Only the failed rows are read (by state, a page at a time), not the run.
	f := store.RowFilter{States: []string{store.RowFailed}, Limit: store.MaxListLimit}
	for {
		rows, _, err := a.db.ListRunRows(ctx, runID, f)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if bulk.MayPassOnRetry(r) {
				p.RetryMayPass++
				continue
			}
			p.RetryOthersCount++
			if len(p.RetryOthers) < maxRetryOthers {
				p.RetryOthers = append(p.RetryOthers, views.RowView{Number: r.Number, Error: r.Error})
			}
		}
		if len(rows) < f.Limit {
			return nil
		}
		f.FromNumber = rows[len(rows)-1].Number + 1
	}
}

// scoreMapText describes a run's score mapping for its page: `"5" → good,
// "3" → left out`, in the order of the values.
func scoreMapText(m map[string]string) string {
	if len(m) == 0 {
		return ""
	}
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		to := m[k]
		if to == bulk.ScoreLeftOut {
			to = "left out"
		}
		parts[i] = fmt.Sprintf("“%s” → %s", k, to)
	}
	return strings.Join(parts, ", ")
}

// cmpOr is v, or def when v is the zero value.

// onlyScoreErrors reports whether a row's only errors are about its score,
// which the score mapping (not the file) fixes.
func onlyScoreErrors(errs []string) bool {
	for _, e := range errs {
		if !strings.HasPrefix(e, string(bulk.FieldScore)+": ") {
			return false
		}
	}
	return len(errs) > 0
}
