package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	_ "modernc.org/sqlite"             // registers the "sqlite" database/sql driver
)

// migrationFiles holds one folder of numbered .sql files per dialect; the
// schemas differ only where the dialects do (identity columns, BLOB/BYTEA).
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// dialect is the seam between the portable SQL in this package and the
// database it runs on. Statements are written once with `?` placeholders and
// INSERT … RETURNING, ON CONFLICT … DO UPDATE, which both SQLite (3.35+) and
// PostgreSQL accept; only placeholders, pool sizing, the migration lock and
// the DDL differ.
type dialect struct {
	name   string // "sqlite" or "postgres"
	driver string // database/sql driver name
	// dollar is true when placeholders are $1, $2, … instead of ?.
	dollar bool
	// migrationLock runs first inside the migration transaction so that
	// replicas starting together apply migrations one at a time. SQLite
	// needs none: its immediate transaction already holds the write lock.
	migrationLock string
}

var (
	sqliteDialect = dialect{name: "sqlite", driver: "sqlite"}
	// The advisory lock key is an arbitrary constant private to onbehalf.
	postgresDialect = dialect{name: "postgres", driver: "pgx", dollar: true,
		migrationLock: fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", migrationLockKey)}
)

// sqlitePragmas are appended to every SQLite DSN; see Open for why.
const sqlitePragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate"

// parseDSN picks the dialect for dsn and returns the driver's own DSN.
func parseDSN(dsn string) (dialect, string, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgresDialect, dsn, nil
	case strings.HasPrefix(dsn, "sqlite:"):
		dsn = strings.TrimPrefix(dsn, "sqlite:")
		dsn = strings.TrimPrefix(dsn, "//") // sqlite:///abs/path
	}
	if dsn == "" {
		return dialect{}, "", fmt.Errorf("empty database path: %w", ErrInvalid)
	}
	// Each pooled connection to ":memory:" would be a different database.
	if strings.Contains(dsn, ":memory:") || strings.Contains(dsn, "mode=memory") {
		return dialect{}, "", fmt.Errorf("in-memory SQLite is not supported (use a file in a temp dir): %w", ErrInvalid)
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return sqliteDialect, dsn + sep + sqlitePragmas, nil
}

// rebind rewrites `?` placeholders to `$n` for PostgreSQL. Statements in this
// package never contain a literal question mark, so a plain scan is enough.
func (d dialect) rebind(q string) string {
	if !d.dollar || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 8)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

func (d dialect) configurePool(db *sql.DB) {
	if d.name == "sqlite" {
		// Opening a SQLite connection re-runs the pragmas; keep the
		// connections we have instead of the default two idle ones, so a
		// burst of page loads does not churn connections. WAL lets them
		// all read at once; writers queue for the write turn
		// (sqlitedriver.go), then on the busy timeout.
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
		return
	}
	// Keep as many idle as may be open: with fewer, a busy bulk run (its
	// workers, River's completer and fetcher) closed and reopened
	// connections all the time, and each new one is a new server process
	// that prepares every statement again (pgx caches them per
	// connection). Connections idle for minutes are closed.
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(20)
	db.SetConnMaxIdleTime(5 * time.Minute)
}

// migrate applies, in name order and inside one transaction, every embedded
// migration of the dialect that schema_migrations does not list yet.
func (db *DB) migrate(ctx context.Context) error {
	dir := path.Join("migrations", db.dialect.name)
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)

	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: migrate: begin: %w", err)
	}
	defer tx.Rollback()
	if l := db.dialect.migrationLock; l != "" {
		if _, err := tx.ExecContext(ctx, l); err != nil {
			return fmt.Errorf("store: migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version TEXT PRIMARY KEY,
		applied_at BIGINT NOT NULL
	)`); err != nil {
		return fmt.Errorf("store: migrate: create schema_migrations: %w", err)
	}
	applied := map[string]bool{}
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("store: migrate: list applied: %w", err)
	}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("store: migrate: list applied: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: migrate: list applied: %w", err)
	}
	rows.Close()

	var done []string
	for _, name := range names {
		version := strings.TrimSuffix(name, ".sql")
		if applied[version] {
			continue
		}
		body, err := fs.ReadFile(migrationFiles, path.Join(dir, name))
		if err != nil {
			return fmt.Errorf("store: migrate %s: %w", version, err)
		}
		for _, stmt := range splitStatements(string(body)) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("store: migrate %s: %w", version, err)
			}
		}
		if _, err := tx.ExecContext(ctx, db.dialect.rebind(
			`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`),
			version, toDBTime(db.now())); err != nil {
			return fmt.Errorf("store: migrate %s: record: %w", version, err)
		}
		done = append(done, version)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: migrate: commit: %w", err)
	}
	if len(done) > 0 {
		db.log.Info("store: applied migrations", "dialect", db.dialect.name, "versions", done)
	}
	return nil
}

// splitStatements cuts a migration file at semicolons that end a line and
// drops pieces holding only comments. Running statements one by one avoids
// relying on each driver's multi-statement support. Procedural bodies hold
// semicolons of their own, so none ends a statement between $$ quotes (a
// PostgreSQL function) or between a line ending in BEGIN and a line reading
// END; (a SQLite trigger).
func splitStatements(body string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		s := strings.TrimSpace(cur.String())
		cur.Reset()
		if hasCode(s) {
			out = append(out, s)
		}
	}
	inDollar, inTrigger := false, false
	for line := range strings.Lines(body) {
		cur.WriteString(line)
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "--") {
			continue
		}
		if strings.Count(t, "$$")%2 == 1 {
			inDollar = !inDollar
		}
		u := strings.ToUpper(t)
		switch {
		case inDollar:
		case inTrigger:
			if u == "END;" {
				inTrigger = false
				flush()
			}
		case u == "BEGIN" || strings.HasSuffix(u, " BEGIN"):
			inTrigger = true
		case strings.HasSuffix(t, ";"):
			flush()
		}
	}
	flush()
	return out
}

func hasCode(s string) bool {
	for line := range strings.Lines(s) {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "--") {
			return true
		}
	}
	return false
}
