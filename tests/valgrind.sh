#!/bin/bash
# Runs every unit test program of a build under valgrind; any valgrind error
# (invalid access, uninitialised use, definite leak) fails the run.
set -uo pipefail
BUILD_DIR=${1:-build}
failed=0; passed=0
for t in $(find "$BUILD_DIR/tests" -maxdepth 1 -type f -name 'test_*' -executable | sort); do
  name=$(basename "$t")
  if (cd "$BUILD_DIR/tests" && valgrind -q --error-exitcode=99 --leak-check=full \
        --errors-for-leak-kinds=definite --track-origins=yes "./$name") >"$BUILD_DIR/valgrind-$name.log" 2>&1; then
    passed=$((passed+1))
  else
    failed=$((failed+1)); echo "valgrind: $name failed:"; tail -40 "$BUILD_DIR/valgrind-$name.log"
  fi
done
echo "valgrind: $passed passed, $failed failed"
[ "$failed" = 0 ]
