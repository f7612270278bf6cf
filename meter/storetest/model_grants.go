package storetest

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/ledger"
)

// Credit grants in the model-based run (on stores that keep them, with a
// clock the run can read: ModelClock.Now): create (short: expiring at the
// next advance of the clock, on a fake clock only; long; never), void,
// and their expiry.

// endLots is the stores' EndLots at the store time the run last advanced
// to (a fake clock does not move in between).
func (r *refAccount) endLots() {
	es, evs := r.a.EndLots(r.lotNow)
	for i := range es {
		r.record(&es[i], nil)
	}
	r.record(nil, evs)
}

// grantStep creates or voids a credit grant on the store and the model;
// it returns the step's description and both errors.
func grantStep(rng *rand.Rand, gs meter.GrantStore, clk ModelClock, r *refAccount) (string, error, error) {
	if len(r.a.Lots) > 0 && rng.Intn(3) == 0 {
		id := r.a.Lots[rng.Intn(len(r.a.Lots))].ID
		if rng.Intn(8) == 0 {
			id = "gr_none"
		}
		_, gerr := gs.VoidCreditGrant(ctx, r.id, id)
		es, evs, werr := r.a.VoidLot(id)
		for i := range es {
			r.record(&es[i], nil)
		}
		r.record(nil, evs)
		r.endLots()
		return fmt.Sprintf("void grant %s %s", r.id, id), gerr, werr
	}
	req := meter.CreditGrantRequest{AccountID: r.id, Amount: meter.Credits(int64(rng.Intn(8)+1) * 1000),
		Priority: int64(rng.Intn(3))}
	kind := rng.Intn(3)
	if clk.Real && kind == 0 {
		kind = 1 // on a real clock the run cannot tell when the store saw the expiry
	}
	switch kind {
	case 0: // expires at the next advance
		req.ExpiresAt = clk.Now().Add(max(clk.TTL, time.Millisecond))
	case 1:
		req.ExpiresAt = clk.Now().Add(time.Hour)
	}
	desc := fmt.Sprintf("create grant %s %d priority %d kind %d", r.id, req.Amount, req.Priority, kind)
	g, gerr := gs.CreateCreditGrant(ctx, req)
	if gerr != nil {
		return desc, gerr, nil
	}
	l := ledger.Lot{ID: g.ID, Granted: int64(g.Amount), Priority: g.Priority, Created: g.CreatedAt.UnixMilli()}
	if g.ExpiresAt != nil {
		l.Expires = g.ExpiresAt.UnixMilli()
	}
	e, evs, werr := r.a.AddLot(l)
	if werr == nil {
		r.record(&e, evs)
	}
	return desc + " " + g.ID, gerr, werr
}

// logGrantParts logs how many entries of each type carried grant parts:
// what of the grants a run exercised.
func logGrantParts(t *testing.T, accts []*refAccount) {
	n := map[string]int{}
	for _, a := range accts {
		for _, e := range a.entries {
			if len(e.Lots) > 0 {
				n[e.Type]++
			}
		}
	}
	t.Logf("entries with credit grant parts, by type: %v", n)
}
