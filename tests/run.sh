#!/bin/sh
# The test command: installs the test dependencies, builds coffer with warnings
# as errors and runs every test (unit and integration) with CTest.
#   tests/run.sh                 everything
#   tests/run.sh -L unit         only the unit tests (any ctest arguments work)
set -eu
cd "$(dirname "$0")/.."
./packaging/install-deps.sh --test
# COFFER_TESTS explicitly: the quickstart may have left it OFF in the cache.
BUILD_DIR=${BUILD_DIR:-build} ./packaging/build.sh -DCOFFER_WERROR=ON -DCOFFER_TESTS=ON
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j2 "$@"
