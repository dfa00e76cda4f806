package store

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Ready reports whether the database answers and every migration embedded in
// this binary has been applied to it: the readiness an operator's probe asks
// for (a replica built from newer code against an older schema is not ready).
func (db *DB) Ready(ctx context.Context) error {
	if err := db.Ping(ctx); err != nil {
		return fmt.Errorf("store: ready: %w", err)
	}
	entries, err := fs.ReadDir(migrationFiles, path.Join("migrations", db.dialect.name))
	if err != nil {
		return fmt.Errorf("store: ready: %w", err)
	}
	applied := map[string]bool{}
	rows, err := db.db.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("store: ready: list migrations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return fmt.Errorf("store: ready: list migrations: %w", err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: ready: list migrations: %w", err)
	}
	for _, e := range entries {
		v, ok := strings.CutSuffix(e.Name(), ".sql")
		if ok && !applied[v] {
			return fmt.Errorf("store: ready: migration %s is not applied", v)
		}
	}
	return nil
}
