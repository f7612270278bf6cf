package meter_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/boltstore"
)

// TestValidatedRefusesBeforeTheStore: invalid inputs are refused by the
// wrapper, before the store: here a closed store, which would answer
// anything that reached it with an internal error.
func TestValidatedRefusesBeforeTheStore(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "meter.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	v := meter.Validated(s)
	ctx := context.Background()
	period := meter.Period{Start: time.Unix(10, 0), End: time.Unix(5, 0)} // ends before it starts
	for _, tc := range []struct {
		name string
		code string
		call func() error
	}{
		{"account id", meter.ECodeInvalid, func() error { _, err := v.Account(ctx, "bad id{"); return err }},
		{"initial credits", meter.ECodeInvalid, func() error { _, err := v.CreateAccount(ctx, "a", -1); return err }},
		{"key hash", meter.ECodeInvalidAPIKey, func() error { _, err := v.LookupKey(ctx, "not-a-hash"); return err }},
		{"key record", meter.ECodeInvalid, func() error { return v.AddKey(ctx, meter.Key{AccountID: "a"}) }},
		{"grant of 0", meter.ECodeInvalid, func() error {
			_, err := v.Grant(ctx, meter.Grant{AccountID: "a", Type: meter.EntryPurchase})
			return err
		}},
		{"negative reservation", meter.ECodeInvalid, func() error {
			_, err := v.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: "r", Amount: -1, TTL: time.Minute})
			return err
		}},
		{"reservation period", meter.ECodeInvalid, func() error {
			_, err := v.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: "r", Amount: 1, TTL: time.Minute, Period: period})
			return err
		}},
		{"commit of nothing", meter.ECodeReservationNotFound, func() error {
			_, err := v.Commit(ctx, meter.CommitRequest{AccountID: "a"})
			return err
		}},
		{"void of nothing", meter.ECodeReservationNotFound, func() error { _, err := v.Void(ctx, "a", ""); return err }},
		// "L:" + a lease id is where redisstore keeps a lease's last reply,
		// among the reservations: no reservation may take or name it.
		{"reservation id of a kept reply", meter.ECodeInvalid, func() error {
			_, err := v.Reserve(ctx, meter.ReserveRequest{AccountID: "a", ID: "L:lease.g.1", Amount: 1, TTL: time.Minute})
			return err
		}},
		{"commit of a kept reply", meter.ECodeReservationNotFound, func() error {
			_, err := v.Commit(ctx, meter.CommitRequest{AccountID: "a", ReservationID: "L:lease.g.1"})
			return err
		}},
		{"void of a kept reply", meter.ECodeReservationNotFound, func() error {
			_, err := v.Void(ctx, "a", "L:lease.g.1")
			return err
		}},
		{"negative refund", meter.ECodeInvalid, func() error {
			_, err := v.Refund(ctx, meter.Refund{AccountID: "a", Amount: -1})
			return err
		}},
		{"ledger limit", meter.ECodeInvalid, func() error {
			_, err := v.Ledger(ctx, meter.LedgerQuery{AccountID: "a", Limit: -1})
			return err
		}},
		{"settings limits", meter.ECodeInvalid, func() error {
			_, err := v.UpdateSettings(ctx, "a", meter.Settings{MonthlyQuota: meter.MaxCredits + 1})
			return err
		}},
		{"job id", meter.ECodeJobNotFound, func() error { _, err := v.Job(ctx, "a", ""); return err }},
		{"upstream job id", meter.ECodeInvalid, func() error { return v.AttachJob(ctx, "a", "job_1", "") }},
		{"job request", meter.ECodeInvalid, func() error { _, err := v.CreateJob(ctx, meter.JobRequest{AccountID: "a"}); return err }},
		{"plan name", meter.ECodeInvalid, func() error { return v.PutPlan(ctx, meter.Plan{Name: ""}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); meter.ErrorCode(err) != tc.code {
				t.Fatalf("err %v; want %s", err, tc.code)
			}
		})
	}
	// A valid call does reach the (closed) store.
	if _, err := v.Account(ctx, "a"); err == nil || meter.ErrorCode(err) == meter.ECodeInvalid {
		t.Fatalf("a valid call on a closed store: %v", err)
	}
}
