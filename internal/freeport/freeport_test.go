package freeport

import "testing"

func TestPortsAreNeverHandedOutTwice(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p, err := Port()
		if err != nil {
			t.Fatal(err)
		}
		if seen[p] || p <= 0 {
			t.Fatalf("port %d handed out twice (or invalid)", p)
		}
		seen[p] = true
	}
	a, err := Addr()
	if err != nil || len(a) < len("127.0.0.1:1") {
		t.Fatalf("Addr() = %q, %v", a, err)
	}
}
