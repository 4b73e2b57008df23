#!/bin/bash
# bench_hash.sh: what the per-byte digests cost. Two parts:
#  1. bench_hash_speed.c: SHA-256 and MD5 throughput from libsodium, libmd (if
#     its header is installed) and OpenSSL's libcrypto, the libraries coffer
#     took them from before and after issue 13;
#  2. a one-source backup of INPUT (default: 1 GiB, half random bytes, half a
#     generated SQL dump) to a posix repository with two coffer binaries,
#     alternating, RUNS times each: median user+sys CPU seconds and wall;
#     with BENCH_PERF=1 one more run each under `perf record -g`, printing the
#     top of the report and the digest entries.
# Figures, not a test.
#
#   COFFER_BEFORE=/path/to/old/coffer bench/bench_hash.sh [RUNS]
#
# Environment: COFFER_BIN (the "after" binary, default build/agent/coffer),
# COFFER_BEFORE (without it only COFFER_BIN is measured), INPUT (a file to back
# up instead of the generated one), BENCH_PERF=1, BENCH_OUT (default
# bench/out). Compare on a quiet machine: the runs alternate so that load
# from elsewhere falls on both sides alike.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${1:-3}
COFFER_BIN=${COFFER_BIN:-$ROOT/build/agent/coffer}
COFFER_BEFORE=${COFFER_BEFORE:-}
OUT=${BENCH_OUT:-$ROOT/bench/out}
W=$OUT/hash
MIB=$((1024 * 1024))
die() { echo "bench_hash: $*" >&2; exit 1; }
for t in "$COFFER_BIN" /usr/bin/time age-keygen python3 cc pkg-config; do
	command -v "$t" >/dev/null 2>&1 || [ -x "$t" ] || die "$t is missing"
done
[ -z "$COFFER_BEFORE" ] || [ -x "$COFFER_BEFORE" ] || die "$COFFER_BEFORE is not executable"
mkdir -p "$W"
# shellcheck source=bench/inputs.sh
. "$ROOT/bench/inputs.sh"

# ----- 1. the digests alone ---------------------------------------------------------
libs="libsodium libcrypto"
pkg-config --exists libmd && libs="$libs libmd"
# shellcheck disable=SC2046,SC2086
cc -O2 -o "$W/bench_hash_speed" "$ROOT/bench/bench_hash_speed.c" $(pkg-config --cflags --libs $libs)
echo "== digest throughput (256 KiB pieces, the filter chain's buffer size)"
"$W/bench_hash_speed" 1024

# ----- 2. a backup with each binary -------------------------------------------------
if [ -z "${INPUT:-}" ]; then
	INPUT=$W/input-1g
	if [ ! -s "$INPUT" ]; then
		echo "bench_hash: writing $INPUT (512 MiB random + 512 MiB SQL dump)..." >&2
		{ head -c $((512 * MIB)) /dev/urandom; gen_sql $((512 * MIB)); } >"$INPUT.tmp"
		mv "$INPUT.tmp" "$INPUT"
	fi
fi
KEY=$W/key.txt
[ -s "$KEY" ] || age-keygen -o "$KEY" 2>/dev/null
CONF=$W/coffer.conf
cat >"$CONF" <<CONF
[repository]
type = posix
path = $W/repo

[catalog]
path = $W/catalog

[encryption]
recipients = $(age-keygen -y "$KEY")
identity = $KEY

[compression]
level = 3
workers = auto
CONF

# one_run BIN TAG: one backup into a fresh repository; appends "tag cpu wall".
one_run() {
	local bin=$1 tag=$2 t0 t1
	rm -rf "$W/repo" "$W/catalog"
	mkdir -p "$W/repo"
	t0=$(date +%s.%N)
	/usr/bin/time -v -o "$W/time" "$bin" --config "$CONF" --quiet backup --stdin x <"$INPUT" >/dev/null
	t1=$(date +%s.%N)
	awk -v tag="$tag" -v wall="$(echo "$t1 - $t0" | bc)" '
		/User time \(seconds\)/ { u = $NF } /System time \(seconds\)/ { s = $NF }
		END { printf "%s %.2f %.2f %.2f %.2f\n", tag, u + s, wall, u, s }' "$W/time" >>"$W/runs"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

cat "$INPUT" >/dev/null # into the page cache, for both sides alike
: >"$W/runs"
for _ in $(seq 1 "$RUNS"); do
	[ -z "$COFFER_BEFORE" ] || one_run "$COFFER_BEFORE" before
	one_run "$COFFER_BIN" after
done
echo "== backup of $(du -h "$INPUT" | cut -f1) ($INPUT), $RUNS run(s) each, alternating"
echo "   runs (tag cpu_s wall_s user_s sys_s):"
sed 's/^/     /' "$W/runs"
printf '%-8s %10s %10s\n' binary cpu_s wall_s
for tag in before after; do
	grep -q "^$tag " "$W/runs" || continue
	printf '%-8s %10s %10s\n' "$tag" "$(awk -v t=$tag '$1 == t { print $2 }' "$W/runs" | median)" \
		"$(awk -v t=$tag '$1 == t { print $3 }' "$W/runs" | median)"
done

if [ "${BENCH_PERF:-0}" = 1 ]; then
	command -v perf >/dev/null || die "perf is missing (apt-get install linux-perf)"
	for tag in before after; do
		bin=$COFFER_BIN
		if [ $tag = before ]; then
			[ -n "$COFFER_BEFORE" ] || continue
			bin=$COFFER_BEFORE
		fi
		rm -rf "$W/repo" "$W/catalog"
		mkdir -p "$W/repo"
		# DWARF unwinding: Debian's libsodium and libcrypto are built without
		# frame pointers, and their block functions are not exported, so only
		# the caller chain names them (crypto_hash_sha256_update, SHA256_Update).
		perf record -q -F 400 --call-graph dwarf,8192 -o "$W/perf.$tag.data" "$bin" \
			--config "$CONF" --quiet backup --stdin x <"$INPUT" >/dev/null 2>"$W/perf.$tag.err"
		perf report -i "$W/perf.$tag.data" --stdio --no-children --sort dso -g none \
			>"$W/perf.$tag.dso" 2>/dev/null
		perf report -i "$W/perf.$tag.data" --stdio --children --sort dso,symbol -g none \
			>"$W/perf.$tag.sym" 2>/dev/null
		echo "== perf, $tag: samples by library (self)"
		grep '%' "$W/perf.$tag.dso" | head -6 || true
		echo "== perf, $tag: the stages (children = with callees, self)"
		grep -E 'hash_write|crypto_hash_sha256_update|EVP_DigestUpdate|SHA256_Update|age_encrypt_seal|chacha20poly1305_ietf_encrypt |ZSTD_compressContinue|storage_filter_write' \
			"$W/perf.$tag.sym" | awk '{ printf "     %8s %8s  %-20s %s\n", $1, $2, $3, $5 }' || true
	done
fi
rm -rf "$W/repo" "$W/catalog"
