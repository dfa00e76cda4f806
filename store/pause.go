package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RatePause returns when the Retry-After pause of a Zendesk account (named
// by its base URL) ends, as every replica sees it; the zero time when the
// account was never paused.
func (db *DB) RatePause(ctx context.Context, account string) (time.Time, error) {
	var until int64
	err := db.queryRow(ctx, `SELECT until_at FROM zendesk_pauses WHERE account = ?`, account).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: rate pause of %s: %w", account, err)
	}
	return timeOrZero(until), nil
}

// ExtendRatePause makes the account's pause last at least until until (a
// pause already longer is kept), so that no replica sends to the account
// before Zendesk's Retry-After has passed (zendesk-api.md §4.2).
func (db *DB) ExtendRatePause(ctx context.Context, account string, until time.Time) error {
	_, err := db.exec(ctx, `INSERT INTO zendesk_pauses (account, until_at) VALUES (?, ?)
		ON CONFLICT (account) DO UPDATE SET until_at = CASE
			WHEN excluded.until_at > zendesk_pauses.until_at THEN excluded.until_at
			ELSE zendesk_pauses.until_at END`, account, toDBTime(until))
	if err != nil {
		return fmt.Errorf("store: extend rate pause of %s: %w", account, err)
	}
	return nil
}
