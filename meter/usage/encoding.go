package usage

// Content-Encoding: a compressed request body is forwarded as the client
// sent it, and decoded here only to be counted.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	kflate "github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"

	"github.com/creditgate/creditgate/meter"
)

// Bounds of a decoded body, besides MaxBody: it may be at most
// maxEncodingRatio times its encoded size, or encodingRatioFloor bytes
// when that is more (a small body may compress well). Real documents
// compress from 1x (scans) to about 10x; 100x is a compression bomb.
const (
	maxEncodingRatio   = 100
	encodingRatioFloor = 1 << 20
	// maxEncodings is the most codings stacked in one Content-Encoding.
	maxEncodings = 2
	// zstdWindow caps the window a zstd body may ask for (the format
	// allows up to 3.75 TB); 8 MB is what zstd uses up to level 19.
	zstdWindow = 8 << 20
	// brotliWindow is the largest window of brotli's standard format.
	brotliWindow = 16 << 20
)

// hasEncoding reports whether a Content-Encoding header asks for
// decoding: anything but empty or identity.
func hasEncoding(ce string) bool {
	for _, c := range strings.Split(ce, ",") {
		if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
			return true
		}
	}
	return false
}

// codings parses a Content-Encoding header into its codings, in the order
// they were applied. Unknown codings are unsupported_encoding.
func codings(ce string) ([]string, error) {
	var out []string
	for _, c := range strings.Split(ce, ",") {
		c = strings.ToLower(strings.TrimSpace(c))
		switch c {
		case "", "identity":
			continue
		case "gzip", "x-gzip", "deflate", "br", "zstd":
		default:
			return nil, meter.Errorf(meter.ECodeUnsupportedEncoding,
				"Content-Encoding %q is not supported: send the body as is, or with gzip, deflate, br or zstd", c).
				With("supported", []string{"gzip", "deflate", "br", "zstd"})
		}
		out = append(out, c)
	}
	if len(out) > maxEncodings {
		return nil, meter.Errorf(meter.ECodeUnsupportedEncoding,
			"the body is encoded %d times; at most %d Content-Encodings are decoded", len(out), maxEncodings)
	}
	return out, nil
}

// decodeBody decodes body by its Content-Encoding into a new Body (memory
// up to MemoryThreshold, then a temp file), within MaxBody and the ratio
// bound. The decoders' windows and the memory part of the result are held
// from opts.Budget until the result is closed.
func decodeBody(ctx context.Context, body *Body, ce string, opts Options) (*Body, error) {
	cs, err := codings(ce)
	if err != nil {
		return nil, err
	}
	need := min(opts.MemoryThreshold, opts.MaxBody)
	for _, c := range cs {
		switch c {
		case "zstd":
			need += 2 * zstdWindow
		case "br":
			need += brotliWindow + 1<<20
		default:
			need += 64 << 10
		}
	}
	release, err := opts.Budget.Hold(ctx, need)
	if err != nil {
		return nil, err
	}
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	var r io.Reader = body.Reader()
	for i := len(cs) - 1; i >= 0; i-- {
		c := cs[i]
		dr, closeFn, err := decoder(c, r)
		if err != nil {
			release()
			return nil, badEncoding(c, err)
		}
		closers = append(closers, closeFn)
		r = &codingError{r: dr, coding: c}
	}

	limit := min(opts.MaxBody, max(encodingRatioFloor, maxEncodingRatio*body.Size()))
	b, err := spoolScanned(r, Options{MaxBody: limit, MemoryThreshold: opts.MemoryThreshold, TempDir: opts.TempDir})
	var ce2 *codingError
	switch {
	case err == nil:
	case meter.ErrorCode(err) == meter.ECodeBodyTooLarge && limit < opts.MaxBody:
		err = meter.Errorf(meter.ECodeBodyTooLarge,
			"the body decodes to more than %d times its size: a compression bomb is not counted", maxEncodingRatio).
			With("max_ratio", maxEncodingRatio)
	case meter.ErrorCode(err) == meter.ECodeBodyTooLarge:
		err = meter.Errorf(meter.ECodeBodyTooLarge, "the request body decodes to more than %d bytes", opts.MaxBody).
			With("max_body", opts.MaxBody)
	case errors.As(err, &ce2):
		err = badEncoding(ce2.coding, ce2.err)
	}
	if err != nil {
		release()
		return nil, err
	}
	b.OnClose(release)
	return b, nil
}

// decoder returns the decoding reader of one coding and what closes it.
func decoder(c string, r io.Reader) (io.Reader, func(), error) {
	switch c {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { zr.Close() }, nil
	case "deflate":
		// HTTP's deflate is zlib (RFC 9110); some clients send raw
		// DEFLATE, which is read as such when the zlib header is absent.
		br := bufio.NewReader(r)
		if h, err := br.Peek(2); err == nil && (uint16(h[0])<<8|uint16(h[1]))%31 == 0 && h[0]&0x0f == 8 {
			zr, err := zlib.NewReader(br)
			if err != nil {
				return nil, nil, err
			}
			return zr, func() { zr.Close() }, nil
		}
		fr := kflate.NewReader(br)
		return fr, func() { fr.Close() }, nil
	case "br":
		return brotli.NewReader(r), func() {}, nil
	case "zstd":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdWindow))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return nil, nil, fmt.Errorf("unknown coding %q", c)
}

// codingError marks the errors of a decoder, to tell them from the
// spool's own.
type codingError struct {
	r      io.Reader
	coding string
	err    error
}

func (c *codingError) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		if _, ok := err.(*codingError); !ok {
			err = &codingError{coding: c.coding, err: err}
		}
	}
	return n, err
}

func (c *codingError) Error() string { return c.coding + ": " + c.err.Error() }

func badEncoding(c string, err error) error {
	return &meter.Error{Code: meter.ECodeBadRequest,
		Message: fmt.Sprintf("the request body is not valid %s data, as its Content-Encoding says", c), Err: err}
}
