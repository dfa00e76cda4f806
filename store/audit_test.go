package store

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// mustAuditEvents stores events in order and returns them with IDs set.
func mustAuditEvents(t *testing.T, db *DB, events []AuditEvent) []AuditEvent {
	t.Helper()
	for i := range events {
		if err := db.CreateAuditEvent(t.Context(), &events[i]); err != nil {
			t.Fatalf("CreateAuditEvent(%+v): %v", events[i], err)
		}
	}
	return events
}

func ids(events []AuditEvent) []int64 {
	out := []int64{}
	for _, e := range events {
		out = append(out, e.ID)
	}
	return out
}

func TestAuditEventRoundTrip(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		clock := newTestClock()
		db := mustOpen(t, dsn, Options{Now: clock.Now})
		e := AuditEvent{
			AdminID: 1, AdminName: "Ann", Action: "rate", EndUserID: 20, EndUser: "eve@example.com",
			TicketID: 300, Outcome: OutcomeOK, Detail: "good", ZendeskID: 4000, RunID: 5,
			RequestID: "req-1", RemoteAddr: "127.0.0.1",
		}
		if err := db.CreateAuditEvent(t.Context(), &e); err != nil {
			t.Fatal(err)
		}
		if e.ID == 0 || !e.Time.Equal(clock.Now()) {
			t.Errorf("after create: ID %d Time %v, want ID set and Time now", e.ID, e.Time)
		}
		got, total, err := db.FindAuditEvents(t.Context(), AuditFilter{})
		if err != nil || total != 1 {
			t.Fatalf("FindAuditEvents = %v, %d, %v", got, total, err)
		}
		if diff := cmp.Diff([]AuditEvent{e}, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	})
}

func TestAuditEventValidation(t *testing.T) {
	t.Parallel()
	db := mustOpen(t, newSQLiteDSN(t), Options{})
	for name, e := range map[string]AuditEvent{
		"no action":   {Outcome: OutcomeOK},
		"bad outcome": {Action: "rate", Outcome: "maybe"},
		"no outcome":  {Action: "rate"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := db.CreateAuditEvent(t.Context(), &e); !errors.Is(err, ErrInvalid) {
				t.Errorf("CreateAuditEvent(%+v): err = %v, want ErrInvalid", e, err)
			}
		})
	}
}

func TestFindAuditEvents(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		t0 := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
		at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
		ev := mustAuditEvents(t, db, []AuditEvent{
			{Time: at(0), AdminID: 1, Action: "rate", EndUser: "eve@example.com", Outcome: OutcomeOK},
			{Time: at(1), AdminID: 1, Action: "comment", EndUser: "Eve@Example.com", Outcome: OutcomeFailed},
			{Time: at(2), AdminID: 2, Action: "rate", EndUser: "bob@example.com", Outcome: OutcomeRefused},
			{Time: at(3), AdminID: 2, Action: "solve", EndUser: "eve@example.com", Outcome: OutcomeOK},
			{Time: at(4), AdminID: 1, Action: "rate", EndUser: "bob@example.com", Outcome: OutcomeOK},
			// Same time as the previous one: id breaks the tie.
			{Time: at(4), AdminID: 3, Action: "login_refused", Outcome: OutcomeRefused},
			{Time: at(5), AdminID: 1, Action: "rate", EndUserID: 10, EndUser: "bea@example.com", Outcome: OutcomeRefused, RunID: 7},
			{Time: at(6), AdminID: 1, Action: "bulk_confirm", Outcome: OutcomeOK, RunID: 7},
		})
		tests := []struct {
			name string
			f    AuditFilter
			want []int64
		}{
			{"all newest first", AuditFilter{To: at(5)}, []int64{ev[5].ID, ev[4].ID, ev[3].ID, ev[2].ID, ev[1].ID, ev[0].ID}},
			{"admin", AuditFilter{AdminID: 1, To: at(5)}, []int64{ev[4].ID, ev[1].ID, ev[0].ID}},
			{"end user by email or id", AuditFilter{EndUser: "10"}, []int64{ev[6].ID}},
			{"run", AuditFilter{RunID: 7}, []int64{ev[7].ID, ev[6].ID}},
			// The shared vocabulary: a refused action as an end user failed,
			// as its bulk row did; a refused login was refused.
			{"result done", AuditFilter{Result: ResultDone}, []int64{ev[7].ID, ev[4].ID, ev[3].ID, ev[0].ID}},
			{"result failed", AuditFilter{Result: ResultFailed}, []int64{ev[6].ID, ev[2].ID, ev[1].ID}},
			{"result refused", AuditFilter{Result: ResultRefused}, []int64{ev[5].ID}},
			{"end user ignores case", AuditFilter{EndUser: "EVE@example.COM"}, []int64{ev[3].ID, ev[1].ID, ev[0].ID}},
			{"action", AuditFilter{Action: "rate", To: at(5)}, []int64{ev[4].ID, ev[2].ID, ev[0].ID}},
			{"outcome", AuditFilter{Outcome: OutcomeRefused, To: at(5)}, []int64{ev[5].ID, ev[2].ID}},
			{"from inclusive", AuditFilter{From: at(3), To: at(5)}, []int64{ev[5].ID, ev[4].ID, ev[3].ID}},
			{"to exclusive", AuditFilter{To: at(1)}, []int64{ev[0].ID}},
			{"window", AuditFilter{From: at(1), To: at(3)}, []int64{ev[2].ID, ev[1].ID}},
			{"combined", AuditFilter{AdminID: 1, Action: "rate", EndUser: "bob@example.com"}, []int64{ev[4].ID}},
			{"no match", AuditFilter{Action: "nothing"}, []int64{}},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				got, total, err := db.FindAuditEvents(t.Context(), tc.f)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tc.want, ids(got)); diff != "" {
					t.Errorf("ids (-want +got):\n%s", diff)
				}
				if total != len(tc.want) {
					t.Errorf("total = %d, want %d", total, len(tc.want))
				}
			})
		}

		t.Run("paging", func(t *testing.T) {
			all := []int64{ev[5].ID, ev[4].ID, ev[3].ID, ev[2].ID, ev[1].ID, ev[0].ID}
			for offset := 0; offset < 8; offset += 4 {
				got, total, err := db.FindAuditEvents(t.Context(), AuditFilter{To: at(5), Limit: 4, Offset: offset})
				if err != nil {
					t.Fatal(err)
				}
				want := all[offset:min(offset+4, len(all))]
				if diff := cmp.Diff(want, ids(got)); diff != "" {
					t.Errorf("page at offset %d (-want +got):\n%s", offset, diff)
				}
				if total != 6 {
					t.Errorf("total at offset %d = %d, want 6 (all matches, not the page)", offset, total)
				}
			}
			got, total, err := db.FindAuditEvents(t.Context(), AuditFilter{AdminID: 1, To: at(5), Limit: 2, Offset: 2})
			if err != nil || total != 3 || len(got) != 1 || got[0].ID != ev[0].ID {
				t.Errorf("filtered page = %v, total %d, %v; want [%d], total 3", ids(got), total, err, ev[0].ID)
			}
		})
	})
}

func TestFindAuditEventsDefaultLimit(t *testing.T) {
	t.Parallel()
	db := mustOpen(t, newSQLiteDSN(t), Options{})
	events := make([]AuditEvent, DefaultAuditLimit+5)
	for i := range events {
		events[i] = AuditEvent{Action: "rate", Outcome: OutcomeOK}
	}
	mustAuditEvents(t, db, events)
	got, total, err := db.FindAuditEvents(t.Context(), AuditFilter{})
	if err != nil || len(got) != DefaultAuditLimit || total != len(events) {
		t.Errorf("FindAuditEvents = %d events, total %d, %v; want %d, %d", len(got), total, err, DefaultAuditLimit, len(events))
	}
}

func TestListAuditAdmins(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		if got, err := db.ListAuditAdmins(t.Context()); err != nil || len(got) != 0 {
			t.Fatalf("empty trail: ListAuditAdmins = %v, %v; want none", got, err)
		}
		t0 := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
		mustAuditEvents(t, db, []AuditEvent{
			{Time: t0.Add(2 * time.Hour), AdminID: 1, AdminName: "Ann B.", Action: "rate", Outcome: OutcomeOK},
			// Inserted later but older: the newest event by time names the admin.
			{Time: t0, AdminID: 1, AdminName: "Ann", Action: "rate", Outcome: OutcomeOK},
			{Time: t0, AdminID: 2, AdminName: "Zed", Action: "rate", Outcome: OutcomeOK},
			{Time: t0, AdminID: 2, AdminName: "Zed", Action: "solve", Outcome: OutcomeFailed},
			{Time: t0, AdminID: 3, AdminName: "bob", Action: "rate", Outcome: OutcomeOK},
			{Time: t0, AdminID: 0, AdminName: "", Action: "login_refused", Outcome: OutcomeRefused},
		})
		got, err := db.ListAuditAdmins(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := []AuditAdmin{{1, "Ann B."}, {3, "bob"}, {2, "Zed"}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ListAuditAdmins (-want +got):\n%s", diff)
		}
	})
}

func TestAuditEventResult(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		action, outcome, want string
	}{
		{"rate", OutcomeOK, ResultDone},
		{"rate", OutcomeRefused, ResultFailed},
		{"create_request", OutcomeRefused, ResultFailed},
		{"comment", OutcomeFailed, ResultFailed},
		{"login_refused", OutcomeRefused, ResultRefused},
		{"bulk_confirm", OutcomeRefused, ResultRefused},
		{"logout", OutcomeOK, ResultDone},
	} {
		if got := (AuditEvent{Action: tc.action, Outcome: tc.outcome}).Result(); got != tc.want {
			t.Errorf("%s %s: Result() = %q, want %q", tc.action, tc.outcome, got, tc.want)
		}
	}
}

// TestMigration0008NamesFormRefusals runs 0008's statements again over
// events written the old way: a form's refusal named the end user "10"
// with no id; afterwards it carries the id and the email other events of
// that user have, and events of unknown users stay as they were.
func TestMigration0008NamesFormRefusals(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		t0 := time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC)
		ev := mustAuditEvents(t, db, []AuditEvent{
			{Time: t0, AdminID: 1, Action: "comment", EndUser: "10", Outcome: OutcomeRefused},
			{Time: t0.Add(time.Hour), AdminID: 1, Action: "rate", EndUserID: 10, EndUser: "bea@example.com", Outcome: OutcomeOK},
			{Time: t0.Add(2 * time.Hour), AdminID: 1, Action: "rate", EndUser: "77", Outcome: OutcomeRefused},
			{Time: t0.Add(3 * time.Hour), AdminID: 1, Action: "login", EndUser: "", Outcome: OutcomeOK},
		})
		body, err := migrationFiles.ReadFile("migrations/" + db.Dialect() + "/0008_audit.sql")
		if err != nil {
			t.Fatal(err)
		}
		for _, stmt := range splitStatements(string(body)) {
			if _, err := db.db.ExecContext(t.Context(), stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		got, _, err := db.FindAuditEvents(t.Context(), AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		byID := map[int64]AuditEvent{}
		for _, e := range got {
			byID[e.ID] = e
		}
		for _, tc := range []struct {
			id    int64
			uid   int64
			email string
		}{
			{ev[0].ID, 10, "bea@example.com"},
			{ev[1].ID, 10, "bea@example.com"},
			{ev[2].ID, 77, "77"}, // no email known for user 77
			{ev[3].ID, 0, ""},
		} {
			if e := byID[tc.id]; e.EndUserID != tc.uid || e.EndUser != tc.email {
				t.Errorf("event %d: end user %d %q, want %d %q", tc.id, e.EndUserID, e.EndUser, tc.uid, tc.email)
			}
		}
	})
}
