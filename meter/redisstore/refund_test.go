package redisstore

import (
	"reflect"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

// spend reserves and commits amount on route and returns the usage entry.
func spend(t *testing.T, s *Store, id, route string, amount meter.Credits, pages int, p meter.Period) string {
	t.Helper()
	rid := newRID()
	mustReserveIn(t, s, id, rid, amount, p)
	st, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: amount, Route: route, Pages: pages})
	if err != nil {
		t.Fatal(err)
	}
	return st.EntryID
}

// go-redis resends a call whose reply was lost: the nonce makes the resend
// answer the first refund.
func TestResentRefundIsAnsweredOnce(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(10))
	e := spend(t, s, id, "/a", c(4), 0, meter.Period{})
	var first []any
	for i := 0; i < 2; i++ {
		r, err := s.run(ctx, refundScript, id, e, int64(c(2)), "", "n1")
		if err != nil {
			t.Fatalf("refund %d: %v", i, err)
		}
		if i == 0 {
			first = r.v
		} else if !reflect.DeepEqual(r.v, first) {
			t.Errorf("resend answered %v; want %v", r.v, first)
		}
	}
	expect(t, s, id, c(8), 0, entry{"purchase", c(10), c(10), false}, entry{"usage", -c(4), c(6), false},
		entry{"refund", c(2), c(8), false})
}
