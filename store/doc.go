// Package store keeps onbehalf's state in SQL: server-side sessions (a
// gorilla/sessions Store), grants (the admins' Zendesk tokens, encrypted at
// rest), the audit trail, and bulk runs. SQLite is the default; the SQL is
// kept portable so PostgreSQL can serve several replicas.
package store
