package caddymodule

import "github.com/creditgate/creditgate/meter"

// What each consumer of the store uses of it (see meter.Store's entity
// interfaces). The request path (meter) and the admin API use the whole
// store: they touch every entity.

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
