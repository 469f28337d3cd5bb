# The two commands a user needs: `make run` and `make test`. Both install
# missing Debian packages (scripts/deps.sh), configure and build first.

BUILD      ?= build
PORT       ?= 8080
RPC_PORT   ?= 7001
NODES      ?= 3
STATE      ?= partitioned
DATA       ?= ./var
PARTITIONS ?= 12
BROKERS    ?=
CMAKE_ARGS ?=
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps configure build run test bench clean

all: build

deps:
	@scripts/deps.sh

configure: deps
	@cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	@PORT=$(PORT) RPC_PORT=$(RPC_PORT) NODES=$(NODES) STATE=$(STATE) DATA=$(DATA) PARTITIONS=$(PARTITIONS) \
	  BUILD=$(BUILD) BROKERS=$(BROKERS) scripts/run.sh

test: build
	@cd $(BUILD) && ctest --output-on-failure --timeout 600 -j$(JOBS)

bench: build
	@PROFILE_BUILD=$(abspath $(BUILD)) python3 tests/bench/bench.py

clean:
	rm -rf $(BUILD)
