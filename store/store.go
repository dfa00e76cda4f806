package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Error kinds returned by the store, checked with errors.Is. Every error the
// store returns wraps at most one of them and names the operation, for example
// "store: find grant 3: not found".
var (
	// ErrNotFound means the record does not exist (or has expired).
	ErrNotFound = errors.New("not found")
	// ErrConflict means a concurrent change won: the record moved on under us.
	ErrConflict = errors.New("conflict")
	// ErrInvalid means the caller passed a value the store refuses to keep.
	ErrInvalid = errors.New("invalid")
	// ErrDecrypt means a stored secret could not be decrypted: SECRET_KEY
	// changed, or the row was tampered with or moved to another grant. The
	// only way forward is for the admin to log in again.
	ErrDecrypt = errors.New("cannot decrypt stored token (SECRET_KEY changed or row tampered with)")
)

// MinSecretKeyLen is the shortest SecretKey Open accepts, in bytes.
const MinSecretKeyLen = 32

// Options configures Open.
type Options struct {
	// Logger receives migration and maintenance messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests inject it to expire
	// sessions and tokens without sleeping.
	Now func() time.Time
	// SecretKey is the application secret (at least MinSecretKeyLen bytes).
	// Purpose-specific keys are derived from it with HKDF, so the cookie
	// signing key and the token encryption key are independent.
	SecretKey []byte
}

// DB is onbehalf's SQL state: sessions, grants and the audit trail. It is
// safe for concurrent use.
type DB struct {
	db        *sql.DB
	driverDSN string
	dialect   dialect
	log       *slog.Logger
	now       func() time.Time

	cookieKey []byte
	grantAEAD cipher.AEAD

	// refreshes collapses concurrent refreshes of one grant inside this
	// process; the lease in the grants row does the same across processes.
	refreshes singleflight.Group

	// mu guards closed; flights counts refreshes still running in the
	// background so Close can let them save the rotated pair first;
	// closing tells flights that are merely waiting to give up.
	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	flights sync.WaitGroup

	// hooks are set by this package's tests only.
	hooks testHooks
}

// testHooks let this package's tests act at the moment where a race between
// two transactions would do harm, instead of hoping a scheduler produces
// it. All are nil outside tests.
type testHooks struct {
	// recheckChecked runs in RecheckRun, in its transaction, once the
	// run was seen in preview and before anything is written.
	recheckChecked func(tx *sql.Tx)
	// resumeBetween runs in ResumeRunsForAdmin, in its transaction,
	// between its two statements.
	resumeBetween func(tx *sql.Tx)
}

// Open connects to the database named by dsn, applies pending migrations and
// returns the handle.
//
// dsn is "sqlite:<path>" or a bare file path for SQLite, or a
// "postgres://…" / "postgresql://…" URL for PostgreSQL. SQLite is opened in
// WAL mode with a 10 s busy timeout, foreign keys on, and every transaction
// begun IMMEDIATE: a deferred transaction that reads and then writes can fail
// with SQLITE_BUSY at the upgrade without waiting, while an immediate one takes
// the write lock up front and simply queues behind the current writer; within
// the process writers queue in Go rather than in SQLite's busy handler, and
// statements stay prepared (sqlitedriver.go).
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	if len(opts.SecretKey) < MinSecretKeyLen {
		return nil, fmt.Errorf("store: open: secret key is %d bytes, need at least %d: %w",
			len(opts.SecretKey), MinSecretKeyLen, ErrInvalid)
	}
	d, driverDSN, err := parseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	cookieKey, err := deriveKey(opts.SecretKey, "cookie")
	if err != nil {
		return nil, fmt.Errorf("store: open: derive cookie key: %w", err)
	}
	grantKey, err := deriveKey(opts.SecretKey, "grant-tokens")
	if err != nil {
		return nil, fmt.Errorf("store: open: derive grant key: %w", err)
	}
	block, err := aes.NewCipher(grantKey)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}

	var sqldb *sql.DB
	if d.name == "sqlite" {
		// See sqlitedriver.go: statements kept prepared, writers queued.
		conn, err := newSQLiteConnector(driverDSN)
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", d.name, err)
		}
		sqldb = sql.OpenDB(conn)
	} else if sqldb, err = sql.Open(d.driver, driverDSN); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", d.name, err)
	}
	d.configurePool(sqldb)

	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	db := &DB{
		db:        sqldb,
		driverDSN: driverDSN,
		dialect:   d,
		log:       logger,
		now:       now,
		cookieKey: cookieKey,
		grantAEAD: aead,
		closing:   make(chan struct{}),
	}
	if err := db.migrate(ctx); err != nil {
		sqldb.Close()
		return nil, err
	}
	return db, nil
}

// Close waits for background token refreshes that are talking to Zendesk to
// save their result (at most about 40 s), stops those that are only waiting
// for another process, then closes the database.
func (db *DB) Close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	close(db.closing)
	db.mu.Unlock()
	db.flights.Wait()
	if err := db.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// SQL returns the underlying handle, for components (the job queue) that
// need to share the database and its transactions.
func (db *DB) SQL() *sql.DB { return db.db }

// Dialect reports the database kind: "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.dialect.name }

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// exec, query and queryRow rebind `?` placeholders for the dialect, so every
// statement in this package is written once. They need no statement cache of
// their own: each connection keeps the statements it ran prepared, on SQLite
// in sqliteConn (which also covers statements in transactions and River's),
// on PostgreSQL in pgx's per-connection cache.
func (db *DB) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return db.db.ExecContext(ctx, db.dialect.rebind(q), args...)
}

func (db *DB) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return db.db.QueryContext(ctx, db.dialect.rebind(q), args...)
}

func (db *DB) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return db.db.QueryRowContext(ctx, db.dialect.rebind(q), args...)
}

// deriveKey derives a 256-bit key for one purpose from the application
// secret, so that a key used for one job can never be replayed in another.
func deriveKey(secret []byte, purpose string) ([]byte, error) {
	return hkdf.Key(sha256.New, secret, nil, purpose, 32)
}

// Times are stored as Unix microseconds in integer columns: SQLite has no
// timestamp type (modernc writes time.Time as text whose fractional part
// varies in length, which breaks comparisons), and integers compare the same
// way in every dialect.
func toDBTime(t time.Time) int64 { return t.UnixMicro() }

func fromDBTime(us int64) time.Time { return time.UnixMicro(us).UTC() }
