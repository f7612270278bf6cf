package pdfscan

import (
	"math/rand/v2"
	"regexp"
	"testing"
)

// firstObjectRE is the regular expression firstObject replaces.
var firstObjectRE = regexp.MustCompile(`(?:^|[\r\n\t\f ])(\d+)[\r\n\t\f ]+\d+[\r\n\t\f ]+obj`)

// TestFirstObjectMatchesRegexp compares firstObject with the regular
// expression on heads made of the bytes that matter to it.
func TestFirstObjectMatchesRegexp(t *testing.T) {
	cases := []string{"", "obj", "1 0 obj", "%PDF-1.7\n1 0 obj", "%PDF-1.7 x1 0 obj\n2 0 obj",
		"%PDF-1.7\n12 \r\n 0\fobj", "%PDF-1.7\n1 0obj", "%PDF-1.7\n1 0 ob", "\n1 2 3 obj", " 1 2 3 0 obj"}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("0123 \n\robjx%\f\t")
	for range 20000 {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, c := range cases {
		want := -1
		if m := firstObjectRE.FindSubmatchIndex([]byte(c)); m != nil {
			want = m[2]
		}
		if got := firstObject([]byte(c)); got != want {
			t.Fatalf("firstObject(%q) = %d, the regexp says %d", c, got, want)
		}
	}
}
