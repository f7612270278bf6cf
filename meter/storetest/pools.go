package storetest

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// Quota 10, balance 5, overage cap 5: 60 requests of 1 credit race for the
// period's 20; exactly 20 are served, 10 free, 5 prepaid, 5 postpaid.
func testConcurrentPools(t *testing.T, s meter.Store) {
	id := quotaAccount(t, s, c(5), c(10), c(5))
	p := month(0)
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 60; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rid := newRID()
			if _, err := reserveIn(s, id, rid, c(1), p, time.Minute); meter.ErrorCode(err) == meter.ECodeOverageLimitReached {
				refused.Add(1)
				return
			} else if err != nil {
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
	if ok.Load() != 20 || refused.Load() != 40 {
		t.Errorf("%d served, %d refused; want 20, 40", ok.Load(), refused.Load())
	}
	// Commits settle in any order: count the entries of each kind.
	free, prepaid, postpaid := 0, 0, 0
	for _, e := range oldestFirst(t, s, id) {
		switch {
		case e.Type != meter.EntryUsage:
		case e.Quota == c(1) && e.Amount == 0:
			free++
		case e.Overage == c(1) && e.Amount == -c(1):
			postpaid++
		case e.Quota == 0 && e.Overage == 0 && e.Amount == -c(1):
			prepaid++
		default:
			t.Errorf("entry %+v", e)
		}
	}
	if free != 10 || prepaid != 5 || postpaid != 5 {
		t.Errorf("%d free, %d prepaid, %d postpaid; want 10, 5, 5", free, prepaid, postpaid)
	}
	a, err := s.Account(ctx, id)
	if err != nil || a.Balance != -c(5) || a.Reserved != 0 || a.Quota.Used != c(10) || a.Overage.Used != c(5) ||
		a.TotalUsed != c(20) || a.TotalPurchased != c(5) {
		t.Errorf("account %+v, %v", a, err)
	}
	checkInvariant(t, oldestFirst(t, s, id), a.Balance)
}

// Random amounts, partial commits, voids and abandoned holds from many
// goroutines: the period never spends more than quota + balance + cap,
// and every pool's count agrees with the ledger and the usage by route.
func testConcurrentPoolsMixed(t *testing.T, s meter.Store) {
	id := quotaAccount(t, s, c(5), c(10), c(5))
	p := month(0)
	var wg sync.WaitGroup
	for w := 0; w < 12; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				rid := newRID()
				amount := c(0.5) * meter.Credits(1+rand.IntN(4))
				ttl := time.Minute
				if rand.IntN(10) == 0 {
					ttl = 20 * time.Millisecond
				}
				if _, err := reserveIn(s, id, rid, amount, p, ttl); err != nil {
					if meter.ErrorCode(err) != meter.ECodeOverageLimitReached {
						t.Error(err)
					}
					continue
				}
				switch n := rand.IntN(10); {
				case n < 6:
					_, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid,
						Amount: meter.Credits(rand.Int64N(int64(amount) + 1)), Route: []string{"/a", "/b"}[n%2], Pages: 1})
					if err != nil {
						t.Error(err)
					}
				case n < 8:
					if _, err := s.Void(ctx, id, rid); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	time.Sleep(100 * time.Millisecond) // let the short holds expire
	a, err := s.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// Holds abandoned with a minute's TTL are still reserved: the bounds
	// count them.
	var quota, overage, debit meter.Credits
	es := oldestFirst(t, s, id)
	for _, e := range es {
		if e.Type == meter.EntryUsage {
			quota, overage, debit = quota+e.Quota, overage+e.Overage, debit-e.Amount
		}
	}
	checkInvariant(t, es, a.Balance)
	if a.Quota.Used != quota || a.Overage.Used != overage || a.Balance != c(5)-debit ||
		a.TotalUsed != quota+debit || a.Quota.Used+a.Quota.Reserved > c(10) ||
		a.Overage.Used+a.Overage.Reserved > c(5) || a.Balance-a.Reserved < -c(5) {
		t.Errorf("account %+v; ledger: quota %s overage %s debit %s", a, quota, overage, debit)
	}
	us, err := s.Usage(ctx, id, p)
	if err != nil {
		t.Fatal(err)
	}
	var routed meter.Credits
	for _, u := range us {
		routed += u.Credits
	}
	if routed != quota+debit {
		t.Errorf("usage by route %v sums to %s; the ledger's usage is %s", us, routed, quota+debit)
	}
	t.Logf("%d entries; spent %s of 20; %+v", len(es), quota+debit, us)
}
