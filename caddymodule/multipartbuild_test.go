package caddymodule

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
)

// part is one part of a test multipart body.
type formPart struct {
	name, filename, contentType, encoding string
	body                                  []byte
}

// formBody builds a multipart/form-data body of parts.
func formBody(t *testing.T, parts ...formPart) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		h := textproto.MIMEHeader{}
		cd := `form-data; name="` + p.name + `"`
		if p.filename != "" {
			cd += `; filename="` + p.filename + `"`
		}
		h.Set("Content-Disposition", cd)
		if p.contentType != "" {
			h.Set("Content-Type", p.contentType)
		}
		if p.encoding != "" {
			h.Set("Content-Transfer-Encoding", p.encoding)
		}
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.body)
	}
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

// Tiny but real images, as PSPDFKit's seed example sends: a GIF and a PNG.
var (
	gif1x1 = []byte("GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
	png1x1 = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
)

// PSPDFKit: "If you are combining multiple processing actions, your
// credit cost will be the sum of the credit costs of the tools you used"
// and "you can calculate the number of credits required by a particular
// Build API request without actually executing it. The request is free of
// charge." The seed's instructions cost 11.5 whether sent as a JSON body
// or as the `instructions` part of a multipart Build request with the
// files it names; /analyze_build (meter_quote build) answers the same
// price, authenticated, without the upstream, charging nothing. Hostile
// variants of the multipart request are refused unforwarded. And
// "x-pspdfkit-request-cost - The actual billed cost of the request in
// credits": the example names the cost header so. On both stores, as
// shipped in docs/examples/pspdfkit.Caddyfile.
func TestSeedPSPDFKitMultipartBuildAndQuote(t *testing.T) {
	analyze, err := os.ReadFile("../meter/pricing/testdata/pspdfkit_analyze.json")
	if err != nil {
		t.Fatal(err)
	}
	files := []formPart{
		{name: "document", filename: "document.gif", contentType: "image/gif", body: gif1x1},
		{name: "document2", filename: "document2.png", contentType: "image/png", body: png1x1},
	}
	build := func(instr ...formPart) (string, []byte) { return formBody(t, append(instr, files...)...) }
	exampleStores(t, func(t *testing.T) {
		ex := startExample(t, "pspdfkit.Caddyfile")
		g := ex.gateway
		key := g.newAccount("ex_pspdfkit_mp", 100, meter.ModeLive)

		ct, body := build(formPart{name: "instructions", body: analyze})
		expectPSPDFKit(t, g, "/build", key, ct, body, 200, "11.5", "88.5")
		expectPSPDFKit(t, g, "/build", key, "application/json", analyze, 200, "11.5", "77")
		if n := ex.up.requests.Load(); n != 2 {
			t.Fatalf("upstream got %d requests, want 2", n)
		}

		// The quote: the same price, from the gateway alone.
		for _, q := range []struct {
			name, ct string
			body     []byte
		}{{"multipart", ct, body}, {"json", "application/json", analyze}} {
			resp, raw := g.post("/analyze_build", key, q.ct, q.body)
			var dr dryRunResponse
			if err := json.Unmarshal(raw, &dr); err != nil || resp.StatusCode != 200 || !dr.DryRun || dr.Total != credits(11.5) ||
				len(dr.Lines) != 7 || !dr.Affordable || dr.Available != credits(77) {
				t.Fatalf("quote of the %s request: HTTP %d %s", q.name, resp.StatusCode, raw)
			}
			assertNamed(t, resp, pspdfkitCost, "0", "77")
			// PSPDFKit's answer: "cost": 11.5 and each required feature's
			// cost, unit_cost and units as the seed lists them.
			if dr.Cost == nil || *dr.Cost != credits(11.5) || len(dr.RequiredFeatures) != 7 {
				t.Fatalf("quote of the %s request: cost %v, %d features: %s", q.name, dr.Cost, len(dr.RequiredFeatures), raw)
			}
			for name, want := range map[string][3]float64{
				"annotations_api": {0.5, 0.5, 1}, "compression_api": {2, 2, 1}, "document_editor_api": {3, 1, 3},
				"image_conversion_api": {1, 0.5, 2}, "linearization_api": {2, 2, 1}, "ocr_api": {2, 2, 1}, "pdfa_api": {1, 1, 1},
			} {
				f := dr.RequiredFeatures[name]
				if f.Cost != credits(want[0]) || f.UnitCost != credits(want[1]) || f.Units != int64(want[2]) {
					t.Errorf("%s: %+v, want cost %v unit_cost %v units %v", name, f, want[0], want[1], want[2])
				}
			}
			for name, usage := range map[string]string{"annotations_api": "[$.actions[0]]",
				"image_conversion_api": "[$.parts[0] $.parts[1]]", "ocr_api": "[$.parts[1].actions[0]]"} {
				if got := fmt.Sprint(dr.RequiredFeatures[name].Usage); got != usage {
					t.Errorf("%s usage %s, want %s", name, got, usage)
				}
			}
		}
		resp, raw := g.post("/analyze_build", "", ct, body)
		if code, _ := errorCode(t, raw); resp.StatusCode != 401 || code != meter.ECodeInvalidAPIKey {
			t.Fatalf("quote without a key: HTTP %d %s", resp.StatusCode, raw)
		}
		if n := ex.up.requests.Load(); n != 2 {
			t.Fatalf("a quote reached the upstream (%d requests)", n)
		}

		// Also accepted: the instructions as a named file, base64-encoded.
		ct2, body2 := build(formPart{name: "instructions", filename: "instructions.json", contentType: "application/json", body: analyze})
		expectPSPDFKit(t, g, "/build", key, ct2, body2, 200, "11.5", "65.5")
		ct3, body3 := build(formPart{name: "instructions", encoding: "base64", body: []byte(base64.StdEncoding.EncodeToString(analyze))})
		expectPSPDFKit(t, g, "/build", key, ct3, body3, 200, "11.5", "54")
		before := ex.up.requests.Load()

		nested, nestedBody := formBody(t, formPart{name: "instructions", body: analyze})
		for _, tc := range []struct {
			name string
			ct   string
			body []byte
		}{
			{"no instructions part", "", nil},
			{"two instructions parts, the second free", "", nil},
			{"instructions not JSON", "", nil},
			{"instructions nested in a multipart part", "", nil},
			{"instructions under another name", "", nil},
		} {
			switch tc.name {
			case "no instructions part":
				tc.ct, tc.body = build()
			case "two instructions parts, the second free":
				tc.ct, tc.body = build(formPart{name: "instructions", body: analyze}, formPart{name: "instructions", body: []byte(`{}`)})
			case "instructions not JSON":
				tc.ct, tc.body = build(formPart{name: "instructions", body: []byte(`{"parts":[`)})
			case "instructions nested in a multipart part":
				tc.ct, tc.body = build(formPart{name: "bundle", contentType: nested, body: nestedBody})
			case "instructions under another name":
				tc.ct, tc.body = build(formPart{name: "Instructions", body: analyze})
			}
			resp, raw := g.post("/build", key, tc.ct, tc.body)
			if code, _ := errorCode(t, raw); resp.StatusCode != 400 || code != meter.ECodeBadRequest {
				t.Fatalf("%s: HTTP %d %s, want 400 %s", tc.name, resp.StatusCode, raw, meter.ECodeBadRequest)
			}
		}
		if n := ex.up.requests.Load(); n != before {
			t.Fatalf("a refused Build request reached the upstream (%d requests, want %d)", n, before)
		}
		g.assertBalance("ex_pspdfkit_mp", 54, 0)
	})
}

// pspdfkitCost is where docs/examples/pspdfkit.Caddyfile sends the cost,
// as PSPDFKit's API does (cost_header).
const pspdfkitCost = "X-Pspdfkit-Request-Cost"

// expectPSPDFKit is expect for the PSPDFKit example's header names.
func expectPSPDFKit(t *testing.T, g *gateway, path, key, ct string, body []byte, status int, cost, remaining string) {
	t.Helper()
	resp, raw := g.post(path, key, ct, body)
	if resp.StatusCode != status {
		t.Fatalf("POST %s: HTTP %d, want %d: %s", path, resp.StatusCode, status, raw)
	}
	assertNamed(t, resp, pspdfkitCost, cost, remaining)
}

// assertNamed checks the cost under costName, the remaining credits under
// the default name, and no cost under the default name.
func assertNamed(t *testing.T, resp *http.Response, costName, cost, remaining string) {
	t.Helper()
	if got := resp.Header.Values(costName); len(got) != 1 || got[0] != cost {
		t.Errorf("%s = %q, want %q", costName, got, cost)
	}
	if got := resp.Header.Get(HeaderRemaining); got != remaining {
		t.Errorf("%s = %q, want %q", HeaderRemaining, got, remaining)
	}
	if v := resp.Header.Values(HeaderCost); len(v) != 0 {
		t.Errorf("%s sent under its default name too: %q", HeaderCost, v)
	}
}

// A multipart Build is priced by what its files are, not by the types its
// instructions declare: the seed's instructions with the image parts'
// content_type left out, or declared application/pdf, still cost 11.5
// (image conversion 2 x 0.5); the same instructions naming two PDFs
// declared image/* cost 10.5. On both stores, as shipped.
func TestPSPDFKitImageConversionByContent(t *testing.T) {
	analyze, err := os.ReadFile("../meter/pricing/testdata/pspdfkit_analyze.json")
	if err != nil {
		t.Fatal(err)
	}
	// instructions returns the seed's instructions with each part's
	// content_type set to ct ("" removes it).
	instructions := func(ct string) []byte {
		var doc map[string]any
		if err := json.Unmarshal(analyze, &doc); err != nil {
			t.Fatal(err)
		}
		for _, p := range doc["parts"].([]any) {
			if ct == "" {
				delete(p.(map[string]any), "content_type")
			} else {
				p.(map[string]any)["content_type"] = ct
			}
		}
		b, _ := json.Marshal(doc)
		return b
	}
	images := []formPart{
		{name: "document", filename: "a", body: gif1x1},
		{name: "document2", filename: "b", contentType: "application/octet-stream", body: png1x1},
	}
	pdfs := []formPart{
		{name: "document", filename: "a.gif", contentType: "image/gif", body: pdftest.Pages(1)},
		{name: "document2", filename: "b.png", contentType: "image/png", body: pdftest.Pages(2)},
	}
	exampleStores(t, func(t *testing.T) {
		ex := startExample(t, "pspdfkit.Caddyfile")
		g := ex.gateway
		key := g.newAccount("ex_pspdfkit_kind", 100, meter.ModeLive)
		send := func(instr []byte, files []formPart, cost, remaining string) {
			t.Helper()
			ct, body := formBody(t, append([]formPart{{name: "instructions", body: instr}}, files...)...)
			expectPSPDFKit(t, g, "/build", key, ct, body, 200, cost, remaining)
		}
		send(instructions(""), images, "11.5", "88.5")
		send(instructions("application/pdf"), images, "11.5", "77")
		send(instructions("image/gif"), pdfs, "10.5", "66.5")
		g.assertBalance("ex_pspdfkit_kind", 66.5, 0)
		if n := ex.up.requests.Load(); n != 3 {
			t.Fatalf("upstream got %d requests, want 3", n)
		}
	})
}
