# test_catalog_rebuild: the catalog is a cache of the repository's
# manifests. After losing it, `coffer catalog rebuild` must list the same
# complete backups (ids, sources, sizes) and restores must work; a fresh host
# with an empty catalog must restore by id without any rebuild.
. "$(dirname "$0")/lib.sh"
t_setup catalog_rebuild

mkdir -p "$T/files"
seq 1 50000 >"$T/files/numbers"
echo "hello" >"$T/files/hello"
head -c 200000 /dev/urandom >"$T/dump.expected"

t_config <<EOF
[source files]
type = files
paths = $T/files

[source dump]
type = command
command = cat $T/dump.expected

[source broken]
type = command
command = false
EOF

cf backup files
check_rc "backup 1 (files)" 0
cf backup dump
check_rc "backup 2 (dump)" 0
echo "changed" >>"$T/files/hello"
cf backup files
check_rc "backup 3 (files, changed)" 0
cf backup broken
check_rc "a failing backup (not in the repository, so not rebuilt)" 5

# normalized [CONFIG]: the complete backups as "id source status raw stored
# objects", in list order.
normalized() {
	list_json "${1:-$CONF}" | jq -r '.[] | select(.status == "complete") |
		"\(.id) \(.source) \(.status) \(.raw_bytes) \(.stored_bytes) \([.objects[] | "\(.name):\(.sha256)"] | join(","))"'
}
normalized >"$T/before"
check_eq "three complete backups before" 3 "$(wc -l <"$T/before")"
check_eq "sources before, oldest first" "files dump files" "$(cut -d' ' -f2 "$T/before" | xargs)"
FILES1=$(sed -n 1p "$T/before" | cut -d' ' -f1)
FILES2=$(sed -n 3p "$T/before" | cut -d' ' -f1)
DUMP=$(sed -n 2p "$T/before" | cut -d' ' -f1)
mkdir "$T/restore-before"
cf restore "$FILES2" --to "$T/restore-before/x"
check_rc "restore before losing the catalog" 0

# --- lose the catalog, rebuild ---------------------------------------------------
rm -rf "$CATALOG"
cf list --json
check_rc "list with the catalog gone" 0
check_eq "list with the catalog gone shows nothing" "[]" "$(tr -d ' \n' <"$OUT")"

cf catalog rebuild
check_rc "catalog rebuild" 0
check_grep "rebuild says how many backups it recorded" "$OUT" '3'
normalized >"$T/after"
check_same_file "list after rebuild: same ids, sources, status, sizes, digests, order" "$T/before" "$T/after"
check_eq "the failed run is not in the rebuilt catalog" 0 "$(count_status broken failed)"
check_eq "... and not complete either" 0 "$(count_status broken complete)"

cf restore "$DUMP" --stdout
check_rc "restore of the dump from the rebuilt catalog" 0
check_same_file "the dump restored after rebuild is identical" "$T/dump.expected" "$OUT"
cf restore "$FILES2" --to "$T/restore-after"
check_rc "restore of the files backup from the rebuilt catalog" 0
check_same_manifest_dirs() {
	tree_manifest "$1" >"$T/m1"
	tree_manifest "$2" >"$T/m2"
	check_same_manifest "$3" "$T/m1" "$T/m2"
}
check_same_manifest_dirs "$T/restore-before/x/${T#/}/files" "$T/restore-after/${T#/}/files" \
	"the files restored after rebuild equal those restored before"
check_eq "the second files backup holds the changed file" "$(cat "$T/files/hello")" \
	"$(cat "$T/restore-after/${T#/}/files/hello" 2>&1)"
cf restore "$FILES1" --to "$T/restore-old"
check_eq "the first files backup holds the old file" "hello" \
	"$(cat "$T/restore-old/${T#/}/files/hello" 2>&1)"

cf catalog rebuild
check_rc "a second rebuild" 0
normalized >"$T/again"
check_same_file "rebuilding twice records each backup once" "$T/before" "$T/again"

# --- a fresh host: empty catalog, no rebuild ---------------------------------------
sed "s|^path = $CATALOG\$|path = $T/fresh-catalog|" "$CONF" >"$T/fresh.conf"
cf_conf "$T/fresh.conf" list --json
check_eq "the fresh host's catalog is empty" "[]" "$(tr -d ' \n' <"$OUT")"
cf_conf "$T/fresh.conf" restore "$DUMP" --stdout
check_rc "fresh host: restore by id without a rebuild" 0
check_same_file "fresh host: the dump is identical" "$T/dump.expected" "$OUT"
cf_conf "$T/fresh.conf" restore "$FILES1" --to "$T/fresh-restore"
check_rc "fresh host: restore --to by id without a rebuild" 0
check_eq "fresh host: the files are there" "hello" "$(cat "$T/fresh-restore/${T#/}/files/hello" 2>&1)"
cf_conf "$T/fresh.conf" restore 20200101T000000.000Z-00000000 --stdout
check_rc "fresh host: an id in neither catalog nor repository is 'not found'" 3

# A manifest removed from the repository: the catalog still knows the id,
# but the backup is no longer complete there, so restore must refuse.
mv "$REPO/dump/$DUMP/manifest.json" "$T/manifest.saved"
cf restore "$DUMP" --stdout
check_rc "restore of a backup whose manifest is gone is an integrity failure" 4
mv "$T/manifest.saved" "$REPO/dump/$DUMP/manifest.json"

t_finish
