package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Target names the Redis deployment a Store opens, in one of three forms:
//
//   - one server: URL;
//   - a Redis Cluster: Cluster, the host:port of one or more of its nodes
//     (the client discovers the others and follows slot moves);
//   - a master found through Redis Sentinel: MasterName and Sentinels, the
//     host:port of the sentinels (the client follows failovers).
//
// Username, Password, DB and TLS apply to the Cluster and Sentinel forms;
// a URL carries its own.
type Target struct {
	// URL of one server: redis://[user:password@]host:port/db, or
	// rediss://... for TLS (see redis.ParseURL).
	URL string
	// Cluster lists seed nodes of a Redis Cluster, host:port.
	Cluster []string
	// MasterName is the name under which the sentinels know the master.
	MasterName string
	// Sentinels lists the sentinels, host:port.
	Sentinels []string
	// Username and Password authenticate to the data nodes (cluster nodes,
	// or the master and replicas behind Sentinel).
	Username, Password string
	// SentinelUsername and SentinelPassword authenticate to the sentinels
	// themselves, when they require it.
	SentinelUsername, SentinelPassword string
	// DB is the database number (Sentinel form only: a cluster has db 0).
	DB int
	// TLS connects with TLS, verifying each server's certificate against
	// the system roots and the host name of its address.
	TLS bool
}

// pingTimeout bounds Open's first contact with the server(s).
const pingTimeout = 3 * time.Second

// Open connects to the Redis server at rawURL (redis:// or rediss://,
// see redis.ParseURL) and checks that it answers within a few seconds.
// Errors never include the URL's password. Close closes the connection.
// It is OpenTarget(ctx, Target{URL: rawURL}, opts).
func Open(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	return OpenTarget(ctx, Target{URL: rawURL}, opts)
}

// OpenTarget connects to one server, a Redis Cluster or a Sentinel-managed
// master (see Target), and checks within a few seconds that it answers:
// for a cluster, that every master answers. Every store call then honours
// its context's deadline, also while waiting on a stalled server. Errors
// name the addresses, never a password. Close closes the connection.
func OpenTarget(ctx context.Context, t Target, opts Options) (*Store, error) {
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("redisstore: prefix %q may not contain braces", opts.Prefix)
	}
	c, where, err := t.client()
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := ping(pctx, c); err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	s := New(c, opts)
	s.owned = true
	return s, nil
}

// client builds the client of t, and names what it connects to for errors.
func (t Target) client() (redis.UniversalClient, string, error) {
	forms := 0
	for _, set := range []bool{t.URL != "", len(t.Cluster) > 0, t.MasterName != "" || len(t.Sentinels) > 0} {
		if set {
			forms++
		}
	}
	if forms != 1 {
		return nil, "", errors.New("redis: give exactly one of a URL, cluster addresses, or a sentinel master name with sentinel addresses")
	}
	if t.URL != "" {
		ro, err := redis.ParseURL(t.URL)
		if err != nil {
			// url.Error quotes the whole URL, password included.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, "", fmt.Errorf("invalid redis URL (want redis://[user:password@]host:port/db or rediss://...): %v", err)
		}
		ro.ContextTimeoutEnabled = true
		ro.PoolSize, ro.MaxActiveConns, ro.PipelinePoolSize = bounded(ro.PoolSize)
		return redis.NewClient(ro), "redis at " + ro.Addr, nil
	}

	uo := &redis.UniversalOptions{
		Username:              t.Username,
		Password:              t.Password,
		SentinelUsername:      t.SentinelUsername,
		SentinelPassword:      t.SentinelPassword,
		DB:                    t.DB,
		ContextTimeoutEnabled: true,
	}
	uo.PoolSize, uo.MaxActiveConns, uo.PipelinePoolSize = bounded(0)
	if t.TLS {
		uo.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if len(t.Cluster) > 0 {
		if t.DB != 0 {
			return nil, "", errors.New("redis cluster: a cluster has only database 0")
		}
		if err := checkAddrs("cluster", t.Cluster); err != nil {
			return nil, "", err
		}
		uo.Addrs, uo.IsClusterMode = t.Cluster, true
		return redis.NewUniversalClient(uo), "redis cluster at " + strings.Join(t.Cluster, ", "), nil
	}
	if t.MasterName == "" || len(t.Sentinels) == 0 {
		return nil, "", errors.New("redis sentinel: give both the master name and at least one sentinel address")
	}
	if err := checkAddrs("sentinel", t.Sentinels); err != nil {
		return nil, "", err
	}
	uo.Addrs, uo.MasterName = t.Sentinels, t.MasterName
	return redis.NewUniversalClient(uo), fmt.Sprintf("redis master %q via sentinels %s", t.MasterName, strings.Join(t.Sentinels, ", ")), nil
}

func checkAddrs(what string, addrs []string) error {
	for _, a := range addrs {
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			return fmt.Errorf("redis %s address %q: want host:port", what, a)
		}
	}
	return nil
}

// ping checks that c answers; on a cluster, that every master does (which
// also loads the slot map).
func ping(ctx context.Context, c redis.UniversalClient) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
			if err := n.Ping(ctx).Err(); err != nil {
				return fmt.Errorf("node %s: %w", n.Options().Addr, err)
			}
			return nil
		})
	}
	return c.Ping(ctx).Err()
}

// bounded sizes a client's connections: the pool (default 10 per CPU, as
// go-redis), no connections beyond it (go-redis allocates past PoolSize
// when the pool is exhausted, which under a stalled server is unbounded),
// and pipelines on the same pool instead of a pool of their own.
func bounded(poolSize int) (pool, maxActive, pipelinePool int) {
	if poolSize <= 0 {
		poolSize = 10 * runtime.GOMAXPROCS(0)
	}
	return poolSize, poolSize, -1
}
