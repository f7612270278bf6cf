package meter

import (
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
