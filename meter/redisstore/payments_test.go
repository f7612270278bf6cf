package redisstore

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter/storetest"
)

func TestPaymentsConformance(t *testing.T) {
	storetest.RunPayments(t, func(t *testing.T) storetest.PaymentsStore { return newStore(t, Options{}) })
}

// On a cluster node, which refuses a script whose keys span slots: the
// payment scripts stay in the account's slot, the index and the review
// queue are written apart.
func TestPaymentsOnCluster(t *testing.T) {
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
	storetest.RunPayments(t, func(t *testing.T) storetest.PaymentsStore { return New(cl, Options{}) })
}

func BenchmarkPurchase(b *testing.B) { storetest.BenchPurchase(b, newStore(b, Options{})) }
