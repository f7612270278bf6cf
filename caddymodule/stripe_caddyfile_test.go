package caddymodule

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
)

func TestStripeCaddyfileAdapt(t *testing.T) {
	m, err := adapt(t, `:80 {
	handle /stripe {
		meter_stripe {
			secret {env.STRIPE_WEBHOOK_SECRET}
			tolerance 2m
			account metadata.account client_reference_id
			credits metadata.credits
			amount usd 1000 100
			amount eur 900 100.5
		}
	}
}`)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(find(m, "meter_stripe"))
	want := `{"account":["metadata.account","client_reference_id"],"amounts":[{"amount":1000,"credits":100,"currency":"usd"},` +
		`{"amount":900,"credits":100.5,"currency":"eur"}],"credits_metadata":"credits","handler":"meter_stripe",` +
		`"secret":"{env.STRIPE_WEBHOOK_SECRET}","tolerance":120000000000}`
	if string(got) != want {
		t.Errorf("adapted\n%s\nwant\n%s", got, want)
	}
}

func TestStripeCaddyfileErrors(t *testing.T) {
	site := func(body string) string { return ":80 {\n\tmeter_stripe {\n" + body + "\t}\n}" }
	tests := []struct{ name, src, want string }{
		{"no secret", site("\t\tamount usd 1000 100\n"), "meter_stripe: secret is required"},
		{"unknown", site("\t\tsecret x\n\t\tsecrte y\n"), `unknown subdirective "secrte", at Caddyfile:4`},
		{"repeated", site("\t\tsecret x\n\t\tsecret y\n"), "secret given more than once, at Caddyfile:4"},
		{"bad tolerance", site("\t\tsecret x\n\t\ttolerance forever\n"), `tolerance "forever": use a duration up to 24h`},
		{"bad account source", site("\t\tsecret x\n\t\taccount customer_email\n"), `account source "customer_email"`},
		{"empty metadata key", site("\t\tsecret x\n\t\tcredits metadata.\n"), `credits "metadata.": use metadata.<key>`},
		{"amount arity", site("\t\tsecret x\n\t\tamount usd 1000\n"), "amount takes <currency> <amount_total> <credits>"},
		{"amount in units", site("\t\tsecret x\n\t\tamount usd 10.00 100\n"), `amount "10.00": the amount_total in the currency's smallest unit`},
		{"upper-case currency", site("\t\tsecret x\n\t\tamount USD 1000 100\n"), `amount currency "USD"`},
		{"zero credits", site("\t\tsecret x\n\t\tamount usd 1000 0\n"), `amount credits "0"`},
		{"amount twice", site("\t\tsecret x\n\t\tamount usd 1000 100\n\t\tamount usd 1000 200\n"), "amount usd 1000 given twice, at Caddyfile:5"},
		{"argument", ":80 {\n\tmeter_stripe x {\n\t\tsecret x\n\t}\n}", "wrong argument count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := adapt(t, tt.src)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// A secret placeholder whose variable is unset fails at load, not at the
// first event.
func TestStripeSecretUnsetFailsAtLoad(t *testing.T) {
	s := &Stripe{Secret: "{env.CREDITGATE_TEST_UNSET_SECRET}"}
	s.secret = caddy.NewReplacer().ReplaceKnown(s.Secret, "")
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "secret is empty") {
		t.Fatalf("error %v", err)
	}
}

// The Caddyfile snippets of the README and docs/stripe.md adapt as they
// are written.
func TestStripeDocSnippetsAdapt(t *testing.T) {
	for _, file := range []string{"../README.md", "../docs/stripe.md"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, block := range strings.Split(string(raw), "```caddyfile\n")[1:] {
			src, _, _ := strings.Cut(block, "```")
			if !strings.Contains(src, "meter_stripe {") {
				continue
			}
			n++
			m, err := adapt(t, src)
			if err != nil {
				t.Fatalf("%s: %v\n%s", file, err, src)
			}
			if h := find(m, "meter_stripe"); h == nil || h["secret"] != "{env.STRIPE_WEBHOOK_SECRET}" {
				t.Errorf("%s: adapted %v", file, h)
			}
		}
		if n == 0 {
			t.Errorf("%s has no meter_stripe snippet", file)
		}
	}
}
