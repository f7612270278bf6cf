package usage

import (
	"context"
	"fmt"
	"io"

	"github.com/creditgate/creditgate/meter"
)

// MaxJSONPart bounds the multipart part read as JSON for pricing
// (Options.JSONPart): it is parsed in memory.
const MaxJSONPart = 16 << 20

// readJSONPart keeps the content of the part Options.JSONPart names in
// u.JSONPart, instead of measuring it as a file. The bytes and their
// parsed form live in memory: about 4x its size is held against the
// Budget until Usage.Release. A second part of that name is refused: the
// upstream would read one of them, and the gateway cannot know which.
func readJSONPart(ctx context.Context, u *Usage, b *Body, opts Options) error {
	if u.JSONPart != nil {
		return meter.Errorf(meter.ECodeBadRequest, "the multipart body has more than one %q part", opts.JSONPart).
			With("part", opts.JSONPart)
	}
	if b.Size() > MaxJSONPart {
		return meter.Errorf(meter.ECodeBodyTooLarge, "the %q part priced by its JSON may be at most %d bytes", opts.JSONPart, MaxJSONPart).
			With("max_body", MaxJSONPart)
	}
	release, err := opts.Budget.Hold(ctx, 4*b.Size())
	if err != nil {
		return err
	}
	u.holds = append(u.holds, release)
	data := make([]byte, b.Size())
	if _, err := io.ReadFull(b.Reader(), data); err != nil {
		return fmt.Errorf("usage: read part: %w", err)
	}
	u.JSONPart = data
	return nil
}

// Release gives back the memory held for JSONPart; the caller calls it
// once it no longer needs JSONPart (when the request ends). Safe to call
// more than once.
func (u *Usage) Release() {
	for _, r := range u.holds {
		r()
	}
	u.holds = nil
}
