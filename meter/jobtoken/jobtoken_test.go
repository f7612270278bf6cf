package jobtoken_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/jobtoken"
)

func TestRoundTrip(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	tok := jobtoken.Sign(key, "acct_1", "job_2")
	if !strings.HasPrefix(tok, jobtoken.Prefix) {
		t.Fatalf("token %q lacks the prefix", tok)
	}
	acct, job, err := jobtoken.Parse(key, tok)
	if err != nil || acct != "acct_1" || job != "job_2" {
		t.Fatalf("Parse = %q, %q, %v", acct, job, err)
	}
}

// TestForgeries: every token not signed by the key for that account and
// job is refused as an invalid key.
func TestForgeries(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	good := jobtoken.Sign(key, "acct_1", "job_2")
	payload, sig, _ := strings.Cut(strings.TrimPrefix(good, jobtoken.Prefix), ".")
	other := jobtoken.Sign(key, "acct_9", "job_2")
	otherPayload, _, _ := strings.Cut(strings.TrimPrefix(other, jobtoken.Prefix), ".")
	for name, tok := range map[string]string{
		"empty":              "",
		"no prefix":          strings.TrimPrefix(good, jobtoken.Prefix),
		"no signature":       jobtoken.Prefix + payload,
		"another key":        jobtoken.Sign([]byte("another key, another gateway...."), "acct_1", "job_2"),
		"swapped payload":    jobtoken.Prefix + otherPayload + "." + sig,
		"truncated sig":      good[:len(good)-2],
		"bad base64":         jobtoken.Prefix + "!!." + sig,
		"an API key instead": "sk_live_0123456789",
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := jobtoken.Parse(key, tok); meter.ErrorCode(err) != meter.ECodeInvalidAPIKey {
				t.Fatalf("Parse(%q) = %v; want %s", tok, err, meter.ECodeInvalidAPIKey)
			}
		})
	}
}

// TestSecretCreatedOnce: concurrent first uses all get the same secret,
// and later reads get it again.
func TestSecretCreatedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "job_secret")
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Go(func() {
			b, err := jobtoken.LoadOrCreateSecret(path)
			if err != nil {
				t.Error(err)
			}
			got[i] = b
		})
	}
	wg.Wait()
	again, err := jobtoken.LoadOrCreateSecret(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) < 32 {
		t.Fatalf("secret of %d bytes", len(again))
	}
	for i, b := range got {
		if !bytes.Equal(b, again) {
			t.Fatalf("caller %d got another secret", i)
		}
	}
}
