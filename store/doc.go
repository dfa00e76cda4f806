// Package store keeps onbehalf's state in SQL: server-side sessions (a
// gorilla/sessions Store), grants (the admins' Zendesk tokens, encrypted at
// rest), the audit trail, and bulk runs. SQLite is the default; the SQL is
// kept portable so PostgreSQL can serve several replicas.
//
// Every statement is written once, with `?` placeholders, and rebound for
// PostgreSQL by a small dialect seam; schemas live in per-dialect migration
// folders (migrations/sqlite, migrations/postgres) that Open applies in
// order, in one transaction, recording each in schema_migrations. Times are
// stored as Unix microseconds in integer columns in both dialects.
//
// Keys: the cookie signing key and the token encryption key are derived from
// the one SecretKey with HKDF-SHA-256 (info "cookie" and "grant-tokens"), so
// neither can be used for the other's job.
package store
