package redisstore

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
)

// On a Redis Cluster (here one node owning every slot), Redis refuses a
// #!lua script that touches a key outside the slot of its KEYS: this runs
// every operation there to prove each is single-slot.
func TestOnCluster(t *testing.T) {
	cl := oneNodeCluster(t)
	s := New(cl, Options{})
	id := "cluster_1"
	if _, err := s.CreateAccount(ctx, id, c(10)); err != nil {
		t.Fatal(err)
	}
	if err := s.AddKey(ctx, meter.Key{Hash: meter.HashKey("k"), AccountID: id, Mode: meter.ModeTest}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupKey(ctx, meter.HashKey("k")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: c(5), Type: meter.EntryPurchase, IdempotencyKey: "g"}); err != nil {
		t.Fatal(err)
	}
	mustReserve(t, s, id, "r1", c(4))
	mustCommit(t, s, id, "r1", c(3))
	if _, err := reserve(t, s, id, "r2", c(1), shortTTL, "k"); err != nil {
		t.Fatal(err)
	}
	pastTTL()
	if _, err := s.Void(ctx, id, "r2"); err != nil {
		t.Fatal(err)
	}
	expect(t, s, id, c(12), 0, entry{"purchase", c(10), c(10), false},
		entry{"purchase", c(5), c(15), false}, entry{"usage", -c(3), c(12), false})

	// The issue-5 operations, on another account: settings, a period,
	// quota and overage, usage by route, a refund.
	id2 := "cluster_2"
	if _, err := s.CreateAccount(ctx, id2, c(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateSettings(ctx, id2, meter.Settings{MonthlyQuota: c(1), OverageCap: c(1)}); err != nil {
		t.Fatal(err)
	}
	mustReserveIn(t, s, id2, "r1", c(3), month(0))
	st := mustCommit(t, s, id2, "r1", c(3))
	if _, err := s.Refund(ctx, meter.Refund{AccountID: id2, EntryID: st.EntryID}); err != nil {
		t.Fatal(err)
	}
	if us, err := s.Usage(ctx, id2, month(0)); err != nil || len(us) != 1 || us[0].Credits != c(3) {
		t.Errorf("usage %+v, %v", us, err)
	}
}

// go-redis resends a command whose reply was lost; the nonce (or the
// private key of a grant) makes that resend an answer, not a second effect.
func TestResentCallsAreAnsweredOnce(t *testing.T) {
	s := newStore(t, Options{})
	id := newID("resent")
	for i := 0; i < 2; i++ {
		if _, err := s.run(ctx, createAccountScript, id, int64(c(10)), "n1"); err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := s.run(ctx, reserveScript, id, "r1", int64(c(4)), int64(60000), "", "n2"); err != nil {
			t.Fatalf("reserve %d: %v", i, err)
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := s.run(ctx, grantScript, id, "purchase", int64(c(1)), "", "call:n3"); err != nil {
			t.Fatalf("grant %d: %v", i, err)
		}
	}
	_, err := s.run(ctx, reserveScript, id, "r1", int64(c(4)), int64(60000), "", "other")
	wantCode(t, err, meter.ECodeInvalid)
	expect(t, s, id, c(11), c(4), entry{"purchase", c(10), c(10), false}, entry{"purchase", c(1), c(11), false})
}

// oneNodeCluster starts a Redis Cluster of one node that owns every slot
// and returns a cluster client of it, closed when the test ends.
func oneNodeCluster(t *testing.T) *redis.ClusterClient {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	busPort := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	node := redistest.New(t, "--cluster-enabled", "yes", "--cluster-port", busPort,
		"--cluster-config-file", "nodes-"+busPort+".conf")
	admin := node.Client()
	defer admin.Close()
	if err := admin.ClusterAddSlotsRange(ctx, 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		info, _ := admin.ClusterInfo(ctx).Result()
		if strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ready: %s", info)
		}
	}
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{node.Addr}})
	t.Cleanup(func() { cl.Close() })
	return cl
}
