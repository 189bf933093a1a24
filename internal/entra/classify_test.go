package entra

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/socsync/socsync/internal/throttle"
)

// emulatorCodes are the AADSTS codes internal/emulator/entra.go and handler.go send.
var emulatorCodes = []int{90002, 900144, 70003, 70011, 1002012, 700016, 7000219, 7000215, 7000218,
	7000229, 50027, 700027, 700021, 5002738, 700024, 50196, 90033, 900561}

func TestClassify_KnowsEveryCodeTheEmulatorSends(t *testing.T) {
	for _, code := range emulatorCodes {
		if _, ok := aadstsCodes[code]; !ok {
			t.Errorf("AADSTS%d is not classified", code)
		}
	}
}

func TestClassify_MapsTokenFailuresToHealth(t *testing.T) {
	aad := func(code int) error {
		return fmt.Errorf("ClientSecretCredential authentication failed. {\"error_description\": \"AADSTS%d: something\\r\\nTrace ID: x\"}", code)
	}
	until := time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		err        error
		kind       string
		reasonHas  string
		reasonNot  string
		reasonCode string
	}{
		{name: "nil", err: nil, kind: ""},
		{name: "consent revoked", err: aad(7000229), kind: KindDegraded, reasonHas: "AADSTS7000229: consent"},
		{name: "consent never given", err: aad(65001), kind: KindDegraded, reasonHas: "AADSTS65001"},
		{name: "resource principal missing", err: aad(500011), kind: KindDegraded, reasonHas: "AADSTS500011"},
		{name: "bad secret", err: aad(7000215), kind: KindDegraded, reasonHas: "invalid client secret"},
		{name: "expired secret", err: aad(7000222), kind: KindDegraded, reasonHas: "expired"},
		{name: "unknown tenant", err: aad(90002), kind: KindDegraded, reasonHas: "tenant not found"},
		{name: "unknown app", err: aad(700016), kind: KindDegraded, reasonHas: "AADSTS700016"},
		{name: "disabled app", err: aad(7000112), kind: KindDegraded, reasonHas: "disabled"},
		{name: "Entra transient", err: aad(90033), kind: KindTransient, reasonHas: "AADSTS90033"},
		{name: "Entra request loop", err: aad(50196), kind: KindThrottled, reasonHas: "AADSTS50196"},
		{name: "unknown code", err: aad(4242424), kind: KindDegraded, reasonHas: "AADSTS4242424: sign-in refused"},
		{name: "throttled by the remote", err: fmt.Errorf("wrapped: %w", &throttle.Throttled{Key: throttle.Key{API: "token", Scope: "t"}, NotBefore: until, Status: 429}),
			kind: KindThrottled, reasonHas: "throttled (429) until 2026-03-01T12:01:00Z"},
		{name: "throttled by the local budget", err: &throttle.Throttled{NotBefore: until}, kind: KindThrottled, reasonHas: "budget"},
		{name: "configuration", err: &ConfigError{Tenant: "t", Path: "tenants[2].credential", Err: errors.New("client_secret: environment variable X (from env:X) is not set")},
			kind: KindDegraded, reasonHas: "tenants[2].credential: client_secret"},
		{name: "other tenant", err: fmt.Errorf("x: %w", ErrOtherTenant), kind: KindDegraded},
		{name: "canceled", err: fmt.Errorf("x: %w", context.Canceled), kind: KindTransient, reasonHas: "canceled"},
		{name: "timeout", err: fmt.Errorf("x: %w", context.DeadlineExceeded), kind: KindTransient, reasonHas: "timed out"},
		{name: "anything else", err: errors.New("connection refused to https://login.example/x?client_secret=hunter2"), kind: KindTransient, reasonNot: "hunter2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, reason := Classify(tc.err)
			if kind != tc.kind || !strings.Contains(reason, tc.reasonHas) || (tc.reasonNot != "" && strings.Contains(reason, tc.reasonNot)) {
				t.Fatalf("Classify = %s %q; want %s with %q", kind, reason, tc.kind, tc.reasonHas)
			}
		})
	}
}
