package meter

import (
	"context"
	"time"
)

// RetryPolicy retries a store call that failed because the store could not
// be reached (ECodeMeteringUnavailable), for calls that are idempotent:
// a Commit of one reservation charges once however often it is sent.
type RetryPolicy struct {
	// Attempts is the most calls made, the first included.
	Attempts int
	// Backoff is the wait before the second call; the n-th retry waits n
	// times as long.
	Backoff time.Duration
}

// SettleRetry is the policy of a settle's commit: three attempts, 50 ms
// then 100 ms apart, so a store that blips is not a free request.
var SettleRetry = RetryPolicy{Attempts: 3, Backoff: 50 * time.Millisecond}

// Do calls call until it succeeds, fails with another code, or the
// attempts are spent, and returns its last error. A wait watches ctx: once
// ctx ends, no further call is made and the last error is returned.
func (p RetryPolicy) Do(ctx context.Context, call func() error) error {
	var err error
	for attempt := 0; attempt < max(p.Attempts, 1); attempt++ {
		if attempt > 0 {
			t := time.NewTimer(time.Duration(attempt) * p.Backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return err
			case <-t.C:
			}
		}
		if err = call(); err == nil || ErrorCode(err) != ECodeMeteringUnavailable {
			return err
		}
	}
	return err
}
