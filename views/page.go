// Package views holds onbehalf's templ components. Every page takes a typed
// struct; views read plain values and never touch the database or Zendesk.
package views

import "fmt"

// Page is what the layout needs on every page.
type Page struct {
	// Title is the page's own title; the layout appends the app name.
	Title string
	// Admin is the signed-in Zendesk admin, nil when signed out.
	Admin *Admin
	// CSRF is the form token bound to the session; every POST form carries it.
	CSRF string
	// Notice is a one-line confirmation shown at the top of the page.
	Notice string
	// RequestID identifies the request in the logs (shown on error pages).
	RequestID string
	// ActingAs is the end user the admin has picked, shown in a banner on
	// every page; nil when none is picked.
	ActingAs *EndUser
	// Nav marks the current section in the header ("users", "as", "audit").
	Nav string
	// DraftSent tells the page's script what became of the form the
	// browser tab sent last (static/app.js, drafts): DraftKept when
	// nothing was sent, DraftDone when it was done (or must not be sent
	// again). Empty: unknown, unless the page shows a notice.
	DraftSent string
}

// DraftSent values.
const (
	DraftKept = "kept"
	DraftDone = "done"
)

// DraftKey names a form's draft, which the browser tab keeps until the form
// is sent (static/app.js): per admin, end user, form and request, so a draft
// is never filled into a form for someone else.
func DraftKey(p Page, form string, request int64) string {
	var admin, user int64
	if p.Admin != nil {
		admin = p.Admin.ID
	}
	if p.ActingAs != nil {
		user = p.ActingAs.ID
	}
	return fmt.Sprintf("%d/%d/%s/%d", admin, user, form, request)
}

// EndUser is the end user an admin acts as.
type EndUser struct {
	ID    int64
	Name  string
	Email string
}

// Admin is the signed-in Zendesk admin as shown in the header.
type Admin struct {
	ID    int64
	Name  string
	Email string
}

// SandboxHint tells a newcomer, on the login page, whom to sign in as when
// onbehalf runs against its built-in sandbox Zendesk.
type SandboxHint struct {
	ZendeskURL string
	AdminName  string
	AdminEmail string
	AgentEmail string
	EndUser    string
}

// LoginPage is the signed-out home page.
type LoginPage struct {
	Page
	// LoginURL is /login with any return path.
	LoginURL string
	// Sandbox is set when the app runs against the sandbox Zendesk.
	Sandbox *SandboxHint
	// ZendeskURL is the account admins sign in to.
	ZendeskURL string
}

// HomePage is the signed-in home page.
type HomePage struct {
	Page
	ZendeskURL string
	// Runs are the latest bulk runs, newest first.
	Runs []RunSummary
	// Activity is the admin's own latest audit events, newest first.
	Activity []AuditRow
}

// ErrorPage explains what went wrong and what to do next.
type ErrorPage struct {
	Page
	Status  int
	Heading string
	Message string
	// ActionHref and ActionLabel offer the next step ("Try again").
	ActionHref  string
	ActionLabel string
}
