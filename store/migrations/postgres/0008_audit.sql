-- The audit page filters by bulk run and links each event to its run
-- (keep in step with the other dialect's 0008_audit.sql). Most events
-- belong to no run (run_id 0), so only the others are indexed.
CREATE INDEX audit_events_run_id ON audit_events (run_id, occurred_at) WHERE run_id <> 0;
