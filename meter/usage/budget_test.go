package usage

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// Concurrent grants never hold more than the capacity together, and all of
// it comes back.
func TestBudgetNeverExceeded(t *testing.T) {
	const capacity = 100
	b := NewBudget(capacity, time.Minute)
	var held, peak atomic.Int64
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			for j := range 50 {
				n := int64(1 + (i*7+j*13)%60)
				g, err := b.acquire(context.Background(), n)
				if err != nil {
					t.Error(err)
					return
				}
				now := held.Add(n)
				for p := peak.Load(); now > p && !peak.CompareAndSwap(p, now); p = peak.Load() {
				}
				if now > capacity || b.InUse() > capacity {
					t.Errorf("%d bytes held, capacity %d", now, capacity)
				}
				held.Add(-n)
				g.release()
				g.release() // a second release gives nothing back
			}
		})
	}
	wg.Wait()
	if b.InUse() != 0 {
		t.Errorf("InUse = %d after every release", b.InUse())
	}
	if !b.sem.TryAcquire(capacity) {
		t.Error("the whole capacity is not available after every release")
	}
	t.Logf("peak %d of %d", peak.Load(), capacity)
}

func assertBusy(t *testing.T, err error) {
	t.Helper()
	var e *meter.Error
	if !errors.As(err, &e) || e.Code != meter.ECodeServerBusy {
		t.Fatalf("err = %v, want a %s *meter.Error", err, meter.ECodeServerBusy)
	}
}

// A full budget refuses a document with server_busy once the wait is over;
// one that frees up during the wait admits it.
func TestBudgetBusy(t *testing.T) {
	pdf := readTestdata(t, "cairo.pdf")
	b := NewBudget(64<<20, 50*time.Millisecond)
	hog, err := b.acquire(context.Background(), b.Capacity())
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Budget: b}

	start := time.Now()
	_, err = measureBytes(t, "application/pdf", pdf, opts)
	assertBusy(t, err)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("refused after %v, before the wait", d)
	}

	time.AfterFunc(10*time.Millisecond, hog.release)
	u, err := measureBytes(t, "application/pdf", pdf, opts)
	if err != nil || u.Pages != 8 {
		t.Fatalf("after release: %d pages, %v", u.Pages, err)
	}
	if b.InUse() != 0 {
		t.Errorf("InUse = %d after Measure", b.InUse())
	}
}

// The wait ends with ctx: cancelled is context.Canceled (the client left),
// a deadline is server_busy.
func TestBudgetWaitEndsWithContext(t *testing.T) {
	pdf := readTestdata(t, "cairo.pdf")
	b := NewBudget(64<<20, time.Hour)
	hog, _ := b.acquire(context.Background(), b.Capacity())
	defer hog.release()

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	_, err := readPDF(ctx, bytes.NewReader(pdf), int64(len(pdf)), PDFLimits{}, b)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v, want context.Canceled", err)
	}
	_, err = readPDF(context.Background(), bytes.NewReader(pdf), int64(len(pdf)), PDFLimits{Timeout: 20 * time.Millisecond}, b)
	assertBusy(t, err)
}

// A document that needs more than the whole budget could never be read:
// it is unreadable (too_large), at once, whichever reader it needs.
func TestBudgetOversize(t *testing.T) {
	tests := []struct {
		name     string
		pdf      []byte
		capacity int64
	}{
		{"scanner", readTestdata(t, "cairo.pdf"), 1 << 20},
		{"pdfcpu fallback", readTestdata(t, "encrypted-owner.pdf"), 12 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBudget(tc.capacity, time.Hour)
			_, err := measureBytes(t, "application/pdf", tc.pdf, Options{Budget: b})
			assertUnreadable(t, err, ReasonTooLarge)
			if b.InUse() != 0 {
				t.Errorf("InUse = %d after the refusal", b.InUse())
			}
		})
	}
}

// panicReaderAt panics on its first read.
type panicReaderAt struct{}

func (panicReaderAt) ReadAt([]byte, int64) (int, error) { panic("disk on fire") }

// blockingReaderAt blocks its reads until release is closed.
type blockingReaderAt struct {
	r       io.ReaderAt
	release chan struct{}
}

func (b *blockingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	<-b.release
	return b.r.ReadAt(p, off)
}

// slowReaderAt takes delay for each read, as a slow disk would.
type slowReaderAt struct {
	r     io.ReaderAt
	delay time.Duration
}

func (s *slowReaderAt) ReadAt(p []byte, off int64) (int, error) {
	time.Sleep(s.delay)
	return s.r.ReadAt(p, off)
}

// Whatever way reading ends, the share comes back; after a timeout, only
// when the reading goroutine is done with its memory.
func TestBudgetReleasedOnEveryPath(t *testing.T) {
	b := NewBudget(1<<30, time.Second)
	ctx := context.Background()
	waitFree := func(t *testing.T) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); b.InUse() != 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("InUse = %d, never released", b.InUse())
			}
		}
	}
	cairo := readTestdata(t, "cairo.pdf")
	enc := readTestdata(t, "encrypted-owner.pdf")

	for _, rd := range []struct {
		name string
		read func(context.Context, io.ReaderAt, int64, PDFLimits, *Budget) (PDFInfo, error)
	}{{"goroutine", readPDF}, {"spooled", readSpooled}} {
		t.Run(rd.name+"/success, scanner and fallback", func(t *testing.T) {
			for i, pdf := range [][]byte{cairo, enc} {
				info, err := rd.read(ctx, bytes.NewReader(pdf), int64(len(pdf)), PDFLimits{}, b)
				if err != nil {
					t.Fatal(err)
				}
				if want := []string{MethodScan, MethodPDFCPU}[i]; info.Method != want || info.Pages < 1 {
					t.Errorf("read by %q, %d pages; want by %q", info.Method, info.Pages, want)
				}
				waitFree(t)
			}
		})
		t.Run(rd.name+"/damaged", func(t *testing.T) {
			_, err := rd.read(ctx, bytes.NewReader([]byte("%PDF-1.4 junk")), 13, PDFLimits{}, b)
			assertUnreadable(t, err, ReasonDamaged)
			waitFree(t)
		})
		t.Run(rd.name+"/panic", func(t *testing.T) {
			_, err := rd.read(ctx, panicReaderAt{}, 1000, PDFLimits{}, b)
			assertUnreadable(t, err, ReasonDamaged)
			waitFree(t)
		})
	}
	// The spooled read's scanner runs on the caller: a slow read returns
	// at its next read after the deadline, a timeout, with nothing held.
	t.Run("spooled/timeout", func(t *testing.T) {
		r := &slowReaderAt{r: bytes.NewReader(cairo), delay: 5 * time.Millisecond}
		start := time.Now()
		_, err := readSpooled(ctx, r, int64(len(cairo)), PDFLimits{Timeout: 20 * time.Millisecond}, b)
		assertUnreadable(t, err, ReasonTimeout)
		if d := time.Since(start); d > time.Second {
			t.Errorf("returned after %v", d)
		}
		if n := b.InUse(); n != 0 {
			t.Errorf("InUse = %d after the spooled read returned", n)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		r := &blockingReaderAt{r: bytes.NewReader(cairo), release: make(chan struct{})}
		_, err := readPDF(ctx, r, int64(len(cairo)), PDFLimits{Timeout: 20 * time.Millisecond}, b)
		assertUnreadable(t, err, ReasonTimeout)
		if b.InUse() == 0 {
			t.Error("released while the reading goroutine still runs")
		}
		close(r.release)
		waitFree(t)
	})
}
