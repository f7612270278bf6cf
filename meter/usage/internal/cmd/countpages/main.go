// Command countpages counts the pages of PDF files with usage.ScanPDF and
// prints the reader used (scan or the pdfcpu fallback) and the time each
// took. Measure its peak memory with
// /usr/bin/time -v go run ./meter/usage/internal/cmd/countpages FILE...
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/creditgate/creditgate/meter/usage"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: countpages FILE.pdf...")
		os.Exit(2)
	}
	// A file that fails does not stop the others (bench/pages.sh takes
	// stock of a directory this way); the exit status tells.
	status := 0
	for _, name := range os.Args[1:] {
		if err := count(name); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
			status = 1
		}
	}
	os.Exit(status)
}

func count(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	start := time.Now()
	info, err := usage.ScanPDF(context.Background(), f, fi.Size(), usage.PDFLimits{Timeout: time.Minute})
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d pages, %d bytes, %s, %v\n", name, info.Pages, fi.Size(), info.Method, time.Since(start).Round(time.Millisecond))
	return nil
}
