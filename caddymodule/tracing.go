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
// when a span is started. traced is traced(ctx) of the request, looked up
// once per request: the lookup walks Caddy's chain of context values.
//
// Without `tracing` the request has no span, and the child would be the
// same no-op span: then ctx is returned as it is, at no cost (tracer
// lookup, context and options were ~6 allocations per span, 5 spans per
// request, and the attributes' formatting).
func startSpan(ctx context.Context, traced bool, name string, attrs func() []attribute.KeyValue) (context.Context, trace.Span) {
	if !traced {
		return ctx, noSpan
	}
	var opts []trace.SpanStartOption
	if attrs != nil {
		opts = append(opts, trace.WithAttributes(attrs()...))
	}
	return trace.SpanFromContext(ctx).TracerProvider().Tracer(tracerName).Start(ctx, name, opts...)
}

// traced says whether ctx carries a span (a valid one: no-op spans have
// none) to start children of.
func traced(ctx context.Context) bool {
	return trace.SpanContextFromContext(ctx).IsValid()
}

// noSpan is the no-op span that trace.SpanFromContext returns for a
// context without a span.
var noSpan = trace.SpanFromContext(context.Background())

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
