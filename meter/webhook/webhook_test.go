package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/boltstore"
	"github.com/creditgate/creditgate/meter/redisstore"
	"github.com/creditgate/creditgate/meter/webhook"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func TestSignatureTestVector(t *testing.T) {
	// The example of the Standard Webhooks specification.
	key, err := meter.WebhookKey(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	got := webhook.Sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
}

func TestCheckWebhook(t *testing.T) {
	for _, tc := range []struct {
		name, url, secret string
		ok                bool
	}{
		{"https", "https://hooks.example/x", testSecret, true},
		{"http", "http://127.0.0.1:9/x", testSecret, true},
		{"ftp", "ftp://hooks.example/x", testSecret, false},
		{"no host", "https:///x", testSecret, false},
		{"no prefix", "https://hooks.example/x", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", false},
		{"short key", "https://hooks.example/x", "whsec_c2hvcnQ=", false},
		{"not base64", "https://hooks.example/x", "whsec_!!!", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := meter.CheckWebhook(tc.url, tc.secret); (err == nil) != tc.ok {
				t.Fatalf("CheckWebhook(%q, %q) = %v; want ok %v", tc.url, tc.secret, err, tc.ok)
			}
		})
	}
}

// receiver is an endpoint that fails its first `fail` deliveries and
// records the ones it accepts, verified as a receiver would.
type receiver struct {
	t      *testing.T
	secret string
	mu     sync.Mutex
	fail   int
	tries  int
	got    []string // event types accepted
	ids    []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key, _ := base64.StdEncoding.DecodeString(rc.secret[len("whsec_"):])
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "." + string(body)))
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if r.Header.Get("webhook-signature") != want {
		rc.t.Errorf("signature %q, want %q", r.Header.Get("webhook-signature"), want)
	}
	if _, err := strconv.ParseInt(r.Header.Get("webhook-timestamp"), 10, 64); err != nil {
		rc.t.Errorf("timestamp %q", r.Header.Get("webhook-timestamp"))
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.tries++
	if rc.tries <= rc.fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var p struct{ Type string }
	if err := json.Unmarshal(body, &p); err != nil {
		rc.t.Errorf("payload %s: %v", body, err)
	}
	rc.got = append(rc.got, p.Type)
	rc.ids = append(rc.ids, r.Header.Get("webhook-id"))
}

func (rc *receiver) accepted() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.got...)
}

// stores runs f on both stores.
func stores(t *testing.T, f func(t *testing.T, s meter.Store)) {
	t.Run("bolt", func(t *testing.T) {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "meter.db"), boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.New(t)
		s, err := redisstore.Open(context.Background(), srv.URL(), redisstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
}

// lowBalance makes one credits.low_balance event for a new account whose
// own endpoint is url.
func lowBalance(t *testing.T, s meter.Store, url string) string {
	t.Helper()
	ctx := context.Background()
	id := meter.NewID("acct")
	if _, err := s.CreateAccount(ctx, id, 100*meter.Scale); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateSettings(ctx, id, meter.Settings{LowBalanceThreshold: 50 * meter.Scale,
		WebhookURL: url, WebhookSecret: testSecret}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: -60 * meter.Scale, Type: meter.EntryAdjustment}); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestWorkerRetriesThenDeliversOnce: the gateway's endpoint fails once; the
// event is put back, delivered on the next claim to the endpoint that
// failed only (the account's own endpoint already has it), then
// acknowledged.
func TestWorkerRetriesThenDeliversOnce(t *testing.T) {
	stores(t, func(t *testing.T, s meter.Store) {
		global := &receiver{t: t, secret: testSecret, fail: 1}
		own := &receiver{t: t, secret: testSecret}
		gsrv, osrv := httptest.NewServer(global), httptest.NewServer(own)
		defer gsrv.Close()
		defer osrv.Close()
		acct := lowBalance(t, s, osrv.URL)
		var mu sync.Mutex
		results := map[string]int{}
		w := webhook.NewWorker(webhook.Config{
			Store: s, Endpoints: []webhook.Endpoint{{URL: gsrv.URL, Secret: testSecret}},
			Owner: "test", Every: time.Hour, Scan: time.Hour, Timeout: 5 * time.Second,
			Backoff: time.Millisecond, MaxAge: time.Hour,
			Observe: func(typ, result string) { mu.Lock(); results[typ+" "+result]++; mu.Unlock() },
		})
		ctx := context.Background()
		if n := w.DeliverDue(ctx); n != 1 {
			t.Fatalf("first claim: %d events, want 1", n)
		}
		if got := global.accepted(); len(got) != 0 {
			t.Fatalf("the failing endpoint accepted %v", got)
		}
		if got := own.accepted(); len(got) != 1 || got[0] != meter.EventLowBalance {
			t.Fatalf("the account's endpoint got %v, want one %s", got, meter.EventLowBalance)
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(global.accepted()) == 0 && time.Now().Before(deadline) {
			w.DeliverDue(ctx)
			time.Sleep(10 * time.Millisecond)
		}
		if got := global.accepted(); len(got) != 1 || got[0] != meter.EventLowBalance {
			t.Fatalf("the gateway's endpoint got %v, want one %s", got, meter.EventLowBalance)
		}
		if got := own.accepted(); len(got) != 1 {
			t.Fatalf("the account's endpoint got %v again", got)
		}
		if global.ids[0] != own.ids[0] {
			t.Fatalf("webhook-id %q and %q differ for one event", global.ids[0], own.ids[0])
		}
		if _, n, err := s.PendingEvents(ctx, acct, 10); err != nil || n != 0 {
			t.Fatalf("pending after delivery: %d, %v", n, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if results[meter.EventLowBalance+" failed"] != 1 || results[meter.EventLowBalance+" delivered"] != 1 {
			t.Fatalf("results %v", results)
		}
	})
}

// TestWorkerDropsAfterMaxAge: an event older than MaxAge whose endpoint
// fails is dropped (acknowledged), not retried forever.
func TestWorkerDropsAfterMaxAge(t *testing.T) {
	stores(t, func(t *testing.T, s meter.Store) {
		own := &receiver{t: t, secret: testSecret, fail: 1 << 30}
		srv := httptest.NewServer(own)
		defer srv.Close()
		acct := lowBalance(t, s, srv.URL)
		var dropped int
		w := webhook.NewWorker(webhook.Config{
			Store: s, Owner: "test", Every: time.Hour, Scan: time.Hour, Timeout: 5 * time.Second,
			Backoff: time.Millisecond, MaxAge: time.Nanosecond,
			Observe: func(_, result string) {
				if result == "dropped" {
					dropped++
				}
			},
		})
		ctx := context.Background()
		if n := w.DeliverDue(ctx); n != 1 {
			t.Fatalf("claimed %d events, want 1", n)
		}
		if _, n, err := s.PendingEvents(ctx, acct, 10); err != nil || n != 0 || dropped != 1 {
			t.Fatalf("pending %d (%v), dropped %d; want 0 pending, 1 dropped", n, err, dropped)
		}
	})
}
