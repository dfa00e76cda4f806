package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// forEachDB runs f on a fresh SQLite database and, when TEST_DATABASE_URL is
// set, on a fresh schema of that PostgreSQL database, so one suite covers
// both dialects. f receives the DSN, which it may open more than once.
func forEachDB(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		f(t, newSQLiteDSN(t))
	})
	if base := os.Getenv("TEST_DATABASE_URL"); base != "" {
		t.Run("postgres", func(t *testing.T) {
			t.Parallel()
			f(t, newPostgresDSN(t, base))
		})
	}
}

func newSQLiteDSN(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "onbehalf.db")
}

// newPostgresDSN creates a schema of its own for the test, drops it at
// cleanup, and returns base pointed at it through search_path.
func newPostgresDSN(t *testing.T, base string) string {
	t.Helper()
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", base, err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 8)
	rand.Read(b)
	schema := "store_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse TEST_DATABASE_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func testKey() []byte { return bytes.Repeat([]byte("k"), 32) }

// mustOpen opens dsn with the test key (unless opts has one) and closes it at
// cleanup.
func mustOpen(t *testing.T, dsn string, opts Options) *DB {
	t.Helper()
	if opts.SecretKey == nil {
		opts.SecretKey = testKey()
	}
	db, err := Open(t.Context(), dsn, opts)
	if err != nil {
		t.Fatalf("Open(%q): %v", dsn, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// testClock is a settable clock for Options.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustCount(t *testing.T, db *DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.queryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestOpenMigrationsIdempotent(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		files, err := migrationFiles.ReadDir("migrations/sqlite")
		if err != nil {
			t.Fatal(err)
		}
		db1 := mustOpen(t, dsn, Options{})
		db2 := mustOpen(t, dsn, Options{}) // second Open finds everything applied
		for _, db := range []*DB{db1, db2} {
			if got := mustCount(t, db, `SELECT COUNT(*) FROM schema_migrations`); got != len(files) {
				t.Errorf("schema_migrations has %d rows, want %d", got, len(files))
			}
		}
		// The schema is usable from both handles.
		if err := db2.CreateAuditEvent(t.Context(), &AuditEvent{Action: "x", Outcome: OutcomeOK}); err != nil {
			t.Fatalf("CreateAuditEvent after reopen: %v", err)
		}
		if err := db1.Ping(t.Context()); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
}

func TestOpenConcurrentFirstOpen(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		// Two processes starting together on an empty database must not
		// both apply the migrations (the second would fail on CREATE TABLE).
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				db, err := Open(t.Context(), dsn, Options{SecretKey: testKey()})
				if err == nil {
					err = db.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Open #%d: %v", i, err)
			}
		}
	})
}

func TestOpenRejectsShortKey(t *testing.T) {
	t.Parallel()
	_, err := Open(t.Context(), newSQLiteDSN(t), Options{SecretKey: make([]byte, 31)})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Open with 31-byte key: err = %v, want ErrInvalid", err)
	}
}

func TestOpenSQLitePragmas(t *testing.T) {
	t.Parallel()
	db := mustOpen(t, newSQLiteDSN(t), Options{})
	for _, tc := range []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"busy_timeout", "10000"},
		{"foreign_keys", "1"},
	} {
		var got string
		if err := db.SQL().QueryRow("PRAGMA " + tc.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %q, want %q", tc.pragma, got, tc.want)
		}
	}
}

func TestParseDSN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dsn         string
		wantDialect string
		wantPrefix  string // of the driver DSN
		wantErr     bool
	}{
		{dsn: "sqlite:data/onbehalf.db", wantDialect: "sqlite", wantPrefix: "data/onbehalf.db?_pragma="},
		{dsn: "sqlite:///var/lib/x.db", wantDialect: "sqlite", wantPrefix: "/var/lib/x.db?_pragma="},
		{dsn: "/tmp/x.db", wantDialect: "sqlite", wantPrefix: "/tmp/x.db?_pragma="},
		{dsn: "file:/tmp/x.db?cache=private", wantDialect: "sqlite", wantPrefix: "file:/tmp/x.db?cache=private&_pragma="},
		{dsn: "postgres://u@127.0.0.1/db", wantDialect: "postgres", wantPrefix: "postgres://u@127.0.0.1/db"},
		{dsn: "postgresql://u@127.0.0.1/db", wantDialect: "postgres", wantPrefix: "postgresql://u@127.0.0.1/db"},
		{dsn: "", wantErr: true},
		{dsn: "sqlite:", wantErr: true},
		{dsn: "sqlite::memory:", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.dsn, func(t *testing.T) {
			t.Parallel()
			d, got, err := parseDSN(tc.dsn)
			if tc.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("parseDSN(%q) err = %v, want ErrInvalid", tc.dsn, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseDSN(%q): %v", tc.dsn, err)
			}
			if d.name != tc.wantDialect || !strings.HasPrefix(got, tc.wantPrefix) {
				t.Errorf("parseDSN(%q) = %s, %q; want %s, prefix %q", tc.dsn, d.name, got, tc.wantDialect, tc.wantPrefix)
			}
			if d.name == "sqlite" && !strings.Contains(got, "_txlock=immediate") {
				t.Errorf("SQLite DSN %q lacks _txlock=immediate", got)
			}
		})
	}
}

func TestRebind(t *testing.T) {
	t.Parallel()
	q := "SELECT a FROM t WHERE b = ? AND c IN (?, ?)"
	if got := sqliteDialect.rebind(q); got != q {
		t.Errorf("sqlite rebind = %q, want unchanged", got)
	}
	want := "SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)"
	if got := postgresDialect.rebind(q); got != want {
		t.Errorf("postgres rebind = %q, want %q", got, want)
	}
}

func TestSplitStatements(t *testing.T) {
	t.Parallel()
	body := `-- header comment;
CREATE TABLE a (
	x INTEGER -- trailing comment
);
-- only a comment
CREATE INDEX a_x ON a (x);

`
	want := []string{
		"-- header comment;\nCREATE TABLE a (\n\tx INTEGER -- trailing comment\n);",
		"-- only a comment\nCREATE INDEX a_x ON a (x);",
	}
	if diff := cmp.Diff(want, splitStatements(body)); diff != "" {
		t.Errorf("splitStatements (-want +got):\n%s", diff)
	}
}

func TestContextCancelledOpen(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Open(ctx, newSQLiteDSN(t), Options{SecretKey: testKey()}); err == nil {
		t.Fatal("Open with a cancelled context succeeded")
	}
}
