package caddymodule

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/creditgate/creditgate/meter"
)

// authenticator turns a request's API key into an identity: the key (its
// account and mode, live or test), the account's settings in force and
// its creation time. It is the one place `meter`, `meter_api` and
// `meter_job` authenticate a client; the key cache it reads is the
// app's, so a revocation through this gateway applies to all three.
// (The console authenticates operators with Caddy's own basic_auth or
// forward_auth, never with API keys.)
type authenticator struct {
	header string // the request header with the key; "Authorization" reads a Bearer token
	app    *App
}

// newAuthenticator checks the key header (default Authorization) and
// binds it to the app.
func newAuthenticator(app *App, header string) (authenticator, error) {
	if header == "" {
		header = "Authorization"
	}
	if err := checkKeyHeader(header); err != nil {
		return authenticator{}, err
	}
	return authenticator{header: header, app: app}, nil
}

// authFor gets the meter app and an authenticator for a handler's
// key_header: the provisioning that meter_api and meter_job share.
func authFor(ctx caddy.Context, header string) (*App, authenticator, error) {
	v, err := ctx.App("meter")
	if err != nil {
		return nil, authenticator{}, err
	}
	app := v.(*App)
	auth, err := newAuthenticator(app, header)
	return app, auth, err
}

// keyHeaderArg parses the key_header subdirective of a directive.
func keyHeaderArg(d *caddyfile.Dispenser, directive, cur string) (string, error) {
	if cur != "" {
		return "", d.Errf("%s: key_header given more than once", directive)
	}
	return oneArg(d)
}

// identity is what a request's API key resolves to: the key record and
// its account's settings.
type identity struct {
	key      meter.Key
	settings meter.Settings
	created  time.Time // the account's, for anniversary periods
}

// enabled refuses a disabled account's requests.
func (id identity) enabled() error {
	if !id.settings.IsEnabled() {
		return meter.Errorf(meter.ECodeAccountDisabled, "API access is disabled for this account")
	}
	return nil
}

// identify finds the caller's key and account from the request's API key:
// 401 invalid_api_key when it is missing or unknown.
func (a authenticator) identify(ctx context.Context, r *http.Request) (identity, error) {
	secret := strings.TrimSpace(r.Header.Get(a.header))
	if strings.EqualFold(a.header, "Authorization") {
		secret = bearer(secret)
	}
	if secret == "" {
		return identity{}, meter.Errorf(meter.ECodeInvalidAPIKey, "missing API key: send it as %s", a.hint())
	}
	return a.app.lookupKey(ctx, secret)
}

func (a authenticator) hint() string {
	if strings.EqualFold(a.header, "Authorization") {
		return "Authorization: Bearer <key>"
	}
	return a.header + ": <key>"
}

// bearer returns the token of an "Authorization: Bearer <token>" value, or
// "" for any other scheme.
func bearer(v string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// lookupKey authenticates an API key secret and finds its account's
// settings, through the cache.
func (a *App) lookupKey(ctx context.Context, secret string) (identity, error) {
	hash := meter.HashKey(secret)
	if id, ok := a.keys.get(hash); ok {
		return id, nil
	}
	sctx, cancel := a.storeCtx(ctx)
	defer cancel()
	k, err := a.store.LookupKey(sctx, hash)
	if err != nil {
		return identity{}, err
	}
	acct, err := a.store.Account(sctx, k.AccountID)
	if meter.ErrorCode(err) == meter.ECodeAccountNotFound {
		return identity{}, meter.Errorf(meter.ECodeInvalidAPIKey, "invalid API key")
	}
	if err != nil {
		return identity{}, err
	}
	eff, err := a.settingsInForce(sctx, acct)
	if err != nil {
		return identity{}, err
	}
	id := identity{key: k, settings: eff, created: acct.CreatedAt}
	a.keys.put(hash, id)
	return id, nil
}
