package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// newTestSQLite opens a bare SQLite handle through the store's connector,
// with the store's pragmas and wait as the write turn's patience.
func newTestSQLite(t *testing.T, wait time.Duration) (*sql.DB, *sqliteConnector) {
	t.Helper()
	_, dsn, err := parseDSN("sqlite:" + filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := newSQLiteConnector(dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn.turn.wait = wait
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if _, err := db.Exec(`CREATE TABLE kv (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	return db, conn
}

// keptStatements reports how many statements conn keeps prepared.
func keptStatements(t *testing.T, conn *sql.Conn) int {
	t.Helper()
	n := -1
	if err := conn.Raw(func(dc any) error {
		n = len(dc.(*sqliteConn).stmts)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSQLiteKeepsStatementsPrepared(t *testing.T) {
	t.Parallel()
	db, _ := newTestSQLite(t, sqliteWriteWait)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	before := keptStatements(t, conn)
	for i := range 50 {
		if _, err := conn.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, i, i*i); err != nil {
			t.Fatal(err)
		}
		var v int
		if err := conn.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = ?`, i).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != i*i {
			t.Fatalf("row %d: v = %d, want %d", i, v, i*i)
		}
	}
	if got := keptStatements(t, conn) - before; got != 2 {
		t.Errorf("100 calls of 2 statements left %d more statements prepared, want 2", got)
	}
}

func TestSQLiteSameStatementNestedInTx(t *testing.T) {
	t.Parallel()
	db, _ := newTestSQLite(t, sqliteWriteWait)
	for i := range 5 {
		if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES (?, ?)`, i, 10*i); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	const q = `SELECT k, v FROM kv WHERE k >= ? ORDER BY k`
	outer, err := tx.Query(q, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for outer.Next() {
		var k, v int
		if err := outer.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		// The same text while the outer rows are open: it must not reset
		// the statement the outer rows read from.
		inner, err := tx.Query(q, 3)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for inner.Next() {
			n++
		}
		if err := inner.Close(); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d=%d/%d", k, v, n))
	}
	if err := outer.Err(); err != nil {
		t.Fatal(err)
	}
	want := "[0=0/2 1=10/2 2=20/2 3=30/2 4=40/2]"
	if fmt.Sprint(got) != want {
		t.Errorf("nested reads = %v, want %s", got, want)
	}
}

func TestSQLiteStatementCacheBounded(t *testing.T) {
	t.Parallel()
	db, _ := newTestSQLite(t, sqliteWriteWait)
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for i := range sqliteStmtCacheSize + 40 {
		var n int
		if err := conn.QueryRowContext(ctx, fmt.Sprintf(`SELECT %d`, i)).Scan(&n); err != nil || n != i {
			t.Fatalf("SELECT %d = %d, %v", i, n, err)
		}
	}
	if n := keptStatements(t, conn); n > sqliteStmtCacheSize {
		t.Errorf("%d statements kept, want at most %d", n, sqliteStmtCacheSize)
	}
}

// TestSQLiteWritersQueue runs many concurrent writers, in transactions and
// outside them, on a pool of connections: the write turn queues them, so
// none fails with "database is locked" and every increment lands.
func TestSQLiteWritersQueue(t *testing.T) {
	t.Parallel()
	db, _ := newTestSQLite(t, sqliteWriteWait)
	if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES (1, 0)`); err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Go(func() {
			for range each {
				if w%2 == 0 {
					if _, err := db.Exec(`UPDATE kv SET v = v + 1 WHERE k = 1`); err != nil {
						errs <- err
					}
					continue
				}
				tx, err := db.Begin()
				if err != nil {
					errs <- err
					continue
				}
				var v int
				if err := tx.QueryRow(`SELECT v FROM kv WHERE k = 1`).Scan(&v); err != nil {
					errs <- err
					tx.Rollback()
					continue
				}
				if _, err := tx.Exec(`UPDATE kv SET v = ? WHERE k = 1`, v+1); err != nil {
					errs <- err
					tx.Rollback()
					continue
				}
				if err := tx.Commit(); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var v int
	if err := db.QueryRow(`SELECT v FROM kv WHERE k = 1`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != writers*each {
		t.Errorf("v = %d after %d increments", v, writers*each)
	}
}

// TestSQLiteWriteTurnIsNoLock holds a transaction open and writes outside
// it: the turn never deadlocks; after its wait the writer goes on to
// SQLite's own lock, which refuses it after the busy timeout as it would
// without the turn, and a read goes through at once.
func TestSQLiteWriteTurnIsNoLock(t *testing.T) {
	t.Parallel()
	db, _ := newTestSQLite(t, 50*time.Millisecond)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO kv (k, v) VALUES (1, 1)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM kv`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("read beside the transaction: %d rows, %v; want 0 rows at once", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = db.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES (2, 2)`)
	if err == nil {
		t.Fatal("a write beside an open write transaction succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the refused write took %v", d)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO kv (k, v) VALUES (2, 2)`); err != nil {
		t.Errorf("write after the transaction ended: %v", err)
	}
}

func TestIsWrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		q    string
		want bool
	}{
		{"SELECT 1", false},
		{"  select * FROM kv", false},
		{"(SELECT 1) UNION (SELECT 2)", false},
		{"-- name: JobGetByID :one\nSELECT * FROM river_job", false},
		{"/* TEMPLATE */ SELECT 1", false},
		{"-- name: JobGetAvailable :many\nUPDATE river_job SET state = 'running'", true},
		{"UPDATE kv SET v = 1", true},
		{"INSERT INTO kv VALUES (1, 1)", true},
		{"DELETE FROM kv", true},
		{"WITH x AS (SELECT 1) UPDATE kv SET v = 1", true},
		{"CREATE TABLE t (a)", true},
		{"-- only a comment", true},
		{"", true},
	}
	for _, tt := range tests {
		if got := isWrite(tt.q); got != tt.want {
			t.Errorf("isWrite(%q) = %v, want %v", tt.q, got, tt.want)
		}
	}
}
