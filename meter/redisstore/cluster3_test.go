package redisstore

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
)

// On a real Redis Cluster of three masters, opened through OpenTarget with
// one seed address, the store's operations give exact results on accounts
// spread over all three masters, run concurrently.
func TestClusterOfThreeMasters(t *testing.T) {
	cl := redistest.NewCluster(t, 3)
	s, err := OpenTarget(ctx, Target{Cluster: cl.Addrs()[:1]}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	raw := cl.Client()
	defer raw.Close()
	ids := make([]string, 24)
	perMaster := map[string]int{}
	for i := range ids {
		ids[i] = fmt.Sprintf("c3_%02d", i)
		m, err := raw.MasterForKey(ctx, s.accountKeys(ids[i])[0])
		if err != nil {
			t.Fatal(err)
		}
		perMaster[m.Options().Addr]++
	}
	if len(perMaster) != 3 {
		t.Fatalf("accounts on %d masters, want 3: %v", len(perMaster), perMaster)
	}

	t.Run("accounts", func(t *testing.T) {
		for _, id := range ids {
			t.Run(id, func(t *testing.T) {
				t.Parallel()
				clusterAccount(t, s, id)
			})
		}
	})

	// A master that lost the functions (a restart without persistence)
	// gets them back on the first call that misses them.
	if err := raw.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		return m.FunctionFlush(ctx).Err()
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := s.Account(ctx, id); err != nil {
			t.Fatalf("after FUNCTION FLUSH: %v", err)
		}
	}

	got, err := s.ListAccounts(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string(nil), ids...)
	sort.Strings(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListAccounts: %v, want %v", got, want)
	}
	if got, err := s.ListAccounts(ctx, ids[10], 5); err != nil || !reflect.DeepEqual(got, want[11:16]) {
		t.Errorf("ListAccounts after %s: %v %v", ids[10], got, err)
	}
}

// clusterAccount runs every operation on one account and checks each
// answer and, at the end, the whole ledger.
func clusterAccount(t *testing.T, s *Store, id string) {
	if _, err := s.CreateAccount(ctx, id, c(10)); err != nil {
		t.Fatal(err)
	}
	_, err := s.CreateAccount(ctx, id, c(10))
	wantCode(t, err, meter.ECodeAccountExists)
	for i := 0; i < 2; i++ { // the retried grant is recorded once
		if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: c(5), Type: meter.EntryPurchase, IdempotencyKey: "g1"}); err != nil {
			t.Fatal(err)
		}
	}

	// Keys: the key record lives outside the account's slot.
	hash := meter.HashKey("sk_live_" + id)
	if err := s.AddKey(ctx, meter.Key{Hash: hash, AccountID: id, Mode: meter.ModeLive, Last4: "abcd"}); err != nil {
		t.Fatal(err)
	}
	if k, err := s.LookupKey(ctx, hash); err != nil || k.AccountID != id || k.Mode != meter.ModeLive {
		t.Fatalf("LookupKey: %+v %v", k, err)
	}
	if ks, err := s.ListKeys(ctx, id); err != nil || len(ks) != 1 || ks[0].ID != meter.KeyID(hash) {
		t.Fatalf("ListKeys: %+v %v", ks, err)
	}
	if _, err := s.RevokeKey(ctx, id, meter.KeyID(hash)); err != nil {
		t.Fatal(err)
	}
	_, err = s.LookupKey(ctx, hash)
	wantCode(t, err, meter.ECodeInvalidAPIKey)

	// Reserve, commit, commit again (the first settlement, nothing more).
	if r := mustReserve(t, s, id, "r1", c(4)); r.Available != c(11) {
		t.Errorf("available after reserve: %s", r.Available)
	}
	st := mustCommit(t, s, id, "r1", c(3))
	if st.Charged != c(3) || st.Balance != c(12) || st.Available != c(12) || st.Late {
		t.Errorf("commit: %+v", st)
	}
	if again := mustCommit(t, s, id, "r1", c(3)); again.EntryID != st.EntryID || again.Charged != c(3) {
		t.Errorf("commit again: %+v, first %+v", again, st)
	}

	// Void, void again, then a commit of it is refused.
	mustReserve(t, s, id, "r2", c(2))
	for i := 0; i < 2; i++ {
		if v, err := s.Void(ctx, id, "r2"); err != nil || v.Charged != 0 || v.Available != c(12) {
			t.Fatalf("void %d: %+v %v", i, v, err)
		}
	}
	_, err = commit(s, id, "r2", c(2))
	wantCode(t, err, meter.ECodeReservationSettled)

	_, err = reserve(t, s, id, "big", c(100), time.Minute, "")
	if e := wantCode(t, err, meter.ECodeInsufficientCredits); e.Details["available"] != c(12) {
		t.Errorf("insufficient: %v", e.Details)
	}

	// A commit after the reservation expired: late, charged from what is
	// available, once.
	if _, err := reserve(t, s, id, "r3", c(5), shortTTL, ""); err != nil {
		t.Fatal(err)
	}
	pastTTL()
	if st := mustCommit(t, s, id, "r3", c(5)); !st.Late || st.Charged != c(5) || st.Balance != c(7) {
		t.Errorf("late commit: %+v", st)
	}
	if st := mustCommit(t, s, id, "r3", c(5)); !st.Late || st.Charged != c(5) || st.Balance != c(7) {
		t.Errorf("late commit again: %+v", st)
	}

	if _, err := s.Refund(ctx, meter.Refund{AccountID: id, EntryID: st.EntryID, Amount: c(1)}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Refund(ctx, meter.Refund{AccountID: id, EntryID: st.EntryID})
	wantCode(t, err, meter.ECodeRefundNotAllowed)

	// Racing spenders: 18 attempts of 1 credit on a balance of 8.
	var wg sync.WaitGroup
	var won atomic.Int64
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 3; i++ {
				rid := newRID()
				if _, err := reserve(t, s, id, rid, c(1), time.Minute, ""); err != nil {
					if meter.ErrorCode(err) != meter.ECodeInsufficientCredits {
						t.Error(err)
					}
					continue
				}
				if _, err := commit(s, id, rid, c(1)); err != nil {
					t.Error(err)
					continue
				}
				won.Add(1)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 8 {
		t.Errorf("%d spends won, want 8", won.Load())
	}

	us, err := s.Usage(ctx, id, meter.Period{})
	if err != nil || len(us) != 1 || us[0] != (meter.RouteUsage{Route: "/convert", Requests: 10, Credits: c(16)}) {
		t.Errorf("usage: %+v %v", us, err)
	}
	if es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Type: meter.EntryUsage}); err != nil || len(es) != 10 {
		t.Errorf("usage entries: %d %v", len(es), err)
	}

	// Quota first, then the balance, then the overage.
	if _, err := s.UpdateSettings(ctx, id, meter.Settings{MonthlyQuota: c(2), OverageCap: c(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: c(1), Type: meter.EntryPurchase}); err != nil {
		t.Fatal(err)
	}
	mustReserveIn(t, s, id, "q1", c(4), month(0))
	if st := mustCommit(t, s, id, "q1", c(4)); st.Charged != c(4) || st.Balance != -c(1) ||
		st.Quota.Used != c(2) || st.Overage.Used != c(1) {
		t.Errorf("quota commit: %+v", st)
	}
	_, err = reserveIn(s, id, "q2", c(1), month(0), time.Minute)
	wantCode(t, err, meter.ECodeOverageLimitReached)

	ledger := []entry{
		{"purchase", c(10), c(10), false}, {"purchase", c(5), c(15), false},
		{"usage", -c(3), c(12), false}, {"usage", -c(5), c(7), true}, {"refund", c(1), c(8), false},
	}
	for b := 7; b >= 0; b-- {
		ledger = append(ledger, entry{"usage", -c(1), c(float64(b)), false})
	}
	ledger = append(ledger, entry{"purchase", c(1), c(1), false}, entry{"usage", -c(2), -c(1), false})
	expect(t, s, id, -c(1), 0, ledger...)
}

// Open's cluster and sentinel forms refuse what cannot work, before any
// connection, and name addresses, never passwords.
func TestOpenTargetErrors(t *testing.T) {
	tests := []struct {
		name   string
		target Target
		want   string
	}{
		{"nothing", Target{}, "exactly one of"},
		{"two forms", Target{URL: srv.URL(), Cluster: []string{srv.Addr}}, "exactly one of"},
		{"bad cluster address", Target{Cluster: []string{"localhost"}}, `redis cluster address "localhost": want host:port`},
		{"cluster db", Target{Cluster: []string{srv.Addr}, DB: 2}, "only database 0"},
		{"sentinel without master", Target{Sentinels: []string{"127.0.0.1:26379"}}, "master name"},
		{"sentinel without sentinels", Target{MasterName: "m"}, "sentinel address"},
		{"cluster unreachable", Target{Cluster: []string{"127.0.0.1:1"}, Password: "hunter2"}, "redis cluster at 127.0.0.1:1"},
		{"not a cluster", Target{Cluster: []string{srv.Addr}}, "redis cluster at " + srv.Addr},
		{"sentinel unreachable", Target{MasterName: "m", Sentinels: []string{"127.0.0.1:1"}, Password: "hunter2"},
			`redis master "m" via sentinels 127.0.0.1:1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			s, err := OpenTarget(ctx, tt.target, Options{})
			if err == nil {
				s.Close()
				t.Fatal("OpenTarget succeeded")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q; want it to say %q and no password", err, tt.want)
			}
		})
	}
}

// The Sentinel form finds the master through a real redis-sentinel.
func TestOpenTargetSentinel(t *testing.T) {
	master := redistest.New(t)
	sent := redistest.NewSentinel(t, "creditgate", master)
	s, err := OpenTarget(ctx, Target{MasterName: "creditgate", Sentinels: []string{sent.Addr}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := newID("sentinel")
	if _, err := s.CreateAccount(ctx, id, c(3)); err != nil {
		t.Fatal(err)
	}
	mustReserve(t, s, id, "r1", c(2))
	mustCommit(t, s, id, "r1", c(2))
	expect(t, s, id, c(1), 0, entry{"purchase", c(3), c(3), false}, entry{"usage", -c(2), c(1), false})
	direct := master.Client()
	defer direct.Close()
	if n, _ := direct.Exists(ctx, s.accountKeys(id)[0]).Result(); n != 1 {
		t.Error("the account is not on the master")
	}
}
