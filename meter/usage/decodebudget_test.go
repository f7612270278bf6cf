package usage

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/creditgate/creditgate/internal/pdftest"
)

// mustPages reads pdf with the fallback and returns its pages.
func mustPages(t *testing.T, pdf []byte) int {
	t.Helper()
	info, err := scanBytes(pdf, PDFLimits{})
	if err != nil || info.Method != MethodPDFCPU {
		t.Fatalf("%d pages by %s, err = %v; want read by pdfcpu", info.Pages, info.Method, err)
	}
	return info.Pages
}

// Decoding an object stream draws from the budget past the scanner's
// allowance: a flate bomb waits for its memory and is refused
// server_busy when others hold it, too_large when it could never fit, and
// gives everything back either way.
func TestBudgetCoversObjectStreamDecoding(t *testing.T) {
	bomb := pdftest.ObjStm(pdftest.ObjStmOptions{Pages: 2, Pad: 40 << 20}) // 40 MB of spaces in 40 KB of flate
	lim := PDFLimits{MaxDecodeBytes: 32 << 20}
	read := func(b *Budget) error {
		_, err := readPDF(context.Background(), bytes.NewReader(bomb), int64(len(bomb)), lim, b)
		return err
	}

	t.Run("refused busy while others hold the budget", func(t *testing.T) {
		b := NewBudget(256<<20, 50*time.Millisecond)
		release, err := b.Hold(context.Background(), 200<<20)
		if err != nil {
			t.Fatal(err)
		}
		assertBusy(t, read(b))
		if b.InUse() != 200<<20 {
			t.Errorf("InUse = %d MB after the refusal, want the 200 MB held", b.InUse()>>20)
		}
		release()
	})
	t.Run("too large for the whole budget", func(t *testing.T) {
		b := NewBudget(48<<20, 50*time.Millisecond)
		assertUnreadable(t, read(b), ReasonTooLarge)
		if b.InUse() != 0 {
			t.Errorf("InUse = %d after the refusal", b.InUse())
		}
	})
	t.Run("admitted, then over MaxDecodeBytes", func(t *testing.T) {
		b := NewBudget(256<<20, 50*time.Millisecond)
		assertUnreadable(t, read(b), ReasonTooLarge)
		if b.InUse() != 0 {
			t.Errorf("InUse = %d after the refusal", b.InUse())
		}
	})
	t.Run("a real object stream stays within the allowance", func(t *testing.T) {
		doc := pdftest.ObjStm(pdftest.ObjStmOptions{Pages: 2000})
		b := NewBudget(scanNeed(int64(len(doc))), 50*time.Millisecond)
		info, err := readPDF(context.Background(), bytes.NewReader(doc), int64(len(doc)), PDFLimits{}, b)
		if err != nil || info.Pages != 2000 {
			t.Fatalf("pages = %d, err = %v", info.Pages, err)
		}
	})
}

// The fallback reader (here for a filter chain the scanner does not
// decode) decodes a stream to at most fallbackDecode, which its grant
// covers: the bomb is too_large at its limit, and the budget is whole
// again after.
func TestFallbackDecodeBounded(t *testing.T) {
	if pdf := pdftest.ObjStmBombHex(1000); mustPages(t, pdf) != 1 {
		t.Fatal("the control is not read")
	}
	bomb := pdftest.ObjStmBombHex(40 << 20)
	b := NewBudget(256<<20, 50*time.Millisecond)
	_, err := readPDF(context.Background(), bytes.NewReader(bomb), int64(len(bomb)), PDFLimits{}, b)
	assertUnreadable(t, err, ReasonTooLarge)
	if b.InUse() != 0 {
		t.Errorf("InUse = %d after the refusal", b.InUse())
	}
	if got := fallbackDecode(int64(len(bomb)), PDFLimits{}.withDefaults()); got >= 8<<20 {
		t.Errorf("fallbackDecode = %d MB for a %d KB file", got>>20, len(bomb)>>10)
	}
}
