# lib.sh: shared helpers of coffer's integration tests (sourced, not run).
#
# A test script sources this file, calls t_setup NAME, writes a configuration
# with t_config, runs coffer with cf ARGS... and checks the results with the
# check_* functions, which print what failed and count passes and failures.
# It ends with t_finish, which prints "N passed, M failed" and exits 0 (all
# passed) or 1. t_skip MSG exits 77 (CTest's skip code).
#
# Environment (set by tests/CMakeLists.txt; defaults allow running a script
# by hand from the repository root after ./packaging/build.sh):
#   COFFER_BIN       the coffer executable
#   COFFER_SRC       the repository root
#   COFFER_TOOLS     <build>/tests (helper programs)
#   COFFER_TEST_TMP  scratch folder; each script makes its own folder in it
#   COFFER_KEEP=1    keep the scratch folder even when every check passed

set -u
set -o pipefail

COFFER_SRC=${COFFER_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
COFFER_BIN=${COFFER_BIN:-$COFFER_SRC/build/agent/coffer}
COFFER_TOOLS=${COFFER_TOOLS:-$COFFER_SRC/build/tests}
COFFER_TEST_TMP=${COFFER_TEST_TMP:-$COFFER_SRC/build/tests/tmp}
export LC_ALL=C.UTF-8

T_PASS=0
T_FAIL=0
T_NAME=
T=          # this script's scratch folder
KEY=        # the identity file made by t_setup
RECIPIENT=  # its public recipient
CONF=       # the configuration file cf uses
REPO=       # the repository folder of the default configuration
CATALOG=    # the catalog folder of the default configuration
RC=         # exit status of the last cf
OUT=        # file holding the stdout of the last cf
ERR=        # file holding the stderr of the last cf
T_CLEANUP=()  # commands run at exit (umount, kill), last added first

t_log() { printf '%s\n' "$*"; }

# Prints the last coffer invocation's output, for a failure report.
t_dump_last() {
	if [ -n "$ERR" ] && [ -s "$ERR" ]; then
		sed 's/^/      stderr: /' "$ERR" | head -n 20
	fi
}

pass() {
	T_PASS=$((T_PASS + 1))
	t_log "ok   $1"
}

fail() {
	local msg
	T_FAIL=$((T_FAIL + 1))
	t_log "FAIL $1"
	shift
	for msg in "$@"; do
		t_log "      $msg"
	done
}

# check DESC CMD...: passes when CMD exits 0.
check() {
	local desc=$1
	shift
	if "$@"; then
		pass "$desc"
	else
		fail "$desc" "command failed: $*"
	fi
}

# check_not DESC CMD...: passes when CMD exits non-zero.
check_not() {
	local desc=$1
	shift
	if "$@"; then
		fail "$desc" "command unexpectedly succeeded: $*"
	else
		pass "$desc"
	fi
}

# check_eq DESC EXPECTED ACTUAL
check_eq() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		fail "$1" "expected: $(printf '%q' "$2")" "actual:   $(printf '%q' "$3")"
	fi
}

# check_rc DESC EXPECTED...: the last cf exited with one of EXPECTED.
check_rc() {
	local desc=$1 e
	shift
	for e in "$@"; do
		if [ "$RC" = "$e" ]; then
			pass "$desc (exit $RC)"
			return
		fi
	done
	fail "$desc" "expected exit status $*, got $RC"
	t_dump_last
}

# check_grep DESC FILE EXTENDED-REGEX: FILE has a line matching.
check_grep() {
	if grep -Eq -- "$3" "$2"; then
		pass "$1"
	else
		fail "$1" "no line of $(basename "$2") matches /$3/; it holds:"
		sed 's/^/      | /' "$2" | head -n 20
	fi
}

# check_no_grep DESC FILE EXTENDED-REGEX: FILE has no line matching.
check_no_grep() {
	if grep -Eq -- "$3" "$2"; then
		fail "$1" "a line of $(basename "$2") matches /$3/:"
		grep -E -- "$3" "$2" | sed 's/^/      | /' | head -n 10
	else
		pass "$1"
	fi
}

# check_same_file DESC EXPECTED ACTUAL: byte-identical files.
check_same_file() {
	if [ ! -e "$3" ]; then
		fail "$1" "$3 does not exist"
	elif cmp -s -- "$2" "$3"; then
		pass "$1"
	else
		fail "$1" "$3 differs from $2 ($(stat -c %s -- "$2") vs $(stat -c %s -- "$3") bytes;" \
			"$(cmp -- "$2" "$3" 2>&1 | head -n 1))"
	fi
}

# check_absent DESC PATH
check_absent() {
	if [ -e "$2" ] || [ -L "$2" ]; then
		fail "$1" "$2 exists"
	else
		pass "$1"
	fi
}

# check_empty_output DESC CMD...: CMD prints nothing (e.g. a find for leftovers).
check_empty_output() {
	local desc=$1 out
	shift
	out=$("$@" 2>&1)
	if [ -z "$out" ]; then
		pass "$desc"
	else
		fail "$desc" "$* printed:"
		printf '%s\n' "$out" | sed 's/^/      | /' | head -n 20
	fi
}

# check_one_error_line DESC: the last cf's stderr has exactly one
# "coffer: error: " line, and every line of it is a coffer log line.
check_one_error_line() {
	local n
	n=$(grep -c '^coffer: error: ' "$ERR")
	if [ "$n" = 1 ]; then
		pass "$1"
	else
		fail "$1" "expected exactly one 'coffer: error:' line on stderr, got $n"
		t_dump_last
	fi
}

# Runs the atexit commands and removes the scratch folder if all passed.
t_atexit() {
	local i
	for ((i = ${#T_CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${T_CLEANUP[i]}" >/dev/null 2>&1 || true
	done
	if [ -n "$T" ] && [ -d "$T" ]; then
		if [ "$T_FAIL" = 0 ] && [ "${COFFER_KEEP:-0}" != 1 ]; then
			rm -rf -- "$T"
		else
			t_log "scratch folder kept: $T"
		fi
	fi
}

t_at_exit() { T_CLEANUP+=("$1"); }

t_skip() {
	t_log "SKIP: $*"
	exit 77
}

# t_setup NAME: scratch folder, an identity, the default paths.
t_setup() {
	T_NAME=$1
	if [ ! -x "$COFFER_BIN" ]; then
		echo "COFFER_BIN=$COFFER_BIN is not an executable; build first" >&2
		exit 1
	fi
	for tool in age zstd python3 jq; do
		command -v "$tool" >/dev/null || t_skip "$tool is not installed (packaging/install-deps.sh --test)"
	done
	mkdir -p "$COFFER_TEST_TMP"
	T=$(mktemp -d "$COFFER_TEST_TMP/$T_NAME.XXXXXX") || exit 1
	trap t_atexit EXIT
	trap 'exit 130' INT TERM
	OUT=$T/last.out
	ERR=$T/last.err
	: >"$OUT"
	: >"$ERR"
	KEY=$T/key.txt
	if ! "$COFFER_BIN" keygen -o "$KEY" >"$T/recipient" 2>"$ERR"; then
		echo "coffer keygen failed:" >&2
		cat "$ERR" >&2
		exit 1
	fi
	RECIPIENT=$(cat "$T/recipient")
	REPO=$T/repo
	CATALOG=$T/catalog
	CONF=$T/coffer.conf
	mkdir -p "$REPO"
	t_log "# $T_NAME: $("$COFFER_BIN" --version), scratch $T"
}

# t_config [FILE]: writes a configuration with the default repository,
# catalog, key and compression, followed by the text on stdin (the
# [source ...] sections). FILE defaults to $CONF.
t_config() {
	local file=${1:-$CONF}
	{
		printf '[repository]\ntype = posix\npath = %s\n\n' "$REPO"
		printf '[catalog]\npath = %s\n\n' "$CATALOG"
		printf '[encryption]\nrecipients = %s\nidentity = %s\n\n' "$RECIPIENT" "$KEY"
		printf '[compression]\nlevel = 3\nworkers = auto\n\n'
		cat
	} >"$file"
}

# cf ARGS...: runs coffer with the default configuration; the exit status
# goes to $RC, stdout to $OUT, stderr to $ERR. Stdin is inherited.
cf() {
	"$COFFER_BIN" --config "$CONF" "$@" >"$OUT" 2>"$ERR"
	RC=$?
	return 0
}

# cf_conf CONFIG ARGS...: like cf with another configuration file.
cf_conf() {
	local conf=$1
	shift
	"$COFFER_BIN" --config "$conf" "$@" >"$OUT" 2>"$ERR"
	RC=$?
	return 0
}

# list_json [CONFIG]: prints `coffer list --json` (empty output on failure).
list_json() {
	"$COFFER_BIN" --config "${1:-$CONF}" list --json 2>"$T/list.err" || {
		echo "coffer list --json failed: $(cat "$T/list.err")" >&2
		return 1
	}
}

# last_id SOURCE [STATUS] [CONFIG]: the id of the newest backup of SOURCE
# with STATUS (default complete) in the catalog; empty if none.
last_id() {
	list_json "${3:-$CONF}" | jq -r --arg s "$1" --arg st "${2:-complete}" \
		'[.[] | select(.source == $s and .status == $st)] | last | .id // empty'
}

# count_status SOURCE STATUS [CONFIG]: how many backups of SOURCE have STATUS.
count_status() {
	list_json "${3:-$CONF}" | jq --arg s "$1" --arg st "$2" \
		'[.[] | select(.source == $s and .status == $st)] | length'
}

# object_path ID [NAME]: the repository file of a backup's object (from show --json).
object_path() {
	local key
	key=$("$COFFER_BIN" --config "$CONF" show "$1" --json |
		jq -r --arg n "${2:-}" '.objects[] | select($n == "" or .name == $n) | .key' | head -n 1)
	[ -n "$key" ] && printf '%s/%s\n' "$REPO" "$key"
}

# flip_byte FILE [OFFSET]: xor one byte of FILE (default: the middle one), so
# it always changes (writing a fixed byte leaves a file that held that byte
# there as it was, one time in 256).
flip_byte() {
	python3 - "$1" "${2:-}" <<'PY'
import os, sys
path = sys.argv[1]
off = int(sys.argv[2]) if sys.argv[2] else os.path.getsize(path) // 2
with open(path, "r+b") as f:
    f.seek(off)
    b = f.read(1)
    f.seek(off)
    f.write(bytes([b[0] ^ 0x01]))
PY
}

# Backup folders (<repo>/<source>/<id>) of repository $1 without a manifest.json.
dirs_without_manifest() {
	local d
	find "$1" -mindepth 2 -maxdepth 2 -type d | while IFS= read -r d; do
		[ -e "$d/manifest.json" ] || printf '%s\n' "$d"
	done
}

# Prints the summary line and exits 0 when every check passed, else 1.
t_finish() {
	t_log "$T_NAME: $T_PASS passed, $T_FAIL failed"
	if [ "$T_FAIL" != 0 ]; then
		exit 1
	fi
	if [ "$T_PASS" = 0 ]; then
		t_log "$T_NAME: no check ran"
		exit 1
	fi
	exit 0
}

# tree_manifest DIR [OPTION...]: one line per entry under DIR (DIR itself is
# "."), sorted by name: path, st_mode (octal), uid, gid, mtime, then size and
# SHA-256 for files, the target for symlinks, the device number for devices,
# for entries with several links (not directories) the first name of the
# group (so hard links must come back as links of one inode), and the user.*
# xattrs with their values. Names (and xattr names with spaces or control
# characters) are printed with Python's repr, so newlines and invalid UTF-8 in
# them are safe. Paths longer than PATH_MAX are read relative to their
# directory. Files of 64 MiB and more get a digest that reads only their data
# regions (SEEK_DATA): the SHA-256 of the index and SHA-256 of every non-zero
# 1 MiB block, so a 9 GiB sparse file takes no time.
# Options:
#   noxattr     leave out the xattrs
#   sec         mtimes in whole seconds (default: nanoseconds)
#   nodirtime   leave out the mtimes of directories
#   onlytimes   print only path and mtime (ns) (with nodirtime: of non-directories)
#   onlydirtimes print only directories, with their mtime (s)
tree_manifest() {
	python3 - "$@" <<'PY'
import errno, hashlib, os, stat, sys
root = sys.argv[1]
opts = set(sys.argv[2:])
times_only = "onlytimes" in opts or "onlydirtimes" in opts
BLOCK = 1 << 20
ZERO = bytes(BLOCK)

def digest(fd, size):
    h = hashlib.sha256()
    if size < 64 * BLOCK:
        for block in iter(lambda: os.read(fd, BLOCK), b""):
            h.update(block)
        return h.hexdigest()
    # Sparse-aware: only the data regions are read.
    done = -1  # last block hashed
    off = 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
            end = os.lseek(fd, start, os.SEEK_HOLE)
        except OSError as e:
            if e.errno == errno.ENXIO:
                break
            if e.errno != errno.EINVAL:
                raise
            start, end = off, size  # no SEEK_DATA here: all data
        for k in range(max(start // BLOCK, done + 1), (end - 1) // BLOCK + 1):
            block = os.pread(fd, BLOCK, k * BLOCK)
            if block != ZERO[:len(block)]:
                h.update(k.to_bytes(8, "little") + hashlib.sha256(block).digest())
            done = k
        off = end
    return "sparse:" + h.hexdigest()

def describe(path, st, name=None, dfd=None):
    """The type-specific fields and xattrs of one entry (name relative to the
    open directory dfd, or path when dfd is None)."""
    f = []
    at = path if dfd is None else "/proc/self/fd/%d/%s" % (dfd, name)
    if times_only:
        return f, []
    if stat.S_ISREG(st.st_mode):
        if dfd is None:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        else:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)
        try:
            f += ["size=%d" % st.st_size, digest(fd, st.st_size)]
        finally:
            os.close(fd)
    elif stat.S_ISLNK(st.st_mode):
        f.append("-> %r" % (os.readlink(path) if dfd is None else os.readlink(name, dir_fd=dfd)))
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        f.append("rdev=%d,%d" % (os.major(st.st_rdev), os.minor(st.st_rdev)))
    x = []
    if "noxattr" not in opts and not stat.S_ISLNK(st.st_mode):
        for xn in sorted(os.listxattr(at, follow_symlinks=False)):
            if xn.startswith("user."):
                shown = xn if xn.isprintable() and " " not in xn else repr(xn)
                x.append("xattr %s=%r" % (shown, os.getxattr(at, xn, follow_symlinks=False)))
    return f, x

entries = [(root, os.lstat(root), describe(root, os.lstat(root)))]
for d, dirs, files, dfd in os.fwalk(root):
    for n in dirs + files:
        try:
            st = os.stat(n, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        entries.append((os.path.join(d, n), st, describe(None, st, n, dfd)))
entries.sort(key=lambda e: e[0])
first_of_inode = {}
lines = []
for p, st, extra in entries:
    rel = os.path.relpath(p, root)
    if "onlydirtimes" in opts:
        if stat.S_ISDIR(st.st_mode):
            lines.append("%r %d" % (rel, st.st_mtime_ns // 10**9))
        continue
    if "onlytimes" in opts:
        if "nodirtime" in opts and stat.S_ISDIR(st.st_mode):
            continue
        lines.append("%r %d" % (rel, st.st_mtime_ns))
        continue
    mtime = str(st.st_mtime_ns // 10**9 if "sec" in opts else st.st_mtime_ns)
    if "nodirtime" in opts and stat.S_ISDIR(st.st_mode):
        mtime = "-"
    f = [repr(rel), "%o" % st.st_mode, str(st.st_uid), str(st.st_gid), mtime] + extra[0]
    if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
        f.append("links=%d group=%r" % (st.st_nlink, first_of_inode.setdefault(st.st_ino, rel)))
    lines.append(" ".join(f + extra[1]))
print("\n".join(lines))
PY
}

# check_same_manifest DESC EXPECTED-FILE ACTUAL-FILE: two tree_manifest
# outputs are equal; prints the differing lines if not.
check_same_manifest() {
	if diff -u "$2" "$3" >"$T/manifest.diff"; then
		pass "$1 ($(wc -l <"$2") entries)"
	else
		fail "$1" "(- original, + restored; first 30 lines):"
		sed -n '3,$p' "$T/manifest.diff" | grep '^[-+]' | head -n 30 | cut -c1-220 | sed 's/^/      /'
	fi
}

