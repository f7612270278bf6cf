// Package webhook delivers the store's webhook events (the outbox) to the
// gateway's endpoints and each account's own, signed as the Standard
// Webhooks specification says. It knows nothing of Caddy: the adapter
// configures a Worker and runs it.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Endpoint receives events as signed JSON POSTs.
type Endpoint struct {
	URL string
	// Secret is "whsec_" and the base64 of the signing key.
	Secret string
}

// Check checks an endpoint and its secret.
func Check(rawURL, secret string) error {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook URL %q: expected an http:// or https:// URL", rawURL)
	}
	if _, err := Key(secret); err != nil {
		return err
	}
	return nil
}

// Key decodes a "whsec_<base64>" secret.
func Key(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, "whsec_")
	key, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(key) < 16 {
		return nil, errors.New("webhook secret: expected whsec_ and the base64 of at least 16 random bytes")
	}
	return key, nil
}

// Sign is the Standard Webhooks signature of a delivery: "v1," and the
// base64 HMAC-SHA256 of "<id>.<timestamp>.<body>".
func Sign(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}
