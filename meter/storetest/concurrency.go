package storetest

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// 100 requests of 1 credit race for 37 credits: exactly 37 are served.
func testConcurrentReserve(t *testing.T, s meter.Store) {
	id := newAccount(t, s, c(37))
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rid := newRID()
			_, err := reserve(s, id, rid, c(1), time.Minute, "")
			if meter.ErrorCode(err) == meter.ECodeInsufficientCredits {
				refused.Add(1)
				return
			}
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := commit(s, id, rid, c(1)); err != nil {
				t.Error(err)
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	if ok.Load() != 37 || refused.Load() != 63 {
		t.Errorf("%d served, %d refused; want 37, 63", ok.Load(), refused.Load())
	}
	want := []entry{{"purchase", c(37), c(37), false}}
	for i := 36; i >= 0; i-- {
		want = append(want, entry{"usage", -c(1), c(float64(i)), false})
	}
	expect(t, s, id, 0, 0, want...)
}

// Reserve, commit (on time, late, over the reservation), void, abandon
// and adjust at random from many goroutines while a watcher checks that
// no balance ever goes below zero; at the end the ledger still sums to
// the balance and nothing is left reserved.
func testConcurrentMixed(t *testing.T, s meter.Store) {
	id := newAccount(t, s, c(200))
	const workers, ops = 16, 40

	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			a, err := s.Account(ctx, id)
			if err != nil || a.Balance < 0 || a.Reserved < 0 || a.Available < 0 {
				t.Errorf("account %+v, %v", a, err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()

	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < ops; i++ {
				if err := randomOp(s, id); err != nil && meter.ErrorCode(err) != meter.ECodeInsufficientCredits {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-watched
	time.Sleep(mixedTTL + 20*time.Millisecond) // let abandoned holds expire

	a, err := s.Account(ctx, id)
	if err != nil || a.Reserved != 0 || a.Balance < 0 {
		t.Fatalf("account %+v, %v", a, err)
	}
	es := oldestFirst(t, s, id)
	checkInvariant(t, es, a.Balance)
	var purchased, used meter.Credits
	late := 0
	for _, e := range es {
		switch {
		case e.Amount > 0:
			purchased += e.Amount
		case e.Type == meter.EntryUsage:
			used -= e.Amount
		}
		if e.Late {
			late++
		}
	}
	if a.TotalPurchased != purchased || a.TotalUsed != used {
		t.Errorf("totals: purchased %s used %s; the ledger says %s, %s", a.TotalPurchased, a.TotalUsed, purchased, used)
	}
	t.Logf("%d entries, %d late; balance %s", len(es), late, a.Balance)
}

const mixedTTL = 60 * time.Millisecond

func randomOp(s meter.Store, id string) error {
	amount := meter.Credits(rand.Int64N(int64(c(20))))
	switch p := rand.IntN(100); {
	case p < 10:
		_, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: amount + 1, Type: meter.EntryPurchase})
		return err
	case p < 25:
		_, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: -amount - 1, Type: meter.EntryAdjustment})
		return err
	}
	rid := newRID()
	ttl := time.Duration(rand.Int64N(int64(mixedTTL))) + time.Millisecond
	if _, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: amount, TTL: ttl}); err != nil {
		return err
	}
	switch p := rand.IntN(100); {
	case p < 10: // commit late
		time.Sleep(ttl)
		fallthrough
	case p < 50: // commit, sometimes more than reserved
		_, err := commit(s, id, rid, meter.Credits(rand.Int64N(int64(amount)+int64(c(5)))))
		return err
	case p < 80:
		_, err := s.Void(ctx, id, rid)
		return err
	}
	return nil // abandoned: expires
}
