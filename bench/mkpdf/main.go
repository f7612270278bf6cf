// Command mkpdf writes a PDF of n Letter pages for benchmarks, padded
// with page content to roughly the given size; or, with -bomb, a one-page
// PDF whose object stream is a flate bomb of about that many bytes.
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
	bomb := flag.Bool("bomb", false, "write an object-stream flate bomb of about -size bytes (1 MB inflates to about 1 GB)")
	out := flag.String("o", "out.pdf", "output file")
	flag.Parse()
	doc := pdftest.Padded(*pages, *size)
	if *bomb {
		doc = pdftest.ObjStmBomb(int64(*size) * 1030)
	}
	if err := os.WriteFile(*out, doc, 0o644); err != nil {
		log.Fatal(err)
	}
}
