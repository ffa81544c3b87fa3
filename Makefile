# The two commands: `make demo` and `make test`. Everything else is a helper.
BUILD     ?= build
ASAN_BUILD ?= build-asan
RELEASE_BUILD ?= build-release
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS      ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all build deps check-deps test test-unit demo demo-offline asan release-check fuzz \
        format format-check \
        kafka-up kafka-down pg-up pg-down install clean bench soak help

all: build

help:
	@echo "make demo         the three jobs end to end on a real broker and PostgreSQL (no setup by hand)"
	@echo "make demo-offline the example topology in the test driver (no broker)"
	@echo "make test         build everything and run every test (unit, driver, mock, system)"
	@echo "make deps         install the Debian packages and Maven jars (root)"
	@echo "make asan         build and run every test (system ones too) under ASan+UBSan"
	@echo "make fuzz         libFuzzer (clang) on every decoder, FUZZ_SECONDS (60) each"
	@echo "make release-check  build everything at -O3 (Release); runs no tests"
	@echo "make format       clang-format the sources; make format-check checks"
	@echo "make kafka-up     start a real Kafka broker (KRaft); prints its address"
	@echo "make kafka-down   stop it"
	@echo "make pg-up/pg-down  start/stop an ephemeral PostgreSQL"
	@echo "make bench        run the benchmarks and print their figures"
	@echo "make soak         chaos soak of the three jobs, exactly once, SOAK_MINUTES (3)"

deps:
	bash infra/deps.sh install

# Installs what is missing when we are root, otherwise names it and stops.
check-deps:
	@bash infra/deps.sh ensure

$(BUILD)/CMakeCache.txt: | check-deps
	cmake -S . -B $(BUILD) $(CMAKE_ARGS)

build: check-deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

test: build
	bash infra/deps.sh ensure-services
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -L 'unit|driver'

demo: build
	bash apps/demo/run-demo.sh $(BUILD)

demo-offline: build
	bash apps/demo/run-offline.sh $(BUILD)

asan: check-deps
	cmake -S . -B $(ASAN_BUILD) -DKS_SANITIZE=address,undefined \
	      -DCMAKE_BUILD_TYPE=Debug -DKS_BUILD_BENCH=OFF $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	bash infra/deps.sh ensure-services
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    CK_TIMEOUT_MULTIPLIER=3 \
	    ctest --output-on-failure -j $(JOBS) --timeout 1800

# Each fuzz target for FUZZ_SECONDS; skipped with a message without clang
# (tests/fuzz/fuzz.sh). The crashes it once found replay in `make test`.
fuzz: check-deps
	bash tests/fuzz/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# gcc warns at -O3 where it does not at -O2 (-Wmaybe-uninitialized), and
# -Werror makes that a broken build for whoever builds Release.
release-check: check-deps
	cmake -S . -B $(RELEASE_BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)
	cmake --build $(RELEASE_BUILD) -j $(JOBS)

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' '*.cpp' 2>/dev/null)
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@bash infra/deps.sh ensure-format
	clang-format --dry-run --Werror $(FORMAT_FILES)

install: build
	cmake --install $(BUILD)

bench: build
	bash bench/run-all.sh $(BUILD)

# tests/chaos/soak.sh: its own 3-node cluster and PostgreSQL; kills,
# broker restarts, PostgreSQL outages, an instance added and removed, then
# the results checked exactly. SOAK_MINUTES (3), SOAK_RATE, SOAK_SEED.
SOAK_MINUTES ?= 3
soak: build
	bash infra/deps.sh ensure-services
	SOAK_MINUTES=$(SOAK_MINUTES) bash tests/chaos/soak.sh

kafka-up:
	@bash infra/kafka/kafka.sh up

kafka-down:
	@bash infra/kafka/kafka.sh down

pg-up:
	@bash infra/postgres/pg.sh up

pg-down:
	@bash infra/postgres/pg.sh down

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(RELEASE_BUILD) $(FUZZ_BUILD)
