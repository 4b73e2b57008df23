# test_command_source: command sources (split without a shell, and with
# shell = true) and `backup --stdin NAME` store exactly the bytes produced,
# restorable with `coffer restore --stdout`, `--to DIR` and age | zstd alone;
# the command's stderr reaches the log with --verbose.
. "$(dirname "$0")/lib.sh"
t_setup command_source

# Expected outputs, produced by running the same commands here.
seq 1 1000000 >"$T/seq.expected"
printf '%s|\n' 'a  b' 'c "d"' 'e f' '$HOME' '*' "it's" 'back\slash' >"$T/quoting.expected"
printf 'x | y && z;\n' >"$T/pipe.expected"
sh -c 'seq 1 200000 | sed "s/^/row /"; echo "sum=$((6*7))"' >"$T/shell.expected"
head -c 3000000 /dev/urandom >"$T/stdin.data"

# The quoting line must reach printf as exactly these words: '...' keeps
# blanks, "..." unescapes \" and \\, a backslash escapes one character,
# and nothing is expanded ($HOME, *) since no shell runs.
t_config <<'EOF'
[source seq]
type = command
command = seq 1 1000000

[source quoting]
type = command
command = printf '%s|\n' 'a  b' "c \"d\"" e\ f $HOME * "it's" 'back\slash'

[source pipe]
type = command
command = echo x | y && z;

[source shell]
type = command
shell = true
command = seq 1 200000 | sed "s/^/row /"; echo "sum=$((6*7))"

[source noisy]
type = command
command = sh -c 'echo first-stderr-line >&2; echo data; echo "second stderr line" >&2'

[source noisy-fail]
type = command
command = sh -c 'for i in $(seq 1 200); do echo "diag line $i." >&2; done; exit 3'
EOF

# roundtrip NAME EXPECTED: restore the newest complete backup of source
# NAME three ways and compare each with EXPECTED.
roundtrip() {
	local name=$1 expected=$2 id obj
	id=$(last_id "$name")
	if [ -z "$id" ]; then
		fail "$name: a complete backup is listed"
		return
	fi
	cf restore "$id" --stdout
	check_rc "$name: restore --stdout" 0
	check_same_file "$name: restore --stdout gives the command's output" "$expected" "$OUT"
	obj=$(object_path "$id")
	age -d -i "$KEY" "$obj" 2>"$T/age.err" | zstd -d -q >"$T/plain" 2>>"$T/age.err"
	check_same_file "$name: age -d | zstd -d gives the command's output" "$expected" "$T/plain"
	rm -rf "$T/to"
	cf restore "$id" --to "$T/to"
	check_rc "$name: restore --to DIR" 0
	check_same_file "$name: restore --to DIR writes the stream as DIR/$3" "$expected" "$T/to/$3"
	check_eq "$name: restore --to DIR writes only that file" "$3" "$(ls -A "$T/to" 2>/dev/null)"
}

cf backup seq quoting pipe shell
check_rc "backup of four command sources" 0
check_eq "backup prints one line per source" 4 "$(grep -c ' complete ' "$OUT")"
roundtrip seq "$T/seq.expected" stdout
roundtrip quoting "$T/quoting.expected" stdout
roundtrip pipe "$T/pipe.expected" stdout
roundtrip shell "$T/shell.expected" stdout

ID=$(last_id seq)
check "the object is <repo>/seq/<id>/stdout.zst.age" test -f "$REPO/seq/$ID/stdout.zst.age"
check_eq "raw_bytes of the seq backup is the output's size" "$(stat -c %s "$T/seq.expected")" \
	"$(list_json | jq --arg id "$ID" '.[] | select(.id == $id) | .raw_bytes')"

# --object picks the stream by name; a wrong name is "not found".
cf restore "$ID" --stdout --object stdout
check_rc "restore --stdout --object stdout" 0
check_same_file "restore --object stdout gives the output" "$T/seq.expected" "$OUT"
cf restore "$ID" --stdout --object nope
check_rc "restore --object with an unknown name" 3

# --- stdin -------------------------------------------------------------------
cf backup --stdin dump.sql <"$T/stdin.data"
check_rc "backup --stdin dump.sql" 0
ID=$(last_id dump.sql)
check "the stdin backup is listed as source dump.sql" test -n "$ID"
check "its object is <repo>/dump.sql/<id>/stdin.zst.age" test -f "$REPO/dump.sql/$ID/stdin.zst.age"
roundtrip dump.sql "$T/stdin.data" stdin

: >"$T/empty.expected"
cf backup --stdin empty </dev/null
check_rc "backup --stdin of 0 bytes fails without --allow-empty" 5
cf backup --stdin empty --allow-empty </dev/null
check_rc "backup --stdin of 0 bytes with --allow-empty" 0
ID=$(last_id empty)
check "the empty stdin backup is listed complete" test -n "$ID"
check_eq "its raw_bytes is 0" 0 "$(list_json | jq --arg id "$ID" '.[] | select(.id == $id) | .raw_bytes')"
roundtrip empty "$T/empty.expected" stdin

cf backup --stdin ../evil </dev/null
check_rc "backup --stdin with a path in the name is refused" 2
check_absent "nothing is written outside the repository" "$T/evil"

# --- stderr of the command -----------------------------------------------------
printf 'data\n' >"$T/noisy.expected"
cf --verbose backup noisy
check_rc "backup of a command writing to stderr" 0
check_grep "--verbose logs the command's first stderr line" "$ERR" 'noisy.*first-stderr-line'
check_grep "--verbose logs the command's second stderr line" "$ERR" 'noisy.*second stderr line'
check_no_grep "no error is logged" "$ERR" "^coffer: error"
roundtrip noisy "$T/noisy.expected" stdout


# Each stderr line is said once: the last ones in the error, the ones before
# as warnings, none twice (before, every line was a warning and the last
# ones came again in the error).
cf backup noisy-fail
check_rc "a failing command with 200 stderr lines" 5
check_one_error_line "noisy-fail: one error line"
check_grep "the error has the last line" "$ERR" '^coffer: error: .*diag line 200\.'
missing=0
twice=0
for i in $(seq 1 200); do
	n=$(grep -o "diag line $i\." "$ERR" | wc -l)
	[ "$n" = 0 ] && missing=$((missing + 1))
	[ "$n" -gt 1 ] && twice=$((twice + 1))
done
check_eq "every stderr line is shown" 0 "$missing"
check_eq "no stderr line is shown twice" 0 "$twice"
cf backup noisy
check_eq "a succeeding command's stderr line is a warning, once" 1 "$(grep -c 'first-stderr-line' "$ERR")"

t_finish
