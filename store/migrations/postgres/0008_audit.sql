-- The audit page filters by bulk run and links each event to its run
-- (postgres; keep in step with ../sqlite/0008_audit.sql). Most events
-- belong to no run (run_id 0), so only the others are indexed.
CREATE INDEX IF NOT EXISTS audit_events_run_id ON audit_events (run_id, occurred_at) WHERE run_id <> 0;
-- Refusals from the web forms used to record the end user as the id the
-- form sent ("10") with no id and no email: give them the id, and the
-- email that other events of that user carry, so filtering by email finds
-- them.
UPDATE audit_events SET end_user_id = CAST(end_user AS BIGINT)
	WHERE end_user_id = 0 AND end_user ~ '^[0-9]{1,18}$'
	AND action IN ('rate', 'create_request', 'comment', 'solve');
UPDATE audit_events a SET end_user = (
		SELECT e.end_user FROM audit_events e
		WHERE e.end_user_id = a.end_user_id AND e.end_user LIKE '%@%'
		ORDER BY e.occurred_at DESC, e.id DESC LIMIT 1)
	WHERE a.end_user_id <> 0 AND a.end_user ~ '^[0-9]+$' AND EXISTS (
		SELECT 1 FROM audit_events e WHERE e.end_user_id = a.end_user_id AND e.end_user LIKE '%@%');
