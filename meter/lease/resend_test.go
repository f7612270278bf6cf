package lease_test

import (
	"bytes"
	"fmt"
	"net"
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
