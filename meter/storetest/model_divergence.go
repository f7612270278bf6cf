package storetest

import (
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// JobHoldIsNotAReservation: a job's hold (reservation id "job:" + the job
// id) is settled by the job's calls only. Commit and Void of it answer
// reservation_not_found and leave it held, as meter/ledger's reference
// and the embedded store do. (redisstore's commit.lua and void.lua do not
// tell a job's hold from a request's: see its TestModelDivergences.)
func JobHoldIsNotAReservation(t *testing.T, s meter.Store) {
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
