package caddymodule

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// verify checks a delivery as a receiver would, from the Standard
// Webhooks specification: the HMAC-SHA256, keyed with the base64-decoded
// secret after "whsec_", of "<webhook-id>.<webhook-timestamp>.<body>",
// base64, must be one of the space-separated "v1,<sig>" of
// webhook-signature, and the timestamp recent.
func verify(secret string, h http.Header, body []byte) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return fmt.Errorf("bad timestamp %q", ts)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		v, b64, _ := strings.Cut(sig, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if v == "v1" && err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no valid signature in %q", h.Get("webhook-signature"))
}

// delivery is one request a receiver got.
type delivery struct {
	ID      string
	Status  int
	Payload struct {
		Type      string
		Event     string // DocExtract's name of Type
		ID        string
		Timestamp string
		Data      map[string]any
	}
}

// receiver is a webhook endpoint that verifies each delivery and keeps
// those of one account; fail(n) makes it answer 500 to the next n.
type receiver struct {
	*httptest.Server
	t       *testing.T
	account string
	mu      sync.Mutex
	got     []delivery
	failing int
	down    bool
}

func newReceiver(t *testing.T, account string) *receiver {
	r := &receiver{t: t, account: account}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := verify(testSecret, req.Header, body); err != nil {
			t.Errorf("delivery does not verify: %v", err)
			w.WriteHeader(400)
			return
		}
		var d delivery
		if err := json.Unmarshal(body, &d.Payload); err != nil {
			t.Errorf("delivery body %q: %v", body, err)
		}
		d.ID = req.Header.Get("webhook-id")
		if d.Payload.Data["account"] != account {
			return // another test's leftover
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		d.Status = 200
		if r.down || r.failing > 0 {
			d.Status = 500
			if r.failing > 0 {
				r.failing--
			}
		}
		r.got = append(r.got, d)
		w.WriteHeader(d.Status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// waitFor waits until cond holds of the deliveries, then a little
// longer, and returns them.
func (r *receiver) waitFor(what string, cond func([]delivery) bool) []delivery {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ds := r.deliveries(); cond(ds) {
			time.Sleep(300 * time.Millisecond) // nothing more should come
			return r.deliveries()
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("%s: deliveries %+v", what, r.deliveries())
	return nil
}

// uniqueID keeps repeated runs (-count) on the shared Redis apart.
func uniqueID(prefix string) string { return fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano()) }

func ok200(ds []delivery) int {
	n := 0
	for _, d := range ds {
		if d.Status == 200 {
			n++
		}
	}
	return n
}

// webhookGlobal is globalBlock with short webhook intervals and, for
// {HOOK}, a gateway-wide webhook.
const webhookGlobal = `{
	admin {ADMIN}
	persist_config off
	auto_https off
	meter {
		redis {REDIS}
		webhook {HOOK} {
			secret ` + testSecret + `
		}
		webhook_interval 20ms
		webhook_backoff 50ms
	}
}
`

func TestWebhookLowBalanceDeliveredOnce(t *testing.T) {
	id := uniqueID("wh_low")
	r := newReceiver(t, id)
	g := startGateway(t, strings.ReplaceAll(webhookGlobal, "{HOOK}", r.URL)+minimalSite)
	key := g.newAccount(id, 10, meter.ModeLive)
	if code := g.adminDo("PATCH", "/meter/accounts/"+id, map[string]any{"low_balance_threshold": 5}, nil); code != 200 {
		t.Fatalf("PATCH: %d", code)
	}
	for _, pages := range []int{3, 3, 1} { // 7, then 4 (crossing), then 3
		if resp, raw := g.post("/", key, "application/pdf", pdftest.Pages(pages)); resp.StatusCode != 200 {
			t.Fatalf("request: %d %s", resp.StatusCode, raw)
		}
	}
	ds := r.waitFor("low balance", func(ds []delivery) bool { return len(ds) >= 1 })
	if len(ds) != 1 {
		t.Fatalf("%d deliveries, want 1: %+v", len(ds), ds)
	}
	p := ds[0].Payload
	if p.Type != meter.EventLowBalance || p.ID != ds[0].ID || !strings.HasPrefix(p.ID, "evt_"+id+"_") ||
		p.Data["balance"] != 4.0 || p.Data["threshold"] != 5.0 {
		t.Fatalf("payload %+v", p)
	}
	if _, err := time.Parse(time.RFC3339, p.Timestamp); err != nil {
		t.Fatalf("timestamp %q: %v", p.Timestamp, err)
	}
}

func TestWebhookRetriedUntilAccepted(t *testing.T) {
	id := uniqueID("wh_retry")
	r := newReceiver(t, id)
	r.failing = 2
	// Only the account's own endpoint: no gateway-wide webhook.
	src := strings.Replace(webhookGlobal, "webhook {HOOK} {\n\t\t\tsecret "+testSecret+"\n\t\t}\n", "", 1)
	g := startGateway(t, src+minimalSite)
	key := g.newAccount(id, 10, meter.ModeLive)
	patch := map[string]any{"low_balance_threshold": 5, "webhook_url": r.URL, "webhook_secret": testSecret}
	if code := g.adminDo("PATCH", "/meter/accounts/"+id, patch, nil); code != 200 {
		t.Fatalf("PATCH: %d", code)
	}
	if resp, raw := g.post("/", key, "application/pdf", pdftest.Pages(6)); resp.StatusCode != 200 {
		t.Fatalf("request: %d %s", resp.StatusCode, raw)
	}
	ds := r.waitFor("retries", func(ds []delivery) bool { return ok200(ds) >= 1 })
	if len(ds) != 3 || ok200(ds) != 1 || ds[2].Status != 200 {
		t.Fatalf("deliveries %+v; want two 500s, then one 200", ds)
	}
	for _, d := range ds {
		if d.ID != ds[0].ID {
			t.Fatalf("retries changed the webhook-id: %+v", ds)
		}
	}
}

func TestWebhookEventsSurviveARestart(t *testing.T) {
	id := uniqueID("wh_restart")
	r := newReceiver(t, id)
	r.down = true
	src := strings.NewReplacer("{HOOK}", r.URL, "redis {REDIS}", "data_dir "+filepath.Join(t.TempDir(), "data")).
		Replace(webhookGlobal) + minimalSite
	g := startGateway(t, src)
	key := g.newAccount(id, 10, meter.ModeLive)
	if code := g.adminDo("PATCH", "/meter/accounts/"+id, map[string]any{"low_balance_threshold": 5}, nil); code != 200 {
		t.Fatalf("PATCH: %d", code)
	}
	if resp, raw := g.post("/", key, "application/pdf", pdftest.Pages(6)); resp.StatusCode != 200 {
		t.Fatalf("request: %d %s", resp.StatusCode, raw)
	}
	r.waitFor("a failed attempt", func(ds []delivery) bool { return len(ds) >= 1 })
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.down = false
	r.mu.Unlock()
	if err := loadCaddyfile(t, src, g.admin, strings.TrimPrefix(g.URL, "http://"), ""); err != nil {
		t.Fatal(err)
	}
	ds := r.waitFor("delivery after the restart", func(ds []delivery) bool { return ok200(ds) >= 1 })
	if ok200(ds) != 1 || ds[len(ds)-1].Payload.Type != meter.EventLowBalance || ds[len(ds)-1].ID != ds[0].ID {
		t.Fatalf("deliveries %+v", ds)
	}
}

func TestWebhookCaddyfile(t *testing.T) {
	t.Setenv("HOOK_SECRET", testSecret)
	m, err := adapt(t, `{
	meter {
		webhook https://hooks.example.com/a {
			secret {$HOOK_SECRET}
		}
		webhook https://hooks.example.com/b {
			secret `+testSecret+`
		}
		webhook_interval 1s
		webhook_timeout 5s
		webhook_backoff 2s
		webhook_scan_interval 1m
	}
}
:8080 {
	respond "ok"
}`)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(m["apps"].(map[string]any)["meter"])
	var got App
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	want := App{Webhooks: []Webhook{{URL: "https://hooks.example.com/a", Secret: testSecret},
		{URL: "https://hooks.example.com/b", Secret: testSecret}},
		WebhookInterval: caddy.Duration(time.Second), WebhookTimeout: caddy.Duration(5 * time.Second),
		WebhookBackoff: caddy.Duration(2 * time.Second), WebhookScanInterval: caddy.Duration(time.Minute)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("meter app\n got %s\nwant %+v", raw, want)
	}
	for _, tt := range []struct{ name, block, want string }{
		{"no secret", "webhook https://h.example", "needs a secret"},
		{"unknown option", "webhook https://h.example {\n secret x\n retries 3\n}", `unknown option "retries"`},
		{"secret twice", "webhook https://h.example {\n secret x\n secret y\n}", "secret given more than once"},
		{"no url", "webhook", "webhook needs a value"},
		{"interval twice", "webhook_interval 1s\nwebhook_interval 2s", "given more than once"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adapt(t, "{\n\tmeter {\n"+tt.block+"\n\t}\n}\n:8080 {\n\trespond ok\n}")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestWebhookValidation(t *testing.T) {
	for _, tt := range []struct{ url, secret string }{
		{"ftp://h.example", testSecret},
		{"https://h.example", "not-a-secret"},
		{"https://h.example", "whsec_c2hvcnQ="}, // too short a key
		{"https://h.example", ""},
	} {
		a := &App{Webhooks: []Webhook{{URL: tt.url, Secret: tt.secret}}}
		if err := a.Validate(); err == nil {
			t.Errorf("webhook %q %q accepted", tt.url, tt.secret)
		}
	}
	if err := (meter.Settings{WebhookURL: "https://h.example"}).Validate(time.Now()); meter.ErrorCode(err) != meter.ECodeInvalid {
		t.Errorf("webhook_url without a secret: %v", err)
	}
}

// An event no endpoint accepts within webhook_max_age is dropped: retries
// stop, and the metrics count it.
func TestWebhookGivesUpAfterMaxAge(t *testing.T) {
	id := uniqueID("wh_giveup")
	r := newReceiver(t, id)
	r.down = true
	src := strings.Replace(strings.ReplaceAll(webhookGlobal, "{HOOK}", r.URL), "webhook_backoff 50ms",
		"webhook_backoff 50ms\n\t\twebhook_max_age 400ms", 1) + metricsSite
	g := startGateway(t, src)
	key := g.newAccount(id, 10, meter.ModeLive)
	if code := g.adminDo("PATCH", "/meter/accounts/"+id, map[string]any{"low_balance_threshold": 5}, nil); code != 200 {
		t.Fatalf("PATCH: %d", code)
	}
	if resp, raw := g.post("/", key, "application/pdf", pdftest.Pages(6)); resp.StatusCode != 200 {
		t.Fatalf("request: %d %s", resp.StatusCode, raw)
	}
	r.waitFor("failed attempts", func(ds []delivery) bool { return len(ds) >= 2 })
	time.Sleep(time.Second) // past the max age, and then some retries' worth
	n := len(r.deliveries())
	r.mu.Lock()
	r.down = false
	r.mu.Unlock()
	time.Sleep(500 * time.Millisecond)
	ds := r.deliveries()
	if ok200(ds) != 0 || len(ds) != n {
		t.Fatalf("deliveries went on after the max age: %d then %d (%d accepted)", n, len(ds), ok200(ds))
	}
	resp, err := http.Get(g.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, result := range []string{"dropped", "failed"} {
		v := metricValue(t, string(body), `caddy_meter_webhook_deliveries_total{result="`+result+`",type="credits.low_balance"}`)
		if v == "0" {
			t.Errorf("%s deliveries: %s", result, v)
		}
	}
}
