package usage

import (
	"bytes"
	"context"
	"math/rand"
	"mime/multipart"
	"testing"
)

// BenchmarkMeasure measures what classifying costs on the hot path: a PDF
// (found at byte 0), an image (scanned whole for a hidden "%PDF-"), in
// memory and spooled, and a multipart form with a PDF and an image.
func BenchmarkMeasure(b *testing.B) {
	pdf := newDoc(10, 20000).bytes(1) // about 200 KB
	img := make([]byte, 8<<20)
	rand.New(rand.NewSource(1)).Read(img)
	copy(img, "\x89PNG\r\n\x1a\n")
	img = bytes.ReplaceAll(img, []byte("%"), []byte("*"))
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	w, _ := mw.CreateFormFile("a", "a.pdf")
	w.Write(pdf)
	w, _ = mw.CreateFormFile("b", "b.png")
	w.Write(img[:1<<20])
	mw.WriteField("note", "hello")
	mw.Close()

	for _, bc := range []struct {
		name, ct  string
		body      []byte
		threshold int64
	}{
		{"pdf-200KB", "application/pdf", pdf, 1 << 20},
		{"image-8MB-memory", "image/png", img, 16 << 20},
		{"image-8MB-spooled", "image/png", img, 1 << 20},
		{"form-pdf-image-1MB", mw.FormDataContentType(), form.Bytes(), 1 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			opts := Options{TempDir: b.TempDir(), MemoryThreshold: bc.threshold, MaxBody: 64 << 20}
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				body, err := Spool(bytes.NewReader(bc.body), opts)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := Measure(context.Background(), bc.ct, body, opts); err != nil {
					b.Fatal(err)
				}
				body.Close()
			}
		})
	}
}
