package caddymodule

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/lease"
)

// redis_lease in the meter global option, and its refusals.
func TestCaddyfileRedisLease(t *testing.T) {
	for _, tt := range []struct{ line, want string }{
		{"redis_lease", `{"redis":"redis://x","redis_lease":{}}`},
		{"redis_lease 5", `{"redis":"redis://x","redis_lease":{"min_rate":5}}`},
		{"redis_lease off", `{"redis":"redis://x","redis_lease":{"off":true}}`},
	} {
		m, err := adapt(t, "{\n\tmeter {\n\t\tredis redis://x\n\t\t"+tt.line+"\n\t}\n}\n:80 {\n\trespond ok\n}")
		if err != nil {
			t.Fatalf("%s: %v", tt.line, err)
		}
		app, _ := json.Marshal(m["apps"].(map[string]any)["meter"])
		if string(app) != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.line, app, tt.want)
		}
	}
	for _, tt := range []struct{ line, want string }{
		{"redis_lease fast", `redis_lease "fast" is neither off nor a rate of at least 1 request per second, at Caddyfile:4`},
		{"redis_lease 0", `redis_lease "0" is neither off nor a rate`},
		{"redis_lease 5 6", "wrong argument count"},
	} {
		_, err := adapt(t, "{\n\tmeter {\n\t\tredis redis://x\n\t\t"+tt.line+"\n\t}\n}\n:80 {\n\trespond ok\n}")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.line, err, tt.want)
		}
	}
	// Leases are a Redis store's: on the embedded one, refused at load.
	a := &App{RedisLease: &RedisLease{}}
	if err := a.Validate(); err == nil || !strings.Contains(err.Error(), "redis_lease needs a Redis store") {
		t.Errorf("redis_lease without Redis: %v", err)
	}
	a.RedisLease.Off = true
	if err := a.Validate(); err != nil {
		t.Errorf("redis_lease off without Redis: %v", err)
	}
}

// Leases are on by default with a Redis store, off with redis_lease off;
// carving stops after 25ms of a group settle out, or half the store
// timeout if less.
func TestRedisLeaseDefault(t *testing.T) {
	for _, tt := range []struct {
		lease   *RedisLease
		timeout time.Duration
		on      bool
		rate    int
		stall   time.Duration
	}{
		{nil, 2 * time.Second, true, 0, 25 * time.Millisecond},
		{&RedisLease{MinRate: 5}, 2 * time.Second, true, 5, 25 * time.Millisecond},
		{nil, 30 * time.Millisecond, true, 0, 15 * time.Millisecond},
		{&RedisLease{Off: true}, 2 * time.Second, false, 0, 0},
	} {
		a := &App{Redis: "redis://x", RedisLease: tt.lease, StoreTimeout: caddy.Duration(tt.timeout)}
		o, on := a.leasing()
		if on != tt.on || o.MinRate != tt.rate || o.Stall != tt.stall {
			t.Errorf("%+v, store_timeout %v: %v %+v", tt.lease, tt.timeout, on, o)
		}
	}
}

const leaseSite = `
http://{SITE} {
	route /v1/convert/* {
		meter {
			per_page 1
			route convert
		}
		reverse_proxy {UPSTREAM}
	}
}
`

// A burst through a gateway with redis_lease on, on an account with
// credits for 30 two-page requests (some failing upstream): every 2xx is
// charged its 2 credits with an entry of its own before it answers, a
// failed request costs nothing, a refused one (402) never reaches the
// upstream, and the account ends with nothing reserved once the
// gateway stopped (its leases released).
func TestRedisLeaseBurstChargesExactly(t *testing.T) {
	u := newForgingUpstream(t)
	src := strings.Replace(globalBlock, "\t\tredis {REDIS}\n", "\t\tredis {REDIS}\n\t\tredis_lease 1\n", 1) +
		strings.Replace(leaseSite, "{UPSTREAM}", u.Listener.Addr().String(), 1)
	g := startGateway(t, src)
	key := g.newAccount("lease_burst", 60, meter.ModeLive)
	doc := pdftest.Pages(2)
	var ok, failed, refused, other atomic.Int64
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 8 {
				path := "/v1/convert/x"
				if (w+i)%5 == 0 {
					path = "/v1/convert/fail"
				}
				resp, raw := g.post(path, key, "application/pdf", doc)
				switch {
				case resp.StatusCode == 201 && resp.Header.Get(HeaderCost) == "2":
					ok.Add(1)
				case resp.StatusCode == 500 && resp.Header.Get(HeaderCost) == "0":
					failed.Add(1)
				case resp.StatusCode == 402:
					refused.Add(1)
				default:
					other.Add(1)
					t.Errorf("%s: %d cost %q: %s", path, resp.StatusCode, resp.Header.Get(HeaderCost), raw)
				}
			}
		}()
	}
	wg.Wait()
	// Each request forgot its carve's answer once settled (meter.Forgetter):
	// none is kept for a repeat that will not come.
	ls, leased := meter.StoreAs[*lease.Store](activeStoreApp(t).Store())
	if !leased || ls.Stats().Carves == 0 || ls.Stats().Kept != 0 {
		t.Fatalf("lease store %v: %+v; want carves, and no answer kept", leased, ls.Stats())
	}
	if n := u.hits.Load(); n != ok.Load()+failed.Load() {
		t.Fatalf("upstream reached %d times; %d served, %d failed, %d refused", n, ok.Load(), failed.Load(), refused.Load())
	}
	usage := 0
	for _, e := range g.ledger("lease_burst") {
		if e.Type == meter.EntryUsage {
			usage++
			if e.Amount != -credits(2) {
				t.Errorf("usage entry %+v", e)
			}
		}
	}
	a := g.account("lease_burst")
	t.Logf("%d served, %d failed, %d refused; balance %s, reserved %s", ok.Load(), failed.Load(), refused.Load(),
		a.Balance, a.Reserved)
	if usage != int(ok.Load()) || a.Balance != credits(60)-credits(2)*meter.Credits(ok.Load()) || a.Balance < 0 {
		t.Fatalf("%d usage entries, balance %s after %d served", usage, a.Balance, ok.Load())
	}
	if refused.Load() == 0 || ok.Load() > 30 {
		t.Fatalf("%d served, %d refused: want at most 30 served and some refused", ok.Load(), refused.Load())
	}
}

// An account with a monthly quota and no balance, through a gateway that
// leases from the first request: one request after another, each answer
// shows the quota left exactly (X-Quota-Remaining); then a burst spends
// the rest of the quota exactly, each 2xx with its entry, and the
// requests beyond it get 429 quota_exceeded without reaching the
// upstream.
func TestRedisLeaseQuotaAccount(t *testing.T) {
	u := newForgingUpstream(t)
	src := strings.Replace(globalBlock, "\t\tredis {REDIS}\n", "\t\tredis {REDIS}\n\t\tredis_lease 1\n", 1) +
		strings.Replace(leaseSite, "{UPSTREAM}", u.Listener.Addr().String(), 1)
	g := startGateway(t, src)
	key := g.newAccount("lease_quota", 0, meter.ModeLive)
	if code := g.adminDo("PATCH", "/meter/accounts/lease_quota", map[string]any{"monthly_quota": 60}, nil); code != 200 {
		t.Fatalf("PATCH: %d", code)
	}
	doc := pdftest.Pages(2)
	for i := 1; i <= 5; i++ {
		resp, raw := g.post("/v1/convert/x", key, "application/pdf", doc)
		if resp.StatusCode != 201 || resp.Header.Get(HeaderCost) != "2" ||
			resp.Header.Get(HeaderQuotaRemaining) != fmt.Sprint(60-2*i) {
			t.Fatalf("request %d: %d cost %q quota remaining %q: %s", i, resp.StatusCode, resp.Header.Get(HeaderCost),
				resp.Header.Get(HeaderQuotaRemaining), raw)
		}
	}
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 4 {
				resp, raw := g.post("/v1/convert/x", key, "application/pdf", doc)
				switch {
				case resp.StatusCode == 201 && resp.Header.Get(HeaderCost) == "2":
					ok.Add(1)
				case resp.StatusCode == 429 && strings.Contains(string(raw), meter.ECodeQuotaExceeded):
					refused.Add(1)
				default:
					t.Errorf("%d cost %q: %s", resp.StatusCode, resp.Header.Get(HeaderCost), raw)
				}
			}
		}()
	}
	wg.Wait()
	if n := u.hits.Load(); n != 5+ok.Load() {
		t.Fatalf("upstream reached %d times; %d served", n, 5+ok.Load())
	}
	usage := 0
	for _, e := range g.ledger("lease_quota") {
		if e.Type == meter.EntryUsage {
			usage++
		}
	}
	a := g.account("lease_quota")
	t.Logf("%d served in the burst, %d refused; quota %+v", ok.Load(), refused.Load(), a.Quota)
	if ok.Load() != 25 || refused.Load() != 64-25 || usage != 30 || a.Quota.Used != credits(60) || a.Balance != 0 {
		t.Fatalf("%d served, %d refused, %d usage entries, quota used %s, balance %s: want 25, 39, 30, 60, 0",
			ok.Load(), refused.Load(), usage, a.Quota.Used, a.Balance)
	}
}
