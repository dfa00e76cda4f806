package zendesk_test

import (
	"errors"
	"testing"

	"github.com/onbehalf/onbehalf/zendesk"
	"github.com/onbehalf/onbehalf/zendesk/sandbox"
)

// TestSatisfactionReasons reads the sandbox account's reasons for a bad
// rating: the system reasons and the custom one, each with its code and
// name; an end user may not read them.
func TestSatisfactionReasons(t *testing.T) {
	srv := newTestSandbox(t, sandbox.Options{})
	admin := newSandboxClient(t, srv, sandbox.DemoAdminEmail, fullScope)
	rs, err := admin.SatisfactionReasons(t.Context())
	if err != nil {
		t.Fatalf("SatisfactionReasons: %v", err)
	}
	byCode := map[int]string{}
	for _, r := range rs {
		byCode[r.ReasonCode] = r.Value
	}
	if byCode[5] != "The issue took too long to resolve" {
		t.Errorf("reason 5 = %q, want the system reason; got %+v", byCode[5], rs)
	}
	if byCode[sandbox.CustomReasonCode] != sandbox.CustomReasonName {
		t.Errorf("custom reason %d = %q, want %q", sandbox.CustomReasonCode, byCode[sandbox.CustomReasonCode], sandbox.CustomReasonName)
	}
	if _, ok := byCode[99]; ok {
		t.Errorf("reason 99 listed; the sandbox has none")
	}
	bea := newSandboxClient(t, srv, sandbox.DemoBeaEmail, fullScope)
	if _, err := bea.SatisfactionReasons(t.Context()); !errors.Is(err, zendesk.ErrForbidden) {
		t.Errorf("an end user's read: err = %v, want ErrForbidden", err)
	}
}
