package meter

import (
	"regexp"
	"testing"
)

// fingerprintOK accepts exactly what the regexp it replaced did.
func TestFingerprintOK(t *testing.T) {
	re := regexp.MustCompile(`^[0-9A-Za-z_.:-]*$`)
	cases := []string{"", "a", "Z9", "sha256:ab.cd_ef-01", "a b", "a/b", "a{b}", "é", "a\x00", "a\n", "~", "+", "a|b"}
	for c := 0; c < 256; c++ {
		cases = append(cases, string([]byte{byte(c)}))
	}
	for _, fp := range cases {
		if got, want := fingerprintOK(fp), re.MatchString(fp); got != want {
			t.Errorf("fingerprintOK(%q) = %v, want %v", fp, got, want)
		}
	}
}
