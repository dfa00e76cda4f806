package handlers

import (
	"fmt"
	"testing"
	"time"
)

func TestLimitKeyGroupsAnIPv6Network(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.7":               "192.0.2.7",
		"::ffff:192.0.2.7":        "192.0.2.7",
		"2001:db8:1:2::5":         "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff:1:2:3": "2001:db8:1:2::/64",
		"2001:db8:1:3::5":         "2001:db8:1:3::/64",
		"fe80::1%eth0":            "fe80::/64",
		"not an address":          "not an address",
	} {
		if got := limitKey(addr); got != want {
			t.Errorf("limitKey(%q) = %q, want %q", addr, got, want)
		}
	}
}

// The addresses of one IPv6 /64 share one allowance: a client cannot get
// more sign-ins by using more of its own addresses.
func TestLoginLimitSharesAnIPv6NetworksAllowance(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := newAddrLimiter(3, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.allow(fmt.Sprintf("2001:db8:1:2::%x", i+1)); !ok {
			t.Fatalf("sign-in %d of the network refused within its allowance", i+1)
		}
	}
	if ok, _ := l.allow("2001:db8:1:2::99"); ok {
		t.Error("a fourth address of the same /64 got a sign-in past the allowance")
	}
	if ok, _ := l.allow("2001:db8:1:3::1"); !ok {
		t.Error("another /64 was refused")
	}
}

// A flood from more addresses than the limiter remembers neither grows it
// without bound nor wipes everyone's count: addresses it cannot remember
// share one allowance, and those it knows keep theirs.
func TestLoginLimitHoldsAgainstAFloodOfAddresses(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	const perMinute = 5
	l := newAddrLimiter(perMinute, func() time.Time { return now })
	known := "198.51.100.1"
	for range perMinute {
		l.allow(known) // spent
	}
	for i := range maxLimiterAddrs - 1 {
		if ok, _ := l.allow(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)); !ok {
			t.Fatalf("flood address %d refused before the limiter was full", i)
		}
	}
	allowed := 0
	for i := range 1000 {
		if ok, _ := l.allow(fmt.Sprintf("172.16.%d.%d", i>>8&255, i&255)); ok {
			allowed++
		}
	}
	if allowed != perMinute {
		t.Errorf("1,000 more addresses with the limiter full got %d sign-ins, want %d (one shared allowance)", allowed, perMinute)
	}
	if ok, _ := l.allow(known); ok {
		t.Error("the flood reset the count of an address that had used its allowance")
	}
	if n := len(l.buckets); n > maxLimiterAddrs+1 {
		t.Errorf("the limiter remembers %d addresses, want at most %d", n, maxLimiterAddrs+1)
	}
	now = now.Add(time.Minute) // all refilled: room again
	if ok, _ := l.allow("203.0.113.9"); !ok {
		t.Error("a new address a minute later was refused")
	}
}
