# filecast — see README.md. Every target works on a fresh Debian/Ubuntu
# machine with Go: redis-server is installed when missing.
GO ?= go

.PHONY: all build docs demo test vet fuzz bench chaos clean

all: build

## build: bin/filecast, stamped with VERSION (filecast --version)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS = -X main.version=$(VERSION)
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/filecast ./cmd/filecast

## docs: the command reference in docs/cli (committed; a test fails when it is stale)
## and the man pages in bin/man/man1, both from the commands' --help
docs:
	$(GO) run -tags docs -ldflags '$(LDFLAGS)' ./cmd/filecast docs --markdown docs/cli --man bin/man/man1

## demo: the book's job — logs to three receiver groups on a private Redis
demo:
	@bash scripts/ensure-redis.sh
	@bash scripts/demo.sh

## test: vet plus the whole suite with the race detector, against real redis-server
## (its cluster, failover and replica tests start real clusters and Sentinel sets);
## then the library, store and CLI tests again on a 3-primary Redis Cluster, and
## against valkey-server when it is installed (scripts/ensure-valkey.sh)
TOPOLOGY_TESTS = TestCluster|TestSentinel|TestFailover|TestReadReplicas|TestJournal|TestOrphans|TestResume.*Epoch
test:
	@bash scripts/ensure-redis.sh
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 12m ./...
	FILECAST_TEST_CLUSTER=3 $(GO) test -count=1 -timeout 10m -skip '$(TOPOLOGY_TESTS)' . ./internal/store ./cmd/filecast
	@if command -v valkey-server >/dev/null 2>&1; then \
		echo FILECAST_TEST_SERVER=valkey-server $(GO) test -count=1 -timeout 10m . ./internal/store ./internal/redistest ./cmd/filecast; \
		FILECAST_TEST_SERVER=valkey-server $(GO) test -count=1 -timeout 10m . ./internal/store ./internal/redistest ./cmd/filecast; \
	else echo "valkey-server not installed: Valkey pass skipped (scripts/ensure-valkey.sh installs it)"; fi

## chaos: the fault-injection suite with many seeded trials (CHAOS_TRIALS=100, CHAOS_SEED=1),
## its cluster faults included (a primary killed, slots moved: a quarter as many trials); then
## the process kills again on a 3-primary Redis Cluster (CLUSTER_CHAOS_TRIALS, a quarter too)
CHAOS_TRIALS ?= 100
CHAOS_SEED ?= 1
CLUSTER_CHAOS_TRIALS ?= $(shell expr $(CHAOS_TRIALS) / 4 + 1)
CLUSTER_CHAOS = TestChaos(ReceiverKilled|ReceiverStopped|SenderKilled|SenderKilledDirectory|SenderKilledDirectoryFinishes|FrozenMember|Follow|Watch|DiskFull)$$
chaos:
	@bash scripts/ensure-redis.sh
	FILECAST_CHAOS_TRIALS=$(CHAOS_TRIALS) FILECAST_CHAOS_SEED=$(CHAOS_SEED) $(GO) test -count=1 -timeout 60m -run Chaos -v ./cmd/filecast
	FILECAST_TEST_CLUSTER=3 FILECAST_CHAOS_TRIALS=$(CLUSTER_CHAOS_TRIALS) FILECAST_CHAOS_SEED=$(CHAOS_SEED) $(GO) test -count=1 -timeout 60m -run '$(CLUSTER_CHAOS)' -v ./cmd/filecast

## fuzz: run each fuzz target for a while (FUZZTIME=30s)
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./internal/wire -run '^$$' -fuzz FuzzCheckName -fuzztime $(FUZZTIME)
	$(GO) test ./internal/wire -run '^$$' -fuzz FuzzParseEntry -fuzztime $(FUZZTIME)
	$(GO) test ./internal/wire -run '^$$' -fuzz FuzzParseFile -fuzztime $(FUZZTIME)
	$(GO) test ./internal/wire -run '^$$' -fuzz FuzzParseSent -fuzztime $(FUZZTIME)

clean:
	rm -rf bin

## bench: filecast beside the raw Redis ceilings (≈1 GiB of logs, 3 runs, a 10 GiB stream);
## BENCHFLAGS='-size 256MiB -big 2GiB' for a shorter run. Writes bench-results.json.
BENCHFLAGS ?=
bench:
	@bash scripts/ensure-redis.sh
	$(GO) run ./bench $(BENCHFLAGS)
