package pricing

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/theory/jsonpath"
)

// The project keeps its own bounded JSONPath evaluator (docs/pricing.md
// says why); github.com/theory/jsonpath, an RFC 9535 implementation, is
// its oracle here: on random documents and random queries of the subset
// pricing accepts, both select the same number of nodes, which is what a
// per_match rule charges.

var oracleSegments = []string{
	".a", ".b", ".c", ".*", "[0]", "[1]", "[-1]", "['a','b']", "[*]", "[0,0]",
	"..a", "..*", "..[0]", "..b",
	"[?@.a]", "[?!@.c]", "[?@.a == 1]", "[?@.b > 2]", "[?@.b <= 2]", "[?@ == 'x']",
	"[?@.a == 'x' || @.b]", "[?@.a && @.b != 3]", "[?length(@) > 1]",
	"[?count(@.*) == 2]", "[?match(@.c, 'x.*')]", "[?search(@, 'y')]",
	"[?@.a == $.b]", "[?(@.b < 3 || @.c) && !@.a]",
}

func randomQuery(r *rand.Rand) string {
	var b strings.Builder
	b.WriteString("$")
	for n := r.IntN(3) + 1; n > 0; n-- {
		b.WriteString(oracleSegments[r.IntN(len(oracleSegments))])
	}
	return b.String()
}

func randomValue(r *rand.Rand, depth int) any { return randomNode(r, depth, r.IntN(4)) }

// randomNode is an object (kind 0), an array (1, 2) or, past depth 0 or
// for kind 3, a scalar.
func randomNode(r *rand.Rand, depth, kind int) any {
	if depth > 0 {
		switch kind {
		case 0:
			m := map[string]any{}
			for _, k := range []string{"a", "b", "c", "d"} {
				if r.IntN(4) > 0 {
					m[k] = randomValue(r, depth-1)
				}
			}
			return m
		case 1, 2:
			s := make([]any, r.IntN(4)+1)
			for i := range s {
				s[i] = randomValue(r, depth-1)
			}
			return s
		}
	}
	return []any{1.0, 2.0, 3.0, 2.5, "x", "xy", "y", true, false, nil}[r.IntN(10)]
}

func TestQueriesMatchTheoryJSONPath(t *testing.T) {
	n := 3000
	r := rand.New(rand.NewPCG(1, 2))
	compared, nonEmpty := 0, 0
	for i := 0; i < n; i++ {
		src := randomQuery(r)
		body, _ := json.Marshal(randomNode(r, 4, r.IntN(2)))
		ours, err := CompileQuery(src)
		if err != nil {
			t.Fatalf("%s: our parser refused it: %v", src, err)
		}
		oracle, err := jsonpath.Parse(src)
		if err != nil {
			t.Fatalf("%s: the oracle refused it: %v", src, err)
		}
		got, err := ours.Select(body)
		if err != nil {
			continue // past our evaluation bound: refused, never charged wrong
		}
		var doc any
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		if want := oracle.Select(doc); len(got) != len(want) {
			t.Fatalf("%s on %s: we select %d nodes, RFC 9535 (theory/jsonpath) %d", src, body, len(got), len(want))
		}
		if len(got) > 0 {
			nonEmpty++
		}
		compared++
	}
	// Enough queries must select something, or the comparison proves
	// little (200,000 queries compared equal when this was written).
	if compared < n*29/30 || nonEmpty < n/5 {
		t.Fatalf("%d of %d queries compared, %d selected a node", compared, n, nonEmpty)
	}
	t.Logf("%d queries compared, %d selected nodes", compared, nonEmpty)
}
