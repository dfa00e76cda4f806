package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadyReportsMissingMigrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "r.db"), Options{SecretKey: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ready(ctx); err != nil {
		t.Fatalf("fresh database not ready: %v", err)
	}
	if _, err := db.SQL().ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = '0001_init'`); err != nil {
		t.Fatal(err)
	}
	if err := db.Ready(ctx); err == nil || !strings.Contains(err.Error(), "0001_init") {
		t.Errorf("Ready with a migration missing: %v, want an error naming it", err)
	}
	db.Close()
	if err := db.Ready(ctx); err == nil {
		t.Error("Ready on a closed database succeeded")
	}
}
