package bulk

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/onbehalf/onbehalf/actions"
	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk"
)

// Defaults for Config fields left zero.
const (
	DefaultWorkers              = 20
	DefaultRescueStuckJobsAfter = 15 * time.Second
	DefaultJobTimeout           = 2 * time.Minute
	// maxAttempts bounds the attempts of a row that keeps failing in ways
	// that may pass (network, 5xx): store.RunRow.Failures. Snoozes on
	// 429/503, and attempts cut short by a crash, a shutdown or the job's
	// deadline before anything was sent, do not count.
	maxAttempts = 8
	// jobMaxAttempts is River's own limit, a backstop far above
	// maxAttempts: a job River discards leaves its row without a terminal
	// state, so the row's own count must run out first. Failures that may
	// pass snooze the job (River then allows one more attempt) and a crash
	// rescue allows one more too, so only errors of onbehalf's own (the
	// database) and panics use these up.
	jobMaxAttempts = 100
	// maxBackoff caps the back-off between attempts.
	maxBackoff = 10 * time.Minute
	// pausedSnooze is how often a job of a paused run looks again.
	defaultPausedSnooze = 15 * time.Second
	// defaultRetryBase is the first back-off after a failed attempt; it
	// doubles with every attempt (2 s, 4 s, … about 4 min at the 8th).
	defaultRetryBase = 2 * time.Second
	// maxHold is the longest a worker waits in the throttle for a block
	// (Retry-After) to pass before it hands the row back to the queue
	// with a snooze instead of holding a worker slot.
	maxHold = 2 * time.Second
	// prefetchChunk rows share one Batch.Prefetch (show_many takes 100
	// ids, zendesk-api.md §3.3).
	prefetchChunk = 100
)

// pausedReason is what a run paused on a dead sign-in says.
const pausedReason = "Your Zendesk sign-in expired or was revoked. Log in again to continue."

// ErrNoFailedRows is returned by RetryFailed for a run without failed rows.
var ErrNoFailedRows = errors.New("bulk: the run has no failed rows to retry")

// Config is what an Engine needs.
type Config struct {
	DB     *store.DB
	Logger *slog.Logger // nil discards
	// ZendeskURL is the account's base URL.
	ZendeskURL string
	// HTTPClient sends the Zendesk calls; nil uses the zendesk package's
	// default.
	HTTPClient *http.Client
	// Refresh renews an admin's token; the app's adapter reports
	// invalid_grant as zendesk.ErrTokenInvalid, which pauses the run.
	Refresh store.RefreshFunc
	// RateLimit is ZENDESK_RATE_LIMIT: calls per minute to the account.
	RateLimit int
	// Workers is how many rows run at once; 0 means DefaultWorkers.
	Workers int
	// RescueStuckJobsAfter is how long an engine may be silent (it writes
	// a heartbeat every fifth of it) before the others take back the rows
	// it was working, as after a crash; 0 means
	// DefaultRescueStuckJobsAfter. A row whose write was sent is taken
	// back only once the write timeout has passed since it was sent
	// (ClaimRowFor): it may still be answered.
	RescueStuckJobsAfter time.Duration
	// JobTimeout bounds one row's work once its turn has come (waits for
	// the rate limit's Retry-After are snoozed, not spent in it); 0 means
	// DefaultJobTimeout. A write that was sent gets the shorter of 30
	// seconds and half of it to be answered, whatever is left of it.
	JobTimeout time.Duration
	// Now is the clock for rows and audit rows; nil means time.Now.
	Now func() time.Time
	// Throttle is the account's throttle, to share it with the web
	// handlers; nil makes one at RateLimit.
	Throttle *Throttle
	// GrantSweep revokes and deletes sign-ins nothing uses (grantsweep.go).
	GrantSweep GrantSweep

	// Knobs for tests.
	queueBatch   int
	noRecheck    bool
	pausedSnooze time.Duration
	retryBase    time.Duration
	pollInterval time.Duration
	runIdle      time.Duration
}

// Engine runs bulk runs: it confirms them into one River job per row, works
// the rows under the account's throttle, and keeps every row's one terminal
// state in the store.
type Engine struct {
	db       *store.DB
	log      *slog.Logger
	now      func() time.Time
	throttle *Throttle
	queue    *river.Client[*sql.Tx]

	zendeskURL string
	httpClient *http.Client
	refresh    store.RefreshFunc
	jobTimeout time.Duration
	// writeTimeout is how long a sent write waits for its answer.
	writeTimeout time.Duration
	paused       time.Duration
	// retryBase is the wait after a row's first failure that may pass.
	retryBase time.Duration
	// id names this engine in bulk_workers and as River's client ID (in
	// river_job.attempted_by); rescueAfter is how long it may be silent
	// before the others take its jobs back.
	id          string
	rescueAfter time.Duration
	// noRecheck switches off the re-check of a row whose earlier write
	// may have reached Zendesk (the duplicate guard): only for the tests
	// that show it is what keeps a crash from writing twice.
	noRecheck bool
	// queueBatch, when set, replaces the const queueBatch (tests).
	queueBatch int
	// beat stops the heartbeat; beatDone is closed when it has stopped.
	beat     context.CancelFunc
	beatDone chan struct{}

	// runIdle is how long a run's shared state (runs) is kept unused:
	// a run finished, cancelled or paused on another replica is never
	// forgotten here otherwise, nor its cache of users and tickets.
	runIdle time.Duration

	mu   sync.Mutex
	runs map[int64]*runState
	// working holds the rows this process is working, per run, so Cancel
	// can stop them at once; see track.
	working map[int64]map[int]*rowWork

	// closeQueue releases what newQueue opened beside the store (the
	// PostgreSQL listener pool), after the queue has stopped.
	closeQueue func()
}

// NewEngine applies River's migrations to the store's database and builds
// the queue client; Start starts working.
func NewEngine(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.DB == nil {
		return nil, errors.New("bulk: new engine: no database")
	}
	if cfg.ZendeskURL == "" {
		return nil, errors.New("bulk: new engine: no Zendesk URL")
	}
	if cfg.RateLimit <= 0 {
		return nil, fmt.Errorf("bulk: new engine: rate limit %d per minute", cfg.RateLimit)
	}
	e := &Engine{
		db:         cfg.DB,
		log:        cfg.Logger,
		now:        cfg.Now,
		throttle:   cfg.Throttle,
		zendeskURL: cfg.ZendeskURL,
		httpClient: cfg.HTTPClient,
		refresh:    cfg.Refresh,
		paused:     cmp.Or(cfg.pausedSnooze, defaultPausedSnooze),
		retryBase:  cmp.Or(cfg.retryBase, defaultRetryBase),
		noRecheck:  cfg.noRecheck,
		queueBatch: cfg.queueBatch,
		runs:       make(map[int64]*runState),
		working:    make(map[int64]map[int]*rowWork),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.throttle == nil {
		e.throttle = NewThrottle(cfg.RateLimit, nil)
		if cfg.DB.Dialect() == "postgres" {
			// Replicas share the database, and through it the account's
			// limit and any Retry-After one of them gets.
			e.throttle.ShareLimit(dbLimit{db: cfg.DB, account: cfg.ZendeskURL})
		}
	}
	e.rescueAfter = cmp.Or(cfg.RescueStuckJobsAfter, DefaultRescueStuckJobsAfter)
	e.jobTimeout = cmp.Or(cfg.JobTimeout, DefaultJobTimeout)
	e.writeTimeout = min(30*time.Second, e.jobTimeout/2)
	e.runIdle = cmp.Or(cfg.runIdle, max(5*time.Minute, 2*e.jobTimeout))
	e.id = newWorkerID()
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &rowWorker{e: e}); err != nil {
		return nil, fmt.Errorf("bulk: new engine: %w", err)
	}
	if err := river.AddWorkerSafely(workers, &queueWorker{e: e}); err != nil {
		return nil, fmt.Errorf("bulk: new engine: %w", err)
	}
	periodic, err := e.addGrantSweep(workers, cfg.GrantSweep)
	if err != nil {
		return nil, fmt.Errorf("bulk: new engine: %w", err)
	}
	poll := cmp.Or(cfg.pollInterval, 200*time.Millisecond)
	q, closeQueue, err := newQueue(ctx, cfg.DB, &river.Config{
		Logger: e.log,
		Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cmp.Or(cfg.Workers, DefaultWorkers)},
			queuingQueue: {MaxWorkers: 2}},
		ID:          e.id,
		Workers:     workers,
		MaxAttempts: jobMaxAttempts,
		JobTimeout:  e.jobTimeout,
		// River's own rescuer is the backstop for a job that outlived its
		// timeout in a live engine; the heartbeat (rescueLoop) takes back
		// the jobs of a dead one long before. Never while a write that
		// was sent may still be answered.
		RescueStuckJobsAfter: e.jobTimeout + e.writeTimeout + e.rescueAfter,
		// A short cooldown between fetches while rows keep finishing: at
		// 50 ms (River's default) 20 workers cannot take more than about
		// 400 rows a second, whatever the rate limit allows.
		FetchCooldown:     min(poll, 10*time.Millisecond),
		FetchPollInterval: poll,
		RetryPolicy:       backoff{base: e.retryBase},
		PeriodicJobs:      periodic,
	})
	if err != nil {
		return nil, err
	}
	e.queue = q
	e.closeQueue = closeQueue
	return e, nil
}

// newQueue is the one place that picks River's driver for the store's
// database and applies River's migrations (the River CLI is not needed).
// Both drivers work on the store's own *sql.DB, so Confirm inserts a run's
// jobs in the same *sql.Tx as the run's state change on either database.
// On PostgreSQL, River's database/sql driver gets a small pgx pool
// (riverpgxv5) for LISTEN/NOTIFY, so replicas hear about new jobs at once
// rather than at the next poll.
func newQueue(ctx context.Context, db *store.DB, cfg *river.Config) (*river.Client[*sql.Tx], func(), error) {
	var driver riverdriver.Driver[*sql.Tx]
	closeFn := func() {}
	switch d := db.Dialect(); d {
	case "sqlite":
		driver = riversqlite.New(db.SQL())
	case "postgres":
		pcfg, err := pgxpool.ParseConfig(db.DSN())
		if err != nil {
			return nil, closeFn, fmt.Errorf("bulk: new engine: listener pool: %w", err)
		}
		pcfg.MinConns, pcfg.MaxConns = 0, 2
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			return nil, closeFn, fmt.Errorf("bulk: new engine: listener pool: %w", err)
		}
		closeFn = pool.Close
		driver = riverdatabasesql.NewWithPgxListener(db.SQL(), pool)
	default:
		return nil, closeFn, fmt.Errorf("bulk: new engine: no job queue for %s", d)
	}
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: cfg.Logger})
	if err != nil {
		closeFn()
		return nil, func() {}, fmt.Errorf("bulk: new engine: migrator: %w", err)
	}
	// Replicas starting together must not run River's migrations at once:
	// the store serialises them under its migration lock.
	err = db.WithMigrationLock(ctx, func() error {
		_, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
		return err
	})
	if err != nil {
		closeFn()
		return nil, func() {}, fmt.Errorf("bulk: new engine: migrate job queue: %w", err)
	}
	q, err := river.NewClient(driver, cfg)
	if err != nil {
		closeFn()
		return nil, func() {}, fmt.Errorf("bulk: new engine: queue client: %w", err)
	}
	return q, closeFn, nil
}

// backoff is River's retry policy. Rows that fail in ways that may pass
// do not come back through it: the worker snoozes them (rowRetry), by
// their own count of failures. What reaches it is a job River rescued
// (its engine stopped answering or the job outlived its timeout), which is
// tried again in about base, and an error of onbehalf's own (the database
// did not answer) or a panic, tried again after base, 2×base, 4×base, … by
// the number of such errors, at most maxInfraBackoff; ±20% jitter, so jobs
// that failed together do not all come back together.
type backoff struct{ base time.Duration }

// maxInfraBackoff caps backoff's waits: the database coming back should
// not leave rows idle for long.
const maxInfraBackoff = 30 * time.Second

// NextRetry implements river.ClientRetryPolicy.
func (b backoff) NextRetry(job *rivertype.JobRow) time.Time {
	n := 0
	for _, e := range job.Errors {
		if !strings.HasPrefix(e.Error, "Stuck job rescued") {
			n++
		}
	}
	if k := len(job.Errors); k > 0 && strings.HasPrefix(job.Errors[k-1].Error, "Stuck job rescued") {
		n = 0
	}
	return time.Now().Add(jitter(min(b.base<<min(max(n, 1)-1, 16), maxInfraBackoff)))
}

// rowRetry is how long a row waits after its failures-th failure that may
// pass: base, 2×base, 4×base, … at most maxBackoff, with jitter.
func rowRetry(base time.Duration, failures int) time.Duration {
	return jitter(min(base<<min(max(failures, 1)-1, 16), maxBackoff))
}

// jitter is d ±20%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Throttle returns the engine's throttle, to share with other Zendesk
// clients of the same account.
func (e *Engine) Throttle() *Throttle { return e.throttle }

// Start starts working queued rows, and the heartbeat that lets the other
// engines take back this one's rows if it dies (and this one theirs); it
// returns at once.
func (e *Engine) Start(ctx context.Context) error {
	if err := e.db.Heartbeat(ctx, e.id); err != nil {
		return fmt.Errorf("bulk: start: %w", err)
	}
	if err := e.queue.Start(ctx); err != nil {
		return fmt.Errorf("bulk: start: %w", err)
	}
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.beat, e.beatDone = cancel, make(chan struct{})
	go e.rescueLoop(bctx)
	return nil
}

// rescueLoop writes this engine's heartbeat and takes back the jobs of
// engines silent for longer than rescueAfter, every fifth of it (from a
// tenth to two seconds): a crashed replica's rows are worked again within
// about rescueAfter, not after River's rescuer's round and a back-off.
func (e *Engine) rescueLoop(ctx context.Context) {
	defer close(e.beatDone)
	every := min(max(e.rescueAfter/5, 100*time.Millisecond), 2*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A round that cannot finish within its own period says so: a
		// heartbeat stuck behind a busy database pool must not pass for
		// one that was written.
		rctx, cancel := context.WithTimeout(ctx, every)
		if err := e.db.Heartbeat(rctx, e.id); err != nil && ctx.Err() == nil {
			e.log.Warn("bulk: heartbeat", "err", err)
		}
		n, err := e.db.RescueSilentWorkers(rctx, e.rescueAfter)
		cancel()
		if err != nil && ctx.Err() == nil {
			e.log.Warn("bulk: rescue rows of silent replicas", "err", err)
		}
		if n > 0 {
			e.log.Info("bulk: took back the rows of a replica that stopped answering", "jobs", n)
		}
		e.dropIdleRuns()
	}
}

// newWorkerID is a name for this engine no other engine has.
func newWorkerID() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("onbehalf-%s-%d-%x", host, os.Getpid(), rand.Uint64())
}

// Stop stops taking rows and waits for the rows being worked until ctx's
// deadline; then it cancels them (each returns to the queue as an attempt
// with an unknown outcome, re-checked when it runs again) and waits for
// them to return.
//
// The heartbeat stops last. Once no worker of this engine runs, any job
// River left marked running (a job cut off as the queue stopped) is taken
// back at once, and the engine is forgotten; one whose hard stop failed is
// left to go silent, and the others take its jobs back.
func (e *Engine) Stop(ctx context.Context) error {
	defer e.closeQueue()
	err := e.queue.Stop(ctx)
	if err != nil {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if herr := e.queue.StopAndCancel(hctx); herr != nil {
			e.stopBeat(ctx, false)
			return fmt.Errorf("bulk: stop: %w (hard stop: %w)", err, herr)
		}
	}
	e.stopBeat(ctx, true)
	return nil
}

// stopBeat stops the heartbeat; with stopped (none of this engine's
// workers runs any more) it takes back the jobs left marked running and
// forgets the engine.
func (e *Engine) stopBeat(ctx context.Context, stopped bool) {
	if e.beat == nil {
		return
	}
	e.beat()
	<-e.beatDone
	if stopped {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		n, err := e.db.RescueWorker(fctx, e.id)
		if err != nil {
			e.log.Warn("bulk: stop", "err", err)
		} else if n > 0 {
			e.log.Info("bulk: stop: jobs cut off as the queue stopped are available again", "jobs", n)
		}
	}
}

// rowArgs is one row's job. Unique by args: the same row of the same run
// is never queued twice.
type rowArgs struct {
	RunID int64 `json:"run_id"`
	Row   int   `json:"row"`
}

// Kind implements river.JobArgs.
func (rowArgs) Kind() string { return "onbehalf_bulk_row" }

// InsertOpts implements river.JobArgsWithInsertOpts.
func (rowArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: jobMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// Confirm starts a previewed run for its owner, by, on their current
// sign-in grantID (0 keeps the run's). It answers at once, whatever the size
// of the run: one short transaction confirms the run and inserts the job
// that queues its rows in the background, in batches (queueWorker), so
// the write lock is never held long and a crash while queuing resumes
// where it stopped. A run that is not in preview any more gives
// store.ErrConflict.
func (e *Engine) Confirm(ctx context.Context, runID int64, by actions.Admin, grantID int64) error {
	err := e.db.StartRun(ctx, runID, store.Actor{ID: by.ID, Name: by.Name}, grantID, func(tx *sql.Tx) error {
		_, err := e.queue.InsertTx(ctx, tx, queueArgs{RunID: runID}, nil)
		return err
	})
	if err != nil {
		return fmt.Errorf("bulk: confirm run %d: %w", runID, err)
	}
	return nil
}

// queueBatch is how many rows one queuing transaction takes: small enough
// that other writers (SQLite has one at a time) wait only tens of
// milliseconds, since River's SQLite driver inserts jobs one by one.
const queueBatch = 500

// queueSlice is the longest one run of the queuing job works before it
// hands its worker back (and picks up again at once). It is also kept to a
// quarter of the job timeout: a slice cut off by the timeout would count as
// a failed attempt and wait out a back-off.
const queueSlice = 5 * time.Second

// queueArgs is the job that queues a confirmed run's rows. Unique by
// args: a run has one.
type queueArgs struct {
	RunID int64 `json:"run_id"`
}

// Kind implements river.JobArgs.
func (queueArgs) Kind() string { return "onbehalf_bulk_queue" }

// queuingQueue is River's queue for the queuing jobs: with workers of its
// own, a run's rows are queued however many rows of other runs (or of the
// same run) wait for the row workers.
const queuingQueue = "onbehalf_queuing"

// InsertOpts implements river.JobArgsWithInsertOpts.
func (queueArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queuingQueue, MaxAttempts: jobMaxAttempts, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// queueWorker queues a confirmed run's rows, in file order and in batches
// (store.QueueBatch), chaining rows on one target so they run one after
// another. Rows start being sent as soon as the first batch commits.
type queueWorker struct {
	river.WorkerDefaults[queueArgs]
	e *Engine
}

// Work implements river.Worker.
func (w *queueWorker) Work(ctx context.Context, job *river.Job[queueArgs]) error {
	e, runID := w.e, job.Args.RunID
	run, err := e.db.FindRunByID(ctx, runID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	kind := actions.Kind(run.Kind)
	target := func(r store.RunRow) string { return targetOf(kind, r.Action) }
	// Where the rows queued so far end, per target: read again on every
	// start, so a queuer that died (or another one) leaves nothing stale.
	last, cursor, err := e.db.ChainTails(ctx, runID, target)
	if err != nil {
		return err
	}
	start, slice := time.Now(), min(queueSlice, e.jobTimeout/4)
	for cursor != store.QueueDone {
		if time.Since(start) > slice {
			return river.JobSnooze(0)
		}
		cursor, err = e.db.QueueBatch(ctx, runID, cursor, cmp.Or(e.queueBatch, queueBatch), target, last, func(tx *sql.Tx, heads []int) error {
			params := make([]river.InsertManyParams, len(heads))
			for i, num := range heads {
				params[i] = river.InsertManyParams{Args: rowArgs{RunID: runID, Row: num}}
			}
			_, err := e.queue.InsertManyTx(ctx, tx, params)
			return err
		})
		if err != nil {
			return fmt.Errorf("bulk: queue rows of run %d: %w", runID, err)
		}
	}
	// A run without valid rows, or whose rows all ended while it was
	// being queued, has nothing more to wait for.
	if done, err := e.db.FinishRunIfDone(ctx, runID); err != nil {
		return err
	} else if done {
		e.forget(runID)
	}
	return nil
}

// targetOf names what a stored action acts on, for ordering: rows with the
// same target run one after another in file order. Ratings, comments and
// solves act on a ticket; a new request on its end user (whose newest
// requests the re-check reads).
func targetOf(k actions.Kind, data []byte) string {
	a, err := decodeAction(k, data)
	if err != nil {
		return ""
	}
	if id := a.TicketID(); id > 0 {
		return "ticket:" + strconv.FormatInt(id, 10)
	}
	return "user:" + strings.ToLower(strings.TrimSpace(a.EndUser()))
}

// errRunCancelled is the cause given to the contexts of rows being worked
// when their run is cancelled.
var errRunCancelled = fmt.Errorf("%w: the run was cancelled", actions.ErrStopped)

// Cancel cancels a run on behalf of by (any admin may: it is a brake). Its
// rows that are not in flight are skipped ("Cancelled by <admin>.") and
// their queued jobs removed, in one transaction; rows of the run that
// workers of this process hold (waiting in the throttle, reading) are
// stopped at once. A row whose write is already on its way is left to its
// worker, which records what Zendesk answered: the result counts them
// (InFlight), and the run page says "Cancelling…" until they end. No other
// write of the run starts after Cancel returns, on any replica: every write
// passes the store's send gate (store.BeginWrite) first.
func (e *Engine) Cancel(ctx context.Context, runID int64, by actions.Admin) (store.CancelResult, error) {
	reason := fmt.Sprintf("Cancelled by %s.", by.Name)
	res, err := e.db.CancelRun(ctx, runID, store.Actor{ID: by.ID, Name: by.Name}, reason, func(tx *sql.Tx) error {
		return e.dropJobs(ctx, tx, runID)
	})
	if err != nil {
		return res, fmt.Errorf("bulk: cancel run %d: %w", runID, err)
	}
	e.stopRows(runID)
	if res.InFlight == 0 {
		e.forget(runID)
	}
	return res, nil
}

// dropJobs deletes the queued jobs (not the running ones) of run runID
// inside tx. River keeps the arguments as JSON; the predicate is the one
// place that reads them, in each database's syntax.
func (e *Engine) dropJobs(ctx context.Context, tx *sql.Tx, runID int64) error {
	pred := "args ->> '$.run_id' = @run_id"
	if e.db.Dialect() == "postgres" {
		pred = "(args->>'run_id')::bigint = @run_id"
	}
	const batch = 10000
	for {
		res, err := e.queue.JobDeleteManyTx(ctx, tx, river.NewJobDeleteManyParams().First(batch).
			Kinds(rowArgs{}.Kind()).Where(pred, river.NamedArgs{"run_id": runID}))
		if err != nil {
			return err
		}
		if len(res.Jobs) < batch {
			return nil
		}
	}
}

// Progress is what the progress page shows.
type Progress struct {
	Run    store.Run
	Counts store.RunCounts
	// RatePerMinute is the rate the throttle keeps to now.
	RatePerMinute float64
	// ETA estimates the time left: the remaining rows' calls at the
	// throttle's rate plus any Retry-After in force (on any replica), or,
	// once the run has been going a while, the remaining rows at the pace
	// it has kept so far when that is slower: the waits Zendesk asked for
	// earlier are likely to come again. Zero when nothing is left or the
	// run is not running.
	ETA time.Duration
}

// etaSettle is how long a run goes before its own pace counts in its ETA.
const etaSettle = 10 * time.Second

// callsPerRow is about how many Zendesk calls a row of kind k costs:
// ratings read in batches of 100; comments and solves read the request as
// the user; a solve reads it back after the write.
func callsPerRow(k actions.Kind) float64 {
	switch k {
	case actions.KindComment:
		return 2
	case actions.KindSolve:
		return 3
	case actions.KindCreateRequest:
		return 1.01
	}
	return 1.02
}

// Progress returns the run's counts and an estimate of the time left.
func (e *Engine) Progress(ctx context.Context, runID int64) (Progress, error) {
	run, err := e.db.FindRunByID(ctx, runID)
	if err != nil {
		return Progress{}, fmt.Errorf("bulk: progress of run %d: %w", runID, err)
	}
	c, err := e.db.RunCounts(ctx, runID)
	if err != nil {
		return Progress{}, fmt.Errorf("bulk: progress of run %d: %w", runID, err)
	}
	p := Progress{Run: *run, Counts: c, RatePerMinute: e.throttle.RatePerMinute()}
	switch run.State {
	case store.RunQueued, store.RunRunning:
		if left := c.Remaining(); left > 0 && p.RatePerMinute > 0 {
			calls := float64(left) * callsPerRow(actions.Kind(run.Kind))
			p.ETA = time.Duration(calls/p.RatePerMinute*float64(time.Minute)) + e.throttle.PauseLeft(ctx)
			ended := c.Done + c.Failed + c.Skipped
			if el := e.now().Sub(run.StartedAt); !run.StartedAt.IsZero() && el >= etaSettle && ended >= 20 {
				p.ETA = max(p.ETA, time.Duration(float64(el)/float64(ended)*float64(left)))
			}
		}
	}
	return p, nil
}

// RetryFailed starts a new run, in preview, from the failed rows of runID,
// for admin with grantID. The rows keep their numbers and cells, so the new
// results line up with the original file. It returns the new run's id, or
// ErrNoFailedRows.
func (e *Engine) RetryFailed(ctx context.Context, runID int64, admin actions.Admin, grantID int64) (int64, error) {
	return RetryRows(ctx, e.db, runID, admin, grantID, false)
}

// StoreRows converts rows Read emitted into rows for the store (the action
// as JSON; the run's kind says which type it is).
func StoreRows(rows []Row) ([]store.RunRow, error) {
	out := make([]store.RunRow, len(rows))
	for i, r := range rows {
		sr := store.RunRow{Number: r.Number, Cells: r.Cells, Valid: r.Action != nil, Errors: r.Errors,
			Key: r.Key, Duplicate: r.Duplicate}
		if r.Action != nil {
			b, err := json.Marshal(r.Action)
			if err != nil {
				return nil, fmt.Errorf("bulk: encode row %d: %w", r.Number, err)
			}
			sr.Action = b
		}
		out[i] = sr
	}
	return out, nil
}

// decodeAction reads a stored action of kind k.
func decodeAction(k actions.Kind, data []byte) (actions.Action, error) {
	var a actions.Action
	var err error
	switch k {
	case actions.KindRate:
		var v actions.Rate
		err = json.Unmarshal(data, &v)
		a = v
	case actions.KindCreateRequest:
		var v actions.CreateRequest
		err = json.Unmarshal(data, &v)
		a = v
	case actions.KindComment:
		var v actions.Comment
		err = json.Unmarshal(data, &v)
		a = v
	case actions.KindSolve:
		var v actions.Solve
		err = json.Unmarshal(data, &v)
		a = v
	default:
		return nil, fmt.Errorf("bulk: unknown action %q", k)
	}
	if err != nil {
		return nil, fmt.Errorf("bulk: decode %s action: %w", k, err)
	}
	return a, nil
}

// Import reads a CSV for a new run (in preview) and stores it with its rows
// in one transaction: a file found bad half-way leaves nothing behind.
// run must carry AdminID, AdminName, GrantID, Kind and FileName; its ID,
// Header, Mapping, Delimiter and counts are set.
func Import(ctx context.Context, db *store.DB, run *store.Run, r io.Reader, opt Options) (Summary, error) {
	var sum Summary
	err := db.CreateRunWithRows(ctx, run, func(add func([]store.RunRow) error) error {
		var err error
		sum, err = Read(r, actions.Kind(run.Kind), opt, func(batch []Row) error {
			rows, err := StoreRows(batch)
			if err != nil {
				return err
			}
			return add(rows)
		})
		if err != nil {
			return err
		}
		run.Header = sum.Header
		run.Mapping = make(map[string]int, len(sum.Mapping))
		for f, i := range sum.Mapping {
			run.Mapping[string(f)] = i
		}
		run.Delimiter = string(sum.Delimiter)
		return nil
	})
	return sum, err
}

// runState is what workers share about one run: the admin's Zendesk client
// and the Batch lookup filled ahead 100 rows at a time.
type runState struct {
	grantID int64
	zc      *zendesk.Client
	batch   *actions.Batch
	runner  *actions.Runner

	prefetch singleflight.Group
	mu       sync.Mutex
	fetched  map[int]bool // chunk -> prefetched

	// used is when a row last asked for it (UnixNano); see dropIdleRuns.
	used atomic.Int64
}

// state returns the shared state of run, rebuilt when the run switched to a
// new grant (the admin logged in again).
func (e *Engine) state(run *store.Run) (*runState, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if rs, ok := e.runs[run.ID]; ok && rs.grantID == run.GrantID {
		rs.used.Store(time.Now().UnixNano())
		return rs, nil
	}
	// A write that is sent finishes even if the job's deadline passes,
	// within writeTimeout, so River's own rescuer (after the job timeout,
	// the write timeout and the rescue threshold) never hands the row to
	// another worker while its write may still be answered.
	opts := []zendesk.Option{zendesk.WithLimiter(e.throttle), zendesk.WithUserAgent("onbehalf-bulk"),
		zendesk.WithWriteTimeout(e.writeTimeout)}
	if e.httpClient != nil {
		opts = append(opts, zendesk.WithHTTPClient(e.httpClient))
	}
	zc, err := zendesk.New(e.zendeskURL, grantSource{e.db.TokenSource(run.GrantID, e.refresh)}, opts...)
	if err != nil {
		return nil, fmt.Errorf("bulk: zendesk client for run %d: %w", run.ID, err)
	}
	rs := &runState{
		grantID: run.GrantID,
		zc:      zc,
		batch:   actions.NewBatch(zc),
		runner: &actions.Runner{Zendesk: zc, Audit: e.db, Admin: actions.Admin{ID: run.AdminID, Name: run.AdminName},
			Now: e.now},
		fetched: make(map[int]bool),
	}
	rs.used.Store(time.Now().UnixNano())
	e.runs[run.ID] = rs
	return rs, nil
}

// grantSource is a run's token source. A grant that no longer exists (a
// web request found Zendesk no longer honours it, and deleted it) is a
// sign-in to renew, which pauses the run until its admin logs in again,
// not an unexpected error that would fail every row left.
type grantSource struct{ src oauth2.TokenSource }

func (g grantSource) Token() (*oauth2.Token, error) {
	t, err := g.src.Token()
	return t, grantGone(err)
}

// ReloadToken implements zendesk.TokenReloader.
func (g grantSource) ReloadToken(ctx context.Context, stale *oauth2.Token) (*oauth2.Token, error) {
	r, ok := g.src.(zendesk.TokenReloader)
	if !ok {
		return g.Token()
	}
	t, err := r.ReloadToken(ctx, stale)
	return t, grantGone(err)
}

func grantGone(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: the sign-in was deleted: %w", zendesk.ErrTokenInvalid, err)
	}
	return err
}

// dropIdleRuns forgets the shared state of runs no row of this engine has
// asked for in runIdle. A run whose last row ended here is forgotten at once
// (forget); one that ended on another replica, or that waits paused, only
// this way. A row still working keeps the state it holds; the next row of
// the run builds it again.
func (e *Engine) dropIdleRuns() {
	before := time.Now().Add(-e.runIdle).UnixNano()
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, rs := range e.runs {
		if rs.used.Load() < before {
			delete(e.runs, id)
		}
	}
}

// forget drops a finished run's shared state.
func (e *Engine) forget(runID int64) {
	e.mu.Lock()
	delete(e.runs, runID)
	e.mu.Unlock()
}

// PreflightSummary is what a pre-flight found.
type PreflightSummary struct {
	// Checked counts the valid rows checked; Failing those that would be
	// refused; Unchecked those Zendesk could not answer for right now.
	Checked, Failing, Unchecked int
	// First lists the first problems found, in row order.
	First []RowProblem
}

// RowProblem is why one row would fail.
type RowProblem struct {
	Number  int
	Message string
}

// maxFirstProblems bounds PreflightSummary.First.
const maxFirstProblems = 20

// Preflight checks every valid row of a run against Zendesk without
// changing anything, and records the reason each failing row would fail
// (store.SetRowPreflight). Users and tickets are read in batches of 100
// (show_many); comments and solves also read each request as its user,
// one call per row, since only that read tells whether the user may act on
// it (zendesk-api.md §3.1).
func (e *Engine) Preflight(ctx context.Context, runID int64) (PreflightSummary, error) {
	run, err := e.db.FindRunByID(ctx, runID)
	if err != nil {
		return PreflightSummary{}, fmt.Errorf("bulk: preflight run %d: %w", runID, err)
	}
	rs, err := e.state(run)
	if err != nil {
		return PreflightSummary{}, fmt.Errorf("bulk: preflight run %d: %w", runID, err)
	}
	kind := actions.Kind(run.Kind)
	var sum PreflightSummary
	errs := make(map[int]string)
	var chunk []store.RunRow
	check := func() error {
		var users []string
		var tickets []int64
		acts := make([]actions.Action, len(chunk))
		for i, r := range chunk {
			a, err := decodeAction(kind, r.Action)
			if err != nil {
				return err
			}
			acts[i] = a
			users = append(users, a.EndUser())
			if id := a.TicketID(); id > 0 {
				tickets = append(tickets, id)
			}
		}
		if err := rs.batch.Prefetch(ctx, users, tickets); err != nil {
			return err
		}
		for i, r := range chunk {
			sum.Checked++
			_, err := rs.runner.Preflight(ctx, acts[i], rs.batch)
			if err == nil {
				continue
			}
			ref := actions.Explain(err)
			if ref.Temporary() || ref.Code == actions.CodeLoginExpired {
				sum.Unchecked++
				continue
			}
			sum.Failing++
			errs[r.Number] = ref.Message
			if len(sum.First) < maxFirstProblems {
				sum.First = append(sum.First, RowProblem{Number: r.Number, Message: ref.Message})
			}
		}
		chunk = chunk[:0]
		return nil
	}
	err = e.db.EachRunRow(ctx, runID, func(r store.RunRow) error {
		if !r.Valid {
			return nil
		}
		chunk = append(chunk, r)
		if len(chunk) == prefetchChunk {
			return check()
		}
		return nil
	})
	if err == nil && len(chunk) > 0 {
		err = check()
	}
	if err != nil {
		return sum, fmt.Errorf("bulk: preflight run %d: %w", runID, err)
	}
	if err := e.db.SetRowPreflight(ctx, runID, errs); err != nil {
		return sum, fmt.Errorf("bulk: preflight run %d: %w", runID, err)
	}
	return sum, nil
}
