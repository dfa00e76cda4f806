package bulk

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
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
	// The claim names this attempt of this job on this engine: a rescue
	// (another attempt) takes the row over, and this one's writes are
	// refused at the send gate from then on.
	claim := w.e.id + "/" + strconv.FormatInt(job.ID, 10) + "/" + strconv.Itoa(job.Attempt)
	return w.e.work(ctx, job.Args.RunID, job.Args.Row, claim)
}

// rowWork is a row this process is working. Cancel stops it through
// cancel unless it has reached its send gate: from then on its write may be
// on its way, and its worker must record what Zendesk answered.
type rowWork struct {
	cancel  context.CancelCauseFunc
	sending atomic.Bool
	// sent is set once the send gate let the write through.
	sent atomic.Bool
	// budget is the longest the row waits for its turn at the rate limit
	// (withWaitBudget), lifted once its write is sent.
	budget atomic.Int64
}

// track registers a row being worked and returns its context, which Cancel
// ends with errRunCancelled; done unregisters it.
func (e *Engine) track(ctx context.Context, runID int64, number int) (context.Context, *rowWork, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	rw := &rowWork{cancel: cancel}
	e.mu.Lock()
	if e.working[runID] == nil {
		e.working[runID] = make(map[int]*rowWork)
	}
	e.working[runID][number] = rw
	e.mu.Unlock()
	return ctx, rw, func() {
		e.mu.Lock()
		delete(e.working[runID], number)
		if len(e.working[runID]) == 0 {
			delete(e.working, runID)
		}
		e.mu.Unlock()
		cancel(nil)
	}
}

// stopRows ends the rows of run runID that this process holds and that
// have not reached their send gate: a row waiting in the throttle or on a
// read gives its place back at once instead of sending nothing later.
func (e *Engine) stopRows(runID int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, rw := range e.working[runID] {
		if !rw.sending.Load() {
			rw.cancel(errRunCancelled)
		}
	}
}

// work runs one row for the worker attempt named claim. It returns nil when
// the row has its terminal state (or had one already), and river.JobSnooze
// when the row must wait: Zendesk asked us to wait, the run is paused, the
// rate limit's queue is long, the attempt was cut short before anything was
// sent (none of these count), or the attempt failed in a way that may pass
// (counted in the row's Failures, with a back-off by their number; on the
// row's last allowed failure the row fails with its reason instead). Only
// errors of onbehalf's own (the database) are returned to River.
//
// The row's Attempts count the writes that may have reached Zendesk
// (counted at the send gate), which is what tells the next attempt to
// re-check first; its Failures count the attempts that failed on its own
// account. Crashes, rescues and deadlines met before a write went out
// count in neither, so they cannot fail a row.
func (e *Engine) work(ctx context.Context, runID int64, number int, claim string) error {
	run, row, err := e.db.ClaimRowFor(ctx, runID, number, claim, e.writeTimeout)
	if errors.Is(err, store.ErrNotFound) {
		return nil // the run was deleted: nothing to do
	}
	if busy := (*store.RowBusyError)(nil); errors.As(err, &busy) {
		// The row's write went out from another attempt (on a replica
		// thought dead, whose job was taken back) and may still be
		// answered, and applied, after a re-check here found nothing.
		// The row is left to it until its write timeout has passed;
		// nothing was done here, and nothing counts.
		return river.JobSnooze(busy.Wait + 50*time.Millisecond)
	}
	if err != nil {
		return err
	}
	switch row.State {
	case store.RowPending, store.RowQueued:
	default:
		// Terminal already: a retry, a rescue or another replica finished
		// it. If ending the run failed after its last row, this is where
		// the retry ends it.
		if run.State == store.RunRunning {
			return e.endRunIfDone(ctx, runID)
		}
		return nil
	}
	switch run.State {
	case store.RunCancelled:
		// A row of a cancelled run left in flight by a worker that died.
		return e.finish(ctx, run.ID, number, store.RowResult{State: store.RowSkipped, Error: cancelledReason(run, row)})
	case store.RunPaused:
		return river.JobSnooze(e.paused)
	case store.RunPreview:
		return fmt.Errorf("bulk: row %d of run %d queued before the run was confirmed", number, runID)
	}

	ctx, rw, done := e.track(ctx, runID, number)
	defer done()
	// The row waits at most a quarter of its job's time for its turn at
	// the rate limit; a longer queue hands the worker back (queueTooLong).
	rw.budget.Store(int64(e.jobTimeout / 4))
	ctx = withWaitBudget(ctx, &rw.budget)
	at := &attempt{e: e, run: run, number: number, rw: rw, failures: row.Failures, attempts: row.Attempts, claim: claim,
		last: row.Failures+1 >= maxAttempts}

	// A long Retry-After: give the worker slot back rather than sit in
	// the throttle until the job times out.
	if d := e.throttle.Delay(); d > maxHold {
		return at.snooze(ctx, d)
	}
	kind := actions.Kind(run.Kind)
	a, err := decodeAction(kind, row.Action)
	if err != nil {
		return e.finish(ctx, runID, number, store.RowResult{State: store.RowFailed,
			Error: "onbehalf could not read this row's stored action; upload the row again."})
	}
	rs, err := e.state(run)
	if err != nil {
		return err
	}
	if err := e.prefetch(ctx, rs, run, number); err != nil {
		if stopped := at.stopped(ctx, err); stopped != nil {
			return *stopped
		}
		if t, d := zendesk.Classify(err); t == zendesk.WaitAndRetry {
			return at.snooze(ctx, d)
		}
		// Otherwise the lookups fall back to one call per value.
		e.log.Warn("bulk: prefetch failed", "run", runID, "row", number, "err", err)
	}

	recheck := row.Attempts > 0 && !e.noRecheck
	if r, ok := a.(actions.Rate); ok && recheck {
		done, err := e.rateAlreadyDone(ctx, rs, run, number, r)
		if err != nil {
			return at.failure(ctx, rs.grantID, actions.Outcome{}, err)
		}
		if done {
			return nil
		}
	}
	// Every write of this row passes the send gate first: the last check,
	// in the database, that the run still runs (security of Cancel, on
	// every replica), after the throttle's wait and the token fetch.
	runner := *rs.runner
	runner.Zendesk = rs.zc.BeforeWrite(func(ctx context.Context) error {
		rw.sending.Store(true)
		if err := e.db.BeginWriteFor(ctx, runID, number, claim); err != nil {
			if errors.Is(err, store.ErrConflict) {
				// The run was cancelled or paused, or the row ended, or
				// another worker took it over.
				return fmt.Errorf("%w: %w", actions.ErrStopped, err)
			}
			return fmt.Errorf("%w: %w", errOwnStore, err)
		}
		// The gate is a database write and may take a moment; a 429 that
		// came back meanwhile, here or on another replica, stops this
		// write too: back to the throttle, the gate undone.
		if e.throttle.PauseLeft(ctx) > 0 {
			rw.sending.Store(false)
			if err := e.db.EndAttempt(ctx, runID, number, store.AttemptEnd{Claim: claim}); err != nil {
				return err
			}
			return zendesk.ErrWaitAgain
		}
		rw.sent.Store(true)
		rw.budget.Store(0)
		return nil
	})
	out, err := runner.Run(ctx, a, rs.batch, actions.RunOptions{RunID: runID, RowID: int64(number), Recheck: recheck,
		Unaudited: func(ref *actions.Refusal) bool { return noOutcome(ctx, rw, ref) }})
	if err == nil {
		return e.finish(ctx, runID, number, store.RowResult{State: store.RowDone, HTTPStatus: out.Status,
			ZendeskID: out.ZendeskID, Error: out.Warning})
	}
	return at.failure(ctx, rs.grantID, out, err)
}

// noOutcome reports whether a refusal of a row's attempt is no outcome of
// the row at all, so that it is not audited: the attempt is handed back
// and the row tried again, as failure and stopped decide for the same
// cases. Before the write went out: the job ran out of time or the engine
// is stopping, the rate limit's queue was too long for the job, the send
// gate could not reach the database or found the row taken over. Whenever:
// Zendesk asked to wait (a 429, a 503 with Retry-After: it did nothing) or
// the sign-in must be renewed (the run pauses).
func noOutcome(ctx context.Context, rw *rowWork, ref *actions.Refusal) bool {
	var long *queueTooLong
	switch {
	case !rw.sent.Load() && (ctx.Err() != nil || errors.As(ref, &long) ||
		errors.Is(ref, errOwnStore) || errors.Is(ref, store.ErrConflict)):
		return true
	case ref.Code == actions.CodeLoginExpired, ref.Code == actions.CodeRateLimited,
		ref.Code == actions.CodeUnavailable && ref.RetryAfter > 0:
		return true
	}
	return false
}

// errOwnStore marks a send gate that could not reach onbehalf's own
// database: an error of ours, not a failure of the row.
var errOwnStore = errors.New("bulk: the send gate could not reach the database")

// cancelledReason is what a skipped row of a cancelled run says.
func cancelledReason(run *store.Run, row store.RunRow) string {
	reason := run.PausedReason
	if reason == "" {
		reason = "The run was cancelled."
	}
	if row.Attempts > 0 {
		reason += store.UnknownOutcomeNote
	}
	return reason
}

// attempt is one attempt at one row.
type attempt struct {
	e      *Engine
	run    *store.Run
	number int
	rw     *rowWork
	// failures is the row's count of failures before this attempt, and
	// attempts its count of writes that may have reached Zendesk; last: a
	// failure that may pass fails the row instead of retrying.
	failures, attempts int
	last               bool
	// claim names this attempt (ClaimRowFor).
	claim string
}

// snooze hands the row back to the queue for d without spending an
// attempt: Zendesk asked us to wait, and did nothing (a 429 or 503).
func (at *attempt) snooze(ctx context.Context, d time.Duration) error {
	d = max(d, time.Second)
	dctx, cancel := detached(ctx)
	defer cancel()
	if err := at.e.db.EndAttempt(dctx, at.run.ID, at.number, store.AttemptEnd{WaitingUntil: at.e.now().Add(d), Claim: at.claim}); err != nil {
		return err
	}
	return river.JobSnooze(d)
}

// stopped reports what to return when err means the row must not go on
// because its run was cancelled (Cancel ended its context, or the send gate
// refused) or paused, or another worker ended the row; nil otherwise.
func (at *attempt) stopped(ctx context.Context, err error) *error {
	e := at.e
	dctx, cancel := detached(ctx)
	defer cancel()
	var ret error
	var long *queueTooLong
	switch {
	case errors.As(err, &long) && !at.rw.sent.Load():
		// The queue for the rate limit is longer than the row may wait
		// in its job: back to River until its turn is near; nothing was
		// sent, and it counts for nothing.
		if err := e.db.EndAttempt(dctx, at.run.ID, at.number, store.AttemptEnd{Claim: at.claim}); err != nil {
			ret = err
		} else {
			ret = river.JobSnooze(jitter(max(long.wait-long.budget/2, 100*time.Millisecond)))
		}
	case errors.Is(context.Cause(ctx), errRunCancelled) && !at.rw.sent.Load(),
		errors.Is(err, store.ErrRunNotRunning):
		run, ferr := e.db.FindRunByID(dctx, at.run.ID)
		switch {
		case ferr != nil:
			ret = ferr
		case run.State == store.RunPaused:
			if err := e.db.EndAttempt(dctx, at.run.ID, at.number, store.AttemptEnd{Claim: at.claim}); err != nil {
				ret = err
			} else {
				ret = river.JobSnooze(e.paused)
			}
		default:
			// Cancelled: Cancel skipped the row already unless it was in
			// flight, and it was not: its write never passed the gate.
			ret = e.finish(ctx, at.run.ID, at.number, store.RowResult{State: store.RowSkipped,
				Error: cancelledReason(run, store.RunRow{Attempts: at.attempts})})
		}
	case errors.Is(err, store.ErrConflict) && !at.rw.sent.Load():
		// The row ended elsewhere, or another attempt of its job took it
		// over (this engine was thought dead), before this write went
		// out. Not nil: River would mark the job completed under the
		// attempt that took over, and a snooze of that one would be lost
		// with its row. A short snooze keeps the job until an attempt
		// finds the row ended.
		ret = river.JobSnooze(time.Second)
	case ctx.Err() != nil && !at.rw.sent.Load():
		// The job ran out of time, or the engine is stopping, before the
		// write went out: not the row's failure. It goes again soon,
		// without a back-off and without using up an attempt.
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			e.log.Warn("bulk: job timeout: the row's job ran out of time before its write was sent",
				"run", at.run.ID, "row", at.number, "timeout", e.jobTimeout)
		}
		if err := e.db.EndAttempt(dctx, at.run.ID, at.number, store.AttemptEnd{Claim: at.claim}); err != nil {
			ret = err
		} else {
			ret = river.JobSnooze(time.Second)
		}
	default:
		return nil
	}
	return &ret
}

// failure decides what a failed attempt means for the row. out and err are
// what Runner.Run returned, or err is a Refusal.
func (at *attempt) failure(ctx context.Context, grantID int64, out actions.Outcome, err error) error {
	if stopped := at.stopped(ctx, err); stopped != nil {
		return *stopped
	}
	e, runID, number := at.e, at.run.ID, at.number
	dctx, cancel := detached(ctx)
	defer cancel()
	if errors.Is(err, errOwnStore) && !at.rw.sent.Load() {
		// The send gate could not reach the database: nothing was sent,
		// and it is not the row's failure. River tries the job again.
		if eerr := e.db.EndAttempt(dctx, runID, number, store.AttemptEnd{Claim: at.claim}); eerr != nil {
			return eerr
		}
		return err
	}
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
		paused, perr := e.db.PauseRun(dctx, runID, grantID, pausedReason)
		if perr != nil {
			return perr
		}
		if paused {
			e.log.Info("bulk: run paused: sign-in expired", "run", runID)
		} else if cur, ferr := e.db.FindRunByID(dctx, runID); ferr != nil {
			return ferr
		} else if cur.GrantID != grantID {
			// The admin logged in again meanwhile: try at once with the new grant.
			if err := e.db.EndAttempt(dctx, runID, number, store.AttemptEnd{Claim: at.claim}); err != nil {
				return err
			}
			return river.JobSnooze(time.Second)
		}
		// Nothing was done; the row waits for a login, not for the rate
		// limit, so it does not count as Waiting.
		if err := e.db.EndAttempt(dctx, runID, number, store.AttemptEnd{Claim: at.claim}); err != nil {
			return err
		}
		return river.JobSnooze(e.paused)
	case ref.Code == actions.CodeRateLimited,
		ref.Code == actions.CodeUnavailable && ref.RetryAfter > 0:
		d := ref.RetryAfter
		if d <= 0 {
			d = zendesk.DefaultRetryAfter
		}
		return at.snooze(ctx, d)
	case ref.Code == actions.CodeImpersonationIgnored:
		// Zendesk made the change, but not as the end user: every further
		// row would do the same. Stop the run and say why.
		ferr := e.finish(ctx, runID, number, store.RowResult{State: store.RowFailed, HTTPStatus: out.Status,
			ZendeskID: out.ZendeskID, Error: ref.Message})
		e.stopRun(ctx, runID, "onbehalf stopped this run: "+ref.Message)
		return ferr
	case ref.Temporary() || auditLost:
		// Network, 5xx, lost audit row: a failure of the row's own, which
		// counts. If the write went out, the outcome is unknown, so the
		// attempt stays counted at the gate too and the next one
		// re-checks first.
		// A write that provably never left (zendesk.Error.NotSent) cannot
		// have acted; any other failure after the gate may have.
		var ze *zendesk.Error
		mayHaveActed := at.rw.sent.Load() && !(errors.As(err, &ze) && ze.NotSent)
		if at.last {
			msg := ref.Message
			if mayHaveActed || at.attempts > 0 {
				msg += store.UnknownOutcomeNote
			}
			return e.finish(ctx, runID, number, store.RowResult{State: store.RowFailed, HTTPStatus: ref.Status,
				Error: msg + " " + gaveUpNote})
		}
		if eerr := e.db.EndAttempt(dctx, runID, number, store.AttemptEnd{MayHaveActed: mayHaveActed, Failed: true, Claim: at.claim}); eerr != nil {
			return eerr
		}
		d := rowRetry(e.retryBase, at.failures+1)
		e.log.Info("bulk: row failed, will try again", "run", runID, "row", number,
			"failures", at.failures+1, "in", d.Round(time.Millisecond), "err", err)
		return river.JobSnooze(d)
	}
	return e.finish(ctx, runID, number, store.RowResult{State: store.RowFailed, HTTPStatus: ref.Status, Error: ref.Message})
}

// stopRun cancels a run on the engine's own account, with reason, when
// going on would do harm; it logs rather than fails.
func (e *Engine) stopRun(ctx context.Context, runID int64, reason string) {
	ctx, cancel := detached(ctx)
	defer cancel()
	_, err := e.db.CancelRun(ctx, runID, store.Actor{Name: "onbehalf"}, reason, func(tx *sql.Tx) error {
		return e.dropJobs(ctx, tx, runID)
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		e.log.Error("bulk: stop run", "run", runID, "err", err)
		return
	}
	e.stopRows(runID)
	e.log.Warn("bulk: run stopped", "run", runID, "reason", reason)
}

// detached is ctx without its cancellation and with a deadline of its own:
// bookkeeping after Zendesk acted must land even when the job's context is
// ending.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// finish records a terminal state (queuing the next row on the same target
// in the same transaction) and, if it was the run's last row, ends the run.
// A failure to record is returned, so River runs the job again; the next
// attempt re-checks with Zendesk before sending anything.
func (e *Engine) finish(ctx context.Context, runID int64, number int, res store.RowResult) error {
	ctx, cancel := detached(ctx)
	defer cancel()
	ok, err := e.db.FinishRow(ctx, runID, number, res, func(tx *sql.Tx, next int) error {
		_, err := e.queue.InsertTx(ctx, tx, rowArgs{RunID: runID, Row: next}, nil)
		return err
	})
	if err != nil {
		e.log.Error("bulk: finish row", "run", runID, "row", number, "err", err)
		return err
	}
	if !ok {
		return nil
	}
	return e.endRunIfDone(ctx, runID)
}

// endRunIfDone ends the run when no row of it is left to run. A failure is
// returned, so River runs the row's job again and the retry ends the run
// (work's terminal-row path): a run is never left running with every row
// ended.
func (e *Engine) endRunIfDone(ctx context.Context, runID int64) error {
	done, err := e.db.FinishRunIfDone(ctx, runID)
	if err != nil {
		e.log.Error("bulk: finish run", "run", runID, "err", err)
		return err
	}
	if done {
		e.forget(runID)
		e.log.Info("bulk: run done", "run", runID)
	}
	return nil
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
	// The rows waiting for the chunk share one fetch, which must not
	// end with the row that started it (its job's deadline, or a queue
	// for the rate limit longer than that row may wait, would fail the
	// others' lookups, one call per value instead): it runs under its own
	// deadline, and each row stops waiting when its own context ends.
	ch := rs.prefetch.DoChan(strconv.Itoa(chunk), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.jobTimeout/2)
		defer cancel()
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
	select {
	case res := <-ch:
		return res.Err
	case <-ctx.Done():
		return ctx.Err()
	}
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
	// The event commits with the row's end: a retry after a failure to
	// record cannot add it twice, nor a row ended elsewhere meanwhile.
	return true, e.finish(ctx, run.ID, number, store.RowResult{State: store.RowDone, ZendeskID: sr.ID, Audit: ev})
}
