package pricing_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter/pricing"
	"github.com/creditgate/creditgate/meter/usage"
)

// hundredPages is a 100-page PDF, a drawing every tenth page.
func hundredPages() []byte {
	sizes := make([][2]float64, 100)
	for i := range sizes {
		sizes[i] = pdftest.Letter
		if i%10 == 0 {
			sizes[i] = [2]float64{2592, 1728}
		}
	}
	return pdftest.Sized(sizes...)
}

// BenchmarkCountPages is the work the gateway does before pricing: read
// the page tree and boxes of a 100-page PDF.
func BenchmarkCountPages(b *testing.B) {
	doc := hundredPages()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := usage.ScanPDF(context.Background(), bytes.NewReader(doc), int64(len(doc)), usage.PDFLimits{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPageClasses prices those 100 pages by class.
func BenchmarkPageClasses(b *testing.B) {
	doc := hundredPages()
	info, err := usage.ScanPDF(context.Background(), bytes.NewReader(doc), int64(len(doc)), usage.PDFLimits{})
	if err != nil {
		b.Fatal(err)
	}
	rules, _ := pricing.Compile([]pricing.Spec{{PageClasses: []pricing.PageClass{
		{Name: "drawing", PerPage: *c("10"), LargerThan: "11x17in"},
		{Name: "document", PerPage: *c("1")},
	}}})
	in := pricing.Input{Usage: usage.Usage{Pages: info.Pages, Files: []usage.File{{Kind: usage.KindPDF, Pages: info.Pages, PageSizes: info.Sizes}}}}
	b.ReportAllocs()
	for b.Loop() {
		if q, _ := rules.Quote(in); q.Total != *c("190") {
			b.Fatal(q.Total)
		}
	}
}

// BenchmarkTiersPerFile prices a 10-file request with a tier table.
func BenchmarkTiersPerFile(b *testing.B) {
	rules, _ := pricing.Compile([]pricing.Spec{{Tiers: []pricing.Tier{{UpTo: 1, Credits: *c("1")}, {UpTo: 5, Credits: *c("2")}, {UpTo: 10, Credits: *c("3")}, {UpTo: 20, Credits: *c("5")}, {Credits: *c("8")}}}})
	var u usage.Usage
	for i := range 10 {
		u.Files = append(u.Files, usage.File{Name: "f.pdf", Kind: usage.KindPDF, Pages: i * 3})
		u.Pages += i * 3
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = rules.Quote(pricing.Input{Usage: u})
	}
}

// BenchmarkPSPDFKitAnalyze prices the seed's Build request: parse the JSON
// once, run 9 queries.
func BenchmarkPSPDFKitAnalyze(b *testing.B) {
	rules, _ := pricing.Compile([]pricing.Spec{
		{Name: "annotations_api", PerMatch: c("0.5"), JSON: []string{"$..actions[?@.type == 'flatten']"}},
		{Name: "compression_api", PerMatch: c("2"), JSON: []string{"$.output.optimize.mrcCompression == true"}},
		{Name: "document_editor_api", PerMatch: c("1"), JSON: []string{"$.parts[1]", "$..actions[?@.type == 'rotate']", "$.output.metadata"}},
		{Name: "image_conversion_api", PerMatch: c("0.5"), JSON: []string{"$.parts[?match(@.content_type, 'image/.*')]"}},
		{Name: "linearization_api", PerMatch: c("2"), JSON: []string{"$.output.optimize.linearize == true"}},
		{Name: "ocr_api", PerMatch: c("2"), JSON: []string{"$..actions[?@.type == 'ocr']"}},
		{Name: "pdfa_api", PerMatch: c("1"), JSON: []string{"$.output.type == 'pdfa'"}},
	})
	body, _ := os.ReadFile("testdata/pspdfkit_analyze.json")
	b.ReportAllocs()
	for b.Loop() {
		if q, _ := rules.Quote(pricing.Input{JSON: body}); q.Total != *c("11.5") {
			b.Fatal(q.Total)
		}
	}
}
