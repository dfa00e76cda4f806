-- One rate limit per Zendesk account across replicas (sqlite). Keep in
-- step with ../postgres/0005_shared_limit.sql.

-- zendesk_pauses becomes zendesk_limits: besides the Retry-After pause
-- (until_at), each account's row now holds its shared call bucket, kept as
-- GCRA's theoretical arrival time (tat): the time at which the bucket would
-- be full again. Both are Unix microseconds on the database's clock, which
-- every replica shares (until_at was on the writer's clock before). Every
-- replica takes its calls' slots from it (store.TakeRateSlot), so each may
-- be given the account's whole limit. One row serves both so that a slot
-- and the pause are read in one statement.
ALTER TABLE zendesk_pauses RENAME TO zendesk_limits;
ALTER TABLE zendesk_limits ADD COLUMN tat INTEGER NOT NULL DEFAULT 0;
