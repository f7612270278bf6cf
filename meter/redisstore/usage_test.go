package redisstore

import (
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

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
