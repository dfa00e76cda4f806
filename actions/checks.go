package actions

import (
	"fmt"

	"github.com/onbehalf/onbehalf/zendesk"
)

// The pure rules of pre-flight. Preflight applies them to what it reads;
// pages may apply them to data they already have, to say which actions are
// open (and why not) without asking Zendesk again, in the same words.

// CheckEndUser reports why nobody may act as u, or nil: Zendesk lets an
// admin act only as an existing, active end user who is not suspended, and
// we also ask for a verified email, which ratings and the Requests API
// need (zendesk-api.md §2, §3.1, §3.2).
func CheckEndUser(u zendesk.User) *Refusal {
	who := describe(u)
	switch {
	case !u.IsEndUser():
		role := "not an end user"
		switch u.Role {
		case zendesk.RoleAgent:
			role = "an agent"
		case zendesk.RoleAdmin:
			role = "an admin"
		}
		return &Refusal{Code: CodeNotEndUser, Field: "user", Message: fmt.Sprintf(
			"%s is %s in Zendesk; onbehalf acts only as end users.", who, role)}
	case !u.Verified:
		return &Refusal{Code: CodeUnverified, Field: "user", Message: fmt.Sprintf(msgUnverified, who)}
	case !u.Active:
		return &Refusal{Code: CodeSuspended, Field: "user", Message: fmt.Sprintf(
			"%s has been deleted in Zendesk, so nobody can act as them.", who)}
	case u.Suspended:
		return &Refusal{Code: CodeSuspended, Field: "user", Message: fmt.Sprintf(
			"%s is suspended in Zendesk, so nobody can act as them. Unsuspend them in Zendesk first if this must be done.", who)}
	}
	return nil
}

// CheckRate reports why u may not rate t, or nil (§3.2): only the
// requester rates; closed tickets take no ratings; the ticket must be
// solved, or have been solved before and reopened. The ticket does not say
// it was solved before, but its rating state does: "offered" (or a rating)
// once solved, "unoffered" before. CheckRate does not check u itself (see
// CheckEndUser).
func CheckRate(u zendesk.User, t zendesk.Ticket) *Refusal {
	return checkRate(u, t, "")
}

// checkRate is CheckRate naming the real requester as requester when known.
func checkRate(u zendesk.User, t zendesk.Ticket, requester string) *Refusal {
	if t.RequesterID != u.ID {
		if requester == "" {
			requester = fmt.Sprintf("someone else (user #%d)", t.RequesterID)
		}
		return &Refusal{Code: CodeNotRequester, Field: "ticket", Message: fmt.Sprintf(
			"Ticket #%d was requested by %s, not by %s; only a ticket's requester can rate it.", t.ID, requester, describe(u))}
	}
	switch t.Status {
	case zendesk.StatusClosed:
		return &Refusal{Code: CodeClosed, Field: "ticket", Message: closedMessage(KindRate, t.ID)}
	case zendesk.StatusSolved:
		return nil
	}
	if sr := t.SatisfactionRating; sr != nil {
		switch sr.Score {
		case zendesk.ScoreOffered, zendesk.ScoreGood, zendesk.ScoreBad:
			return nil
		}
	}
	return &Refusal{Code: CodeNotSolved, Field: "ticket", Message: fmt.Sprintf(
		"Ticket #%d has not been solved (it is %s); Zendesk accepts ratings only for solved tickets. Try again once it is solved.",
		t.ID, t.Status)}
}

// rateWarning says that a rating will replace an earlier one (§3.2: a
// second rating replaces the first).
func rateWarning(t zendesk.Ticket) string {
	if !t.Rated() {
		return ""
	}
	return fmt.Sprintf("Ticket #%d already had a %s rating; the new rating replaced it.", t.ID, t.SatisfactionRating.Score)
}

// CheckComment judges a comment on r, a request read AS the end user (so it
// is theirs): closed requests take no comments (§3.1). On a solved or
// pending request the comment is allowed and reopens it, which the warning
// says.
func CheckComment(r zendesk.Request) (warning string, _ *Refusal) {
	switch r.Status {
	case zendesk.StatusClosed:
		return "", &Refusal{Code: CodeClosed, Field: "ticket", Message: closedMessage(KindComment, r.ID)}
	case zendesk.StatusSolved:
		return "Commenting reopened this solved request.", nil
	case zendesk.StatusPending:
		return "Commenting as the requester set this pending request back to open.", nil
	}
	return "", nil
}

// CheckSolve judges marking r solved, r read AS the end user: not closed,
// not solved already, and can_be_solved_by_me (assigned, not a problem,
// §3.1).
func CheckSolve(r zendesk.Request) *Refusal {
	switch {
	case r.Status == zendesk.StatusClosed:
		return &Refusal{Code: CodeClosed, Field: "ticket", Message: closedMessage(KindSolve, r.ID)}
	case r.Status == zendesk.StatusSolved:
		return &Refusal{Code: CodeAlreadySolved, Field: "ticket",
			Message: fmt.Sprintf("Request #%d is already solved; there is nothing to do.", r.ID)}
	case !r.CanBeSolvedByMe:
		return &Refusal{Code: CodeCannotBeSolved, Field: "ticket", Message: cannotBeSolvedMessage(r.ID)}
	}
	return nil
}

// requestFromTicket is the request its requester would see, from the
// admin's view of the ticket: can_be_solved_by_me follows §3.1.
func requestFromTicket(t zendesk.Ticket) zendesk.Request {
	open := t.Status != zendesk.StatusSolved && t.Status != zendesk.StatusClosed
	return zendesk.Request{
		ID: t.ID, Subject: t.Subject, Description: t.Description, Status: t.Status, Priority: t.Priority, Type: t.Type,
		RequesterID: t.RequesterID, AssigneeID: t.AssigneeID, GroupID: t.GroupID, OrganizationID: t.OrganizationID,
		CollaboratorIDs: t.CollaboratorIDs, CanBeSolvedByMe: open && t.AssigneeID != 0 && t.Type != "problem",
		Solved: !open, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
}
