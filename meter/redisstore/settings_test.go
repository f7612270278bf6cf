package redisstore

import (
	"reflect"
	"testing"

	"github.com/creditgate/creditgate/meter"
)

func TestSettings(t *testing.T) {
	s := newStore(t, Options{})
	id := newAccount(t, s, c(10))

	a, err := s.Account(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Settings, meter.Settings{}) || !a.Settings.IsEnabled() {
		t.Fatalf("new account settings %+v", a.Settings)
	}

	off := false
	want := meter.Settings{Enabled: &off, Rates: map[string]meter.Credits{"drawing": c(8), "document": c(0.5)}, PageLimit: 200}
	a, err = s.UpdateSettings(ctx, id, want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Settings, want) || a.Balance != c(10) {
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

	_, err = s.UpdateSettings(ctx, newID("missing"), want)
	wantCode(t, err, meter.ECodeAccountNotFound)
}
