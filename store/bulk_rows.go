package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// rowInsertChunk is how many rows one INSERT statement carries: multi-row
// VALUES cut the per-statement cost that dominates 100,000-row uploads,
// and 100 × 17 parameters stays far below both dialects' limits.
const rowInsertChunk = 100

// RunRow is one data row of a run and how it ended.
type RunRow struct {
	RunID  int64
	Number int // the spreadsheet row number: the header is row 1
	Cells  []string
	// Action is the JSON of the row's action value (the run's Kind says
	// which type); nil for an invalid row.
	Action    []byte
	Valid     bool
	Errors    []string
	Key       string
	Duplicate bool
	// State is one of the Row* constants; "" in InsertRunRows means
	// RowPending for valid rows and RowInvalid for the others.
	State      string
	HTTPStatus int
	Error      string
	ZendeskID  int64
	// Attempts counts attempts that may have reached Zendesk; a row with
	// Attempts > 0 that is not terminal has an unknown earlier outcome.
	Attempts int
	// Failures counts the attempts that failed on the row's own account
	// (EndAttempt with Failed): what bounds its retries. Attempts cut
	// short by a crash, a shutdown or a deadline before anything was sent
	// are not among them.
	Failures  int
	AttemptAt time.Time
	// WaitingUntil is when a row snoozed on Zendesk's rate limit may go
	// again; zero when it is not waiting.
	WaitingUntil   time.Time
	PreflightError string
	UpdatedAt      time.Time
	// InFlight reports that a write of this row passed the send gate
	// (BeginWrite) and its answer is not recorded yet: a worker is sending
	// it, or died while it did.
	InFlight bool
	// After is the row of the same run that acts on the same target and
	// must end before this one starts (0 for none); Next is the row that
	// waits for this one. StartRun links them, so rows on one ticket (or,
	// for new requests, one end user) run one after another in file order.
	After, Next int
}

// RowResult is how a row ended, for FinishRow.
type RowResult struct {
	State      string // RowDone, RowFailed or RowSkipped
	HTTPStatus int
	Error      string
	ZendeskID  int64
	// Audit, if set, is added to the audit trail in the same transaction,
	// and only if this call is the one that ends the row: a retry after
	// a failure to record cannot add it twice.
	Audit *AuditEvent
}

// RowFilter selects rows of a run for ListRunRows.
type RowFilter struct {
	// States keeps rows in one of these states; empty keeps all.
	States []string
	// OnlyErrors keeps invalid and failed rows and rows with a pre-flight
	// error.
	OnlyErrors bool
	// OnlyPreflightErrors keeps the rows the pre-flight expects Zendesk to
	// refuse (a non-empty PreflightError), whatever their state: the rows
	// RunCounts.PreflightErrors counts.
	OnlyPreflightErrors bool
	// FromNumber and ToNumber bound the row numbers, inclusive; 0 leaves
	// that side open.
	FromNumber, ToNumber int
	// Limit defaults to DefaultListLimit and is capped at MaxListLimit.
	Limit, Offset int
}

// RunCounts counts a run's rows per state.
type RunCounts struct {
	Total, Invalid, Pending, Queued, Done, Failed, Skipped int
	// Waiting counts queued rows snoozed on Zendesk's rate limit (EndAttempt
	// with a WaitingUntil) that no worker has taken again yet.
	Waiting int
	// PreflightErrors counts rows the pre-flight expects to fail.
	PreflightErrors int
	// InFlight counts rows not yet ended whose write went out to Zendesk
	// and whose answer is not recorded yet.
	InFlight int
}

// Remaining is the number of rows that still have to run.
func (c RunCounts) Remaining() int { return c.Pending + c.Queued }

const rowInsertColumns = `run_id, number, cells, action, valid, errors, row_key, duplicate, state,
	http_status, error, zendesk_id, attempts, attempt_at, waiting_until, preflight_error, updated_at`

const rowColumns = `run_id, number, cells, action, valid, errors, row_key, duplicate, state,
	http_status, error, zendesk_id, attempts, attempt_at, waiting_until, preflight_error, updated_at,
	in_flight, after_number, next_number, failures`

// InsertRunRows stores one batch of rows of run runID. CreateRunWithRows
// calls it inside its transaction; on its own it runs in a transaction of
// its own.
func (db *DB) InsertRunRows(ctx context.Context, runID int64, rows []RunRow) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: insert run rows: %w", err)
	}
	defer tx.Rollback()
	ins := db.newRowInserter(tx)
	defer ins.close()
	if err := ins.insert(ctx, runID, rows); err != nil {
		return fmt.Errorf("store: insert run rows of run %d: %w", runID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: insert run rows of run %d: commit: %w", runID, err)
	}
	return nil
}

// rowInserter writes rows with a prepared multi-row INSERT, reused across
// batches of one transaction.
type rowInserter struct {
	db    *DB
	tx    *sql.Tx
	now   int64
	args  []any
	stmts map[int]*sql.Stmt
}

func (db *DB) newRowInserter(tx *sql.Tx) *rowInserter {
	return &rowInserter{db: db, tx: tx, now: toDBTime(db.now()), stmts: map[int]*sql.Stmt{}}
}

func (ins *rowInserter) close() {
	for _, s := range ins.stmts {
		s.Close()
	}
}

func (ins *rowInserter) stmt(ctx context.Context, n int) (*sql.Stmt, error) {
	if s, ok := ins.stmts[n]; ok {
		return s, nil
	}
	var b strings.Builder
	// in_flight, after_number and next_number start at their defaults.
	b.WriteString("INSERT INTO bulk_rows (" + rowInsertColumns + ") VALUES ")
	one := "(?" + strings.Repeat(", ?", 16) + ")"
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	s, err := ins.tx.PrepareContext(ctx, ins.db.dialect.rebind(b.String()))
	if err != nil {
		return nil, err
	}
	ins.stmts[n] = s
	return s, nil
}

func (ins *rowInserter) insert(ctx context.Context, runID int64, rows []RunRow) error {
	for len(rows) > 0 {
		n := min(len(rows), rowInsertChunk)
		chunk := rows[:n]
		rows = rows[n:]
		ins.args = ins.args[:0]
		for i := range chunk {
			r := &chunk[i]
			if r.Number <= 0 {
				return fmt.Errorf("row number %d: %w", r.Number, ErrInvalid)
			}
			state := r.State
			switch {
			case state != "":
			case r.Valid:
				state = RowPending
			default:
				state = RowInvalid
			}
			cells, err := jsonStrings(r.Cells)
			if err != nil {
				return fmt.Errorf("row %d: %w", r.Number, err)
			}
			errs, err := jsonStrings(r.Errors)
			if err != nil {
				return fmt.Errorf("row %d: %w", r.Number, err)
			}
			ins.args = append(ins.args, runID, r.Number, cells, string(r.Action), boolInt(r.Valid), errs, r.Key,
				boolInt(r.Duplicate), state, r.HTTPStatus, r.Error, r.ZendeskID, r.Attempts,
				dbTimeOrZero(r.AttemptAt), dbTimeOrZero(r.WaitingUntil), r.PreflightError, ins.now)
		}
		s, err := ins.stmt(ctx, n)
		if err != nil {
			return err
		}
		if _, err := s.ExecContext(ctx, ins.args...); err != nil {
			return err
		}
	}
	return nil
}

// errorRowsPredicate selects the rows RowFilter.OnlyErrors keeps: the
// predicate of the partial index bulk_rows_errors, word for word, with
// literals rather than parameters (SQLite uses a partial index only for a
// query that repeats its WHERE terms).
const errorRowsPredicate = "(state IN ('" + RowInvalid + "', '" + RowFailed + "') OR preflight_error <> '')"

// rowUpdateChunk is how many rows one rowUpdater statement changes. A
// statement, not a row, is what moves a run's counter row on PostgreSQL
// (migration 0004): updating one row many times in one transaction costs
// time that grows with the number of updates so far, so a transaction
// that changes rows one statement each (a remap, a pre-flight) would take
// quadratic time on a big run.
const rowUpdateChunk = 500

// rowUpdater gives rows of one run new values, in UPDATE … FROM (VALUES …)
// statements of up to rowUpdateChunk rows: set names the columns, and
// types their SQL types (the VALUES need them on PostgreSQL), in the order
// of the values given to add after the row number. updated_at is set too.
type rowUpdater struct {
	db    *DB
	tx    *sql.Tx
	runID int64
	set   []string
	types []string
	now   int64
	args  []any
	n     int
}

func (db *DB) newRowUpdater(tx *sql.Tx, runID int64, set, types []string) *rowUpdater {
	return &rowUpdater{db: db, tx: tx, runID: runID, set: set, types: types, now: toDBTime(db.now())}
}

// add queues new values for row number, and writes the queued rows once
// there are rowUpdateChunk of them.
func (u *rowUpdater) add(ctx context.Context, number int, values ...any) error {
	u.args = append(append(u.args, number), values...)
	u.n++
	if u.n == rowUpdateChunk {
		return u.flush(ctx)
	}
	return nil
}

// flush writes the queued rows.
func (u *rowUpdater) flush(ctx context.Context) error {
	if u.n == 0 {
		return nil
	}
	// VALUES columns are column1, column2, … in both dialects.
	var b strings.Builder
	b.WriteString("UPDATE bulk_rows SET ")
	for i, col := range u.set {
		fmt.Fprintf(&b, "%s = v.column%d, ", col, i+2)
	}
	b.WriteString("updated_at = ? FROM (VALUES ")
	one := "(CAST(? AS BIGINT)"
	for _, typ := range u.types {
		one += ", CAST(? AS " + typ + ")"
	}
	one += ")"
	for i := range u.n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	b.WriteString(") AS v WHERE bulk_rows.run_id = ? AND bulk_rows.number = v.column1")
	args := append(append([]any{u.now}, u.args...), u.runID)
	if _, err := u.tx.ExecContext(ctx, u.db.dialect.rebind(b.String()), args...); err != nil {
		return err
	}
	u.args, u.n = u.args[:0], 0
	return nil
}

// rowWhere builds the WHERE clause of f for run runID.
func rowWhere(runID int64, f RowFilter) (string, []any) {
	where := []string{"run_id = ?"}
	args := []any{runID}
	if len(f.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, s := range f.States {
			args = append(args, s)
		}
	}
	if f.OnlyErrors || f.OnlyPreflightErrors {
		// Written out as bulk_rows_errors' predicate (migration 0004), so
		// both planners see that the partial index holds every such row
		// (rows with a pre-flight error are among them).
		where = append(where, errorRowsPredicate)
	}
	if f.OnlyPreflightErrors {
		where = append(where, "preflight_error <> ''")
	}
	if f.FromNumber > 0 {
		where = append(where, "number >= ?")
		args = append(args, f.FromNumber)
	}
	if f.ToNumber > 0 {
		where = append(where, "number <= ?")
		args = append(args, f.ToNumber)
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// ListRunRows returns one page of the run's rows matching f, in row order,
// and the number of matching rows.
func (db *DB) ListRunRows(ctx context.Context, runID int64, f RowFilter) ([]RunRow, int, error) {
	cond, args := rowWhere(runID, f)
	var total int
	if col, ok := countedBy(f); ok {
		// One row of counters instead of counting a big run's rows.
		err := db.queryRow(ctx, `SELECT `+col+` FROM bulk_run_counts WHERE run_id = ?`, runID).Scan(&total)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, 0, fmt.Errorf("store: list rows of run %d: count: %w", runID, err)
		}
	} else if err := db.queryRow(ctx, `SELECT COUNT(*) FROM bulk_rows`+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("store: list rows of run %d: count: %w", runID, err)
	}
	limit, offset := pageBounds(f.Limit, f.Offset)
	rows, err := db.queryRows(ctx, db.db, `SELECT `+rowColumns+` FROM bulk_rows`+cond+
		` ORDER BY number LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list rows of run %d: %w", runID, err)
	}
	return rows, total, nil
}

// stateCounters names the bulk_run_counts column of each row state.
var stateCounters = map[string]string{RowInvalid: "invalid", RowPending: "pending", RowQueued: "queued",
	RowDone: "done", RowFailed: "failed", RowSkipped: "skipped"}

// countedBy returns the expression over bulk_run_counts' columns that
// counts the rows f selects, if the counters can (f selects by states only,
// only errors, or only pre-flight errors): false for row ranges and for
// states and errors at once.
func countedBy(f RowFilter) (string, bool) {
	switch {
	case f.FromNumber > 0 || f.ToNumber > 0:
		return "", false
	case (f.OnlyErrors || f.OnlyPreflightErrors) && len(f.States) > 0:
		return "", false
	case f.OnlyPreflightErrors:
		return "preflight_errors", true
	case f.OnlyErrors:
		return "with_errors", true
	case len(f.States) == 0:
		return "total", true
	}
	var cols []string
	for _, st := range f.States {
		col, ok := stateCounters[st]
		if !ok {
			return "", false
		}
		if !slices.Contains(cols, col) {
			cols = append(cols, col)
		}
	}
	return strings.Join(cols, " + "), true
}

// queryRows runs a SELECT of rowColumns and scans every row.
func (db *DB) queryRows(ctx context.Context, q queryer, query string, args ...any) ([]RunRow, error) {
	rows, err := q.QueryContext(ctx, db.dialect.rebind(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []RunRow{}
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func scanRow(s scanner) (RunRow, error) {
	var r RunRow
	var cells, errs, action string
	var valid, dup, inFlight int
	var attemptAt, waiting, updated int64
	if err := s.Scan(&r.RunID, &r.Number, &cells, &action, &valid, &errs, &r.Key, &dup, &r.State,
		&r.HTTPStatus, &r.Error, &r.ZendeskID, &r.Attempts, &attemptAt, &waiting, &r.PreflightError,
		&updated, &inFlight, &r.After, &r.Next, &r.Failures); err != nil {
		return RunRow{}, err
	}
	if err := json.Unmarshal([]byte(cells), &r.Cells); err != nil {
		return RunRow{}, fmt.Errorf("decode cells of row %d: %w", r.Number, err)
	}
	if err := json.Unmarshal([]byte(errs), &r.Errors); err != nil {
		return RunRow{}, fmt.Errorf("decode errors of row %d: %w", r.Number, err)
	}
	if action != "" {
		r.Action = []byte(action)
	}
	r.Valid, r.Duplicate, r.InFlight = valid != 0, dup != 0, inFlight != 0
	r.AttemptAt, r.WaitingUntil, r.UpdatedAt = timeOrZero(attemptAt), timeOrZero(waiting), timeOrZero(updated)
	return r, nil
}

// FindRunRow returns row number of run runID, or ErrNotFound.
func (db *DB) FindRunRow(ctx context.Context, runID int64, number int) (RunRow, error) {
	r, err := scanRow(db.queryRow(ctx, `SELECT `+rowColumns+` FROM bulk_rows WHERE run_id = ? AND number = ?`,
		runID, number))
	if errors.Is(err, sql.ErrNoRows) {
		return RunRow{}, fmt.Errorf("store: find row %d of run %d: %w", number, runID, ErrNotFound)
	}
	if err != nil {
		return RunRow{}, fmt.Errorf("store: find row %d of run %d: %w", number, runID, err)
	}
	return r, nil
}

// eachRowPage is how many rows EachRunRow reads per query.
const eachRowPage = 500

// EachRunRow calls fn for every row of the run in row order, reading a page
// at a time by row number, so no connection is held while fn runs (fn may
// write to the database, and a 100,000-row run is never all in memory). An
// error from fn stops the walk and is returned as is.
func (db *DB) EachRunRow(ctx context.Context, runID int64, fn func(RunRow) error) error {
	last := 0
	for {
		rows, err := db.queryRows(ctx, db.db, `SELECT `+rowColumns+` FROM bulk_rows
			WHERE run_id = ? AND number > ? ORDER BY number LIMIT ?`, runID, last, eachRowPage)
		if err != nil {
			return fmt.Errorf("store: each row of run %d: %w", runID, err)
		}
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
			last = r.Number
		}
		if len(rows) < eachRowPage {
			return nil
		}
	}
}

// RunCounts returns the run's counts of rows per state, or ErrNotFound. It
// reads one row, whatever the size of the run: triggers on bulk_rows keep
// bulk_run_counts up to date in the statement that changes a row (migration
// 0004). Waiting counts the queued rows snoozed on the rate limit since
// then, until a worker takes them again, even if their WaitingUntil has
// passed meanwhile (a time-dependent count could not be kept by triggers).
func (db *DB) RunCounts(ctx context.Context, runID int64) (RunCounts, error) {
	var c RunCounts
	err := db.queryRow(ctx, `SELECT total, invalid, pending, queued, done, failed, skipped, waiting,
		preflight_errors, in_flight FROM bulk_run_counts WHERE run_id = ?`, runID).Scan(&c.Total, &c.Invalid,
		&c.Pending, &c.Queued, &c.Done, &c.Failed, &c.Skipped, &c.Waiting, &c.PreflightErrors, &c.InFlight)
	if errors.Is(err, sql.ErrNoRows) {
		return RunCounts{}, fmt.Errorf("store: count rows of run %d: %w", runID, ErrNotFound)
	}
	if err != nil {
		return RunCounts{}, fmt.Errorf("store: count rows of run %d: %w", runID, err)
	}
	return c, nil
}

// ErrRunNotRunning is what BeginWrite returns when the row's run is not
// queued or running any more (cancelled, paused, done): nothing of it may be
// sent. It wraps ErrConflict.
var ErrRunNotRunning = fmt.Errorf("the run is not running: %w", ErrConflict)

// ClaimRow loads row number of run runID and its run for a worker about to
// work it, with no claim name and no wait for a write in flight; see
// ClaimRowFor.
func (db *DB) ClaimRow(ctx context.Context, runID int64, number int) (*Run, RunRow, error) {
	return db.ClaimRowFor(ctx, runID, number, "", 0)
}

// RowBusyError is what ClaimRowFor returns for a row whose write went out
// (it passed the send gate) less than the write timeout ago and has not
// been answered yet: the worker that sent it may still be waiting for
// Zendesk's answer (its replica only looked dead), and Zendesk may still
// apply it, so the re-check of another worker could not see it yet. The
// row is not taken; Wait is how long until its write timeout has passed.
type RowBusyError struct {
	RunID  int64
	Number int
	Wait   time.Duration
}

func (e *RowBusyError) Error() string {
	return fmt.Sprintf("store: claim row %d of run %d: its write is still in flight, for up to %v more",
		e.Number, e.RunID, e.Wait.Round(time.Millisecond))
}

// ClaimRowFor loads row number of run runID and its run for the worker
// attempt named claim, and makes the row that attempt's: from now on the
// send gate (BeginWriteFor) lets only claim's write through, so a worker
// whose row was taken back from it (its replica stopped answering and
// another took the job) cannot send it any more. A queued run becomes
// running. A row that has ended is returned as it is.
//
// A row found in flight whose write began writeTimeout ago or more was
// left so by a worker that died or was taken over while its write was
// out: the flag is cleared, and the row's Attempts still tell that an
// earlier write may have reached Zendesk. A row in flight whose write
// began less than writeTimeout ago is not taken: its write may still be
// answered, and applied, after the re-check of a new attempt found
// nothing. ClaimRowFor then returns the row and its run with a
// *RowBusyError saying how long to wait. writeTimeout 0 takes any row.
func (db *DB) ClaimRowFor(ctx context.Context, runID int64, number int, claim string, writeTimeout time.Duration) (*Run, RunRow, error) {
	run, err := db.FindRunByID(ctx, runID)
	if err != nil {
		return nil, RunRow{}, fmt.Errorf("store: claim row %d: %w", number, err)
	}
	if run.State == RunQueued {
		if _, err := db.exec(ctx, `UPDATE bulk_runs SET state = ? WHERE id = ? AND state = ?`,
			RunRunning, runID, RunQueued); err != nil {
			return nil, RunRow{}, fmt.Errorf("store: claim row %d of run %d: %w", number, runID, err)
		}
		run.State = RunRunning
	}
	now := db.now()
	// attempt_at is when the row's last write passed the send gate, on
	// this same clock (BeginWriteFor).
	r, err := scanRow(db.queryRow(ctx, `UPDATE bulk_rows SET in_flight = 0, waiting_until = 0, claim = ?, updated_at = ?
		WHERE run_id = ? AND number = ? AND state IN (?, ?) AND (in_flight = 0 OR attempt_at <= ?) RETURNING `+rowColumns,
		claim, toDBTime(now), runID, number, RowPending, RowQueued, toDBTime(now.Add(-writeTimeout))))
	if errors.Is(err, sql.ErrNoRows) {
		r, err = db.FindRunRow(ctx, runID, number)
		if err == nil && (r.State == RowPending || r.State == RowQueued) {
			// Still in flight; or its write was answered since the
			// update looked, and the row can be taken at once.
			wait := 10 * time.Millisecond
			if r.InFlight {
				wait = max(r.AttemptAt.Add(writeTimeout).Sub(now), wait)
			}
			return run, r, &RowBusyError{RunID: runID, Number: number, Wait: wait}
		}
	}
	if err != nil {
		return nil, RunRow{}, fmt.Errorf("store: claim row %d of run %d: %w", number, runID, err)
	}
	return run, r, nil
}

// BeginWrite is the send gate: the last thing a worker does before a row's
// write goes on the wire. In one statement it checks that the run is still
// queued or running and the row has not ended, marks the row in flight and
// counts the attempt. Because CancelRun skips only rows that are not in
// flight, in the same database, a write either passed this gate before the
// cancel (and the cancel reports it in flight) or is refused here: once a
// cancel has answered, no write of its run starts, on any replica. It
// returns ErrRunNotRunning when the run is not running, and ErrConflict when
// the row has ended. It is BeginWriteFor with no claim name.
func (db *DB) BeginWrite(ctx context.Context, runID int64, number int) error {
	return db.BeginWriteFor(ctx, runID, number, "")
}

// BeginWriteFor is BeginWrite for the worker attempt named claim: the row
// must still be claim's (ClaimRowFor), or the write is refused with
// ErrConflict, as when the row has ended.
func (db *DB) BeginWriteFor(ctx context.Context, runID int64, number int, claim string) error {
	now := toDBTime(db.now())
	res, err := db.exec(ctx, `UPDATE bulk_rows SET in_flight = 1, attempts = attempts + 1, attempt_at = ?,
		waiting_until = 0, updated_at = ?
		WHERE run_id = ? AND number = ? AND state IN (?, ?) AND claim = ?
		AND EXISTS (SELECT 1 FROM bulk_runs WHERE id = ? AND state IN (?, ?))`,
		now, now, runID, number, RowPending, RowQueued, claim, runID, RunQueued, RunRunning)
	if err != nil {
		return fmt.Errorf("store: begin write of row %d of run %d: %w", number, runID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: begin write of row %d of run %d: %w", number, runID, err)
	} else if n == 1 {
		return nil
	}
	var state string
	err = db.queryRow(ctx, `SELECT state FROM bulk_runs WHERE id = ?`, runID).Scan(&state)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("store: begin write of row %d of run %d: %w", number, runID, ErrNotFound)
	case err != nil:
		return fmt.Errorf("store: begin write of row %d of run %d: %w", number, runID, err)
	case state != RunQueued && state != RunRunning:
		return fmt.Errorf("store: begin write of row %d of run %d: run is %s: %w", number, runID, state, ErrRunNotRunning)
	}
	return fmt.Errorf("store: begin write of row %d of run %d: the row has ended or another worker took it: %w", number, runID, ErrConflict)
}

// AttemptEnd is how a row's attempt ended without a terminal state, for
// EndAttempt.
type AttemptEnd struct {
	// MayHaveActed says whether a write may have reached Zendesk (no
	// answer, or a 5xx). If not (nothing was sent, or Zendesk answered 429
	// or 503), the attempt BeginWrite counted is taken back, so the next
	// attempt is not treated as one after an unknown outcome.
	MayHaveActed bool
	// Failed counts the attempt among the row's Failures: it failed on
	// the row's own account (an answer from Zendesk, or an error after the
	// write was sent), not because its process or its deadline ended it.
	Failed bool
	// WaitingUntil is when a row snoozed on the rate limit may go again
	// (zero: not waiting for the rate limit).
	WaitingUntil time.Time
	// Claim, when set, names the worker attempt ending (ClaimRowFor): an
	// attempt whose row another one took over changes nothing, so it
	// cannot clear the new holder's in-flight mark or add to its failures.
	Claim string
}

// EndAttempt records that the row's attempt ended without a terminal state:
// the row waits for its next attempt.
func (db *DB) EndAttempt(ctx context.Context, runID int64, number int, end AttemptEnd) error {
	_, err := db.exec(ctx, `UPDATE bulk_rows SET attempts = attempts - CASE WHEN ? = 1 THEN 0 ELSE in_flight END,
		failures = failures + ?, in_flight = 0, waiting_until = ?, updated_at = ?
		WHERE run_id = ? AND number = ? AND state IN (?, ?) AND (? = '' OR claim = ?)`,
		boolInt(end.MayHaveActed), boolInt(end.Failed), dbTimeOrZero(end.WaitingUntil), toDBTime(db.now()),
		runID, number, RowPending, RowQueued, end.Claim, end.Claim)
	if err != nil {
		return fmt.Errorf("store: end attempt of row %d of run %d: %w", number, runID, err)
	}
	return nil
}

// FinishRow gives the row its terminal state, but ONLY if it has none yet
// (a conditional UPDATE): it returns false when the row already was
// terminal. This is what keeps "exactly one terminal state" true when a
// job is retried, rescued after a crash, or run by two replicas at once.
// In the same transaction, the row waiting for this one (RunRow.Next), if
// it is still queued, is handed to next so that the job queue inserts its
// job there: the chain of rows on one target cannot break in a crash.
func (db *DB) FinishRow(ctx context.Context, runID int64, number int, res RowResult, next func(tx *sql.Tx, number int) error) (bool, error) {
	switch res.State {
	case RowDone, RowFailed, RowSkipped:
	default:
		return false, fmt.Errorf("store: finish row %d of run %d: state %q is not terminal: %w",
			number, runID, res.State, ErrInvalid)
	}
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: finish row %d of run %d: %w", number, runID, err)
	}
	defer tx.Rollback()
	var nextNumber int
	err = tx.QueryRowContext(ctx, db.dialect.rebind(`UPDATE bulk_rows SET state = ?, http_status = ?, error = ?,
		zendesk_id = ?, in_flight = 0, waiting_until = 0, updated_at = ?
		WHERE run_id = ? AND number = ? AND state IN (?, ?) RETURNING next_number`),
		res.State, res.HTTPStatus, res.Error, res.ZendeskID, toDBTime(db.now()), runID, number,
		RowPending, RowQueued).Scan(&nextNumber)
	if errors.Is(err, sql.ErrNoRows) {
		var one int
		err := tx.QueryRowContext(ctx, db.dialect.rebind(`SELECT 1 FROM bulk_rows WHERE run_id = ? AND number = ?`),
			runID, number).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("store: finish row %d of run %d: %w", number, runID, ErrNotFound)
		}
		if err != nil {
			return false, fmt.Errorf("store: finish row %d of run %d: %w", number, runID, err)
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: finish row %d of run %d: %w", number, runID, err)
	}
	if res.Audit != nil {
		if err := db.insertAuditEvent(ctx, tx, res.Audit); err != nil {
			return false, fmt.Errorf("store: finish row %d of run %d: %w", number, runID, err)
		}
	}
	if nextNumber > 0 && next != nil {
		var state string
		err := tx.QueryRowContext(ctx, db.dialect.rebind(`SELECT state FROM bulk_rows WHERE run_id = ? AND number = ?`),
			runID, nextNumber).Scan(&state)
		if err != nil {
			return false, fmt.Errorf("store: finish row %d of run %d: next row %d: %w", number, runID, nextNumber, err)
		}
		if state == RowQueued {
			if err := next(tx, nextNumber); err != nil {
				return false, fmt.Errorf("store: finish row %d of run %d: queue row %d: %w", number, runID, nextNumber, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: finish row %d of run %d: commit: %w", number, runID, err)
	}
	return true, nil
}

// SetRowPreflight records a pre-flight of every row of the run: errs maps a
// row number to the reason the row would fail; every other row's earlier
// pre-flight error is cleared, and the run is marked Preflighted.
func (db *DB) SetRowPreflight(ctx context.Context, runID int64, errs map[int]string) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: set preflight of run %d: %w", runID, err)
	}
	defer tx.Rollback()
	now := toDBTime(db.now())
	res, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_runs SET preflighted = 1 WHERE id = ?`), runID)
	if err != nil {
		return fmt.Errorf("store: set preflight of run %d: %w", runID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: set preflight of run %d: %w", runID, err)
	} else if n == 0 {
		return fmt.Errorf("store: set preflight of run %d: %w", runID, ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_rows SET preflight_error = '', updated_at = ?
		WHERE run_id = ? AND preflight_error <> ''`), now, runID); err != nil {
		return fmt.Errorf("store: set preflight of run %d: clear: %w", runID, err)
	}
	upd := db.newRowUpdater(tx, runID, []string{"preflight_error"}, []string{"TEXT"})
	for _, n := range slices.Sorted(maps.Keys(errs)) {
		if err := upd.add(ctx, n, errs[n]); err != nil {
			return fmt.Errorf("store: set preflight of run %d: %w", runID, err)
		}
	}
	if err := upd.flush(ctx); err != nil {
		return fmt.Errorf("store: set preflight of run %d: %w", runID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: set preflight of run %d: commit: %w", runID, err)
	}
	return nil
}
