package meter

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Credits is an amount of credits held as an integer number of
// milli-credits, so fractional prices (0.5 credits per page) are exact
// and nothing in a store is ever a float. 1 credit == Credits(1000).
type Credits int64

// Scale is the number of Credits units in one credit.
const Scale = 1000

// CreditsFromInt returns n whole credits.
func CreditsFromInt(n int64) Credits { return Credits(n * Scale) }

// ParseCredits parses a decimal amount of credits with at most three
// fractional digits ("10", "0.5", "-2.125"). It never goes through a float.
func ParseCredits(s string) (Credits, error) {
	orig := s
	s = strings.TrimSpace(s)
	neg := false
	switch {
	case strings.HasPrefix(s, "-"):
		neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" && (!hasDot || frac == "") {
		return 0, fmt.Errorf("invalid credit amount %q", orig)
	}
	if hasDot && (frac == "" || len(frac) > 3) {
		return 0, fmt.Errorf("invalid credit amount %q: at most three decimal places", orig)
	}
	for _, part := range []string{whole, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("invalid credit amount %q", orig)
			}
		}
	}
	var w int64
	if whole != "" {
		var err error
		w, err = strconv.ParseInt(whole, 10, 64)
		if err != nil || w > (1<<53)/Scale {
			return 0, fmt.Errorf("credit amount %q out of range", orig)
		}
	}
	f := int64(0)
	if frac != "" {
		frac += strings.Repeat("0", 3-len(frac))
		f, _ = strconv.ParseInt(frac, 10, 64)
	}
	v := Credits(w*Scale + f)
	if neg {
		v = -v
	}
	return v, nil
}

// String formats c as a decimal number of credits without trailing zeros:
// "11.5", "3", "-0.125".
func (c Credits) String() string {
	v := int64(c)
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	whole, frac := v/Scale, v%Scale
	if frac == 0 {
		return sign + strconv.FormatInt(whole, 10)
	}
	fs := strings.TrimRight(fmt.Sprintf("%03d", frac), "0")
	return sign + strconv.FormatInt(whole, 10) + "." + fs
}

// MarshalJSON writes c as a JSON number of credits (11.5), exactly.
func (c Credits) MarshalJSON() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalJSON reads a JSON number (or a string holding one) of credits.
func (c *Credits) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	if strings.ContainsAny(s, "eE") {
		return fmt.Errorf("invalid credit amount %s: exponents are not accepted", s)
	}
	v, err := ParseCredits(s)
	if err != nil {
		return err
	}
	*c = v
	return nil
}
