package redisstore

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

func TestCreateAccount(t *testing.T) {
	s := newStore(t, Options{})
	t.Run("initial credits are a purchase", func(t *testing.T) {
		id := newID("create.ok")
		a, err := s.CreateAccount(ctx, id, c(12.5))
		if err != nil || a.ID != id || a.Balance != c(12.5) || a.Reserved != 0 || a.Available != c(12.5) {
			t.Fatalf("%+v, %v", a, err)
		}
		if time.Since(a.CreatedAt).Abs() > time.Minute {
			t.Errorf("created at %v", a.CreatedAt)
		}
		expect(t, s, id, c(12.5), 0, entry{"purchase", c(12.5), c(12.5), false})
		es, _ := s.Ledger(ctx, meter.LedgerQuery{AccountID: id})
		if es[0].Description != "initial credits" {
			t.Errorf("description %q", es[0].Description)
		}
	})
	t.Run("no initial credits, no entry", func(t *testing.T) {
		id := newID("create-empty")
		if _, err := s.CreateAccount(ctx, id, 0); err != nil {
			t.Fatal(err)
		}
		expect(t, s, id, 0, 0)
	})
	t.Run("exists", func(t *testing.T) {
		id := newAccount(t, s, c(1))
		_, err := s.CreateAccount(ctx, id, c(5))
		wantCode(t, err, meter.ECodeAccountExists)
		expect(t, s, id, c(1), 0, entry{"purchase", c(1), c(1), false})
	})
	t.Run("listed in the accounts set", func(t *testing.T) {
		id := newAccount(t, s, 0)
		cl := srv.Client()
		defer cl.Close()
		if ok, _ := cl.SIsMember(ctx, "meter:accounts", id).Result(); !ok {
			t.Error("not in meter:accounts")
		}
	})
	for _, id := range []string{"", strings.Repeat("a", 65), "a b", "a{b}", "a:b", "é", "a/b"} {
		t.Run(fmt.Sprintf("invalid id %q", id), func(t *testing.T) {
			_, err := s.CreateAccount(ctx, id, 0)
			wantCode(t, err, meter.ECodeInvalid)
		})
	}
	for _, id := range []string{"A", "acct_42", "a.b-c_D", strings.Repeat("z", 64)} {
		if err := meter.ValidateAccountID(id); err != nil {
			t.Errorf("meter.ValidateAccountID(%q): %v", id, err)
		}
	}
	t.Run("negative initial credits", func(t *testing.T) {
		_, err := s.CreateAccount(ctx, newID("create"), -1)
		wantCode(t, err, meter.ECodeInvalid)
	})
}

// Every case starts from a new account holding 10 credits, 4 of them reserved.
func TestGrant(t *testing.T) {
	purchase := entry{"purchase", c(10), c(10), false}
	tests := []struct {
		name      string
		grant     meter.Grant
		wantCode  string
		balance   meter.Credits
		ledgerAdd []entry
	}{
		{"purchase", meter.Grant{Amount: c(5), Type: meter.EntryPurchase, Description: "order 1"},
			"", c(15), []entry{{"purchase", c(5), c(15), false}}},
		{"positive adjustment", meter.Grant{Amount: c(0.5), Type: meter.EntryAdjustment},
			"", c(10.5), []entry{{"adjustment", c(0.5), c(10.5), false}}},
		{"negative adjustment up to the available balance", meter.Grant{Amount: -c(6), Type: meter.EntryAdjustment},
			"", c(4), []entry{{"adjustment", -c(6), c(4), false}}},
		{"negative adjustment beyond the available balance", meter.Grant{Amount: -c(6.001), Type: meter.EntryAdjustment},
			meter.ECodeInsufficientCredits, c(10), nil},
		{"negative purchase", meter.Grant{Amount: -c(1), Type: meter.EntryPurchase}, meter.ECodeInvalid, c(10), nil},
		{"zero", meter.Grant{Amount: 0, Type: meter.EntryPurchase}, meter.ECodeInvalid, c(10), nil},
		{"unknown type", meter.Grant{Amount: c(1), Type: meter.EntryUsage}, meter.ECodeInvalid, c(10), nil},
		{"balance beyond the maximum", meter.Grant{Amount: MaxCredits, Type: meter.EntryPurchase}, meter.ECodeInvalid, c(10), nil},
	}
	s := newStore(t, Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := newAccount(t, s, c(10))
			mustReserve(t, s, id, "r1", c(4))
			g := tt.grant
			g.AccountID = id
			e, err := s.Grant(ctx, g)
			if tt.wantCode != "" {
				wantCode(t, err, tt.wantCode)
			} else if err != nil {
				t.Fatal(err)
			} else if e.ID == "" || e.AccountID != id || e.Type != g.Type || e.Amount != g.Amount ||
				e.BalanceAfter != tt.balance || e.Description != g.Description || e.CreatedAt.IsZero() {
				t.Errorf("entry %+v", e)
			}
			expect(t, s, id, tt.balance, c(4), append([]entry{purchase}, tt.ledgerAdd...)...)
		})
	}
	t.Run("insufficient details", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		mustReserve(t, s, id, "r1", c(4))
		_, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: -c(7), Type: meter.EntryAdjustment})
		e := wantCode(t, err, meter.ECodeInsufficientCredits)
		if e.Details["required"] != c(7) || e.Details["available"] != c(6) {
			t.Errorf("details %v", e.Details)
		}
	})
	t.Run("a retried grant is recorded once", func(t *testing.T) {
		id := newAccount(t, s, c(10))
		g := meter.Grant{AccountID: id, Amount: c(5), Type: meter.EntryPurchase, IdempotencyKey: "pi_123"}
		first, err := s.Grant(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		g.Amount = c(7) // a retry answers the first entry, whatever it says
		again, err := s.Grant(ctx, g)
		if err != nil || again != first {
			t.Errorf("retry: %+v, %v; want %+v", again, err, first)
		}
		expect(t, s, id, c(15), 0, purchase, entry{"purchase", c(5), c(15), false})
	})
}

func TestKeys(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, 0)
	hash := meter.HashKey(newID("sk_live_abcdefgh") + "1234")
	k := meter.Key{Hash: hash, AccountID: id, Mode: meter.ModeLive, Prefix: "sk_live_", Last4: "1234"}
	if err := s.AddKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.AddKey(ctx, k); err != nil {
		t.Errorf("adding the same key again: %v", err)
	}
	got, err := s.LookupKey(ctx, hash)
	if err != nil || got.Hash != hash || got.AccountID != id || got.Mode != meter.ModeLive ||
		got.Prefix != "sk_live_" || got.Last4 != "1234" || time.Since(got.CreatedAt).Abs() > time.Minute {
		t.Errorf("LookupKey: %+v, %v", got, err)
	}
	cl := srv.Client()
	defer cl.Close()
	if ok, _ := cl.SIsMember(ctx, s.keySetKey(id), hash).Result(); !ok {
		t.Error("hash not in the account's key set")
	}

	t.Run("unknown", func(t *testing.T) {
		for _, h := range []string{meter.HashKey("nope"), "", "not-hex"} {
			_, err := s.LookupKey(ctx, h)
			wantCode(t, err, meter.ECodeInvalidAPIKey)
		}
	})
	t.Run("refused", func(t *testing.T) {
		other := newAccount(t, s, 0)
		for _, tc := range []struct {
			k    meter.Key
			code string
		}{
			{meter.Key{Hash: hash, AccountID: other, Mode: meter.ModeLive}, meter.ECodeInvalid},
			{meter.Key{Hash: meter.HashKey("x"), AccountID: "nobody", Mode: meter.ModeTest}, meter.ECodeAccountNotFound},
			{meter.Key{Hash: meter.HashKey("x"), AccountID: other, Mode: "staging"}, meter.ECodeInvalid},
			{meter.Key{Hash: "secret", AccountID: other, Mode: meter.ModeTest}, meter.ECodeInvalid},
		} {
			wantCode(t, s.AddKey(ctx, tc.k), tc.code)
		}
	})
}

func TestLedgerLimits(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, 0)
	for i := 1; i <= 60; i++ {
		if _, err := s.Grant(ctx, meter.Grant{AccountID: id, Amount: c(1), Type: meter.EntryPurchase,
			Description: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ limit, want int }{{0, 50}, {3, 3}, {5000, 60}} {
		es, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: tc.limit})
		if err != nil || len(es) != tc.want {
			t.Fatalf("limit %d: %d entries, %v; want %d", tc.limit, len(es), err, tc.want)
		}
		if es[0].Description != "60" || es[0].BalanceAfter != c(60) {
			t.Errorf("limit %d: newest first, got %+v", tc.limit, es[0])
		}
	}
	_, err := s.Ledger(ctx, meter.LedgerQuery{AccountID: id, Limit: -1})
	wantCode(t, err, meter.ECodeInvalid)
}
