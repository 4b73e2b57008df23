#!/bin/sh
# The test command: installs the test dependencies, builds coffer with warnings
# as errors and runs every test (unit, integration, packaging) with CTest.
# The build is sanitized (AddressSanitizer + UndefinedBehaviorSanitizer, Debug,
# in build-asan/): any invalid access, leak or undefined behaviour changes an
# exit status, so the tests fail on it. The installed coffer is a plain
# Release build: packaging/test_deb and the fresh-machine quickstart run that.
#   tests/run.sh                 everything
#   tests/run.sh -L unit         only the unit tests (any ctest arguments work)
#   COFFER_TEST_PLAIN=1 tests/run.sh    the plain build in build/ instead
set -eu
cd "$(dirname "$0")/.."
./packaging/install-deps.sh --test
# COFFER_TESTS explicitly: the quickstart may have left it OFF in the cache.
if [ "${COFFER_TEST_PLAIN:-0}" = 1 ]; then
	BUILD_DIR=${BUILD_DIR:-build}
	BUILD_DIR=$BUILD_DIR ./packaging/build.sh -DCOFFER_WERROR=ON -DCOFFER_TESTS=ON
else
	BUILD_DIR=${BUILD_DIR:-build-asan}
	export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
	BUILD_DIR=$BUILD_DIR ./packaging/build.sh -DCOFFER_WERROR=ON -DCOFFER_TESTS=ON \
		-DCOFFER_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
fi
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 "$@"
