package usage

import (
	"bytes"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readerPages runs pdfinfo, qpdf and mutool (those installed) on b and
// returns the pages each reports; a reader that fails reports nothing.
func readerPages(t *testing.T, b []byte) map[string]int {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.pdf")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	run := func(name string, parse func(string) string, args ...string) {
		if _, err := exec.LookPath(name); err != nil {
			return
		}
		o, err := exec.Command(name, append(args, path)...).Output()
		if err != nil {
			return
		}
		if n, err := strconv.Atoi(strings.TrimSpace(parse(string(o)))); err == nil {
			out[name] = n
		}
	}
	pagesLine := func(o string) string {
		for _, l := range strings.Split(o, "\n") {
			if v, ok := strings.CutPrefix(l, "Pages:"); ok {
				return v
			}
		}
		return ""
	}
	run("pdfinfo", pagesLine)
	run("qpdf", func(o string) string { return o }, "--show-npages")
	run("mutool", pagesLine, "info")
	return out
}

// Real PDFs after junk, after an image signature and without their
// header count what the readers count (poppler, qpdf and mupdf, where
// installed): the gateway finds a PDF wherever they do.
func TestJunkCountsAsReaders(t *testing.T) {
	if _, err := exec.LookPath("pdfinfo"); err != nil {
		t.Skip("pdfinfo not installed (apt-get install poppler-utils)")
	}
	junk := make([]byte, 100_000)
	rand.New(rand.NewSource(1)).Read(junk)
	junk = bytes.ReplaceAll(junk, []byte("%"), []byte("*"))
	for _, name := range []string{"cairo.pdf", "pdftex.pdf", "quartz.pdf", "skia.pdf", "objstm.pdf"} {
		pdf := readTestdata(t, name)
		for variant, body := range map[string][]byte{
			"1100 junk bytes":    append(append([]byte{}, junk[:1100]...), pdf...),
			"100 KB of junk":     append(append([]byte{}, junk...), pdf...),
			"a PNG signature":    append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), pdf...),
			"header overwritten": bytes.Replace(pdf, []byte("%PDF-"), []byte("%XYZ-"), 1),
		} {
			readers := readerPages(t, body)
			if len(readers) == 0 {
				continue // no reader reads it: nothing to match
			}
			u, err := measureBytes(t, "application/octet-stream", body, Options{})
			if err != nil {
				t.Errorf("%s after %s: %v (readers: %v)", name, variant, err, readers)
				continue
			}
			for reader, n := range readers {
				if u.Pages < n {
					t.Errorf("%s after %s: %d pages, %s reads %d", name, variant, u.Pages, reader, n)
				}
			}
			t.Logf("%s after %s: %d pages; readers %v", name, variant, u.Pages, readers)
		}
	}
}
