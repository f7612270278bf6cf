package storetest

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

func testAccounts(t *testing.T, s meter.Store) {
	t.Run("initial credits are a purchase", func(t *testing.T) {
		id := newID("create.ok")
		a, err := s.CreateAccount(ctx, id, c(12.5))
		if err != nil || a.ID != id || a.Balance != c(12.5) || a.Reserved != 0 || a.Available != c(12.5) ||
			a.TotalPurchased != c(12.5) || a.TotalUsed != 0 {
			t.Fatalf("%+v, %v", a, err)
		}
		if time.Since(a.CreatedAt).Abs() > time.Minute {
			t.Errorf("created at %v", a.CreatedAt)
		}
		got, err := s.Account(ctx, id)
		if err != nil || !got.CreatedAt.Equal(a.CreatedAt) || got.Balance != c(12.5) {
			t.Errorf("Account: %+v, %v", got, err)
		}
		expect(t, s, id, c(12.5), 0, entry{"purchase", c(12.5), c(12.5), false})
		es, _ := s.Ledger(ctx, meter.LedgerQuery{AccountID: id})
		if es[0].Description != "initial credits" || es[0].AccountID != id || es[0].ID == "" {
			t.Errorf("entry %+v", es[0])
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
	for _, id := range []string{"", strings.Repeat("a", 65), "a b", "a{b}", "a:b", "é", "a/b"} {
		t.Run(fmt.Sprintf("invalid id %q", id), func(t *testing.T) {
			_, err := s.CreateAccount(ctx, id, 0)
			wantCode(t, err, meter.ECodeInvalid)
			_, err = s.Account(ctx, id)
			wantCode(t, err, meter.ECodeInvalid)
		})
	}
	t.Run("negative or huge initial credits", func(t *testing.T) {
		_, err := s.CreateAccount(ctx, newID("create"), -1)
		wantCode(t, err, meter.ECodeInvalid)
		_, err = s.CreateAccount(ctx, newID("create"), MaxCredits+1)
		wantCode(t, err, meter.ECodeInvalid)
	})
}

func testSettings(t *testing.T, s meter.Store) {
	id := newAccount(t, s, c(10))
	a, err := s.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Settings, meter.Settings{}) || !a.Settings.IsEnabled() {
		t.Fatalf("new account settings %+v", a.Settings)
	}
	off := false
	want := meter.Settings{Enabled: &off, Rates: map[string]meter.Credits{"drawing": c(8), "document": c(0.5)},
		PageLimit: 200, MonthlyQuota: c(3), QuotaUnit: "scans", OverageCap: c(2), LowBalanceThreshold: c(1),
		TimeZone: "Europe/Paris", PeriodAnchor: meter.AnchorAnniversary}
	a, err = s.UpdateSettings(ctx, id, want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Settings, want) || a.Balance != c(10) || a.Quota.Limit != c(3) || a.Overage.Cap != c(2) {
		t.Fatalf("UpdateSettings returned %+v", a)
	}
	a, err = s.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Settings, want) || a.Settings.IsEnabled() {
		t.Fatalf("Account after update: %+v", a.Settings)
	}
	// Settings move no money.
	expect(t, s, id, c(10), 0, entry{meter.EntryPurchase, c(10), c(10), false})

	// Replacing resets what the new settings leave out.
	if a, err = s.UpdateSettings(ctx, id, meter.Settings{}); err != nil || !reflect.DeepEqual(a.Settings, meter.Settings{}) ||
		a.Quota.Limit != 0 || a.Overage.Cap != 0 {
		t.Errorf("reset: %+v, %v", a, err)
	}
	for _, bad := range []meter.Settings{{MonthlyQuota: -1}, {OverageCap: -1}, {MonthlyQuota: MaxCredits + 1}} {
		_, err = s.UpdateSettings(ctx, id, bad)
		wantCode(t, err, meter.ECodeInvalid)
	}
	_, err = s.UpdateSettings(ctx, newID("missing"), want)
	wantCode(t, err, meter.ECodeAccountNotFound)
}

func testListAccounts(t *testing.T, s meter.Store) {
	// Ids of this case share a prefix no other case uses, and sort after
	// it: listing after the prefix starts with them.
	prefix := newID("list")
	ids := []string{prefix + ".a", prefix + ".b", prefix + ".c"}
	for _, id := range []string{ids[2], ids[0], ids[1]} {
		if _, err := s.CreateAccount(ctx, id, 0); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ListAccounts(ctx, prefix, 3)
	if err != nil || !reflect.DeepEqual(got, ids) {
		t.Errorf("ListAccounts(%s, 3): %v, %v; want %v", prefix, got, err, ids)
	}
	got, err = s.ListAccounts(ctx, ids[0], 2)
	if err != nil || !reflect.DeepEqual(got, ids[1:]) {
		t.Errorf("ListAccounts after %s: %v, %v; want %v", ids[0], got, err, ids[1:])
	}
	all, err := s.ListAccounts(ctx, "", 0)
	if err != nil || len(all) == 0 || len(all) > 100 {
		t.Errorf("ListAccounts with the default limit: %d ids, %v", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1] >= all[i] {
			t.Errorf("not in order: %q before %q", all[i-1], all[i])
		}
	}
}

func testKeys(t *testing.T, s meter.Store) {
	id := newAccount(t, s, 0)
	secret := newID("sk_live_abcdefgh") + "1234"
	hash := meter.HashKey(secret)
	k := meter.Key{Hash: hash, AccountID: id, Mode: meter.ModeLive, Prefix: "sk_live", Last4: "1234"}
	if err := s.AddKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.AddKey(ctx, k); err != nil {
		t.Errorf("adding the same key again: %v", err)
	}
	got, err := s.LookupKey(ctx, hash)
	if err != nil || got.ID != meter.KeyID(hash) || got.Hash != hash || got.AccountID != id || got.Mode != meter.ModeLive ||
		got.Prefix != "sk_live" || got.Last4 != "1234" || time.Since(got.CreatedAt).Abs() > time.Minute || !got.RevokedAt.IsZero() {
		t.Errorf("LookupKey: %+v, %v", got, err)
	}
	time.Sleep(2 * time.Millisecond) // the listing is by creation time
	_, test := meter.NewKey(id, meter.ModeTest)
	if err := s.AddKey(ctx, test); err != nil {
		t.Fatal(err)
	}
	keys, err := s.ListKeys(ctx, id)
	if err != nil || len(keys) != 2 || keys[0].Hash != hash || keys[1].Hash != test.Hash || keys[1].Mode != meter.ModeTest {
		t.Fatalf("ListKeys: %+v, %v", keys, err)
	}

	t.Run("unknown", func(t *testing.T) {
		for _, h := range []string{meter.HashKey("nope"), "", "not-hex", strings.ToUpper(hash)} {
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
			{meter.Key{Hash: meter.HashKey("x"), AccountID: newID("nobody"), Mode: meter.ModeTest}, meter.ECodeAccountNotFound},
			{meter.Key{Hash: meter.HashKey("x"), AccountID: other, Mode: "staging"}, meter.ECodeInvalid},
			{meter.Key{Hash: "secret", AccountID: other, Mode: meter.ModeTest}, meter.ECodeInvalid},
			{meter.Key{Hash: meter.HashKey("x"), AccountID: "bad id", Mode: meter.ModeTest}, meter.ECodeInvalid},
		} {
			wantCode(t, s.AddKey(ctx, tc.k), tc.code)
		}
		if keys, err := s.ListKeys(ctx, other); err != nil || len(keys) != 0 {
			t.Errorf("keys of the other account: %+v, %v", keys, err)
		}
	})
	t.Run("revoke", func(t *testing.T) {
		r, err := s.RevokeKey(ctx, id, meter.KeyID(hash))
		if err != nil || r.Hash != hash || r.RevokedAt.IsZero() || time.Since(r.RevokedAt).Abs() > time.Minute {
			t.Fatalf("RevokeKey: %+v, %v", r, err)
		}
		_, err = s.LookupKey(ctx, hash)
		wantCode(t, err, meter.ECodeInvalidAPIKey)
		if _, err := s.LookupKey(ctx, test.Hash); err != nil {
			t.Errorf("the other key: %v", err)
		}
		again, err := s.RevokeKey(ctx, id, meter.KeyID(hash))
		if err != nil || !again.RevokedAt.Equal(r.RevokedAt) {
			t.Errorf("revoking again: %+v, %v; want the first time %v", again, err, r.RevokedAt)
		}
		keys, err := s.ListKeys(ctx, id)
		if err != nil || len(keys) != 2 || !keys[0].RevokedAt.Equal(r.RevokedAt) || !keys[1].RevokedAt.IsZero() {
			t.Errorf("ListKeys after revoke: %+v, %v", keys, err)
		}
		_, err = s.RevokeKey(ctx, id, "key_0000000000000000")
		wantCode(t, err, meter.ECodeNotFound)
		_, err = s.RevokeKey(ctx, newAccount(t, s, 0), meter.KeyID(test.Hash)) // another account's key
		wantCode(t, err, meter.ECodeNotFound)
		_, err = s.RevokeKey(ctx, newID("nobody"), meter.KeyID(hash))
		wantCode(t, err, meter.ECodeAccountNotFound)
		_, err = s.ListKeys(ctx, newID("nobody"))
		wantCode(t, err, meter.ECodeAccountNotFound)
	})
}

// Every case starts from a new account holding 10 credits, 4 of them reserved.
func testGrant(t *testing.T, s meter.Store) {
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
				e.BalanceAfter != tt.balance || e.Description != g.Description || time.Since(e.CreatedAt).Abs() > time.Minute {
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
		g := meter.Grant{AccountID: id, Amount: c(5), Type: meter.EntryPurchase, IdempotencyKey: "pi_123", Description: "order"}
		first, err := s.Grant(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		g.Amount = c(7) // a retry answers the first entry, whatever it says
		again, err := s.Grant(ctx, g)
		if err != nil || again != first {
			t.Errorf("retry: %+v, %v; want %+v", again, err, first)
		}
		other := newAccount(t, s, 0) // keys are per account
		if e, err := s.Grant(ctx, meter.Grant{AccountID: other, Amount: c(1), Type: meter.EntryPurchase, IdempotencyKey: "pi_123"}); err != nil ||
			e.Amount != c(1) || e.BalanceAfter != c(1) {
			t.Errorf("same key, other account: %+v, %v", e, err)
		}
		expect(t, s, id, c(15), 0, purchase, entry{"purchase", c(5), c(15), false})
		a, _ := s.Account(ctx, id)
		if a.TotalPurchased != c(15) {
			t.Errorf("total purchased %s, want 15", a.TotalPurchased)
		}
	})
}

// testAccountUpdatedAt: Account.UpdatedAt is when the settings last
// changed; Settings.RetentionDays is kept like every setting.
func testAccountUpdatedAt(t *testing.T, s meter.Store) {
	id := newID("upd")
	a, err := s.CreateAccount(ctx, id, c(10))
	if err != nil {
		t.Fatal(err)
	}
	created := a.UpdatedAt
	if created.IsZero() || created.Before(a.CreatedAt) || created.Sub(a.CreatedAt) > time.Second {
		t.Errorf("created at %v, updated at %v", a.CreatedAt, created)
	}
	if got, err := s.Account(ctx, id); err != nil || !got.UpdatedAt.Equal(created) || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("Account: %+v, %v", got, err)
	}
	// Money moves, settings do not: UpdatedAt stays.
	sleepMillis()
	grant(t, s, id, c(1), meter.EntryPurchase, "")
	debit(t, s, id, c(2))
	if got, err := s.Account(ctx, id); err != nil || !got.UpdatedAt.Equal(created) {
		t.Errorf("after a grant and a debit: updated at %v, %v; want %v", got.UpdatedAt, err, created)
	}

	last := created
	for i, st := range []meter.Settings{{RetentionDays: 7}, {RetentionDays: 7}, {}} {
		sleepMillis()
		a, err := s.UpdateSettings(ctx, id, st)
		if err != nil {
			t.Fatal(err)
		}
		if !a.UpdatedAt.After(last) || a.UpdatedAt.Before(a.CreatedAt) || time.Since(a.UpdatedAt).Abs() > time.Minute ||
			!reflect.DeepEqual(a.Settings, st) {
			t.Errorf("update %d: updated at %v (before: %v), settings %+v; want %+v", i, a.UpdatedAt, last, a.Settings, st)
		}
		got, err := s.Account(ctx, id)
		if err != nil || !got.UpdatedAt.Equal(a.UpdatedAt) || !reflect.DeepEqual(got.Settings, st) || got.Settings.RetentionDays != st.RetentionDays {
			t.Errorf("update %d: Account %+v, %v", i, got, err)
		}
		last = a.UpdatedAt
	}
	// A refused update changes nothing.
	sleepMillis()
	_, err = s.UpdateSettings(ctx, id, meter.Settings{MonthlyQuota: -1})
	wantCode(t, err, meter.ECodeInvalid)
	if got, err := s.Account(ctx, id); err != nil || !got.UpdatedAt.Equal(last) {
		t.Errorf("after a refused update: updated at %v, %v; want %v", got.UpdatedAt, err, last)
	}
}
