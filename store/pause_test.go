package store

import (
	"testing"
	"time"
)

func TestRatePauseOnlyGrows(t *testing.T) {
	t.Parallel()
	forEachDB(t, func(t *testing.T, dsn string) {
		a := mustOpen(t, dsn, Options{})
		b := mustOpen(t, dsn, Options{}) // another replica
		const acct = "https://acme.zendesk.com"
		if got, err := a.RatePause(t.Context(), acct); err != nil || !got.IsZero() {
			t.Fatalf("RatePause before any = %v, %v; want zero", got, err)
		}
		base := time.Now().UTC().Truncate(time.Microsecond)
		for _, until := range []time.Time{base.Add(2 * time.Second), base.Add(time.Second)} {
			if err := a.ExtendRatePause(t.Context(), acct, until); err != nil {
				t.Fatal(err)
			}
		}
		if got, _ := b.RatePause(t.Context(), acct); !got.Equal(base.Add(2 * time.Second)) {
			t.Errorf("the other replica sees the pause until %v, want %v (a shorter one must not shorten it)", got, base.Add(2*time.Second))
		}
		if got, _ := b.RatePause(t.Context(), "https://other.zendesk.com"); !got.IsZero() {
			t.Errorf("another account is paused until %v", got)
		}
	})
}
