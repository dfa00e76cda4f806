// Package oauthflow implements the admin's OAuth login against Zendesk:
// the authorize URL (state + PKCE S256), the code exchange and refresh sent as
// JSON as Zendesk documents, and a revoke that confirms the token is dead. It
// knows nothing of Echo or the database.
package oauthflow
