package redistest

import (
	"context"
	"testing"
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
