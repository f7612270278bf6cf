package usage

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/pdftest"
	"github.com/creditgate/creditgate/meter"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
)

// FuzzPagesNotBelowPDFCPU checks that wherever pdfcpu reads a file and
// reports its page count, the gateway counts at least as many pages, or
// refuses the file: never fewer. Run longer with
// go test -fuzz FuzzPagesNotBelowPDFCPU ./meter/usage/
func FuzzPagesNotBelowPDFCPU(f *testing.F) {
	for _, tc := range realPDFs {
		f.Add(readTestdata(f, tc.file))
	}
	for _, b := range [][]byte{
		pdftest.Repeated(20), pdftest.Shared(6, "[0 0 842 1191]"), pdftest.Mistyped(10),
		pdftest.Cycle(), pdftest.ObjStm(pdftest.ObjStmOptions{Pages: 3}), newDoc(4, 20).bytes(1), pdftest.Linearized(40, true),
		pdftest.Objects("<< /Type /Catalog /Pages 2 0 R >>", "<< /Type /Pages /Kids [3 0 R 3 0 R] /Count 9 >>", "<< /Type /Page >>"),
	} {
		f.Add(b)
	}
	lim := PDFLimits{Timeout: 5 * time.Second, MaxDecodeBytes: 8 << 20}.withDefaults()
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := scanBytes(b, lim)
		if err != nil {
			if c := meter.ErrorCode(err); c != meter.ECodeUnreadableDocument {
				t.Fatalf("err = %v, want unreadable_document", err)
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		want := pdfcpuPageCount(ctx, b, lim)
		if info.Pages < want {
			t.Fatalf("pages = %d by %s, pdfcpu reports %d", info.Pages, info.Method, want)
		}
	})
}

// pdfcpuPageCount is the page count pdfcpu reports (its root /Count, as
// pdfcpu info prints it), 0 when it cannot read the file by ctx's end
// (pdfcpu does not watch ctx everywhere: it is left running then).
func pdfcpuPageCount(ctx context.Context, b []byte, lim PDFLimits) int {
	done := make(chan int, 1)
	go func() {
		defer func() {
			if recover() != nil {
				done <- 0 // pdfcpu panics on some inputs: it reports nothing then
			}
		}()
		pc, err := pdfcpu.ReadWithContext(ctx, bytes.NewReader(b), readConfig(int64(len(b)), lim))
		if err != nil || pc.XRefTable.EnsurePageCount() != nil {
			done <- 0
			return
		}
		done <- pc.PageCount
	}()
	select {
	case n := <-done:
		return n
	case <-ctx.Done():
		return 0
	}
}
