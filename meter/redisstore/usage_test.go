package redisstore

import (
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/meter"
)

func TestUsageByRoute(t *testing.T) {
	s := newStore(t, Options{})
	id := quotaAccount(t, s, c(100), c(5), 0)
	p1, p2 := month(0), month(1)
	spend(t, s, id, "/convert", c(3), 3, p1)
	spend(t, s, id, "/scan", c(4), 2, p1)
	spend(t, s, id, "/convert", c(2.5), 1, p1)
	rid := newRID()
	mustReserveIn(t, s, id, rid, c(9), p1)
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: 0, Route: "/free"}); err != nil {
		t.Fatal(err)
	}
	// Another gateway (a new Store) rolls the period; this one's commits
	// find the new usage hash all the same.
	other := newStore(t, Options{})
	spend(t, other, id, "/scan", c(1), 1, p2)
	spend(t, s, id, "/scan", c(2), 0, p2)

	want := map[meter.Period][]meter.RouteUsage{
		p1: {{Route: "/convert", Requests: 2, Pages: 4, Credits: c(5.5)}, {Route: "/scan", Requests: 1, Pages: 2, Credits: c(4)},
			{Route: "/free", Requests: 1}},
		p2:       {{Route: "/scan", Requests: 2, Pages: 1, Credits: c(3)}},
		month(2): {},
		{}:       {},
	}
	for p, w := range want {
		got, err := s.Usage(ctx, id, p)
		if err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("Usage(%v): %+v, %v; want %+v", p.Start, got, err, w)
		}
	}
	// The routes' credits are the ledger's usage, from every pool.
	var sum meter.Credits
	for _, e := range oldestFirst(t, s, id) {
		if e.Type == meter.EntryUsage {
			sum += e.Quota - e.Amount
		}
	}
	if sum != c(5.5+4+3) {
		t.Errorf("ledger usage %s", sum)
	}
	// Counters expire a while after their period ends.
	cl := srv.Client()
	defer cl.Close()
	if ttl, err := cl.PTTL(ctx, s.usageKey(id, p1.ID())).Result(); err != nil || ttl <= 0 {
		t.Errorf("usage hash TTL %v, %v", ttl, err)
	}
	_, err := s.Usage(ctx, newID("missing"), p1)
	wantCode(t, err, meter.ECodeAccountNotFound)
}

// Accounts without a period count their usage under the zero Period.
func TestUsageWithoutPeriod(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(10))
	mustReserve(t, s, id, "r1", c(2))
	if _, err := s.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: "r1", Amount: c(2), Route: "/x", Pages: 7}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Usage(ctx, id, meter.Period{})
	if want := []meter.RouteUsage{{Route: "/x", Requests: 1, Pages: 7, Credits: c(2)}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Usage: %+v, %v; want %+v", got, err, want)
	}
	es := oldestFirst(t, s, id)
	if u := es[len(es)-1]; u.Pages != 7 || u.Route != "/x" || u.ReservationID != "r1" {
		t.Errorf("usage entry %+v", u)
	}
}

// Accounts and reservations written before quotas: settings only as JSON,
// records in the old format. Both read on without a migration step.
func TestBeforeQuotas(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(10))
	cl := srv.Client()
	defer cl.Close()
	k := s.accountKeys(id)
	exp := time.Now().Add(time.Minute).UnixMilli()
	if err := cl.HSet(ctx, k[2], "old", "h|4000|"+itoa(exp)+"|0|0|0|0|||k").Err(); err != nil {
		t.Fatal(err)
	}
	cl.ZAdd(ctx, k[1], redisZ(exp, "r:old"))
	cl.HSet(ctx, k[0], "reserved", "4000", "settings", `{"monthly_quota":2.5,"overage_cap":1,"quota_unit":"scans"}`)
	cl.HDel(ctx, k[0], "quota_limit", "overage_cap")

	r := mustReserveIn(t, s, id, "r1", c(3), month(0)) // 2.5 quota + 0.5 balance
	if r.Quota.Limit != c(2.5) || r.Overage.Cap != c(1) || r.Available != c(5.5) {
		t.Errorf("reservation %+v", r)
	}
	if st := mustCommit(t, s, id, "old", c(3)); st.Charged != c(3) || st.Balance != c(7) {
		t.Errorf("settlement %+v", st)
	}
	mustCommit(t, s, id, "r1", c(3))
	expectPools(t, s, id, c(6.5), 0, qs(2.5, 2.5, 0, 0), ovs(1, 0, 0, 1),
		use{-c(3), 0, 0, c(7)}, use{-c(0.5), c(2.5), 0, c(6.5)})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func redisZ(score int64, m string) redis.Z { return redis.Z{Score: float64(score), Member: m} }
