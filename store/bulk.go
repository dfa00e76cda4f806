package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Run states. A run is created in RunPreview, moves to RunQueued when the
// admin confirms it, to RunRunning when a worker takes its first row, and
// ends in RunDone or RunCancelled; RunPaused means the admin's Zendesk
// sign-in died and the run waits for them to log in again.
const (
	RunPreview   = "preview"
	RunQueued    = "queued"
	RunRunning   = "running"
	RunPaused    = "paused"
	RunCancelled = "cancelled"
	RunDone      = "done"
)

// Row states. RowInvalid rows never run; RowPending rows are valid and wait
// for the confirmation; RowQueued rows have a job; RowDone, RowFailed and
// RowSkipped are terminal, and a row reaches exactly one of them.
const (
	RowInvalid = "invalid"
	RowPending = "pending"
	RowQueued  = "queued"
	RowDone    = "done"
	RowFailed  = "failed"
	RowSkipped = "skipped"
)

// Paging limits for ListRuns and ListRunRows.
const (
	// DefaultListLimit is the page size when a filter's Limit is zero.
	DefaultListLimit = 50
	// MaxListLimit caps a filter's Limit.
	MaxListLimit = 1000
)

// Run is one bulk upload and its life: who started it, for which action,
// from which file, with which mapping, and how far it got.
type Run struct {
	ID        int64
	AdminID   int64
	AdminName string
	// GrantID is the grant whose token the workers use; ResumeRunsForAdmin
	// replaces it after the admin logs in again.
	GrantID  int64
	Kind     string // actions.Kind
	FileName string
	// State is one of the Run* constants.
	State string
	// PausedReason says, in a sentence, why a paused run waits, or why a
	// cancelled one stopped.
	PausedReason string
	Header       []string
	Mapping      map[string]int
	Delimiter    string
	// Total counts the data rows; Valid + Invalid = Total; Duplicates
	// counts valid rows whose target an earlier row already had.
	Total, Valid, Invalid, Duplicates int
	// RetryOf is the run whose failed rows this run retries, 0 for none.
	RetryOf    int64
	CreatedAt  time.Time
	StartedAt  time.Time // zero until confirmed
	FinishedAt time.Time // zero until done or cancelled
	// Preflighted reports that every row was checked against Zendesk
	// (SetRowPreflight).
	Preflighted bool
	// ConfirmedBy is the admin who confirmed the run (its owner: security
	// promise 11); CancelledBy the admin who cancelled it, who may be
	// anyone. Zero when nobody did.
	ConfirmedBy, CancelledBy Actor
	// QueueCursor is the number of the last row QueueBatch has handled
	// (QueueDone once every row is queued); QueuedRows counts the rows it
	// has queued so far.
	QueueCursor, QueuedRows int
	// ScoreMap is the run's score mapping: a score cell as written
	// (trimmed, lower case) to "good", "bad" or "" for "leave the row
	// out"; empty when the file's scores needed none (SetScoreMap).
	ScoreMap map[string]string
	// SkipRefused makes StartRun skip, with their reason, the rows the
	// pre-flight found Zendesk would refuse (SetSkipRefused).
	SkipRefused bool
}

// QueueDone is Run.QueueCursor once a confirmed run's rows are all queued.
const QueueDone = 2147483647

// Queuing reports whether the run was confirmed and its rows are still
// being queued in the background.
func (r *Run) Queuing() bool {
	switch r.State {
	case RunQueued, RunRunning, RunPaused:
		return r.QueueCursor != QueueDone
	}
	return false
}

// Actor names the admin who did something to a run.
type Actor struct {
	ID   int64
	Name string
}

// CancelResult is what CancelRun did.
type CancelResult struct {
	// Skipped counts the rows that will not be sent.
	Skipped int
	// InFlight counts the rows whose write was already on its way to
	// Zendesk: their workers record how each ended ("Cancelling…").
	InFlight int
}

// RunFilter selects runs for ListRuns. Zero fields match everything.
type RunFilter struct {
	AdminID int64
	// Limit defaults to DefaultListLimit and is capped at MaxListLimit.
	Limit, Offset int
}

const runColumns = `id, admin_id, admin_name, grant_id, kind, file_name, state, paused_reason,
	header, mapping, delimiter, total, valid, invalid, duplicates, retry_of, preflighted,
	created_at, started_at, finished_at, confirmed_by_id, confirmed_by_name, cancelled_by_id, cancelled_by_name,
	queue_cursor, queued_rows, score_map, skip_refused`

// queryer is what both *sql.DB and *sql.Tx offer, so helpers run inside or
// outside a transaction.
type queryer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// CreateRun stores a new run and sets its ID and CreatedAt (State defaults
// to RunPreview).
func (db *DB) CreateRun(ctx context.Context, r *Run) error {
	if err := db.createRun(ctx, db.db, r); err != nil {
		return fmt.Errorf("store: create run: %w", err)
	}
	return nil
}

// RetryPendingError is CreateRunWithRows's refusal of a second retry of a
// run while one has not ended (in preview, queued, running or paused): both
// would send the same failed rows. It wraps ErrConflict.
type RetryPendingError struct{ RunID int64 }

func (e *RetryPendingError) Error() string {
	return fmt.Sprintf("run #%d already retries these rows", e.RunID)
}

func (e *RetryPendingError) Unwrap() error { return ErrConflict }

// oneOpenRetry refuses a new retry of run orig while another has not ended.
// The no-op update locks orig's row first (PostgreSQL; SQLite's immediate
// transactions are one at a time already), so two retries asked for at once
// (a double click) are checked one after the other.
func (db *DB) oneOpenRetry(ctx context.Context, tx *sql.Tx, orig int64) error {
	if _, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_runs SET retry_of = retry_of WHERE id = ?`), orig); err != nil {
		return err
	}
	var open int64
	err := tx.QueryRowContext(ctx, db.dialect.rebind(`SELECT id FROM bulk_runs WHERE retry_of = ? AND state IN (?, ?, ?, ?)
		ORDER BY id LIMIT 1`), append([]any{orig}, unfinishedRunStates...)...).Scan(&open)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return err
	}
	return &RetryPendingError{RunID: open}
}

func (db *DB) createRun(ctx context.Context, q queryer, r *Run) error {
	if r.Kind == "" {
		return fmt.Errorf("empty kind: %w", ErrInvalid)
	}
	if r.State == "" {
		r.State = RunPreview
	}
	header, mapping, err := encodeRunJSON(r)
	if err != nil {
		return err
	}
	scoreMap, err := encodeScoreMap(r.ScoreMap)
	if err != nil {
		return err
	}
	r.CreatedAt = fromDBTime(toDBTime(db.now()))
	return q.QueryRowContext(ctx, db.dialect.rebind(`INSERT INTO bulk_runs
		(admin_id, admin_name, grant_id, kind, file_name, state, paused_reason, header, mapping,
		 delimiter, total, valid, invalid, duplicates, retry_of, preflighted, created_at, started_at, finished_at,
		 score_map)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		r.AdminID, r.AdminName, r.GrantID, r.Kind, r.FileName, r.State, r.PausedReason, header, mapping,
		r.Delimiter, r.Total, r.Valid, r.Invalid, r.Duplicates, r.RetryOf, boolInt(r.Preflighted),
		toDBTime(r.CreatedAt), dbTimeOrZero(r.StartedAt), dbTimeOrZero(r.FinishedAt), scoreMap).Scan(&r.ID)
}

// encodeScoreMap stores a score map as JSON, "{}" for none.
func encodeScoreMap(m map[string]string) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode score map: %w", err)
	}
	return string(b), nil
}

func encodeRunJSON(r *Run) (header, mapping string, err error) {
	h := r.Header
	if h == nil {
		h = []string{}
	}
	m := r.Mapping
	if m == nil {
		m = map[string]int{}
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return "", "", fmt.Errorf("encode header: %w", err)
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return "", "", fmt.Errorf("encode mapping: %w", err)
	}
	return string(hb), string(mb), nil
}

// CreateRunWithRows creates r and its rows in ONE transaction: fill is
// called with add, which stores a batch of rows; any error from fill (or
// add) rolls everything back, so a file found bad half-way leaves nothing
// behind. Total, Valid, Invalid and Duplicates are counted from the rows
// added; Header, Mapping and Delimiter are saved as r holds them when fill
// returns, so fill may set them from what it read.
func (db *DB) CreateRunWithRows(ctx context.Context, r *Run, fill func(add func([]RunRow) error) error) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: create run: %w", err)
	}
	defer tx.Rollback()
	if r.RetryOf != 0 {
		if err := db.oneOpenRetry(ctx, tx, r.RetryOf); err != nil {
			return fmt.Errorf("store: create run: %w", err)
		}
	}
	if err := db.createRun(ctx, tx, r); err != nil {
		return fmt.Errorf("store: create run: %w", err)
	}
	ins := db.newRowInserter(tx)
	defer ins.close()
	var total, valid, dups int
	add := func(rows []RunRow) error {
		if err := ins.insert(ctx, r.ID, rows); err != nil {
			return fmt.Errorf("store: create run %d: insert rows: %w", r.ID, err)
		}
		for i := range rows {
			total++
			if rows[i].Valid {
				valid++
				if rows[i].Duplicate {
					dups++
				}
			}
		}
		return nil
	}
	if err := fill(add); err != nil {
		return err
	}
	r.Total, r.Valid, r.Invalid, r.Duplicates = total, valid, total-valid, dups
	header, mapping, err := encodeRunJSON(r)
	if err != nil {
		return fmt.Errorf("store: create run %d: %w", r.ID, err)
	}
	if _, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_runs SET header = ?, mapping = ?,
		delimiter = ?, total = ?, valid = ?, invalid = ?, duplicates = ? WHERE id = ?`),
		header, mapping, r.Delimiter, r.Total, r.Valid, r.Invalid, r.Duplicates, r.ID); err != nil {
		return fmt.Errorf("store: create run %d: counts: %w", r.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: create run %d: commit: %w", r.ID, err)
	}
	return nil
}

// FindRunByID returns the run, or ErrNotFound.
func (db *DB) FindRunByID(ctx context.Context, id int64) (*Run, error) {
	r, err := scanRun(db.queryRow(ctx, `SELECT `+runColumns+` FROM bulk_runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: find run %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: find run %d: %w", id, err)
	}
	return r, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanRun(s scanner) (*Run, error) {
	var r Run
	var header, mapping string
	var preflighted, skipRefused int
	var scoreMap string
	var created, started, finished int64
	if err := s.Scan(&r.ID, &r.AdminID, &r.AdminName, &r.GrantID, &r.Kind, &r.FileName, &r.State,
		&r.PausedReason, &header, &mapping, &r.Delimiter, &r.Total, &r.Valid, &r.Invalid, &r.Duplicates,
		&r.RetryOf, &preflighted, &created, &started, &finished, &r.ConfirmedBy.ID, &r.ConfirmedBy.Name,
		&r.CancelledBy.ID, &r.CancelledBy.Name, &r.QueueCursor, &r.QueuedRows, &scoreMap, &skipRefused); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(header), &r.Header); err != nil {
		return nil, fmt.Errorf("decode header: %w", err)
	}
	if err := json.Unmarshal([]byte(mapping), &r.Mapping); err != nil {
		return nil, fmt.Errorf("decode mapping: %w", err)
	}
	if scoreMap != "" && scoreMap != "{}" {
		if err := json.Unmarshal([]byte(scoreMap), &r.ScoreMap); err != nil {
			return nil, fmt.Errorf("decode score map: %w", err)
		}
	}
	r.Preflighted, r.SkipRefused = preflighted != 0, skipRefused != 0
	r.CreatedAt, r.StartedAt, r.FinishedAt = timeOrZero(created), timeOrZero(started), timeOrZero(finished)
	return &r, nil
}

// ListRuns returns one page of runs matching f, newest first, and the number
// of matching runs.
func (db *DB) ListRuns(ctx context.Context, f RunFilter) ([]Run, int, error) {
	cond, args := "", []any{}
	if f.AdminID != 0 {
		cond, args = " WHERE admin_id = ?", append(args, f.AdminID)
	}
	var total int
	if err := db.queryRow(ctx, `SELECT COUNT(*) FROM bulk_runs`+cond, args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("store: list runs: count: %w", err)
	}
	limit, offset := pageBounds(f.Limit, f.Offset)
	rows, err := db.query(ctx, `SELECT `+runColumns+` FROM bulk_runs`+cond+
		` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("store: list runs: %w", err)
	}
	defer rows.Close()
	runs := []Run{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("store: list runs: %w", err)
		}
		runs = append(runs, *r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: list runs: %w", err)
	}
	return runs, total, nil
}

func pageBounds(limit, offset int) (int, int) {
	if limit <= 0 {
		limit = DefaultListLimit
	}
	return min(limit, MaxListLimit), max(offset, 0)
}

// StartRun confirms a run in ONE short transaction: the run goes from
// RunPreview to RunQueued (from any other state: ErrConflict), records by as
// the admin who confirmed it and, when grantID is not 0, switches to that
// grant (the confirming admin's current sign-in). enqueue is called with the
// transaction, so the job that queues the rows (QueueBatch, in the
// background and in batches) is inserted with the confirmation or not at
// all: a crash after the commit leaves that job to finish the queuing. If
// enqueue fails nothing changes.
func (db *DB) StartRun(ctx context.Context, runID int64, by Actor, grantID int64, enqueue func(tx *sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: start run %d: %w", runID, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_runs SET state = ?, started_at = ?,
		confirmed_by_id = ?, confirmed_by_name = ?, grant_id = CASE WHEN ? > 0 THEN ? ELSE grant_id END,
		queue_cursor = 0, queued_rows = 0
		WHERE id = ? AND state = ?`), RunQueued, toDBTime(db.now()), by.ID, by.Name, grantID, grantID, runID, RunPreview)
	if err != nil {
		return fmt.Errorf("store: start run %d: %w", runID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: start run %d: %w", runID, err)
	} else if n == 0 {
		var state string
		err := tx.QueryRowContext(ctx, db.dialect.rebind(`SELECT state FROM bulk_runs WHERE id = ?`), runID).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: start run %d: %w", runID, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: start run %d: %w", runID, err)
		}
		return fmt.Errorf("store: start run %d: run is %s, not %s: %w", runID, state, RunPreview, ErrConflict)
	}
	// Rows the pre-flight found Zendesk would refuse are skipped with
	// that reason, in the confirmation's transaction, when the admin chose
	// to send only the others: the queuer never sees them.
	if _, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_rows SET state = ?, error = ? || preflight_error,
		updated_at = ? WHERE run_id = ? AND state = ? AND preflight_error <> ''
		AND EXISTS (SELECT 1 FROM bulk_runs WHERE id = ? AND skip_refused = 1)`),
		RowSkipped, RefusedAtPreflightNote, toDBTime(db.now()), runID, RowPending, runID); err != nil {
		return fmt.Errorf("store: start run %d: skip refused rows: %w", runID, err)
	}
	if err := enqueue(tx); err != nil {
		return fmt.Errorf("store: start run %d: enqueue: %w", runID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: start run %d: commit: %w", runID, err)
	}
	return nil
}

// QueueBatch queues the next rows of a confirmed run, in file order, in ONE
// transaction: up to limit valid pending rows after the run's queue cursor
// become RowQueued; each is chained after the last row before it on the same
// target (target(row), "" for none; last maps a target to that row, and
// QueueBatch updates it), and the rows that wait for nobody are handed to
// enqueue with the transaction, so the job queue inserts their jobs there;
// the cursor and the count of queued rows advance. A row whose predecessor
// has already ended waits for nobody.
//
// from is the cursor the caller last saw (ChainTails or the previous
// batch): if the run's cursor moved meanwhile, another queuer is at work
// and QueueBatch returns ErrConflict without doing anything, so no row is
// queued twice and last can be rebuilt. It returns the run's new cursor:
// QueueDone when every row is queued, and also (doing nothing) when the run
// is no longer queued, running or paused (cancelled, say). On an error last
// may have changed: rebuild it with ChainTails.
func (db *DB) QueueBatch(ctx context.Context, runID int64, from, limit int, target func(RunRow) string,
	last map[string]int, enqueue func(tx *sql.Tx, heads []int) error) (int, error) {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: queue rows of run %d: %w", runID, err)
	}
	defer tx.Rollback()
	// An UPDATE that changes nothing locks the run's row on PostgreSQL
	// (SQLite has one writer anyway): queuers and a cancel take turns.
	var cursor int
	err = tx.QueryRowContext(ctx, db.dialect.rebind(`UPDATE bulk_runs SET queue_cursor = queue_cursor
		WHERE id = ? AND state IN (?, ?, ?) RETURNING queue_cursor`), runID, RunQueued, RunRunning, RunPaused).Scan(&cursor)
	if errors.Is(err, sql.ErrNoRows) {
		return QueueDone, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: queue rows of run %d: %w", runID, err)
	}
	if cursor != from {
		return cursor, fmt.Errorf("store: queue rows of run %d: cursor at %d, not %d: %w", runID, cursor, from, ErrConflict)
	}
	if cursor == QueueDone {
		return QueueDone, nil
	}
	rows, err := tx.QueryContext(ctx, db.dialect.rebind(`SELECT number, action FROM bulk_rows
		WHERE run_id = ? AND number > ? AND valid = 1 AND state = ? ORDER BY number LIMIT ?`),
		runID, cursor, RowPending, limit)
	if err != nil {
		return 0, fmt.Errorf("store: queue rows of run %d: %w", runID, err)
	}
	var batch []RunRow
	for rows.Next() {
		r := RunRow{RunID: runID}
		var action string
		if err := rows.Scan(&r.Number, &action); err != nil {
			rows.Close()
			return 0, fmt.Errorf("store: queue rows of run %d: %w", runID, err)
		}
		r.Action = []byte(action)
		batch = append(batch, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("store: queue rows of run %d: %w", runID, err)
	}
	next := QueueDone
	if len(batch) == limit {
		next = batch[len(batch)-1].Number
	}
	var heads []int
	links := map[int]int{} // earlier row -> the row after it, on one target
	for _, r := range batch {
		key := ""
		if target != nil {
			key = target(r)
		}
		prev, ok := last[key]
		if key != "" {
			last[key] = r.Number
		}
		if !ok || key == "" {
			heads = append(heads, r.Number)
			continue
		}
		links[prev] = r.Number
	}
	linked, err := db.linkRows(ctx, tx, runID, links)
	if err != nil {
		return 0, fmt.Errorf("store: queue rows of run %d: %w", runID, err)
	}
	for prev, n := range links {
		if !linked[prev] {
			// prev ended before this batch: n waits for nobody.
			heads = append(heads, n)
		}
	}
	slices.Sort(heads)
	if len(batch) > 0 {
		if _, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_rows SET state = ?, updated_at = ?
			WHERE run_id = ? AND number > ? AND number <= ? AND valid = 1 AND state = ?`),
			RowQueued, toDBTime(db.now()), runID, cursor, batch[len(batch)-1].Number, RowPending); err != nil {
			return 0, fmt.Errorf("store: queue rows of run %d: %w", runID, err)
		}
	}
	if len(heads) > 0 {
		if err := enqueue(tx, heads); err != nil {
			return 0, fmt.Errorf("store: queue rows of run %d: enqueue: %w", runID, err)
		}
	}
	if _, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_runs SET queue_cursor = ?,
		queued_rows = queued_rows + ? WHERE id = ?`), next, len(batch), runID); err != nil {
		return 0, fmt.Errorf("store: queue rows of run %d: %w", runID, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("store: queue rows of run %d: commit: %w", runID, err)
	}
	return next, nil
}

// linkRows chains each row after its earlier row on the same target (links
// maps the earlier to the later) in two statements, whatever their number:
// the earlier row points at the later only if it has not ended (FinishRow
// reads next_number in the same row, so one of the two sees the other), and
// the later row then records what it waits for. It returns the earlier rows
// that were linked.
func (db *DB) linkRows(ctx context.Context, tx *sql.Tx, runID int64, links map[int]int) (map[int]bool, error) {
	linked := map[int]bool{}
	if len(links) == 0 {
		return linked, nil
	}
	set, args, in := setByNumber("next_number", links)
	args = append(args, runID)
	args = append(args, in...)
	args = append(args, RowPending, RowQueued)
	rows, err := tx.QueryContext(ctx, db.dialect.rebind(`UPDATE bulk_rows SET `+set+
		` WHERE run_id = ? AND number IN (?`+strings.Repeat(", ?", len(in)-1)+`) AND state IN (?, ?) RETURNING number`), args...)
	if err != nil {
		return nil, fmt.Errorf("chain rows: %w", err)
	}
	for rows.Next() {
		var prev int
		if err := rows.Scan(&prev); err != nil {
			rows.Close()
			return nil, fmt.Errorf("chain rows: %w", err)
		}
		linked[prev] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("chain rows: %w", err)
	}
	if len(linked) == 0 {
		return linked, nil
	}
	after := make(map[int]int, len(linked))
	for prev := range linked {
		after[links[prev]] = prev
	}
	set, args, in = setByNumber("after_number", after)
	args = append(args, runID)
	args = append(args, in...)
	if _, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_rows SET `+set+
		` WHERE run_id = ? AND number IN (?`+strings.Repeat(", ?", len(in)-1)+`)`), args...); err != nil {
		return nil, fmt.Errorf("chain rows: %w", err)
	}
	return linked, nil
}

// setByNumber builds "col = CASE number WHEN ? THEN CAST(? AS BIGINT) …
// END", giving each row number in values its own value, with its
// arguments, and the row numbers as arguments for the caller's "number IN
// (…)". values must not be empty. The CAST makes PostgreSQL type the CASE
// as the column's BIGINT rather than as text.
func setByNumber(col string, values map[int]int) (set string, args, numbers []any) {
	var b strings.Builder
	b.WriteString(col + " = CASE number")
	for number, v := range values {
		b.WriteString(" WHEN ? THEN CAST(? AS BIGINT)")
		args = append(args, number, v)
		numbers = append(numbers, number)
	}
	b.WriteString(" END")
	return b.String(), args, numbers
}

// ChainTails rebuilds, for a run being queued, what QueueBatch needs after a
// restart: for each target, the last row already queued on it (none when
// target is nil, as QueueBatch then chains nothing), and the run's queue
// cursor.
func (db *DB) ChainTails(ctx context.Context, runID int64, target func(RunRow) string) (map[string]int, int, error) {
	var cursor int
	if err := db.queryRow(ctx, `SELECT queue_cursor FROM bulk_runs WHERE id = ?`, runID).Scan(&cursor); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			err = ErrNotFound
		}
		return nil, 0, fmt.Errorf("store: chain tails of run %d: %w", runID, err)
	}
	last := map[string]int{}
	rows, err := db.query(ctx, `SELECT number, action FROM bulk_rows
		WHERE run_id = ? AND number <= ? AND valid = 1 AND state <> ? ORDER BY number`, runID, cursor, RowPending)
	if err != nil {
		return nil, 0, fmt.Errorf("store: chain tails of run %d: %w", runID, err)
	}
	defer rows.Close()
	for rows.Next() {
		r := RunRow{RunID: runID}
		var action string
		if err := rows.Scan(&r.Number, &action); err != nil {
			return nil, 0, fmt.Errorf("store: chain tails of run %d: %w", runID, err)
		}
		r.Action = []byte(action)
		if target == nil {
			continue
		}
		if key := target(r); key != "" {
			last[key] = r.Number
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("store: chain tails of run %d: %w", runID, err)
	}
	return last, cursor, nil
}

// SetRunState moves the run to state to, with reason as PausedReason, only
// if it is in one of the states from; it reports whether it moved. Moving
// to RunDone or RunCancelled sets FinishedAt.
func (db *DB) SetRunState(ctx context.Context, runID int64, from []string, to string, reason string) (bool, error) {
	ok, err := db.setRunState(ctx, db.db, runID, from, to, reason)
	if err != nil {
		return false, fmt.Errorf("store: set run %d %s: %w", runID, to, err)
	}
	return ok, nil
}

func (db *DB) setRunState(ctx context.Context, q queryer, runID int64, from []string, to, reason string) (bool, error) {
	if len(from) == 0 {
		return false, fmt.Errorf("no states to move from: %w", ErrInvalid)
	}
	finished := "finished_at"
	args := []any{to, reason}
	if to == RunDone || to == RunCancelled {
		finished = "?"
		args = append(args, toDBTime(db.now()))
	}
	args = append(args, runID)
	for _, s := range from {
		args = append(args, s)
	}
	res, err := q.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_runs SET state = ?, paused_reason = ?,
		finished_at = `+finished+` WHERE id = ? AND state IN (?`+strings.Repeat(", ?", len(from)-1)+`)`), args...)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if n == 0 {
		var one int
		err := q.QueryRowContext(ctx, db.dialect.rebind(`SELECT 1 FROM bulk_runs WHERE id = ?`), runID).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return false, ErrNotFound
		}
		return false, err
	}
	return true, nil
}

// FinishRunIfDone moves a queued, running or paused run to RunDone when none
// of its rows is pending or queued any more, and reports whether it did.
// Workers call it after every terminal row; only the call that sees the
// last row finished moves the run.
func (db *DB) FinishRunIfDone(ctx context.Context, runID int64) (bool, error) {
	res, err := db.exec(ctx, `UPDATE bulk_runs SET state = ?, paused_reason = '', finished_at = ?
		WHERE id = ? AND state IN (?, ?, ?)
		AND NOT EXISTS (SELECT 1 FROM bulk_rows WHERE run_id = ? AND state IN (?, ?))`,
		RunDone, toDBTime(db.now()), runID, RunQueued, RunRunning, RunPaused, runID, RowPending, RowQueued)
	if err != nil {
		return false, fmt.Errorf("store: finish run %d: %w", runID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: finish run %d: %w", runID, err)
	}
	return n > 0, nil
}

// PauseRun pauses a queued or running run with reason (a sentence for the
// admin) and reports whether it did; workers snooze the rows of a paused
// run until ResumeRunsForAdmin.
func (db *DB) PauseRun(ctx context.Context, runID, grantID int64, reason string) (bool, error) {
	// Conditioned on the grant: a worker that was still using the old grant
	// when the admin logged in again must not pause the run that
	// ResumeRunsForAdmin just moved to the new one.
	res, err := db.exec(ctx, `UPDATE bulk_runs SET state = ?, paused_reason = ?
		WHERE id = ? AND grant_id = ? AND state IN (?, ?)`, RunPaused, reason, runID, grantID, RunQueued, RunRunning)
	if err != nil {
		return false, fmt.Errorf("store: pause run %d: %w", runID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: pause run %d: %w", runID, err)
	}
	if n == 0 {
		if _, err := db.FindRunByID(ctx, runID); err != nil {
			return false, err
		}
	}
	return n == 1, nil
}

// ResumeRunsForAdmin is called after the admin logs in again: every paused
// run of theirs goes back to running, and every run of theirs that has not
// ended (paused, queued or running) switches to newGrantID, so workers use
// the new sign-in. It returns the ids of the runs it resumed.
//
// The grant is switched first, which locks every such run until the
// commit: a worker's PauseRun with the old grant either committed before
// (and the run, paused, is resumed below) or waits and then finds the run
// on the new grant (and pauses nothing). Resumed first, a run paused by
// such a worker between the two statements (PostgreSQL reads each
// statement afresh) was switched to the new grant still paused, and stayed
// so until the next login.
func (db *DB) ResumeRunsForAdmin(ctx context.Context, adminID, newGrantID int64) ([]int64, error) {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: resume runs of admin %d: %w", adminID, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_runs SET grant_id = ?
		WHERE admin_id = ? AND state IN (?, ?, ?)`), newGrantID, adminID, RunQueued, RunRunning, RunPaused); err != nil {
		return nil, fmt.Errorf("store: resume runs of admin %d: switch grant: %w", adminID, err)
	}
	if h := db.hooks.resumeBetween; h != nil {
		h(tx)
	}
	rows, err := tx.QueryContext(ctx, db.dialect.rebind(`UPDATE bulk_runs SET state = ?, paused_reason = ''
		WHERE admin_id = ? AND state = ? RETURNING id`), RunRunning, adminID, RunPaused)
	if err != nil {
		return nil, fmt.Errorf("store: resume runs of admin %d: %w", adminID, err)
	}
	ids := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: resume runs of admin %d: %w", adminID, err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: resume runs of admin %d: %w", adminID, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("store: resume runs of admin %d: commit: %w", adminID, err)
	}
	return ids, nil
}

// UnknownOutcomeNote is added to the reason of a skipped row whose earlier
// attempt may have reached Zendesk without an answer.
const UnknownOutcomeNote = " An earlier attempt of this row went out without an answer, so Zendesk may have made the change; check it there."

// CancelRun cancels a run that has not ended, in one transaction: the run
// becomes RunCancelled with reason, naming by as who cancelled it, and every
// row that has not ended and is not in flight becomes RowSkipped with reason
// as its error. Rows in flight (their write passed BeginWrite) are left to
// their workers, which record how each ended. dropJobs, if not nil, is
// called in the same transaction to remove the queued jobs of the run, so
// they cost the queue nothing. It returns ErrConflict if the run had ended.
func (db *DB) CancelRun(ctx context.Context, runID int64, by Actor, reason string, dropJobs func(tx *sql.Tx) error) (CancelResult, error) {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return CancelResult{}, fmt.Errorf("store: cancel run %d: %w", runID, err)
	}
	defer tx.Rollback()
	ok, err := db.setRunState(ctx, tx, runID, []string{RunPreview, RunQueued, RunRunning, RunPaused}, RunCancelled, reason)
	if err != nil {
		return CancelResult{}, fmt.Errorf("store: cancel run %d: %w", runID, err)
	}
	if !ok {
		return CancelResult{}, fmt.Errorf("store: cancel run %d: run has ended: %w", runID, ErrConflict)
	}
	if _, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_runs SET cancelled_by_id = ?, cancelled_by_name = ?
		WHERE id = ?`), by.ID, by.Name, runID); err != nil {
		return CancelResult{}, fmt.Errorf("store: cancel run %d: %w", runID, err)
	}
	res, err := tx.ExecContext(ctx, db.dialect.rebind(`UPDATE bulk_rows SET state = ?,
		error = CASE WHEN attempts > 0 THEN ? ELSE ? END, waiting_until = 0, updated_at = ?
		WHERE run_id = ? AND state IN (?, ?) AND in_flight = 0`),
		RowSkipped, reason+UnknownOutcomeNote, reason, toDBTime(db.now()), runID, RowPending, RowQueued)
	if err != nil {
		return CancelResult{}, fmt.Errorf("store: cancel run %d: skip rows: %w", runID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return CancelResult{}, fmt.Errorf("store: cancel run %d: skip rows: %w", runID, err)
	}
	out := CancelResult{Skipped: int(n)}
	if err := tx.QueryRowContext(ctx, db.dialect.rebind(`SELECT COUNT(*) FROM bulk_rows
		WHERE run_id = ? AND state IN (?, ?)`), runID, RowPending, RowQueued).Scan(&out.InFlight); err != nil {
		return CancelResult{}, fmt.Errorf("store: cancel run %d: count rows in flight: %w", runID, err)
	}
	if dropJobs != nil {
		if err := dropJobs(tx); err != nil {
			return CancelResult{}, fmt.Errorf("store: cancel run %d: drop jobs: %w", runID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return CancelResult{}, fmt.Errorf("store: cancel run %d: commit: %w", runID, err)
	}
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func jsonStrings(s []string) (string, error) {
	if s == nil {
		return "[]", nil
	}
	b, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// dbTimeOrZero stores the zero time as 0, so "unset" compares below every
// real time.
func dbTimeOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return toDBTime(t)
}

func timeOrZero(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromDBTime(us)
}
