package freeport

import (
	"net/http"
	"testing"
	"time"
)

// WaitHTTP waits up to 30 s for a server started by a test (on a port
// from Port) to answer url, with any status.
func WaitHTTP(t testing.TB, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within 30s", url)
}
