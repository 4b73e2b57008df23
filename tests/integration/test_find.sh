# test_find: finding backups as restic users expect, on a posix repository.
# `latest` (with --source) is the newest complete backup by start time; an id
# prefix of 4 or more characters must be unique (an ambiguous one is exit 2
# naming the candidates, none is exit 3); `list` filters (--source, --status,
# --since, --host) and its location column; `show` prints the source's meta.
. "$(dirname "$0")/lib.sh"
t_setup find

mkdir -p "$T/src"
echo hello >"$T/src/a.txt"
t_config <<EOF
[source tree]
type = files
paths = $T/src

[source cmd]
type = command
command = sh -c 'test -e $T/fail && { echo broken >&2; exit 3; }; echo data'
EOF

# Backups of two sources, interleaved: tree, logs (stdin), tree, logs, cmd.
cf backup tree
check_rc "backup tree (1)" 0
cf backup --stdin logs <<<one
check_rc "backup --stdin logs (1)" 0
cf backup tree
check_rc "backup tree (2)" 0
cf backup --stdin logs <<<two
check_rc "backup --stdin logs (2)" 0
cf backup cmd
check_rc "backup cmd" 0
# A newer run of cmd that fails: latest must skip it.
touch "$T/fail"
cf backup cmd
check_rc "backup cmd (failing)" 5
rm -f "$T/fail"

TREE1=$(list_json | jq -r '[.[] | select(.source == "tree")][0].id')
TREE2=$(last_id tree)
LOGS2=$(last_id logs)
CMD1=$(last_id cmd)
CMDF=$(last_id cmd failed)
check "two tree backups" test -n "$TREE1" -a -n "$TREE2" -a "$TREE1" != "$TREE2"
check "a failed cmd run is recorded" test -n "$CMDF"

# --- latest ------------------------------------------------------------------------
cf show latest --source tree --json
check_rc "show latest --source tree" 0
check_eq "latest of tree is its newest backup" "$TREE2" "$(jq -r .id "$OUT")"
cf show latest --source logs --json
check_eq "latest of logs is its newest backup" "$LOGS2" "$(jq -r .id "$OUT")"
cf show latest --source cmd --json
check_rc "show latest --source cmd" 0
check_eq "latest of cmd skips the newer failed run" "$CMD1" "$(jq -r .id "$OUT")"
cf show latest
check_rc "latest without --source when several sources have backups" 2
check_one_error_line "latest without --source: one error line"
check_grep "latest without --source: names the sources and says to add --source" "$ERR" \
	"'latest' is ambiguous: .*3 sources \(cmd, logs, tree\); add --source S"
cf show latest --source nosuch
check_rc "latest of a source without backups" 3
check_grep "latest of a source without backups: says so" "$ERR" "no complete backup of source nosuch"
cf restore latest --source tree --to "$T/out-latest"
check_rc "restore latest --source tree" 0
check "restore latest --source tree restores the tree" test -f "$T/out-latest/${T#/}/src/a.txt"

cf ls latest --source tree
check_rc "ls latest --source tree" 0
check_grep "ls latest --source tree lists the tree's file" "$OUT" "src/a\.txt\$"
cf ls latest
check_rc "ls latest without --source when several sources have backups" 2
cf ls "${TREE2:0:20}"
check_rc "ls by a unique prefix" 0
check_grep "ls by a unique prefix lists the tree's file" "$OUT" "src/a\.txt\$"

# A configuration whose catalog knows one source only: latest needs no --source.
ONE=$T/one.conf
sed "s|^path = $CATALOG\$|path = $T/catalog-one|" "$CONF" >"$ONE"
cf_conf "$ONE" backup --stdin solo <<<solo
check_rc "backup into a catalog of one source" 0
SOLO=$(last_id solo complete "$ONE")
cf_conf "$ONE" show latest --json
check_rc "latest without --source when one source has backups" 0
check_eq "latest without --source is that source's newest" "$SOLO" "$(jq -r .id "$OUT")"
cf_conf "$ONE" restore latest --to "$T/out-solo"
check_rc "restore latest (one source)" 0
check_eq "restore latest restored the solo backup" solo "$(cat "$T/out-solo/stdin" 2>/dev/null)"

# --- id prefixes ---------------------------------------------------------------------
# A unique prefix: the id up to the milliseconds is unique here.
P=${LOGS2:0:20}
cf show "$P" --json
check_rc "show by a unique prefix" 0
check_eq "the prefix resolves to the backup" "$LOGS2" "$(jq -r .id "$OUT")"
cf restore "$P" --to "$T/out-prefix"
check_rc "restore by a unique prefix" 0
check_eq "restore by prefix restored that backup" two "$(cat "$T/out-prefix/stdin" 2>/dev/null)"
cf show "$P" --source tree
check_rc "a prefix of another source's backup with --source" 3
cf show "$LOGS2" --source tree
check_rc "a whole id of another source with --source" 3
check_grep "a whole id of another source: names its source" "$ERR" "is of source logs, not tree"

# An ambiguous prefix: the longest prefix every id shares (the year at least,
# unless the run straddles New Year).
lcp() {
	local a=$1 b i=0
	shift
	for b in "$@"; do
		i=0
		while [ "$i" -lt "${#a}" ] && [ "${a:i:1}" = "${b:i:1}" ]; do i=$((i + 1)); done
		a=${a:0:i}
	done
	printf '%s\n' "$a"
}
ALL=$(list_json | jq -r '.[].id' | xargs)
N=$(list_json | jq length)
AMB=$(lcp $ALL)
if [ "${#AMB}" -ge 4 ]; then
	cf show "$AMB"
	check_rc "an ambiguous prefix" 2
	check_one_error_line "an ambiguous prefix: one error line"
	check_grep "an ambiguous prefix: says so, and to give more" "$ERR" \
		"backup id prefix $AMB is ambiguous: it matches more than 5 backups: .*; give more of the id"
	check_grep "an ambiguous prefix: names candidates with source and status" "$ERR" \
		"$TREE1 \(tree, complete\), "
	check_eq "an ambiguous prefix: names 5 candidates and '...'" 5 \
		"$(grep -oE '[0-9]{8}T[0-9]{6}\.[0-9]{3}Z-[0-9a-f]{8} \(' "$ERR" | wc -l)"
	check_grep "an ambiguous prefix: '...' for the rest ($N backups)" "$ERR" '\), \.\.\.; give'
	cf show "$(lcp "$TREE1" "$TREE2")" --source tree
	check_rc "a prefix ambiguous within --source tree" 2
	check_grep "within --source: both tree backups, nothing else" "$ERR" \
		"matches 2 backups of source tree: $TREE1 \(tree, complete\), $TREE2 \(tree, complete\);"
else
	t_log "note: the ids share fewer than 4 characters; ambiguity not checked"
fi
cf show 1999
check_rc "a prefix matching nothing" 3
check_grep "a prefix matching nothing: says so" "$ERR" "no backup has an id starting with 1999"
cf show 202
check_rc "a prefix shorter than 4 characters" 3
check_grep "a short prefix: says what is expected" "$ERR" \
	"'202' is not a backup id \(expected 'latest', an id such as .*, or its first 4 or more characters"
cf show nonsense
check_rc "text that is no id" 3
check_one_error_line "text that is no id: one error line"
cf restore 1999 --to "$T/out-none"
check_rc "restore of a prefix matching nothing" 3
check_absent "restore of a prefix matching nothing made no folder" "$T/out-none"

# --- show by id without a catalog record ----------------------------------------------
FRESH=$T/fresh.conf
sed "s|^path = $CATALOG\$|path = $T/catalog-fresh|" "$CONF" >"$FRESH"
cf_conf "$FRESH" show "$TREE1" --json
check_rc "show of a backup the catalog has no record of (read from the repository)" 0
check_eq "show reads its manifest" "$TREE1" "$(jq -r .id "$OUT")"
cf_conf "$FRESH" show latest --source tree
check_rc "latest with an empty catalog" 3
check_grep "latest with an empty catalog: says to rebuild" "$ERR" "catalog rebuild"

# --- list filters ----------------------------------------------------------------------
# A partial backup (an unreadable file), where capabilities can be dropped.
NOCAP="setpriv --bounding-set -dac_override,-dac_read_search"
PARTIAL=
mkdir -p "$T/part"
echo ok >"$T/part/ok"
echo secret >"$T/part/secret"
chmod 000 "$T/part/secret"
printf '\n[source part]\ntype = files\npaths = %s\n' "$T/part" >>"$CONF"
if $NOCAP true 2>/dev/null; then
	$NOCAP "$COFFER_BIN" --config "$CONF" backup part >"$OUT" 2>"$ERR"
	RC=$?
	check_rc "backup part (partial)" 8
	PARTIAL=$(last_id part)
else
	t_log "note: setpriv cannot drop capabilities here; no partial backup"
fi

list_ids() { jq -r '.[].id' "$OUT" | xargs; }
ALL=$(list_json | jq -r '.[].id' | xargs)
N=$(list_json | jq length)
cf list --source tree --json
check_eq "list --source tree" "$TREE1 $TREE2" "$(list_ids)"
cf list --status failed --json
check_rc "list --status failed" 0
check_eq "list --status failed: the failed cmd run" "$CMDF" "$(list_ids)"
cf list --status complete --json
check_eq "list --status complete: the complete backups, not the failed or partial ones" \
	"$(list_json | jq -r '[.[] | select(.status == "complete" and .partial == false) | .id] | join(" ")')" \
	"$(list_ids)"
NPART=0
[ -z "$PARTIAL" ] || NPART=1
check_eq "list --status complete: all but the failed and partial" "$((N - 1 - NPART))" "$(jq length "$OUT")"
cf list --status running --json
check_eq "list --status running: none" 0 "$(jq length "$OUT")"
if [ -n "$PARTIAL" ]; then
	cf list --status partial --json
	check_eq "list --status partial: the partial backup" "$PARTIAL" "$(list_ids)"
	cf list --status partial
	check_grep "list --status partial (text): its line says partial" "$OUT" "^$PARTIAL +part +partial "
fi
cf list --status done
check_rc "list --status with a bad value" 2
check_one_error_line "list --status with a bad value: one error line"
check_grep "list --status with a bad value: names the option and the values" "$ERR" \
	"--status 'done' is not a status \(expected running, complete, failed or partial\)"

HOST=$(list_json | jq -r '.[0].host')
cf list --host "$HOST" --json
check_eq "list --host (this host): every backup" "$ALL" "$(list_ids)"
cf list --host no-such-host --json
check_eq "list --host (another host): none" 0 "$(jq length "$OUT")"
cf list --host no-such-host
check_rc "list --host with no match (text)" 0
check_grep "list with filters matching nothing says so" "$OUT" "^no backups matching the filters in posix:"

cf list --since 1h --json
check_eq "list --since 1h: every backup" "$ALL" "$(list_ids)"
cf list --since 2000-01-01 --json
check_eq "list --since 2000-01-01: every backup" "$ALL" "$(list_ids)"
cf list --since 2999-01-01 --json
check_eq "list --since a future date: none" 0 "$(jq length "$OUT")"
STARTED=$(list_json | jq -r --arg id "$TREE2" '.[] | select(.id == $id) | .started')
FROM_TREE2=$(list_json | jq -r --arg s "$STARTED" '[.[] | select(.started >= $s) | .id] | join(" ")')
cf list --since "$STARTED" --json
check_rc "list --since an RFC 3339 time" 0
check_eq "list --since TIME: the backups started at or after it" "$FROM_TREE2" "$(list_ids)"
# The same instant with an offset and a fraction of 6 digits.
EPOCH=$(date -u -d "$STARTED" +%s)
MS=${STARTED:20:3}
PLUS=$(date -u -d "@$((EPOCH + 5400))" +%Y-%m-%dT%H:%M:%S).${MS}000+01:30
cf list --since "$PLUS" --json
check_eq "list --since TIME+01:30: the same backups" "$FROM_TREE2" "$(list_ids)"
cf list --since "$(date -u -d "@$((EPOCH + 1))" +%Y-%m-%dT%H:%M:%SZ)" --json
check_eq "list --since one second after tree's start: not tree's" 0 "$(list_ids | grep -c "$TREE2")"
for bad in yesterday 7x 2026-13-01 2026-12-1 2026-12-01T10:00 2026-12-01T10:00:00+1 ""; do
	cf list --since "$bad"
	check_rc "list --since '$bad' is refused" 2
	re=$(printf '%s' "$bad" | sed 's/[+.]/\\&/g')
	check_grep "list --since '$bad': names the option and the forms" "$ERR" \
		"--since '$re' is not a time \(expected a duration .*7d, 24h.*2026-12-01.*2026-12-01T08:00:00Z\)"
done

# Combined filters: all must match.
cf list --source tree --since "$STARTED" --status complete --host "$HOST" --json
check_eq "list with four filters: tree's newest only" "$TREE2" "$(list_ids)"
cf list --source cmd --status complete --json
check_eq "list --source cmd --status complete" "$CMD1" "$(list_ids)"
cf list --source cmd --status failed --host no-such-host --json
check_eq "list --source cmd --status failed --host other: none" 0 "$(jq length "$OUT")"

# --- the location column ---------------------------------------------------------------
cf list
check_grep "list (text): a LOCATION column" "$OUT" '^ID +SOURCE +STATUS +STARTED +RAW +STORED +COPIES +CHECKED +LOCATION$'
LOC=$(list_json | jq -r '.[0].locations[0]')
check_eq "--json has the full location" "posix:$REPO" "$LOC"
if [ "${#LOC}" -gt 28 ]; then
	SHORT="posix:...${LOC: -19}"
	check_eq "list (text): a long location is shortened to its scheme and end" "$N" \
		"$(grep -cF -- "  $SHORT" "$OUT")"
	check_eq "list (text): the shortened location is 28 characters" 28 "${#SHORT}"
fi
SHORTREPO=$(mktemp -d /tmp/cfr.XXXX)
t_at_exit "rm -rf '$SHORTREPO'"
sed -e "s|^path = $REPO\$|path = $SHORTREPO|" -e "s|^path = $CATALOG\$|path = $T/catalog-short|" \
	"$CONF" >"$T/short.conf"
cf_conf "$T/short.conf" backup --stdin s <<<short
check_rc "backup into a repository with a short path" 0
cf_conf "$T/short.conf" list
check_grep "list (text): a short location is shown whole" "$OUT" " +posix:$SHORTREPO\$"

# --- show prints meta ----------------------------------------------------------------
cf show "$TREE2"
check_rc "show (text)" 0
check_grep "show (text): the files source's meta: entries" "$OUT" '^meta: +entries: [0-9]+$'
check_grep "show (text): the files source's meta: warnings" "$OUT" '^meta: +warnings: 0$'
check_grep "show (text): the copy in the primary" "$OUT" "^copy: +primary +complete +posix:$REPO\$"
cf show "$TREE2" --json
check_eq "show --json: meta is an object with entries and warnings" "number number" \
	"$(jq -r '[.meta.entries, .meta.warnings] | map(type) | join(" ")' "$OUT")"
check_eq "show --json: partial, raw_bytes and stored_bytes as in list" "boolean number number" \
	"$(jq -r '[.partial, .raw_bytes, .stored_bytes] | map(type) | join(" ")' "$OUT")"
check_eq "show --json: partial is false" false "$(jq -r .partial "$OUT")"
check_eq "show --json: the same document list --json has for it" \
	"$(list_json | jq -S --arg id "$TREE2" '.[] | select(.id == $id)')" "$(jq -S . "$OUT")"
if [ -n "$PARTIAL" ]; then
	cf show "$PARTIAL"
	check_grep "show of a partial backup: status partial" "$OUT" '^status: +partial$'
	check_grep "show of a partial backup: says what is missing" "$OUT" \
		"^partial: +1 item\(s\) could not be backed up:$"
	check_grep "show of a partial backup: names the path" "$OUT" "^missing: +$T/part/secret: Permission denied"
	cf show "$PARTIAL" --json
	check_eq "show --json of a partial backup: partial, missing_count, missing" \
		"true 1 $T/part/secret: Permission denied" \
		"$(jq -r '"\(.partial) \(.missing_count) \(.missing[0])"' "$OUT")"
fi
# A database source's meta: the engine and its version (SQLite is a local file).
python3 -c "import sqlite3; c = sqlite3.connect('$T/app.db'); c.execute('create table t (x)'); c.execute('insert into t values (1)'); c.commit()"
printf '\n[source app]\ntype = sqlite\npath = %s\n' "$T/app.db" >>"$CONF"
cf backup app
check_rc "backup of a sqlite source" 0
cf show latest --source app
check_rc "show latest --source app" 0
check_grep "show (text): the engine" "$OUT" '^meta: +engine: sqlite$'
check_grep "show (text): the engine's version" "$OUT" '^meta: +sqlite_version: 3\.[0-9]+'
check_grep "show (text): numbers in meta" "$OUT" '^meta: +pages: [0-9]+$'
cf show latest --source app --json
check_eq "show --json: meta.engine" sqlite "$(jq -r .meta.engine "$OUT")"

t_finish
