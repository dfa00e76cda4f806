package store

import (
	"context"
	"fmt"
)

// DSN is the database address the store's driver was opened with, for
// another client of the same database (River's listener pool). It may hold
// a password: never log it.
func (db *DB) DSN() string { return db.driverDSN }

// migrationLockKey is the PostgreSQL advisory lock that serialises schema
// changes between replicas starting at the same time (the store's own
// migrations take it per transaction; see dialect.go).
const migrationLockKey = 7236512064

// WithMigrationLock runs fn while holding the migration lock, so that
// another component's migrations (River's) run one replica at a time. On
// SQLite, a single file, fn just runs.
func (db *DB) WithMigrationLock(ctx context.Context, fn func() error) error {
	if db.dialect.name != "postgres" {
		return fn()
	}
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migration lock: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return fmt.Errorf("store: migration lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey)
	return fn()
}
