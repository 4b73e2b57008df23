# k8s-env.sh: the Kubernetes API test environment (sourced by bash test
# scripts after lib.sh's t_setup, not run).
#
# Sourcing it only checks the tools (python3, openssl; else the test is
# skipped, exit 77) and defines the functions; k8s_start starts a server.
#
#   k8s_start [ARGS...]     starts tests/harness/k8s-api.py in $K8S_DIR
#                           (default $T/k8s) with ARGS (--objects N, --seed N,
#                           --forbid R.G, --expire-continue-after N, ...), waits
#                           until it listens, stops it at exit (t_at_exit), and
#                           exports:
#     K8S_SERVER            https://127.0.0.1:PORT
#     K8S_PORT              PORT
#     K8S_DIR               the state folder (certs, token, logs)
#     K8S_CA                the CA of the server certificate (PEM file)
#     K8S_TOKEN_FILE        the bearer token (a file, one line)
#     K8S_CLIENT_CERT, K8S_CLIENT_KEY   a client certificate of that CA
#                           (CN=coffer-test, O=system:masters; key PKCS#1 RSA)
#     K8S_WRONG_CA          an unrelated CA (its client cert: K8S_WRONG_CLIENT_CERT/_KEY)
#     K8S_EXPECTED          one JSON line per generated object:
#                           {apiVersion,kind,namespace,name,uid,resource}
#     K8S_REQUEST_LOG       one line per request: METHOD PATH?QUERY STATUS ms= bytes= auth=
#     K8S_PID               the server's process id
#   k8s_stop                stops it (SIGTERM, SIGKILL after 5 s)
#   k8s_restart [ARGS...]   stops it and starts it again on the same port with
#                           ARGS (same certs and token: kubeconfigs stay valid)
#   k8s_control JSON        switches faults of the running server at once:
#                           writes DIR/control.json, e.g. '{"forbid":["secrets."]}',
#                           keys forbid, expire_continue_after, slow_path,
#                           slow_seconds, unauthorized; '{}' back to the flags
#   k8s_curl PATH [CURL-ARGS...]  GET with the token and the CA: the body on
#                           stdout, "HTTP <code>" in $K8S_DIR/last.code
#   k8s_kubeconfig VARIANT FILE   writes a kubeconfig for the server; VARIANT:
#                           token tokenfile cert certdata exec exec-fail wrongca multi
#   k8s_py                  the python3 executable (a pyenv shim resolved)
#
# Inputs: K8S_DIR (default $T/k8s), K8S_DISCOVERY (default
# tests/data/k8s-discovery; missing: the test is skipped).

if ! command -v python3 >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
	if declare -F t_skip >/dev/null; then
		t_skip "python3 and openssl are needed for the Kubernetes API harness"
	fi
	echo "SKIP: python3 and openssl are needed for the Kubernetes API harness"
	exit 77
fi

K8S_HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The real discovery documents (tests/data/k8s-discovery).
K8S_DISCOVERY=${K8S_DISCOVERY:-$K8S_HARNESS_DIR/../data/k8s-discovery}
if [ ! -f "$K8S_DISCOVERY/api__v1.json" ]; then
	if declare -F t_skip >/dev/null; then
		t_skip "no Kubernetes discovery documents in $K8S_DISCOVERY"
	fi
	echo "SKIP: no Kubernetes discovery documents in $K8S_DISCOVERY"
	exit 77
fi
# A pyenv shim costs 0.3-0.5 s a start: run the interpreter itself.
k8s_py=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
[ -x "$k8s_py" ] || k8s_py=$(command -v python3)
K8S_PID=
K8S__AT_EXIT=

k8s__at_exit() {
	if declare -F t_at_exit >/dev/null; then
		t_at_exit "$1"
	else
		# shellcheck disable=SC2064 # the command is fixed now
		trap "$1" EXIT
	fi
}

# k8s_start [ARGS...]
k8s_start() {
	local _
	[ -z "$K8S_PID" ] || k8s_stop
	K8S_DIR=${K8S_DIR:-${T:?k8s_start: run t_setup first}/k8s}
	mkdir -p "$K8S_DIR" || return 1
	rm -f "$K8S_DIR/port" "$K8S_DIR/control.json"
	"$k8s_py" "$K8S_HARNESS_DIR/k8s-api.py" --dir "$K8S_DIR" --discovery "$K8S_DISCOVERY" "$@" \
		</dev/null >>"$K8S_DIR/server.log" 2>&1 &
	K8S_PID=$!
	if [ -z "$K8S__AT_EXIT" ]; then
		K8S__AT_EXIT=1
		k8s__at_exit k8s_stop
	fi
	for _ in $(seq 1 600); do
		[ -s "$K8S_DIR/port" ] && break
		if ! kill -0 "$K8S_PID" 2>/dev/null; then
			echo "k8s_start: the server exited; see $K8S_DIR/server.log:" >&2
			tail -n 5 "$K8S_DIR/server.log" >&2
			K8S_PID=
			return 1
		fi
		sleep 0.05
	done
	if [ ! -s "$K8S_DIR/port" ]; then
		echo "k8s_start: the server did not start within 30 s; see $K8S_DIR/server.log" >&2
		k8s_stop
		return 1
	fi
	K8S_PORT=$(cat "$K8S_DIR/port")
	export K8S_DIR K8S_PORT K8S_PID
	export K8S_SERVER=https://127.0.0.1:$K8S_PORT
	export K8S_CA=$K8S_DIR/ca.crt
	export K8S_TOKEN_FILE=$K8S_DIR/token
	export K8S_CLIENT_CERT=$K8S_DIR/client.crt K8S_CLIENT_KEY=$K8S_DIR/client.key
	export K8S_WRONG_CA=$K8S_DIR/other-ca.crt
	export K8S_WRONG_CLIENT_CERT=$K8S_DIR/other-client.crt K8S_WRONG_CLIENT_KEY=$K8S_DIR/other-client.key
	export K8S_EXPECTED=$K8S_DIR/expected.jsonl
	export K8S_REQUEST_LOG=$K8S_DIR/requests.log
	# curl reads the header from a file: the token is on no command line
	(umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$K8S_TOKEN_FILE")" >"$K8S_DIR/auth-header")
}

# k8s_stop: stops the server of k8s_start (its files stay).
k8s_stop() {
	local _
	[ -n "$K8S_PID" ] || return 0
	kill -TERM "$K8S_PID" 2>/dev/null
	for _ in $(seq 1 100); do
		kill -0 "$K8S_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$K8S_PID" 2>/dev/null
	wait "$K8S_PID" 2>/dev/null
	K8S_PID=
	return 0
}

# k8s_restart [ARGS...]: the same folder and port, new ARGS.
k8s_restart() {
	local port=${K8S_PORT:?k8s_restart: no server started}
	k8s_stop
	k8s_start --port "$port" "$@"
}

# k8s_control JSON: the running server reads DIR/control.json at its next request.
k8s_control() {
	printf '%s\n' "$1" >"$K8S_DIR/control.json.tmp" && mv -f "$K8S_DIR/control.json.tmp" "$K8S_DIR/control.json"
}

# k8s_curl PATH [CURL-ARGS...]: GET $K8S_SERVER$PATH with the token; prints the
# body; the HTTP status goes to $K8S_DIR/last.code; returns curl's status.
k8s_curl() {
	local path=$1
	shift
	curl -sS --compressed --cacert "$K8S_CA" -H @"$K8S_DIR/auth-header" \
		-o - -w '%{http_code}' "$@" "$K8S_SERVER$path" >"$K8S_DIR/last.out"
	local rc=$?
	tail -c 3 "$K8S_DIR/last.out" >"$K8S_DIR/last.code"
	head -c -3 "$K8S_DIR/last.out"
	return $rc
}

# k8s__b64 FILE: the file in base64 on one line.
k8s__b64() { base64 -w 0 <"$1"; }

# k8s__q STRING: STRING as a YAML scalar (double-quoted when it needs to be).
k8s__q() {
	case $1 in
	'' | *[!A-Za-z0-9/._:@+=-]* | [!A-Za-z0-9/._]*) printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')" ;;
	*) printf '%s' "$1" ;;
	esac
}

# k8s__cluster NAME CA-KIND SERVER: a clusters: entry (CA-KIND: file, data, wrong)
k8s__cluster() {
	printf -- '- cluster:\n'
	case $2 in
	data) printf '    certificate-authority-data: %s\n' "$(k8s__b64 "$K8S_CA")" ;;
	wrong) printf '    certificate-authority: %s\n' "$(k8s__q "$K8S_WRONG_CA")" ;;
	*) printf '    certificate-authority: %s\n' "$(k8s__q "$K8S_CA")" ;;
	esac
	printf '    server: %s\n  name: %s\n' "$3" "$1"
}

# k8s__context NAME CLUSTER USER
k8s__context() {
	printf -- '- context:\n    cluster: %s\n    user: %s\n  name: %s\n' "$2" "$3" "$1"
}

# k8s__exec_plugin FILE MODE: an exec credential plugin (MODE ok or fail) that
# logs each call to $K8S_DIR/exec.log.
k8s__exec_plugin() {
	local file=$1 mode=$2
	cat >"$file" <<EOF
#!/bin/sh
# exec credential plugin of the k8s harness (client.authentication.k8s.io/v1)
log=$(k8s__q "$K8S_DIR/exec.log")
info=\$(printf '%s' "\${KUBERNETES_EXEC_INFO-}" | tr -d ' \\t\\n\\r')
printf 'args=%s env=%s exec_info=%s\\n' "\$*" "\${COFFER_EXEC_TEST-unset}" "\${KUBERNETES_EXEC_INFO-unset}" >>"\$log"
case \$info in
*'"apiVersion":"client.authentication.k8s.io/v1"'*) ;;
*) echo "exec plugin: KUBERNETES_EXEC_INFO is missing or not client.authentication.k8s.io/v1" >&2; exit 1 ;;
esac
case \$info in
*'"kind":"ExecCredential"'*) ;;
*) echo "exec plugin: KUBERNETES_EXEC_INFO is not an ExecCredential" >&2; exit 1 ;;
esac
if [ "$mode" = fail ]; then
	echo "exec plugin: the identity provider refused the login (harness exec-fail)" >&2
	exit 1
fi
token=\$(cat $(k8s__q "$K8S_TOKEN_FILE"))
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}\\n' "\$token"
EOF
	chmod 700 "$file"
}

# k8s_kubeconfig VARIANT FILE: a kubeconfig for the running server, written as
# kubectl writes them (keys sorted, lists of named entries). VARIANT:
#   token      cluster CA file, user token: inline
#   tokenfile  user tokenFile: $K8S_TOKEN_FILE
#   cert       user client-certificate/client-key: file paths
#   certdata   client-certificate-data/client-key-data and
#              certificate-authority-data, base64 inline (no path at all)
#   exec       user exec: (client.authentication.k8s.io/v1) running FILE.exec.sh
#              with args and env; it checks KUBERNETES_EXEC_INFO, logs each
#              call to $K8S_DIR/exec.log and prints an ExecCredential with the token
#   exec-fail  the same plugin, exiting 1 with a message on stderr
#   wrongca    certificate-authority: the unrelated CA ($K8S_WRONG_CA), token user
#   multi      contexts "broken" (current-context: https://127.0.0.1:1, a bad
#              token) and "good" (token, CA data)
k8s_kubeconfig() {
	local variant=$1 file=$2 cluster=coffer-test user current
	[ -n "${K8S_SERVER:-}" ] || { echo "k8s_kubeconfig: no server started" >&2; return 1; }
	user=coffer-$variant
	current=$user
	(
		umask 077
		{
			printf 'apiVersion: v1\nclusters:\n'
			case $variant in
			certdata) k8s__cluster "$cluster" data "$K8S_SERVER" ;;
			wrongca) k8s__cluster "$cluster" wrong "$K8S_SERVER" ;;
			multi)
				k8s__cluster broken file "https://127.0.0.1:1"
				k8s__cluster "$cluster" data "$K8S_SERVER"
				;;
			token | tokenfile | cert | exec | exec-fail) k8s__cluster "$cluster" file "$K8S_SERVER" ;;
			*)
				echo "k8s_kubeconfig: unknown variant $variant" >&2
				exit 1
				;;
			esac
			printf 'contexts:\n'
			if [ "$variant" = multi ]; then
				k8s__context broken broken broken-user
				k8s__context good "$cluster" good-user
				current=broken
			else
				k8s__context "$user" "$cluster" "$user"
			fi
			printf 'current-context: %s\nkind: Config\npreferences: {}\nusers:\n' "$current"
			case $variant in
			token | wrongca) printf -- '- name: %s\n  user:\n    token: %s\n' "$user" "$(cat "$K8S_TOKEN_FILE")" ;;
			tokenfile) printf -- '- name: %s\n  user:\n    tokenFile: %s\n' "$user" "$(k8s__q "$K8S_TOKEN_FILE")" ;;
			cert)
				printf -- '- name: %s\n  user:\n    client-certificate: %s\n    client-key: %s\n' \
					"$user" "$(k8s__q "$K8S_CLIENT_CERT")" "$(k8s__q "$K8S_CLIENT_KEY")"
				;;
			certdata)
				printf -- '- name: %s\n  user:\n    client-certificate-data: %s\n    client-key-data: %s\n' \
					"$user" "$(k8s__b64 "$K8S_CLIENT_CERT")" "$(k8s__b64 "$K8S_CLIENT_KEY")"
				;;
			exec | exec-fail)
				k8s__exec_plugin "$file.exec.sh" "$([ "$variant" = exec ] && echo ok || echo fail)"
				printf -- '- name: %s\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n' "$user"
				printf '      args:\n      - --cluster\n      - coffer-test\n      command: %s\n' "$(k8s__q "$file.exec.sh")"
				printf '      env:\n      - name: COFFER_EXEC_TEST\n        value: from-kubeconfig\n'
				printf '      interactiveMode: Never\n      provideClusterInfo: false\n'
				;;
			multi)
				printf -- '- name: broken-user\n  user:\n    token: not-the-token\n'
				printf -- '- name: good-user\n  user:\n    token: %s\n' "$(cat "$K8S_TOKEN_FILE")"
				;;
			esac
		} >"$file.tmp" && mv -f "$file.tmp" "$file"
	)
}
