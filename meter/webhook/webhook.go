// Package webhook delivers the store's webhook events (the outbox) to the
// gateway's endpoints and each account's own, signed as the Standard
// Webhooks specification says. It knows nothing of Caddy: the adapter
// configures a Worker and runs it.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// Endpoint receives events as signed JSON POSTs.
type Endpoint struct {
	URL string
	// Secret is "whsec_" and the base64 of the signing key.
	Secret string
}

// Sign is the Standard Webhooks signature of a delivery: "v1," and the
// base64 HMAC-SHA256 of "<id>.<timestamp>.<body>".
func Sign(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}
