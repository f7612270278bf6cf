// Command corpus compares usage.ScanPDF's page counts with pdfinfo's and
// qpdf's on every PDF under a directory, and prints the mismatches and a
// summary. It is a check on real documents, not part of the test suite:
//
//	go run ./meter/usage/internal/cmd/corpus /usr/share/doc
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/creditgate/creditgate/meter/usage"
)

type result struct {
	path           string
	ours           int
	method         string
	err            error
	pdfinfo, qpdf  int // -1 when the tool failed
	oursT, theirsT time.Duration
}

func main() {
	verbose := flag.Bool("v", false, "print every file")
	limit := flag.Int("n", 0, "stop after this many files (0: all)")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: corpus [-v] [-n N] DIR...")
		os.Exit(2)
	}
	var paths []string
	seen := map[string]bool{} // doc packages link one file from several places
	for _, dir := range flag.Args() {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.EqualFold(filepath.Ext(p), ".pdf") {
				return nil
			}
			real, err := filepath.EvalSymlinks(p)
			if fi, serr := os.Stat(real); err == nil && serr == nil && fi.Mode().IsRegular() && !seen[real] {
				seen[real] = true
				paths = append(paths, real)
			}
			return nil
		})
	}
	if *limit > 0 && len(paths) > *limit {
		paths = paths[:*limit]
	}

	jobs := make(chan string)
	results := make(chan result)
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range jobs {
				results <- check(p)
			}
		}()
	}
	go func() {
		for _, p := range paths {
			jobs <- p
		}
		close(jobs)
		wg.Wait()
		close(results)
	}()

	var files, agree, same, fallback, errs, disagree int
	var oursT, theirsT time.Duration
	for r := range results {
		files++
		if r.method == usage.MethodPDFCPU {
			fallback++
		}
		oursT += r.oursT
		theirsT += r.theirsT
		switch {
		case r.pdfinfo < 0 || r.pdfinfo != r.qpdf:
			disagree++
			if *verbose {
				fmt.Printf("DISAGREE %s: pdfinfo %d, qpdf %d, ours %d (%s) %v\n", r.path, r.pdfinfo, r.qpdf, r.ours, r.method, r.err)
			}
		case r.err != nil:
			agree++
			errs++
			fmt.Printf("ERROR %s: pdfinfo/qpdf %d, ours: %v\n", r.path, r.pdfinfo, r.err)
		case r.ours != r.pdfinfo:
			agree++
			fmt.Printf("MISMATCH %s: pdfinfo/qpdf %d, ours %d (%s)\n", r.path, r.pdfinfo, r.ours, r.method)
		default:
			agree++
			same++
			if *verbose {
				fmt.Printf("ok %s: %d (%s)\n", r.path, r.ours, r.method)
			}
		}
	}
	fmt.Printf("files %d, pdfinfo==qpdf %d, ours==theirs %d, mismatches %d, our errors %d, fallback used %d, tools disagree or fail %d\n",
		files, agree, same, agree-same-errs, errs, fallback, disagree)
	fmt.Printf("time: ours %v, pdfinfo+qpdf %v\n", oursT.Round(time.Millisecond), theirsT.Round(time.Millisecond))
}

func check(path string) result {
	r := result{path: path, pdfinfo: -1, qpdf: -1}
	start := time.Now()
	r.ours, r.method, r.err = ours(path)
	r.oursT = time.Since(start)
	start = time.Now()
	if out, err := exec.Command("pdfinfo", path).Output(); err == nil {
		for line := range strings.Lines(string(out)) {
			if v, ok := strings.CutPrefix(line, "Pages:"); ok {
				r.pdfinfo, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
	}
	if out, err := exec.Command("qpdf", "--show-npages", path).Output(); err == nil || len(out) > 0 {
		if n, err := strconv.Atoi(string(bytes.TrimSpace(out))); err == nil {
			r.qpdf = n
		}
	}
	r.theirsT = time.Since(start)
	return r
}

func ours(path string) (int, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	info, err := usage.ScanPDF(context.Background(), f, fi.Size(), usage.PDFLimits{Timeout: time.Minute})
	return info.Pages, info.Method, err
}
