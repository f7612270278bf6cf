package pdfscan

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// tree writes a catalog (1), a root /Pages (2) and the given objects from
// 3 on, with a classic table.
func tree(root string, objs ...string) []byte {
	f := newFile()
	f.obj(1, "<</Type /Catalog /Pages 2 0 R>>")
	f.obj(2, root)
	for i, o := range objs {
		f.obj(3+i, o)
	}
	return f.end(f.table(fmt.Sprintf("/Size %d /Root 1 0 R", 3+len(objs))))
}

// deep is a chain of depth /Pages nodes above a single page.
func deep(depth int) []byte {
	objs := make([]string, 0, depth)
	for i := range depth - 1 {
		objs = append(objs, fmt.Sprintf("<</Type /Pages /Kids [%d 0 R] /Count 1>>", i+4))
	}
	objs = append(objs, "<</Type /Page>>")
	return tree("<</Type /Pages /Kids [3 0 R] /Count 1>>", objs...)
}

func TestScanPageTree(t *testing.T) {
	page := "<</Type /Page /Parent 2 0 R>>"
	tests := []struct {
		name  string
		pdf   []byte
		pages int   // when err is nil
		err   error // else
	}{
		{"a /Kids cycle", tree("<</Type /Pages /Kids [3 0 R 2 0 R 4 0 R]>>", page, page), 0, ErrCycle},
		{"a cycle through an intermediate node", tree("<</Type /Pages /Kids [3 0 R]>>", "<</Type /Pages /Kids [4 0 R 2 0 R]>>", page), 0, ErrCycle},
		{"a cycle through a /Kids array", tree("<</Type /Pages /Kids 3 0 R>>", "[4 0 R]", "<</Kids 3 0 R>>"), 0, ErrCycle},
		{"a root /Count above the leaves is what readers report", tree("<</Type /Pages /Kids [3 0 R 4 0 R] /Count 1000000000>>", page, page), 1e9, nil},
		{"a root /Count below the leaves is ignored", tree("<</Type /Pages /Kids [3 0 R 4 0 R] /Count 1>>", page, page), 2, nil},
		{"a /Count below the root is ignored", tree("<</Type /Pages /Kids [3 0 R]>>", "<</Type /Pages /Kids [4 0 R] /Count 50>>", page), 1, nil},
		{"a kid listed twice is two pages", tree("<</Type /Pages /Kids [3 0 R 3 0 R 4 0 R]>>", page, page), 3, nil},
		{"a shared node counts each time", tree("<</Type /Pages /Kids [3 0 R 3 0 R 3 0 R]>>", "<</Type /Pages /Kids [4 0 R 4 0 R]>>", page), 6, nil},
		{"a shared /Kids array counts each time", tree("<</Type /Pages /Kids [<</Kids 3 0 R>> <</Kids 3 0 R>>]>>", "[4 0 R 4 0 R 4 0 R]", page), 6, nil},
		{"leaves of any /Type", tree("<</Type /Pages /Kids [3 0 R 4 0 R 5 0 R 6 0 R]>>", page, "<</Type /Pagez>>", "<</Type /Pages>>", "<</Type /Font /Kids null>>"), 4, nil},
		{"a /Page with kids is at least one page", tree("<</Type /Pages /Kids [3 0 R 4 0 R]>>", "<</Type /Page /Kids []>>", "<</Type /Page /Kids [5 0 R 5 0 R]>>", page), 3, nil},
		{"/Kids that is not an array holds no page", tree("<</Type /Pages /Kids [3 0 R 4 0 R]>>", "<</Type /Pages /Kids 7>>", page), 1, nil},
		{"/Kids null is a leaf", tree("<</Type /Pages /Kids [3 0 R 4 0 R]>>", "<</Type /Pages /Kids null>>", page), 2, nil},
		{"/Kids referring to null is a leaf", tree("<</Type /Pages /Kids [3 0 R 4 0 R]>>", "<</Type /Pages /Kids 5 0 R>>", page, "null"), 2, nil},
		{"null, dangling and direct kids", tree("<</Type /Pages /Kids [3 0 R 99 0 R null 7 4 0 R <</Type /Page>>]>>", page, page), 3, nil},
		{"untyped leaves and nodes", tree("<</Kids [3 0 R 4 0 R]>>", "<</Parent 2 0 R>>", "<</Kids [5 0 R]>>", "<<>>"), 2, nil},
		{"an empty node beside pages", tree("<</Type /Pages /Kids [3 0 R 4 0 R]>>", "<</Type /Pages /Kids []>>", page), 1, nil},
		{"/Kids as a reference", tree("<</Type /Pages /Kids 3 0 R>>", "[4 0 R 5 0 R]", page, page), 2, nil},
		{"a generation that does not match", tree("<</Type /Pages /Kids [3 1 R 4 0 R]>>", page, page), 1, nil},
		{"deep tree within the limit", deep(60), 1, nil},
		{"a 5,000-deep tree", deep(5000), 0, ErrLimit},
		{"no reachable page", tree("<</Type /Pages /Kids [] /Count 5>>"), 0, ErrDamaged},
		{"/Pages is not a dictionary", tree("[3 0 R]", page), 0, ErrDamaged},
		{"an object that is not at its offset", bytes.Replace(simple(2), []byte("4 0 obj"), []byte("9 0 obj"), 1), 0, ErrDamaged},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := scan(tc.pdf)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			if info.Pages != tc.pages {
				t.Errorf("pages = %d, want %d", info.Pages, tc.pages)
			}
		})
	}
}

func TestScanBoxes(t *testing.T) {
	a4 := [4]float32{0, 0, 595, 842}
	pdf := tree("<</Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /MediaBox [0 0 595 842] /Rotate 90>>",
		"<</Type /Page /Parent 2 0 R>>",
		"<</Type /Page /Parent 2 0 R /CropBox [10 20 300 400] /Rotate -90>>",
		"<</Type /Pages /Parent 2 0 R /Kids [6 0 R 7 0 R 8 0 R] /MediaBox 9 0 R /Rotate 0>>",
		"<</Type /Page /Parent 5 0 R>>",
		"<</Type /Page /Parent 5 0 R /CropBox [-100 -100 5000 5000] /Rotate 45>>",
		"<</Type /Page /Parent 5 0 R /MediaBox [792 1224 0 0] /CropBox [1 2 3]>>",
		"[0 0 2448 1584.5]",
	)
	info := mustScan(t, pdf, 5)
	tabloid := [4]float32{0, 0, 2448, 1584.5}
	want := []PageSize{
		{Box: PageBox{MediaBox: a4, CropBox: a4, Rotate: 90}, Pages: 1},                                       // inherited MediaBox and Rotate
		{Box: PageBox{MediaBox: a4, CropBox: [4]float32{10, 20, 300, 400}, Rotate: 270}, Pages: 1},            // smaller CropBox, Rotate normalized
		{Box: PageBox{MediaBox: tabloid, CropBox: tabloid, Rotate: 0}, Pages: 2},                              // MediaBox by reference, Rotate overridden; CropBox clipped, Rotate 45 ignored
		{Box: PageBox{MediaBox: [4]float32{0, 0, 792, 1224}, CropBox: [4]float32{0, 0, 792, 1224}}, Pages: 1}, // corners swapped, bad CropBox ignored
	}
	if !reflect.DeepEqual(info.Sizes, want) {
		t.Errorf("sizes = %+v\nwant    %+v", info.Sizes, want)
	}
	if w, h := info.Sizes[0].Box.Size(); w != 842 || h != 595 {
		t.Errorf("Size of a page rotated 90 = %vx%v, want 842x595", w, h)
	}
	if w, h := info.Sizes[1].Box.Size(); w != 380 || h != 290 {
		t.Errorf("Size of a cropped page = %vx%v, want 380x290", w, h)
	}
	// No MediaBox anywhere: US Letter.
	letterPDF := tree("<</Type /Pages /Kids [3 0 R]>>", "<</Type /Page>>")
	if got := mustScan(t, letterPDF, 1).Sizes[0]; got.Box.MediaBox != [4]float32{0, 0, 612, 792} {
		t.Errorf("default MediaBox = %v", got.Box.MediaBox)
	}
}

// Truncating a file anywhere never panics, never hangs and never finds
// more pages than the file has.
func TestScanTruncated(t *testing.T) {
	for _, pdf := range [][]byte{simple(20), objStmFile(20, true, 0)} {
		for i := range 200 {
			n := len(pdf) * i / 200
			info, err := scan(pdf[:n])
			if err == nil && info.Pages > 20 {
				t.Fatalf("cut at %d: %d pages", n, info.Pages)
			}
		}
	}
}

func TestScanHonorsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pdf := simple(5000)
	start := time.Now()
	_, err := Scan(ctx, bytes.NewReader(pdf), int64(len(pdf)), testLimits)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %v", d)
	}
}

// The walk's bookkeeping past 16,384 nodes is asked of Limits.Grow, whose
// refusal ends the scan with ErrMemory.
func TestWalkMemoryGrows(t *testing.T) {
	pdf := simple(40000)
	var asked int64
	lim := testLimits
	lim.Grow = func(n int64) error { asked += n; return nil }
	info, err := Scan(context.Background(), bytes.NewReader(pdf), int64(len(pdf)), lim)
	if err != nil || info.Pages != 40000 {
		t.Fatalf("pages = %d, err = %v", info.Pages, err)
	}
	if asked < 2*(40000-freeStates)*stateBytes {
		t.Errorf("asked for %d bytes, want at least %d", asked, 2*(40000-freeStates)*stateBytes)
	}
	lim.Grow = func(int64) error { return errors.New("no memory") }
	if _, err := Scan(context.Background(), bytes.NewReader(pdf), int64(len(pdf)), lim); !errors.Is(err, ErrMemory) {
		t.Errorf("err = %v, want ErrMemory", err)
	}
}
