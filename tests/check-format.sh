#!/bin/sh
# Fails (exit 1, naming the files) when a C file differs from what
# clang-format makes of it with the repository's .clang-format. The version
# is Debian 12's clang-format (14): another version may format differently.
#   tests/check-format.sh         check
#   tests/check-format.sh --fix   rewrite the files in place
set -eu
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || {
	echo "check-format: clang-format is missing (packaging/install-deps.sh --test)" >&2
	exit 2
}
if [ "${1:-}" = "--fix" ]; then
	git ls-files '*.c' '*.h' | xargs clang-format -i
	exit 0
fi
bad=0
for f in $(git ls-files '*.c' '*.h'); do
	if ! clang-format "$f" | cmp -s - "$f"; then
		echo "check-format: $f differs from clang-format's output (run tests/check-format.sh --fix)" >&2
		bad=1
	fi
done
[ "$bad" = 0 ] && echo "check-format: every C file matches .clang-format"
exit "$bad"
