package caddymodule

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/creditgate/creditgate/meter"
)

const tracerName = "github.com/creditgate/creditgate/caddymodule"

// startSpan starts a child of the request's span with the tracer provider
// of that span: the one Caddy's `tracing` directive set up and exports
// with. attrs, if not nil, gives the span's attributes; it is called only
// when a span is started.
//
// Without `tracing` the request has no span, and the child would be the
// same no-op span: then ctx is returned as it is, at no cost (tracer
// lookup, context and options were ~6 allocations per span, 5 spans per
// request, and the attributes' formatting).
func startSpan(ctx context.Context, name string, attrs func() []attribute.KeyValue) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.SpanContext().IsValid() {
		return ctx, parent
	}
	var opts []trace.SpanStartOption
	if attrs != nil {
		opts = append(opts, trace.WithAttributes(attrs()...))
	}
	return parent.TracerProvider().Tracer(tracerName).Start(ctx, name, opts...)
}

// endSpan ends span, recording err (by its code, never its text: it may
// carry request data).
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, meter.ErrorCode(err))
	}
	span.End()
}

// Span names.
const (
	spanAuthenticate = "meter.authenticate"
	spanMeasure      = "meter.measure"
	spanPrice        = "meter.price"
	spanReserve      = "meter.reserve"
	spanUpstream     = "meter.upstream"
	spanSettle       = "meter.settle"
)

// Span attribute keys. Never the API key.
var (
	attrAccount = attribute.Key("meter.account")
	attrRoute   = attribute.Key("meter.route")
	attrPages   = attribute.Key("meter.pages")
	attrCost    = attribute.Key("meter.cost")
	attrOutcome = attribute.Key("meter.outcome")
	attrCharged = attribute.Key("meter.charged")
)
