# Top-level entry points: `make` builds, `make test` installs deps + builds + runs ctest,
# `make asan` does the same with AddressSanitizer + UBSan in build-asan/.
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?= --output-on-failure -j$(JOBS)

.PHONY: all deps build test asan demo bench clean fuzz

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

test: deps
	$(MAKE) build
	cd $(BUILD) && ctest $(CTEST_ARGS)

asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DP2P_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ctest $(CTEST_ARGS)

demo: deps
	$(MAKE) build
	scripts/demo.sh

# Benchmarks print figures next to baselines run in the same script (docs/BENCHMARKS.md);
# `make bench` runs the quick swarm scenario, the others are bench/*.sh.
bench: deps
	$(MAKE) build
	bench/swarm --quick

# libFuzzer targets (docs/FUZZING.md): clang build in $(FUZZ_BUILD), each target run for
# FUZZ_SECONDS; crashes land in $(FUZZ_BUILD)/fuzz-artifacts/<target>/.
fuzz:
	P2P_DEPS_EXTRA="clang libclang-rt-14-dev" scripts/deps.sh
	cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	      -DP2P_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
	cmake --build $(FUZZ_BUILD) --target fuzz_all -j$(JOBS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run.sh $(FUZZ_BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
