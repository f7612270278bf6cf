package caddymodule

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// pageTreeSite prices pages at 1 credit with the default max_pages
// (100,000) on /v1/, and by class with max_pages 500 on /small/.
const pageTreeSite = `
http://{SITE} {
	route /v1/* {
		meter {
			per_page 1
			route convert
		}
		reverse_proxy {UPSTREAM}
	}
	route /small/* {
		meter {
			per_page {
				drawing 10 larger_than 11x17in
				document 1
			}
			route small
			max_pages 500
		}
		reverse_proxy {UPSTREAM}
	}
}
`

// Page trees built to pay less than a reader renders, sent raw and as a
// multipart part, through the gateway on both stores: each is charged
// every page a reader renders, or refused before the upstream sees it.
func TestPageTreeAttacksThroughGateway(t *testing.T) {
	stores := map[string]func(t *testing.T) string{
		"redis":    func(t *testing.T) string { return globalBlock },
		"embedded": func(t *testing.T) string { return embeddedGlobal(t) },
	}
	tests := []struct {
		name   string
		path   string
		pdf    []byte
		charge float64 // credits, when status is 200
		status int
		code   string
	}{
		{"a page object listed 1,000 times", "/v1/convert", pdftest.Repeated(1000), 1000, 200, ""},
		{"shared nodes 14 levels deep", "/v1/convert", pdftest.Shared(14, ""), 16384, 200, ""},
		{"1,000 leaves, 999 typed /Pagez", "/v1/convert", pdftest.Mistyped(1000), 1000, 200, ""},
		{"2^40 pages over the default max_pages", "/v1/convert", pdftest.Shared(40, ""), 0, 413, meter.ECodeTooManyPages},
		{"a cycle", "/v1/convert", pdftest.Cycle(), 0, 422, meter.ECodeUnreadableDocument},
		{"256 A3 drawings through shared nodes", "/small/convert", pdftest.Shared(8, "[0 0 842 1191]"), 2560, 200, ""},
		{"512 pages over max_pages 500", "/small/convert", pdftest.Shared(9, ""), 0, 413, meter.ECodeTooManyPages},
	}
	for store, global := range stores {
		t.Run(store, func(t *testing.T) {
			u := newUpstream(t)
			src := global(t) + strings.ReplaceAll(pageTreeSite, "{UPSTREAM}", strings.TrimPrefix(u.URL, "http://"))
			g := startGateway(t, src)
			for _, tc := range tests {
				for _, form := range []string{"raw", "multipart", "labelled image/png", "part labelled text/plain"} {
					t.Run(tc.name+"/"+form, func(t *testing.T) {
						const start = 100_000
						id := uniqueID("tree")
						key := g.newAccount(id, start, meter.ModeLive)
						body, ct := tc.pdf, "application/pdf"
						switch form {
						case "multipart":
							body, ct = multipartBody(t, [3]string{"a.pdf", "application/pdf", string(tc.pdf)})
						case "labelled image/png":
							ct = "image/png"
						case "part labelled text/plain":
							body, ct = multipartBody(t, [3]string{"a.txt", "text/plain", string(tc.pdf)})
						}
						before := u.requests.Load()
						resp, raw := g.post(tc.path, key, ct, body)
						if resp.StatusCode != tc.status {
							t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, raw)
						}
						if tc.status != 200 {
							if code, _ := errorCode(t, raw); code != tc.code {
								t.Errorf("code %q, want %q", code, tc.code)
							}
							if n := u.requests.Load() - before; n != 0 {
								t.Errorf("refused request reached the upstream %d times", n)
							}
							g.assertBalance(id, start, 0)
							return
						}
						if got := resp.Header.Get(HeaderCost); got != credits(tc.charge).String() {
							t.Errorf("%s = %s, want %g", HeaderCost, got, tc.charge)
						}
						g.assertBalance(id, start-tc.charge, 0)
					})
				}
			}
		})
	}
}

// max_pages bounds the request's pages, all its documents together.
func TestMaxPagesSumsTheFiles(t *testing.T) {
	u := newUpstream(t)
	src := embeddedGlobal(t) + strings.ReplaceAll(pageTreeSite, "{UPSTREAM}", strings.TrimPrefix(u.URL, "http://"))
	g := startGateway(t, src)
	id := uniqueID("maxpages")
	key := g.newAccount(id, 10_000, meter.ModeLive)
	half := string(pdftest.Pages(300))
	body, ct := multipartBody(t, [3]string{"a.pdf", "application/pdf", half}, [3]string{"b.pdf", "application/pdf", half})
	resp, raw := g.post("/small/convert", key, ct, body)
	if resp.StatusCode != 413 {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	code, e := errorCode(t, raw)
	if code != meter.ECodeTooManyPages || e["pages_at_least"] != float64(600) || e["max_pages"] != float64(500) {
		t.Errorf("error = %v", e)
	}
	if u.requests.Load() != 0 {
		t.Error("refused request reached the upstream")
	}
	g.assertBalance(id, 10_000, 0)
}

func embeddedGlobal(t *testing.T) string {
	return strings.Replace(globalBlock, "redis {REDIS}", "data_dir "+filepath.Join(t.TempDir(), "data"), 1)
}

// An object-stream flate bomb is refused within count_memory, before the
// upstream sees it: here 422 too_large, its decoding could never fit in
// 64 MB (the 503 server_busy of a bomb that waits for memory others hold
// is tested in meter/usage, TestBudgetCoversObjectStreamDecoding).
func TestObjectStreamBombWithinCountMemory(t *testing.T) {
	u := newUpstream(t)
	global := strings.Replace(embeddedGlobal(t), "meter {", "meter {\n\t\tcount_memory 64MB", 1)
	g := startGateway(t, global+strings.ReplaceAll(pageTreeSite, "{UPSTREAM}", strings.TrimPrefix(u.URL, "http://")))
	id := uniqueID("bomb")
	key := g.newAccount(id, 100, meter.ModeLive)
	resp, raw := g.post("/v1/convert", key, "application/pdf", pdftest.ObjStmBomb(100<<20))
	if resp.StatusCode != 422 {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	if code, e := errorCode(t, raw); code != meter.ECodeUnreadableDocument || e["reason"] != "too_large" {
		t.Errorf("error = %v", e)
	}
	if u.requests.Load() != 0 {
		t.Error("refused request reached the upstream")
	}
	g.assertBalance(id, 100, 0)
}
