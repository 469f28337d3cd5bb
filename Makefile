# The two commands a user needs: `make run` and `make test`. Both install
# missing Debian packages (scripts/deps.sh), configure and build first.
# `make build` (and plain cmake) never install anything: `make deps` does.

BUILD      ?= build
PORT       ?= 8080
RPC_PORT   ?= 7001
NODES      ?= 3
STATE      ?= partitioned
STANDBYS   ?= 0
DATA       ?= ./var
PARTITIONS ?= 12
BROKERS    ?=
KAFKA_NODES ?= 1
KAFKA_PORT ?= 9092
RESTART    ?= always
TLS        ?= 0
TOKENS     ?=
CMAKE_ARGS ?=
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps test-deps configure build run test bench bench-ab fuzz chaos chaos-control chaos-control-partition soak clean

all: build

# Debian packages (a JRE and Maven among them), then Apache Kafka's jars
# from Maven Central into .cache/ (once; later runs are offline).
deps:
	@scripts/deps.sh
	@scripts/kafka.sh libs >/dev/null

configure:
	@cmake -S . -B $(BUILD) $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

run: deps
	@$(MAKE) --no-print-directory build
	@PORT=$(PORT) RPC_PORT=$(RPC_PORT) NODES=$(NODES) STATE=$(STATE) STANDBYS=$(STANDBYS) DATA=$(DATA) PARTITIONS=$(PARTITIONS) \
	  BUILD=$(BUILD) BROKERS=$(BROKERS) KAFKA_NODES=$(KAFKA_NODES) KAFKA_PORT=$(KAFKA_PORT) RESTART=$(RESTART) TLS=$(TLS) TOKENS=$(TOKENS) scripts/run.sh

test: test-deps
	@$(MAKE) --no-print-directory build
	@cd $(BUILD) && ctest --output-on-failure --timeout 600 -j$(JOBS)

# What the tests need besides the build: Debian packages, MirrorMaker 2's
# jars (test_mirror), then the npm tools pinned by
# tests/tools/package-lock.json (again only when the lock changed).
test-deps:
	@scripts/deps.sh --test
	@scripts/kafka.sh libs >/dev/null
	@scripts/kafka.sh mirror-libs >/dev/null
	@if [ ! -f tests/tools/node_modules/.package-lock.json ] || \
	    [ tests/tools/package-lock.json -nt tests/tools/node_modules/.package-lock.json ]; then \
	  SCARF_ANALYTICS=false npm ci --prefix tests/tools --ignore-scripts --no-audit --no-fund --loglevel=error; fi

# Fuzzing: clang's libFuzzer over the gateway's inputs, the store's records
# and a core's RPC requests, FUZZ_SECONDS each, from the seeds in
# tests/fuzz/corpus.
FUZZ_SECONDS ?= 60
fuzz: deps
	@cmake -S . -B build-fuzz -DPROFILE_FUZZ=ON -DCMAKE_C_COMPILER=clang -DPROFILE_SANITIZER=address,undefined \
	  -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build build-fuzz -j$(JOBS) --target fuzz_gateway fuzz_store fuzz_rpc
	@for t in fuzz_gateway fuzz_store fuzz_rpc; do \
	  mkdir -p build-fuzz/corpus/$$t; \
	  build-fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=build-fuzz/ build-fuzz/corpus/$$t tests/fuzz/corpus/$$t \
	    2>build-fuzz/$$t.log || { tail -50 build-fuzz/$$t.log; exit 1; }; \
	  grep -h "stat::number_of_executed_units" build-fuzz/$$t.log | sed "s/^/$$t: /"; \
	done

# The chaos verifier (minutes): ROUNDS fault rounds (nodes killed and
# stalled, the gateway and the broker killed, the whole stack restarted
# once; as root also network partitions and a slow link) under a mixed
# load, then the history checked; any anomaly fails it. CHAOS_ARGS passes
# more (see tests/chaos/chaos.py --help).
ROUNDS ?= 20
CHAOS_ARGS ?=
chaos: deps
	@$(MAKE) --no-print-directory build
	@PROFILE_BUILD=$(abspath $(BUILD)) python3 tests/chaos/chaos.py --rounds $(ROUNDS) $(CHAOS_ARGS)

# The control: the same checks with fencing off, stalls only and a write
# delay. It succeeds only if the checks find the stale writes this allows.
chaos-control: deps
	@$(MAKE) --no-print-directory build
	@PROFILE_BUILD=$(abspath $(BUILD)) python3 tests/chaos/chaos.py --rounds $(ROUNDS) --faults stall \
	  --write-delay-ms 1500 --fault-fence-off --expect version $(CHAOS_ARGS)

# The partitions' control (root): nodes cut from Kafka while they answer
# reads of the partitions they lost (--lost-read-ms); it succeeds only if
# the checks find the stale reads this allows.
chaos-control-partition: deps
	@$(MAKE) --no-print-directory build
	@PROFILE_BUILD=$(abspath $(BUILD)) python3 tests/chaos/chaos.py --plan cut-kafka,cut-kafka,cut-kafka \
	  --lost-read-ms 20000 --expect stale $(CHAOS_ARGS)

# The soak (minutes): a steady mixed load for SOAK_SECONDS, then requests,
# answers by status and every process's memory; flat memory passes.
SOAK_SECONDS ?= 600
soak: deps
	@$(MAKE) --no-print-directory build
	@PROFILE_BUILD=$(abspath $(BUILD)) python3 tests/soak/soak.py --seconds $(SOAK_SECONDS)

bench: deps
	@$(MAKE) --no-print-directory build
	@PROFILE_BUILD=$(abspath $(BUILD)) python3 tests/bench/bench.py

# Two revisions against each other, row by row, in alternating pairs:
# make bench-ab A=REV B=REV (each built once under build-ab/).
A ?= HEAD~1
B ?= HEAD
bench-ab: deps
	@$(MAKE) --no-print-directory build
	@scripts/bench-ab.sh "$(A)" "$(B)"

clean:
	rm -rf $(BUILD)
