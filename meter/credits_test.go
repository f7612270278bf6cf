package meter

import (
	"encoding/json"
	"fmt"
	"testing"
)

func TestParseCredits(t *testing.T) {
	tests := []struct {
		in      string
		want    Credits
		wantErr bool
	}{
		{"10", 10000, false},
		{"0.5", 500, false},
		{"11.5", 11500, false},
		{"-2.125", -2125, false},
		{".5", 500, false},
		{"+3", 3000, false},
		{"0", 0, false},
		{"1.2345", 0, true},
		{"1e3", 0, true},
		{"", 0, true},
		{"-", 0, true},
		{"1.", 0, true},
		{"abc", 0, true},
		{"99999999999999999999", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCredits(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseCredits(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("ParseCredits(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestCreditsStringAndJSONRoundTrip(t *testing.T) {
	for _, c := range []Credits{0, 1000, 11500, 125, -2125, 1, 999, 123456789000} {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var back Credits
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if back != c {
			t.Fatalf("round trip of %d via %s gave %d", c, b, back)
		}
	}
	var c Credits
	if err := json.Unmarshal([]byte(`"2.5"`), &c); err != nil || c != 2500 {
		t.Fatalf(`"2.5" -> %d, %v`, c, err)
	}
	if err := json.Unmarshal([]byte(`1e2`), &c); err == nil {
		t.Fatal("exponent accepted")
	}
	if got := Credits(11500).String(); got != "11.5" {
		t.Fatalf("String = %q", got)
	}
}

func ExampleCredits_String() {
	price, _ := ParseCredits("0.5")
	total := 23 * price
	fmt.Println(total)
	// Output: 11.5
}

func TestNewKey(t *testing.T) {
	secret, k := NewKey("acme", ModeTest)
	if len(secret) != len("sk_test_")+32 || secret[:8] != "sk_test_" {
		t.Fatalf("secret %q", secret)
	}
	if k.Hash != HashKey(secret) || k.Last4 != secret[len(secret)-4:] || k.Prefix != "sk_test" || k.AccountID != "acme" {
		t.Fatalf("key record %+v", k)
	}
	other, _ := NewKey("acme", ModeTest)
	if other == secret {
		t.Fatal("two keys are equal")
	}
}

func TestValidateAccountID(t *testing.T) {
	for id, ok := range map[string]bool{"acme": true, "acct_42.eu-1": true, "": false, "a{b}": false, "a:b": false, "x y": false} {
		if err := ValidateAccountID(id); (err == nil) != ok {
			t.Errorf("ValidateAccountID(%q) = %v", id, err)
		}
	}
}
