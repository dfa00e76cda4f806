package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The SQLite connections this package opens go through sqliteConnector, a
// thin layer over modernc's driver that does two things the driver does not,
// for every statement on the handle: the store's own, those inside its
// transactions, and those of the job queue (River), which shares the handle.
//
//   - It keeps each connection's statements prepared. modernc parses the SQL
//     text again on every call that is not made on a prepared statement, and
//     parsing was a fifth to a third of the CPU a bulk row cost. Each
//     connection keeps its most recently used statements (at most
//     sqliteStmtCacheSize), keyed by their text. PostgreSQL needs no such layer: pgx already
//     prepares and caches each statement per connection (its default
//     QueryExecModeCacheStatement).
//
//   - It queues writers in Go. SQLite lets one writer in at a time; a
//     connection that finds the write lock taken sleeps in the busy handler
//     (1, 2, 5, … up to 100 ms) and looks again, so with twenty workers the
//     lock sat idle much of the time while they slept. Here a write — a
//     transaction (all begin IMMEDIATE, see Open) or a statement outside one
//     that is not a SELECT — first takes the process's write turn, a
//     one-slot channel whose waiters are woken in order the moment it is
//     free. The turn is an optimisation, never a second lock that could
//     deadlock: after sqliteWriteWait (the busy timeout) a writer goes ahead
//     without it and SQLite's own lock decides, as before. Other processes
//     (and other handles opened on the same file) still meet only SQLite's
//     lock.

// sqliteStmtCacheSize bounds the statements one connection keeps prepared.
// The store and River use fewer than a hundred distinct texts; the bound
// only keeps one-off texts (migrations) from piling up.
const sqliteStmtCacheSize = 128

// sqliteWriteWait is the longest a writer waits for the write turn before
// it goes ahead and lets SQLite's busy timeout (sqlitePragmas) decide.
const sqliteWriteWait = 10 * time.Second

// sqliteConnector opens modernc connections wrapped in sqliteConn. All
// connections of one store share one write turn.
type sqliteConnector struct {
	inner driver.Connector
	turn  *writeTurn
}

// writeTurn is the one-slot queue writers of one store wait in; wait is
// sqliteWriteWait except in tests.
type writeTurn struct {
	slot chan struct{}
	wait time.Duration
}

func newSQLiteConnector(dsn string) (*sqliteConnector, error) {
	if err := ownerOnlyFiles(dsn); err != nil {
		return nil, err
	}
	inner, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, err
	}
	return &sqliteConnector{inner: inner, turn: &writeTurn{slot: make(chan struct{}, 1), wait: sqliteWriteWait}}, nil
}

// Connect implements driver.Connector. Opening a connection runs the
// pragmas, and on a new file journal_mode(WAL) needs the exclusive lock;
// when two connections (two processes starting together) both hold the
// shared lock and want it, SQLite answers SQLITE_BUSY at once rather than
// call the busy handler, which could deadlock. Connect tries again, with a
// short growing pause, for up to the busy timeout.
func (c *sqliteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	deadline := time.Now().Add(sqliteWriteWait)
	for pause := time.Millisecond; err != nil && isSQLiteBusy(err) && time.Now().Before(deadline); pause = min(2*pause, 100*time.Millisecond) {
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(pause):
		}
		conn, err = c.inner.Connect(ctx)
	}
	if err != nil {
		return nil, err
	}
	ic, ok := conn.(sqliteDriverConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("sqlite driver connection %T lacks the context methods", conn)
	}
	return &sqliteConn{inner: ic, turn: c.turn, stmts: make(map[string]*cachedStmt)}, nil
}

// isSQLiteBusy reports whether err is SQLite's SQLITE_BUSY (any of its
// extended codes).
func isSQLiteBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// Driver implements driver.Connector.
func (c *sqliteConnector) Driver() driver.Driver { return c.inner.Driver() }

// sqliteDriverConn is what sqliteConn needs of modernc's connection.
type sqliteDriverConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// sqliteDriverStmt is what sqliteConn needs of modernc's statements.
type sqliteDriverStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// sqliteConn is one connection. database/sql uses a connection from one
// goroutine at a time (its rows included), so its fields need no lock.
type sqliteConn struct {
	inner sqliteDriverConn
	turn  *writeTurn

	stmts map[string]*cachedStmt
	clock uint64
	// inTx is set while a transaction is open on the connection; its
	// statements run under the turn the transaction took, if any
	// (holding), and never take it again.
	inTx    bool
	holding bool
}

// cachedStmt is a prepared statement kept by its connection. busy is set
// while rows read from it are open: the same text run again meanwhile (a
// nested query in a transaction) gets a statement of its own.
type cachedStmt struct {
	stmt sqliteDriverStmt
	used uint64
	busy bool
}

var (
	_ driver.Conn               = (*sqliteConn)(nil)
	_ driver.ConnBeginTx        = (*sqliteConn)(nil)
	_ driver.ConnPrepareContext = (*sqliteConn)(nil)
	_ driver.ExecerContext      = (*sqliteConn)(nil)
	_ driver.QueryerContext     = (*sqliteConn)(nil)
	_ driver.Pinger             = (*sqliteConn)(nil)
	_ driver.SessionResetter    = (*sqliteConn)(nil)
	_ driver.Validator          = (*sqliteConn)(nil)
)

// acquire takes the write turn for a write outside a transaction, and
// returns what gives it back (a no-op when none was taken).
func (c *sqliteConn) acquire(ctx context.Context, query string) (func(), error) {
	if c.inTx || !isWrite(query) {
		return func() {}, nil
	}
	took, err := c.turn.take(ctx)
	if err != nil || !took {
		return func() {}, err
	}
	return c.turn.give, nil
}

// take waits for the turn; it reports false, with no error, when t.wait
// passed first.
func (t *writeTurn) take(ctx context.Context) (bool, error) {
	select {
	case t.slot <- struct{}{}:
		return true, nil
	default:
	}
	timer := time.NewTimer(t.wait)
	defer timer.Stop()
	select {
	case t.slot <- struct{}{}:
		return true, nil
	case <-timer.C:
		return false, nil
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// give hands the turn to the next writer.
func (t *writeTurn) give() { <-t.slot }

// isWrite reports whether a statement outside a transaction may write:
// anything but a plain SELECT, after leading comments (River's statements
// open with "-- name: …"). A CTE (WITH …) may lead an UPDATE, so it counts
// as a write; taking the turn for a read costs only a wait.
func isWrite(query string) bool {
	q := query
	for {
		q = strings.TrimLeft(q, " \t\r\n(")
		switch {
		case strings.HasPrefix(q, "--"):
			_, rest, ok := strings.Cut(q, "\n")
			if !ok {
				return true
			}
			q = rest
			continue
		case strings.HasPrefix(q, "/*"):
			_, rest, ok := strings.Cut(q, "*/")
			if !ok {
				return true
			}
			q = rest
			continue
		}
		return len(q) < 6 || !strings.EqualFold(q[:6], "select")
	}
}

// prepared returns the connection's prepared statement for query,
// preparing it if needed, or nil when the cached one is busy.
func (c *sqliteConn) prepared(ctx context.Context, query string) (*cachedStmt, error) {
	c.clock++
	if cs, ok := c.stmts[query]; ok {
		if cs.busy {
			return nil, nil
		}
		cs.used = c.clock
		return cs, nil
	}
	ds, err := c.inner.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s, ok := ds.(sqliteDriverStmt)
	if !ok {
		ds.Close()
		return nil, nil
	}
	if len(c.stmts) >= sqliteStmtCacheSize && !c.evict() {
		// Every kept statement has rows open: use this one once.
		return &cachedStmt{stmt: &closeAfterUse{s}, used: c.clock}, nil
	}
	cs := &cachedStmt{stmt: s, used: c.clock}
	c.stmts[query] = cs
	return cs, nil
}

// evict closes the least recently used statement that has no rows open.
func (c *sqliteConn) evict() bool {
	var oldest string
	var found *cachedStmt
	for q, cs := range c.stmts {
		if !cs.busy && (found == nil || cs.used < found.used) {
			oldest, found = q, cs
		}
	}
	if found == nil {
		return false
	}
	delete(c.stmts, oldest)
	found.stmt.Close()
	return true
}

// ExecContext implements driver.ExecerContext.
func (c *sqliteConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	release, err := c.acquire(ctx, query)
	if err != nil {
		return nil, err
	}
	defer release()
	cs, err := c.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.inner.ExecContext(ctx, query, args)
	}
	return cs.stmt.ExecContext(ctx, args)
}

// QueryContext implements driver.QueryerContext. A write's turn is held
// until its rows are closed: SQLite holds its lock as long.
func (c *sqliteConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	release, err := c.acquire(ctx, query)
	if err != nil {
		return nil, err
	}
	cs, err := c.prepared(ctx, query)
	if err != nil {
		release()
		return nil, err
	}
	if cs == nil {
		rows, err := c.inner.QueryContext(ctx, query, args)
		if err != nil {
			release()
			return nil, err
		}
		return &sqliteRows{Rows: rows, done: release}, nil
	}
	cs.busy = true
	rows, err := cs.stmt.QueryContext(ctx, args)
	if err != nil {
		cs.busy = false
		release()
		return nil, err
	}
	return &sqliteRows{Rows: rows, done: func() { cs.busy = false; release() }}, nil
}

// PrepareContext implements driver.ConnPrepareContext. The caller owns the
// statement (it is not kept); its writes outside a transaction take the
// write turn too.
func (c *sqliteConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	ds, err := c.inner.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	s, ok := ds.(sqliteDriverStmt)
	if !ok {
		return ds, nil
	}
	return &sqliteStmt{sqliteDriverStmt: s, c: c, query: query}, nil
}

// Prepare implements driver.Conn.
func (c *sqliteConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

// BeginTx implements driver.ConnBeginTx. A read-write transaction (begun
// IMMEDIATE: it takes SQLite's write lock at once) takes the write turn
// first and holds it until it ends.
func (c *sqliteConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	took := false
	if !opts.ReadOnly {
		var err error
		if took, err = c.turn.take(ctx); err != nil {
			return nil, err
		}
	}
	tx, err := c.inner.BeginTx(ctx, opts)
	if err != nil {
		if took {
			c.turn.give()
		}
		return nil, err
	}
	c.inTx, c.holding = true, took
	return &sqliteTx{inner: tx, c: c}, nil
}

// Begin implements driver.Conn.
func (c *sqliteConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

// endTx gives back the turn the transaction held.
func (c *sqliteConn) endTx() {
	if c.holding {
		c.turn.give()
	}
	c.inTx, c.holding = false, false
}

// Close implements driver.Conn.
func (c *sqliteConn) Close() error {
	var errs []error
	for q, cs := range c.stmts {
		errs = append(errs, cs.stmt.Close())
		delete(c.stmts, q)
	}
	if c.inTx {
		c.endTx()
	}
	errs = append(errs, c.inner.Close())
	return errors.Join(errs...)
}

// Ping implements driver.Pinger.
func (c *sqliteConn) Ping(ctx context.Context) error { return c.inner.Ping(ctx) }

// ResetSession implements driver.SessionResetter.
func (c *sqliteConn) ResetSession(ctx context.Context) error { return c.inner.ResetSession(ctx) }

// IsValid implements driver.Validator.
func (c *sqliteConn) IsValid() bool { return c.inner.IsValid() }

// sqliteTx ends the connection's transaction and gives back its turn.
type sqliteTx struct {
	inner driver.Tx
	c     *sqliteConn
}

func (t *sqliteTx) Commit() error {
	defer t.c.endTx()
	return t.inner.Commit()
}

func (t *sqliteTx) Rollback() error {
	defer t.c.endTx()
	return t.inner.Rollback()
}

// sqliteStmt is a statement a caller prepared; its writes outside a
// transaction take the write turn.
type sqliteStmt struct {
	sqliteDriverStmt
	c     *sqliteConn
	query string
}

func (s *sqliteStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	release, err := s.c.acquire(ctx, s.query)
	if err != nil {
		return nil, err
	}
	defer release()
	return s.sqliteDriverStmt.ExecContext(ctx, args)
}

func (s *sqliteStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	release, err := s.c.acquire(ctx, s.query)
	if err != nil {
		return nil, err
	}
	rows, err := s.sqliteDriverStmt.QueryContext(ctx, args)
	if err != nil {
		release()
		return nil, err
	}
	return &sqliteRows{Rows: rows, done: release}, nil
}

// closeAfterUse is a statement used for one call and then closed, for when
// a connection cannot keep another.
type closeAfterUse struct{ sqliteDriverStmt }

func (s *closeAfterUse) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	defer s.sqliteDriverStmt.Close()
	return s.sqliteDriverStmt.ExecContext(ctx, args)
}

func (s *closeAfterUse) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := s.sqliteDriverStmt.QueryContext(ctx, args)
	if err != nil {
		s.sqliteDriverStmt.Close()
		return nil, err
	}
	return &sqliteRows{Rows: rows, done: func() { s.sqliteDriverStmt.Close() }}, nil
}

// sqliteRows runs done once when closed (after the driver's rows are), and
// passes on the column type information database/sql asks for.
type sqliteRows struct {
	driver.Rows
	done func()
}

func (r *sqliteRows) Close() error {
	err := r.Rows.Close()
	if r.done != nil {
		r.done()
		r.done = nil
	}
	return err
}

func (r *sqliteRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *sqliteRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *sqliteRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *sqliteRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}

func (r *sqliteRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

// ownerOnlyFiles makes the database file readable by the app's user alone
// (0600) before SQLite opens it: the file holds sessions, encrypted tokens
// and the audit trail. SQLite gives the WAL and shared-memory files the
// database file's mode, so they follow; any left from an earlier start with
// a wider mode are tightened too.
func ownerOnlyFiles(dsn string) error {
	path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("restrict %s to its owner: %w", p, err)
		}
	}
	return nil
}
