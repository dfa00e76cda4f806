-- Initial schema (SQLite). Keep in step with ../postgres/0001_init.sql.
-- Times are Unix microseconds (UTC) in integer columns; see toDBTime.

-- Server-side sessions. The primary key is the SHA-256 of the random session
-- id carried by the cookie: a copy of this table yields no usable session ids.
CREATE TABLE sessions (
	id_hash BLOB PRIMARY KEY,
	admin_id INTEGER,                -- mirrors the session value "admin_id"
	data TEXT NOT NULL,              -- typed JSON, see encodeSessionValues
	created_at INTEGER NOT NULL,
	last_seen INTEGER NOT NULL,      -- touched at most once a minute
	idle_expires_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL      -- created_at + absolute timeout
);
CREATE INDEX sessions_admin_id ON sessions (admin_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_idle_expires_at ON sessions (idle_expires_at);

-- Grants: an admin's Zendesk token pair, AES-256-GCM encrypted. AUTOINCREMENT
-- so a deleted grant's id is never handed to another admin (sessions keep
-- grant ids).
CREATE TABLE grants (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	admin_id INTEGER NOT NULL,
	admin_name TEXT NOT NULL,
	admin_email TEXT NOT NULL,
	token BLOB NOT NULL,             -- format byte || nonce || sealed JSON
	version INTEGER NOT NULL,        -- +1 on every refresh
	lease_until INTEGER,             -- refresh lease, NULL when free
	lease_holder TEXT,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX grants_admin_id ON grants (admin_id);

-- Audit trail: which admin acted as which end user, what, with what result.
CREATE TABLE audit_events (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	occurred_at INTEGER NOT NULL,
	admin_id INTEGER NOT NULL,
	admin_name TEXT NOT NULL,
	action TEXT NOT NULL,
	end_user_id INTEGER NOT NULL,
	end_user TEXT NOT NULL,
	ticket_id INTEGER NOT NULL,
	outcome TEXT NOT NULL,
	detail TEXT NOT NULL,
	zendesk_id INTEGER NOT NULL,
	run_id INTEGER NOT NULL,
	request_id TEXT NOT NULL,
	remote_addr TEXT NOT NULL
);
CREATE INDEX audit_events_occurred_at ON audit_events (occurred_at, id);
CREATE INDEX audit_events_admin_id ON audit_events (admin_id, occurred_at);
CREATE INDEX audit_events_end_user ON audit_events (lower(end_user), occurred_at);
