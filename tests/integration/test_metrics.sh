#!/bin/bash
# metrics_file: after every command that changes the catalog, a Prometheus
# textfile that `promtool check metrics` accepts, whose values are the
# catalog's (checked against `coffer list --json` and `status --json`).
. "$(dirname "$0")/lib.sh"
t_setup metrics
command -v promtool >/dev/null || fail "promtool is installed (packaging/install-deps.sh --test: prometheus)"

M=$T/node/coffer.prom
mkdir -p "$T/node" "$T/second"
t_config <<EOF
[repository second]
path = $T/second

[source one]
type = command
command = seq 1 10000
expect_every = 24h

[source broken]
type = command
command = sh -c 'exit 3'
EOF
sed -i "s|^\[catalog\]|[catalog]\nmetrics_file = $M|" "$CONF"

cf backup one
check_rc "backup" 0
check "the metrics file is written" test -s "$M"
check "promtool check metrics accepts it" sh -c "promtool check metrics <'$M'"
# metric NAME LABELS: the value of one sample.
metric() { awk -v k="$1{$2}" '$1 == k {print $2}' "$M"; }
ID=$(last_id one)
started=$(list_json | jq --arg id "$ID" '.[] | select(.id == $id) | .started' -r)
check_eq "last success = the backup's start (list --json)" "$(date -u -d "$started" +%s.%3N)" \
	"$(printf '%.3f' "$(metric coffer_backup_last_success_timestamp_seconds 'source="one"')")"
check_eq "per repository too" "$(metric coffer_backup_last_success_timestamp_seconds 'source="one"')" \
	"$(metric coffer_repository_last_success_timestamp_seconds 'source="one",repository="second"')"
check_eq "stored bytes (list --json)" "$(list_json | jq --arg id "$ID" '.[] | select(.id == $id) | [.objects[].stored_bytes] | add')" \
	"$(metric coffer_backup_last_stored_bytes 'source="one"')"
check_eq "no copy pending" 0 "$(metric coffer_backup_copies_pending 'source="one"')"
check_eq "one is healthy" 1 "$(metric coffer_source_healthy 'source="one"')"
check_eq "expect_every in seconds" 86400 "$(metric coffer_source_expect_every_seconds 'source="one"')"

cf backup broken
check_rc "a failing backup" 5
check "promtool still accepts the file" sh -c "promtool check metrics <'$M'"
check_eq "its last attempt failed" 0 "$(metric coffer_backup_last_attempt_success 'source="broken"')"
check_eq "it is not healthy" 0 "$(metric coffer_source_healthy 'source="broken"')"
check_eq "and has no last success" "" "$(metric coffer_backup_last_success_timestamp_seconds 'source="broken"')"

cf verify --latest --source one
check_rc "verify" 0
check_eq "the verify's result" 1 "$(metric coffer_verify_last_success 'source="one"')"
cf status --json
check_eq "the same health as status --json" \
	"$(jq -r '[.sources[] | "\(.source) \(if .healthy then 1 else 0 end)"] | join(" ")' "$OUT")" \
	"$(for s in one broken; do printf '%s %s ' $s "$(metric coffer_source_healthy "source=\"$s\"")"; done | sed 's/ $//')"
check_eq "no temporary file is left beside it" "coffer.prom" "$(ls "$T/node")"
t_finish
