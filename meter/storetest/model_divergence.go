package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// JobHoldIsNotAReservation: a job's hold (reservation id "job:" + the job
// id) is settled by the job's calls only. Commit and Void of it answer
// reservation_not_found and leave it held, as meter/ledger's reference
// and the embedded store do.
func JobHoldIsNotAReservation(t *testing.T, s meter.Store) {
	s = meter.Validated(s) // as the app: the stores leave input checks to it
	id := newAccount(t, s, c(10))
	job := newID("job")
	if _, err := s.CreateJob(ctx, meter.JobRequest{AccountID: id, ID: job, Route: "/jobs",
		Rates: map[string]meter.Credits{"page": c(1)}, Estimate: c(4), TTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	rid := meter.JobHoldPrefix + job
	_, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: c(4)})
	wantCode(t, err, meter.ECodeReservationNotFound)
	_, err = s.Void(ctx, id, rid)
	wantCode(t, err, meter.ECodeReservationNotFound)
	expect(t, s, id, c(10), c(4), entry{"purchase", c(10), c(10), false})
	if j, err := s.Job(ctx, id, job); err != nil || j.Reserved != c(4) || j.Status != meter.JobRunning {
		t.Fatalf("job %+v, %v; want running with 4 held", j, err)
	}
}

// JobChargeBeyondItsHold: a job's charge larger than its hold takes the
// hold's parts, then the rest from the pools as they were: the hold's
// balance part leaves the reserved amount and the balance together, so it
// never counts as free balance twice. Balance 10, overage cap 6; the job
// holds 1.5, another request 7 (1.5 of balance left free); 6 pages at 1:
// 1.5 from the hold, 1.5 from the balance, 3 from the overage. (The
// embedded store took 3 from the balance and 1.5 from the overage before
// meter/ledger; redisstore's charge_owed was right.)
func JobChargeBeyondItsHold(t *testing.T, s meter.Store) {
	s = meter.Validated(s) // as the app: the stores leave input checks to it
	id := newAccount(t, s, c(10))
	if _, err := s.UpdateSettings(ctx, id, meter.Settings{OverageCap: c(6)}); err != nil {
		t.Fatal(err)
	}
	job := newID("job")
	if _, err := s.CreateJob(ctx, meter.JobRequest{AccountID: id, ID: job, Route: "/jobs",
		Rates: map[string]meter.Credits{"page": c(1)}, Estimate: c(1.5), TTL: time.Hour, Period: month(1)}); err != nil {
		t.Fatal(err)
	}
	mustReserveIn(t, s, id, "r1", c(7), month(1))
	res, err := s.ReportJob(ctx, meter.JobReport{AccountID: id, JobID: job, Done: map[string]int{"page": 6}, Period: month(1)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Charged != c(6) || res.Job.Status != meter.JobRunning {
		t.Fatalf("report: %+v", res)
	}
	expectPools(t, s, id, c(4), c(7), qs(0, 0, 0, 0), ovs(6, 3, 0, 3), use{-c(6), 0, c(3), c(4)})
}

// ExpiredHoldsBeyondOneSweep: holds whose TTL has passed give their
// credits back at once, however many expired together: the model expires
// every hold due at the store's clock before it spends. 250 holds of 1
// credit expire; a reserve of all 250 credits is then covered. (redisstore
// swept at most 200 timers per call, so the 50 left still counted as
// reserved; it now sweeps up to 1000, see its lib.lua.)
func ExpiredHoldsBeyondOneSweep(t *testing.T, s meter.Store, ttl time.Duration, advance func(time.Duration)) {
	s = meter.Validated(s) // as the app: the stores leave input checks to it
	id := newAccount(t, s, c(250))
	for i := 0; i < 250; i++ {
		if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: fmt.Sprint("h", i), Amount: c(1), TTL: ttl}); err != nil {
			t.Fatal(err)
		}
	}
	advance(ttl + 5*time.Millisecond)
	r, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: "all", Amount: c(250), TTL: time.Minute})
	if err != nil {
		t.Fatalf("reserve of the whole balance after every hold expired: %v", err)
	}
	if r.Amount != c(250) || r.Available != 0 {
		t.Fatalf("reservation %+v", r)
	}
}
