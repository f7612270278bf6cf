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
// with. Without `tracing`, the parent is a no-op span and so is this one,
// at the cost of an interface call.
func startSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	tp := trace.SpanFromContext(ctx).TracerProvider()
	return tp.Tracer(tracerName).Start(ctx, "meter."+name, trace.WithAttributes(attrs...))
}

// endSpan ends span, recording err (by its code, never its text: it may
// carry request data).
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.SetStatus(codes.Error, meter.ErrorCode(err))
	}
	span.End()
}

// Span attribute keys. Never the API key.
var (
	attrAccount = attribute.Key("meter.account")
	attrRoute   = attribute.Key("meter.route")
	attrPages   = attribute.Key("meter.pages")
	attrCost    = attribute.Key("meter.cost")
	attrOutcome = attribute.Key("meter.outcome")
	attrCharged = attribute.Key("meter.charged")
)
