package usage

// scanStack is about the stack a page scan reaches (the parser recurses
// through objects, the walker and the xref reader sit below it): the
// reading goroutine grows its stack to it at once.
const scanStack = 8 << 10

// growStack grows the calling goroutine's stack to hold at least
// scanStack bytes more, in one copy while it is still nearly empty. A new
// goroutine starts with a few KB and doubles it each time a call runs out,
// copying the whole stack each time: several copies per scanned document,
// 12% of all the CPU of BenchmarkServeHTTP/p1 (~6 us a request).
// CockroachDB's growstack package does the same for its RPC goroutines.
//
//go:noinline
func growStack() {
	var buf [scanStack]byte
	touchStack(&buf)
}

// touchStack keeps buf on the stack: its address is taken, and it does
// not escape.
//
//go:noinline
func touchStack(buf *[scanStack]byte) { buf[0] = 0 }
