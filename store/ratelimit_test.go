package store

import (
	"testing"
	"time"
)

// near reports whether got is want or up to slack less: the database's
// clock moves on between the statements of a test, which only shortens
// the waits it answers.
func near(got, want, slack time.Duration) bool {
	return got <= want && got >= want-slack
}

// Slots are 10 s apart with a 20 s tolerance (a burst of 2), long enough
// that the milliseconds between statements do not matter.
const (
	slotInterval  = 10 * time.Second
	slotTolerance = 20 * time.Second
	slotSlack     = 2 * time.Second
)

func TestRateSlotsAreSharedByReplicas(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		a := mustOpen(t, dsn, Options{})
		b := mustOpen(t, dsn, Options{}) // another replica
		const acct = "https://acme.zendesk.com"
		// The burst first, then one interval apart, in the order taken,
		// whichever replica takes them.
		for i, step := range []struct {
			db   *DB
			want time.Duration
		}{{a, 0}, {b, 0}, {b, 10 * time.Second}, {a, 20 * time.Second}, {b, 30 * time.Second}} {
			slot, err := step.db.TakeRateSlot(t.Context(), acct, slotInterval, slotTolerance)
			if err != nil {
				t.Fatal(err)
			}
			if !near(slot.Wait, step.want, slotSlack) || slot.Pause != 0 {
				t.Errorf("slot %d = %+v, want a wait of %v and no pause", i, slot, step.want)
			}
		}
		// Another account has a bucket of its own.
		if slot, err := b.TakeRateSlot(t.Context(), "https://other.zendesk.com", slotInterval, slotTolerance); err != nil || slot.Wait != 0 {
			t.Errorf("first slot of another account = %+v, %v; want no wait", slot, err)
		}
	})
}

func TestRateSlotGivenBack(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		const acct = "https://acme.zendesk.com"
		take := func(want time.Duration) {
			t.Helper()
			slot, err := db.TakeRateSlot(t.Context(), acct, slotInterval, slotTolerance)
			if err != nil {
				t.Fatal(err)
			}
			if !near(slot.Wait, want, slotSlack) {
				t.Errorf("slot waits %v, want %v", slot.Wait, want)
			}
		}
		giveBack := func() {
			t.Helper()
			if err := db.GiveBackRateSlot(t.Context(), acct, slotInterval); err != nil {
				t.Fatal(err)
			}
		}
		take(0)
		take(0)
		take(10 * time.Second)
		giveBack()
		// The slot given back is the next one taken.
		take(10 * time.Second)
		// Giving back more than was taken does not grow the burst.
		for range 5 {
			giveBack()
		}
		take(0)
		take(0)
		take(10 * time.Second)
	})
}

func TestRatePauseOnlyGrowsAndDelaysSlots(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		a := mustOpen(t, dsn, Options{})
		b := mustOpen(t, dsn, Options{}) // another replica
		const acct = "https://acme.zendesk.com"
		if got, err := a.RatePause(t.Context(), acct); err != nil || got != 0 {
			t.Fatalf("RatePause before any = %v, %v; want zero", got, err)
		}
		for _, d := range []time.Duration{50 * time.Second, 10 * time.Second} {
			if err := a.ExtendRatePause(t.Context(), acct, d); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := b.RatePause(t.Context(), acct); err != nil || !near(got, 50*time.Second, slotSlack) {
			t.Errorf("the other replica sees a pause of %v (%v), want 50s (a shorter one must not shorten it)", got, err)
		}
		if got, _ := b.RatePause(t.Context(), "https://other.zendesk.com"); got != 0 {
			t.Errorf("another account is paused for %v", got)
		}
		// A slot taken during the pause comes one interval after it: the
		// calls resume at the rate, not with a burst.
		slot, err := b.TakeRateSlot(t.Context(), acct, slotInterval, slotTolerance)
		if err != nil {
			t.Fatal(err)
		}
		if !near(slot.Pause, 50*time.Second, slotSlack) || !near(slot.Wait, 60*time.Second, slotSlack) {
			t.Errorf("slot in a 50s pause = %+v, want a wait of 60s and a pause of 50s", slot)
		}
		if slot, _ := b.TakeRateSlot(t.Context(), acct, slotInterval, slotTolerance); !near(slot.Wait, 70*time.Second, slotSlack) {
			t.Errorf("next slot = %+v, want a wait of 70s", slot)
		}
	})
}

func TestRatePauseEnds(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		db := mustOpen(t, dsn, Options{})
		const acct = "https://acme.zendesk.com"
		if err := db.ExtendRatePause(t.Context(), acct, 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
		if got, err := db.RatePause(t.Context(), acct); err != nil || got != 0 {
			t.Errorf("RatePause after the pause ended = %v, %v; want zero", got, err)
		}
		// Its first slot came 20 ms after it and has passed.
		slot, err := db.TakeRateSlot(t.Context(), acct, 20*time.Millisecond, 40*time.Millisecond)
		if err != nil || slot != (RateSlot{}) {
			t.Errorf("slot after the pause = %+v, %v; want neither wait nor pause", slot, err)
		}
	})
}
