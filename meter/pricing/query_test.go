package pricing

import (
	"reflect"
	"testing"
)

func TestQuerySelect(t *testing.T) {
	body := []byte(`{"id": "job-7", "files": [{"size": 1048576}, {"size": 512, "kind": "a"}], "n": {"a": [1]}}`)
	for _, tc := range []struct {
		src  string
		want []any
	}{
		{"$.id", []any{"job-7"}},
		{"$.files[*].size", []any{1048576.0, 512.0}},
		{"$.files[?@.kind == 'a'].size", []any{512.0}},
		{"$.n", []any{map[string]any{"a": []any{1.0}}}},
		{"$.missing", []any{}},
	} {
		q, err := CompileQuery(tc.src)
		if err != nil {
			t.Fatal(err)
		}
		got, err := q.Select(body)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) || q.String() != tc.src {
			t.Errorf("%s: got %#v, want %#v", tc.src, got, tc.want)
		}
	}
	if _, err := CompileQuery("id"); err == nil {
		t.Error("a query without $ compiled")
	}
	q, _ := CompileQuery("$.id")
	if _, err := q.Select([]byte(`{"id": `)); err == nil {
		t.Error("truncated JSON selected")
	}
}
