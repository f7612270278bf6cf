package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/creditgate/creditgate/meter"
)

const stripeTestSecret = "whsec_test_creditgate_0123456789abcdef"

// stripeSite mounts meter_stripe in front of a counting upstream: the
// endpoint answers every request itself, so the upstream must stay at 0.
const stripeSite = `
http://{SITE} {
	handle /stripe {
		meter_stripe {
			secret {env.TEST_STRIPE_WEBHOOK_SECRET}
			account client_reference_id metadata.account
			credits metadata.credits
			amount usd 1000 100
			amount usd 4000 500
		}
		reverse_proxy {UPSTREAM}
	}
	handle /v1/credits/* {
		meter_api
	}
}
`

// stripeGateway is a gateway with the Stripe endpoint on one store.
type stripeGateway struct {
	*gateway
	hits *atomic.Int64 // requests that reached the upstream
}

// stripeStores runs f on the embedded store and on Redis.
func stripeStores(t *testing.T, f func(t *testing.T, g stripeGateway)) {
	for _, store := range []string{"embedded", "redis"} {
		t.Run(store, func(t *testing.T) {
			t.Setenv("TEST_STRIPE_WEBHOOK_SECRET", stripeTestSecret)
			t.Setenv("XDG_DATA_HOME", t.TempDir())
			hits := new(atomic.Int64)
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
			t.Cleanup(up.Close)
			site := strings.ReplaceAll(stripeSite, "{UPSTREAM}", up.Listener.Addr().String())
			var g *gateway
			if store == "embedded" {
				g = startGatewayRedis(t, "{\n\tadmin {ADMIN}\n\tpersist_config off\n\tauto_https off\n}\n"+site, "")
			} else {
				g = startGateway(t, globalBlock+site)
			}
			f(t, stripeGateway{g, hits})
			if n := hits.Load(); n != 0 {
				t.Errorf("the upstream was reached %d times", n)
			}
		})
	}
}

// stripeEvent is an event as Stripe sends it, around one object.
func stripeEvent(id, typ string, obj map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "api_version": "2024-06-20",
		"created": time.Now().Unix(), "livemode": false, "type": typ, "data": map[string]any{"object": obj}})
	return b
}

func checkoutSession(id, pi, ref, status string, amount int64, md map[string]string) map[string]any {
	o := map[string]any{"id": id, "object": "checkout.session", "mode": "payment", "status": "complete",
		"payment_status": status, "amount_total": amount, "currency": "usd", "metadata": md}
	if pi != "" {
		o["payment_intent"] = pi
	}
	if ref != "" {
		o["client_reference_id"] = ref
	}
	return o
}

func charge(id, pi string, amount, refunded int64) map[string]any {
	return map[string]any{"id": id, "object": "charge", "payment_intent": pi, "amount": amount,
		"amount_refunded": refunded, "refunded": refunded >= amount, "currency": "usd", "status": "succeeded"}
}

// send posts an event signed as Stripe signs it, at ts (now when zero),
// with secret (the test's when empty), and returns the status and the
// decoded answer.
func (g stripeGateway) send(t *testing.T, payload []byte, ts time.Time, secret string) (int, map[string]any) {
	t.Helper()
	if secret == "" {
		secret = stripeTestSecret
	}
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: payload, Secret: secret, Timestamp: ts})
	return g.sendRaw(t, payload, sp.Header)
}

func (g stripeGateway) sendRaw(t *testing.T, payload []byte, header string) (int, map[string]any) {
	t.Helper()
	hdr := []string{}
	if header != "" {
		hdr = []string{"Stripe-Signature", header}
	}
	resp, raw := g.post("/stripe", "", "application/json", payload, hdr...)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("answer %d not JSON: %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

// expectLedger asserts the account's ledger, oldest first, as type and
// amount pairs, with the balance equal to its sum.
func (g stripeGateway) expectLedger(t *testing.T, id string, balance float64, want ...any) []meter.LedgerEntry {
	t.Helper()
	g.assertBalance(id, balance, 0)
	es := g.ledger(id)
	if len(es) != len(want)/2 {
		t.Fatalf("ledger of %s has %d entries, want %d: %+v", id, len(es), len(want)/2, es)
	}
	for i := range es {
		e := es[len(es)-1-i]
		if e.Type != want[2*i].(string) || e.Amount != credits(want[2*i+1].(float64)) {
			t.Errorf("entry %d: %s %s, want %v %v", i, e.Type, e.Amount, want[2*i], want[2*i+1])
		}
	}
	return es
}

func TestStripePaidSessionCreditsOnce(t *testing.T) {
	stripeStores(t, func(t *testing.T, g stripeGateway) {
		key := g.newAccount("acme", 0, meter.ModeLive)
		done := stripeEvent("evt_done_1", "checkout.session.completed",
			checkoutSession("cs_test_1", "pi_test_1", "acme", "paid", 1000, nil))
		for i := range 3 { // Stripe's retries of one event
			status, m := g.send(t, done, time.Time{}, "")
			want := "replayed"
			if i == 0 {
				want = "applied"
			}
			if status != 200 || m["result"] != want || m["account"] != "acme" {
				t.Fatalf("delivery %d: %d %v", i, status, m)
			}
		}
		// The async success of the same session, and concurrent deliveries.
		async := stripeEvent("evt_async_1", "checkout.session.async_payment_succeeded",
			checkoutSession("cs_test_1", "pi_test_1", "acme", "paid", 1000, nil))
		var wg sync.WaitGroup
		for range 6 {
			wg.Go(func() {
				if status, m := g.send(t, async, time.Time{}, ""); status != 200 || m["result"] != "replayed" {
					t.Errorf("async: %d %v", status, m)
				}
			})
		}
		wg.Wait()
		es := g.expectLedger(t, "acme", 100, "purchase", 100.0)
		if es[0].PaymentIntentID != "pi_test_1" || es[0].ExternalID != "evt_done_1" {
			t.Errorf("entry %+v", es[0])
		}
		// The wire name DocExtract's clients read.
		var raw struct{ Data []map[string]any }
		g.adminDo("GET", "/meter/accounts/acme/transactions", nil, &raw)
		if raw.Data[0]["payment_intent_id"] != "pi_test_1" || raw.Data[0]["external_id"] != "evt_done_1" {
			t.Errorf("transactions: %v", raw.Data[0])
		}
		// ... and the account's own, with its key (meter_api).
		resp, body := g.getRaw("/v1/credits/transactions", key)
		var own struct{ Transactions []map[string]any }
		if err := json.Unmarshal(body, &own); err != nil || resp.StatusCode != 200 || len(own.Transactions) != 1 ||
			own.Transactions[0]["payment_intent_id"] != "pi_test_1" || own.Transactions[0]["type"] != "purchase" {
			t.Errorf("meter_api transactions: %d %s", resp.StatusCode, body)
		}
		// Metadata names the account and the credits where configured.
		g.newAccount("beta", 0, meter.ModeLive)
		meta := stripeEvent("evt_meta", "checkout.session.completed", checkoutSession("cs_test_2", "pi_test_2", "",
			"paid", 777, map[string]string{"account": "beta", "credits": "12.5"}))
		if status, m := g.send(t, meta, time.Time{}, ""); status != 200 || m["result"] != "applied" {
			t.Fatalf("metadata: %d %v", status, m)
		}
		g.expectLedger(t, "beta", 12.5, "purchase", 12.5)
	})
}

func TestStripeUnpaidSessionCreditsNothingUntilPaid(t *testing.T) {
	stripeStores(t, func(t *testing.T, g stripeGateway) {
		g.newAccount("slow", 0, meter.ModeLive)
		unpaid := stripeEvent("evt_unpaid", "checkout.session.completed",
			checkoutSession("cs_async", "pi_async", "slow", "unpaid", 4000, nil))
		if status, m := g.send(t, unpaid, time.Time{}, ""); status != 200 || m["result"] != "unpaid" {
			t.Fatalf("unpaid: %d %v", status, m)
		}
		g.expectLedger(t, "slow", 0)
		failed := stripeEvent("evt_failed", "checkout.session.async_payment_failed",
			checkoutSession("cs_async", "pi_async", "slow", "unpaid", 4000, nil))
		if status, m := g.send(t, failed, time.Time{}, ""); status != 200 || m["result"] != "ignored" {
			t.Fatalf("failed: %d %v", status, m)
		}
		paid := stripeEvent("evt_paid", "checkout.session.async_payment_succeeded",
			checkoutSession("cs_async", "pi_async", "slow", "paid", 4000, nil))
		for i, want := range []string{"applied", "replayed"} {
			if status, m := g.send(t, paid, time.Time{}, ""); status != 200 || m["result"] != want {
				t.Fatalf("paid %d: %d %v", i, status, m)
			}
		}
		g.expectLedger(t, "slow", 500, "purchase", 500.0)
	})
}

func TestStripeRefusesBadSignatures(t *testing.T) {
	stripeStores(t, func(t *testing.T, g stripeGateway) {
		g.newAccount("victim", 0, meter.ModeLive)
		ev := stripeEvent("evt_forged", "checkout.session.completed",
			checkoutSession("cs_forged", "pi_forged", "victim", "paid", 4000, nil))
		good := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: ev, Secret: stripeTestSecret})
		tampered := []byte(strings.Replace(string(ev), `"amount_total":4000`, `"amount_total":1000`, 1))
		other := stripeEvent("evt_other", "checkout.session.completed",
			checkoutSession("cs_other", "pi_other", "victim", "paid", 4000, nil))
		cases := []struct {
			name    string
			payload []byte
			header  string
		}{
			{"no header", ev, ""},
			{"another secret", ev, webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: ev, Secret: "whsec_attacker"}).Header},
			{"tampered body", tampered, good.Header},
			{"signature of another event", other, good.Header},
			{"malformed header", ev, "t=abc,v1=zz"},
			{"timestamp older than the tolerance", ev, webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
				Payload: ev, Secret: stripeTestSecret, Timestamp: time.Now().Add(-301 * time.Second)}).Header},
			{"v0 scheme only", ev, strings.Replace(good.Header, "v1=", "v0=", 1)},
		}
		for _, c := range cases {
			status, m := g.sendRaw(t, c.payload, c.header)
			e, _ := m["error"].(map[string]any)
			if status != 400 || e["code"] != meter.ECodeInvalidSignature {
				t.Errorf("%s: %d %v", c.name, status, m)
			}
		}
		resp, _ := g.do("GET", "/stripe", "", "", nil)
		if resp.StatusCode != 404 || resp.Header.Get("Allow") != "POST" {
			t.Errorf("GET: %d", resp.StatusCode)
		}
		g.expectLedger(t, "victim", 0)
		var q struct{ Items []meter.ReviewItem }
		if g.adminDo("GET", "/meter/stripe/review?status=all", nil, &q); len(q.Items) != 0 {
			t.Errorf("review queue: %+v", q.Items)
		}
		// Within the tolerance, the same event applies.
		if status, m := g.send(t, ev, time.Now().Add(-299*time.Second), ""); status != 200 || m["result"] != "applied" {
			t.Errorf("within tolerance: %d %v", status, m)
		}
		g.expectLedger(t, "victim", 500, "purchase", 500.0)
	})
}

func TestStripeRefundsReverseExactly(t *testing.T) {
	stripeStores(t, func(t *testing.T, g stripeGateway) {
		g.newAccount("refunded", 0, meter.ModeLive)
		buy := stripeEvent("evt_buy", "checkout.session.completed",
			checkoutSession("cs_r", "pi_r", "refunded", "paid", 4000, nil))
		if status, m := g.send(t, buy, time.Time{}, ""); status != 200 || m["result"] != "applied" {
			t.Fatalf("buy: %d %v", status, m)
		}
		refund := func(evt string, refunded int64, want string, taken float64) {
			t.Helper()
			status, m := g.send(t, stripeEvent(evt, "charge.refunded", charge("ch_r", "pi_r", 4000, refunded)), time.Time{}, "")
			if status != 200 || m["result"] != want || fmt.Sprint(m["reversed"]) != credits(taken).String() {
				t.Fatalf("refund %s of %d: %d %v", evt, refunded, status, m)
			}
		}
		refund("evt_ref_1", 1000, "applied", 125) // a quarter of 500
		refund("evt_ref_1", 1000, "replayed", 0)  // redelivered
		refund("evt_ref_2", 1000, "replayed", 0)  // another event, same cumulative amount
		refund("evt_ref_3", 2500, "applied", 187.5)
		refund("evt_ref_4", 4000, "applied", 187.5)
		refund("evt_ref_5", 4000, "replayed", 0)
		es := g.expectLedger(t, "refunded", 0, "purchase", 500.0, "reversal", -125.0, "reversal", -187.5, "reversal", -187.5)
		if es[0].PaymentIntentID != "pi_r" || es[0].ExternalID != "evt_ref_4" {
			t.Errorf("reversal entry %+v", es[0])
		}

		// Credits already spent: the balance goes below zero and the
		// account owes them; a new purchase pays the debt first.
		key := g.newAccount("spender", 0, meter.ModeLive)
		_ = key
		g.send(t, stripeEvent("evt_buy2", "checkout.session.completed",
			checkoutSession("cs_s", "pi_s", "spender", "paid", 1000, nil)), time.Time{}, "")
		if code := g.adminDo("POST", "/meter/accounts/spender/credits", map[string]any{"amount": -80, "type": "adjustment"}, nil); code != 201 {
			t.Fatalf("spend: %d", code)
		}
		g.send(t, stripeEvent("evt_ref_s", "charge.refunded", charge("ch_s", "pi_s", 1000, 1000)), time.Time{}, "")
		es = g.expectLedger(t, "spender", -80, "purchase", 100.0, "adjustment", -80.0, "reversal", -100.0)
		if es[0].Shortfall != credits(80) {
			t.Errorf("reversal shortfall %s, want 80", es[0].Shortfall)
		}
		g.send(t, stripeEvent("evt_buy3", "checkout.session.completed",
			checkoutSession("cs_s2", "pi_s2", "spender", "paid", 1000, nil)), time.Time{}, "")
		g.assertBalance("spender", 20, 0)
	})
}

func TestStripeReviewQueue(t *testing.T) {
	stripeStores(t, func(t *testing.T, g stripeGateway) {
		ghost := stripeEvent("evt_ghost", "checkout.session.completed",
			checkoutSession("cs_ghost", "pi_ghost", "ghost", "paid", 1000, nil))
		for range 2 {
			if status, m := g.send(t, ghost, time.Time{}, ""); status != 200 || m["result"] != "held" ||
				m["reason"] != meter.ReasonUnknownAccount || m["review"] != "cs:cs_ghost" {
				t.Fatalf("ghost: %d %v", status, m)
			}
		}
		odd := stripeEvent("evt_odd", "checkout.session.completed",
			checkoutSession("cs_odd", "pi_odd", "known", "paid", 1234, nil))
		g.newAccount("known", 0, meter.ModeLive)
		if status, m := g.send(t, odd, time.Time{}, ""); status != 200 || m["reason"] != meter.ReasonNoCreditMapping {
			t.Fatalf("odd amount: %d %v", status, m)
		}
		orphan := stripeEvent("evt_orphan", "charge.refunded", charge("ch_o", "pi_unknown", 500, 500))
		if status, m := g.send(t, orphan, time.Time{}, ""); status != 200 || m["reason"] != meter.ReasonUnknownPayment {
			t.Fatalf("orphan refund: %d %v", status, m)
		}
		nobody := stripeEvent("evt_nobody", "checkout.session.completed",
			checkoutSession("cs_nobody", "pi_nobody", "", "paid", 1000, nil))
		if status, m := g.send(t, nobody, time.Time{}, ""); status != 200 || m["reason"] != meter.ReasonNoAccount {
			t.Fatalf("no account: %d %v", status, m)
		}
		var q struct{ Items []meter.ReviewItem }
		g.adminDo("GET", "/meter/stripe/review", nil, &q)
		if len(q.Items) != 4 || q.Items[0].ID != "cs:cs_ghost" || q.Items[0].AccountHint != "ghost" ||
			q.Items[0].Credits != credits(100) || q.Items[0].PaymentIntentID != "pi_ghost" {
			t.Fatalf("queue: %+v", q.Items)
		}
		g.expectLedger(t, "known", 0)

		// The operator creates the account and applies the purchase, once.
		g.newAccount("ghost-inc", 0, meter.ModeLive)
		var out struct {
			Item     meter.ReviewItem
			Entry    meter.LedgerEntry
			Replayed bool
		}
		for i := range 2 {
			if code := g.adminDo("POST", "/meter/stripe/review/cs:cs_ghost/apply", map[string]any{"account": "ghost-inc"}, &out); code != 200 ||
				out.Item.Status != meter.ReviewApplied || out.Item.AppliedTo != "ghost-inc" || out.Replayed != (i == 1) {
				t.Fatalf("apply %d: %d %+v", i, code, out)
			}
		}
		var e struct{ Error map[string]any }
		if code := g.adminDo("POST", "/meter/stripe/review/cs:cs_ghost/apply", map[string]any{"account": "known"}, &e); code != 409 ||
			e.Error["code"] != meter.ECodeReviewResolved {
			t.Fatalf("apply elsewhere: %d %v", code, e)
		}
		// Stripe re-sending the event later changes nothing.
		g.send(t, ghost, time.Time{}, "")
		es := g.expectLedger(t, "ghost-inc", 100, "purchase", 100.0)
		if es[0].PaymentIntentID != "pi_ghost" {
			t.Errorf("entry %+v", es[0])
		}
		g.expectLedger(t, "known", 0)

		// An unmapped amount needs the operator's credits.
		if code := g.adminDo("POST", "/meter/stripe/review/cs:cs_odd/apply", map[string]any{"account": "known"}, &e); code != 400 {
			t.Fatalf("apply without credits: %d %v", code, e)
		}
		if code := g.adminDo("POST", "/meter/stripe/review/cs:cs_odd/apply", map[string]any{"account": "known", "credits": "123.4"}, &out); code != 200 {
			t.Fatalf("apply with credits: %d %+v", code, out)
		}
		g.expectLedger(t, "known", 123.4, "purchase", 123.4)

		if code := g.adminDo("POST", "/meter/stripe/review/re:ch_o:500/dismiss", map[string]any{"note": "not ours"}, &out); code != 200 ||
			out.Item.Status != meter.ReviewDismissed {
			t.Fatalf("dismiss: %d %+v", code, out)
		}
		g.adminDo("GET", "/meter/stripe/review", nil, &q)
		if len(q.Items) != 1 || q.Items[0].ID != "cs:cs_nobody" {
			t.Fatalf("pending after: %+v", q.Items)
		}
	})
}

func TestStripeOtherEventsIgnoredAndCounted(t *testing.T) {
	stripeStores(t, func(t *testing.T, g stripeGateway) {
		before := testutil.ToFloat64(stripeEvents.WithLabelValues("other", stripeIgnored))
		status, m := g.send(t, stripeEvent("evt_cust", "customer.created", map[string]any{"id": "cus_1", "object": "customer"}), time.Time{}, "")
		if status != 200 || m["result"] != "ignored" || m["received"] != true {
			t.Fatalf("%d %v", status, m)
		}
		if got := testutil.ToFloat64(stripeEvents.WithLabelValues("other", stripeIgnored)); got != before+1 {
			t.Errorf("counter %v, want %v", got, before+1)
		}
	})
}
