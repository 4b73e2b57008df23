# test_k8s_backup: the kubernetes source against the project's loopback HTTPS
# test API server (tests/harness/k8s-api.py: the real v1.30 discovery
# documents, a generated cluster of about 5,000 objects, fault modes): every
# object exactly once and cleaned, filters, forbidden kinds, an expired
# continue token, kubeconfig variants, TLS and credential failures, and
# restore --namespace / --kind / --print-apply-order.
. "$(dirname "$0")/lib.sh"
t_setup k8s_backup
. "$COFFER_SRC/tests/harness/k8s-env.sh"
python3 -c 'import yaml' 2>/dev/null || t_skip "python3-yaml is not installed"

k8s_start --objects 5000 --seed 7
for v in token tokenfile cert certdata exec exec-fail wrongca multi; do
	k8s_kubeconfig "$v" "$T/kc-$v"
done

# conf NAME KEY=VALUE...: a kubernetes source section.
conf() {
	local name=$1
	shift
	printf '[source %s]\ntype = kubernetes\n' "$name"
	for kv in "$@"; do printf '%s = %s\n' "${kv%%=*}" "${kv#*=}"; done
	printf '\n'
}
t_config <<EOF
$(conf all "kubeconfig=$T/kc-token" secrets=true owned=true page_size=100)
$(conf default "kubeconfig=$T/kc-token")
$(conf appa "kubeconfig=$T/kc-token" namespaces=app-a "exclude_kinds=configmaps")
$(conf label "kubeconfig=$T/kc-token" "label_selector=tier=frontend")
$(conf strict "kubeconfig=$T/kc-token" secrets=true strict=true)
$(conf tokenfile "kubeconfig=$T/kc-tokenfile" kinds=configmaps)
$(conf cert "kubeconfig=$T/kc-cert" kinds=configmaps)
$(conf certdata "kubeconfig=$T/kc-certdata" kinds=configmaps)
$(conf exec "kubeconfig=$T/kc-exec" kinds=configmaps)
$(conf execfail "kubeconfig=$T/kc-exec-fail" kinds=configmaps)
$(conf wrongca "kubeconfig=$T/kc-wrongca" kinds=configmaps)
$(conf multi "kubeconfig=$T/kc-multi" context=good kinds=configmaps)
$(conf multibad "kubeconfig=$T/kc-multi" kinds=configmaps)
$(conf slow "kubeconfig=$T/kc-token" kinds=configmaps timeout=2)
$(conf unreachable "kubeconfig=$T/kc-unreachable" kinds=configmaps)
EOF
sed "s#server: https://127.0.0.1:$K8S_PORT#server: https://127.0.0.1:9#" "$T/kc-token" >"$T/kc-unreachable"

# extract ID DIR: the archive of a backup, by the standard tools.
extract() {
	rm -rf "$2"
	mkdir -p "$2"
	age -d -i "$KEY" "$(object_path "$1")" | zstd -d -q | tar -x -C "$2"
}

# The files the backup of every object must hold, from the server's own list
# of what it generated, leaving out the documented runtime kinds.
python3 - "$K8S_EXPECTED" >"$T/expected.txt" <<'PY'
import json, sys
skip = {("events", ""), ("events", "events.k8s.io"), ("endpoints", ""),
        ("endpointslices", "discovery.k8s.io"), ("leases", "coordination.k8s.io"),
        ("nodes", ""), ("componentstatuses", ""), ("controllerrevisions", "apps"),
        ("volumeattachments", "storage.k8s.io"), ("csinodes", "storage.k8s.io"),
        ("csistoragecapacities", "storage.k8s.io")}
for line in open(sys.argv[1]):
    o = json.loads(line)
    group = o["apiVersion"].split("/")[0] if "/" in o["apiVersion"] else ""
    if (o["resource"], group) in skip:
        continue
    g = group or "core"
    if o.get("namespace"):
        print("namespaces/%s/%s/%s/%s.yaml" % (o["namespace"], g, o["kind"], o["name"]))
    else:
        print("cluster/%s/%s/%s.yaml" % (g, o["kind"], o["name"]))
PY
sort -o "$T/expected.txt" "$T/expected.txt"

# --- every object, once, cleaned -------------------------------------------------------
cf backup all
check_rc "backup of every object (secrets, owned objects)" 0
ID=$(last_id all)
extract "$ID" "$T/all"
(cd "$T/all" && find . -name '*.yaml' | sed 's#^\./##' | sort) >"$T/got.txt"
check_same_file "every generated object is in the archive exactly once" "$T/expected.txt" "$T/got.txt"
check "cluster-info.json is in the archive" test -s "$T/all/cluster-info.json"
check_eq "cluster-info counts the objects" "$(wc -l <"$T/expected.txt")" "$(jq .objects "$T/all/cluster-info.json")"
python3 - "$T/all" >"$T/clean.txt" 2>&1 <<'PY'
import os, sys, yaml
root = sys.argv[1]
bad = []
n = 0
for d, _, files in os.walk(root):
    for f in files:
        if not f.endswith(".yaml"):
            continue
        p = os.path.join(d, f)
        rel = os.path.relpath(p, root)
        o = yaml.safe_load(open(p))
        n += 1
        m = o.get("metadata", {})
        for k in ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink"):
            if k in m:
                bad.append("%s: metadata.%s" % (rel, k))
        if "status" in o:
            bad.append("%s: status" % rel)
        if "kubectl.kubernetes.io/last-applied-configuration" in (m.get("annotations") or {}):
            bad.append("%s: last-applied" % rel)
        for r in m.get("ownerReferences") or []:
            if "uid" in r:
                bad.append("%s: ownerReferences uid" % rel)
        if o.get("kind") == "Service" and ("clusterIP" in o.get("spec", {}) or "clusterIPs" in o.get("spec", {})):
            bad.append("%s: clusterIP" % rel)
        if o.get("kind") == "PersistentVolumeClaim" and "volumeName" in o.get("spec", {}):
            bad.append("%s: volumeName" % rel)
        parts = rel.split("/")
        if o.get("metadata", {}).get("name") + ".yaml" != parts[-1] or o.get("kind") != parts[-2]:
            bad.append("%s: name or kind does not match the path" % rel)
        if not o.get("apiVersion"):
            bad.append("%s: no apiVersion" % rel)
print("checked", n)
for b in bad[:20]:
    print(b)
sys.exit(1 if bad or n == 0 else 0)
PY
check "every file is YAML, cleaned as documented, named after its object" test $? = 0
head -n 5 "$T/clean.txt"

# --- the defaults: no Secrets, no objects made by controllers, no runtime kinds ---------
cf backup default
check_rc "backup with the defaults" 0
extract "$(last_id default)" "$T/default"
check_eq "no Secret without secrets = true" 0 "$(find "$T/default" -path '*/core/Secret/*' | wc -l)"
check_eq "no Pod owned by a ReplicaSet" 0 \
	"$(grep -l 'kind: ReplicaSet' -r "$T/default" --include='*.yaml' | grep -c '/core/Pod/' || true)"
check_eq "no Event" 0 "$(find "$T/default" -path '*/Event/*' | wc -l)"
check "Deployments are there" test -n "$(find "$T/default" -path '*/apps/Deployment/*' | head -n 1)"
check "the custom resources are there" test -n "$(find "$T/default" -path '*/example.com/Widget/*' | head -n 1)"
check "the CRD is there" test -n "$(find "$T/default" -path '*/CustomResourceDefinition/*' | head -n 1)"
check_grep "cluster-info says why Secrets were left out" "$T/default/cluster-info.json" 'secrets = false'

# --- filters -----------------------------------------------------------------------------
cf backup appa
check_rc "backup of one namespace without ConfigMaps" 0
extract "$(last_id appa)" "$T/appa"
check_eq "only namespace app-a (and its Namespace object)" "app-a" \
	"$(find "$T/appa/namespaces" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -u | tr '\n' ' ' | sed 's/ $//')"
check_eq "no ConfigMap" 0 "$(find "$T/appa" -path '*/ConfigMap/*' | wc -l)"
cf backup label
check_rc "backup with a label selector" 0
extract "$(last_id label)" "$T/label"
check "every object selected by the label has it" \
	sh -c "! grep -L 'tier: frontend' -r '$T/label' --include='*.yaml' | grep -q ."

# --- forbidden kinds, expired continue tokens ------------------------------------------------
k8s_control '{"forbid":["secrets."]}'
cf backup all
check_rc "a forbidden kind is skipped, not fatal: the backup is partial" 8
check_grep "the error line says partial and names the kind" "$ERR" '^coffer: error: backup .* is partial: .*secrets'
check_eq "list --json marks it partial" true \
	"$(list_json | jq -r --arg id "$(last_id all)" '.[] | select(.id == $id) | .partial')"
extract "$(last_id all)" "$T/forbid"
check_grep "cluster-info records the forbidden kind" "$T/forbid/cluster-info.json" '"resource": "secrets"'
cf backup strict
check_rc "with strict = true a forbidden kind fails the run" 6
check_one_error_line "strict: one error line"
k8s_control '{"expire_continue_after":3}'
cf backup all
check_rc "an expired continue token restarts the list" 0
extract "$(last_id all)" "$T/expired"
(cd "$T/expired" && find . -name '*.yaml' | sed 's#^\./##' | sort) >"$T/got2.txt"
check_same_file "after a restart every object is still there exactly once" "$T/expected.txt" "$T/got2.txt"
check_grep "the server saw a 410" "$K8S_REQUEST_LOG" ' 410 '
k8s_control '{}'

# --- kubeconfig variants and failures -------------------------------------------------------
for v in tokenfile cert certdata exec multi; do
	cf backup "$v"
	check_rc "kubeconfig with $v connects" 0
done
cf backup wrongca
check_rc "a wrong CA fails" 6
check_grep "the TLS error says so" "$ERR" 'certificate'
check_one_error_line "wrong CA: one error line"
cf backup execfail
check_rc "a failing exec plugin fails" 6
check_one_error_line "exec plugin failure: one error line"
cf backup multibad
check "a broken current-context fails" test "$RC" != 0
cf backup unreachable
check_rc "an unreachable API server fails" 6
check_one_error_line "unreachable: one error line"
k8s_control '{"unauthorized":true}'
cf backup tokenfile
check_rc "a refused credential (401) fails" 6
check_grep "the 401 is named" "$ERR" 'Unauthorized|401'
k8s_control '{"slow_path":"configmaps","slow_seconds":6}'
cf backup slow
check_rc "a response slower than the timeout fails" 6
check_grep "the timeout is named" "$ERR" 'source slow: listing configmaps: .*(too slow|[Tt]ime)'
k8s_control '{}' 
check_eq "no failed run left a folder without a manifest" "" "$(dirs_without_manifest "$REPO")"

# --- restore ----------------------------------------------------------------------------------------
cf restore "$ID" --to "$T/r-full"
check_rc "restore --to DIR" 0
check "the restored tree equals the archive extracted by tar" diff -r "$T/all" "$T/r-full"
cf restore "$ID" --to "$T/r-ns" --namespace app-b
check_rc "restore --namespace app-b" 0
check_eq "only app-b is restored" "app-b" "$(ls "$T/r-ns/namespaces")"
check "with its Namespace object" test -f "$T/r-ns/cluster/core/Namespace/app-b.yaml"
check_eq "no other cluster object" 1 "$(find "$T/r-ns/cluster" -name '*.yaml' | wc -l)"
cf restore "$ID" --to "$T/r-kind" --kind Deployment.apps
check_rc "restore --kind Deployment.apps" 0
check_eq "only Deployments" "Deployment" "$(find "$T/r-kind" -name '*.yaml' | awk -F/ '{print $(NF-1)}' | sort -u)"
cf restore "$ID" --to "$T/r-order" --print-apply-order
check_rc "restore --print-apply-order" 0
check_grep "the CRDs come first" <(head -n 1 "$OUT") 'CustomResourceDefinition'
check_eq "every file is in the order" "$(find "$T/r-order" -name '*.yaml' | wc -l)" "$(wc -l <"$OUT")"
ns_line=$(grep -n '^cluster/core/Namespace/' "$OUT" | tail -n 1 | cut -d: -f1)
first_ns_obj=$(grep -n '^namespaces/' "$OUT" | head -n 1 | cut -d: -f1)
check "Namespaces come before namespaced objects" test "$ns_line" -lt "$first_ns_obj"
widget=$(grep -n '/example.com/Widget/' "$OUT" | head -n 1 | cut -d: -f1)
cm=$(grep -n '/core/ConfigMap/' "$OUT" | tail -n 1 | cut -d: -f1)
check "custom resources come after the built-in kinds" test "$widget" -gt "$cm"

# --- ls and --include on a kubernetes archive -----------------------------------------------
cf ls "$ID"
check_rc "ls of a kubernetes backup" 0
check_eq "ls lists every file of the archive" "$(find "$T/all" -type f | wc -l)" "$(grep -c '^-' "$OUT")"
cf ls "$ID" namespaces/app-b --json
check_rc "ls PATH --json" 0
check_eq "ls namespaces/app-b lists only that namespace" "$(find "$T/all/namespaces/app-b" -type f | wc -l)" \
	"$(jq '[.entries[] | select(.type == "file")] | length' "$OUT")"
check_eq "ls namespaces/app-b: nothing outside it" 0 \
	"$(jq '[.entries[] | select(.path | startswith("namespaces/app-b") | not)] | length' "$OUT")"
cf restore "$ID" --to "$T/r-inc" --include '*/Deployment/*' --namespace app-a
check_rc "restore --include with --namespace" 0
check_eq "both selections apply: app-a's Deployments only" \
	"$(find "$T/all/namespaces/app-a" -path '*/Deployment/*' -type f | wc -l)" "$(find "$T/r-inc" -type f | wc -l)"
check "at least one Deployment was restored" test -n "$(find "$T/r-inc" -path '*/Deployment/*' -type f | head -n 1)"

# verify with the identity reads the archive to its end, every entry's size
# checked and every manifest parsed as YAML.
cf verify --latest --source all --json
check_rc "verify of the kubernetes backup with the identity" 0
check_eq "its content was checked" content "$(jq -r '.copies[0].level' "$OUT")"

t_finish
