package bulk

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk"
)

// rowWorker works one row's job.
type rowWorker struct {
	river.WorkerDefaults[rowArgs]
	e *Engine
}

// Work implements river.Worker.
func (w *rowWorker) Work(ctx context.Context, job *river.Job[rowArgs]) error {
	return w.e.work(ctx, job.Args.RunID, job.Args.Row)
}

// work runs one row. It returns nil when the row has its terminal state (or
// had one already), river.JobSnooze when Zendesk asked us to wait or the run
// is paused (no attempt spent), and an error when a failure that may pass
// should be retried with back-off. On the row's last attempt such a failure
// fails the row with its reason instead. Attempts are counted on the row,
// not the job, so attempts cut short by a crash count too and the row still
// fails with a reason long before River would give up on the job.
func (e *Engine) work(ctx context.Context, runID int64, number int) error {
	run, err := e.db.FindRunByID(ctx, runID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the run was deleted: nothing to do
	}
	if err != nil {
		return err
	}
	switch run.State {
	case store.RunCancelled:
		e.finish(ctx, runID, number, store.RowResult{State: store.RowSkipped, Error: run.PausedReason})
		return nil
	case store.RunPaused:
		return river.JobSnooze(e.paused)
	case store.RunPreview:
		return fmt.Errorf("bulk: row %d of run %d queued before the run was confirmed", number, runID)
	case store.RunQueued:
		if _, err := e.db.SetRunState(ctx, runID, []string{store.RunQueued}, store.RunRunning, ""); err != nil {
			return err
		}
	}

	row, err := e.db.BeginRowAttempt(ctx, runID, number)
	if err != nil {
		return err
	}
	switch row.State {
	case store.RowPending, store.RowQueued:
	default:
		return nil // terminal already: a retry, a rescue or another replica finished it
	}
	last := row.Attempts+1 >= maxAttempts
	snooze := func(d time.Duration) error {
		d = max(d, time.Second)
		if err := e.db.SnoozeRow(ctx, runID, number, e.now().Add(d)); err != nil {
			return err
		}
		return river.JobSnooze(d)
	}
	// A long Retry-After: give the worker slot back rather than sit in
	// the throttle until the job times out.
	if d := e.throttle.Delay(); d > maxHold {
		return snooze(d)
	}

	kind := actions.Kind(run.Kind)
	a, err := decodeAction(kind, row.Action)
	if err != nil {
		e.finish(ctx, runID, number, store.RowResult{State: store.RowFailed,
			Error: "onbehalf could not read this row's stored action; upload the row again."})
		return nil
	}
	rs, err := e.state(run)
	if err != nil {
		return err
	}
	if err := e.prefetch(ctx, rs, run, number); err != nil {
		if t, d := zendesk.Classify(err); t == zendesk.WaitAndRetry {
			return snooze(d)
		}
		// Otherwise the lookups fall back to one call per value.
		e.log.Warn("bulk: prefetch failed", "run", runID, "row", number, "err", err)
	}

	recheck := row.Attempts > 0
	if r, ok := a.(actions.Rate); ok && recheck {
		done, err := e.rateAlreadyDone(ctx, rs, run, number, r)
		if err != nil {
			return e.failure(ctx, runID, number, rs.grantID, last, snooze, actions.Explain(err))
		}
		if done {
			return nil
		}
	}
	out, err := rs.runner.Run(ctx, a, rs.batch, actions.RunOptions{RunID: runID, RowID: int64(number), Recheck: recheck})
	if err == nil {
		e.finish(ctx, runID, number, store.RowResult{State: store.RowDone, HTTPStatus: out.Status,
			ZendeskID: out.ZendeskID, Error: out.Warning})
		return nil
	}
	return e.failure(ctx, runID, number, rs.grantID, last, snooze, err)
}

// failure decides what a failed attempt means for the row. err is what
// Runner.Run returned, or a Refusal.
func (e *Engine) failure(ctx context.Context, runID int64, number int, grantID int64, last bool, snooze func(time.Duration) error, err error) error {
	var ref *actions.Refusal
	// Run returns a bare Refusal when the attempt's outcome is known; a
	// wrapped one (or a plain error) means the audit row could not be
	// written, and the row must be tried (and re-checked) again.
	auditLost := !errors.As(err, &ref) || err != error(ref)
	if ref == nil {
		ref = actions.Explain(err)
	}
	switch {
	case ref.Code == actions.CodeLoginExpired:
		paused, perr := e.db.PauseRun(ctx, runID, grantID, pausedReason)
		if perr != nil {
			return perr
		}
		if paused {
			e.log.Info("bulk: run paused: sign-in expired", "run", runID)
		} else if cur, ferr := e.db.FindRunByID(ctx, runID); ferr == nil && cur.GrantID != grantID {
			// The admin logged in again meanwhile: try at once with the new grant.
			if err := e.db.SnoozeRow(ctx, runID, number, time.Time{}); err != nil {
				return err
			}
			return river.JobSnooze(time.Second)
		}
		// Nothing was sent; the row waits for a login, not for the rate
		// limit, so it does not count as Waiting.
		if err := e.db.SnoozeRow(ctx, runID, number, time.Time{}); err != nil {
			return err
		}
		return river.JobSnooze(e.paused)
	case ref.Code == actions.CodeRateLimited,
		ref.Code == actions.CodeUnavailable && ref.RetryAfter > 0:
		d := ref.RetryAfter
		if d <= 0 {
			d = zendesk.DefaultRetryAfter
		}
		return snooze(d)
	case ref.Temporary() || auditLost:
		// Network, 5xx, lost audit row: the outcome is unknown, so the
		// attempt stays counted and the next one re-checks first.
		if last {
			e.finish(ctx, runID, number, store.RowResult{State: store.RowFailed, HTTPStatus: ref.Status,
				Error: ref.Message + " (gave up after several attempts)"})
			return nil
		}
		return err
	}
	e.finish(ctx, runID, number, store.RowResult{State: store.RowFailed, HTTPStatus: ref.Status, Error: ref.Message})
	return nil
}

// finish records a terminal state and, if it was the run's last row, ends
// the run. It logs instead of failing: the row's job must not run again
// because of a bookkeeping error after Zendesk acted.
func (e *Engine) finish(ctx context.Context, runID int64, number int, res store.RowResult) {
	// Detached: the job's context may be ending, the record must land.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	ok, err := e.db.FinishRow(ctx, runID, number, res)
	if err != nil {
		e.log.Error("bulk: finish row", "run", runID, "row", number, "err", err)
		return
	}
	if !ok {
		return
	}
	done, err := e.db.FinishRunIfDone(ctx, runID)
	if err != nil {
		e.log.Error("bulk: finish run", "run", runID, "err", err)
		return
	}
	if done {
		e.forget(runID)
		e.log.Info("bulk: run done", "run", runID)
	}
}

// prefetch fills the run's Batch with the users and tickets of the 100 rows
// around number, once per chunk however many workers ask at once.
func (e *Engine) prefetch(ctx context.Context, rs *runState, run *store.Run, number int) error {
	chunk := (number - 2) / prefetchChunk
	rs.mu.Lock()
	done := rs.fetched[chunk]
	rs.mu.Unlock()
	if done {
		return nil
	}
	_, err, _ := rs.prefetch.Do(strconv.Itoa(chunk), func() (any, error) {
		rs.mu.Lock()
		done := rs.fetched[chunk]
		rs.mu.Unlock()
		if done {
			return nil, nil
		}
		from := chunk*prefetchChunk + 2
		rows, _, err := e.db.ListRunRows(ctx, run.ID, store.RowFilter{FromNumber: from,
			ToNumber: from + prefetchChunk - 1, States: []string{store.RowPending, store.RowQueued}, Limit: prefetchChunk})
		if err != nil {
			return nil, err
		}
		var users []string
		var tickets []int64
		for _, r := range rows {
			a, err := decodeAction(actions.Kind(run.Kind), r.Action)
			if err != nil {
				continue
			}
			users = append(users, a.EndUser())
			if id := a.TicketID(); id > 0 {
				tickets = append(tickets, id)
			}
		}
		if err := rs.batch.Prefetch(ctx, users, tickets); err != nil {
			return nil, err
		}
		rs.mu.Lock()
		rs.fetched[chunk] = true
		rs.mu.Unlock()
		return nil, nil
	})
	return err
}

// rateAlreadyDone handles a rating row whose earlier attempt has an unknown
// outcome: if the ticket, read fresh, already carries this very rating, the
// earlier attempt got through; the row is done and nothing is sent again
// (one extra read, only for such rows). Sending again would be harmless to
// Zendesk (a new rating replaces the old, §3.2) but would show as a second
// write. It reports whether it finished the row.
func (e *Engine) rateAlreadyDone(ctx context.Context, rs *runState, run *store.Run, number int, a actions.Rate) (bool, error) {
	t, err := rs.zc.ShowTicket(ctx, a.Ticket)
	if err != nil {
		if errors.Is(err, zendesk.ErrNotFound) {
			return false, nil // Run explains it
		}
		return false, err
	}
	sr := t.SatisfactionRating
	if sr == nil || sr.Score != a.Score || strings.TrimSpace(sr.Comment) != strings.TrimSpace(a.Comment) {
		return false, nil
	}
	msg := fmt.Sprintf("Ticket #%d was already rated %s by an earlier attempt; nothing was sent again.", a.Ticket, a.Score)
	ev := &store.AuditEvent{Time: e.now(), AdminID: run.AdminID, AdminName: run.AdminName,
		Action: string(actions.KindRate), EndUserID: t.RequesterID, EndUser: a.User, TicketID: a.Ticket,
		Outcome: store.OutcomeOK, Detail: msg, ZendeskID: sr.ID, RunID: run.ID}
	if err := e.db.CreateAuditEvent(ctx, ev); err != nil {
		return false, err
	}
	e.finish(ctx, run.ID, number, store.RowResult{State: store.RowDone, ZendeskID: sr.ID})
	return true, nil
}
