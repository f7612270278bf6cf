// Package usage measures what a metered request consumes: the files it
// carries and their pages. It spools the body once (memory or temp file,
// bounded by Options.MaxBody) so the upstream still gets the exact bytes.
package usage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"strings"
	"time"

	"github.com/creditgate/creditgate/meter"
)

// File kinds.
const (
	KindPDF   = "pdf"
	KindImage = "image"
	KindOther = "other"
)

// Options bound the work of measuring one request.
type Options struct {
	// MaxBody is the largest body accepted, in bytes; a larger one is a
	// body_too_large error with detail max_body. Default 100 MiB.
	MaxBody int64
	// MemoryThreshold is the largest body (or multipart part) kept in
	// memory; larger ones are spooled to a temp file. Default 1 MiB.
	MemoryThreshold int64
	// TempDir holds spool files. Default os.TempDir().
	TempDir string
	// SizeHint is the body's declared size (Content-Length), when known:
	// Spool sizes its memory buffer by it. 0 or less: unknown.
	SizeHint int64
	// MaxFiles is the most multipart parts inspected, form fields
	// included; one more is a bad_request. Default 100.
	MaxFiles int
	// MaxPages is the most pages of one request, all its documents
	// together: the caller refuses more (too_many_pages), and bounds each
	// of the request's documents by it (PDF.MaxPages), so that counting
	// stops as soon as one is known to exceed it. Default 100,000.
	MaxPages int64
	// CountTimeout bounds the measuring of one request's body: the
	// caller's deadline for MeasureEncoded. Default 10 s.
	CountTimeout time.Duration
	// PDF bounds the work of reading one PDF.
	PDF PDFLimits
	// Budget, when set, bounds the memory of reading PDFs across all the
	// requests that share it: a document that cannot get its share within
	// the budget's wait is a server_busy error, one that needs more than
	// the whole budget is unreadable (too_large). Default nil: unlimited.
	// Decoding a Content-Encoding and the documents of a JSON body draw
	// from it too.
	Budget *Budget
	// JSONDocuments says which strings of a JSON body are documents
	// (base64): by default every string is tried.
	JSONDocuments JSONDocs
	// JSONPart names the top-level multipart form field whose content
	// (after its transfer encoding) is returned in Usage.JSONPart, for
	// pricing, instead of being measured as a file: PSPDFKit's
	// `instructions`. Default "": none.
	JSONPart string
	// PartOnly, with JSONPart, reads that part and only classifies the
	// other top-level parts by their bytes (Kind, no pages counted), for
	// routes not priced by pages: the JSON may name them (TypedJSONPart).
	PartOnly bool
}

const (
	defaultMaxBody         = 100 << 20
	defaultMemoryThreshold = 1 << 20
	defaultMaxFiles        = 100
	defaultMaxPages        = 100_000
	defaultCountTimeout    = 10 * time.Second
)

// WithDefaults returns o with every zero (or negative) bound set to its
// default: the one place the measuring defaults are written.
func (o Options) WithDefaults() Options { return o.withDefaults() }

func (o Options) withDefaults() Options {
	if o.MaxBody <= 0 {
		o.MaxBody = defaultMaxBody
	}
	if o.MemoryThreshold <= 0 {
		o.MemoryThreshold = defaultMemoryThreshold
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = defaultMaxFiles
	}
	if o.MaxPages <= 0 {
		o.MaxPages = defaultMaxPages
	}
	if o.CountTimeout <= 0 {
		o.CountTimeout = defaultCountTimeout
	}
	o.PDF = o.PDF.withDefaults()
	return o
}

// File is one input file found in a request.
type File struct {
	Name        string // multipart filename, else form name, else JSON path; "" for a raw body
	Field       string // form name of a top-level multipart part; "" otherwise
	ContentType string // media type as declared, without parameters
	Kind        string // KindPDF, KindImage or KindOther, from the content
	Size        int64  // bytes, decoded (Content-Encoding, transfer encoding, base64)
	Pages       int    // PDF pages; 1 for an image; 0 otherwise
	// PageSizes has the distinct boxes of the PDF's pages with how many
	// pages have each, for page classes by size; nil for other kinds.
	PageSizes []PageSize
}

// Usage is what one request consumes.
type Usage struct {
	Files []File
	Pages int // sum of Files[i].Pages
	// Unpriced counts what the pages cannot price: the raw body, each
	// named multipart file and each JSON field chosen by JSONDocuments
	// that is neither a PDF nor an image, and a non-empty body in which
	// no PDF or image was found at all (once). A page-priced route
	// refuses or charges it (the gateway's `unpriced` option).
	Unpriced int
	// JSONPart is the content of the multipart part Options.JSONPart
	// names; nil when the body has none. See Release.
	JSONPart []byte

	holds []func() // budget held for JSONPart
}

func (u *Usage) add(f File) {
	u.Files = append(u.Files, f)
	u.Pages += f.Pages
}

// Measure is MeasureEncoded for a body without Content-Encoding.
func Measure(ctx context.Context, contentType string, body *Body, opts Options) (Usage, error) {
	return MeasureEncoded(ctx, contentType, "", body, opts)
}

// MeasureEncoded reads body, sent with the given Content-Type and
// Content-Encoding headers, and counts its files and pages. What each
// file is comes from its bytes (sniff.go); the declared types are hints.
// A body with a Content-Encoding is decoded for counting (encoding.go),
// a multipart body part by part (multipart.go), a JSON body for the
// documents it carries base64-encoded (jsondocs.go). Each PDF is read
// within opts.PDF.Timeout (10 s by default) and within ctx's deadline,
// whichever comes first. Errors are *meter.Error with codes bad_request
// (malformed multipart, Content-Type or encoded data), body_too_large (a
// decoded body over its bounds), unsupported_encoding, server_busy or
// unreadable_document (a PDF that cannot be read); anything else is
// internal.
func MeasureEncoded(ctx context.Context, contentType, contentEncoding string, body *Body, opts Options) (Usage, error) {
	opts = opts.withDefaults()
	if body.Size() == 0 {
		return Usage{}, nil
	}
	mediaType, params, err := parseContentType(contentType)
	if err != nil {
		return Usage{}, err
	}
	if hasEncoding(contentEncoding) {
		decoded, err := decodeBody(ctx, body, contentEncoding, opts)
		if err != nil {
			return Usage{}, err
		}
		defer decoded.Close()
		body = decoded
	}
	var u Usage
	if strings.HasPrefix(mediaType, "multipart/") {
		if err := measureMultipart(ctx, &u, body.Reader(), params["boundary"], opts, 0, new(int)); err != nil {
			u.Release()
			return Usage{}, err
		}
	} else if err := measureRaw(ctx, &u, mediaType, body, opts); err != nil {
		return Usage{}, err
	}
	if u.Pages == 0 && u.Unpriced == 0 {
		u.Unpriced = 1 // nothing in the body could be priced
	}
	return u, nil
}

// measureRaw measures a body that is one file, or a JSON document that
// carries files.
func measureRaw(ctx context.Context, u *Usage, mediaType string, body *Body, opts Options) error {
	f := File{ContentType: mediaType, Size: body.Size()}
	if err := measureFile(ctx, &f, body, opts); err != nil {
		return err
	}
	if f.Kind == KindOther && opts.JSONDocuments.Mode != JSONOff && looksLikeJSON(body) {
		n, err := measureJSON(ctx, u, body, opts)
		if err != nil || n > 0 {
			return err
		}
	}
	u.add(f)
	if f.Kind == KindOther {
		u.Unpriced++
	}
	return nil
}

// marksOf returns the PDF marks of a body, scanning it unless its spool
// already did.
func marksOf(b *Body) (*markScan, error) {
	if b.marks != nil {
		return b.marks, nil
	}
	if b.file == nil {
		// In memory: scanned where it lies, not copied.
		b.memMu.RLock()
		defer b.memMu.RUnlock()
		if b.closed {
			return nil, os.ErrClosed
		}
		s := newMarkScan()
		s.Write(b.mem)
		return s, nil
	}
	return scanMarks(b.ReaderAt(), b.Size())
}

// measureFile classifies the file in body from its content, f's declared
// type and name being hints, and counts its pages.
func measureFile(ctx context.Context, f *File, body *Body, opts Options) error {
	v, err := verdictOf(body, f.ContentType, f.Name)
	if err != nil {
		return err
	}
	f.Kind = v.kind
	return countFile(ctx, f, body.ReaderAt(), v, opts)
}

// kindOf is the kind of a file told by its bytes, without counting it.
func kindOf(body *Body, mediaType, name string) (string, error) {
	v, err := verdictOf(body, mediaType, name)
	return v.kind, err
}

func verdictOf(body *Body, mediaType, name string) (verdict, error) {
	marks, err := marksOf(body)
	if err != nil {
		return verdict{}, fmt.Errorf("usage: read body: %w", err)
	}
	head, err := readHead(body.ReaderAt(), body.Size())
	if err != nil {
		return verdict{}, fmt.Errorf("usage: read body: %w", err)
	}
	return decide(marks, head, mediaType, name), nil
}

// parseContentType returns the lower-case media type and its parameters. A
// missing Content-Type is "" (the body is sniffed). Parameters that fail to
// parse are dropped, as net/http does, except on multipart where the
// boundary is needed.
func parseContentType(contentType string) (string, map[string]string, error) {
	if strings.TrimSpace(contentType) == "" {
		return "", nil, nil
	}
	if strings.EqualFold(contentType, "application/pdf") {
		// What ParseMediaType returns for it, without its map.
		return "application/pdf", nil, nil
	}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if errors.Is(err, mime.ErrInvalidMediaParameter) && !strings.HasPrefix(mediaType, "multipart/") {
		err = nil
	}
	if err != nil {
		return "", nil, &meter.Error{Code: meter.ECodeBadRequest,
			Message: "the Content-Type header is malformed", Err: err}
	}
	return mediaType, params, nil
}

func isPDFType(mediaType string) bool {
	return mediaType == "application/pdf" || mediaType == "application/x-pdf"
}

// countFile sets f.Pages (and f.PageSizes) from the file's content read
// from r, which is never loaded whole unless the fallback reader runs. A
// PDF after junk is read from its "%PDF-", where readers take its offsets
// from, then whole (readers also rebuild offsets that count the junk). A
// non-strict PDF that cannot be read takes its verdict's other kind.
func countFile(ctx context.Context, f *File, r io.ReaderAt, v verdict, opts Options) error {
	switch f.Kind {
	case KindImage:
		f.Pages = 1
	case KindPDF:
		from := r
		if v.pdfAt > 0 {
			from = io.NewSectionReader(r, v.pdfAt, f.Size-v.pdfAt)
		}
		info, err := readSpooled(ctx, from, f.Size-v.pdfAt, opts.PDF, opts.Budget)
		if err != nil && v.pdfAt > 0 && meter.ErrorCode(err) == meter.ECodeUnreadableDocument {
			info, err = readSpooled(ctx, r, f.Size, opts.PDF, opts.Budget)
		}
		if err != nil && !v.strict && meter.ErrorCode(err) == meter.ECodeUnreadableDocument {
			f.Kind = v.otherwise
			return countFile(ctx, f, r, verdict{kind: v.otherwise}, opts)
		}
		if err != nil {
			var e *meter.Error
			if f.Name != "" && errors.As(err, &e) {
				return e.With("file", f.Name)
			}
			return err
		}
		f.Pages, f.PageSizes = info.Pages, info.Sizes
	}
	return nil
}
