package lease_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/lease"
	"github.com/creditgate/creditgate/meter/redisstore"
)

// lossyProxy forwards connections to a Redis server and, once armed,
// loses the reply to the next command that contains match: the command
// reaches the server and runs, its reply is dropped, and the client's
// connection is closed, as a network that fails between the two.
type lossyProxy struct {
	ln      net.Listener
	target  string
	match   []byte
	armed   atomic.Bool
	dropped atomic.Int32
}

func newLossyProxy(t *testing.T, target, match string) *lossyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &lossyProxy{ln: ln, target: target, match: []byte(match)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *lossyProxy) serve(c net.Conn) {
	defer c.Close()
	r, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer r.Close()
	var muted atomic.Bool
	go func() { // replies
		buf := make([]byte, 64<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 && !muted.Load() {
				if _, werr := c.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				c.Close()
				return
			}
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			lose := bytes.Contains(buf[:n], p.match) && p.armed.CompareAndSwap(true, false)
			if lose {
				muted.Store(true) // before the command goes: none of its reply gets through
			}
			if _, werr := r.Write(buf[:n]); werr != nil {
				return
			}
			if lose {
				time.Sleep(100 * time.Millisecond) // the server runs it and answers, to no one
				p.dropped.Add(1)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// The reply of a group settle is lost on the network: go-redis sends the
// call again on a new connection, and the script answers it with the
// first call's reply. Every request of the group is charged once, with
// one ledger entry, and every commit succeeds. (Before lease_settle.lua
// kept its reply, the resend charged the whole group a second time.)
func TestLostGroupSettleReplyChargesOnce(t *testing.T) {
	srv := redistest.New(t)
	proxy := newLossyProxy(t, srv.Addr, "_lease_settle")
	cl := redis.NewClient(&redis.Options{Addr: proxy.ln.Addr().String(), MaxRetries: 3})
	gw := lease.New(redisstore.New(cl, redisstore.Options{Prefix: "lease"}), lease.Options{MinRate: 1})
	t.Cleanup(func() { _ = gw.Close() })
	id := fmt.Sprintf("lost_%d", time.Now().UnixNano())
	const initial, cost meter.Credits = 1000 * meter.Scale, 2 * meter.Scale
	if _, err := gw.CreateAccount(ctx, id, initial); err != nil {
		t.Fatal(err)
	}
	spend(t, gw, id, "warm", 6, cost) // leased from here on
	carves := gw.Stats().Carves

	proxy.armed.Store(true)
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		rid := fmt.Sprintf("g%d", i)
		if _, err := gw.Reserve(ctx, meter.ReserveRequest{AccountID: id, ID: rid, Amount: cost, TTL: time.Minute}); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := gw.Commit(ctx, meter.CommitRequest{AccountID: id, ReservationID: rid, Amount: cost, Route: "/r"})
			if err != nil || st.Charged != cost || st.EntryID == "" {
				t.Errorf("commit %s: %+v, %v", rid, st, err)
			}
		}()
	}
	wg.Wait()
	if proxy.dropped.Load() != 1 {
		t.Fatalf("%d replies lost, want 1", proxy.dropped.Load())
	}
	if got := gw.Stats().Carves - carves; got != n {
		t.Fatalf("%d of %d requests carved", got, n)
	}
	expectSpent(t, gw, id, initial, cost, 6+n)
}

// The reply to a lease's Reserve is lost: the store took the hold, then
// the server crashed or the network failed. The gateway never learns the
// lease is its own, so nothing carves from it; it is released once the
// store answers, not at its TTL (72 s here). It held an account's credits
// for 14 s in e2e's Redis crash test, after the traffic stopped.
func TestLostLeaseReplyIsReleased(t *testing.T) {
	srv := redistest.New(t)
	proxy := newLossyProxy(t, srv.Addr, "lease.orph.1")
	cl := redis.NewClient(&redis.Options{Addr: proxy.ln.Addr().String(), MaxRetries: -1})
	gw := lease.New(redisstore.New(cl, redisstore.Options{Prefix: "lease"}), lease.Options{MinRate: 1, Gateway: "orph"})
	t.Cleanup(func() { _ = gw.Close() })
	id := fmt.Sprintf("orphan_%d", time.Now().UnixNano())
	const initial, cost meter.Credits = 1000 * meter.Scale, 2 * meter.Scale
	if _, err := gw.CreateAccount(ctx, id, initial); err != nil {
		t.Fatal(err)
	}
	proxy.armed.Store(true)
	spend(t, gw, id, "r", 6, cost) // the lease is lost; each request is reserved alone
	if proxy.dropped.Load() != 1 || gw.Stats().Leases != 0 {
		t.Fatalf("%d replies lost, %d leases: want the first lease's lost", proxy.dropped.Load(), gw.Stats().Leases)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		acct, err := gw.Settler.Account(ctx, id)
		if err == nil && acct.Reserved == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reserved %s (%v) 3 s after the lost lease; want it released", acct.Reserved, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	expectSpent(t, gw, id, initial, cost, 6)
}

// lateLease holds back the first lease's Reserve, answering it
// unavailable, and lets it land in the store only after the gateway's
// first Void of it found nothing: a call that sat in a stopped server's
// buffer while the gateway gave up on it.
type lateLease struct {
	*redisstore.Store
	mu    sync.Mutex
	held  *meter.ReserveRequest
	voids int
}

func (s *lateLease) Reserve(ctx context.Context, r meter.ReserveRequest) (meter.Reservation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if strings.HasPrefix(r.ID, "lease.") && s.voids == 0 && s.held == nil {
		s.held = &r
		return meter.Reservation{}, meter.Unavailable(errors.New("reply lost"))
	}
	return s.Store.Reserve(ctx, r)
}

func (s *lateLease) Void(ctx context.Context, accountID, reservationID string) (meter.Settlement, error) {
	st, err := s.Store.Void(ctx, accountID, reservationID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held != nil && reservationID == s.held.ID {
		if s.voids++; s.voids == 1 {
			if _, err := s.Store.Reserve(ctx, *s.held); err != nil {
				return st, err
			}
		}
	}
	return st, err
}

// A lease's Reserve that got no answer lands in the store after the
// gateway's first release of it found nothing: the release is tried
// again until the lease would have expired, so it is still given back
// within a second or so.
func TestLateLandingLeaseIsReleased(t *testing.T) {
	srv := redistest.New(t)
	cl := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { cl.Close() })
	inner := &lateLease{Store: redisstore.New(cl, redisstore.Options{Prefix: "lease"})}
	gw := lease.New(inner, lease.Options{MinRate: 1})
	t.Cleanup(func() { _ = gw.Close() })
	id := fmt.Sprintf("late_%d", time.Now().UnixNano())
	const initial, cost meter.Credits = 1000 * meter.Scale, 2 * meter.Scale
	if _, err := gw.CreateAccount(ctx, id, initial); err != nil {
		t.Fatal(err)
	}
	spend(t, gw, id, "r", 6, cost)
	deadline := time.Now().Add(3 * time.Second)
	for {
		acct, err := gw.Settler.Account(ctx, id)
		inner.mu.Lock()
		voids := inner.voids
		inner.mu.Unlock()
		if err == nil && acct.Reserved == 0 && voids >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("reserved %s (%v) after %d releases; want the late lease released", acct.Reserved, err, voids)
		}
		time.Sleep(50 * time.Millisecond)
	}
	expectSpent(t, gw, id, initial, cost, 6)
}
