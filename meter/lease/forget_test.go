package lease_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/lease"
)

// A settled carve's answer is kept for a repeated call until Forget; after
// it a repeated Commit or Void is the store's answer to an id it never
// held, and charges nothing: forgetting never charges twice.
func TestForgetDropsTheKeptAnswer(t *testing.T) {
	srv := redistest.New(t)
	gw := gateway(t, srv, lease.Options{MinRate: 1})
	var _ meter.Forgetter = gw
	id := fmt.Sprintf("forget_%d", time.Now().UnixNano())
	const initial, cost meter.Credits = 1000 * meter.Scale, 2 * meter.Scale
	if _, err := gw.CreateAccount(ctx, id, initial); err != nil {
		t.Fatal(err)
	}
	const n = 6
	first := map[string]meter.Settlement{}
	for i := range n {
		rid := fmt.Sprintf("r%d", i)
		if _, err := gw.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: cost, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		st, err := gw.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: cost, Route: "/r"})
		if err != nil {
			t.Fatal(err)
		}
		first[rid] = st
	}
	carved := gw.Stats().Carves
	if carved < 3 || gw.Stats().Kept != int(carved) {
		t.Fatalf("stats %+v: want 3 or more carves, each answer kept", gw.Stats())
	}
	last := fmt.Sprintf("r%d", n-1) // carved: the lease was taken by then
	again, err := gw.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: last, Amount: cost, Route: "/r"})
	if err != nil || again.EntryID != first[last].EntryID || again.Charged != cost {
		t.Fatalf("repeated commit before Forget: %+v, %v; want the first answer %+v", again, err, first[last])
	}
	for rid := range first {
		gw.Forget(id, rid)
	}
	if k := gw.Stats().Kept; k != 0 {
		t.Fatalf("%d answers kept after Forget", k)
	}
	_, err = gw.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: last, Amount: cost, Route: "/r"})
	if meter.ErrorCode(err) != meter.ECodeReservationNotFound {
		t.Fatalf("commit after Forget: %v; want reservation_not_found", err)
	}
	if _, err := gw.Void(ctx, id, last); meter.ErrorCode(err) != meter.ECodeReservationNotFound {
		t.Fatalf("void after Forget: %v; want reservation_not_found", err)
	}
	gw.Forget(id, "never-reserved")
	gw.Forget("no-such-account", last)
	if sum, usage := ledgerSum(t, gw, id); sum != initial-n*cost || usage != n {
		t.Fatalf("ledger %s over %d usage entries; want %s over %d", sum, usage, initial-n*cost, n)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	acct, err := gw.Settler.Account(ctx, id)
	if err != nil || acct.Balance != initial-n*cost || acct.Reserved != 0 {
		t.Fatalf("account %+v, %v: want balance %s, nothing held", acct, err, initial-n*cost)
	}
}
