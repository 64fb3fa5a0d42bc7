# Thin wrapper over CMake: make run | test | bench | profile | test-sanitize | test-portable | fuzz |
# install | deps | clean.
BUILD ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# Arguments for `make run`, e.g. make run ARGS="--modes fp32 --epochs 1"
ARGS ?=

# Where `make install` puts bin/ampbench and share/ampbench/ (plots/, tools/).
PREFIX ?= /usr/local

.PHONY: all deps configure build run test bench profile test-sanitize test-portable fuzz install clean

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

# Speed and memory: the end-to-end sweep plus the micro-benchmarks, into results/bench/<stamp>/.
# On a 2-core CPU the default sweep takes about 3 minutes. Extra options: make bench ARGS="..."
bench: build
	$(BUILD)/ampbench bench $(if $(wildcard $(BUILD)/micro_ops),--micro $(BUILD)/micro_ops) $(ARGS)

# Profiling of one recipe (docs/PROFILING.md): Nsight Systems when nsys is on the PATH, else
# Nsight Compute on the step range, else a text profile of the NVTX ranges (the recorder built
# with the tests) and the commands to run on a machine with Nsight.
PROFILE_ARGS ?= --modes amp --epochs 1 --train-limit 3200 --profile-steps 20:40 --no-progress
profile: build
	@NVTX_RECORDER=$(BUILD)/tests/libnvtx_recorder.so scripts/profile.sh $(BUILD)/ampbench $(PROFILE_ARGS)

# The CPU suite under AddressSanitizer + UBSan, in its own build folder (docs/RELIABILITY.md).
# Any report fails the test: -fno-sanitize-recover=all, and LeakSanitizer's exit code. The
# sanitizers make training ~10x slower, so the tests labelled long (minutes of training for
# accuracy) are skipped; test all_modes runs their code paths briefly. So is the test labelled
# exact (golden), whose bits are the Release build's. SANITIZE_CTEST= runs all.
# allocator_may_return_null: the out-of-memory test asks for 770 GB and expects NULL, not an abort.
# (Not detect_stack_use_after_return: with GCC 12 its fake stack frames crash the AVX-512
# kernels, which keep 64-byte vectors on the stack: SEGV in the kernels, not a bug in them.)
ASAN_BUILD ?= build-asan
SANITIZE_CTEST ?= -LE "long|exact"
test-sanitize: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAMPBENCH_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
	UBSAN_OPTIONS=print_stacktrace=1 \
	ctest --test-dir $(ASAN_BUILD) --output-on-failure $(SANITIZE_CTEST)

# The unit tests built without -march=native (AMPBENCH_NATIVE=OFF: baseline x86-64, no AVX, so
# the portable and runtime-dispatched code paths compile and pass), in their own build folder.
# Only the op-level tests: the exact-bit and training tests pin a build with FMA (RELIABILITY.md).
PORTABLE_BUILD ?= build-portable
PORTABLE_TESTS ?= test_lowp test_gradcheck test_amp test_layers test_cpu_ops test_fp8 test_fp8_scaling
test-portable: deps
	@cmake -S . -B $(PORTABLE_BUILD) -DCMAKE_BUILD_TYPE=Release -DAMPBENCH_NATIVE=OFF >/dev/null
	@cmake --build $(PORTABLE_BUILD) -j $(JOBS) --target $(PORTABLE_TESTS)
	@cd $(PORTABLE_BUILD)/tests && for t in $(PORTABLE_TESTS); do \
	    ./$$t >$$t.log 2>&1 || { cat $$t.log; echo "$$t failed (portable build)"; exit 1; }; \
	    echo "$$t: $$(tail -n 1 $$t.log)"; done

# libFuzzer on the IDX reader and the run-folder and baseline readers, FUZZ_SECONDS per target
# (clang; builds into build-fuzz/).
FUZZ_SECONDS ?= 60
fuzz: deps
	scripts/fuzz.sh $(FUZZ_SECONDS)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(PORTABLE_BUILD) build-fuzz
