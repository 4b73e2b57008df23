#!/bin/bash
# coffer verify: every kind of backup here verifies, stored (no identity)
# and content (with one); then each damage is caught with exit 4 and a
# message naming backup, object and repository: a flipped byte, a truncated
# object, a deleted object, an object swapped with another backup's, and a
# manifest edited to match a corrupted object (caught with the identity
# only: age authentication fails). The result is recorded (coffer show).
. "$(dirname "$0")/lib.sh"
t_setup verify

mkdir -p "$T/data/sub" "$T/second"
seq 1 50000 >"$T/data/seq.txt"
head -c 100000 /dev/urandom >"$T/data/sub/random.bin"
t_config <<EOF2
[repository second]
path = $T/second

[source files]
type = files
paths = $T/data

[source dump]
type = command
command = seq 1 100000
EOF2
# Stored checks need no identity: a backup host's configuration has none.
grep -v '^identity = ' "$CONF" >"$T/noid.conf"

for s in files dump files; do
	cf backup "$s" --json
	check_rc "backup $s" 0
done
cf list --json
F1=$(jq -r '[.[] | select(.source == "files")][0].id' "$OUT")
F2=$(jq -r '[.[] | select(.source == "files")][1].id' "$OUT")
D1=$(jq -r '[.[] | select(.source == "dump")][0].id' "$OUT")

cf_conf "$T/noid.conf" verify --all
check_rc "verify --all without an identity" 0
check_eq "six copies ok (3 backups x 2 repositories)" 6 "$(grep -c '  ok  ' "$OUT")"
check_grep "stored bytes checked" "$OUT" "stored bytes checked"
cf verify --all --json
check_rc "verify --all with the identity" 0
check_eq "content checked, six copies" 6 "$(jq '[.copies[] | select(.ok and .level == "content")] | length' "$OUT")"
cf verify --latest --source dump --target second
check_rc "verify --latest --source --target" 0
check_eq "one copy" 1 "$(grep -c '  ok  ' "$OUT")"
cf show "$D1"
check_grep "show: the last verification" "$OUT" "^verified: +20[0-9-]+T[0-9:.]+Z ok \(content\)$"

obj() { echo "$REPO/files/$1/files.tar.zst.age"; }
# damage DESC EXPECT-REGEX: verify F1 in primary; exit 4 naming it all.
damaged() {
	cf_conf "$T/noid.conf" verify "$F1" --target primary
	check_rc "$1: exit 4" 4
	check_grep "$1: names backup, repository and object" "$ERR" "backup $F1 in primary: .*files/$F1/files.tar.zst.age"
	check_grep "$1: says what" "$ERR" "$2"
	check_one_error_line "$1: one error line"
}
cp "$(obj "$F1")" "$T/good"

# One flipped byte in the middle.
flip_byte "$(obj "$F1")"
damaged "a flipped byte" "SHA-256"
cf show "$F1"
check_grep "show: the failure is recorded" "$OUT" "^verified: .* FAILED \(stored\): backup $F1 in primary"
cf list --source files
check_grep "list: the failed verification shows" "$OUT" "^$F1 .* FAILED +posix"
check_grep "list: the good one too" "$OUT" "^$F2 .* verified +posix"
cp "$T/good" "$(obj "$F1")"

head -c 1000 "$T/good" >"$(obj "$F1")"
damaged "a truncated object" "is 1000 bytes, the manifest says"
rm "$(obj "$F1")"
damaged "a deleted object" "is missing"
cp "$(obj "$F2")" "$(obj "$F1")"
damaged "another backup's object in its place" "bytes, the manifest says|SHA-256"
cp "$T/good" "$(obj "$F1")"
cf_conf "$T/noid.conf" verify "$F1"
check_rc "repaired, it verifies again" 0

# A corrupted object with a manifest edited to match it: the stored check
# cannot tell (the digests agree), the identity can.
python3 - "$(obj "$F1")" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[-100] ^= 0x01   # in the last age chunk's ciphertext
open(p, 'wb').write(b)
PY
sha=$(sha256sum "$(obj "$F1")" | cut -d' ' -f1)
jq --arg sha "$sha" 'del(.signature) | .objects[0].sha256 = $sha' "$REPO/files/$F1/manifest.json" >"$T/m.json"
mv "$T/m.json" "$REPO/files/$F1/manifest.json"
rm -rf "$CATALOG"
# (the primary only: second's manifest is the original)
grep -v "^\[repository second\]\|^path = $T/second" "$CONF" >"$T/primary.conf"
grep -v '^identity = ' "$T/primary.conf" >"$T/primary-noid.conf"
cf_conf "$T/primary.conf" catalog rebuild --trust-unsigned
check_rc "catalog rebuild takes the edited manifest (--trust-unsigned)" 0
cf_conf "$T/primary-noid.conf" verify "$F1"
check_rc "the stored check cannot tell an edited manifest" 0
cf_conf "$T/primary.conf" verify "$F1"
check_rc "with the identity: exit 4" 4
check_grep "authentication fails, named" "$ERR" "backup $F1 in primary: .*(authenticat|HMAC|payload)"

cf verify
check_rc "verify without backups named: usage (exit 2)" 2
cf verify nosuchid
check_rc "an id that is no backup: exit 3" 3
t_finish
