-- Sessions name the grant they use (sqlite; keep in step with
-- ../postgres/0007_security.sql), mirrored from the session value
-- "grant_id" like admin_id, so the grant sweep can tell which grants no live
-- session uses. Sessions stored before this migration get it from their data.
ALTER TABLE sessions ADD COLUMN grant_id INTEGER;
UPDATE sessions SET grant_id = json_extract(data, '$.grant_id.v') WHERE json_valid(data);
CREATE INDEX sessions_grant_id ON sessions (grant_id);
CREATE INDEX bulk_runs_grant_id ON bulk_runs (grant_id);
