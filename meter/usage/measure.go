// Package usage measures what a metered request consumes: the files it
// carries and their pages. It spools the body once (memory or temp file,
// bounded by Options.MaxBody) so the upstream still gets the exact bytes.
package usage

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"strings"

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
	// PDF bounds the work of reading one PDF.
	PDF PDFLimits
	// Budget, when set, bounds the memory of reading PDFs across all the
	// requests that share it: a document that cannot get its share within
	// the budget's wait is a server_busy error, one that needs more than
	// the whole budget is unreadable (too_large). Default nil: unlimited.
	Budget *Budget
}

const (
	defaultMaxBody         = 100 << 20
	defaultMemoryThreshold = 1 << 20
	defaultMaxFiles        = 100
)

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
	o.PDF = o.PDF.withDefaults()
	return o
}

// File is one input file found in a request.
type File struct {
	Name        string // multipart filename, else form name; "" for a raw body
	ContentType string // media type as declared, without parameters
	Kind        string // KindPDF, KindImage or KindOther
	Size        int64  // bytes
	Pages       int    // PDF pages; 1 for an image; 0 otherwise
	// PageSizes has the distinct boxes of the PDF's pages with how many
	// pages have each, for page classes by size; nil for other kinds.
	PageSizes []PageSize
}

// Usage is what one request consumes.
type Usage struct {
	Files []File
	Pages int // sum of Files[i].Pages
}

func (u *Usage) add(f File) {
	u.Files = append(u.Files, f)
	u.Pages += f.Pages
}

// Measure reads body according to contentType and counts its files and
// pages. Each PDF is read within opts.PDF.Timeout (10 s by default) and
// within ctx's deadline, whichever comes first. Errors are *meter.Error with
// codes bad_request (malformed multipart or Content-Type) or
// unreadable_document (a PDF that cannot be read); anything else is internal.
func Measure(ctx context.Context, contentType string, body *Body, opts Options) (Usage, error) {
	opts = opts.withDefaults()
	if body.Size() == 0 {
		return Usage{}, nil
	}
	mediaType, params, err := parseContentType(contentType)
	if err != nil {
		return Usage{}, err
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		return measureMultipart(ctx, body.Reader(), params["boundary"], opts)
	}

	f := File{ContentType: mediaType, Size: body.Size()}
	// Most bodies declare their type: the 1 KB sniffing buffer is made
	// only for those that do not.
	kind, ok := declaredKind(mediaType, "")
	if !ok {
		kind, err = sniff(bufio.NewReaderSize(body.Reader(), sniffLen))
		if err != nil {
			return Usage{}, err
		}
	}
	f.Kind = kind
	if err := countFile(ctx, &f, body.ReaderAt(), opts); err != nil {
		return Usage{}, err
	}
	var u Usage
	u.add(f)
	return u, nil
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

// sniffLen is how far into a file "%PDF-" is looked for: PDF readers accept
// a header within the first 1024 bytes.
const sniffLen = 1024

// classify returns the kind of a file from its declared media type, its
// name and, for untyped or octet-stream files, its first bytes.
func classify(mediaType, name string, head *bufio.Reader) (string, error) {
	if kind, ok := declaredKind(mediaType, name); ok {
		return kind, nil
	}
	return sniff(head)
}

// declaredKind is the kind of a file told by its media type or name;
// false when its first bytes must tell.
func declaredKind(mediaType, name string) (string, bool) {
	switch {
	case isPDFType(mediaType):
		return KindPDF, true
	case strings.HasPrefix(mediaType, "image/"):
		return KindImage, true
	case mediaType != "" && mediaType != "application/octet-stream":
		return KindOther, true
	case strings.HasSuffix(strings.ToLower(name), ".pdf"):
		return KindPDF, true
	}
	return "", false
}

// sniff tells a PDF by "%PDF-" in its first bytes.
func sniff(head *bufio.Reader) (string, error) {
	b, err := head.Peek(sniffLen)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return "", err
	}
	if bytes.Contains(b, []byte("%PDF-")) {
		return KindPDF, nil
	}
	return KindOther, nil
}

func isPDFType(mediaType string) bool {
	return mediaType == "application/pdf" || mediaType == "application/x-pdf"
}

// countFile sets f.Pages (and f.PageSizes) from the file's content read
// from r, which is never loaded whole unless the fallback reader runs.
func countFile(ctx context.Context, f *File, r io.ReaderAt, opts Options) error {
	switch f.Kind {
	case KindImage:
		f.Pages = 1
	case KindPDF:
		info, err := readPDF(ctx, r, f.Size, opts.PDF, opts.Budget)
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
