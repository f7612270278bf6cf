// Package pdftest builds small, valid PDF documents for tests: n pages of
// given sizes, with a correct cross-reference table.
package pdftest

import (
	"bytes"
	"fmt"
	"strings"
)

// Letter and A3 page sizes in points.
var (
	Letter = [2]float64{612, 792}
	A3     = [2]float64{842, 1191}
)

// Pages returns a PDF with n Letter pages.
func Pages(n int) []byte {
	sizes := make([][2]float64, n)
	for i := range sizes {
		sizes[i] = Letter
	}
	return Sized(sizes...)
}

// Sized returns a PDF with one page per size (width, height in points).
// Each page has a tiny content stream so it is a realistic document.
func Sized(sizes ...[2]float64) []byte { return build(sizes, 0) }

// Padded returns a PDF of n Letter pages whose content streams are padded
// so the file is about size bytes (realistic uploads are mostly content).
func Padded(n, size int) []byte {
	sizes := make([][2]float64, n)
	for i := range sizes {
		sizes[i] = Letter
	}
	pad := 0
	if n > 0 && size > 0 {
		pad = size / n
	}
	return build(sizes, pad)
}

func build(sizes [][2]float64, pad int) []byte {
	var b bytes.Buffer
	offsets := []int{0}
	obj := func(body string) {
		offsets = append(offsets, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", len(offsets)-1, body)
	}
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	n := len(sizes)
	// 1: catalog, 2: pages, then per page: page, content.
	kids := ""
	for i := 0; i < n; i++ {
		kids += fmt.Sprintf("%d 0 R ", 3+2*i)
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids, n))
	for i, s := range sizes {
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] /Contents %d 0 R >>", s[0], s[1], 4+2*i))
		content := fmt.Sprintf("BT /F1 12 Tf 72 712 Td (page %d) Tj ET", i+1)
		if pad > len(content) {
			// Comments are valid content and keep the stream parseable.
			content += "\n%" + strings.Repeat("x", pad-len(content)-2)
		}
		obj(fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content))
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offsets))
	for _, off := range offsets[1:] {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets), xref)
	return b.Bytes()
}
