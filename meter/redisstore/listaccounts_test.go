package redisstore

import (
	"reflect"
	"sort"
	"testing"
)

// A store from before the sorted index (the ids only in the accounts set)
// lists every account, in id order, page after page.
func TestListAccountsCompletesTheSortedIndex(t *testing.T) {
	s := newStore(t, Options{Prefix: newID("legacy")})
	var want []string
	for range 7 {
		want = append(want, newAccount(t, s, 0))
	}
	sort.Strings(want)
	cl := srv.Client()
	defer cl.Close()
	// As an older gateway left it: the set, no sorted index.
	if err := cl.Del(ctx, s.accountsByIDKey()).Err(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for after := ""; ; {
		ids, err := s.ListAccounts(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ids...)
		if len(ids) < 3 {
			break
		}
		after = ids[len(ids)-1]
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
}
