# Top-level entry points: `make` builds, `make test` installs deps + builds + runs ctest,
# `make asan` does the same with AddressSanitizer + UBSan in build-asan/.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CTEST_ARGS ?= --output-on-failure -j$(JOBS)

.PHONY: all deps build test asan demo bench clean

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

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
