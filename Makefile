# creditgate: the two commands a newcomer needs are `make run` and `make test`.

GO       ?= go
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN      := bin/creditgate
STATICCHECK    := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run test lint deps bench clean

all: build

# deps installs what tests and the demo need from Debian when it is missing:
# redis-server (tests start their own on free loopback ports), qpdf and
# poppler-utils (reference page counts in tests and benchmarks), chromium
# (the console's browser tests, headless).
deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v qpdf >/dev/null         || missing="$$missing qpdf"; \
	command -v pdfinfo >/dev/null      || missing="$$missing poppler-utils"; \
	command -v chromium >/dev/null     || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/creditgate

# run starts the gateway with the repository's Caddyfile: metered API on
# :8080, admin API on localhost:2019, accounts in the embedded store. It
# needs nothing but Go.
run: build
	./$(BIN) run --config Caddyfile

# test is the whole suite: formatting, vet, staticcheck, and every test
# under the race detector against real redis-server processes.
test: deps lint
	$(GO) test -race -count=1 -timeout 20m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# bench runs every comparison of bench/ and prints their tables; see
# bench/RESULTS.md for the numbers of this machine.
bench: deps build
	@command -v wrk >/dev/null || $(SUDO) apt-get install -y -qq wrk >/dev/null
	REPEAT=3 ALT="redis_lease off" bench/gateway.sh
	REPEAT=3 ALT="redis_lease off" bench/gateway.sh 5 1
	bench/pages.sh
	bench/store.sh
	bench/memory.sh
	$(GO) test -run '^$$' -bench . -benchtime 2x ./meter/usage/... ./meter/pricing/ ./meter/redisstore/ ./caddymodule/

clean:
	rm -rf bin bench/out
