# Thin wrapper over CMake: make run | test | build | deps | clean.
BUILD ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# Arguments for `make run`, e.g. make run ARGS="--modes fp32 --epochs 1"
ARGS ?=

.PHONY: all deps configure build run test test-sanitize fuzz clean

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/ampbench run $(ARGS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure

# The whole suite under AddressSanitizer + UBSan, in its own build folder (docs/RELIABILITY.md).
# Any report fails the test: -fno-sanitize-recover=all, and LeakSanitizer's exit code.
ASAN_BUILD ?= build-asan
test-sanitize: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAMPBENCH_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1 \
	UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --test-dir $(ASAN_BUILD) --output-on-failure

# libFuzzer on the IDX reader for FUZZ_SECONDS (clang; builds into build-fuzz/).
FUZZ_SECONDS ?= 60
fuzz: deps
	scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
