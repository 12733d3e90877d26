GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test bench lint fuzz chaos soak fuzz-long

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/authresolver ./cmd/authresolver

# test is what CI runs (.ci/run): vet, then every package including the e2e
# suite against real redis-server, nginx and caddy.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 30m ./...

bench:
	$(GO) run ./bench

# lint runs golangci-lint (v2, .golangci.yml) when it is on PATH or in
# $(go env GOPATH)/bin; its findings fail the target.
GOLANGCI_LINT ?= $(shell command -v golangci-lint 2>/dev/null || ls "$$($(GO) env GOPATH)/bin/golangci-lint" 2>/dev/null)

lint:
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet ./...
	@if [ -n "$(GOLANGCI_LINT)" ]; then $(GOLANGCI_LINT) run ./...; else echo "golangci-lint not installed; ran gofmt and go vet only"; fi

fuzz:
	$(GO) test ./resolver -run '^$$' -fuzz FuzzResolve -fuzztime 30s

# chaos runs the fault scenarios 1-5 of bench/chaos (about 5 minutes; needs
# redis-server and nginx) and records their figures in RELIABILITY.md.
# CHAOS_FLAGS adds flags, e.g. CHAOS_FLAGS=-rate=500 on a small machine.
chaos:
	$(GO) run ./bench/chaos -scenarios 1,2,3,4,5 -reliability RELIABILITY.md $(CHAOS_FLAGS)

# soak runs 10 minutes of the mixed load (scenario 6) and records it.
soak:
	$(GO) run ./bench/chaos -scenarios 6 -reliability RELIABILITY.md $(CHAOS_FLAGS)

# fuzz-long runs every fuzz target for FUZZTIME each (default 10m); see
# bench/fuzz-long.sh.
FUZZTIME ?= 10m
fuzz-long:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./bench/fuzz-long.sh
