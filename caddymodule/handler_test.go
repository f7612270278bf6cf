package caddymodule

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// upstream is a test API behind the gateway. Paths choose its behaviour:
// /fail answers 500, /slow waits before answering, anything else 200.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   [][32]byte
	headers  []http.Header
	requests atomic.Int64
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, sha256.Sum256(b))
		u.headers = append(u.headers, r.Header.Clone())
		u.mu.Unlock()
		u.requests.Add(1)
		switch {
		case strings.HasSuffix(r.URL.Path, "/fail"):
			http.Error(w, "upstream broke", http.StatusInternalServerError)
			return
		case strings.HasSuffix(r.URL.Path, "/slow"):
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set(HeaderCost, "999") // an upstream cannot set the cost
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"bytes":%d}`, len(b))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) last() ([32]byte, http.Header) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.bodies[len(u.bodies)-1], u.headers[len(u.headers)-1]
}

const perPageSite = `
http://{SITE} {
	route /v1/* {
		meter {
			per_page 1
			route convert
			max_body 1MB
			memory_threshold 64KB
			reservation_ttl 1m
		}
		reverse_proxy {UPSTREAM} {
			transport http {
				response_header_timeout 1s
			}
		}
	}
}
`

func startPerPage(t *testing.T) (*gateway, *upstream) {
	u := newUpstream(t)
	src := globalBlock + strings.ReplaceAll(perPageSite, "{UPSTREAM}", strings.TrimPrefix(u.URL, "http://"))
	return startGateway(t, src), u
}

func multipartBody(t *testing.T, parts ...[3]string) ([]byte, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for _, p := range parts { // name, content type, content
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, p[0]))
		h.Set("Content-Type", p[1])
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(p[2]))
	}
	if err := mw.WriteField("note", "hello"); err != nil {
		t.Fatal(err)
	}
	mw.Close()
	return b.Bytes(), mw.FormDataContentType()
}

func assertMoney(t *testing.T, resp *http.Response, cost, remaining string) {
	t.Helper()
	if got := resp.Header.Get(HeaderCost); got != cost {
		t.Errorf("%s = %q, want %q", HeaderCost, got, cost)
	}
	if got := resp.Header.Get(HeaderRemaining); got != remaining {
		t.Errorf("%s = %q, want %q", HeaderRemaining, got, remaining)
	}
}

func TestMeteredRequests(t *testing.T) {
	g, u := startPerPage(t)
	key := g.newAccount("e2e_paths", 100, meter.ModeLive)
	big := pdftest.Pages(150) // larger than memory_threshold: spooled to disk
	mp, mpType := multipartBody(t,
		[3]string{"a.pdf", "application/pdf", string(pdftest.Pages(3))},
		[3]string{"b.pdf", "application/octet-stream", string(pdftest.Pages(2))},
		[3]string{"scan.png", "image/png", "\x89PNG fake image"},
	) // and a text field, free (a named text file would be unpriced: attack_test.go)
	steps := []struct {
		name        string
		path, ctype string
		body        []byte
		status      int
		cost        string
		remaining   string
		balance     float64
	}{
		{"raw pdf of 3 pages", "/v1/convert", "application/pdf", pdftest.Pages(3), 200, "3", "97", 97},
		{"multipart: 3 + 2 pdf pages and one image", "/v1/convert", mpType, mp, 200, "6", "91", 91},
		{"spooled pdf of 150 pages: too expensive", "/v1/convert", "application/pdf", big, 402, "150", "91", 91},
		{"upstream 500 is not charged", "/v1/fail", "application/pdf", pdftest.Pages(4), 500, "0", "91", 91},
		{"no pdf, no pages: unpriced, refused", "/v1/convert", "application/json", []byte(`{"x":1}`), 415, "0", "91", 91},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			before := u.requests.Load()
			resp, raw := g.post(s.path, key, s.ctype, s.body)
			if resp.StatusCode != s.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, s.status, raw)
			}
			assertMoney(t, resp, s.cost, s.remaining)
			g.assertBalance("e2e_paths", s.balance, 0)
			if s.status == 415 {
				if code, _ := errorCode(t, raw); code != meter.ECodeUnsupportedContent || u.requests.Load() != before {
					t.Fatalf("415 body %s, or forwarded", raw)
				}
				return
			}
			if s.status == 402 {
				if u.requests.Load() != before {
					t.Fatal("a refused request reached the upstream")
				}
				code, details := errorCode(t, raw)
				if code != meter.ECodeInsufficientCredits || fmt.Sprint(details["required"]) != "150" || fmt.Sprint(details["available"]) != "91" {
					t.Fatalf("402 body %s", raw)
				}
				return
			}
			sum, hdr := u.last()
			if sum != sha256.Sum256(s.body) {
				t.Fatal("upstream did not receive the exact bytes the client sent")
			}
			// A free request is forwarded without a reservation.
			free := s.status == 200 && s.cost == "0"
			if hdr.Get(UpstreamAccount) != "e2e_paths" || strings.HasPrefix(hdr.Get(UpstreamReservation), "rsv_") == free {
				t.Fatalf("upstream headers %v", hdr)
			}
		})
	}
	entries := g.ledger("e2e_paths")
	if len(entries) != 3 || entries[0].Amount != -6000 || entries[0].BalanceAfter != 91000 ||
		entries[1].Amount != -3000 || entries[1].BalanceAfter != 97000 || entries[0].Route != "convert" ||
		entries[2].Type != meter.EntryPurchase {
		t.Fatalf("ledger %+v", entries)
	}
}

func TestRefusals(t *testing.T) {
	g, u := startPerPage(t)
	key := g.newAccount("e2e_refusals", 10, meter.ModeLive)
	huge := bytes.Repeat([]byte("x"), 2<<20)
	tests := []struct {
		name, key, ctype string
		body             []byte
		status           int
		code             string
		remaining        string
	}{
		{"missing key", "", "application/pdf", pdftest.Pages(1), 401, meter.ECodeInvalidAPIKey, ""},
		{"unknown key", "sk_live_nope", "application/pdf", pdftest.Pages(1), 401, meter.ECodeInvalidAPIKey, ""},
		{"body over max_body", key, "application/pdf", huge, 413, meter.ECodeBodyTooLarge, "10"},
		{"garbage pdf", key, "application/pdf", []byte("%PDF-1.7\nthis is not a pdf"), 422, meter.ECodeUnreadableDocument, "10"},
		{"truncated pdf", key, "application/pdf", pdftest.Pages(5)[:300], 422, meter.ECodeUnreadableDocument, "10"},
		{"broken multipart", key, "multipart/form-data; boundary=zzz", []byte("--zzz\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 trunc"), 400, meter.ECodeBadRequest, "10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := u.requests.Load()
			resp, raw := g.post("/v1/convert", tt.key, tt.ctype, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, raw)
			}
			if code, _ := errorCode(t, raw); code != tt.code {
				t.Fatalf("code %q, want %q", code, tt.code)
			}
			if got := resp.Header.Get(HeaderRemaining); got != tt.remaining {
				t.Fatalf("remaining %q, want %q", got, tt.remaining)
			}
			if u.requests.Load() != before {
				t.Fatal("a refused request reached the upstream")
			}
		})
	}
	g.assertBalance("e2e_refusals", 10, 0)
}

func TestUpstreamFailuresAreNotCharged(t *testing.T) {
	g, _ := startPerPage(t)
	key := g.newAccount("e2e_failures", 10, meter.ModeLive)

	t.Run("upstream timeout", func(t *testing.T) {
		resp, _ := g.post("/v1/slow", key, "application/pdf", pdftest.Pages(2))
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Fatalf("status %d, want 504", resp.StatusCode)
		}
		assertMoney(t, resp, "0", "10")
		g.assertBalance("e2e_failures", 10, 0)
	})

	t.Run("client aborts before the response", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", g.URL+"/v1/slow", bytes.NewReader(pdftest.Pages(2)))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/pdf")
		if _, err := http.DefaultClient.Do(req); err == nil {
			t.Fatal("request did not abort")
		}
		g.waitReservedZero("e2e_failures")
		g.assertBalance("e2e_failures", 10, 0)
	})
}

func TestUpstreamDown(t *testing.T) {
	src := globalBlock + strings.ReplaceAll(perPageSite, "{UPSTREAM}", freeAddr(t))
	g := startGateway(t, src)
	key := g.newAccount("e2e_down", 5, meter.ModeLive)
	resp, _ := g.post("/v1/convert", key, "application/pdf", pdftest.Pages(1))
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	assertMoney(t, resp, "0", "5")
	g.assertBalance("e2e_down", 5, 0)
}

func TestIdempotencyKey(t *testing.T) {
	g, u := startPerPage(t)
	key := g.newAccount("e2e_idem", 10, meter.ModeLive)
	doc := pdftest.Pages(2)

	resp, _ := g.post("/v1/convert", key, "application/pdf", doc, "Idempotency-Key", "job-1")
	assertMoney(t, resp, "2", "8")
	resp, _ = g.post("/v1/convert", key, "application/pdf", doc, "Idempotency-Key", "job-1")
	if resp.StatusCode != 200 || resp.Header.Get(HeaderReplayed) != "true" {
		t.Fatalf("retry: status %d, replayed %q", resp.StatusCode, resp.Header.Get(HeaderReplayed))
	}
	assertMoney(t, resp, "2", "8") // the original charge, replayed; nothing new
	if u.requests.Load() != 1 {
		t.Fatalf("upstream saw %d requests, want 1 (a retry is answered with the stored response)", u.requests.Load())
	}
	// A failed attempt does not use up the key: its retry is charged once.
	g.post("/v1/fail", key, "application/pdf", doc, "Idempotency-Key", "job-2")
	resp, _ = g.post("/v1/convert", key, "application/pdf", doc, "Idempotency-Key", "job-2")
	assertMoney(t, resp, "2", "6")
	g.assertBalance("e2e_idem", 6, 0)
}

func TestTestKeysAreNeverCharged(t *testing.T) {
	g, u := startPerPage(t)
	key := g.newAccount("e2e_testkey", 1, meter.ModeTest)
	resp, _ := g.post("/v1/convert", key, "application/pdf", pdftest.Pages(4))
	if resp.StatusCode != 200 || resp.Header.Get(HeaderTest) != "true" {
		t.Fatalf("status %d, test header %q", resp.StatusCode, resp.Header.Get(HeaderTest))
	}
	assertMoney(t, resp, "4", "1")
	// Simulated by default: see testkeys_test.go.
	if n := u.requests.Load(); n != 0 {
		t.Fatalf("a test key reached the upstream %d times", n)
	}
	g.assertBalance("e2e_testkey", 1, 0)
}

// 100 concurrent one-page requests against an account that can afford
// exactly 37: exactly 37 are served and charged.
func TestConcurrentBurstCannotOverdraw(t *testing.T) {
	g, u := startPerPage(t)
	key := g.newAccount("e2e_burst", 37, meter.ModeLive)
	doc := pdftest.Pages(1)
	var ok, refused, other atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", g.URL+"/v1/convert", bytes.NewReader(doc))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/pdf")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				other.Add(1)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				ok.Add(1)
			case 402:
				refused.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 37 || refused.Load() != 63 || other.Load() != 0 {
		t.Fatalf("ok %d, refused %d, other %d; want 37, 63, 0", ok.Load(), refused.Load(), other.Load())
	}
	if u.requests.Load() != 37 {
		t.Fatalf("upstream served %d, want 37", u.requests.Load())
	}
	g.assertBalance("e2e_burst", 0, 0)
	usage := 0
	for _, e := range g.ledger("e2e_burst") {
		if e.Type == meter.EntryUsage {
			usage++
		}
	}
	if usage != 37 {
		t.Fatalf("%d usage entries, want 37", usage)
	}
}
