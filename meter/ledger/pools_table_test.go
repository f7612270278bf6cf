package ledger

import "testing"

// The pools of a period (quota, balance, overage) through reserves,
// commits, voids, expiries, settings and period rolls: the arithmetic of
// meter/storetest's quota cases, whose quota_scripts.go runs the same
// steps, by the same names, on every store beside the model. See simCase
// for what each step must do.
func TestPools(t *testing.T) { runSim(t, poolCases) }

var poolCases = []simCase{
	{"quota, then balance, then overage", 5, 10, 5, 0, [][2]string{
		{"reserve r1 3", "held 3 (quota 3 balance 0 overage 0) | balance 5 available 5 quota 0+3 overage 0+0"},
		{"commit r1 3", "charged 3 (usage 0 quota 3 overage 0 after 5) | balance 5 available 5 quota 3+0 overage 0+0"},
		{"reserve r2 9", "held 9 (quota 7 balance 2 overage 0) | balance 5 available 3 quota 3+7 overage 0+0"},
		{"commit r2 9", "charged 9 (usage -2 quota 7 overage 0 after 3) quota.exhausted[used 10 of 10] | balance 3 available 3 quota 10+0 overage 0+0"},
		{"reserve r3 5", "held 5 (quota 0 balance 3 overage 2) | balance 3 available -2 quota 10+0 overage 0+2"},
		{"commit r3 5", "charged 5 (usage -5 quota 0 overage 2 after -2) | balance -2 available -2 quota 10+0 overage 2+0"},
		{"reserve r4 4", "refused overage_limit_reached available -2 cap 5 required 4 | balance -2 available -2 quota 10+0 overage 2+0"},
		{"reserve r5 3", "held 3 (quota 0 balance 0 overage 3) | balance -2 available -5 quota 10+0 overage 2+3"},
		{"commit r5 3", "charged 3 (usage -3 quota 0 overage 3 after -5) overage.limit_reached[used 5 of 5] | balance -5 available -5 quota 10+0 overage 5+0"},
		{"reserve r6 0.001", "refused overage_limit_reached available -5 cap 5 required 0.001 | balance -5 available -5 quota 10+0 overage 5+0"},
		{"totals", "purchased 5 used 20 | balance -5 available -5 quota 10+0 overage 5+0"},
	}},
	{"quota exceeded, then insufficient credits", 0, 10, 0, 0, [][2]string{
		{"reserve r1 6", "held 6 (quota 6 balance 0 overage 0) | balance 0 available 0 quota 0+6 overage 0+0"},
		{"commit r1 6", "charged 6 (usage 0 quota 6 overage 0 after 0) | balance 0 available 0 quota 6+0 overage 0+0"},
		{"reserve r2 3", "held 3 (quota 3 balance 0 overage 0) | balance 0 available 0 quota 6+3 overage 0+0"},
		{"reserve r3 2", "refused quota_exceeded limit 10 used 9 | balance 0 available 0 quota 6+3 overage 0+0"},
		{"buy 0.5", "| balance 0.5 available 0.5 quota 6+3 overage 0+0"},
		{"reserve r4 2", "refused insufficient_credits available 0.5 required 2 | balance 0.5 available 0.5 quota 6+3 overage 0+0"},
	}},
	{"raising the overage cap", 0, 0, 5, 0, [][2]string{
		{"reserve r1 5", "held 5 (quota 0 balance 0 overage 5) | balance 0 available -5 quota 0+0 overage 0+5"},
		{"commit r1 5", "charged 5 (usage -5 quota 0 overage 5 after -5) overage.limit_reached[used 5 of 5] | balance -5 available -5 quota 0+0 overage 5+0"},
		{"reserve r2 3", "refused overage_limit_reached available -5 cap 5 required 3 | balance -5 available -5 quota 0+0 overage 5+0"},
		{"settings 0 8", "| balance -5 available -5 quota 0+0 overage 5+0"},
		{"reserve r2 3", "held 3 (quota 0 balance 0 overage 3) | balance -5 available -8 quota 0+0 overage 5+3"},
		{"commit r2 3", "charged 3 (usage -3 quota 0 overage 3 after -8) overage.limit_reached[used 8 of 8] | balance -8 available -8 quota 0+0 overage 8+0"},
	}},
	{"no period, no quota", 1, 10, 5, 0, [][2]string{
		{"period 0", "| balance 1 available 1"},
		{"reserve r1 2", "refused insufficient_credits available 1 required 2 | balance 1 available 1"},
		{"period 1", "| balance 1 available 1"},
		{"reserve r2 2", "held 2 (quota 2 balance 0 overage 0) | balance 1 available 1 quota 0+2 overage 0+0"},
		{"period 0", "| balance 1 available 1 quota 0+2 overage 0+0"},
		{"reserve r3 2", "held 2 (quota 2 balance 0 overage 0) | balance 1 available 1 quota 0+4 overage 0+0"},
	}},
	{"period rollover", 0, 10, 5, 0, [][2]string{
		{"period 2", "| balance 0 available 0"},
		{"reserve held 4", "held 4 (quota 4 balance 0 overage 0) | balance 0 available 0 quota 0+4 overage 0+0"},
		{"reserve r1 11", "held 11 (quota 6 balance 0 overage 5) | balance 0 available -5 quota 0+10 overage 0+5"},
		{"commit r1 11", "charged 11 (usage -5 quota 6 overage 5 after -5) overage.limit_reached[used 5 of 5] | balance -5 available -5 quota 6+4 overage 5+0"},
		{"period 1", "| balance -5 available -5 quota 6+4 overage 5+0"},
		{"reserve r2 1", "refused overage_limit_reached available -5 cap 5 required 1 | balance -5 available -5 quota 6+4 overage 5+0"},
		{"period 3", "| balance -5 available -5 quota 6+4 overage 5+0"},
		{"reserve r3 10", "held 10 (quota 10 balance 0 overage 0) | balance -5 available -5 quota 0+10 overage 0+0"},
		{"reserve r4 1", "refused overage_limit_reached available -5 cap 5 required 1 | balance -5 available -5 quota 0+10 overage 0+0"},
		{"buy 5", "| balance 0 available 0 quota 0+10 overage 0+0"},
		{"reserve r5 2", "held 2 (quota 0 balance 0 overage 2) | balance 0 available -2 quota 0+10 overage 0+2"},
		{"period 2", "| balance 0 available -2 quota 0+10 overage 0+2"},
		{"reserve r6 1", "held 1 (quota 0 balance 0 overage 1) | balance 0 available -3 quota 0+10 overage 0+3"},
		{"commit held 4", "charged 4 (usage 0 quota 4 overage 0 after 0) | balance 0 available -3 quota 0+10 overage 0+3"},
		{"commit r3 10", "charged 10 (usage 0 quota 10 overage 0 after 0) quota.exhausted[used 10 of 10] | balance 0 available -3 quota 10+0 overage 0+3"},
		{"commit r5 2", "charged 2 (usage -2 quota 0 overage 2 after -2) | balance -2 available -3 quota 10+0 overage 2+1"},
		{"commit r6 1", "charged 1 (usage -1 quota 0 overage 1 after -3) | balance -3 available -3 quota 10+0 overage 3+0"},
	}},
	{"parts across pools: partial commit takes quota, then balance, and releases the rest", 3, 2, 5, 0, [][2]string{
		{"reserve r1 5", "held 5 (quota 2 balance 3 overage 0) | balance 3 available 0 quota 0+2 overage 0+0"},
		{"commit r1 4", "charged 4 (usage -2 quota 2 overage 0 after 1) quota.exhausted[used 2 of 2] | balance 1 available 1 quota 2+0 overage 0+0"},
	}},
	{"parts across pools: partial commit reaches the overage last", 3, 2, 5, 0, [][2]string{
		{"reserve r1 7", "held 7 (quota 2 balance 3 overage 2) | balance 3 available -2 quota 0+2 overage 0+2"},
		{"commit r1 6", "charged 6 (usage -4 quota 2 overage 1 after -1) quota.exhausted[used 2 of 2] | balance -1 available -1 quota 2+0 overage 1+0"},
	}},
	{"parts across pools: commit within the quota writes an entry that moves no balance", 3, 2, 5, 0, [][2]string{
		{"reserve r1 7", "held 7 (quota 2 balance 3 overage 2) | balance 3 available -2 quota 0+2 overage 0+2"},
		{"commit r1 1", "charged 1 (usage 0 quota 1 overage 0 after 3) | balance 3 available 3 quota 1+0 overage 0+0"},
	}},
	{"parts across pools: void releases every part", 3, 2, 5, 0, [][2]string{
		{"reserve r1 7", "held 7 (quota 2 balance 3 overage 2) | balance 3 available -2 quota 0+2 overage 0+2"},
		{"void r1", "released | balance 3 available 3 quota 0+0 overage 0+0"},
	}},
	{"parts across pools: expiry releases every part", 3, 2, 5, 0, [][2]string{
		{"reserve r1 7 short", "held 7 (quota 2 balance 3 overage 2) | balance 3 available -2 quota 0+2 overage 0+2"},
		{"expire", "| balance 3 available 3 quota 0+0 overage 0+0"},
	}},
	{"parts across pools: a late commit takes quota, then balance, then overage, as they are now", 3, 2, 5, 0, [][2]string{
		{"reserve r1 4 short", "held 4 (quota 2 balance 2 overage 0) | balance 3 available 1 quota 0+2 overage 0+0"},
		{"expire", "| balance 3 available 3 quota 0+0 overage 0+0"},
		{"reserve r2 1", "held 1 (quota 1 balance 0 overage 0) | balance 3 available 3 quota 0+1 overage 0+0"},
		{"commit r1 6", "charged 4 (usage -3 quota 1 overage 0 after 0) late | balance 0 available 0 quota 1+1 overage 0+0"},
	}},
	{"parts across pools: a late commit reaches into the overage", 3, 2, 5, 0, [][2]string{
		{"reserve r1 7 short", "held 7 (quota 2 balance 3 overage 2) | balance 3 available -2 quota 0+2 overage 0+2"},
		{"expire", "| balance 3 available 3 quota 0+0 overage 0+0"},
		{"commit r1 7", "charged 7 (usage -5 quota 2 overage 2 after -2) late quota.exhausted[used 2 of 2] | balance -2 available -2 quota 2+0 overage 2+0"},
	}},
}

// Uncapped commits, shortfalls and minimums: the arithmetic of
// meter/storetest's settle cases, whose settle_scripts.go runs the same
// steps, by the same names, on every store beside the model.
func TestSettles(t *testing.T) { runSim(t, settleCases) }

var settleCases = []simCase{
	{"uncapped: the real amount, and again the first settlement", 30, 0, 0, 0, [][2]string{
		{"reserve r1 20", "held 20 (quota 0 balance 20 overage 0) | balance 30 available 10"},
		{"commit r1 27 uncapped", "charged 27 (usage -27 quota 0 overage 0 after 3) | balance 3 available 3"},
		{"commit r1 27 uncapped", "the first settlement again | balance 3 available 3"},
	}},
	{"capped: the hold only", 30, 0, 0, 0, [][2]string{
		{"reserve r1 20", "held 20 (quota 0 balance 20 overage 0) | balance 30 available 10"},
		{"commit r1 27", "charged 20 (usage -20 quota 0 overage 0 after 10) | balance 10 available 10"},
	}},
	{"uncapped: the excess from quota, then balance, then overage", 5, 10, 5, 0, [][2]string{
		{"reserve r1 8", "held 8 (quota 8 balance 0 overage 0) | balance 5 available 5 quota 0+8 overage 0+0"},
		{"reserve r2 1", "held 1 (quota 1 balance 0 overage 0) | balance 5 available 5 quota 0+9 overage 0+0"},
		{"commit r1 18 uncapped", "charged 18 (usage -9 quota 9 overage 4 after -4) | balance -4 available -4 quota 9+1 overage 4+0"},
		{"commit r2 1", "charged 1 (usage 0 quota 1 overage 0 after -4) quota.exhausted[used 10 of 10] | balance -4 available -4 quota 10+0 overage 4+0"},
	}},
	{"a shortfall is owed until bought back, even with a quota", 3, 0, 0, 0, [][2]string{
		{"reserve r1 1", "held 1 (quota 0 balance 1 overage 0) | balance 3 available 2"},
		{"commit r1 27 uncapped", "charged 27 (usage -27 quota 0 overage 0 after -24) shortfall 24 credits.shortfall[24] | balance -24 available -24"},
		{"reserve r2 1", "refused credits_owed available -24 owed 24 required 1 | balance -24 available -24"},
		{"settings 10 0", "| balance -24 available -24"},
		{"period 1", "| balance -24 available -24"},
		{"reserve r3 1", "refused credits_owed available -24 owed 24 required 1 | balance -24 available -24 quota 0+0 overage 0+0"},
		{"buy 24", "| balance 0 available 0 quota 0+0 overage 0+0"},
		{"reserve r4 1", "held 1 (quota 1 balance 0 overage 0) | balance 0 available 0 quota 0+1 overage 0+0"},
	}},
	{"uncapped and late: from the pools now, the rest short", 30, 0, 0, 0, [][2]string{
		{"reserve r1 20 short", "held 20 (quota 0 balance 20 overage 0) | balance 30 available 10"},
		{"reserve r2 2 short", "held 2 (quota 0 balance 2 overage 0) | balance 30 available 8"},
		{"expire", "| balance 30 available 30"},
		{"commit r1 27 uncapped", "charged 27 (usage -27 quota 0 overage 0 after 3) late | balance 3 available 3"},
		{"commit r2 5 uncapped", "charged 5 (usage -5 quota 0 overage 0 after -2) late shortfall 2 credits.shortfall[2] | balance -2 available -2"},
	}},
	{"a minimum: all the pools give is held", 19, 0, 0, 0, [][2]string{
		{"reserve r1 20 min=1", "held 19 (quota 0 balance 19 overage 0) | balance 19 available 0"},
		{"reserve r2 20 min=1", "refused insufficient_credits available 0 required 1 | balance 19 available 0"},
		{"commit r1 27 uncapped", "charged 27 (usage -27 quota 0 overage 0 after -8) shortfall 8 credits.shortfall[8] | balance -8 available -8"},
	}},
	{"a minimum: the estimate whole when the pools give it", 30, 0, 0, 0, [][2]string{
		{"reserve r1 20 min=1", "held 20 (quota 0 balance 20 overage 0) | balance 30 available 10"},
	}},
	{"a minimum: from the quota first", 0, 5, 0, 0, [][2]string{
		{"reserve r1 20 min=1", "held 5 (quota 5 balance 0 overage 0) | balance 0 available 0 quota 0+5 overage 0+0"},
		{"reserve r2 20 min=1", "refused quota_exceeded limit 5 used 5 | balance 0 available 0 quota 0+5 overage 0+0"},
	}},
}

// Threshold events: the arithmetic of meter/storetest's event cases, whose
// events_scripts.go runs the same steps, by the same names, on every
// store beside the model.
func TestEvents(t *testing.T) { runSim(t, eventCases) }

var eventCases = []simCase{
	{"a low-balance crossing records one event", 10, 0, 0, 5, [][2]string{
		{"reserve d1 3", "held 3 (quota 0 balance 3 overage 0) | balance 10 available 7"},
		{"commit d1 3", "charged 3 (usage -3 quota 0 overage 0 after 7) | balance 7 available 7"},
		{"reserve d2 3", "held 3 (quota 0 balance 3 overage 0) | balance 7 available 4"},
		{"commit d2 3", "charged 3 (usage -3 quota 0 overage 0 after 4) credits.low_balance[below 5] | balance 4 available 4"},
		{"reserve d3 1", "held 1 (quota 0 balance 1 overage 0) | balance 4 available 3"},
		{"commit d3 1", "charged 1 (usage -1 quota 0 overage 0 after 3) | balance 3 available 3"},
	}},
	{"a negative adjustment crosses too", 10, 0, 0, 5, [][2]string{
		{"adjust -6", "credits.low_balance[below 5] | balance 4 available 4"},
	}},
	{"a purchase re-arms", 6, 0, 0, 5, [][2]string{
		{"reserve d1 2", "held 2 (quota 0 balance 2 overage 0) | balance 6 available 4"},
		{"commit d1 2", "charged 2 (usage -2 quota 0 overage 0 after 4) credits.low_balance[below 5] | balance 4 available 4"},
		{"buy 1", "| balance 5 available 5"},
		{"reserve d2 0.5", "held 0.5 (quota 0 balance 0.5 overage 0) | balance 5 available 4.5"},
		{"commit d2 0.5", "charged 0.5 (usage -0.5 quota 0 overage 0 after 4.5) credits.low_balance[below 5] | balance 4.5 available 4.5"},
		{"buy 10", "| balance 14.5 available 14.5"},
		{"reserve d3 1", "held 1 (quota 0 balance 1 overage 0) | balance 14.5 available 13.5"},
		{"commit d3 1", "charged 1 (usage -1 quota 0 overage 0 after 13.5) | balance 13.5 available 13.5"},
	}},
	{"a refused debit records nothing", 10, 0, 0, 5, [][2]string{
		{"adjust -11", "refused insufficient_credits available 10 required 11 | balance 10 available 10"},
		{"commit nohold 9", "refused reservation_not_found | balance 10 available 10"},
		{"reserve held 9", "held 9 (quota 0 balance 9 overage 0) | balance 10 available 1"},
		{"commit held 9", "charged 9 (usage -9 quota 0 overage 0 after 1) credits.low_balance[below 5] | balance 1 available 1"},
	}},
	{"quota and overage events", 0, 10, 5, 0, [][2]string{
		{"reserve d1 6", "held 6 (quota 6 balance 0 overage 0) | balance 0 available 0 quota 0+6 overage 0+0"},
		{"commit d1 6", "charged 6 (usage 0 quota 6 overage 0 after 0) | balance 0 available 0 quota 6+0 overage 0+0"},
		{"reserve d2 4", "held 4 (quota 4 balance 0 overage 0) | balance 0 available 0 quota 6+4 overage 0+0"},
		{"commit d2 4", "charged 4 (usage 0 quota 4 overage 0 after 0) quota.exhausted[used 10 of 10] | balance 0 available 0 quota 10+0 overage 0+0"},
		{"reserve d3 3", "held 3 (quota 0 balance 0 overage 3) | balance 0 available -3 quota 10+0 overage 0+3"},
		{"commit d3 3", "charged 3 (usage -3 quota 0 overage 3 after -3) | balance -3 available -3 quota 10+0 overage 3+0"},
		{"reserve d4 2", "held 2 (quota 0 balance 0 overage 2) | balance -3 available -5 quota 10+0 overage 3+2"},
		{"commit d4 2", "charged 2 (usage -2 quota 0 overage 2 after -5) overage.limit_reached[used 5 of 5] | balance -5 available -5 quota 10+0 overage 5+0"},
	}},
}

// Refunds and totals: the arithmetic of meter/storetest's refund cases,
// whose refund_scripts.go runs the same steps, by the same names, on
// every store beside the model.
func TestRefunds(t *testing.T) { runSim(t, refundCases) }

var refundCases = []simCase{
	{"the paid part, once per entry, never beyond what it took", 10, 1, 5, 0, [][2]string{
		{"reserve e1 4", "held 4 (quota 1 balance 3 overage 0) | balance 10 available 7 quota 0+1 overage 0+0"},
		{"commit e1 4", "charged 4 (usage -3 quota 1 overage 0 after 7) quota.exhausted[used 1 of 1] | balance 7 available 7 quota 1+0 overage 0+0"},
		{"reserve e2 4", "held 4 (quota 0 balance 4 overage 0) | balance 7 available 3 quota 1+0 overage 0+0"},
		{"commit e2 4", "charged 4 (usage -4 quota 0 overage 0 after 3) | balance 3 available 3 quota 1+0 overage 0+0"},
		{"reserve e3 5", "held 5 (quota 0 balance 3 overage 2) | balance 3 available -2 quota 1+0 overage 0+2"},
		{"commit e3 5", "charged 5 (usage -5 quota 0 overage 2 after -2) | balance -2 available -2 quota 1+0 overage 2+0"},
		{"refund e1", "refunded 3 | balance 1 available 1 quota 1+0 overage 2+0"},
		{"refund e1", "refused refund_not_allowed | balance 1 available 1 quota 1+0 overage 2+0"},
		{"refund e3 5.001", "refused refund_not_allowed | balance 1 available 1 quota 1+0 overage 2+0"},
		{"refund e3 5", "refunded 5 | balance 6 available 6 quota 1+0 overage 2+0"},
		{"refund e2 1", "refunded 1 | balance 7 available 7 quota 1+0 overage 2+0"},
		{"refund e2 1", "refused refund_not_allowed | balance 7 available 7 quota 1+0 overage 2+0"},
		{"totals", "purchased 10 used 4 | balance 7 available 7 quota 1+0 overage 2+0"},
	}},
	{"a usage entry of the quota only gives nothing back", 0, 10, 0, 0, [][2]string{
		{"reserve e 1", "held 1 (quota 1 balance 0 overage 0) | balance 0 available 0 quota 0+1 overage 0+0"},
		{"commit e 1", "charged 1 (usage 0 quota 1 overage 0 after 0) | balance 0 available 0 quota 1+0 overage 0+0"},
		{"refund e", "refused refund_not_allowed | balance 0 available 0 quota 1+0 overage 0+0"},
	}},
	{"totals: a removal is no negative purchase, a refund takes back the use", 10, 2, 0, 0, [][2]string{
		{"buy 5", "| balance 15 available 15"},
		{"adjust 1", "| balance 16 available 16"},
		{"adjust -2", "| balance 14 available 14"},
		{"reserve e 3", "held 3 (quota 2 balance 1 overage 0) | balance 14 available 13 quota 0+2 overage 0+0"},
		{"commit e 3", "charged 3 (usage -1 quota 2 overage 0 after 13) quota.exhausted[used 2 of 2] | balance 13 available 13 quota 2+0 overage 0+0"},
		{"refund e", "refunded 1 | balance 14 available 14 quota 2+0 overage 0+0"},
		{"totals", "purchased 16 used 2 | balance 14 available 14 quota 2+0 overage 0+0"},
	}},
}
