#!/bin/bash
# The Kubernetes API harness itself (tests/harness/k8s-api.py, k8s-env.sh),
# with curl: discovery serves the real documents, lists page like the real
# API server (items without apiVersion/kind, continue tokens, label
# selectors), bearer token and client certificates are checked, the fault
# modes (403, 410, slow, 401) work from flags and from control.json, a wrong
# CA fails TLS verification, the kubeconfig variants are well formed, and a
# 20,000-object cluster is generated quickly.
. "$(dirname "$0")/lib.sh"
t_setup k8s_harness
. "$COFFER_SRC/tests/harness/k8s-env.sh"
command -v curl >/dev/null || t_skip "curl is not installed"

DISC=$K8S_DISCOVERY
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }
# same_json DESC FILE1 FILE2: equal JSON documents (key order aside)
same_json() {
	if [ "$(jq -S . "$2")" = "$(jq -S . "$3")" ]; then
		pass "$1"
	else
		fail "$1" "$(basename "$2") and $(basename "$3") differ"
	fi
}
# code_of PATH [CURL-ARGS...]: the HTTP status of a GET with the token
code_of() {
	k8s_curl "$@" >"$T/body" 2>"$T/curl.err"
	cat "$K8S_DIR/last.code"
}
# list_all PATH LIMIT: follows continue tokens; prints the items, one a line,
# and the page count to $T/pages
list_all() {
	local path=$1 limit=$2 cont="" n=0 sep
	case $path in *\?*) sep='&' ;; *) sep='?' ;; esac
	while :; do
		k8s_curl "$path${sep}limit=$limit${cont:+&continue=$cont}" >"$T/page.json" || return 1
		[ "$(cat "$K8S_DIR/last.code")" = 200 ] || { echo "page $n: HTTP $(cat "$K8S_DIR/last.code")" >&2; return 1; }
		n=$((n + 1))
		jq -c '.items[]' "$T/page.json"
		cont=$(jq -r '.metadata.continue // empty' "$T/page.json")
		[ -n "$cont" ] || break
	done
	echo "$n" >"$T/pages"
}

# --- start ----------------------------------------------------------------------
t0=$(date +%s%N)
check "k8s_start (default: 5000 objects)" k8s_start
start_ms=$(ms_since "$t0")
t_log "     (start: $start_ms ms; $(cat "$K8S_DIR/ready"))"
check_eq "K8S_SERVER" "https://127.0.0.1:$K8S_PORT" "$K8S_SERVER"
for f in "$K8S_CA" "$K8S_TOKEN_FILE" "$K8S_CLIENT_CERT" "$K8S_CLIENT_KEY" "$K8S_WRONG_CA" "$K8S_EXPECTED"; do
	check "$(basename "$f") exists" test -s "$f"
done
check_eq "client key is private" 600 "$(stat -c %a "$K8S_CLIENT_KEY")"
check "server cert verifies against K8S_CA" openssl verify -CAfile "$K8S_CA" "$K8S_DIR/server.crt"
check_not "... not against K8S_WRONG_CA" openssl verify -CAfile "$K8S_WRONG_CA" "$K8S_DIR/server.crt"
check_grep "client cert subject" <(openssl x509 -in "$K8S_CLIENT_CERT" -noout -subject) "O ?= ?system:masters, CN ?= ?coffer-test"
n_exp=$(wc -l <"$K8S_EXPECTED")
check "about 5000 objects ($n_exp)" test "$n_exp" -ge 4900 -a "$n_exp" -le 5200

# --- discovery -----------------------------------------------------------------------
k8s_curl /api >"$T/api.json"
same_json "/api is api.json" "$DISC/api.json" "$T/api.json"
k8s_curl /api/v1 >"$T/v1.json"
same_json "/api/v1 is api__v1.json" "$DISC/api__v1.json" "$T/v1.json"
k8s_curl /apis/apps/v1 >"$T/apps.json"
same_json "/apis/apps/v1 is apis__apps__v1.json" "$DISC/apis__apps__v1.json" "$T/apps.json"
k8s_curl /apis/flowcontrol.apiserver.k8s.io/v1beta3 >"$T/fc.json"
same_json "/apis/flowcontrol.apiserver.k8s.io/v1beta3 (not preferred) is served" \
	"$DISC/apis__flowcontrol.apiserver.k8s.io__v1beta3.json" "$T/fc.json"
k8s_curl /apis >"$T/apis.json"
check_eq "/apis: the real groups, then example.com" \
	"$(jq -c '[.groups[].name] + ["example.com"]' "$DISC/apis.json")" "$(jq -c '[.groups[].name]' "$T/apis.json")"
check_eq "/apis: the real group entries unchanged" "$(jq -cS '.groups' "$DISC/apis.json")" "$(jq -cS '.groups[:-1]' "$T/apis.json")"
k8s_curl /apis -H 'Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json' >"$T/agg.json"
check_eq "/apis aggregated (Accept as=APIGroupDiscoveryList)" "APIGroupDiscoveryList $(($(jq '.items | length' "$DISC/aggregated_v2.json") + 1))" \
	"$(jq -r '"\(.kind) \(.items | length)"' "$T/agg.json")"
check_eq "... the real items unchanged" "$(jq -cS '.items' "$DISC/aggregated_v2.json")" "$(jq -cS '.items[:-1]' "$T/agg.json")"
check_eq "... content type" "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList" \
	"$(curl -sS -o /dev/null -w '%{content_type}' --cacert "$K8S_CA" -H @"$K8S_DIR/auth-header" \
		-H 'Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList' "$K8S_SERVER/apis")"
check_eq "/api aggregated: the core group" "APIGroupDiscoveryList configmaps" \
	"$(k8s_curl /api -H 'Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList' |
		jq -r '"\(.kind) \(.items[0].versions[0].resources[] | select(.resource == "configmaps") | .resource)"')"
check_eq "/apis/example.com/v1 lists widgets" "widgets Widget true list" \
	"$(k8s_curl /apis/example.com/v1 | jq -r '.resources[] | select(.name == "widgets") | "\(.name) \(.kind) \(.namespaced) \(.verbs | index("list") | if . then "list" else "" end)"')"
check_eq "/apis/apps (APIGroup)" "APIGroup apps/v1" "$(k8s_curl /apis/apps | jq -r '"\(.kind) \(.preferredVersion.groupVersion)"')"
check_eq "/version" "v1.30 1 30" "$(k8s_curl /version | jq -r '"\(.gitVersion | .[0:5]) \(.major) \(.minor)"')"
check_eq "unknown path: 404" 404 "$(code_of /apis/nope.example/v1)"
check_eq "... with a Status" "Status NotFound 404" "$(jq -r '"\(.kind) \(.reason) \(.code)"' "$T/body")"
check_eq "unknown resource: 404" 404 "$(code_of /api/v1/nothings)"
check_eq "tokenreviews (no list verb): 405" 405 "$(code_of /apis/authentication.k8s.io/v1/tokenreviews)"
check_eq "... MethodNotAllowed" "MethodNotAllowed" "$(jq -r .reason "$T/body")"
check_eq "bindings (create only): 405" 405 "$(code_of /api/v1/namespaces/default/bindings)"
check_eq "listable without objects: empty list" "200 CronJobList 0" \
	"$(code_of /apis/batch/v1/cronjobs) $(jq -r '"\(.kind) \(.items | length)"' "$T/body")"

# --- lists and pages -------------------------------------------------------------------
k8s_curl /api/v1/configmaps >"$T/cm.json"
check_eq "ConfigMapList shape" "ConfigMapList v1 true false" \
	"$(jq -r '"\(.kind) \(.apiVersion) \(.metadata.resourceVersion | test("^[0-9]+$")) \(.metadata | has("continue"))"' "$T/cm.json")"
n_cm=$(jq '.items | length' "$T/cm.json")
check_eq "as many configmaps as K8S_EXPECTED says" "$(grep -c '"kind":"ConfigMap"' "$K8S_EXPECTED")" "$n_cm"
jq -c '.items[]' "$T/cm.json" >"$T/cm.all"
t0=$(date +%s%N)
list_all /api/v1/configmaps 50 >"$T/cm.paged"
check_same_file "configmaps in pages of 50 = unpaginated" "$T/cm.all" "$T/cm.paged"
t_log "     ($(cat "$T/pages") pages in $(ms_since "$t0") ms)"
check_eq "page count" $(((n_cm + 49) / 50)) "$(cat "$T/pages")"
k8s_curl "/api/v1/configmaps?limit=50" >"$T/p1.json"
check_eq "first page: 50 items, continue, remainingItemCount" "50 true $((n_cm - 50))" \
	"$(jq -r '"\(.items | length) \(.metadata.continue | length > 0) \(.metadata.remainingItemCount)"' "$T/p1.json")"
check_eq "continue token is opaque base64 of meta.k8s.io/v1" "meta.k8s.io/v1" \
	"$(jq -r .metadata.continue "$T/p1.json" | tr '_-' '/+' | awk '{ while (length($0) % 4) $0 = $0 "="; print }' | base64 -d | jq -r .v)"
check_eq "a bad continue token: 400" 400 "$(code_of "/api/v1/configmaps?limit=5&continue=bm9wZQ")"
check_eq "resourceVersion=0 ignores limit (watch cache)" "$n_cm false" \
	"$(k8s_curl "/api/v1/configmaps?limit=5&resourceVersion=0" | jq -r '"\(.items | length) \(.metadata | has("continue"))"')"

check_empty_output "no list item has apiVersion or kind (built-in types)" \
	bash -c "jq -c 'select(has(\"apiVersion\") or has(\"kind\")) | .metadata.name' '$T/cm.all'"
t0=$(date +%s%N)
for p in /api/v1/pods /api/v1/secrets /apis/apps/v1/deployments /apis/apps/v1/replicasets /api/v1/services \
	/apis/discovery.k8s.io/v1/endpointslices /api/v1/persistentvolumes /api/v1/namespaces /api/v1/nodes \
	/apis/rbac.authorization.k8s.io/v1/clusterroles /apis/storage.k8s.io/v1/storageclasses \
	/apis/apiextensions.k8s.io/v1/customresourcedefinitions /api/v1/events /apis/coordination.k8s.io/v1/leases \
	/apis/networking.k8s.io/v1/ingresses /api/v1/persistentvolumeclaims /api/v1/serviceaccounts; do
	k8s_curl "$p?limit=500" >"$T/l.json"
	bad=$(jq '[.items[] | select(has("apiVersion") or has("kind") or (.metadata.uid | length) != 36 or
		(.metadata.resourceVersion | length) == 0 or has("selfLink") or (.metadata | has("selfLink")) or
		(.metadata.creationTimestamp | test("Z$") | not))] | length' "$T/l.json")
	[ "$bad" = 0 ] || fail "$p: $bad items with typemeta, no uid/resourceVersion/creationTimestamp or a selfLink"
done
pass "17 built-in lists: items without typemeta, with uid, resourceVersion, creationTimestamp, no selfLink ($(ms_since "$t0") ms)"
k8s_curl "/apis/example.com/v1/widgets" >"$T/w.json"
check_eq "widgets (custom resource): items carry apiVersion/kind, as on a real server" "WidgetList example.com/v1 Widget" \
	"$(jq -r '"\(.kind) \(.items[0].apiVersion) \(.items[0].kind)"' "$T/w.json")"
check_eq "widgets only in app-a and app-b" "app-a app-b" "$(jq -r '[.items[].metadata.namespace] | unique | join(" ")' "$T/w.json")"
check_eq "widgets of app-a by namespace path" "$(jq '[.items[] | select(.metadata.namespace == "app-a")] | length' "$T/w.json")" \
	"$(k8s_curl /apis/example.com/v1/namespaces/app-a/widgets | jq '.items | length')"
list_all /apis/apps/v1/namespaces/app-b/deployments 15 >"$T/d.paged"
check_eq "app-b deployments in pages of 15 = unpaginated" "$(k8s_curl /apis/apps/v1/namespaces/app-b/deployments | jq -c '.items[]' | md5sum)" \
	"$(md5sum <"$T/d.paged")"
check_eq "namespace list of another namespace: empty" 0 "$(k8s_curl /api/v1/namespaces/nope/configmaps | jq '.items | length')"

# contents: server-managed metadata, owners, the special objects
k8s_curl /api/v1/pods >"$T/pods.json"
k8s_curl /apis/apps/v1/replicasets >"$T/rs.json"
k8s_curl /apis/apps/v1/deployments >"$T/dep.json"
check_eq "every app pod's owner is a ReplicaSet that exists (by uid)" 0 \
	"$(jq -n --slurpfile p "$T/pods.json" --slurpfile r "$T/rs.json" '[$r[0].items[].metadata.uid] as $u |
		[$p[0].items[] | .metadata.ownerReferences[0] | select(.kind == "ReplicaSet") | select(.uid as $x | $u | index($x) | not)] | length')"
check_eq "every ReplicaSet is owned by a Deployment that exists" 0 \
	"$(jq -n --slurpfile r "$T/rs.json" --slurpfile d "$T/dep.json" '[$d[0].items[].metadata.uid] as $u |
		[$r[0].items[] | .metadata.ownerReferences[0] | select(.kind != "Deployment" or (.uid as $x | $u | index($x) | not))] | length')"
check_eq "deployments: status, generation, managedFields, no ownerReferences" 0 \
	"$(jq '[.items[] | select((.status.replicas | not) or (.metadata.generation | not) or
		(.metadata.managedFields | length) < 2 or (.metadata | has("ownerReferences")))] | length' "$T/dep.json")"
check "some deployments have kubectl's last-applied-configuration" \
	test "$(jq '[.items[] | select(.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"])] | length' "$T/dep.json")" -gt 10
k8s_curl /api/v1/secrets >"$T/sec.json"
check_eq "a Helm release secret per application namespace" "app-a app-b app-c default" \
	"$(jq -r '[.items[] | select(.type == "helm.sh/release.v1" and (.metadata.name | test("^sh\\.helm\\.release\\.v1\\..+\\.v1$"))) | .metadata.namespace] | sort | join(" ")' "$T/sec.json")"
check_eq "... its release decodes (base64, base64, gzip, JSON)" deployed \
	"$(jq -r '[.items[] | select(.type == "helm.sh/release.v1")][0].data.release' "$T/sec.json" | base64 -d | base64 -d | gzip -dc | jq -r .info.status)"
check "service-account token secrets" test "$(jq '[.items[] | select(.type == "kubernetes.io/service-account-token")] | length' "$T/sec.json")" -gt 10
k8s_curl /api/v1/persistentvolumeclaims >"$T/pvc.json"
k8s_curl /api/v1/persistentvolumes >"$T/pv.json"
check "some PVCs" test "$(jq '.items | length' "$T/pvc.json")" -gt 10
check_eq "bound PVCs name an existing PV that points back" 0 \
	"$(jq -n --slurpfile c "$T/pvc.json" --slurpfile v "$T/pv.json" '
		($v[0].items | map({(.metadata.name): .spec.claimRef.uid}) | add) as $pv |
		[$c[0].items[] | select(.metadata.annotations["pv.kubernetes.io/bind-completed"] != "yes" or $pv[.spec.volumeName] != .metadata.uid)] | length')"
check "NodePort services" test "$(k8s_curl /api/v1/services | jq '[.items[] | select(.spec.type == "NodePort" and .spec.ports[0].nodePort >= 30000 and (.spec.clusterIPs | length) == 1)] | length')" -gt 5
check_eq "CRD widgets.example.com" "example.com Widget Namespaced v1" \
	"$(k8s_curl /apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com | jq -r '"\(.spec.group) \(.spec.names.kind) \(.spec.scope) \(.spec.versions[0].name)"')"
check_eq "GET one object: with apiVersion/kind" "v1 ConfigMap kube-root-ca.crt" \
	"$(k8s_curl /api/v1/namespaces/app-c/configmaps/kube-root-ca.crt | jq -r '"\(.apiVersion) \(.kind) \(.metadata.name)"')"
check_eq "GET a missing object: 404 NotFound" "404 NotFound" "$(code_of /api/v1/namespaces/app-c/configmaps/nope) $(jq -r .reason "$T/body")"
check_eq "events.k8s.io/v1 events are the core Events (same uids)" \
	"$(k8s_curl /api/v1/events | jq -c '[.items[].metadata.uid]')" "$(k8s_curl /apis/events.k8s.io/v1/events | jq -c '[.items[].metadata.uid]')"
check_eq "K8S_EXPECTED = every object served (all lists, by uid)" "$(jq -r .uid "$K8S_EXPECTED" | sort | md5sum)" \
	"$(for r in $(jq -r '"\(.apiVersion)|\(.resource)"' "$K8S_EXPECTED" | sort -u); do
		gv=${r%|*}
		case $gv in */*) p=/apis/$gv ;; *) p=/api/$gv ;; esac
		k8s_curl "$p/${r#*|}" | jq -r '.items[].metadata.uid'
	done | sort | md5sum)"
check_eq "the same seed: the same cluster" "$(md5sum <"$K8S_EXPECTED")" \
	"$("$k8s_py" "$K8S_HARNESS_DIR/k8s-api.py" --dump-expected - 2>/dev/null | md5sum)"
check_eq "--dump-json: full objects with apiVersion/kind, the same set" "$(jq -r .uid "$K8S_EXPECTED" | sort | md5sum)" \
	"$("$k8s_py" "$K8S_HARNESS_DIR/k8s-api.py" --dump-json - 2>/dev/null | jq -r 'select(.apiVersion and .kind) | .metadata.uid' | sort | md5sum)"
check_not "another seed: another cluster" test "$(md5sum <"$K8S_EXPECTED")" = \
	"$("$k8s_py" "$K8S_HARNESS_DIR/k8s-api.py" --seed 2 --dump-expected - 2>/dev/null | md5sum)"

# --- label selectors ------------------------------------------------------------------
all=$(k8s_curl /apis/apps/v1/deployments | jq '.items | length')
fe=$(k8s_curl "/apis/apps/v1/deployments?labelSelector=tier%3Dfrontend" | jq '[.items[] | select(.metadata.labels.tier == "frontend")] | length')
k8s_curl "/apis/apps/v1/deployments?labelSelector=tier%3Dfrontend" >"$T/sel.json"
check_eq "tier=frontend: only frontends" "$fe" "$(jq '.items | length' "$T/sel.json")"
check "... some" test "$fe" -gt 0
nfe=$(k8s_curl "/apis/apps/v1/deployments?labelSelector=tier!%3Dfrontend" | jq '.items | length')
check_eq "tier!=frontend + tier=frontend = all" "$all" $((fe + nfe))
check_eq "tier==frontend" "$fe" "$(k8s_curl "/apis/apps/v1/deployments?labelSelector=tier%3D%3Dfrontend" | jq '.items | length')"
check_eq "app in (web,cache)" "cache web" \
	"$(k8s_curl "/apis/apps/v1/deployments?labelSelector=app%20in%20(web,cache)" | jq -r '[.items[].metadata.labels.app] | unique | join(" ")')"
check_eq "app notin (web,cache),tier (existence): no web, no cache, no coredns" 0 \
	"$(k8s_curl "/apis/apps/v1/deployments?labelSelector=app%20notin%20(web,cache),tier" | jq '[.items[] | select(.metadata.labels.app == "web" or .metadata.labels.app == "cache" or (.metadata.labels.tier | not))] | length')"
check_eq "!tier: coredns only" "coredns" "$(k8s_curl "/apis/apps/v1/deployments?labelSelector=!tier" | jq -r '[.items[].metadata.name] | join(" ")')"
check_eq "k8s-app=kube-dns, fieldSelector ignored" "kube-dns" \
	"$(k8s_curl "/api/v1/services?labelSelector=k8s-app%3Dkube-dns&fieldSelector=metadata.name%3Dx" | jq -r '[.items[].metadata.name] | join(" ")')"
list_all "/api/v1/pods?labelSelector=tier%3Dworker" 10 >"$T/sel.paged"
check_eq "selector with pages = without" "$(k8s_curl "/api/v1/pods?labelSelector=tier%3Dworker" | jq -c '.items[]' | md5sum)" "$(md5sum <"$T/sel.paged")"
check_eq "a malformed selector: 400" 400 "$(code_of "/api/v1/pods?labelSelector=a%20in%20(b")"

# --- auth -------------------------------------------------------------------------------------
c=$(curl -sS -o "$T/401.json" -w '%{http_code}' --cacert "$K8S_CA" "$K8S_SERVER/api/v1/namespaces")
check_eq "no credentials: 401" 401 "$c"
check_eq "... Status Unauthorized" '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}' "$(cat "$T/401.json")"
check_eq "a wrong token: 401" 401 "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$K8S_CA" -H 'Authorization: Bearer nope' "$K8S_SERVER/api")"
check_eq "the token: 200" 200 "$(code_of /api/v1/namespaces)"
check_eq "the client certificate: 200" 200 "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$K8S_CA" \
	--cert "$K8S_CLIENT_CERT" --key "$K8S_CLIENT_KEY" "$K8S_SERVER/api/v1/namespaces")"
curl -sS -o /dev/null --cacert "$K8S_CA" --cert "$K8S_WRONG_CLIENT_CERT" --key "$K8S_WRONG_CLIENT_KEY" \
	"$K8S_SERVER/api/v1/namespaces" 2>"$T/wrongcert.err"
check_not "a client certificate of another CA: refused in the TLS handshake" test $? = 0
check_grep "... logged in tls.log" "$K8S_DIR/tls.log" "handshake-failed"
curl -sS -o /dev/null --cacert "$K8S_WRONG_CA" -H @"$K8S_DIR/auth-header" "$K8S_SERVER/api" 2>"$T/wrongca.err"
check_eq "the wrong CA: curl fails TLS verification (60)" 60 "$?"
check_grep "... saying so" "$T/wrongca.err" "certificate"
check_eq "the server name localhost is in the certificate" 200 "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$K8S_CA" \
	-H @"$K8S_DIR/auth-header" "https://localhost:$K8S_PORT/version")"
check_grep "requests.log: method, path?query, status" "$K8S_REQUEST_LOG" '^GET /api/v1/configmaps\?limit=50&continue=[A-Za-z0-9_-]+ 200 '
check_grep "requests.log: auth by cert" "$K8S_REQUEST_LOG" ' auth=cert:coffer-test'
check "no token on any command line" test "$(grep -c "$(cat "$K8S_TOKEN_FILE")" /proc/"$K8S_PID"/cmdline)" = 0

# gzip, as the real server for bodies over 128 KiB
c=$(curl -sS -o /dev/null -w '%{size_download}' --cacert "$K8S_CA" -H @"$K8S_DIR/auth-header" -H 'Accept-Encoding: gzip' "$K8S_SERVER/api/v1/pods")
check "large list gzipped when asked ($c bytes)" test "$c" -lt "$(wc -c <"$T/pods.json")"
check_eq "small reply not gzipped" "" "$(curl -sS -o /dev/null -D - --cacert "$K8S_CA" -H @"$K8S_DIR/auth-header" -H 'Accept-Encoding: gzip' "$K8S_SERVER/version" | grep -i '^content-encoding')"

# --- faults: flags -------------------------------------------------------------------------------
t0=$(date +%s%N)
check "k8s_restart --forbid secrets. --forbid widgets.example.com --expire-continue-after 2" \
	k8s_restart --forbid secrets. --forbid widgets.example.com --expire-continue-after 2 --objects 800
t_log "     (restart with 800 objects: $(ms_since "$t0") ms)"
check_eq "same port after k8s_restart" "https://127.0.0.1:$K8S_PORT" "$K8S_SERVER"
check_eq "secrets: 403" 403 "$(code_of /api/v1/secrets)"
check_eq "... Forbidden Status" "Forbidden secrets" "$(jq -r '"\(.reason) \(.details.kind)"' "$T/body")"
check_eq "namespaced secrets: 403" 403 "$(code_of /api/v1/namespaces/app-a/secrets)"
check_grep "... message names the namespace" "$T/body" 'in the namespace \\"app-a\\"'
check_eq "widgets.example.com: 403" "403 example.com" "$(code_of /apis/example.com/v1/widgets) $(jq -r .details.group "$T/body")"
check_eq "configmaps still 200" 200 "$(code_of /api/v1/configmaps)"
k8s_curl "/api/v1/configmaps?limit=20" >"$T/e1.json"
c1=$(jq -r .metadata.continue "$T/e1.json")
k8s_curl "/api/v1/configmaps?limit=20&continue=$c1" >"$T/e2.json"
check_eq "1st continue: 200" 200 "$(cat "$K8S_DIR/last.code")"
c2=$(jq -r .metadata.continue "$T/e2.json")
check_eq "2nd continue: 410" 410 "$(code_of "/api/v1/configmaps?limit=20&continue=$c2")"
check_eq "... reason Expired" "Expired 410" "$(jq -r '"\(.reason) \(.code)"' "$T/body")"
check_eq "the same token again: 200 (once only)" 200 "$(code_of "/api/v1/configmaps?limit=20&continue=$c2")"
check_eq "a restarted list after the 410 pages through" "$(k8s_curl /api/v1/configmaps | jq -c '.items[]' | md5sum)" \
	"$(list_all /api/v1/configmaps 20 | md5sum)"

check "k8s_restart --slow-path /api/v1/services --slow-seconds 1" k8s_restart --slow-path /api/v1/services --slow-seconds 1 --objects 800
t0=$(date +%s%N)
code_of /api/v1/services >/dev/null
ms=$(ms_since "$t0")
check "services delayed ($ms ms)" test "$ms" -ge 1000
t0=$(date +%s%N)
code_of /api/v1/pods >/dev/null
ms=$(ms_since "$t0")
check "pods not delayed ($ms ms)" test "$ms" -lt 1000

check "k8s_restart --unauthorized" k8s_restart --unauthorized --objects 800
check_eq "--unauthorized: 401 with the token" 401 "$(code_of /version)"
check_eq "... and with the client cert" 401 "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$K8S_CA" \
	--cert "$K8S_CLIENT_CERT" --key "$K8S_CLIENT_KEY" "$K8S_SERVER/version")"

# --- faults: control.json on a running server ---------------------------------------------------
k8s_control '{}'
check_eq "control {}: back to the flags (--unauthorized)" 401 "$(code_of /version)"
k8s_control '{"unauthorized": false, "forbid": ["configmaps"], "expire_continue_after": 1}'
check_eq "control: authorized again" 200 "$(code_of /version)"
check_eq "control: configmaps forbidden" 403 "$(code_of /api/v1/configmaps)"
k8s_curl "/api/v1/secrets?limit=10" >"$T/e1.json"
check_eq "control: expire_continue_after 1" 410 "$(code_of "/api/v1/secrets?limit=10&continue=$(jq -r .metadata.continue "$T/e1.json")")"
k8s_control '{"unauthorized": false, "slow_path": "/apis/apps", "slow_seconds": 0.5}'
t0=$(date +%s%N)
check_eq "control: configmaps allowed again" 200 "$(code_of /api/v1/configmaps)"
code_of /apis/apps/v1/deployments >/dev/null
ms=$(ms_since "$t0")
check "control: /apis/apps delayed ($ms ms)" test "$ms" -ge 500

# --- kubeconfigs ---------------------------------------------------------------------------------
check "k8s_restart (plain)" k8s_restart --objects 800
for v in token tokenfile cert certdata exec exec-fail wrongca multi; do
	k8s_kubeconfig "$v" "$T/kc-$v" || fail "k8s_kubeconfig $v"
done
for v in token tokenfile cert certdata exec wrongca multi; do
	check_eq "kubeconfig $v: top-level keys as kubectl writes them" \
		"apiVersion: clusters: contexts: current-context: kind: preferences: users:" \
		"$(grep -E '^[A-Za-z-]+:' "$T/kc-$v" | cut -d: -f1 | sed 's/$/:/' | tr '\n' ' ' | sed 's/ $//')"
done
check_eq "kubeconfig mode 600" 600 "$(stat -c %a "$T/kc-certdata")"
check_grep "token: inline" "$T/kc-token" "^    token: $(cat "$K8S_TOKEN_FILE")$"
check_grep "tokenfile: tokenFile" "$T/kc-tokenfile" "^    tokenFile: $K8S_TOKEN_FILE$"
check_grep "cert: client-key path" "$T/kc-cert" "^    client-key: $K8S_CLIENT_KEY$"
check_no_grep "certdata: no file path" "$T/kc-certdata" "^ +(certificate-authority|client-certificate|client-key|tokenFile):"
check_eq "certdata: key data decodes to the key" "$(md5sum <"$K8S_CLIENT_KEY")" \
	"$(sed -n 's/^    client-key-data: //p' "$T/kc-certdata" | base64 -d | md5sum)"
check_eq "certdata: CA data decodes to the CA" "$(md5sum <"$K8S_CA")" \
	"$(sed -n 's/^    certificate-authority-data: //p' "$T/kc-certdata" | base64 -d | md5sum)"
check_grep "wrongca: the unrelated CA" "$T/kc-wrongca" "^    certificate-authority: $K8S_WRONG_CA$"
check_grep "multi: current-context broken" "$T/kc-multi" "^current-context: broken$"
check_grep "multi: a context good" "$T/kc-multi" "^  name: good$"
check_grep "exec: apiVersion v1" "$T/kc-exec" "^      apiVersion: client.authentication.k8s.io/v1$"
check_grep "exec: interactiveMode (required by v1)" "$T/kc-exec" "^      interactiveMode: Never$"
plugin=$(sed -n 's/^      command: //p' "$T/kc-exec")
check "exec: the plugin is executable" test -x "$plugin"
KUBERNETES_EXEC_INFO='{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}' \
	COFFER_EXEC_TEST=from-kubeconfig "$plugin" --cluster coffer-test >"$T/cred.json"
check_eq "exec: the plugin prints an ExecCredential" "client.authentication.k8s.io/v1 ExecCredential" \
	"$(jq -r '"\(.apiVersion) \(.kind)"' "$T/cred.json")"
check_eq "exec: its token works" 200 "$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$K8S_CA" \
	-H "Authorization: Bearer $(jq -r .status.token "$T/cred.json")" "$K8S_SERVER/api")"
check_grep "exec: the call is logged with args, env, exec info" "$K8S_DIR/exec.log" \
	'^args=--cluster coffer-test env=from-kubeconfig exec_info=\{"kind":"ExecCredential"'
check_not "exec: without KUBERNETES_EXEC_INFO it fails" "$plugin" --cluster coffer-test
plugin_fail=$(sed -n 's/^      command: //p' "$T/kc-exec-fail")
check_not "exec-fail: the plugin fails" env KUBERNETES_EXEC_INFO='{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1"}' "$plugin_fail"
if "$k8s_py" -c 'import yaml' 2>/dev/null; then
	for v in token tokenfile cert certdata exec wrongca multi; do
		check "kubeconfig $v parses as YAML with the structure of a kubeconfig" "$k8s_py" - "$T/kc-$v" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
assert c["apiVersion"] == "v1" and c["kind"] == "Config"
ctx = {x["name"]: x["context"] for x in c["contexts"]}
cur = ctx[c["current-context"]]
cl = {x["name"]: x["cluster"] for x in c["clusters"]}
us = {x["name"]: x["user"] for x in c["users"]}
assert cur["cluster"] in cl and cur["user"] in us
assert all(ct["cluster"] in cl and ct["user"] in us for ct in ctx.values())
PY
	done
else
	t_log "     (no python3-yaml: the kubeconfigs are checked by grep only)"
fi

# --- scale ----------------------------------------------------------------------------------------
t0=$(date +%s%N)
"$k8s_py" "$K8S_HARNESS_DIR/k8s-api.py" --objects 20000 --dump-expected "$T/20k.jsonl" 2>"$T/20k.err"
gen_ms=$(ms_since "$t0")
n=$(wc -l <"$T/20k.jsonl")
check "--objects 20000: about 20000 objects ($n)" test "$n" -ge 19800 -a "$n" -le 20300
check "... generated in under 30 s ($gen_ms ms)" test "$gen_ms" -lt 30000
t_log "     (20000 objects: $(cat "$T/20k.err"); $gen_ms ms with the interpreter's start)"
check_eq "... unique uids" "$n" "$(jq -r .uid "$T/20k.jsonl" | sort -u | wc -l)"
check_eq "... unique names per kind and namespace" "$n" "$(jq -r '"\(.apiVersion) \(.kind) \(.namespace) \(.name)"' "$T/20k.jsonl" | sort -u | wc -l)"
t0=$(date +%s%N)
check "k8s_restart --objects 20000" k8s_restart --objects 20000
t_log "     (server with 20000 objects ready in $(ms_since "$t0") ms: $(cat "$K8S_DIR/ready"))"
# server-side time of the requests from line $1 of the request log on
server_ms() { tail -n +"$1" "$K8S_REQUEST_LOG" | sed -n 's/.* ms=\([0-9]*\) .*/\1/p' | awk '{ s += $1 } END { print s + 0 }'; }
l0=$(($(wc -l <"$K8S_REQUEST_LOG") + 1))
t0=$(date +%s%N)
list_all /api/v1/pods 500 >"$T/pods.paged"
np=$(wc -l <"$T/pods.paged")
t_log "     (all $np pods in $(cat "$T/pages") pages of 500, gzip: $(ms_since "$t0") ms, $(server_ms "$l0") ms of it in the server)"
check_eq "pods listed = expected pods" "$(grep -c '"kind":"Pod"' "$K8S_EXPECTED")" "$np"
l0=$(($(wc -l <"$K8S_REQUEST_LOG") + 1))
t0=$(date +%s%N)
k8s_curl /api/v1/pods >"$T/pods20k.json"
t_log "     (all pods at once, $(wc -c <"$T/pods20k.json") bytes: $(ms_since "$t0") ms, $(server_ms "$l0") ms in the server)"
l0=$(($(wc -l <"$K8S_REQUEST_LOG") + 1))
t0=$(date +%s%N)
curl -sS -o /dev/null --cacert "$K8S_CA" -H @"$K8S_DIR/auth-header" "$K8S_SERVER/api/v1/configmaps?limit=100"
t_log "     (one page of 100 configmaps, curl alone: $(ms_since "$t0") ms, $(server_ms "$l0") ms in the server)"

t_finish
