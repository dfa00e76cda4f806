package store

import (
	"os"
	"path/filepath"
	"testing"
)

// TestSQLiteFilesAreOwnerOnly checks that the database file and its WAL and
// shared-memory files are readable by the app's user alone: they hold
// sessions, encrypted tokens and the audit trail.
func TestSQLiteFilesAreOwnerOnly(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "onbehalf.db")
	db := mustOpen(t, "sqlite:"+path, Options{})
	// A write makes sure the WAL and shared-memory files exist.
	if _, err := db.DeleteExpiredSessions(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatalf("stat %s: %v", filepath.Base(p), err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %#o, want 0600", filepath.Base(p), perm)
		}
	}
}

// TestSQLiteExistingFileIsMadeOwnerOnly checks that a database created
// before this rule (mode 0644) is tightened when opened.
func TestSQLiteExistingFileIsMadeOwnerOnly(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "onbehalf.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, "sqlite:"+path, Options{})
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("existing database has mode %#o after Open, want 0600", perm)
	}
}
