package pdftest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The generator's output must be a PDF that real readers accept; qpdf
// checks the xref and structure when it is installed (make test installs it).
func TestPagesAreValidPDF(t *testing.T) {
	qpdf, err := exec.LookPath("qpdf")
	if err != nil {
		t.Fatal("qpdf not installed: run `make test`, which installs it")
	}
	p := filepath.Join(t.TempDir(), "x.pdf")
	if err := os.WriteFile(p, Sized(Letter, A3, Letter), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(qpdf, "--show-npages", p).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "3" {
		t.Fatalf("qpdf --show-npages: %s %v", out, err)
	}
	if out, err := exec.Command(qpdf, "--check", p).CombinedOutput(); err != nil {
		t.Fatalf("qpdf --check: %s %v", out, err)
	}
}

// TestObjStmIsValidPDF: the object-stream builder's files, plain, padded
// and hex-encoded, have the pages qpdf counts.
func TestObjStmIsValidPDF(t *testing.T) {
	qpdf, err := exec.LookPath("qpdf")
	if err != nil {
		t.Fatal("qpdf not installed: run `make test`, which installs it")
	}
	for _, tc := range []struct {
		name  string
		opts  ObjStmOptions
		pages string
	}{
		{"default", ObjStmOptions{}, "1"},
		{"12 pages", ObjStmOptions{Pages: 12}, "12"},
		{"padded", ObjStmOptions{Pages: 2, Pad: 3 << 20}, "2"},
		{"hex", ObjStmOptions{Pages: 3, Pad: 1000, Hex: true}, "3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "x.pdf")
			if err := os.WriteFile(p, ObjStm(tc.opts), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(qpdf, "--show-npages", p).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) != tc.pages {
				t.Fatalf("qpdf --show-npages: %s %v; want %s", out, err, tc.pages)
			}
		})
	}
}
