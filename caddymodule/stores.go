package caddymodule

import (
	"context"

	"github.com/creditgate/creditgate/meter"
)

// What each consumer of the store uses of it (see meter.Store's entity
// interfaces). The request path (meter) uses the whole store: it touches
// every entity.

// jobAPIStore is meter_job's: jobs, and the account a progress report
// charges.
type jobAPIStore interface {
	meter.JobStore
	meter.AccountReader
}

// consoleStore is what the console's account rows and usage charts read.
type consoleStore interface {
	meter.AccountReader
	meter.LedgerStore
	meter.UsageStore
}

// The admin API's route groups, each on what it uses (route adapts them
// to the whole store the app holds). The Stripe review routes find the
// payments side behind the store (meter.StoreAs) and keep the whole store.

// adminAccounts: create, read, list accounts and change their settings
// (an account created on a plan gets the plan's limits).
type adminAccounts interface {
	meter.AccountStore
	ApplySettings(ctx context.Context, id string, own *meter.Settings, l meter.Limits) (meter.Account, error)
}

// adminKeys: an account's API keys.
type adminKeys interface {
	meter.AccountReader
	meter.KeyStore
}

// adminMoney: grants and refunds, and the account they answer with.
type adminMoney interface {
	meter.AccountReader
	Grant(ctx context.Context, g meter.Grant) (meter.LedgerEntry, error)
	Refund(ctx context.Context, r meter.Refund) (meter.LedgerEntry, error)
}

// adminLedger: transactions and trimming.
type adminLedger interface {
	meter.AccountReader
	meter.LedgerStore
}

// adminUsage: usage by route and the usage series.
type adminUsage interface {
	meter.AccountReader
	meter.UsageStore
}

// Interface guards: the app's store serves every group (route asserts).
var (
	_ adminAccounts   = meter.Store(nil)
	_ adminKeys       = meter.Store(nil)
	_ adminMoney      = meter.Store(nil)
	_ adminLedger     = meter.Store(nil)
	_ adminUsage      = meter.Store(nil)
	_ meter.JobStore  = meter.Store(nil)
	_ meter.PlanStore = meter.Store(nil)
)
