package lease_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
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

// backends are the Redis deployments the quota attacks run on: one
// server, and a real cluster of three masters.
func backends(outer *testing.T) []struct {
	name string
	open func(t *testing.T) *redisstore.Store
} {
	srv := redistest.New(outer)
	var cl *redistest.Cluster
	return []struct {
		name string
		open func(t *testing.T) *redisstore.Store
	}{
		{"redis", func(t *testing.T) *redisstore.Store {
			return redisstore.New(redis.NewClient(&redis.Options{Addr: srv.Addr}), redisstore.Options{Prefix: "lease"})
		}},
		{"cluster", func(t *testing.T) *redisstore.Store {
			if cl == nil {
				cl = redistest.NewCluster(outer, 3) // for every subtest
			}
			return redisstore.New(cl.Client(), redisstore.Options{})
		}},
	}
}

// quotaAccount creates an account with a balance, a monthly quota and an
// overage cap (0: none).
func quotaAccount(t *testing.T, s meter.Store, prefix string, balance, quota, cap meter.Credits) string {
	t.Helper()
	id := fmt.Sprintf("%s_%d_%d", prefix, time.Now().UnixNano(), seq.Add(1))
	if _, err := s.CreateAccount(ctx, id, balance); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateSettings(ctx, id, meter.Settings{MonthlyQuota: quota, OverageCap: cap}); err != nil {
		t.Fatal(err)
	}
	return id
}

// Two gateways, 32 callers each, on an account with a small quota, a
// balance and an overage cap: the quota is spent exactly, the overage
// never beyond its cap, every 2xx charged its cost once with an entry of
// its own, voided work free, and the callers refused only once every
// pool is spent, with overage_limit_reached.
func TestQuotaBurstOnTwoGateways(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			opts := lease.Options{MinRate: 1, Horizon: time.Millisecond}
			gws := []*lease.Store{lease.New(b.open(t), opts), lease.New(b.open(t), opts)}
			defer func() {
				for _, g := range gws {
					_ = g.Close()
				}
			}()
			const initial, quota, ocap, cost meter.Credits = 150 * meter.Scale, 300 * meter.Scale, 30 * meter.Scale,
				3 * meter.Scale
			id := quotaAccount(t, gws[0], "qburst", initial, quota, ocap)
			var charged, committed, refused atomic.Int64
			var wg sync.WaitGroup
			for g := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := gws[g%2]
					for i := 0; ; i++ {
						rid := fmt.Sprintf("g%d_%d", g, i)
						_, err := storetest.ReserveIn(s, id, rid, cost, storetest.Month(0), time.Second)
						if meter.ErrorCode(err) == meter.ECodeOverageLimitReached {
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
							continue
						}
						st, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: cost,
							Route: "/convert", RequestID: rid, Pages: 1})
						if err != nil {
							t.Error(err)
							return
						}
						if st.Charged != cost || st.EntryID == "" || st.Quota.Used > quota || st.Overage.Used > ocap {
							t.Errorf("commit %s: %+v", rid, st)
						}
						committed.Add(1)
						charged.Add(int64(st.Charged))
					}
				}()
			}
			wg.Wait()
			leased := gws[0].Stats().Leases + gws[1].Stats().Leases
			for _, g := range gws {
				if err := g.Close(); err != nil {
					t.Fatal(err)
				}
			}
			// What a lease held when the other gateway's callers were refused
			// (its balance, while they went into overage) is the account's
			// again: spent to the last credit, in order, by requests alone.
			// Never more than a lease of each gateway (Horizon 1ms: 4 costs).
			plain := gws[0].Settler
			drained := 0
			for ; ; drained++ {
				rid := fmt.Sprintf("drain%d", drained)
				if _, err := storetest.ReserveIn(plain, id, rid, cost, storetest.Month(0), time.Second); err != nil {
					if meter.ErrorCode(err) != meter.ECodeOverageLimitReached {
						t.Fatal(err)
					}
					break
				}
				if _, err := plain.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: cost,
					Route: "/convert"}); err != nil {
					t.Fatal(err)
				}
				committed.Add(1)
				charged.Add(int64(cost))
			}
			if meter.Credits(drained)*cost > 2*4*cost {
				t.Errorf("%d requests' worth left after the burst: more than a lease of each gateway", drained)
			}
			acct, err := plain.Account(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			sum, usage := ledgerSum(t, plain, id)
			t.Logf("committed %d (%d after the burst), refused %d, leases %d: balance %s, quota used %s, overage used %s",
				committed.Load(), drained, refused.Load(), leased, acct.Balance, acct.Quota.Used, acct.Overage.Used)
			if acct.Reserved != 0 || acct.Quota.Reserved != 0 || acct.Overage.Reserved != 0 {
				t.Fatalf("held after close: %s, quota %s, overage %s", acct.Reserved, acct.Quota.Reserved, acct.Overage.Reserved)
			}
			if acct.Quota.Used != quota || acct.Overage.Used > ocap || ocap-acct.Overage.Used >= cost {
				t.Fatalf("quota used %s (want %s), overage used %s (cap %s, less than %s unspent)", acct.Quota.Used, quota,
					acct.Overage.Used, ocap, cost)
			}
			total := meter.Credits(charged.Load())
			// The balance paid all but the quota, and owes no more than the
			// cap (less than the overage used when a voided request gave
			// back balance after others had gone into overage, as without
			// leases).
			if total != cost*meter.Credits(committed.Load()) || initial-acct.Balance != total-quota ||
				acct.Balance < -acct.Overage.Used || acct.Balance > 0 {
				t.Fatalf("charged %s over %d commits; balance %s from %s, quota %s", total, committed.Load(), acct.Balance,
					initial, quota)
			}
			if sum != acct.Balance || usage != int(committed.Load()) {
				t.Fatalf("ledger sums to %s over %d usage entries; balance %s, %d commits", sum, usage, acct.Balance,
					committed.Load())
			}
			if leased == 0 {
				t.Error("no lease taken: the quota account was reserved per request")
			}
		})
	}
}

// step is one request's answers, for comparing a gateway with leases to
// the store alone.
type step struct {
	res  meter.Reservation
	st   meter.Settlement
	code string
	det  map[string]any
}

// run sends n requests of cost one after another, committing each.
func run(s meter.Store, id string, n int, cost meter.Credits) []step {
	var out []step
	for i := range n {
		rid := fmt.Sprintf("r%d", i)
		res, err := storetest.ReserveIn(s, id, rid, cost, storetest.Month(0), time.Minute)
		var me *meter.Error
		if errors.As(err, &me) {
			out = append(out, step{code: me.Code, det: me.Details})
			continue
		}
		st, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: cost, Route: "/r"})
		if err != nil {
			out = append(out, step{code: "commit: " + err.Error()})
			continue
		}
		st.EntryID = ""
		res.ID, res.AccountID = "", ""
		out = append(out, step{res: res, st: st})
	}
	return out
}

// Requests one after another through a gateway that leases from the
// first request, against the same requests on the store alone: the same
// answers at every step (the quota, overage, balance and available the
// client is shown), and the refusal on the same request with the same
// code and details, for a quota alone, a quota then a balance, and a
// quota, a balance and an overage cap.
func TestQuotaEndsWhenTheStoreWould(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			const cost = 3 * meter.Scale
			for _, c := range []struct {
				name                    string
				balance, quota, ocap    meter.Credits
				requests, leasesAtLeast int
			}{
				{"quota", 0, 100 * meter.Scale, 0, 40, 1},
				{"quota then balance", 200 * meter.Scale, 60 * meter.Scale, 0, 100, 2},
				{"quota balance overage", 100 * meter.Scale, 60 * meter.Scale, 20 * meter.Scale, 70, 2},
			} {
				t.Run(c.name, func(t *testing.T) {
					plain := b.open(t)
					gw := lease.New(b.open(t), lease.Options{MinRate: 1, Horizon: time.Millisecond})
					defer gw.Close()
					defer plain.Close()
					want := run(plain, quotaAccount(t, plain, "qplain", c.balance, c.quota, c.ocap), c.requests, cost)
					got := run(gw, quotaAccount(t, gw, "qlease", c.balance, c.quota, c.ocap), c.requests, cost)
					for i := range want {
						if fmt.Sprintf("%+v", got[i]) != fmt.Sprintf("%+v", want[i]) {
							t.Fatalf("request %d:\nleased %+v\nalone  %+v", i, got[i], want[i])
						}
					}
					if want[len(want)-1].code == "" {
						t.Fatalf("never refused in %d requests", c.requests)
					}
					if st := gw.Stats(); st.Leases < int64(c.leasesAtLeast) || st.Carves == 0 {
						t.Fatalf("%+v: want at least %d leases and carves", st, c.leasesAtLeast)
					}
					t.Logf("%+v; refused from request %d with %s", gw.Stats(), firstRefusal(want), want[len(want)-1].code)
				})
			}
		})
	}
}

func firstRefusal(s []step) int {
	for i, x := range s {
		if x.code != "" {
			return i
		}
	}
	return -1
}

// A quota lowered mid-lease reaches leased requests once what the lease
// held at the change is carved: the requests charged after the change
// take at most that much quota, then every request is refused with
// quota_exceeded, as the store alone refuses it.
func TestLoweredQuotaReachesLeasedRequests(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			gw := lease.New(b.open(t), lease.Options{MinRate: 1, Horizon: time.Millisecond, TTL: 500 * time.Millisecond})
			defer gw.Close()
			const cost = 2 * meter.Scale
			id := quotaAccount(t, gw, "qlower", 0, 1000*meter.Scale, 0)
			i := 0
			send := func() error {
				i++
				rid := fmt.Sprintf("r%d", i)
				if _, err := storetest.ReserveIn(gw, id, rid, cost, storetest.Month(0), time.Second); err != nil {
					return err
				}
				_, err := gw.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: cost, Route: "/r"})
				return err
			}
			for range 10 {
				if err := send(); err != nil {
					t.Fatal(err)
				}
			}
			before, err := gw.Settler.Account(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if before.Quota.Reserved == 0 {
				t.Fatalf("quota %+v: want a lease holding some", before.Quota)
			}
			// The new quota is what is used: none left for new requests.
			if _, err := gw.UpdateSettings(ctx, id, meter.Settings{MonthlyQuota: before.Quota.Used}); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second) // a bound for a broken build, not a measure
			var last error
			for time.Now().Before(deadline) {
				if last = send(); last != nil {
					break
				}
			}
			if meter.ErrorCode(last) != meter.ECodeQuotaExceeded {
				t.Fatalf("after lowering the quota: %v; want quota_exceeded", last)
			}
			for range 5 { // and it stays refused
				if err := send(); meter.ErrorCode(err) != meter.ECodeQuotaExceeded {
					t.Fatalf("refused, then %v", err)
				}
			}
			after, err := gw.Settler.Account(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			sum, _ := ledgerSum(t, gw.Settler, id)
			over := after.Quota.Used - before.Quota.Used
			t.Logf("held by the lease at the change %s; charged after it %s", before.Quota.Reserved, over)
			if over > before.Quota.Reserved || after.Balance != 0 || sum != 0 {
				t.Fatalf("charged %s of quota after the change, more than the %s the lease held (balance %s, ledger %s)",
					over, before.Quota.Reserved, after.Balance, sum)
			}
		})
	}
}

// An uncapped charge (an output-priced route) beyond its carve takes
// what it can of what is left of the lease, and the store takes the rest
// from what the pools have now, as a reservation's commit takes an
// uncapped excess: either way it is charged in full, its ledger entry is
// not late (nothing expired), and the other requests carved from the
// lease are charged exactly their cost (lease_settle.lua takes at most a
// request's carve from the lease, never the other carves' shares).
func TestUncappedBeyondTheCarve(t *testing.T) {
	srv := redistest.New(t)
	gw := gateway(t, srv, lease.Options{MinRate: 1, Horizon: time.Millisecond})
	const initial, cost meter.Credits = 1000 * meter.Scale, 3 * meter.Scale
	id := quotaAccount(t, gw, "uncapped", initial, 0, 0)
	reserve := func(rid string) {
		t.Helper()
		if _, err := storetest.ReserveIn(gw, id, rid, cost, storetest.Month(0), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	charged := map[string]meter.Credits{}
	commit := func(rid string, amount meter.Credits, uncapped bool) {
		t.Helper()
		st, err := gw.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: amount, Uncapped: uncapped,
			Route: "/r"})
		want := amount
		if !uncapped {
			want = min(amount, cost) // capped at its hold
		}
		if err != nil || st.Charged != want || st.Late || st.Shortfall != 0 {
			t.Fatalf("commit %s of %s: %+v, %v", rid, amount, st, err)
		}
		charged[rid] = want
	}
	// A lease of 4 costs: r0..r3 carved from it, nothing left.
	for i := range 4 {
		reserve(fmt.Sprint("r", i))
	}
	if st := gw.Stats(); st.Leases != 1 || st.Carves != 4 {
		t.Fatalf("%+v: want one lease, 4 carves", st)
	}
	commit("r0", 5*cost, true) // beyond its carve, nothing left in the lease: from the pools
	commit("r1", cost, false)
	commit("r2", 2*cost, false) // capped: its carve
	commit("r3", cost+1, true)  // beyond by 1, and the lease has 0 left: from the pools
	// A new lease with room: the excess comes from it.
	for i := 4; i < 8; i++ {
		reserve(fmt.Sprint("r", i))
	}
	commit("r4", cost, false)
	commit("r5", 2*cost, true) // beyond by one cost, the lease empty again: from the pools
	commit("r6", cost, false)
	commit("r7", cost, false)
	// Two carves of a third lease, two costs left: r8's excess of three
	// costs takes those two, and one from the pools; r9 still gets its
	// carve.
	reserve("r8")
	reserve("r9")
	commit("r8", 4*cost, true)
	commit("r9", cost, false)
	if st := gw.Stats(); st.Leases != 3 || st.Carves != 10 {
		t.Fatalf("%+v: want 3 leases, 10 carves", st)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	acct, err := gw.Settler.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := initial - (5*cost + cost + cost + cost + 1 + cost + 2*cost + cost + cost + 4*cost + cost) // r2 capped at cost
	sum, usage := ledgerSum(t, gw.Settler, id)
	if acct.Balance != want || acct.Reserved != 0 || sum != want || usage != 10 {
		t.Fatalf("balance %s reserved %s, ledger %s over %d entries; want %s, 0, 10 entries", acct.Balance, acct.Reserved,
			sum, usage, want)
	}
	// Each request's entry: exactly its charge, none late.
	for _, e := range storetest.OldestFirst(t, gw.Settler, id) {
		if e.Type != meter.EntryUsage {
			continue
		}
		if e.Late || -e.Amount != charged[e.ReservationID] || e.Shortfall != 0 {
			t.Errorf("entry %+v: want %s, not late", e, charged[e.ReservationID])
		}
		delete(charged, e.ReservationID)
	}
	if len(charged) != 0 {
		t.Errorf("no entries for %v", charged)
	}
}

// A group settle is one Redis call, also on an account with a quota and
// an overage cap: the period's state each answer carries comes with the
// group's reply, not from a read of the account after it.
func TestGroupSettleIsOneRedisCall(t *testing.T) {
	srv := redistest.New(t)
	cl := redis.NewClient(&redis.Options{Addr: srv.Addr})
	calls := &callCounter{}
	cl.AddHook(calls)
	gw := lease.New(redisstore.New(cl, redisstore.Options{Prefix: "lease"}), lease.Options{MinRate: 1,
		Horizon: time.Millisecond})
	defer gw.Close()
	const cost = 3 * meter.Scale
	id := quotaAccount(t, gw, "onecall", 100*meter.Scale, 1000*meter.Scale, 50*meter.Scale)
	for i := range 3 {
		if _, err := storetest.ReserveIn(gw, id, fmt.Sprint("r", i), cost, storetest.Month(0), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if st := gw.Stats(); st.Leases != 1 || st.Carves != 3 {
		t.Fatalf("%+v: want one lease, 3 carves", st)
	}
	calls.reset()
	var got []meter.Settlement
	for i := range 3 {
		st, err := gw.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: fmt.Sprint("r", i), Amount: cost,
			Route: "/r"})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, st)
	}
	if c := calls.get(); !reflect.DeepEqual(c, []string{"fcall lease_settle", "fcall lease_settle", "fcall lease_settle"}) {
		t.Fatalf("three commits, one group each: Redis calls %v, want 3 of lease_settle only", c)
	}
	// And the answers carry the store's quota (the lease's part free, as
	// the client would see it without the lease).
	acct, err := gw.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	last := got[len(got)-1]
	if last.Quota != acct.Quota || last.Overage != acct.Overage || last.Quota.Used != 3*cost ||
		last.Quota.Remaining != 1000*meter.Scale-3*cost || last.Overage.Cap != 50*meter.Scale {
		t.Fatalf("last answer %+v %+v; account %+v %+v", last.Quota, last.Overage, acct.Quota, acct.Overage)
	}
}

// callCounter records the names of the commands a go-redis client sends
// (each of a pipeline's), a function call's with its script.
type callCounter struct {
	mu    sync.Mutex
	names []string
}

func (c *callCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names = nil
}

func (c *callCounter) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.names...)
}

func (c *callCounter) add(cmds ...redis.Cmder) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cmd := range cmds {
		name := cmd.Name()
		if args := cmd.Args(); name == "fcall" && len(args) > 1 {
			fn, _ := args[1].(string) // cg<library version>_<script>
			_, script, _ := strings.Cut(fn, "_")
			name += " " + script
		}
		c.names = append(c.names, name)
	}
}

func (c *callCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *callCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.add(cmd)
		return next(ctx, cmd)
	}
}

func (c *callCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.add(cmds...)
		return next(ctx, cmds)
	}
}
