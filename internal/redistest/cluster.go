package redistest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of masters without replicas, each a Server
// on a free loopback port, owned by a test.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts n (at least 3) cluster-enabled redis-server
// processes, joins them with `redis-cli --cluster create`, which spreads
// the 16384 slots evenly over them, and waits until every node reports
// cluster_state:ok. Stop ends them.
func StartCluster(n int) (*Cluster, error) {
	if n < 3 {
		return nil, fmt.Errorf("redistest: a cluster needs at least 3 masters, not %d", n)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, errors.New("redis-cli not found in PATH (Debian package redis-tools)")
	}
	c := &Cluster{}
	for i := 0; i < n; i++ {
		bus, err := freePort()
		if err != nil {
			c.Stop()
			return nil, err
		}
		s, err := Start("--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000")
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, s)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %v\n%s", err, out)
	}
	if err := c.waitOK(20 * time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// waitOK waits until every node sees the whole cluster, every slot served.
func (c *Cluster) waitOK(limit time.Duration) error {
	want := "cluster_known_nodes:" + strconv.Itoa(len(c.Nodes))
	deadline := time.Now().Add(limit)
	for _, s := range c.Nodes {
		cl := s.Client()
		for {
			info, err := cl.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") &&
				strings.Contains(info, "cluster_slots_ok:16384") && strings.Contains(info, want) {
				break
			}
			if time.Now().After(deadline) {
				cl.Close()
				return fmt.Errorf("redis cluster node %s not ready after %v: %q %v", s.Addr, limit, info, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		cl.Close()
	}
	return nil
}

// NewCluster starts a cluster of n masters for one test and stops it when
// the test ends.
func NewCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	c, err := StartCluster(n)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Stop)
	return c
}

// Addrs returns the nodes' host:port addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr
	}
	return addrs
}

// Client returns a new cluster client seeded with every node.
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
}

// Stop ends every node and removes their directories.
func (c *Cluster) Stop() {
	for _, s := range c.Nodes {
		s.Stop()
	}
}

// Sentinel is one redis-sentinel process (redis-server --sentinel)
// monitoring a master under a name, owned by a test.
type Sentinel struct {
	*Server
	MasterName string
}

// StartSentinel starts a sentinel that monitors master as masterName
// (quorum 1) and waits until it names the master's address.
func StartSentinel(masterName string, master *Server) (*Sentinel, error) {
	host, port, _ := strings.Cut(master.Addr, ":")
	conf := fmt.Sprintf("sentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 1000\n",
		masterName, host, port, masterName)
	s, err := launch(conf, []string{"--sentinel"})
	if err != nil {
		return nil, err
	}
	st := &Sentinel{Server: s, MasterName: masterName}
	sc := redis.NewSentinelClient(&redis.Options{Addr: s.Addr})
	defer sc.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		addr, err := sc.GetMasterAddrByName(context.Background(), masterName).Result()
		if err == nil && len(addr) == 2 && addr[0]+":"+addr[1] == master.Addr {
			return st, nil
		}
		if time.Now().After(deadline) {
			st.Stop()
			return nil, fmt.Errorf("sentinel on %s does not name master %s: %v %v", s.Addr, masterName, addr, err)
		}
	}
}

// NewSentinel starts a sentinel for one test and stops it when the test
// ends.
func NewSentinel(tb testing.TB, masterName string, master *Server) *Sentinel {
	tb.Helper()
	s, err := StartSentinel(masterName, master)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}
