package usage

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
)

// toolPages is the page count pdfinfo or qpdf --show-npages reports for
// the file at p; false when the tool fails on it.
func toolPages(t *testing.T, tool, p string) (int, bool) {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s not installed: run `make test`, which installs it", tool)
	}
	args := []string{p}
	if tool == "qpdf" {
		args = []string{"--show-npages", p}
	}
	out, err := exec.Command(path, args...).Output()
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(out))
	if tool == "pdfinfo" {
		m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)`).FindStringSubmatch(s)
		if m == nil {
			return 0, false
		}
		s = m[1]
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// The count is never below what poppler (pdfinfo) or qpdf reports, on
// real documents and on every hostile page tree, by both readers: it is
// at least the larger, or the document is refused.
func TestNeverBelowPopplerOrQPDF(t *testing.T) {
	docs := map[string][]byte{
		"repeated, /Count 1":         pdftest.Repeated(1000),
		"shared 14 levels, /Count 1": pdftest.Shared(14, ""),
		"/Pagez leaves":              pdftest.Mistyped(1000),
		"cycle":                      pdftest.Cycle(),
		"linearized /N 5000":         pdftest.Linearized(5000, true),
		"linearized, wrong /L":       pdftest.Linearized(5000, false),
		"/Count 1000 over one page": pdftest.Objects("<< /Type /Catalog /Pages 2 0 R >>",
			"<< /Type /Pages /Kids [3 0 R] /Count 1000 >>", "<< /Type /Page >>"),
		"/Page with kids": pdftest.Objects("<< /Type /Catalog /Pages 2 0 R >>",
			"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>", "<< /Type /Page >>", "<< /Type /Page /Kids [3 0 R 3 0 R] >>"),
		"root is a page": pdftest.Objects("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Page >>"),
	}
	for _, tc := range realPDFs {
		docs[tc.file] = readTestdata(t, tc.file)
	}
	dir := t.TempDir()
	i := 0
	for name, pdf := range docs {
		i++
		p := filepath.Join(dir, fmt.Sprintf("%d.pdf", i))
		if err := os.WriteFile(p, pdf, 0o600); err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, tool := range []string{"pdfinfo", "qpdf"} {
			if n, ok := toolPages(t, tool, p); ok {
				want = max(want, n)
			}
		}
		for _, b := range [][]byte{pdf, wrongStartxref(pdf)} {
			info, err := scanBytes(b, PDFLimits{})
			if err == nil && info.Pages < want {
				t.Errorf("%s: %d pages by %s, a tool reports %d", name, info.Pages, info.Method, want)
			}
		}
	}
}
