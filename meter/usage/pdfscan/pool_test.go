package pdfscan

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/creditgate/creditgate/internal/pdftest"
)

// TestPooledScansMatchFresh scans documents of every kind, whole, cut and
// damaged, in random order through the pooled docs of Scan, and checks
// each against a scan by a fresh doc: nothing of one scan may leak into
// the next.
func TestPooledScansMatchFresh(t *testing.T) {
	docs := [][]byte{
		simple(1), simple(40), qpdfLike(300, 3), pdftest.Pages(1), pdftest.Padded(10, 20_000),
		pdftest.Sized([2]float64{100, 200}, [2]float64{300, 400}), pdftest.Repeated(5),
		pdftest.Shared(12, "[0 0 10 20]"), pdftest.Mistyped(3), pdftest.Cycle(), pdftest.Linearized(3, true),
		pdftest.ObjStmBomb(1 << 20),
	}
	files, _ := filepath.Glob("../testdata/*.pdf")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, b := range docs[:len(docs):len(docs)] {
		for range 4 {
			docs = append(docs, b[:rnd.IntN(len(b))])
			c := bytes.Clone(b)
			for range 3 {
				c[rnd.IntN(len(c))] = byte(rnd.IntN(256))
			}
			docs = append(docs, c)
		}
	}
	lim := testLimits
	lim.MaxPages = 1000
	type result struct {
		info Info
		err  string
	}
	want := make([]result, len(docs))
	for i, b := range docs {
		info, err := newDoc(context.Background(), bytes.NewReader(b), int64(len(b)), lim).scan()
		want[i] = result{info, fmt.Sprint(err)}
	}
	for range 5 {
		for _, i := range rnd.Perm(len(docs)) {
			info, err := Scan(context.Background(), bytes.NewReader(docs[i]), int64(len(docs[i])), lim)
			if got := (result{info, fmt.Sprint(err)}); !reflect.DeepEqual(got, want[i]) {
				t.Fatalf("doc %d: pooled scan %+v, fresh %+v", i, got, want[i])
			}
		}
	}
}

// TestPooledDocKeepsNoReferences checks that a doc put back in the pool
// refers neither to the caller's reader nor to the document's objects.
func TestPooledDocKeepsNoReferences(t *testing.T) {
	b := qpdfLike(50, 3)
	d := newDoc(context.Background(), bytes.NewReader(b), int64(len(b)), testLimits)
	if _, err := d.scan(); err != nil {
		t.Fatal(err)
	}
	d.reset()
	if d.ctx != nil || d.rec.r != nil || d.src.r != nil || d.walk != nil || d.w.t != nil || d.w.sizes != nil ||
		d.root != nil || d.streams.list != nil {
		t.Fatalf("reset doc keeps references: %+v", d)
	}
	for _, s := range d.w.states[:cap(d.w.states)] {
		if s.kids != nil {
			t.Fatal("a reset walker keeps a state's kids")
		}
	}
	for _, f := range d.w.frames[:cap(d.w.frames)] {
		if f.items != nil {
			t.Fatal("a reset walker keeps a frame's items")
		}
	}
}
