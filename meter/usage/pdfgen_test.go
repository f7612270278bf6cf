package usage

import (
	"bytes"
	"compress/zlib"
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
