package caddymodule

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/creditgate/creditgate/meter"
	"github.com/creditgate/creditgate/meter/pricing"
	"github.com/creditgate/creditgate/meter/usage"
)

// Values of Handler.Unpriced.
const (
	unpricedRefuse = "refuse"
	unpricedCharge = "charge"
)

// provisionContent checks the content options and applies them: the
// unpriced charge becomes a rule of the route, the JSON document queries
// a selector.
func (h *Handler) provisionContent() error {
	switch h.Unpriced {
	case "", unpricedRefuse:
		if h.UnpricedCredits != 0 {
			return errors.New("meter: unpriced_credits needs unpriced charge")
		}
	case unpricedCharge:
		if h.UnpricedCredits < 0 {
			return errors.New("meter: unpriced_credits must not be negative")
		}
		if h.needs.Pages {
			h.rules = append(h.rules, unpricedRule{credits: h.UnpricedCredits})
		}
	default:
		return fmt.Errorf("meter: unpriced %q: expected refuse or charge", h.Unpriced)
	}
	docs, err := jsonDocs(h.JSONDocuments)
	if err != nil {
		return err
	}
	h.uopts.JSONDocuments = docs
	return nil
}

// jsonDocs turns the json_documents option into usage's form.
func jsonDocs(queries []string) (usage.JSONDocs, error) {
	switch {
	case len(queries) == 0 || len(queries) == 1 && queries[0] == "auto":
		return usage.JSONDocs{Mode: usage.JSONAuto}, nil
	case len(queries) == 1 && queries[0] == "off":
		return usage.JSONDocs{Mode: usage.JSONOff}, nil
	}
	sel, err := pricing.CompileStringSelector(queries)
	if err != nil {
		return usage.JSONDocs{}, fmt.Errorf("meter: json_documents: %w", err)
	}
	return usage.JSONDocs{Mode: usage.JSONSelect, Select: sel.Strings}, nil
}

// unpricedError refuses a request on a page-priced route that carries
// content its pages cannot price.
func unpricedError(u usage.Usage) error {
	var names []string
	for _, f := range u.Files {
		if f.Kind == usage.KindOther && f.Name != "" && len(names) < 10 {
			names = append(names, f.Name)
		}
	}
	msg := "this route is priced by the pages of PDF and image documents, and the request carries content that is neither"
	if len(names) > 0 {
		msg += ": " + strings.Join(names, ", ")
	}
	e := meter.Errorf(meter.ECodeUnsupportedContent, "%s", msg).With("unpriced", u.Unpriced)
	if len(names) > 0 {
		e = e.With("files", names)
	}
	return e
}

// unpricedRule charges its credits for each thing in the request that the
// pages cannot price (usage.Usage.Unpriced), on a route configured with
// `unpriced charge <credits>`.
type unpricedRule struct{ credits meter.Credits }

func (r unpricedRule) Lines(in pricing.Input) ([]pricing.Line, error) {
	n := int64(in.Usage.Unpriced)
	if n == 0 {
		return nil, nil
	}
	if r.credits > 0 && n > math.MaxInt64/int64(r.credits) {
		return nil, meter.Errorf(meter.ECodeInvalid, "the unpriced charge overflows")
	}
	return []pricing.Line{{Name: "unpriced", Units: n, UnitCost: r.credits, Cost: meter.Credits(n) * r.credits,
		Source: "content that is not a PDF or an image"}}, nil
}

func (r unpricedRule) Final(in pricing.Input, _ pricing.Response) ([]pricing.Line, error) {
	return r.Lines(in)
}

func (unpricedRule) Needs() pricing.Needs { return pricing.Needs{Pages: true} }
