package redistest

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestStartAnswersAndRestarts(t *testing.T) {
	s := New(t, "--appendonly", "yes")
	c := s.Client()
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "k").Result()
	if err != nil || got != "v" {
		t.Fatalf("after restart with AOF: got %q, %v; want v", got, err)
	}
}

func TestClusterOfThree(t *testing.T) {
	c := NewCluster(t, 3)
	cl := c.Client()
	defer cl.Close()
	ctx := context.Background()
	masters := map[string]bool{}
	for i := 0; i < 30; i++ {
		k := "k" + string(rune('a'+i))
		if err := cl.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatal(err)
		}
		m, err := cl.MasterForKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Options().Addr] = true
	}
	if len(masters) != 3 {
		t.Errorf("keys landed on %d masters, want 3", len(masters))
	}
}

func TestSentinelNamesMaster(t *testing.T) {
	m := New(t)
	s := NewSentinel(t, "mymaster", m)
	cl := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: []string{s.Addr}})
	defer cl.Close()
	ctx := context.Background()
	if err := cl.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	direct := m.Client()
	defer direct.Close()
	if v, _ := direct.Get(ctx, "k").Result(); v != "v" {
		t.Errorf("master holds %q", v)
	}
}
