package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// A Zendesk account's rate limit is the account's, whichever replica calls
// (zendesk-api.md §4.2), so replicas sharing a database share one bucket
// and one Retry-After pause per account, in a row of zendesk_limits (the
// account is named by its base URL). The bucket is kept the way GCRA (the
// generic cell rate algorithm) keeps it: as one time, tat (the theoretical
// arrival time), at which the bucket would be full again. A call takes its
// slot in one statement — tat moves on by one interval — and may go at
// tat − tolerance, so the bucket needs no refill and no lock held between
// statements, only the row lock of one UPDATE.
//
// Every time here is on the database's clock, read inside the statement
// that uses it, and every answer is a duration from that clock's now:
// replicas on machines whose clocks disagree still take slots one interval
// apart and wait the right time for them, and a pause one of them saves
// lasts as long for all. The answer reaches the caller a round trip late,
// so it errs on the side of waiting a little longer.

// clockMicros is the SQL for the database's clock in Unix microseconds,
// the same value wherever it appears in one statement (PostgreSQL's
// statement_timestamp; SQLite's 'now' is fixed for a statement's step,
// which computes RETURNING too).
func (d dialect) clockMicros() string {
	if d.name == "postgres" {
		return "CAST(EXTRACT(EPOCH FROM statement_timestamp()) * 1000000 AS BIGINT)"
	}
	return "CAST(unixepoch('subsec') * 1000000 AS INTEGER)"
}

// greatest names the SQL function returning the largest of its arguments:
// SQLite's scalar max takes several.
func (d dialect) greatest() string {
	if d.name == "postgres" {
		return "GREATEST"
	}
	return "max"
}

// RateSlot is a call slot taken from an account's shared rate limit.
type RateSlot struct {
	// Wait is how long until the call may be sent (zero: at once).
	Wait time.Duration
	// Pause is how long the account's Retry-After pause still lasts (zero:
	// none). Wait already ends after it.
	Pause time.Duration
}

// TakeRateSlot takes the next call slot of the account's limit, shared by
// every replica: slots are interval apart, and up to tolerance's worth of
// them may be used at once after the account was idle (the burst). A pause
// in force counts as a bucket spent at its end, so calls resume one
// interval after it at the rate, not with a burst. Slots are handed out in
// the order the statements reach the row.
//
// Each caller passes its own interval: a replica that has learnt a lower
// limit from Zendesk (or a nearly spent window) takes longer slots and so
// slows every replica.
func (db *DB) TakeRateSlot(ctx context.Context, account string, interval, tolerance time.Duration) (RateSlot, error) {
	now, greatest := db.dialect.clockMicros(), db.dialect.greatest()
	q := fmt.Sprintf(`INSERT INTO zendesk_limits (account, until_at, tat) VALUES (?, 0, %[1]s + ?)
		ON CONFLICT (account) DO UPDATE SET tat = %[2]s(zendesk_limits.tat, %[1]s, zendesk_limits.until_at + ?) + ?
		RETURNING tat - ? - %[1]s, until_at - %[1]s`, now, greatest)
	iv, tol := interval.Microseconds(), tolerance.Microseconds()
	var wait, pause int64
	if err := db.queryRow(ctx, q, account, iv, tol, iv, tol).Scan(&wait, &pause); err != nil {
		return RateSlot{}, fmt.Errorf("store: take rate slot of %s: %w", account, err)
	}
	return RateSlot{Wait: micros(wait), Pause: micros(pause)}, nil
}

// GiveBackRateSlot returns a slot of interval taken with TakeRateSlot and
// not used (its caller gave up): tat moves back by interval, but never
// before now, so the bucket never holds more than its burst. The slot
// given back is the latest one, whoever holds it; as slots are all alike,
// the next caller simply takes it.
func (db *DB) GiveBackRateSlot(ctx context.Context, account string, interval time.Duration) error {
	q := fmt.Sprintf(`UPDATE zendesk_limits SET tat = %[2]s(tat - ?, %[1]s) WHERE account = ?`,
		db.dialect.clockMicros(), db.dialect.greatest())
	if _, err := db.exec(ctx, q, interval.Microseconds(), account); err != nil {
		return fmt.Errorf("store: give back rate slot of %s: %w", account, err)
	}
	return nil
}

// RatePause returns how long the Retry-After pause of a Zendesk account
// still lasts, as every replica sees it; zero when there is none.
func (db *DB) RatePause(ctx context.Context, account string) (time.Duration, error) {
	var left int64
	err := db.queryRow(ctx, `SELECT until_at - `+db.dialect.clockMicros()+` FROM zendesk_limits WHERE account = ?`,
		account).Scan(&left)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: rate pause of %s: %w", account, err)
	}
	return micros(left), nil
}

// ExtendRatePause makes the account's pause last at least d from now (a
// pause already longer is kept), so that no replica sends to the account
// before Zendesk's Retry-After has passed (zendesk-api.md §4.2).
func (db *DB) ExtendRatePause(ctx context.Context, account string, d time.Duration) error {
	q := fmt.Sprintf(`INSERT INTO zendesk_limits (account, until_at, tat) VALUES (?, %[1]s + ?, 0)
		ON CONFLICT (account) DO UPDATE SET until_at = %[2]s(zendesk_limits.until_at, excluded.until_at)`,
		db.dialect.clockMicros(), db.dialect.greatest())
	if _, err := db.exec(ctx, q, account, d.Microseconds()); err != nil {
		return fmt.Errorf("store: extend rate pause of %s: %w", account, err)
	}
	return nil
}

// micros is a count of microseconds from the database as a duration, zero
// when negative (a time already past).
func micros(n int64) time.Duration {
	return max(0, time.Duration(n)*time.Microsecond)
}
