# test_files_roundtrip: a files source with every awkward kind of entry (odd
# and unicode names, deep paths, symlinks, hard links, empty files and dirs,
# a fifo, modes, setgid, owners, mtimes, xattrs, ACLs, a 1 GiB sparse file) is
# backed up, restored with `coffer restore --to` and, without coffer, with
# age | zstd | GNU tar; both restores must match the original in content and
# metadata, excluded files must be absent, and list/show must describe the
# backup.
. "$(dirname "$0")/lib.sh"
t_setup files_roundtrip

[ "$(id -u)" = 0 ] || t_skip "needs root (chown to other uids, restoring owners)"
command -v setfattr >/dev/null || t_skip "setfattr is not installed (package attr)"

SRC=$T/src/tree
mkdir -p "$SRC"
chmod 0755 "$T/src" "$SRC"

# --- the tree ------------------------------------------------------------
(
	set -e
	cd "$SRC"
	echo "a file with spaces" >"with space"
	printf 'newline in the name\n' >$'new\nline'
	echo "leading dash" >./-leading-dash
	echo "glob characters" >'*?['
	echo "backslash and quotes" >'back\slash "quoted" '\''single'\'''
	echo "accent" >'é'
	mkdir '日本'
	echo "japanese" >'日本/ファイル.txt'
	echo "emoji" >'😀 emoji'
	long=$(printf 'n%.0s' $(seq 1 200))
	echo "long name" >"$long"
	deep=deep
	for i in $(seq 1 40); do deep=$deep/level$i; done
	mkdir -p "$deep"
	echo "bottom" >"$deep/bottom file"

	ln -s 'with space' rel-link
	ln -s ../tree/日本 rel-dir-link
	ln -s /etc/hostname abs-link
	ln -s does/not/exist dangling-link

	echo "hard linked" >hard1
	mkdir sub
	ln hard1 hard2
	ln hard1 sub/hard3

	: >empty-file
	mkdir empty-dir
	mkfifo fifo

	echo "private" >private
	chmod 0600 private
	printf '#!/bin/sh\necho hi\n' >script
	chmod 0755 script
	mkdir setgid-dir
	chown 0:5678 setgid-dir
	chmod 2775 setgid-dir
	echo "inside setgid" >setgid-dir/inside
	echo "odd mode" >odd-mode
	chmod 0541 odd-mode

	echo "owned" >owned
	chown 1234:5678 owned
	chown -h 1234:5678 rel-link
	mkdir owned-dir
	echo "in owned dir" >owned-dir/f
	chown -R 4321:8765 owned-dir

	# Holes with data at the start, in the middle and at the very end.
	truncate -s 1G sparse
	head -c 65536 /dev/urandom | dd of=sparse bs=64K seek=0 conv=notrunc status=none
	head -c 65536 /dev/urandom | dd of=sparse bs=64K seek=8192 conv=notrunc status=none
	head -c 65536 /dev/urandom | dd of=sparse bs=64K seek=16383 conv=notrunc status=none

	# Files with no data extent at all (issue 9): a truncated file, a
	# preallocated one (unwritten extents), and one with data only at the
	# start, so its end is a hole.
	truncate -s 4096 hole-4k
	truncate -s 100M hole-100m
	fallocate -l 1M prealloc-1m 2>/dev/null || truncate -s 1M prealloc-1m
	truncate -s 1M data-then-hole
	printf 'abc' | dd of=data-then-hole conv=notrunc status=none

	echo "excluded" >junk.tmp
	echo "excluded" >sub/also.tmp
	echo "kept: only the suffix .tmp is excluded" >keep.tmpx
	head -c 3000000 /dev/urandom >random.bin
	seq 1 200000 >numbers.txt
)
[ $? = 0 ] || {
	fail "build the source tree"
	t_finish
}

XATTRS=1
if setfattr -n user.coffer.test -v 'hello world' "$SRC/private" 2>/dev/null; then
	setfattr -n user.binary -v 0x00ff10fe "$SRC/private"
	setfattr -n user.on-dir -v dir "$SRC/sub"
else
	XATTRS=0
	t_log "note: $SRC's filesystem has no user xattrs; the xattr checks are skipped"
fi
ACLS=0
if command -v setfacl >/dev/null && setfacl -m u:1234:rw,g:5678:r "$SRC/owned" 2>/dev/null; then
	setfacl -d -m u:1234:rwx "$SRC/owned-dir"
	ACLS=1
else
	t_log "note: no POSIX ACLs here; the ACL checks are skipped"
fi

# Times last, children before parents, so no later change touches them.
find "$SRC" -depth -exec touch -h -d '2001-02-03 04:05:06.123456789' {} +
touch -h -d '1999-12-31 23:59:59.5' "$SRC/script" "$SRC/rel-link" "$SRC/empty-dir"
touch -d '2020-02-29 12:34:56.987654321' "$SRC/sparse"
touch -h -d '2001-02-03 04:05:06.123456789' "$SRC"

# expected OPTIONS...: the original's manifest minus the excluded files (the
# directories keep their recorded times, so nothing else changes).
expected() {
	tree_manifest "$SRC" "$@" | grep -v -e "^'junk.tmp' " -e "^'sub/also.tmp' "
}
XOPT=
[ $XATTRS = 1 ] || XOPT=noxattr

t_config <<EOF
[source tree]
type = files
paths = $SRC
exclude = *.tmp
EOF

# --- backup --------------------------------------------------------------
cf backup tree
check_rc "backup of the files source" 0
check_grep "backup prints one line with the id and 'complete'" "$OUT" '^[0-9]{8}T[0-9]{6}\.[0-9]{3}Z-[0-9a-f]{8} +tree +complete'
ID=$(last_id tree)
check "list has a complete backup of source tree" test -n "$ID"
OBJ=$(object_path "$ID" files)
check "the object is stored as <repo>/tree/<id>/files.tar.zst.age" \
	test "$OBJ" = "$REPO/tree/$ID/files.tar.zst.age" -a -f "$REPO/tree/$ID/files.tar.zst.age"
check "the manifest is stored beside it" test -f "$REPO/tree/$ID/manifest.json"

# compare_restore DESC DIR [tar]: DIR holds the tree under its absolute path.
# The metadata is compared in three checks so that one known difference does
# not hide others: everything with mtimes to the second (for GNU tar without
# directory mtimes), then directory mtimes (GNU tar only), then mtimes to the
# nanosecond.
compare_restore() {
	local desc=$1 got=$2/${SRC#/} tar=${3:-}
	local dopt=
	[ -z "$tar" ] || dopt=nodirtime
	if [ ! -d "$got" ]; then
		fail "$desc: restored tree exists" "$got is missing"
		return
	fi
	expected sec $XOPT $dopt >"$T/expected.manifest"
	tree_manifest "$got" sec $XOPT $dopt >"$T/actual.manifest"
	check_same_manifest "$desc: content, types, modes, owners, links, xattrs, mtimes (s)" \
		"$T/expected.manifest" "$T/actual.manifest"
	if [ -n "$tar" ]; then
		expected onlydirtimes >"$T/expected.manifest"
		tree_manifest "$got" onlydirtimes >"$T/actual.manifest"
		check_same_manifest "$desc: directory mtimes (s)" "$T/expected.manifest" "$T/actual.manifest"
	fi
	expected onlytimes $dopt >"$T/expected.manifest"
	tree_manifest "$got" onlytimes $dopt >"$T/actual.manifest"
	check_same_manifest "$desc: mtimes to the nanosecond" "$T/expected.manifest" "$T/actual.manifest"
	check_absent "$desc: excluded junk.tmp is absent" "$got/junk.tmp"
	check_absent "$desc: excluded sub/also.tmp is absent" "$got/sub/also.tmp"
	check "$desc: keep.tmpx (not matching *.tmp) is present" test -f "$got/keep.tmpx"
	check "$desc: the fifo is a fifo" test -p "$got/fifo"
	check "$desc: the dangling symlink is restored" test -L "$got/dangling-link"
	check_eq "$desc: hard1 and sub/hard3 are one inode" \
		"$(stat -c %i "$got/hard1")" "$(stat -c %i "$got/sub/hard3" 2>/dev/null)"
	check_eq "$desc: setgid directory mode" 2775 "$(stat -c %a "$got/setgid-dir")"
	check_eq "$desc: owner of 'owned'" "1234:5678" "$(stat -c %u:%g "$got/owned")"
	check_eq "$desc: owner of the symlink rel-link" "1234:5678" "$(stat -c %u:%g "$got/rel-link")"
	local blocks
	blocks=$(stat -c %b "$got/sparse")
	if [ "$blocks" -lt 32768 ]; then # under 16 MiB allocated for 1 GiB apparent
		pass "$desc: the 1 GiB sparse file is sparse ($(du -h "$got/sparse" | cut -f1) allocated)"
	else
		fail "$desc: the 1 GiB sparse file is sparse" "$((blocks / 2048)) MiB allocated"
	fi
	blocks=$(stat -c %b "$got/hole-100m" 2>/dev/null || echo missing)
	check "$desc: the 100 MiB file with no data stays sparse ($blocks blocks)" \
		test "$blocks" != missing -a "$blocks" -lt 2048
	if [ $XATTRS = 1 ]; then
		check_eq "$desc: getfattr shows the same user xattrs" \
			"$(cd "$SRC" && getfattr -R -h -d -m '^user\.' -e hex . 2>&1)" \
			"$(cd "$got" && getfattr -R -h -d -m '^user\.' -e hex . 2>&1)"
	fi
	if [ $ACLS = 1 ]; then
		check_eq "$desc: getfacl shows the same ACLs" \
			"$(cd "$SRC" && getfacl -n -P owned owned-dir 2>&1)" \
			"$(cd "$got" && getfacl -n -P owned owned-dir 2>&1)"
	fi
}

# --- restore with coffer -------------------------------------------------
START=$(date +%s)
cf restore "$ID" --to "$T/r1"
check_rc "coffer restore --to" 0
check_grep "restore reports where it restored" "$OUT" "restored $ID .* into $T/r1"
compare_restore "coffer restore" "$T/r1"
check_empty_output "no .coffer-restore temp folder is left" \
	find "$T" -maxdepth 1 -name '.*coffer-restore*'
t_log "# coffer restore took $(($(date +%s) - START)) s"

# Into an existing empty folder: allowed.
mkdir "$T/r-empty"
cf restore "$ID" --to "$T/r-empty"
check_rc "restore into an existing empty folder" 0
check "the existing empty folder now holds the tree" test -f "$T/r-empty/${SRC#/}/with space"

# Into a non-empty folder: refused, and the folder is left as it was.
mkdir "$T/r-full"
echo keep >"$T/r-full/mine"
cf restore "$ID" --to "$T/r-full"
if [ "$RC" != 0 ]; then pass "restore into a non-empty folder is refused (exit $RC)"; else fail "restore into a non-empty folder is refused" "exit 0"; fi
check_eq "the non-empty folder is untouched" "mine" "$(ls -A "$T/r-full")"

# --- restore without coffer: age | zstd | GNU tar ------------------------
mkdir "$T/r2"
if age -d -i "$KEY" "$OBJ" | zstd -d -q | tar -x --xattrs --xattrs-include='*' --acls -p \
	--numeric-owner -C "$T/r2" 2>"$T/tar.err"; then
	pass "age -d | zstd -d | tar -x extracts the object"
else
	fail "age -d | zstd -d | tar -x extracts the object" "$(head -n 5 "$T/tar.err")"
fi
# GNU tar does not know the POSIX keyword hdrcharset (libarchive writes
# hdrcharset=BINARY for non-ASCII names when coffer runs in the C locale) nor
# libarchive's own LIBARCHIVE.xattr.* (it reads the SCHILY.xattr.* copies);
# those warnings are harmless.
grep -v -e "unknown extended header keyword 'hdrcharset'" \
	-e "unknown extended header keyword 'LIBARCHIVE\.xattr\." "$T/tar.err" >"$T/tar.warnings"
if [ -s "$T/tar.warnings" ]; then
	fail "GNU tar reads the stream without warnings" "$(head -n 5 "$T/tar.warnings")"
else
	pass "GNU tar reads the stream without warnings"
fi
compare_restore "age|zstd|tar" "$T/r2" tar

# The tar stream is POSIX (ustar magic "ustar\0", as pax writes), not GNU tar's.
age -d -i "$KEY" "$OBJ" | zstd -d -q 2>/dev/null | head -c 512 >"$T/head.tar"
check "the stream is a POSIX pax/ustar tar" \
	python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); sys.exit(d[257:263]!=b"ustar\0")' "$T/head.tar"

# --- list and show ---------------------------------------------------------
list_json >"$T/list.json"
check "list --json is valid JSON" python3 -m json.tool "$T/list.json" /dev/null
REC=$(jq -c --arg id "$ID" '.[] | select(.id == $id)' "$T/list.json")
check_eq "list --json: status complete" complete "$(jq -r .status <<<"$REC")"
check_eq "list --json: source" tree "$(jq -r .source <<<"$REC")"
STORED=$(stat -c %s "$OBJ")
check_eq "list --json: stored_bytes is the object's size" "$STORED" "$(jq -r .stored_bytes <<<"$REC")"
RAW=$(age -d -i "$KEY" "$OBJ" | zstd -d -q | wc -c)
check_eq "list --json: raw_bytes is the tar stream's size" "$RAW" "$(jq -r .raw_bytes <<<"$REC")"
check_eq "list --json: the object's sha256 is the stored file's" \
	"$(sha256sum "$OBJ" | cut -d' ' -f1)" "$(jq -r '.objects[0].sha256' <<<"$REC")"

cf show "$ID"
check_rc "show ID" 0
check_grep "show prints the id" "$OUT" "^id: +$ID\$"
check_grep "show prints the status" "$OUT" '^status: +complete'
check_grep "show prints the object" "$OUT" "object: +tree/$ID/files.tar.zst.age"
cf show "$ID" --json
check_rc "show ID --json" 0
check_eq "show --json is the record" "$ID complete" "$(jq -r '"\(.id) \(.status)"' "$OUT")"

t_finish
