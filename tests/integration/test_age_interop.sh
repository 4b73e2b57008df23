#!/usr/bin/env bash
# test_age_interop: coffer's age implementation against the real age 1.x
# binaries, both ways, at the 64 KiB chunk edges and beyond: agetool encrypt
# -> age -d, age -r -> agetool decrypt, plus key files exchanged between
# age-keygen and agetool keygen. age -p needs a terminal, so scrypt is
# checked against the C2SP scrypt vector instead of live age.
#
# Environment (set by ctest): COFFER_TOOLS (holds agetool), COFFER_TEST_TMP,
# COFFER_SRC (the vectors are in tests/data/age). Exit 77 means skipped.
set -u

agetool="${COFFER_TOOLS:-}/agetool"
if [ ! -x "$agetool" ]; then
	echo "skipped: agetool not found (set COFFER_TOOLS)"
	exit 77
fi
if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
	echo "skipped: the age and age-keygen binaries are not installed"
	exit 77
fi

mkdir -p "${COFFER_TEST_TMP:-/tmp}"
tmp=$(mktemp -d "${COFFER_TEST_TMP:-/tmp}/age_interop.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
umask 077

passed=0
failed=0
check() {
	local name=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
	else
		echo "FAIL: $name"
		failed=$((failed + 1))
	fi
}

# Keys from both sides; each tool must read the other's key file.
age-keygen -o "$tmp/age.key" 2>/dev/null
age_rcpt=$(age-keygen -y "$tmp/age.key")
"$agetool" keygen >"$tmp/coffer.key" 2>/dev/null
coffer_rcpt=$(sed -n 's/^# public key: //p' "$tmp/coffer.key")
check "age-keygen -y agrees with agetool keygen" \
	test "$(age-keygen -y "$tmp/coffer.key")" = "$coffer_rcpt"

random_size=$(( (RANDOM * 32768 + RANDOM) % 400000 ))
echo "random payload size: $random_size"
for size in 0 1 65535 65536 65537 10485760 "$random_size"; do
	head -c "$size" /dev/urandom >"$tmp/plain"

	# coffer -> age
	# (age -o creates no file for an empty plaintext, so use stdout.)
	rm -f "$tmp/ct1" "$tmp/out1" "$tmp/out1b"
	"$agetool" encrypt -r "$age_rcpt" -r "$coffer_rcpt" <"$tmp/plain" >"$tmp/ct1" &&
		age -d -i "$tmp/age.key" "$tmp/ct1" >"$tmp/out1"
	check "agetool encrypt -> age -d ($size bytes)" cmp -s "$tmp/plain" "$tmp/out1"
	age -d -i "$tmp/coffer.key" "$tmp/ct1" >"$tmp/out1b"
	check "age -d with an agetool key file ($size bytes)" cmp -s "$tmp/plain" "$tmp/out1b"

	# age -> coffer
	rm -f "$tmp/ct2" "$tmp/out2" "$tmp/out2b"
	age -r "$coffer_rcpt" -r "$age_rcpt" -o "$tmp/ct2" "$tmp/plain" &&
		"$agetool" decrypt -i "$tmp/coffer.key" <"$tmp/ct2" >"$tmp/out2"
	check "age -r -> agetool decrypt ($size bytes)" cmp -s "$tmp/plain" "$tmp/out2"
	"$agetool" decrypt -i "$tmp/age.key" <"$tmp/ct2" >"$tmp/out2b"
	check "agetool decrypt with an age-keygen key file ($size bytes)" \
		cmp -s "$tmp/plain" "$tmp/out2b"
done

# A file cut at a chunk boundary must fail, with one "agetool: " line.
head -c 200000 /dev/urandom >"$tmp/plain"
age -r "$coffer_rcpt" -o "$tmp/ct3" "$tmp/plain"
# 200000 bytes are four chunks; hdr is the header without the 16-byte nonce.
hdr=$(( $(stat -c %s "$tmp/ct3") - 200000 - 4 * 16 - 16 ))
head -c $((hdr + 16 + 65552)) "$tmp/ct3" >"$tmp/ct3.cut"
"$agetool" decrypt -i "$tmp/coffer.key" <"$tmp/ct3.cut" >/dev/null 2>"$tmp/err"
rc=$?
check "truncated age file is refused" test "$rc" -ne 0
check "error is one agetool: line" grep -q '^agetool: .*truncated' "$tmp/err"
"$agetool" decrypt -i "$tmp/age.key" <"$tmp/ct3" >/dev/null 2>"$tmp/err"
check "wrong identity says no match" grep -q '^agetool: no identity matches' "$tmp/err"

# scrypt: the C2SP vector made by age, and a round trip of our own.
vector="$COFFER_SRC/tests/data/age/scrypt"
if [ -f "$vector" ]; then
	skip=$(sed -n '1,/^$/p' "$vector" | wc -c)
	want=$(sed -n 's/^payload: //p' "$vector" | head -n 1)
	got=$(tail -c +$((skip + 1)) "$vector" |
		AGETOOL_PASSPHRASE=password "$agetool" decrypt -p | sha256sum | cut -d' ' -f1)
	check "scrypt vector from age decrypts" test "$got" = "$want"
fi
head -c 1000 /dev/urandom >"$tmp/plain"
AGETOOL_PASSPHRASE=hunter2 "$agetool" encrypt -p <"$tmp/plain" >"$tmp/ct4" &&
	AGETOOL_PASSPHRASE=hunter2 "$agetool" decrypt -p <"$tmp/ct4" >"$tmp/out4"
check "scrypt round trip" cmp -s "$tmp/plain" "$tmp/out4"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
