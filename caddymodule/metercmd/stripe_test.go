package metercmd_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/stripe/stripe-go/v82/webhook"
)

// `meter stripe review`: an event for an account that does not exist yet
// is listed, applied once to the account the operator names, and another
// one dismissed.
func TestStripeReviewCommands(t *testing.T) {
	t.Setenv("CLI_TEST_STRIPE_SECRET", "whsec_cli_test")
	g := &gateway{t: t, admin: freeAddr(t), site: freeAddr(t)}
	src := fmt.Sprintf("{\n\tadmin %s\n\tpersist_config off\n\tmeter {\n\t\tdata_dir %s\n\t}\n}\nhttp://%s {\n"+
		"\tmeter_stripe {\n\t\tsecret {env.CLI_TEST_STRIPE_SECRET}\n\t\tamount usd 1000 100\n\t}\n}\n",
		g.admin, filepath.Join(t.TempDir(), "data"), g.site)
	cfg, _, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt([]byte(src), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		t.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { caddy.Stop() })
	send := func(id, session, ref string) {
		payload, _ := json.Marshal(map[string]any{"id": id, "object": "event", "type": "checkout.session.completed",
			"data": map[string]any{"object": map[string]any{"id": session, "object": "checkout.session",
				"client_reference_id": ref, "payment_status": "paid", "payment_intent": "pi_" + session,
				"amount_total": 1000, "currency": "usd"}}})
		req, _ := http.NewRequest("POST", "http://"+g.site+"/", bytes.NewReader(payload))
		req.Header.Set("Stripe-Signature", webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{
			Payload: payload, Secret: "whsec_cli_test"}).Header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("event: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	send("evt_1", "cs_late", "newco")
	send("evt_2", "cs_spam", "nobody")
	out := g.cli("stripe", "review", "list")
	if !strings.Contains(out, "cs:cs_late") || !strings.Contains(out, "unknown_account") || !strings.Contains(out, "newco") {
		t.Fatalf("list:\n%s", out)
	}
	g.cli("account", "create", "newco")
	if out := g.cli("stripe", "review", "apply", "cs:cs_late", "newco", "--note", "signed up late"); !strings.Contains(out, "purchase 100") {
		t.Fatalf("apply:\n%s", out)
	}
	if e := g.cliErr("", false, "stripe", "review", "apply", "cs:cs_late", "other"); !strings.Contains(e, "review_resolved") &&
		!strings.Contains(e, "already") {
		t.Fatalf("second apply elsewhere: %s", e)
	}
	if b := g.balance("newco"); b != credits("100") {
		t.Fatalf("balance %s", b)
	}
	if out := g.cli("stripe", "review", "dismiss", "cs:cs_spam", "--note", "test"); !strings.Contains(out, "dismissed") {
		t.Fatalf("dismiss:\n%s", out)
	}
	if out := g.cli("stripe", "review", "list"); strings.Contains(out, "cs:") {
		t.Fatalf("pending after:\n%s", out)
	}
}
