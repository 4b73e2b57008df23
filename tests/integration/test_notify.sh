#!/bin/bash
# Notifications: a failing backup runs on_failure and POSTs to webhook_url
# (a loopback receiver) exactly once, with the result as JSON; a good one
# runs on_success (the source's own command over [notify]'s); a webhook
# that answers 500 is retried; one that cannot be reached is a warning, not
# the backup's failure.
. "$(dirname "$0")/lib.sh"
t_setup notify

# The receiver: appends each POST body as one line to $T/hook.log; answers
# 500 to the first request when $T/fail-once exists.
cat >"$T/hook.py" <<'PY'
import http.server, os, sys
d = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        flag = os.path.join(d, "fail-once")
        if os.path.exists(flag):
            os.unlink(flag)
            self.send_response(500); self.end_headers(); return
        with open(os.path.join(d, "hook.log"), "ab") as f:
            f.write(body + b"\n")
        with open(os.path.join(d, "hook.ctype"), "w") as f:
            f.write(self.headers["Content-Type"])
        self.send_response(204); self.end_headers()
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(os.path.join(d, "hook.port"), "w").write(str(s.server_address[1]))
s.serve_forever()
PY
python3 "$T/hook.py" "$T" &
hook=$!
t_at_exit "kill $hook"
for _ in $(seq 1 50); do [ -s "$T/hook.port" ] && break; sleep 0.1; done
PORT=$(cat "$T/hook.port")

t_config <<EOF
[notify]
on_success = cat >>$T/success.log; echo >>$T/success.log
on_failure = cat >>$T/failure.log; echo >>$T/failure.log
webhook_url = http://127.0.0.1:$PORT/hook

[source good]
type = command
command = echo good

[source own]
type = command
command = echo own
on_success = cat >$T/own.json

[source bad]
type = command
command = sh -c 'echo half; exit 3'
EOF

cf backup bad
check_rc "the failing backup" 5
check_eq "on_failure ran once" 1 "$(grep -c . "$T/failure.log")"
check_eq "its JSON: not ok, the source, the exit code" "false bad 5" \
	"$(jq -r '"\(.ok) \(.source) \(.exit_code)"' "$T/failure.log")"
check_grep "with the error" "$T/failure.log" '"error":"source bad: .*status 3'
check_eq "the record's status" failed "$(jq -r .record.status "$T/failure.log")"
check_eq "the webhook got it once" 1 "$(grep -c . "$T/hook.log")"
check_eq "the same JSON" "$(cat "$T/failure.log")" "$(cat "$T/hook.log")"
check_eq "as application/json" application/json "$(cat "$T/hook.ctype")"
check "no secret in it (the identity file's key)" sh -c "! grep -q AGE-SECRET-KEY '$T/hook.log'"
check "on_success did not run" test ! -e "$T/success.log"

cf backup good own
check_rc "two good backups" 0
check_eq "[notify] on_success ran for good only" "true good" "$(jq -r '"\(.ok) \(.source)"' "$T/success.log")"
check_eq "own ran its own command" "true own complete" "$(jq -r '"\(.ok) \(.source) \(.status)"' "$T/own.json")"
check_eq "the webhook got both" 3 "$(grep -c . "$T/hook.log")"

# A webhook answering 500 once is retried: delivered once.
touch "$T/fail-once"
cf backup good
check_rc "backup with a webhook failing once" 0
check_eq "delivered after a retry" 4 "$(grep -c . "$T/hook.log")"
check_no_grep "no warning" "$ERR" "webhook"

# Unreachable: a warning, the backup still succeeds.
kill $hook
wait $hook 2>/dev/null
cf backup good
check_rc "an unreachable webhook does not fail the backup" 0
check_grep "it is a warning naming webhook_url, not the URL" "$ERR" "warning: source good: the webhook was not delivered: .*POST webhook_url"
check_no_grep "the URL (which may hold a token) is not logged" "$ERR" "127.0.0.1:$PORT"
t_finish
