package meter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

func TestRetryPolicy(t *testing.T) {
	down := meter.Unavailable(errors.New("connection refused"))
	refused := meter.Errorf(meter.ECodeInsufficientCredits, "no")
	for _, tc := range []struct {
		name  string
		fails []error // what each call returns; nil past the end
		calls int
		code  string
	}{
		{"succeeds at once", nil, 1, ""},
		{"a blip", []error{down}, 2, ""},
		{"two blips", []error{down, down}, 3, ""},
		{"down for good", []error{down, down, down, down}, 3, meter.ECodeMeteringUnavailable},
		{"a refusal is not retried", []error{refused}, 1, meter.ECodeInsufficientCredits},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := meter.RetryPolicy{Attempts: 3, Backoff: time.Microsecond}.Do(context.Background(), func() error {
				calls++
				if calls <= len(tc.fails) {
					return tc.fails[calls-1]
				}
				return nil
			})
			if calls != tc.calls || meter.ErrorCode(err) != tc.code && !(tc.code == "" && err == nil) {
				t.Fatalf("%d calls, error %v; want %d calls, code %q", calls, err, tc.calls, tc.code)
			}
		})
	}
}

// TestRetryStopsWhenContextEnds: a wait of an hour ends as soon as the
// context does, with the last error and no further call.
func TestRetryStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	done := make(chan error, 1)
	go func() {
		done <- meter.RetryPolicy{Attempts: 3, Backoff: time.Hour}.Do(ctx, func() error {
			calls++
			return meter.Unavailable(errors.New("connection refused"))
		})
	}()
	cancel()
	// Without the context the wait would be an hour: the test's own
	// timeout would fail it.
	err := <-done
	if calls != 1 || meter.ErrorCode(err) != meter.ECodeMeteringUnavailable {
		t.Fatalf("%d calls, error %v; want 1 call, metering_unavailable", calls, err)
	}
}
