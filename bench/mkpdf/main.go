// Command mkpdf writes a PDF of n Letter pages for benchmarks, padded
// with page content to roughly the given size.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/creditgate/creditgate/internal/pdftest"
)

func main() {
	pages := flag.Int("pages", 1, "number of pages")
	size := flag.Int("size", 0, "approximate size in bytes (0: minimal)")
	out := flag.String("o", "out.pdf", "output file")
	flag.Parse()
	doc := pdftest.Padded(*pages, *size)
	if err := os.WriteFile(*out, doc, 0o644); err != nil {
		log.Fatal(err)
	}
}
