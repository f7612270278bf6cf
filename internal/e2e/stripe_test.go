package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v82/webhook"

	"github.com/creditgate/creditgate/internal/redistest"
	"github.com/creditgate/creditgate/meter"
)

const stripeSecret = "whsec_e2e_shared_by_all_gateways"

// Stripe delivers one session's events (its retries, the completed and
// async_payment_succeeded pair) to two gateways sharing Redis at once:
// the purchase applies once, and so does each refund amount.
func TestStripeConcurrentDeliveriesToTwoGateways(t *testing.T) {
	rs := redistest.New(t)
	up := newUpstream(t)
	gws := []*gateway{startGateway(t, config{Redis: rs.URL(), Upstream: up.addr}),
		startGateway(t, config{Redis: rs.URL(), Upstream: up.addr})}
	const nAccounts = 5
	for i := range nAccounts {
		gws[0].account(fmt.Sprintf("buyer_%d", i), 0)
	}
	event := func(id, typ string, obj map[string]any) []byte {
		b, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": typ, "api_version": "2024-06-20",
			"created": time.Now().Unix(), "data": map[string]any{"object": obj}})
		return b
	}
	var events [][]byte
	for i := range nAccounts {
		for _, typ := range []string{"checkout.session.completed", "checkout.session.async_payment_succeeded"} {
			events = append(events, event(fmt.Sprintf("evt_%s_%d", typ[17:], i), typ, map[string]any{
				"id": fmt.Sprintf("cs_%d", i), "object": "checkout.session", "client_reference_id": fmt.Sprintf("buyer_%d", i),
				"payment_status": "paid", "payment_intent": fmt.Sprintf("pi_%d", i), "amount_total": 1000, "currency": "usd"}))
		}
	}
	deliver := func(payloads [][]byte, copies int) {
		var wg sync.WaitGroup
		for _, p := range payloads {
			for c := range copies {
				wg.Go(func() {
					h := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: p, Secret: stripeSecret}).Header
					req, _ := http.NewRequest("POST", gws[c%2].URL+"/stripe", bytes.NewReader(p))
					req.Header.Set("Stripe-Signature", h)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						t.Errorf("delivery: %d %s", resp.StatusCode, body)
					}
				})
			}
		}
		wg.Wait()
	}
	deliver(events, 6)
	s := openStore(t, rs.URL())
	for i := range nAccounts {
		a, es := ledger(t, s, fmt.Sprintf("buyer_%d", i))
		if a.Balance != credits(100) || len(es) != 1 || es[0].Type != meter.EntryPurchase ||
			es[0].PaymentIntentID != fmt.Sprintf("pi_%d", i) {
			t.Errorf("buyer_%d: balance %s, ledger %+v", i, a.Balance, es)
		}
	}
	// A partial refund then the full one, each delivered six times over
	// both gateways: 25 then 75 credits taken back, once each.
	var partial, full [][]byte
	for i := range nAccounts {
		ch := func(refunded int) map[string]any {
			return map[string]any{"id": fmt.Sprintf("ch_%d", i), "object": "charge", "payment_intent": fmt.Sprintf("pi_%d", i),
				"amount": 1000, "amount_refunded": refunded, "currency": "usd"}
		}
		partial = append(partial, event(fmt.Sprintf("evt_ref_a_%d", i), "charge.refunded", ch(250)))
		full = append(full, event(fmt.Sprintf("evt_ref_b_%d", i), "charge.refunded", ch(1000)))
	}
	deliver(partial, 6)
	deliver(full, 6)
	for i := range nAccounts {
		a, es := ledger(t, s, fmt.Sprintf("buyer_%d", i))
		if a.Balance != 0 || len(es) != 3 || es[1].Amount != -credits(25) || es[2].Amount != -credits(75) {
			t.Errorf("buyer_%d after refunds: balance %s, ledger %+v", i, a.Balance, es)
		}
	}
}
