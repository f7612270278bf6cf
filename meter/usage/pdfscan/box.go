package pdfscan

// PageBox is the geometry of one page, in PDF points (1/72 in), compact so
// that the boxes of 15,000 pages take half a megabyte.
type PageBox struct {
	MediaBox [4]float32 // llx, lly, urx, ury, normalized
	CropBox  [4]float32 // clipped to MediaBox
	Rotate   int16      // 0, 90, 180 or 270
}

// Size returns the width and height of the visible page (CropBox) as
// displayed, that is with Rotate applied.
func (b PageBox) Size() (w, h float32) {
	w, h = b.CropBox[2]-b.CropBox[0], b.CropBox[3]-b.CropBox[1]
	if b.Rotate == 90 || b.Rotate == 270 {
		return h, w
	}
	return w, h
}

// letter is the MediaBox of a page that has none, as PDF readers assume.
var letter = [4]float64{0, 0, 612, 792}

// NewPageBox builds the box of a page from its effective (inherited)
// attributes; nil media or crop means absent. Readers agree on these rules:
// a missing MediaBox is US Letter, a missing CropBox is the MediaBox, a
// CropBox is clipped to the MediaBox, Rotate is a multiple of 90.
func NewPageBox(media, crop []float64, rotate int64) PageBox {
	m := letter
	if r, ok := rect(media); ok {
		m = r
	}
	c := m
	if r, ok := rect(crop); ok {
		c = [4]float64{max(r[0], m[0]), max(r[1], m[1]), min(r[2], m[2]), min(r[3], m[3])}
		if c[0] >= c[2] || c[1] >= c[3] {
			c = m
		}
	}
	var b PageBox
	for i := range 4 {
		b.MediaBox[i], b.CropBox[i] = float32(m[i]), float32(c[i])
	}
	if rotate%90 == 0 {
		b.Rotate = int16((rotate%360 + 360) % 360)
	}
	return b
}

// rect normalizes a rectangle given by two opposite corners; a degenerate
// one is absent.
func rect(v []float64) ([4]float64, bool) {
	if len(v) != 4 {
		return [4]float64{}, false
	}
	r := [4]float64{min(v[0], v[2]), min(v[1], v[3]), max(v[0], v[2]), max(v[1], v[3])}
	return r, r[0] < r[2] && r[1] < r[3]
}
