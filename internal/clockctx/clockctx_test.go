package clockctx

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDeadlineWithoutDone(t *testing.T) {
	c := WithTimeout(context.Background(), 20*time.Millisecond)
	defer c.Stop()
	if c.Err() != nil {
		t.Fatal("done early")
	}
	time.Sleep(30 * time.Millisecond)
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v after the deadline", c.Err())
	}
	select {
	case <-c.Done():
	case <-time.After(time.Second):
		t.Fatal("Done not closed after the deadline")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err = %v", c.Err())
	}
}

func TestDoneAtDeadline(t *testing.T) {
	c := WithTimeout(context.Background(), 20*time.Millisecond)
	defer c.Stop()
	start := time.Now()
	<-c.Done()
	if time.Since(start) < 15*time.Millisecond || !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("done after %v with %v", time.Since(start), c.Err())
	}
}

func TestParentCancelAndStop(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	c := WithTimeout(parent, time.Hour)
	defer c.Stop()
	if d, ok := c.Deadline(); !ok || time.Until(d) < 59*time.Minute {
		t.Fatalf("Deadline = %v, %v", d, ok)
	}
	cancel()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err = %v after the parent's cancel", c.Err())
	}
	<-c.Done()

	c = WithTimeout(context.Background(), time.Hour)
	c.Stop()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err = %v after Stop", c.Err())
	}
	<-c.Done() // made after Stop: done at once
}

func TestEarlierParentDeadline(t *testing.T) {
	parent, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := WithTimeout(parent, time.Hour)
	defer c.Stop()
	pd, _ := parent.Deadline()
	if d, _ := c.Deadline(); !d.Equal(pd) {
		t.Fatalf("Deadline = %v, want the parent's %v", d, pd)
	}
}

func TestChildRegistersWithoutGoroutine(t *testing.T) {
	c := WithTimeout(context.Background(), time.Hour)
	child, cancel := context.WithCancel(c)
	defer cancel()
	c.Stop()
	select {
	case <-child.Done():
	case <-time.After(time.Second):
		t.Fatal("child not cancelled with its parent")
	}
}

func TestNoAllocationsWhenPolled(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := testing.AllocsPerRun(100, func() {
		c := WithTimeout(parent, time.Second)
		for range 10 {
			_ = c.Err()
		}
		c.Stop()
	})
	if n > 1 { // the Context itself
		t.Fatalf("%v allocations, want 1", n)
	}
}
