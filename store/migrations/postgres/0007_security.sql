-- Sessions name the grant they use (postgres; keep in step with
-- ../sqlite/0007_security.sql, whose comment explains it).
ALTER TABLE sessions ADD COLUMN grant_id BIGINT;
UPDATE sessions SET grant_id = (data::jsonb -> 'grant_id' ->> 'v')::bigint;
CREATE INDEX sessions_grant_id ON sessions (grant_id);
CREATE INDEX bulk_runs_grant_id ON bulk_runs (grant_id);
