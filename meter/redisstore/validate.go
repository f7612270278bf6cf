package redisstore

import "github.com/creditgate/creditgate/meter"

// MaxCredits is meter.MaxCredits: Lua holds numbers as doubles, exact up to
// 2^53, the bound every store applies.
const MaxCredits = meter.MaxCredits
