package lease_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/lease"
	"github.com/creditgate/creditgate/meter/redisstore"
	"github.com/creditgate/creditgate/meter/storetest"
)

var ctx = context.Background()

var seq atomic.Int64

func gateway(t *testing.T, srv *redistest.Server, opts lease.Options) *lease.Store {
	t.Helper()
	cl := redis.NewClient(&redis.Options{Addr: srv.Addr})
	s := lease.New(redisstore.New(cl, redisstore.Options{Prefix: "lease"}), opts)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// The shared conformance suite through the wrapper, as a gateway runs it:
// with the default options, and with leases from the second request of an
// account on, so that the suite's sequences and bursts go through leases.
func TestConformance(t *testing.T) {
	srv := redistest.New(t)
	for _, o := range []struct {
		name string
		opts lease.Options
	}{{"default", lease.Options{}}, {"eager", lease.Options{MinRate: 2}}} {
		t.Run(o.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) meter.Store { return gateway(t, srv, o.opts) })
		})
	}
}

// ledgerSum is the sum of the account's ledger and its usage entries'
// count.
func ledgerSum(t *testing.T, s meter.Store, id string) (sum meter.Credits, usage int) {
	t.Helper()
	before := ""
	for {
		es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: 1000, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			sum += e.Amount
			if e.Type == meter.EntryUsage {
				usage++
			}
		}
		if len(es) < 1000 {
			return sum, usage
		}
		before = es[len(es)-1].ID
	}
}

// Two gateways on one Redis, 32 callers each, on an account with credits
// for a few dozen requests: never overdrawn, every 2xx charged exactly
// its cost with an entry of its own, every voided request free, and
// nothing held once both gateways closed.
func TestBurstOnTwoGatewaysNeverOverdraws(t *testing.T) {
	srv := redistest.New(t)
	opts := lease.Options{MinRate: 1, TTL: 10 * time.Second}
	gws := []*lease.Store{gateway(t, srv, opts), gateway(t, srv, opts)}
	id := fmt.Sprintf("burst_%d_%d", time.Now().UnixNano(), seq.Add(1))
	const initial, cost meter.Credits = 100 * meter.Scale, 3 * meter.Scale
	if _, err := gws[0].CreateAccount(ctx, id, initial); err != nil {
		t.Fatal(err)
	}
	var charged, committed, voided, refused atomic.Int64
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := gws[g%2]
			for i := 0; ; i++ {
				rid := fmt.Sprintf("g%d_%d", g, i)
				_, err := s.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: cost, TTL: time.Second})
				var me *meter.Error
				if errors.As(err, &me) && me.Code == meter.ECodeInsufficientCredits {
					if refused.Add(1) > 200 {
						return
					}
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if (g+i)%4 == 3 { // failed upstream work
					if _, err := s.Void(ctx, id, rid); err != nil {
						t.Error(err)
					}
					voided.Add(1)
					continue
				}
				st, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: cost,
					Route: "/convert", RequestID: rid, Pages: 1})
				if err != nil {
					t.Error(err)
					return
				}
				if st.Charged != cost || st.EntryID == "" || st.Balance < 0 {
					t.Errorf("commit %s: %+v", rid, st)
				}
				committed.Add(1)
				charged.Add(int64(st.Charged))
			}
		}()
	}
	wg.Wait()
	for _, g := range gws {
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
	}
	acct, err := gws[0].Settler.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	sum, usage := ledgerSum(t, gws[0].Settler, id)
	t.Logf("committed %d, voided %d, refused %d, balance %s", committed.Load(), voided.Load(), refused.Load(), acct.Balance)
	if acct.Balance < 0 || acct.Reserved != 0 {
		t.Fatalf("balance %s, reserved %s: want >= 0 and 0", acct.Balance, acct.Reserved)
	}
	if got := initial - acct.Balance; got != meter.Credits(charged.Load()) || got != cost*meter.Credits(committed.Load()) {
		t.Fatalf("balance moved by %s; charged %s over %d commits of %s", got, meter.Credits(charged.Load()),
			committed.Load(), cost)
	}
	if sum != acct.Balance || usage != int(committed.Load()) {
		t.Fatalf("ledger sums to %s over %d usage entries; balance %s, %d commits", sum, usage, acct.Balance,
			committed.Load())
	}
	if acct.Balance >= cost {
		t.Fatalf("%s left unspent after every caller was refused", acct.Balance)
	}
	// Which gateway wins the account's first credits is a race; together
	// they must have carved.
	if a, b := gws[0].Stats(), gws[1].Stats(); a.Carves+b.Carves == 0 || a.Leases+b.Leases == 0 {
		t.Errorf("stats %+v and %+v: want requests carved from leases", a, b)
	}
}

// A gateway that dies holding a lease (dropped, never closed): the store
// releases the lease at its TTL by its own clock; what was settled stays
// charged, what was carved and never settled costs nothing.
func TestDeadGatewaysLeaseExpires(t *testing.T) {
	srv := redistest.New(t)
	cl := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer cl.Close()
	inner := redisstore.New(cl, redisstore.Options{Prefix: "lease"})
	dead := lease.New(inner, lease.Options{MinRate: 1, TTL: time.Second})
	id := fmt.Sprintf("dead_%d", time.Now().UnixNano())
	const initial, cost meter.Credits = 1000 * meter.Scale, 2 * meter.Scale
	if _, err := inner.CreateAccount(ctx, id, initial); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		rid := fmt.Sprintf("r%d", i)
		if _, err := dead.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: cost, TTL: 100 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		if i < 3 {
			if _, err := dead.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: cost, Route: "/r"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	lease.Kill(dead) // the process dies: nothing more from it
	held, err := inner.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if held.Reserved <= 2*cost {
		t.Fatalf("reserved %s: want a lease held beyond the two open requests", held.Reserved)
	}
	time.Sleep(3300 * time.Millisecond) // TTL + the request TTL + 2s
	acct, err := inner.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	sum, usage := ledgerSum(t, inner, id)
	if acct.Reserved != 0 || acct.Balance != initial-3*cost || sum != acct.Balance || usage != 3 {
		t.Fatalf("after the TTL: balance %s reserved %s, ledger %s over %d entries; want %s, 0, 3 entries",
			acct.Balance, acct.Reserved, sum, usage, initial-3*cost)
	}
}

// A lease an account stops carving from is given back after a second,
// with the gateway alive: an account that went quiet holds nothing.
func TestIdleLeaseIsGivenBack(t *testing.T) {
	srv := redistest.New(t)
	gw := gateway(t, srv, lease.Options{MinRate: 1})
	id := fmt.Sprintf("idle_%d", time.Now().UnixNano())
	const initial, cost meter.Credits = 1000 * meter.Scale, 2 * meter.Scale
	if _, err := gw.CreateAccount(ctx, id, initial); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		rid := fmt.Sprintf("r%d", i)
		if _, err := gw.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: cost, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if _, err := gw.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: cost, Route: "/r"}); err != nil {
			t.Fatal(err)
		}
	}
	if held, err := gw.Settler.Account(ctx, id); err != nil || held.Reserved == 0 {
		t.Fatalf("reserved %s, %v: want the lease held", held.Reserved, err)
	}
	time.Sleep(1700 * time.Millisecond)
	acct, err := gw.Settler.Account(ctx, id)
	if err != nil || acct.Reserved != 0 || acct.Balance != initial-3*cost {
		t.Fatalf("after a quiet second: balance %s reserved %s, %v; want %s and 0", acct.Balance, acct.Reserved, err,
			initial-3*cost)
	}
}

// A request of a new period is not carved from a lease of the old one:
// a new lease starts the period in the store, and the request's usage
// counts in it.
func TestNewPeriodTakesANewLease(t *testing.T) {
	srv := redistest.New(t)
	gw := gateway(t, srv, lease.Options{MinRate: 1})
	id := fmt.Sprintf("period_%d", time.Now().UnixNano())
	if _, err := gw.CreateAccount(ctx, id, 1000*meter.Scale); err != nil {
		t.Fatal(err)
	}
	for i, p := range []meter.Period{storetest.Month(0), storetest.Month(0), storetest.Month(1)} {
		rid := fmt.Sprintf("r%d", i)
		if _, err := gw.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: meter.Scale, TTL: time.Minute,
			Period: p}); err != nil {
			t.Fatal(err)
		}
		if _, err := gw.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: meter.Scale,
			Route: "/r"}); err != nil {
			t.Fatal(err)
		}
	}
	if st := gw.Stats(); st.Leases != 2 || st.Carves != 3 {
		t.Fatalf("%+v: want 2 leases (one a period), 3 carves", st)
	}
	for n, want := range []int64{2, 1} {
		u, err := gw.Usage(ctx, id, storetest.Month(n))
		if err != nil || len(u) != 1 || u[0].Requests != want {
			t.Fatalf("usage of month %d: %+v, %v; want %d requests", n, u, err, want)
		}
	}
}
