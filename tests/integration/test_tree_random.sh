# test_tree_random: round trips of generated trees (issue 9). For each seed,
# tests/tools/gentree.py makes a random tree (every sparse layout, files past
# 8 GiB, hard links, long names and paths, odd and invalid UTF-8 names,
# symlinks, fifos, devices, xattrs, modes, owners, nanosecond mtimes); coffer
# backs it up as a files source; it is restored with `coffer restore --to` and,
# without coffer, with age | zstd | GNU tar; both must match the original byte
# for byte and in metadata (tree_manifest), and sparse files must stay sparse.
#
#   bash tests/integration/test_tree_random.sh              the fixed CI seeds
#   COFFER_SEEDS="7 42" bash tests/integration/test_tree_random.sh
#   COFFER_SEEDS=random:20 bash tests/integration/test_tree_random.sh
#   COFFER_TREE_SIZE=large ...     bigger trees (default small)
#   COFFER_TREE_HUGE=0 ...         no sparse files past 8 GiB
#   COFFER_TREE_OPTS="--avoid nfd,negtime,badutf8 --beyond-path-max" ...
#                                  options for tests/tools/gentree.py; the
#                                  default "--avoid negtime,xattrname" leaves
#                                  out two known limits: a time between -1 s
#                                  and 0 is stored as -1 s (libarchive's pax
#                                  writer cannot print it), and GNU tar cannot
#                                  decode the %-escaped xattr names libarchive
#                                  writes (coffer restore can); set it to ""
#                                  to see them
#   COFFER_KEEP=1 ...              keep every seed's folder, also when it passed
#
# A failing seed is printed with the command that replays it; its folder
# (tree, repository, manifests, diffs) is kept under the scratch folder.
. "$(dirname "$0")/lib.sh"
t_setup tree_random

GENTREE=$COFFER_SRC/tests/tools/gentree.py
TREE_OPTS_DEFAULT="--avoid negtime,xattrname"
TREE_OPTS=${COFFER_TREE_OPTS-$TREE_OPTS_DEFAULT}
CI_SEEDS="1 2 3 4 5 6"
SIZE=${COFFER_TREE_SIZE:-small}
case $SIZE in
small | large) ;;
*)
	echo "COFFER_TREE_SIZE must be small or large, not '$SIZE'" >&2
	exit 1
	;;
esac

# --- the seeds -----------------------------------------------------------------
SEEDS=${COFFER_SEEDS:-$CI_SEEDS}
case $SEEDS in
random:*)
	n=${SEEDS#random:}
	case $n in '' | *[!0-9]*)
		echo "COFFER_SEEDS=random:N needs a number, not '$n'" >&2
		exit 1
		;;
	esac
	SEEDS=
	for ((i = 0; i < n; i++)); do
		SEEDS="$SEEDS $(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
	done
	SEEDS=${SEEDS# }
	;;
esac
for seed in $SEEDS; do
	case $seed in [!A-Za-z0-9]* | *[!A-Za-z0-9_.-]*)
		echo "a seed is a letter or digit, then letters, digits, '_', '.' and '-'; not '$seed'" >&2
		exit 1
		;;
	esac
done
t_log "# seeds ($SIZE): $SEEDS"

# replay SEED: the command that runs this test again for SEED alone.
replay() {
	local env="COFFER_SEEDS=$1"
	[ "$SIZE" = small ] || env="$env COFFER_TREE_SIZE=$SIZE"
	[ "${COFFER_TREE_HUGE:-1}" = 1 ] || env="$env COFFER_TREE_HUGE=0"
	[ "$TREE_OPTS" = "$TREE_OPTS_DEFAULT" ] || env="$env COFFER_TREE_OPTS='$TREE_OPTS'"
	printf '%s bash tests/integration/test_tree_random.sh' "$env"
}

# --- what this machine can do --------------------------------------------------
# Not root: gentree.py leaves out owners, devices, setuid/setgid/sticky bits
# and modes that keep the owner out; everything else is the same.
[ "$(id -u)" = 0 ] || t_log "note: not root: no owners, devices or special modes in the trees"
GNUTAR=0
if tar --version 2>/dev/null | grep -q 'GNU tar'; then
	GNUTAR=1
else
	t_log "note: tar is not GNU tar; the restores without coffer are skipped"
fi

# Files past 8 GiB: sparse ones are cheap, but a restore that wrote them dense
# would write 17 GiB per tree; gentree.py leaves them out on a filesystem
# without sparse files, and this leaves them out without room for one such
# mistake (the sparse checks then report it).
HUGE=--no-huge
if [ "${COFFER_TREE_HUGE:-1}" = 1 ]; then
	avail_kib=$(df -Pk "$T" | awk 'NR == 2 { print $4 }')
	if [ "${avail_kib:-0}" -ge $((24 * 1024 * 1024)) ]; then
		HUGE=
	else
		t_log "note: only $((avail_kib / 1024 / 1024)) GiB free on $T; no files past 8 GiB (need 24 GiB)"
	fi
fi

# --- helpers ---------------------------------------------------------------------

# tree_diff EXPECTED ACTUAL OUT: the differences of two tree_manifest outputs,
# one line per entry: missing, unexpected, or which fields differ; in full in
# OUT, with long paths shortened on stdout.
tree_diff() {
	python3 - "$1" "$2" "$3" <<'PY'
import re, sys
LIT = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
def parse(fname):
    out = {}
    for line in open(fname, encoding="utf-8", errors="surrogateescape"):
        line = line.rstrip("\n")
        m = LIT.match(line)
        if m:
            out[m.group(1)] = line[m.end():].strip()
    return out
def short(s, n):
    return s if len(s) <= n else s[:n // 2 - 3] + " ... " + s[-(n // 2 - 3):]
NAMES = ["mode", "uid", "gid", "mtime"]
a, b = parse(sys.argv[1]), parse(sys.argv[2])
full = open(sys.argv[3], "w", encoding="utf-8", errors="surrogateescape")
shown = 0
for path in sorted(set(a) | set(b)):
    if a.get(path) == b.get(path):
        continue
    if path not in b:
        what, detail, sdetail = "missing:   ", "  (%s)" % a[path], "  (%s)" % short(a[path], 80)
    elif path not in a:
        what, detail, sdetail = "unexpected:", "  (%s)" % b[path], "  (%s)" % short(b[path], 80)
    else:
        fa, fb = a[path].split(" ", 4), b[path].split(" ", 4)
        diffs = []
        for i, name in enumerate(NAMES):
            if i < len(fa) and i < len(fb) and fa[i] != fb[i]:
                diffs.append("%s %s -> %s" % (name, fa[i], fb[i]))
        ra, rb = fa[4] if len(fa) > 4 else "", fb[4] if len(fb) > 4 else ""
        if ra != rb:
            # the first differing position, with some context
            k = next((i for i in range(min(len(ra), len(rb))) if ra[i] != rb[i]), min(len(ra), len(rb)))
            s = max(0, k - 40)
            diffs.append("rest %r -> %r" % (ra[s:k + 60], rb[s:k + 60]))
        what, detail = "differs:   ", ": " + "; ".join(diffs)
        sdetail = detail
    full.write("%s %s%s\n" % (what, path, detail))
    shown += 1
    if shown <= 40:
        print("%s %s%s" % (what, short(path, 160), sdetail))
    elif shown == 41:
        print("... and more")
PY
}

# check_same_tree DESC EXPECTED-MANIFEST ACTUAL-MANIFEST
check_same_tree() {
	if cmp -s "$2" "$3"; then
		pass "$1 ($(wc -l <"$2") entries)"
	else
		tree_diff "$2" "$3" "$3.diff" >"$3.short" 2>&1
		fail "$1" "(original -> restored; all in $3.diff)"
		head -n 25 "$3.short" | sed 's/^/      /'
	fi
}

# sparse_report ORIGINAL RESTORED: regular files whose restored copy has more
# than 64 KiB more allocated than the original (a sparse file restored dense).
# Paths may be longer than PATH_MAX: directories are opened one by one.
sparse_report() {
	python3 - "$1" "$2" <<'PY'
import os, stat, sys
orig, rest = sys.argv[1], sys.argv[2]
SLACK = 64 * 1024
rfd = os.open(rest, os.O_RDONLY | os.O_DIRECTORY)
def open_rel(rel):
    fd = os.dup(rfd)
    for comp in [c for c in rel.split("/") if c and c != "."]:
        nfd = os.open(comp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        os.close(fd)
        fd = nfd
    return fd
checked = bad = 0
for d, dirs, files, dfd in os.fwalk(orig):
    rel = os.path.relpath(d, orig)
    try:
        rdfd = open_rel(rel)
    except OSError:
        continue  # the manifest comparison reports it
    try:
        for n in files:
            st = os.stat(n, dir_fd=dfd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
                continue
            try:
                rst = os.stat(n, dir_fd=rdfd, follow_symlinks=False)
            except OSError:
                continue
            checked += 1
            a, b = st.st_blocks * 512, rst.st_blocks * 512
            if b > a + SLACK:
                bad += 1
                if bad <= 20:
                    print("%r: size %d, allocated %d KiB in the original, %d KiB restored"
                          % (os.path.join(rel, n), st.st_size, a // 1024, b // 1024))
    finally:
        os.close(rdfd)
print("checked %d files, %d not sparse enough" % (checked, bad))
sys.exit(1 if bad else 0)
PY
}

# check_sparse DESC ORIGINAL RESTORED
check_sparse() {
	local out
	if out=$(sparse_report "$2" "$3" 2>&1); then
		pass "$1 ($(printf '%s\n' "$out" | tail -n 1))"
	else
		fail "$1" "(more than 64 KiB more allocated than in the original)"
		printf '%s\n' "$out" | head -n 21 | cut -c1-300 | sed 's/^/      /'
	fi
}

# check_no_warnings DESC FILE: FILE (a coffer stderr) has no warning or error
# line; else prints how many and the first ones, shortened.
check_no_warnings() {
	local n
	n=$(grep -a -c -E '^coffer: (warning|error)' "$2")
	if [ "$n" = 0 ]; then
		pass "$1"
	else
		fail "$1" "$n warning or error line(s), the first:"
		grep -a -E '^coffer: (warning|error)' "$2" | head -n 5 |
			awk '{ print (length($0) > 300 ? substr($0, 1, 140) " ... " substr($0, length($0) - 140) : $0) }' |
			sed 's/^/      | /'
	fi
}

# compare_restore DESC SEED-DIR GOT KIND: GOT holds the restored tree.
compare_restore() {
	local desc=$1 s=$2 got=$3 kind=$4
	if [ ! -d "$got" ]; then
		fail "$desc: the restored tree exists" "$got is missing"
		return
	fi
	tree_manifest "$got" $XOPT >"$s/$kind.manifest"
	check_same_tree "$desc: contents, types, modes, owners, links, devices, xattrs, mtimes (ns)" \
		"$s/orig.manifest" "$s/$kind.manifest"
	check_sparse "$desc: sparse files stay sparse" "$s/src" "$got"
}

# run_seed SEED: one generated tree, backed up and restored twice.
run_seed() {
	local seed=$1 s=$T/seed-$1 start id= obj= entries fails=$T_FAIL
	start=$(date +%s)
	t_log "# seed $seed"
	mkdir -p "$s"
	# shellcheck disable=SC2086 # options, split on spaces
	if ! python3 "$GENTREE" "$seed" "$s/src" --size "$SIZE" $HUGE $TREE_OPTS \
		>"$s/gentree.out" 2>&1; then
		fail "seed $seed: gentree.py makes the tree" "$(tail -n 5 "$s/gentree.out")"
		seed_done "$seed" "$s" "$fails" "$start" ""
		return
	fi
	sed 's/^/  /' "$s/gentree.out"
	XOPT=
	grep -q 'no user xattrs' "$s/gentree.out" && XOPT=noxattr
	tree_manifest "$s/src" $XOPT >"$s/orig.manifest"

	t_config <<-EOF
		[source tree]
		type = files
		paths = $s/src
	EOF
	cf backup tree
	check_rc "seed $seed: backup" 0
	cp "$ERR" "$s/backup.err"
	check_no_warnings "seed $seed: the backup warns about nothing" "$ERR"
	id=$(awk 'NR == 1 { print $1 }' "$OUT")
	if [ -n "$id" ]; then # also a partial backup (exit 8): what it holds must restore
		obj=$(object_path "$id" files)
		entries=$("$COFFER_BIN" --config "$CONF" show "$id" --json | jq -r '.meta.entries')
		check_eq "seed $seed: the backup counts every entry" "$(wc -l <"$s/orig.manifest")" "$entries"
	fi
	if [ -z "$obj" ] || [ ! -f "$obj" ]; then
		fail "seed $seed: the backup stored its object" "no object for id '$id'"
		t_dump_last
	else
		# --- coffer restore
		cf restore "$id" --to "$s/r1"
		check_rc "seed $seed: coffer restore --to" 0
		cp "$ERR" "$s/restore.err"
		check_no_warnings "seed $seed: coffer restore warns about nothing" "$ERR"
		[ "$RC" = 0 ] && compare_restore "seed $seed: coffer restore" "$s" "$s/r1/${s#/}/src" coffer

		# --- age | zstd | GNU tar
		if [ $GNUTAR = 1 ]; then
			mkdir "$s/r2"
			if age -d -i "$KEY" "$obj" | zstd -d -q |
				tar -x --xattrs --xattrs-include='*' -p --numeric-owner --warning=no-timestamp -C "$s/r2" 2>"$s/tar.err"; then
				pass "seed $seed: age -d | zstd -d | tar -x extracts the object"
			else
				fail "seed $seed: age -d | zstd -d | tar -x extracts the object" \
					"$(head -n 5 "$s/tar.err" | cut -c1-300)"
			fi
			# Known and harmless: GNU tar does not know the keyword hdrcharset
			# (libarchive writes hdrcharset=BINARY for names that are not
			# UTF-8), libarchive's LIBARCHIVE.xattr.* (it reads the
			# SCHILY.xattr.* copies) nor SCHILY.devmajor/devminor (written for
			# device numbers from 2^18 on; the ustar fields hold them too).
			# Mtimes in the future or before 1970 are the tree's own
			# (--warning=no-timestamp above).
			grep -a -v -e "unknown extended header keyword 'hdrcharset'" \
				-e "unknown extended header keyword 'LIBARCHIVE\.xattr\." \
				-e "unknown extended header keyword 'SCHILY\.dev\(major\|minor\)'" \
				"$s/tar.err" >"$s/tar.warnings"
			if [ -s "$s/tar.warnings" ]; then
				fail "seed $seed: GNU tar reads the stream without warnings" \
					"$(head -n 5 "$s/tar.warnings" | cut -c1-300)"
			else
				pass "seed $seed: GNU tar reads the stream without warnings"
			fi
			compare_restore "seed $seed: age|zstd|tar" "$s" "$s/r2/${s#/}/src" tar
		fi
	fi
	seed_done "$seed" "$s" "$fails" "$start" "$id"
}

# seed_done SEED SEED-DIR FAILS-BEFORE START ID: the seed's verdict; removes
# its folder and object if it passed.
seed_done() {
	local seed=$1 s=$2 fails=$3 start=$4 id=$5 d
	t_log "# seed $seed took $(($(date +%s) - start)) s"
	if [ "$T_FAIL" != "$fails" ]; then
		FAILED_SEEDS="$FAILED_SEEDS $seed"
		t_log "FAIL seed $seed; replay it with: $(replay "$seed")"
		t_log "      its tree, repository object, manifests and diffs: $s"
		# Keep the evidence, but not restored copies that went dense.
		for d in "$s/r1" "$s/r2"; do
			if [ -d "$d" ] && [ "$(du -sk "$d" | cut -f1)" -gt $((1024 * 1024)) ]; then
				rm -rf -- "$d"
				t_log "      (removed $d: over 1 GiB allocated)"
			fi
		done
	elif [ "${COFFER_KEEP:-0}" != 1 ]; then
		rm -rf -- "$s"
		[ -z "$id" ] || rm -rf -- "$REPO/tree/$id"
	fi
}

FAILED_SEEDS=
XOPT=
for seed in $SEEDS; do
	run_seed "$seed"
done
if [ -n "$FAILED_SEEDS" ]; then
	t_log "# failed seeds:$FAILED_SEEDS"
	for seed in $FAILED_SEEDS; do
		t_log "#   $(replay "$seed")"
	done
fi
t_finish
