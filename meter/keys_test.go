package meter

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSortKeys(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_000)
	keys := []Key{{ID: "key_b", CreatedAt: at}, {ID: "key_c", CreatedAt: at.Add(-time.Millisecond)}, {ID: "key_a", CreatedAt: at}}
	SortKeys(keys)
	if keys[0].ID != "key_c" || keys[1].ID != "key_a" || keys[2].ID != "key_b" {
		t.Fatalf("order %v %v %v", keys[0].ID, keys[1].ID, keys[2].ID)
	}
}

// validAccountID is the pattern ^[A-Za-z0-9_.-]{1,64}$ written out: the
// same answer for every byte, at every length edge, and for non-ASCII.
func TestValidAccountIDIsThePattern(t *testing.T) {
	pattern := regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	ids := []string{"", "a", strings.Repeat("a", 64), strings.Repeat("a", 65), "é", "a\x00", "a\n", "ab\xff"}
	for c := 0; c < 256; c++ {
		ids = append(ids, string([]byte{byte(c)}), "x"+string([]byte{byte(c)})+"y")
	}
	for _, id := range ids {
		if got, want := validAccountID(id), pattern.MatchString(id); got != want {
			t.Errorf("validAccountID(%q) = %v, the pattern says %v", id, got, want)
		}
	}
}
