# Entry points named in README.md. Each target installs what it needs, builds, then runs.
BUILD_DIR ?= build
JOBS ?= 2
# Release keeps the build near 1.5 GB; RelWithDebInfo adds debug information for profiling.
BUILD_TYPE ?= Release
# Options of bench/run.sh for `make bench`, such as --quick or --only intake,latency.
BENCH_FLAGS ?=

.PHONY: deps build demo test format format-check bench clean

deps:
	bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
	cmake --build $(BUILD_DIR) -j$(JOBS)

# The main job on the embedded SQLite default.
demo: build
	bash scripts/demo.sh $(BUILD_DIR)

test: build
	bash scripts/run-tests.sh $(BUILD_DIR)

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

format-check:
	bash scripts/format-check.sh

bench: build
	bash bench/run.sh $(BUILD_DIR) $(BENCH_FLAGS)

clean:
	rm -rf $(BUILD_DIR)
