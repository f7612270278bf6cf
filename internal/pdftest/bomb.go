package pdftest

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// ObjStmBomb is a one-page PDF 1.5 file whose page tree sits in an object
// stream (with an xref stream) padded with pad spaces before compression:
// a flate bomb a reader must inflate to find the page (1 MB of it inflates
// to about 1 GB).
func ObjStmBomb(pad int64) []byte { return objStmBomb(pad, false) }

// ObjStmBombHex is ObjStmBomb with its stream also ASCIIHex-encoded
// (/Filter [/ASCIIHexDecode /FlateDecode]): a filter chain that only a
// full reader decodes.
func ObjStmBombHex(pad int64) []byte { return objStmBomb(pad, true) }

func objStmBomb(pad int64, hexed bool) []byte {
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
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
	spaces := bytes.Repeat([]byte(" "), 1<<20)
	for n := pad; n > 0; n -= int64(len(spaces)) {
		w.Write(spaces[:min(n, int64(len(spaces)))])
	}
	w.Close()
	filter := "/FlateDecode"
	if hexed {
		h := hex.EncodeToString(z.Bytes()) + ">"
		z.Reset()
		z.WriteString(h)
		filter = "[/ASCIIHexDecode /FlateDecode]"
	}

	const osNr, xrefNr = 4, 5
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	osOff := b.Len()
	fmt.Fprintf(&b, "%d 0 obj\n<< /Type /ObjStm /N %d /First %d /Filter %s /Length %d >>\nstream\n",
		osNr, len(objs), head.Len(), filter, z.Len())
	b.Write(z.Bytes())
	b.WriteString("\nendstream\nendobj\n")
	xrefOff := b.Len()
	var x bytes.Buffer
	entry := func(t byte, f2 uint32, f3 uint16) {
		x.WriteByte(t)
		binary.Write(&x, binary.BigEndian, f2)
		binary.Write(&x, binary.BigEndian, f3)
	}
	entry(0, 0, 65535)
	for i := range objs {
		entry(2, osNr, uint16(i))
	}
	entry(1, uint32(osOff), 0)
	entry(1, uint32(xrefOff), 0)
	fmt.Fprintf(&b, "%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n%s\nendstream\nendobj\n",
		xrefNr, xrefNr+1, x.Len(), x.Bytes())
	fmt.Fprintf(&b, "startxref\n%d\n%%%%EOF\n", xrefOff)
	return b.Bytes()
}
