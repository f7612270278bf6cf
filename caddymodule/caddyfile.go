package caddymodule

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"

	"github.com/creditgate/creditgate/meter"
)

func init() {
	httpcaddyfile.RegisterGlobalOption("meter", parseGlobalOption)
	httpcaddyfile.RegisterHandlerDirective("meter", parseDirective[Handler])
	// The meter handlers authenticate: they run next to basic_auth and
	// forward_auth, before every directive that can answer a request
	// (handle, route, respond, reverse_proxy, php_fastcgi, file_server...),
	// or `meter` followed by `respond` in one block would never run. After
	// encode, as before: a compressed answer would hide the JSON that
	// billing merges into and the PDF whose pages are counted.
	httpcaddyfile.RegisterDirectiveOrder("meter", httpcaddyfile.After, "encode")
	httpcaddyfile.RegisterDirectiveOrder("meter_job", httpcaddyfile.Before, "push")
	httpcaddyfile.RegisterDirectiveOrder("meter_api", httpcaddyfile.Before, "push")
}

// parseGlobalOption parses the `meter` global option into the meter app.
func parseGlobalOption(d *caddyfile.Dispenser, existing any) (any, error) {
	if existing != nil {
		return nil, d.Err("the meter global option may appear only once")
	}
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "meter", Value: mustJSON(app)}, nil
}

// UnmarshalCaddyfile sets up the app from Caddyfile tokens. Syntax:
//
//	meter {
//		redis          <url>|off
//		redis_cluster  <host:port>...
//		redis_sentinel <master> <host:port>...
//		redis_password <password>
//		redis_tls
//		redis_pipeline
//		redis_batch    <n>
//		redis_lease    [off|<min_rate>]
//		data_dir       <path>
//		job_secret     <secret>
//		key_cache_ttl  <duration>
//		store_timeout  <duration>
//		count_memory   <size>
//		ledger_retention   <duration>
//		retention_interval <duration>
//		idempotency_ttl <duration>
//		zero_cost_rate    <per_second>|off [<burst>]
//		cost_header       <header>
//		remaining_header  <header>
//		webhook <url> {
//			secret <whsec_...>
//		}
//		webhook_interval      <duration>
//		webhook_timeout       <duration>
//		webhook_backoff       <duration>
//		webhook_max_age       <duration>
//		webhook_scan_interval <duration>
//		plan <name> {
//			<setting> <value>   (see unmarshalPlan)
//		}
//		default_plan <name>
//	}
//
// webhook and plan may be repeated, one per endpoint or plan. `redis off` keeps the
// embedded store: it lets one Caddyfile say `redis {$CREDITGATE_REDIS:off}`
// and run on Redis only when the variable is set. An unset variable
// without that default still fails, so a production config that forgot
// its Redis URL never splits its ledger into one store per gateway.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the option name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		sub := d.Val()
		if seen[sub] && sub != "webhook" && sub != "plan" {
			return d.Errf("meter: %s given more than once", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "webhook":
			err = a.unmarshalWebhook(d)
		case "webhook_interval":
			a.WebhookInterval, err = durationArg(d)
		case "webhook_timeout":
			a.WebhookTimeout, err = durationArg(d)
		case "webhook_backoff":
			a.WebhookBackoff, err = durationArg(d)
		case "webhook_max_age":
			a.WebhookMaxAge, err = durationArg(d)
		case "webhook_scan_interval":
			a.WebhookScanInterval, err = durationArg(d)
		case "redis":
			if a.Redis, err = oneArg(d); a.Redis == "off" {
				a.Redis = ""
			}
		case "redis_cluster", "redis_sentinel":
			args := d.RemainingArgs()
			if len(args) == 0 {
				return d.Errf("meter: %s needs addresses", sub)
			}
			if sub == "redis_cluster" {
				a.RedisCluster = args
			} else {
				a.RedisSentinel = args
			}
		case "redis_password":
			a.RedisPassword, err = oneArg(d)
		case "redis_tls":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.RedisTLS = true
		case "redis_pipeline":
			if d.NextArg() {
				return d.ArgErr()
			}
			a.RedisPipeline = true
		case "redis_batch":
			var v string
			if v, err = oneArg(d); err == nil {
				a.RedisBatch, err = strconv.Atoi(v)
				if err != nil || a.RedisBatch < 1 || a.RedisBatch > maxRedisBatch {
					return d.Errf("meter: redis_batch %q is not a number from 1 to %d", v, maxRedisBatch)
				}
			}
		case "redis_lease":
			a.RedisLease = &RedisLease{}
			if d.NextArg() {
				v := d.Val()
				if v == "off" {
					a.RedisLease.Off = true
				} else if a.RedisLease.MinRate, err = strconv.Atoi(v); err != nil || a.RedisLease.MinRate < 1 {
					return d.Errf("meter: redis_lease %q is neither off nor a rate of at least 1 request per second", v)
				}
				if d.NextArg() {
					return d.ArgErr()
				}
			}
		case "data_dir":
			a.DataDir, err = oneArg(d)
		case "job_secret":
			a.JobSecret, err = oneArg(d)
		case "key_cache_ttl":
			a.KeyCacheTTL, err = durationArg(d)
		case "store_timeout":
			a.StoreTimeout, err = durationArg(d)
		case "count_memory":
			a.CountMemory, err = sizeArg(d)
		case "ledger_retention":
			a.LedgerRetention, err = durationArg(d)
		case "retention_interval":
			a.RetentionInterval, err = durationArg(d)
		case "idempotency_ttl":
			a.IdempotencyTTL, err = durationArg(d)
		case "zero_cost_rate":
			err = a.unmarshalZeroCostRate(d)
		case "cost_header":
			a.CostHeader, err = moneyHeaderArg(d)
		case "remaining_header":
			a.RemainingHeader, err = moneyHeaderArg(d)
		case "plan":
			err = a.unmarshalPlan(d)
		case "default_plan":
			if a.DefaultPlan, err = oneArg(d); err == nil {
				if perr := meter.ValidatePlanName(a.DefaultPlan); perr != nil {
					return d.Errf("meter: default_plan: %v", perr)
				}
			}
		default:
			return d.Errf("meter: unknown option %q (expected redis, redis_cluster, redis_sentinel, redis_password, redis_tls, redis_pipeline, redis_batch, data_dir, job_secret, key_cache_ttl, store_timeout, count_memory, ledger_retention, retention_interval, idempotency_ttl, zero_cost_rate, cost_header, remaining_header, webhook, webhook_interval, webhook_timeout, webhook_backoff, webhook_max_age, webhook_scan_interval, plan or default_plan)", sub)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unmarshalWebhook parses `webhook <url> { secret <whsec_...> }`.
func (a *App) unmarshalWebhook(d *caddyfile.Dispenser) error {
	var w Webhook
	var err error
	if w.URL, err = oneArg(d); err != nil {
		return err
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		switch d.Val() {
		case "secret":
			if w.Secret != "" {
				return d.Errf("meter: webhook %s: secret given more than once", w.URL)
			}
			if w.Secret, err = oneArg(d); err != nil {
				return err
			}
		default:
			return d.Errf("meter: webhook %s: unknown option %q (expected secret)", w.URL, d.Val())
		}
	}
	if w.Secret == "" {
		return d.Errf("meter: webhook %s needs a secret: webhook <url> { secret whsec_... }", w.URL)
	}
	a.Webhooks = append(a.Webhooks, w)
	return nil
}

// directive is a handler that reads its own Caddyfile block.
type directive[T any] interface {
	*T
	caddyhttp.MiddlewareHandler
	caddyfile.Unmarshaler
}

// parseDirective is the parse function of every meter handler directive:
// a new T that unmarshals its block.
func parseDirective[T any, P directive[T]](h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	p := P(new(T))
	return p, p.UnmarshalCaddyfile(h.Dispenser)
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	meter {
//		per_page         <credits>   # and the other pricing rules: see unmarshalPricing
//		route            <name>
//		key_header       <header>
//		max_body         <size>
//		memory_threshold <size>
//		temp_dir         <path>
//		max_files        <n>
//		max_pages        <n>
//		count_timeout    <duration>
//		reservation_ttl  <duration>
//		test             simulate|forward
//		test_limit       <n>[/day]
//		unpriced         refuse | charge <credits>
//		json_documents   auto | off | <query>...
//		idempotency_max_response <size>|off
//		billing [<field>] [snake|camel]
//		cost_header      <header>
//		remaining_header <header>
//		job {
//			ttl            <duration>
//			upstream_id    json <query> | header <name>
//			declared_bytes <query>
//			pages_per_mb   <n>
//			progress_url   <url>
//			retention      <duration>
//		}
//	}
//
// At least one pricing rule (per_page) is required.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		sub := d.Val()
		// Pricing rules may repeat; see pricing_caddyfile.go.
		if ok, err := h.unmarshalPricing(d); ok {
			if err != nil {
				return err
			}
			continue
		}
		if seen[sub] {
			return d.Errf("meter: %s given more than once", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "route":
			h.Route, err = oneArg(d)
		case "key_header":
			if h.KeyHeader, err = oneArg(d); err == nil && isMeterHeader(h.KeyHeader) {
				err = d.Errf("meter: key_header %q: X-Meter-* request headers are the gateway's own", h.KeyHeader)
			}
		case "max_body":
			h.MaxBody, err = sizeArg(d)
		case "memory_threshold":
			h.MemoryThreshold, err = sizeArg(d)
		case "temp_dir":
			h.TempDir, err = oneArg(d)
		case "max_files":
			var s string
			if s, err = oneArg(d); err == nil {
				h.MaxFiles, err = strconv.Atoi(s)
				if err != nil || h.MaxFiles < 1 {
					err = d.Errf("meter: max_files: expected a positive integer, got %q", s)
				}
			}
		case "max_pages":
			var s string
			if s, err = oneArg(d); err == nil {
				h.MaxPages, err = strconv.ParseInt(s, 10, 64)
				if err != nil || h.MaxPages < 1 {
					err = d.Errf("meter: max_pages: expected a positive integer, got %q", s)
				}
			}
		case "count_timeout":
			h.CountTimeout, err = durationArg(d)
		case "reservation_ttl":
			h.ReservationTTL, err = durationArg(d)
		case "test":
			h.Test, err = oneArg(d)
			if err == nil && h.Test != TestSimulate && h.Test != TestForward {
				err = d.Errf("meter: test: expected simulate or forward, got %q", h.Test)
			}
		case "test_limit":
			h.TestLimit, err = testLimitArg(d)
		case "unpriced":
			err = h.unmarshalUnpriced(d)
		case "json_documents":
			h.JSONDocuments = d.RemainingArgs()
			if len(h.JSONDocuments) == 0 {
				return d.Errf("meter: json_documents needs auto, off or JSONPath queries such as $.document")
			}
			// Check the queries here, where the error can name the line.
			if _, err := jsonDocs(h.JSONDocuments); err != nil {
				return d.Errf("%v", err)
			}
		case "idempotency_max_response":
			h.IdempotencyMaxResponse, err = idempotencyMaxArg(d)
		case "billing":
			h.Billing, err = unmarshalBilling(d)
		case "job":
			h.Job, err = unmarshalJob(d)
		case "cost_header":
			h.CostHeader, err = moneyHeaderArg(d)
		case "remaining_header":
			h.RemainingHeader, err = moneyHeaderArg(d)
		default:
			return d.Errf("meter: unknown subdirective %q", sub)
		}
		if err != nil {
			return err
		}
	}
	if len(h.Rules) == 0 {
		return d.Err("meter: no pricing rule: add one, e.g. `per_page 1`")
	}
	return nil
}

// unmarshalUnpriced parses `unpriced refuse | charge <credits>`.
func (h *Handler) unmarshalUnpriced(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	switch {
	case len(args) == 1 && args[0] == unpricedRefuse:
		h.Unpriced = unpricedRefuse
		return nil
	case len(args) == 2 && args[0] == unpricedCharge:
		c, err := meter.ParseCredits(args[1])
		if err != nil || c < 0 {
			return d.Errf("meter: unpriced charge: expected credits such as 1 or 0.5, got %q", args[1])
		}
		h.Unpriced, h.UnpricedCredits = unpricedCharge, c
		return nil
	}
	return d.Errf("meter: unpriced: expected `refuse` or `charge <credits>`, got %q", strings.Join(args, " "))
}

// unmarshalBilling parses `billing [<field>] [snake|camel]`.
func unmarshalBilling(d *caddyfile.Dispenser) (*BillingConfig, error) {
	b := &BillingConfig{}
	for d.NextArg() {
		switch v := d.Val(); {
		case v == "snake" || v == "camel":
			if b.Case != "" {
				return nil, d.Errf("meter: billing: case given twice")
			}
			b.Case = v
		case b.Field == "" && b.Case == "":
			b.Field = v
		default:
			return nil, d.Errf("meter: billing: unexpected %q (expected: billing [<field>] [snake|camel])", v)
		}
	}
	return b, nil
}

// unmarshalJob parses the job block of a meter route.
func unmarshalJob(d *caddyfile.Dispenser) (*JobConfig, error) {
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	jc := &JobConfig{}
	seen := map[string]bool{}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		sub := d.Val()
		if seen[sub] {
			return nil, d.Errf("meter: job: %s given more than once", sub)
		}
		seen[sub] = true
		var err error
		switch sub {
		case "ttl":
			jc.TTL, err = durationArg(d)
		case "retention":
			jc.Retention, err = durationArg(d)
		case "upstream_id":
			args := d.RemainingArgs()
			if len(args) != 2 || args[0] != "json" && args[0] != "header" {
				return nil, d.Errf("meter: job: upstream_id: expected `json <query>` or `header <name>`, got %q", strings.Join(args, " "))
			}
			jc.UpstreamID = args[0] + " " + args[1]
		case "declared_bytes":
			jc.DeclaredBytes, err = oneArg(d)
		case "progress_url":
			jc.ProgressURL, err = oneArg(d)
		case "pages_per_mb":
			var s string
			if s, err = oneArg(d); err == nil {
				jc.PagesPerMB, err = strconv.ParseFloat(s, 64)
				if err != nil || jc.PagesPerMB <= 0 {
					err = d.Errf("meter: job: pages_per_mb: expected a positive number, got %q", s)
				}
			}
		default:
			return nil, d.Errf("meter: job: unknown option %q (expected ttl, upstream_id, declared_bytes, pages_per_mb, progress_url or retention)", sub)
		}
		if err != nil {
			return nil, err
		}
	}
	// Check the queries here, where the error can name the line.
	if err := (&JobConfig{UpstreamID: jc.UpstreamID, DeclaredBytes: jc.DeclaredBytes}).provision(nil); err != nil {
		return nil, d.Errf("%v", err)
	}
	return jc, nil
}

// testLimitArg parses `test_limit <n>` or `test_limit <n>/day`.
func testLimitArg(d *caddyfile.Dispenser) (int, error) {
	s, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(s, "/day"))
	if err != nil || n < 1 {
		return 0, d.Errf("meter: test_limit: expected a positive number of requests per day such as 100/day, got %q", s)
	}
	return n, nil
}

func oneArg(d *caddyfile.Dispenser) (string, error) {
	name := d.Val()
	if !d.NextArg() {
		return "", d.Errf("meter: %s needs a value", name)
	}
	v := d.Val()
	if d.NextArg() {
		return "", d.Errf("meter: %s takes one value, got extra %q", name, d.Val())
	}
	return v, nil
}

// moneyHeaderArg reads the name of a money header (cost_header,
// remaining_header), checked where it is written.
func moneyHeaderArg(d *caddyfile.Dispenser) (string, error) {
	opt := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return "", err
	}
	cost, remaining := v, ""
	if opt == "remaining_header" {
		cost, remaining = "", v
	}
	if err := checkMoneyNames(cost, remaining); err != nil {
		return "", d.Errf("meter: %v", err)
	}
	return v, nil
}

func sizeArg(d *caddyfile.Dispenser) (int64, error) {
	name := d.Val()
	s, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	n, err := humanize.ParseBytes(s)
	if err != nil || n == 0 || n > 1<<50 {
		return 0, d.Errf("meter: %s: expected a size such as 100MB or 512KiB, got %q", name, s)
	}
	return int64(n), nil
}

func durationArg(d *caddyfile.Dispenser) (caddy.Duration, error) {
	name := d.Val()
	s, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(s)
	if err != nil || dur <= 0 {
		return 0, d.Errf("meter: %s: expected a positive duration such as 5s or 10m, got %q", name, s)
	}
	return caddy.Duration(dur), nil
}

// mustJSON marshals v; the app struct always marshals.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*App)(nil)
	_ caddyfile.Unmarshaler = (*Handler)(nil)
)
