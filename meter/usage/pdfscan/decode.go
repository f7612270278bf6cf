package pdfscan

import (
	"bufio"
	"errors"
	"io"

	// klauspost's flate is a drop-in for compress/flate (same API, same
	// Resetter) that inflates about twice as fast, which is most of the
	// time spent on documents whose pages sit in object streams. It is
	// well maintained and already in the module graph through Caddy.
	"github.com/klauspost/compress/flate"
)

// decodeStream returns the decoded data of an object or xref stream,
// appended to dst[:0] (a buffer to reuse, or nil). Only FlateDecode, with
// or without a PNG predictor, is supported: it is what writers use for
// these streams. Each stream decodes to at most MaxDecodeBytes and the scan
// to at most its budget, so a flate bomb stops early.
func (d *doc) decodeStream(dict Dict, start int64, dst []byte) ([]byte, error) {
	sec, err := d.streamSection(dict, start)
	if err != nil {
		return nil, err
	}
	filter, err := d.resolve(dict["Filter"])
	if err != nil {
		return nil, err
	}
	parms, err := d.resolve(dict["DecodeParms"])
	if err != nil {
		return nil, err
	}
	if a, ok := filter.(Array); ok && len(a) <= 1 {
		filter = nil
		if len(a) == 1 {
			filter = a[0]
		}
		if pa, ok := parms.(Array); ok && len(pa) == 1 {
			parms = pa[0]
		}
	}
	lim := min(d.lim.MaxDecodeBytes, d.budget)
	var data []byte
	switch filter {
	case nil:
		data, err = readInto(dst[:0], sec, lim, d.reserve)
	case Name("FlateDecode"):
		data, err = d.inflater.inflate(sec, lim, dst[:0], d.reserve)
	default:
		return nil, damaged("unsupported stream filter %v", filter)
	}
	if err != nil {
		if d.src.r.err != nil {
			return nil, &ReadError{d.src.r.err}
		}
		if errors.Is(err, ErrLimit) && lim < d.lim.MaxDecodeBytes {
			return nil, limit("object streams decode to more than %d bytes in all", 4*d.lim.MaxDecodeBytes)
		}
		return nil, err
	}
	d.budget -= int64(len(data))
	if parms == nil {
		return data, nil
	}
	pd, ok := parms.(Dict)
	if !ok {
		return nil, damaged("bad /DecodeParms %v", parms)
	}
	return d.unpredict(data, pd)
}

// inflater decodes flate data, reusing its decompressor and input buffer
// from stream to stream: a document may have thousands of small object
// streams, and a fresh decompressor allocates 40 KB.
type inflater struct {
	br *bufio.Reader
	fr io.ReadCloser
}

// inflate appends the decoded zlib data, or raw deflate data as some
// writers produce, to dst. The Adler-32 checksum is not checked (PDF
// readers ignore a wrong one); other damage is an error: half an xref
// stream would lose objects silently.
func (in *inflater) inflate(sec *io.SectionReader, lim int64, dst []byte, reserve func(int64) error) ([]byte, error) {
	if in.br == nil {
		in.br = bufio.NewReaderSize(sec, 32<<10)
	} else {
		in.br.Reset(sec)
	}
	if h, err := in.br.Peek(2); err == nil && h[0]&0x0f == 8 && h[0]>>4 <= 7 &&
		h[1]&0x20 == 0 && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 {
		in.br.Discard(2) // a zlib header without a preset dictionary
	}
	if in.fr == nil {
		in.fr = flate.NewReader(in.br)
	} else if err := in.fr.(flate.Resetter).Reset(in.br, nil); err != nil {
		return nil, err
	}
	out, err := readInto(dst, in.fr, lim, reserve)
	if err != nil && !errors.Is(err, ErrLimit) && !errors.Is(err, ErrMemory) {
		return nil, damaged("flate stream: %v", err)
	}
	return out, err
}

// readInto appends r's data to b until EOF, failing with ErrLimit past lim
// bytes. It reads into b's spare capacity, growing it by doubling from
// 16 KB: object streams decode to 5 to 20 times their size, so a guess
// from the encoded size would be regrown anyway. reserve, when not nil,
// admits each larger buffer before it is allocated.
func readInto(b []byte, r io.Reader, lim int64, reserve func(int64) error) ([]byte, error) {
	for {
		end := int(min(int64(cap(b)), lim+1))
		if len(b) >= end {
			if int64(len(b)) > lim {
				return nil, limit("stream decodes to more than %d bytes", lim)
			}
			n := int(min(max(2*int64(cap(b)), 16<<10), lim+1))
			if reserve != nil {
				if err := reserve(int64(n + cap(b))); err != nil {
					return nil, err
				}
			}
			b = append(b, make([]byte, n-len(b))...)[:len(b)]
			continue
		}
		n, err := r.Read(b[len(b):end])
		b = b[:len(b)+n]
		switch {
		case errors.Is(err, io.EOF) && int64(len(b)) <= lim:
			return b, nil
		case errors.Is(err, io.EOF):
			return nil, limit("stream decodes to more than %d bytes", lim)
		case err != nil:
			return nil, err
		}
	}
}

// unpredict undoes a PNG predictor (/Predictor 10 to 15), which xref
// streams use to make their columns compress well.
func (d *doc) unpredict(data []byte, parms Dict) ([]byte, error) {
	pred := intOr(parms["Predictor"], 1)
	if pred == 1 {
		return data, nil
	}
	if pred < 10 || pred > 15 {
		return nil, damaged("unsupported predictor %d", pred)
	}
	colors := intOr(parms["Colors"], 1)
	bpc := intOr(parms["BitsPerComponent"], 8)
	columns := intOr(parms["Columns"], 1)
	if colors < 1 || colors > 32 || columns < 1 || columns > 1<<20 ||
		(bpc != 1 && bpc != 2 && bpc != 4 && bpc != 8 && bpc != 16) {
		return nil, damaged("bad predictor parameters")
	}
	bpp := max(1, int(colors*bpc/8))
	row := int((colors*bpc*columns + 7) / 8)
	out := data[:0] // rows shrink by their tag byte: decode in place
	prev := make([]byte, row)
	for len(data) > row {
		tag, cur := data[0], data[1:row+1]
		// One loop per filter: xref streams are mostly Up (qpdf, Acrobat),
		// and a switch per byte was half of reading their entries.
		switch tag {
		case 0:
		case 1:
			for i := bpp; i < len(cur); i++ {
				cur[i] += cur[i-bpp]
			}
		case 2:
			for i := range cur {
				cur[i] += prev[i]
			}
		case 3:
			for i := range cur {
				var left byte
				if i >= bpp {
					left = cur[i-bpp]
				}
				cur[i] += byte((int(left) + int(prev[i])) / 2)
			}
		case 4:
			for i := range cur {
				var left, upLeft byte
				if i >= bpp {
					left, upLeft = cur[i-bpp], prev[i-bpp]
				}
				cur[i] += paeth(left, prev[i], upLeft)
			}
		default:
			return nil, damaged("bad PNG predictor tag %d", tag)
		}
		copy(prev, cur)
		out = append(out, cur...)
		data = data[row+1:]
	}
	return out, nil
}

func paeth(a, b, c byte) byte {
	p := int(a) + int(b) - int(c)
	pa, pb, pc := abs(p-int(a)), abs(p-int(b)), abs(p-int(c))
	switch {
	case pa <= pb && pa <= pc:
		return a
	case pb <= pc:
		return b
	}
	return c
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func intOr(o Object, def int64) int64 {
	if n, ok := o.(int64); ok {
		return n
	}
	return def
}
