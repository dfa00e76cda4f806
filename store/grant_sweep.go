package store

import (
	"context"
	"fmt"
	"time"
)

// unfinishedRunStates are the run states that keep a run's grant: a run in
// preview is pre-flighted with it, and a confirmed run sends with it until
// it is done or cancelled.
var unfinishedRunStates = []any{RunPreview, RunQueued, RunRunning, RunPaused}

// unusedGrantCond selects grants that no live session and no unfinished run
// uses; its arguments are unusedGrantArgs.
const unusedGrantCond = `NOT EXISTS (SELECT 1 FROM sessions s
		WHERE s.grant_id = grants.id AND s.expires_at > ? AND s.idle_expires_at > ?)
	AND NOT EXISTS (SELECT 1 FROM bulk_runs r
		WHERE r.grant_id = grants.id AND r.state IN (?, ?, ?, ?))`

func unusedGrantArgs(now int64) []any {
	return append([]any{now, now}, unfinishedRunStates...)
}

// ListUnusedGrants returns up to limit grants, oldest first, that were
// created before createdBefore and that no live session and no unfinished
// bulk run uses: the grant sweep revokes them at Zendesk and deletes them
// (security promise 12). The age condition spares a grant whose login is
// still being completed (the grant is stored just before its session).
func (db *DB) ListUnusedGrants(ctx context.Context, createdBefore time.Time, limit int) ([]int64, error) {
	args := append([]any{toDBTime(createdBefore)}, unusedGrantArgs(toDBTime(db.now()))...)
	rows, err := db.query(ctx, `SELECT id FROM grants WHERE created_at < ? AND `+unusedGrantCond+`
		ORDER BY id LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: list unused grants: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("store: list unused grants: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list unused grants: %w", err)
	}
	return ids, nil
}

// RunsSendingWithGrant counts the confirmed runs not yet ended (queued or
// running) that send with grant id: logging out keeps such a grant until
// they end (the sweep revokes it then).
func (db *DB) RunsSendingWithGrant(ctx context.Context, id int64) (int, error) {
	var n int
	if err := db.queryRow(ctx, `SELECT COUNT(*) FROM bulk_runs WHERE grant_id = ? AND state IN (?, ?)`,
		id, RunQueued, RunRunning).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: runs sending with grant %d: %w", id, err)
	}
	return n, nil
}

// DeleteUnusedGrant deletes the grant if no live session and no unfinished
// run uses it, and reports whether it did. Only new grants are ever given
// to sessions and runs, so a grant found unused stays unused; the condition
// is checked again all the same.
func (db *DB) DeleteUnusedGrant(ctx context.Context, id int64) (bool, error) {
	res, err := db.exec(ctx, `DELETE FROM grants WHERE id = ? AND `+unusedGrantCond,
		append([]any{id}, unusedGrantArgs(toDBTime(db.now()))...)...)
	if err != nil {
		return false, fmt.Errorf("store: delete unused grant %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: delete unused grant %d: %w", id, err)
	}
	return n == 1, nil
}
