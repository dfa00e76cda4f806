package bulk

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/onbehalf/onbehalf/store"
	"github.com/onbehalf/onbehalf/zendesk"
)

// GrantSweep configures the periodic job that ends Zendesk sign-ins nothing
// uses any more (security promise 12): every grant that no live session and
// no unfinished bulk run uses is revoked at Zendesk and deleted. A bulk run
// therefore keeps its admin's sign-in until it ends, even after the admin's
// session has. The job runs on River, so with several replicas one of them
// (River's leader) sweeps; it also deletes expired sessions.
type GrantSweep struct {
	// Revoke kills an access token at Zendesk and confirms it is dead
	// (oauthflow.Flow.Revoke). Nil disables the sweep.
	Revoke func(ctx context.Context, accessToken string) error
	// Every is how often the sweep runs; 0 means DefaultGrantSweepEvery.
	Every time.Duration
	// Swept is told how each unused grant ended: "revoked" (Zendesk
	// confirmed it, the grant is deleted), "dead" (Zendesk no longer
	// honoured it, or it cannot be decrypted: deleted) or "failed" (kept,
	// to be tried again at the next sweep). Nil ignores it.
	Swept func(outcome string)
}

// DefaultGrantSweepEvery is how often unused grants are swept by default.
// With it, a sign-in outlives its last session by at most about this much.
const DefaultGrantSweepEvery = 10 * time.Minute

// grantSweepGrace spares grants younger than this: a login stores its grant
// a moment before the session that uses it.
const grantSweepGrace = time.Minute

// grantSweepBatch bounds the grants one sweep handles; the rest wait for
// the next.
const grantSweepBatch = 500

type sweepArgs struct{}

// Kind implements river.JobArgs.
func (sweepArgs) Kind() string { return "sweep_grants" }

// InsertOpts puts the sweep ahead of row jobs (priority 1 is River's
// highest), so a long run does not hold it up.
func (sweepArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Priority: 1} }

type sweepWorker struct {
	river.WorkerDefaults[sweepArgs]
	e   *Engine
	cfg GrantSweep
}

// addGrantSweep registers the sweep's worker and returns its periodic job,
// or nothing when cfg has no Revoke.
func (e *Engine) addGrantSweep(workers *river.Workers, cfg GrantSweep) ([]*river.PeriodicJob, error) {
	if cfg.Revoke == nil {
		return nil, nil
	}
	if err := river.AddWorkerSafely(workers, &sweepWorker{e: e, cfg: cfg}); err != nil {
		return nil, err
	}
	every := cmp.Or(cfg.Every, DefaultGrantSweepEvery)
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(every),
		func() (river.JobArgs, *river.InsertOpts) { return sweepArgs{}, nil },
		&river.PeriodicJobOpts{ID: "sweep_grants", RunOnStart: true})}, nil
}

// Work runs one sweep.
func (w *sweepWorker) Work(ctx context.Context, _ *river.Job[sweepArgs]) error {
	_, err := w.e.SweepGrants(ctx, w.cfg)
	return err
}

// SweepResult counts what one sweep did.
type SweepResult struct {
	Sessions              int64 // expired sessions deleted
	Previews              int   // previews never confirmed in store.PreviewLifetime, deleted
	Revoked, Dead, Failed int   // unused grants, by outcome (see GrantSweep.Swept)
}

// SweepGrants deletes expired sessions and week-old previews, then revokes and deletes every grant
// no live session and no unfinished run uses. The periodic job calls it;
// it is exported for tests and tools. A grant whose revocation fails is
// kept for the next sweep, so no live token is forgotten while it may still
// work at Zendesk.
func (e *Engine) SweepGrants(ctx context.Context, cfg GrantSweep) (SweepResult, error) {
	var res SweepResult
	n, err := e.db.DeleteExpiredSessions(ctx)
	if err != nil {
		return res, fmt.Errorf("bulk: sweep grants: %w", err)
	}
	res.Sessions = n
	// A preview nobody confirmed in a week goes, and with it its hold on
	// the admin's sign-in.
	if res.Previews, err = e.db.ExpirePreviews(ctx, e.now().Add(-store.PreviewLifetime)); err != nil {
		return res, fmt.Errorf("bulk: sweep grants: %w", err)
	}
	ids, err := e.db.ListUnusedGrants(ctx, e.now().Add(-grantSweepGrace), grantSweepBatch)
	if err != nil {
		return res, fmt.Errorf("bulk: sweep grants: %w", err)
	}
	for _, id := range ids {
		outcome := e.sweepGrant(ctx, cfg, id)
		switch outcome {
		case "revoked", "dead":
			// Counted by the sweep that deletes it: two sweeps that
			// overlap (a slow one, and the next period's) may both
			// revoke a grant, which is harmless, but only one deletes it.
			deleted, err := e.db.DeleteUnusedGrant(ctx, id)
			if err != nil {
				return res, fmt.Errorf("bulk: sweep grants: %w", err)
			}
			if !deleted {
				continue
			}
			if outcome == "revoked" {
				res.Revoked++
			} else {
				res.Dead++
			}
		case "failed":
			res.Failed++
		default:
			continue
		}
		if cfg.Swept != nil {
			cfg.Swept(outcome)
		}
	}
	if res.Revoked+res.Dead+res.Failed > 0 || res.Sessions > 0 {
		e.log.Info("swept sign-ins", "sessions_deleted", res.Sessions, "grants_revoked", res.Revoked, "grants_dead", res.Dead, "grants_failed", res.Failed)
	}
	return res, nil
}

// sweepGrant revokes one unused grant's token and says how it went (see
// GrantSweep.Swept); "" means the grant is gone already.
func (e *Engine) sweepGrant(ctx context.Context, cfg GrantSweep, id int64) string {
	// Token refreshes an expired access token first: revoking needs a token
	// Zendesk still honours, or the refresh token would stay alive.
	tok, err := e.db.TokenSource(id, e.refresh).Token()
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ""
	case errors.Is(err, zendesk.ErrTokenInvalid), errors.Is(err, store.ErrDecrypt):
		return "dead"
	case err != nil:
		e.log.Warn("sweep: load or refresh an unused grant", "grant", id, "err", err)
		return "failed"
	}
	if err := cfg.Revoke(ctx, tok.AccessToken); err != nil {
		e.log.Warn("sweep: revoke an unused grant", "grant", id, "err", err)
		return "failed"
	}
	return "revoked"
}
