package pdftest

import (
	"bytes"
	"fmt"
	"strings"
)

// Hostile page trees, built to pay less than a reader would render: each
// is a valid file (correct xref) with one catalog (object 1) whose page
// tree breaks one assumption of a naive page walk.

// Objects renders objs as objects 1..len(objs) with a classic xref table;
// object 1 must be the catalog.
func Objects(objs ...string) []byte { return objectsRoot(1, objs...) }

// objectsRoot is Objects with the catalog at object root.
func objectsRoot(root int, objs ...string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, root, xref)
	return b.Bytes()
}

const (
	catalog = "<< /Type /Catalog /Pages 2 0 R >>"
	content = "<< /Length 33 >>\nstream\nBT /F1 12 Tf 72 712 Td (x) Tj ET\nendstream"
)

func refs(n, num int) string {
	return strings.TrimSpace(strings.Repeat(fmt.Sprintf("%d 0 R ", num), n))
}

// Repeated is one page object listed n times in the root's /Kids (poppler
// and qpdf: n pages). /Count says 1.
func Repeated(n int) []byte {
	return Objects(catalog,
		fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count 1 >>", refs(n, 3)),
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
		content)
}

// Shared is a tree of levels nodes below the root where each node lists
// the same child twice, so 2^levels leaves are reached through levels+2
// objects. box is the leaf's MediaBox ("" for none). /Count says 1.
func Shared(levels int, box string) []byte {
	objs := []string{catalog}
	for i := range levels {
		objs = append(objs, fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count 1 >>", refs(2, i+3)))
	}
	if box != "" {
		box = " /MediaBox " + box
	}
	objs = append(objs, fmt.Sprintf("<< /Type /Page%s /Contents %d 0 R >>", box, levels+3), content)
	return Objects(objs...)
}

// Mistyped is n leaf pages of which all but the first are typed /Pagez
// (poppler and qpdf: n pages, any dictionary without /Kids is a page).
func Mistyped(n int) []byte {
	objs := []string{catalog, ""}
	kids := make([]string, n)
	for i := range n {
		typ := "/Pagez"
		if i == 0 {
			typ = "/Page"
		}
		objs = append(objs, fmt.Sprintf("<< /Type %s /Parent 2 0 R /MediaBox [0 0 612 792] >>", typ))
		kids[i] = fmt.Sprintf("%d 0 R", i+3)
	}
	objs[1] = fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count 1 >>", strings.Join(kids, " "))
	return Objects(objs...)
}

// Cycle is a root with one page and a child node whose /Kids lists the
// root again: a walk that follows it never ends.
func Cycle() []byte {
	return Objects(catalog,
		"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
		"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>")
}

// Linearized is a one-page file that opens with a linearization
// dictionary claiming n pages; its /L is the file's length when exact,
// else one byte more (pdfinfo then ignores /N).
func Linearized(n int, exact bool) []byte {
	lin := func(l int) string {
		return fmt.Sprintf("<< /Linearized 1 /L %d /N %d /H [0 0] /O 4 /E 0 /T 0 >>", l, n)
	}
	objs := []string{"", "<< /Type /Catalog /Pages 3 0 R >>",
		"<< /Type /Pages /Kids [4 0 R] /Count 1 >>", "<< /Type /Page /MediaBox [0 0 612 792] >>"}
	l := 0
	for { // /L's digits change the length they state: find the fixed point
		objs[0] = lin(l)
		b := objectsRoot(2, objs...)
		if len(b) == l {
			if !exact {
				objs[0] = lin(l + 1)
				return objectsRoot(2, objs...)
			}
			return b
		}
		l = len(b)
	}
}
