#!/bin/sh
# coffer quickstart: installs the build dependencies, builds coffer, and runs
# its main job end to end on the embedded default (a posix repository in a
# local folder): a key, a backup of a directory and of a command's output,
# the listing, a restore with coffer and one with age, zstd and tar alone.
# Everything it makes is under ./coffer-demo (or $DEMO_DIR); run it again to
# start over.
set -eu
cd "$(dirname "$0")/.."
./packaging/install-deps.sh
# Without the tests: they need the test dependencies (install-deps.sh --test).
./packaging/build.sh -DCOFFER_TESTS=OFF >/dev/null
B=${BUILD_DIR:-build}   # where build.sh builds
case $B in /*) ;; *) B=$PWD/$B ;; esac
COFFER=$B/agent/coffer
D=${DEMO_DIR:-$PWD/coffer-demo}
rm -rf "$D"; mkdir -p "$D/repo"

echo "== 1. a key pair: the backup host needs only the public recipient"
"$COFFER" keygen -o "$D/identity.txt" >"$D/recipient.txt"
echo "recipient: $(cat "$D/recipient.txt")"

echo "== 2. something to back up"
mkdir -p "$D/data/docs"
cp -r /etc/apt "$D/data/" 2>/dev/null || true
printf 'hello from coffer\n' >"$D/data/docs/hello.txt"
ln -s docs/hello.txt "$D/data/link-to-hello"
cat >"$D/coffer.conf" <<CONF
[repository]
type = posix
path = $D/repo
[catalog]
path = $D/catalog
[encryption]
recipients = $(cat "$D/recipient.txt")
identity = $D/identity.txt
[source demo-files]
type = files
paths = $D/data
exclude = *.tmp
[source demo-dump]
type = command
command = sh -c "seq 1 200000 | sed 's/^/INSERT INTO t VALUES (/; s/$/);/'"
shell = false
CONF
export COFFER_CONFIG="$D/coffer.conf"

echo "== 3. coffer backup"
"$COFFER" backup
echo "== 4. coffer list"
"$COFFER" list
ID=$("$COFFER" --json list --source demo-files | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | tail -n 1)
DUMP=$("$COFFER" --json list --source demo-dump | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' | tail -n 1)

echo "== 5. coffer restore"
"$COFFER" restore "$ID" --to "$D/restored"
diff -r "$D/data" "$D/restored$D/data" && echo "restored tree is identical"
"$COFFER" restore "$DUMP" --stdout | tail -n 1

echo "== 6. restore without coffer: age -d | zstd -d | tar -x"
mkdir -p "$D/by-hand"
age -d -i "$D/identity.txt" "$D/repo/demo-files/$ID/files.tar.zst.age" | zstd -d | tar -x --warning=no-unknown-keyword -C "$D/by-hand"
diff -r "$D/data" "$D/by-hand$D/data" && echo "hand-restored tree is identical"
echo "done: see $D (repository in $D/repo)"
