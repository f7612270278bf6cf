package caddymodule

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
)

// Hostile or odd sessions, each signed (Stripe sent them): none credits
// anything it should not, and none reaches another account.
func TestStripeHostileSessions(t *testing.T) {
	stripeStores(t, func(t *testing.T, g stripeGateway) {
		g.newAccount("target", 0, meter.ModeLive)
		cases := []struct {
			name   string
			obj    map[string]any
			result string
			reason string
		}{
			{"account id with a hash tag", checkoutSession("cs_h1", "pi_h1", "target}{x", "paid", 1000, nil), "held", meter.ReasonUnknownAccount},
			{"account id too long", checkoutSession("cs_h2", "pi_h2", strings.Repeat("a", 65), "paid", 1000, nil), "held", meter.ReasonUnknownAccount},
			{"negative credits in metadata", checkoutSession("cs_h3", "pi_h3", "target", "paid", 1000, map[string]string{"credits": "-5"}), "held", meter.ReasonNoCreditMapping},
			{"credits not a number", checkoutSession("cs_h4", "pi_h4", "target", "paid", 1000, map[string]string{"credits": "1e9"}), "held", meter.ReasonNoCreditMapping},
			{"credits beyond milli-credits", checkoutSession("cs_h5", "pi_h5", "target", "paid", 1000, map[string]string{"credits": "0.0001"}), "held", meter.ReasonNoCreditMapping},
			{"zero credits", checkoutSession("cs_h6", "pi_h6", "target", "paid", 1000, map[string]string{"credits": "0"}), "held", meter.ReasonNoCreditMapping},
			{"mapped amount in another currency", func() map[string]any {
				o := checkoutSession("cs_h7", "pi_h7", "target", "paid", 1000, nil)
				o["currency"] = "jpy"
				return o
			}(), "held", meter.ReasonNoCreditMapping},
			{"no payment intent (subscription)", checkoutSession("cs_h8", "", "target", "paid", 1000, nil), "held", meter.ReasonNoPaymentIntent},
			{"free session", checkoutSession("cs_h9", "pi_h9", "target", "no_payment_required", 0, map[string]string{"credits": "100"}), "unpaid", ""},
			{"no session id", map[string]any{"object": "checkout.session", "payment_status": "paid"}, "ignored", ""},
		}
		for i, c := range cases {
			status, m := g.send(t, stripeEvent(fmt.Sprintf("evt_h%d", i), "checkout.session.completed", c.obj), time.Time{}, "")
			if status != 200 || m["result"] != c.result || (c.reason != "" && m["reason"] != c.reason) {
				t.Errorf("%s: %d %v", c.name, status, m)
			}
		}
		g.expectLedger(t, "target", 0)
		// An oversized body is refused before its signature is checked.
		big := stripeEvent("evt_big", "checkout.session.completed", checkoutSession("cs_big", "pi_big", "target", "paid", 1000,
			map[string]string{"pad": strings.Repeat("x", 1<<20)}))
		if status, m := g.send(t, big, time.Time{}, ""); status != 413 {
			t.Errorf("oversized: %d %v", status, m)
		}
		// A header with several v1 signatures (Stripe's secret rotation)
		// passes when one of them is right.
		ev := stripeEvent("evt_rot", "checkout.session.completed", checkoutSession("cs_rot", "pi_rot", "target", "paid", 1000, nil))
		now := time.Now()
		good := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: ev, Secret: stripeTestSecret, Timestamp: now})
		old := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: ev, Secret: "whsec_old", Timestamp: now})
		hdr := old.Header + ",v1=" + strings.SplitN(good.Header, "v1=", 2)[1]
		if status, m := g.sendRaw(t, ev, hdr); status != 200 || m["result"] != "applied" {
			t.Errorf("rotated secret: %d %v", status, m)
		}
		g.expectLedger(t, "target", 100, "purchase", 100.0)
	})
}

// A store that cannot be reached answers 503, so Stripe retries the
// event; once it is back, the retry applies it, once.
func TestStripeStoreOutageRetried(t *testing.T) {
	t.Setenv("TEST_STRIPE_WEBHOOK_SECRET", stripeTestSecret)
	rs := redistest.New(t, "--appendonly", "yes")
	g := stripeGateway{startGatewayRedis(t, globalBlock+strings.ReplaceAll(stripeSite, "{UPSTREAM}", "127.0.0.1:9"), rs.URL()), nil}
	g.newAccount("outage", 0, meter.ModeLive)
	ev := stripeEvent("evt_out", "checkout.session.completed", checkoutSession("cs_out", "pi_out", "outage", "paid", 1000, nil))
	failed := testutil.ToFloat64(stripeEvents.WithLabelValues("checkout.session.completed", stripeFailed))
	rs.Kill()
	status, m := g.send(t, ev, time.Time{}, "")
	if e, _ := m["error"].(map[string]any); status != 503 || e["code"] != meter.ECodeMeteringUnavailable {
		t.Fatalf("during the outage: %d %v", status, m)
	}
	if got := testutil.ToFloat64(stripeEvents.WithLabelValues("checkout.session.completed", stripeFailed)); got != failed+1 {
		t.Errorf("failed counter %v, want %v", got, failed+1)
	}
	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"applied", "replayed"} {
		if status, m := g.send(t, ev, time.Time{}, ""); status != 200 || m["result"] != want {
			t.Fatalf("retry %d: %d %v", i, status, m)
		}
	}
	g.expectLedger(t, "outage", 100, "purchase", 100.0)
}

// Stripe does not order deliveries: a refund that arrives before its
// purchase is held, and applied by the operator once the purchase is in.
func TestStripeRefundBeforePurchase(t *testing.T) {
	stripeStores(t, func(t *testing.T, g stripeGateway) {
		g.newAccount("early", 0, meter.ModeLive)
		refund := stripeEvent("evt_early_ref", "charge.refunded", charge("ch_e", "pi_e", 4000, 2000))
		if status, m := g.send(t, refund, time.Time{}, ""); status != 200 || m["reason"] != meter.ReasonUnknownPayment ||
			m["review"] != "re:ch_e:2000" {
			t.Fatalf("early refund: %d %v", status, m)
		}
		var e struct{ Error map[string]any }
		if code := g.adminDo("POST", "/meter/stripe/review/re:ch_e:2000/apply", map[string]any{}, &e); code != 404 {
			t.Fatalf("apply before the purchase: %d %v", code, e)
		}
		g.send(t, stripeEvent("evt_late_buy", "checkout.session.completed",
			checkoutSession("cs_e", "pi_e", "early", "paid", 4000, nil)), time.Time{}, "")
		var out struct {
			Item     meter.ReviewItem
			Reversed meter.Credits
		}
		for i, want := range []float64{250, 0} {
			if code := g.adminDo("POST", "/meter/stripe/review/re:ch_e:2000/apply", map[string]any{}, &out); code != 200 ||
				out.Reversed != credits(want) || out.Item.AppliedTo != "early" {
				t.Fatalf("apply %d: %d %+v", i, code, out)
			}
		}
		g.expectLedger(t, "early", 250, "purchase", 500.0, "reversal", -250.0)
	})
}
