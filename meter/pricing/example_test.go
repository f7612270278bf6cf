package pricing_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/pricing"
	"github.com/creditgate/creditgate/meter/usage"
)

func c(s string) *meter.Credits {
	v, err := meter.ParseCredits(s)
	if err != nil {
		panic(err)
	}
	return &v
}

func printQuote(q pricing.Quote) {
	for _, l := range q.Lines {
		fmt.Printf("%-20s %2d x %-4s = %s\n", l.Name, l.Units, l.UnitCost, l.Cost)
	}
	fmt.Println("total", q.Total)
}

// The PSPDFKit price list: a combined Build request costs the sum of its
// tools, each found in the JSON body.
func ExampleCompile_jsonActions() {
	rules, err := pricing.Compile([]pricing.Spec{
		{Name: "annotations_api", PerMatch: c("0.5"), JSON: []string{"$..actions[?@.type == 'flatten']"}},
		{Name: "compression_api", PerMatch: c("2"), JSON: []string{"$.output.optimize.mrcCompression == true"}},
		{Name: "document_editor_api", PerMatch: c("1"), JSON: []string{"$.parts[1]", "$..actions[?@.type == 'rotate']", "$.output.metadata"}},
		{Name: "image_conversion_api", PerMatch: c("0.5"), JSON: []string{"$.parts[?match(@.content_type, 'image/.*')]"}},
		{Name: "linearization_api", PerMatch: c("2"), JSON: []string{"$.output.optimize.linearize == true"}},
		{Name: "ocr_api", PerMatch: c("2"), JSON: []string{"$..actions[?@.type == 'ocr']"}},
		{Name: "pdfa_api", PerMatch: c("1"), JSON: []string{"$.output.type == 'pdfa'"}},
	})
	if err != nil {
		panic(err)
	}
	body, _ := os.ReadFile("testdata/pspdfkit_analyze.json")
	q, err := rules.Quote(pricing.Input{JSON: body})
	if err != nil {
		panic(err)
	}
	printQuote(q)
	fmt.Println(q.Lines[2].Source)
	// Output:
	// annotations_api       1 x 0.5  = 0.5
	// compression_api       1 x 2    = 2
	// document_editor_api   3 x 1    = 3
	// image_conversion_api  2 x 0.5  = 1
	// linearization_api     1 x 2    = 2
	// ocr_api               1 x 2    = 2
	// pdfa_api              1 x 1    = 1
	// total 11.5
	// $.parts[1], $.actions[1], $.output.metadata
}

// The Plangrep price list: drawings (sheets that do not fit 11x17 in)
// cost 10 a page, other pages 1, and an account may have its own rates.
func ExampleCompile_pageClasses() {
	rules, _ := pricing.Compile([]pricing.Spec{{PageClasses: []pricing.PageClass{
		{Name: "drawing", PerPage: *c("10"), LargerThan: "11x17in"},
		{Name: "document", PerPage: *c("1")},
	}}})
	pdf := pdftest.Sized(pdftest.Letter, pdftest.A3, [2]float64{1191, 842}, pdftest.Letter)
	info, _ := usage.ScanPDF(context.Background(), bytes.NewReader(pdf), int64(len(pdf)), usage.PDFLimits{})
	in := pricing.Input{Usage: usage.Usage{Pages: info.Pages, Files: []usage.File{
		{Kind: usage.KindPDF, Pages: info.Pages, PageSizes: info.Sizes},
		{Kind: usage.KindImage, Pages: 1},
	}}}
	q, _ := rules.Quote(in)
	printQuote(q)
	in.Rates = map[string]meter.Credits{"drawing": *c("8"), "document": *c("2")}
	q, _ = rules.Quote(in)
	fmt.Println("with the account's rates:", q.Total)
	fmt.Printf("%+v\n", rules.Needs())
	// Output:
	// drawing               2 x 10   = 20
	// document              3 x 1    = 3
	// total 23
	// with the account's rates: 22
	// {Pages:true Boxes:true JSON:false JSONPart: OutputPages:false ResponseHeaders:[] Uncapped:false}
}

// The PDF Generator API: 1 credit per started block of 5 pages of the
// generated PDF, an estimate of 20 pages reserved before the upstream
// answers, the real count charged.
func ExampleRules_Final() {
	rules, _ := pricing.Compile([]pricing.Spec{
		{Blocks: &pricing.Blocks{Pages: 5, Credits: *c("1")}, Output: true, Reserve: 20},
	})
	q, _ := rules.Quote(pricing.Input{})
	fmt.Println("reserved", q.Total, "-", q.Lines[0].Source)
	f, _ := rules.Final(pricing.Input{}, pricing.Response{OutputPages: 7})
	fmt.Println("charged", f.Total, "-", f.Lines[0].Source)
	f, _ = rules.Final(pricing.Input{}, pricing.Response{OutputPages: 60})
	fmt.Println("charged", f.Total, "-", f.Lines[0].Source)
	// Output:
	// reserved 4 - estimate: 20 output pages; the real count is charged
	// charged 2 - 7 output pages
	// charged 12 - 60 output pages
}

// Units reported by the upstream in a response header.
func ExampleRules_Needs() {
	rules, _ := pricing.Compile([]pricing.Spec{
		{PerUnit: c("0.25"), Header: "x-billable-units", Reserve: 40},
		{PerCall: c("1")},
	})
	fmt.Printf("%+v\n", rules.Needs())
	f, _ := rules.Final(pricing.Input{}, pricing.Response{Header: http.Header{"X-Billable-Units": {"12"}}})
	printQuote(f)
	// Output:
	// {Pages:false Boxes:false JSON:false JSONPart: OutputPages:false ResponseHeaders:[X-Billable-Units] Uncapped:true}
	// units                12 x 0.25 = 3
	// call                  1 x 1    = 1
	// total 4
}
