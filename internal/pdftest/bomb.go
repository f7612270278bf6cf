package pdftest

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// ObjStmOptions shape an object-stream PDF (see ObjStm).
type ObjStmOptions struct {
	// Pages is how many leaves the page tree has. Default 1.
	Pages int
	// Pad is how many spaces follow the objects in the object stream,
	// before compression: a long run makes a flate bomb (1 MB of stream
	// inflates to about 1 GB).
	Pad int64
	// Hex also ASCIIHex-encodes the stream (/Filter [/ASCIIHexDecode
	// /FlateDecode]): a filter chain that only a full reader decodes.
	Hex bool
}

// ObjStm renders a PDF 1.5 file whose catalog, page tree and pages all
// live in one flate-compressed object stream, found through an xref
// stream: the one builder of such files for every test and benchmark.
func ObjStm(o ObjStmOptions) []byte {
	pages := max(o.Pages, 1)
	kids := make([]string, pages)
	for i := range kids {
		kids[i] = fmt.Sprintf("%d 0 R", i+3)
	}
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), pages),
	}
	for range pages {
		objs = append(objs, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>")
	}
	var head, body bytes.Buffer
	for i, o := range objs {
		fmt.Fprintf(&head, "%d %d ", i+1, body.Len())
		body.WriteString(o + " ")
	}
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(head.Bytes())
	w.Write(body.Bytes())
	// Written a MiB at a time: a bomb's padding is never in memory whole.
	spaces := bytes.Repeat([]byte(" "), 1<<20)
	for n := o.Pad; n > 0; n -= int64(len(spaces)) {
		w.Write(spaces[:min(n, int64(len(spaces)))])
	}
	w.Close()
	filter := "/FlateDecode"
	if o.Hex {
		h := hex.EncodeToString(z.Bytes()) + ">"
		z.Reset()
		z.WriteString(h)
		filter = "[/ASCIIHexDecode /FlateDecode]"
	}

	osNr := len(objs) + 1
	xrefNr := osNr + 1
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	osOff := b.Len()
	fmt.Fprintf(&b, "%d 0 obj\n<< /Type /ObjStm /N %d /First %d /Filter %s /Length %d >>\nstream\n",
		osNr, len(objs), head.Len(), filter, z.Len())
	b.Write(z.Bytes())
	b.WriteString("\nendstream\nendobj\n")
	xrefOff := b.Len()
	// Entries of W [1 4 2]: type, field 2, field 3.
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
	fmt.Fprintf(&b, "%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n%s\nendstream\nendobj\n",
		xrefNr, xrefNr+1, x.Len(), x.Bytes())
	fmt.Fprintf(&b, "startxref\n%d\n%%%%EOF\n", xrefOff)
	return b.Bytes()
}

// ObjStmBomb is a one-page ObjStm padded with pad spaces: a flate bomb a
// reader must inflate to find the page.
func ObjStmBomb(pad int64) []byte { return ObjStm(ObjStmOptions{Pad: pad}) }

// ObjStmBombHex is ObjStmBomb with its stream also ASCIIHex-encoded.
func ObjStmBombHex(pad int64) []byte { return ObjStm(ObjStmOptions{Pad: pad, Hex: true}) }
