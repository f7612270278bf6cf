package usage

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
)

// Builders of PDFs for tests: hand-written objects with a correct xref, so
// that each hostile case breaks exactly one thing.

// pdfDoc is a PDF under construction; objs[i] is the body of object i+1.
type pdfDoc struct {
	objs    []string
	trailer string // extra trailer entries
}

// add appends an object and returns its number.
func (d *pdfDoc) add(body string) int {
	d.objs = append(d.objs, body)
	return len(d.objs)
}

// set replaces the body of object nr.
func (d *pdfDoc) set(nr int, body string) { d.objs[nr-1] = body }

func stream(dict string, data []byte) string {
	return fmt.Sprintf("<<%s /Length %d>>\nstream\n%s\nendstream", dict, len(data), data)
}

func flate(data []byte) []byte {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// bytes renders the document with a classic xref table; root is the
// catalog's object number.
func (d *pdfDoc) bytes(root int) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(d.objs))
	for i, o := range d.objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(d.objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<</Size %d /Root %d 0 R%s>>\nstartxref\n%d\n%%%%EOF\n",
		len(d.objs)+1, root, d.trailer, xref)
	return b.Bytes()
}

// newDoc returns a document with a catalog (1) and a /Pages node (2) whose
// kids are n leaf pages, each with a content stream of contentLen bytes.
func newDoc(n, contentLen int) *pdfDoc {
	d := &pdfDoc{}
	d.add("<</Type /Catalog /Pages 2 0 R>>")
	d.add("") // set below, once the kids are known
	kids := make([]string, 0, n)
	content := bytes.Repeat([]byte("0 0 m 10 10 l S\n"), contentLen/16+1)[:contentLen]
	for range n {
		c := d.add(stream("", content))
		p := d.add(fmt.Sprintf("<</Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R>>", c))
		kids = append(kids, fmt.Sprintf("%d 0 R", p))
	}
	d.set(2, fmt.Sprintf("<</Type /Pages /Kids [%s] /Count %d>>", strings.Join(kids, " "), n))
	return d
}

// objStmPDF renders a PDF 1.5 file whose page objects live in an object
// stream (compressed with flate) and whose xref is a stream. pad is
// appended to the object stream's data before compression: a long run of
// spaces makes a decompression bomb.
func objStmPDF(pages, pad int) []byte {
	// Objects 1..2+pages are compressed into object stream nr os;
	// catalog 1, pages 2, leaves 3...
	var objs []string
	objs = append(objs, "<</Type /Catalog /Pages 2 0 R>>")
	kids := make([]string, pages)
	for i := range pages {
		kids[i] = fmt.Sprintf("%d 0 R", i+3)
	}
	objs = append(objs, fmt.Sprintf("<</Type /Pages /Kids [%s] /Count %d>>", strings.Join(kids, " "), pages))
	for range pages {
		objs = append(objs, "<</Type /Page /Parent 2 0 R /MediaBox [0 0 612 792]>>")
	}
	var head, body bytes.Buffer
	for i, o := range objs {
		fmt.Fprintf(&head, "%d %d ", i+1, body.Len())
		body.WriteString(o)
		body.WriteString(" ")
	}
	data := append(head.Bytes(), body.Bytes()...)
	first := head.Len()
	data = append(data, bytes.Repeat([]byte(" "), pad)...)
	z := flate(data)

	osNr := len(objs) + 1
	xrefNr := osNr + 1
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	osOff := b.Len()
	fmt.Fprintf(&b, "%d 0 obj\n<</Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d>>\nstream\n%s\nendstream\nendobj\n",
		osNr, len(objs), first, len(z), z)
	xrefOff := b.Len()

	// Entries: W [1 4 2]: type, field 2, field 3.
	var x bytes.Buffer
	entry := func(t byte, f2 uint32, f3 uint16) {
		x.WriteByte(t)
		binary.Write(&x, binary.BigEndian, f2)
		binary.Write(&x, binary.BigEndian, f3)
	}
	entry(0, 0, 65535)
	for i := range objs {
		entry(2, uint32(osNr), uint16(i))
	}
	entry(1, uint32(osOff), 0)
	entry(1, uint32(xrefOff), 0)
	fmt.Fprintf(&b, "%d 0 obj\n<</Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d>>\nstream\n%s\nendstream\nendobj\n",
		xrefNr, xrefNr+1, x.Len(), x.Bytes())
	fmt.Fprintf(&b, "startxref\n%d\n%%%%EOF\n", xrefOff)
	return b.Bytes()
}

// pdfcpuDoc writes an n-page document with pdfcpu itself.
func pdfcpuDoc(t testing.TB, n int) []byte {
	t.Helper()
	api.DisableConfigDir() // tests must not install a config dir under $HOME
	conf := model.NewDefaultConfiguration()
	// pdfcpu rewrites a hand-written page with its own writer (object
	// streams, xref stream).
	ctx, err := api.ReadContext(bytes.NewReader(newDoc(1, 100).bytes(1)), conf)
	if err != nil {
		t.Fatal(err)
	}
	var one bytes.Buffer
	if err := api.WriteContext(ctx, &one); err != nil {
		t.Fatal(err)
	}
	if n == 1 {
		return one.Bytes()
	}
	rs := make([]io.ReadSeeker, n)
	for i := range rs {
		rs[i] = bytes.NewReader(one.Bytes())
	}
	var out bytes.Buffer
	if err := api.MergeRaw(rs, &out, false, conf); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
