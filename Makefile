# filecast — see README.md. Every target works on a fresh Debian/Ubuntu
# machine with Go: redis-server is installed when missing.
GO ?= go

.PHONY: all build demo test vet fuzz bench chaos clean

all: build

build:
	$(GO) build -o bin/filecast ./cmd/filecast

## demo: the book's job — logs to three receiver groups on a private Redis
demo:
	@bash scripts/ensure-redis.sh
	@bash scripts/demo.sh

## test: vet plus the whole suite with the race detector, against real redis-server
test:
	@bash scripts/ensure-redis.sh
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 12m ./...

## chaos: the fault-injection suite with many seeded trials (CHAOS_TRIALS=100, CHAOS_SEED=1)
CHAOS_TRIALS ?= 100
CHAOS_SEED ?= 1
chaos:
	@bash scripts/ensure-redis.sh
	FILECAST_CHAOS_TRIALS=$(CHAOS_TRIALS) FILECAST_CHAOS_SEED=$(CHAOS_SEED) $(GO) test -count=1 -timeout 60m -run Chaos -v ./cmd/filecast

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
