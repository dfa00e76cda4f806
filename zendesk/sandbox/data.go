package sandbox

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Data is the content of a sandbox account: its people and its tickets.
type Data struct {
	Users   []User
	Tickets []Ticket
}

// User is a person in the sandbox account, with the fields of a Zendesk user
// that the app relies on (zendesk-api.md §3.3).
type User struct {
	ID             int64
	Name, Email    string
	Role           string // "end-user", "agent" or "admin"
	Verified       bool
	Active         bool
	Suspended      bool
	ExternalID     string
	OrganizationID int64
	Locale         string
	TimeZone       string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Ticket is a ticket in the sandbox account; through the Requests API the
// same record is seen as a request (zendesk-api.md §3.1).
type Ticket struct {
	ID          int64
	Subject     string
	Description string
	Status      string // new, open, pending, hold, solved or closed
	Type        string // question, incident, problem, task or ""
	Priority    string
	RequesterID int64
	SubmitterID int64
	AssigneeID  int64
	GroupID     int64
	// CollaboratorIDs are the CCs; they see the ticket in their requests.
	CollaboratorIDs []int64
	// WasSolved marks a ticket that was solved before and then reopened;
	// such a ticket may still be rated (zendesk-api.md §3.2).
	WasSolved bool
	// Rating is the satisfaction rating. The ticket JSON's
	// satisfaction_rating shows it when its score is good or bad; with no
	// rating it shows {"score":"offered"} for a ticket that is or was solved
	// (status solved or closed, or WasSolved) and {"score":"unoffered"} for
	// one never solved, so a client can tell the two apart (§3.2).
	Rating    *Rating
	Comments  []Comment
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Rating is a legacy CSAT satisfaction rating (zendesk-api.md §3.2).
type Rating struct {
	ID        int64
	Score     string // offered, unoffered, good or bad
	Comment   string
	Reason    string
	ReasonID  int64
	CreatedAt time.Time
}

// Comment is one comment on a ticket.
type Comment struct {
	ID        int64
	AuthorID  int64
	Body      string
	Public    bool
	CreatedAt time.Time
}

// The Demo account's people. Their IDs and emails are fixed so that tests
// in other packages can name them.
const (
	DemoAdminEmail      = "ada@example.com"
	DemoAdmin2Email     = "ola@example.com"
	DemoAgentEmail      = "sam@example.com"
	DemoBeaEmail        = "bea@example.com"
	DemoBeauEmail       = "beau@example.com"
	DemoCarlosEmail     = "carlos@example.com"
	DemoUnverifiedEmail = "dana@example.com"
	DemoSuspendedEmail  = "eli@example.com"

	DemoAdminID      = 1
	DemoAdmin2ID     = 2
	DemoAgentID      = 3
	DemoBeaID        = 10
	DemoBeauID       = 11
	DemoCarlosID     = 12
	DemoUnverifiedID = 13
	DemoSuspendedID  = 14
)

// The Demo account's tickets. Bea requests 101–111, Beau 112–114, Carlos
// 115–116, Dana (unverified) 117 and Eli (suspended) 118. "Assigned" means
// assigned to Sam Agent.
const (
	TicketBeaNew            = 101 // new, question, unassigned
	TicketBeaOpen           = 102 // open, incident, assigned
	TicketBeaPending        = 103 // pending, question, assigned
	TicketBeaHold           = 104 // hold, task, assigned
	TicketBeaSolved         = 105 // solved, question, assigned, not rated ("offered")
	TicketBeaSolvedRated    = 106 // solved, question, assigned, rated good
	TicketBeaSolvedProblem  = 107 // solved, problem, assigned
	TicketBeaClosed         = 108 // closed, question, assigned
	TicketBeaReopened       = 109 // open after being solved (WasSolved), question, assigned
	TicketBeaOpenAssigned   = 110 // open, question, assigned: can_be_solved_by_me true
	TicketBeaOpenUnassigned = 111 // open, question, unassigned: can_be_solved_by_me false
	TicketBeauSolved        = 112 // solved, question, assigned
	TicketBeauSolved2       = 113 // solved, incident, assigned
	TicketBeauOpen          = 114 // open, question, assigned
	TicketCarlosSolved      = 115 // solved, question, assigned
	TicketCarlosClosed      = 116 // closed, question, assigned
	TicketDanaSolved        = 117 // solved, question, assigned (requester unverified)
	TicketEliSolved         = 118 // solved, question, assigned (requester suspended)
)

// demoEpoch anchors the Demo account's timestamps so that they are stable
// across runs.
var demoEpoch = time.Date(2025, time.March, 3, 9, 0, 0, 0, time.UTC)

func demoStaff() []User {
	at := demoEpoch.AddDate(-1, 0, 0)
	mk := func(id int64, name, email, role string) User {
		return User{ID: id, Name: name, Email: email, Role: role, Verified: true, Active: true,
			Locale: "en-US", TimeZone: "UTC", CreatedAt: at, UpdatedAt: at}
	}
	return []User{
		mk(DemoAdminID, "Ada Admin", DemoAdminEmail, "admin"),
		mk(DemoAdmin2ID, "Ola Owner", DemoAdmin2Email, "admin"),
		mk(DemoAgentID, "Sam Agent", DemoAgentEmail, "agent"),
	}
}

// Demo returns a fresh copy of the Demo account: two admins, an agent, end
// users (verified, unverified, suspended) and tickets in every state, with
// the fixed IDs of the Demo* and Ticket* constants.
func Demo() *Data {
	users := demoStaff()
	at := demoEpoch.AddDate(0, -6, 0)
	end := func(id int64, name, email string, verified, suspended bool) User {
		return User{ID: id, Name: name, Email: email, Role: "end-user", Verified: verified, Active: true,
			Suspended: suspended, Locale: "en-US", TimeZone: "Europe/Stockholm", CreatedAt: at, UpdatedAt: at}
	}
	users = append(users,
		end(DemoBeaID, "Bea Lindqvist", DemoBeaEmail, true, false),
		end(DemoBeauID, "Beau Tremblay", DemoBeauEmail, true, false),
		end(DemoCarlosID, "Carlos Mendes", DemoCarlosEmail, true, false),
		end(DemoUnverifiedID, "Dana Park", DemoUnverifiedEmail, false, false),
		end(DemoSuspendedID, "Eli Novak", DemoSuspendedEmail, true, true),
	)

	type spec struct {
		id                int64
		requester         int64
		status, typ       string
		assigned          bool
		wasSolved         bool
		subject, body     string
		rated             string
		agentReply, reply string
	}
	specs := []spec{
		{TicketBeaNew, DemoBeaID, "new", "question", false, false, "Cannot log in to the portal", "Since this morning the portal says my password is wrong.", "", "", ""},
		{TicketBeaOpen, DemoBeaID, "open", "incident", true, false, "Invoice shows the wrong address", "My March invoice still has my old street address.", "", "Thanks Bea, we are looking into it.", ""},
		{TicketBeaPending, DemoBeaID, "pending", "question", true, false, "How do I export my data?", "Is there a way to download everything as CSV?", "", "Which workspace do you mean?", ""},
		{TicketBeaHold, DemoBeaID, "hold", "task", true, false, "Replace my broken badge", "My access badge snapped in half.", "", "A new badge is on order.", ""},
		{TicketBeaSolved, DemoBeaID, "solved", "question", true, false, "Change my delivery day", "Could deliveries come on Tuesdays instead of Mondays?", "", "Done: Tuesdays from next week.", ""},
		{TicketBeaSolvedRated, DemoBeaID, "solved", "question", true, false, "Reset two-factor authentication", "I lost my phone and cannot sign in.", "good", "Two-factor is reset; please enrol again.", ""},
		{TicketBeaSolvedProblem, DemoBeaID, "solved", "problem", true, false, "Mobile app crashes on start", "The app closes right after the splash screen.", "", "Fixed in version 4.2.", ""},
		{TicketBeaClosed, DemoBeaID, "closed", "question", true, false, "Update my phone number", "Please use +46 70 123 45 67 from now on.", "", "Updated.", ""},
		{TicketBeaReopened, DemoBeaID, "open", "question", true, true, "Refund not received", "The refund you promised has not arrived.", "", "The refund was sent on Friday.", "It is still not on my account."},
		{TicketBeaOpenAssigned, DemoBeaID, "open", "question", true, false, "Opening hours over Easter", "Are you open on Easter Monday?", "", "Let me check with the team.", ""},
		{TicketBeaOpenUnassigned, DemoBeaID, "open", "question", false, false, "Newsletter arrives twice", "I get every newsletter two times.", "", "", ""},
		{TicketBeauSolved, DemoBeauID, "solved", "question", true, false, "Where is my order?", "Order 5531 has not shipped yet.", "", "It shipped today.", ""},
		{TicketBeauSolved2, DemoBeauID, "solved", "incident", true, false, "Payment failed twice", "My card was declined although it works elsewhere.", "", "The payment provider fixed an outage.", ""},
		{TicketBeauOpen, DemoBeauID, "open", "question", true, false, "Add a second user to my plan", "My colleague needs access too.", "", "Which plan are you on?", ""},
		{TicketCarlosSolved, DemoCarlosID, "solved", "question", true, false, "Cancel my subscription", "Please cancel at the end of this month.", "", "Cancelled as of the 31st.", ""},
		{TicketCarlosClosed, DemoCarlosID, "closed", "question", true, false, "Typo on the pricing page", "It says 'anual' instead of 'annual'.", "", "Fixed, thank you!", ""},
		{TicketDanaSolved, DemoUnverifiedID, "solved", "question", true, false, "Change my username", "I would like to be called dpark.", "", "Your username is now dpark.", ""},
		{TicketEliSolved, DemoSuspendedID, "solved", "question", true, false, "Close my account", "Please delete my account.", "", "Your account is scheduled for deletion.", ""},
	}
	var commentID int64 = 1000
	tickets := make([]Ticket, 0, len(specs))
	for i, sp := range specs {
		created := demoEpoch.Add(time.Duration(i) * 26 * time.Hour)
		t := Ticket{ID: sp.id, Subject: sp.subject, Description: sp.body, Status: sp.status, Type: sp.typ,
			Priority: "normal", RequesterID: sp.requester, SubmitterID: sp.requester, WasSolved: sp.wasSolved,
			CreatedAt: created, UpdatedAt: created}
		if sp.assigned {
			t.AssigneeID = DemoAgentID
			t.GroupID = 1
		}
		commentID++
		t.Comments = append(t.Comments, Comment{ID: commentID, AuthorID: sp.requester, Body: sp.body, Public: true, CreatedAt: created})
		if sp.agentReply != "" {
			commentID++
			at := created.Add(3 * time.Hour)
			t.Comments = append(t.Comments, Comment{ID: commentID, AuthorID: DemoAgentID, Body: sp.agentReply, Public: true, CreatedAt: at})
			t.UpdatedAt = at
		}
		if sp.reply != "" {
			commentID++
			at := created.Add(30 * time.Hour)
			t.Comments = append(t.Comments, Comment{ID: commentID, AuthorID: sp.requester, Body: sp.reply, Public: true, CreatedAt: at})
			t.UpdatedAt = at
		}
		if sp.rated != "" {
			at := t.UpdatedAt.Add(2 * time.Hour)
			t.Rating = &Rating{ID: 5000 + sp.id, Score: sp.rated, Comment: "Quick and friendly.", CreatedAt: at}
			t.UpdatedAt = at
		}
		tickets = append(tickets, t)
	}
	return &Data{Users: users, Tickets: tickets}
}

// GeneratedFirstUserID is the ID of the first end user Generate makes; end
// user n (0-based) has ID GeneratedFirstUserID+n and the email
// GeneratedUserEmail(n).
const GeneratedFirstUserID = 1001

// GeneratedFirstTicketID is the ID of the first ticket Generate makes;
// ticket n (0-based) has ID GeneratedFirstTicketID+n.
const GeneratedFirstTicketID = 101

// GeneratedUserEmail returns the email of end user n (0-based) made by
// Generate.
func GeneratedUserEmail(n int) string {
	return fmt.Sprintf("user%d@example.com", n+1)
}

var generatedSubjects = []string{
	"Cannot log in", "Invoice question", "Order not delivered", "Change my address",
	"Refund request", "App crashes", "Password reset", "Upgrade my plan",
}

// Generate returns a large account for benchmarks: the Demo staff (IDs 1–3,
// so DemoAdminEmail still works), endUsers end users and tickets tickets.
// Ticket n is requested by end user n % endUsers. About 70% of tickets are
// solved and unrated (type question, assigned to the agent) so they can be
// rated; the rest are spread over the other states. About 3% of end users are
// unverified and 1% suspended. The result depends only on seed. Strings are
// shared between tickets to keep memory modest.
func Generate(seed int64, endUsers, tickets int) *Data {
	if endUsers < 1 {
		endUsers = 1
	}
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	users := slices.Grow(demoStaff(), endUsers)
	at := demoEpoch.AddDate(0, -6, 0)
	for n := range endUsers {
		u := User{ID: GeneratedFirstUserID + int64(n), Name: fmt.Sprintf("User %d", n+1), Email: GeneratedUserEmail(n),
			Role: "end-user", Verified: true, Active: true, Locale: "en-US", TimeZone: "UTC", CreatedAt: at, UpdatedAt: at}
		switch p := rng.IntN(100); {
		case p < 3:
			u.Verified = false
		case p < 4:
			u.Suspended = true
		}
		users = append(users, u)
	}
	ts := make([]Ticket, tickets)
	for n := range tickets {
		id := GeneratedFirstTicketID + int64(n)
		requester := GeneratedFirstUserID + int64(n%endUsers)
		created := demoEpoch.Add(time.Duration(n) * time.Minute)
		subject := generatedSubjects[n%len(generatedSubjects)]
		t := &ts[n]
		*t = Ticket{ID: id, Subject: subject, Description: subject, Type: "question", Priority: "normal",
			RequesterID: requester, SubmitterID: requester, AssigneeID: DemoAgentID, GroupID: 1,
			CreatedAt: created, UpdatedAt: created.Add(time.Hour)}
		switch p := rng.IntN(100); {
		case p < 70:
			t.Status = "solved"
		case p < 80:
			t.Status = "open"
		case p < 85:
			t.Status = "pending"
		case p < 90:
			t.Status = "new"
			t.AssigneeID, t.GroupID = 0, 0
		case p < 95:
			t.Status = "closed"
		default:
			t.Status = "hold"
		}
		t.Comments = []Comment{{ID: id * 10, AuthorID: requester, Body: subject, Public: true, CreatedAt: created}}
	}
	return &Data{Users: users, Tickets: ts}
}
