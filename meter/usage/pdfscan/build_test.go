package pdfscan

import (
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Builders of PDFs for tests: objects are written as the test says, and
// each cross-reference section lists the objects written since the last
// one, so that incremental updates and hybrid files are written as
// producers write them.

// entry is a cross-reference entry in xref stream form: type 0 (free), 1
// (offset, generation) or 2 (object stream, index).
type entry struct {
	typ  int
	a, b int64
}

type file struct {
	buf     bytes.Buffer
	pending map[int]entry
}

func newFile() *file {
	f := &file{pending: map[int]entry{}}
	f.buf.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	return f
}

// obj writes object num.
func (f *file) obj(num int, body string) {
	f.pending[num] = entry{1, int64(f.buf.Len()), 0}
	fmt.Fprintf(&f.buf, "%d 0 obj\n%s\nendobj\n", num, body)
}

// free marks object num deleted in the next section.
func (f *file) free(num int) { f.pending[num] = entry{0, 0, 1} }

// objStm writes object stream num holding bodies as objects first,
// first+1...; extra is added to its dictionary, pad to its data.
func (f *file) objStm(num, first int, extra string, pad int, bodies ...string) {
	var head, body bytes.Buffer
	for i, b := range bodies {
		fmt.Fprintf(&head, "%d %d ", first+i, body.Len())
		body.WriteString(b + "\n")
		f.pending[first+i] = entry{2, int64(num), int64(i)}
	}
	data := append(head.Bytes(), body.Bytes()...)
	data = append(data, bytes.Repeat([]byte(" "), pad)...)
	z := deflate(data)
	f.pending[num] = entry{1, int64(f.buf.Len()), 0}
	fmt.Fprintf(&f.buf, "%d 0 obj\n<</Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d%s>>\nstream\n%s\nendstream\nendobj\n",
		num, len(bodies), head.Len(), len(z), extra, z)
}

func deflate(b []byte) []byte {
	var out bytes.Buffer
	w := zlib.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// table writes a classic xref table of the pending type 0 and 1 entries,
// in subsections of consecutive numbers, and returns its offset.
func (f *file) table(trailer string) int64 {
	off := int64(f.buf.Len())
	nums := f.take(func(e entry) bool { return e.typ != 2 })
	f.buf.WriteString("xref\n")
	for i := 0; i < len(nums); {
		j := i + 1
		for j < len(nums) && nums[j] == nums[j-1]+1 {
			j++
		}
		fmt.Fprintf(&f.buf, "%d %d\n", nums[i], j-i)
		for _, n := range nums[i:j] {
			e := f.pending[n]
			kind := "n"
			if e.typ == 0 {
				kind = "f"
			}
			fmt.Fprintf(&f.buf, "%010d %05d %s\r\n", e.a, e.b, kind)
			delete(f.pending, n)
		}
		i = j
	}
	fmt.Fprintf(&f.buf, "trailer\n<<%s>>\n", trailer)
	return off
}

// take returns the sorted numbers of pending entries that keep accepts.
func (f *file) take(keep func(entry) bool) []int {
	var nums []int
	for n, e := range f.pending {
		if keep(e) {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	return nums
}

// xrefStream writes object num, an xref stream of the pending entries
// (only the compressed ones when onlyCompressed, for a hybrid file), with
// a PNG Up predictor when predict, and returns its offset.
func (f *file) xrefStream(num int, trailer string, predict, onlyCompressed bool) int64 {
	off := int64(f.buf.Len())
	if !onlyCompressed {
		f.pending[num] = entry{1, off, 0}
	}
	nums := f.take(func(e entry) bool { return !onlyCompressed || e.typ == 2 })
	w := [3]int{1, 4, 2}
	var rows []byte
	var index []string
	for i := 0; i < len(nums); {
		j := i + 1
		for j < len(nums) && nums[j] == nums[j-1]+1 {
			j++
		}
		index = append(index, fmt.Sprintf("%d %d", nums[i], j-i))
		for _, n := range nums[i:j] {
			e := f.pending[n]
			rows = append(rows, byte(e.typ), byte(e.a>>24), byte(e.a>>16), byte(e.a>>8), byte(e.a), byte(e.b>>8), byte(e.b))
			delete(f.pending, n)
		}
		i = j
	}
	parms := ""
	if predict {
		rows = pngUp(rows, 7)
		parms = " /DecodeParms <</Predictor 12 /Columns 7>>"
	}
	z := deflate(rows)
	fmt.Fprintf(&f.buf, "%d 0 obj\n<</Type /XRef /W [%d %d %d] /Index [%s] /Filter /FlateDecode%s /Length %d %s>>\nstream\n%s\nendstream\nendobj\n",
		num, w[0], w[1], w[2], strings.Join(index, " "), parms, len(z), trailer, z)
	return off
}

// pngUp encodes rows of n bytes with the PNG Up filter.
func pngUp(data []byte, n int) []byte {
	var out []byte
	prev := make([]byte, n)
	for i := 0; i+n <= len(data); i += n {
		out = append(out, 2)
		for k, c := range data[i : i+n] {
			out = append(out, c-prev[k])
		}
		prev = data[i : i+n]
	}
	return out
}

// end writes startxref and returns the file so far.
func (f *file) end(xref int64) []byte {
	fmt.Fprintf(&f.buf, "startxref\n%d\n%%%%EOF\n", xref)
	return bytes.Clone(f.buf.Bytes())
}

// kids returns "[a 0 R b 0 R ...]" for objects first...first+n-1.
func kids(first, n int) string {
	refs := make([]string, n)
	for i := range refs {
		refs[i] = fmt.Sprintf("%d 0 R", first+i)
	}
	return "[" + strings.Join(refs, " ") + "]"
}

// simple returns a classic file: catalog 1, pages 2, n pages from 3.
func simple(n int) []byte {
	f := newFile()
	f.obj(1, "<</Type /Catalog /Pages 2 0 R>>")
	f.obj(2, fmt.Sprintf("<</Type /Pages /Kids %s /Count %d /MediaBox [0 0 612 792]>>", kids(3, n), n))
	for i := range n {
		f.obj(3+i, "<</Type /Page /Parent 2 0 R>>")
	}
	return f.end(f.table(fmt.Sprintf("/Size %d /Root 1 0 R", n+3)))
}

var testLimits = Limits{MaxStreamBytes: 1 << 30, MaxDecodeBytes: 1 << 20, MaxObjects: 1_000_000, MaxDepth: 64}

func scan(b []byte) (Info, error) {
	return Scan(context.Background(), bytes.NewReader(b), int64(len(b)), testLimits)
}

// mustScan scans b and checks the page count.
func mustScan(t *testing.T, b []byte, pages int) Info {
	t.Helper()
	info, err := scan(b)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if info.Pages != pages || sized(info) != pages {
		t.Fatalf("pages = %d (%d with a box), want %d", info.Pages, sized(info), pages)
	}
	return info
}

// sized is the number of pages with a known box.
func sized(info Info) int {
	n := 0
	for _, s := range info.Sizes {
		n += s.Pages
	}
	return n
}
