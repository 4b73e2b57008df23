# inputs.sh: the benchmark inputs, shared by bench.sh and bench_s3.sh (sourced).
# Needs OUT, QUICK and MIB; sets LIBS, SQL and SQL_BYTES and makes the files
# once (they are reused by later runs): a tar of /usr/lib/x86_64-linux-gnu
# and a generated SQL dump.

# gen_sql BYTES: a mysqldump-like stream of extended INSERTs with varied
# numbers and strings, about 3x compressible by zstd -3. Deterministic seed.
gen_sql() {
	python3 - "$1" <<'PY'
import random, sys
size = int(sys.argv[1])
rnd = random.Random(42)
words = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu order invoice payment refund "
         "shipped pending cancelled delivered customer account premium standard express priority").split()
statuses = ["'pending'", "'shipped'", "'delivered'", "'cancelled'", "'refunded'"]
cities = ["'Berlin'", "'Paris'", "'Lisbon'", "'Tokyo'", "'Austin'", "'Oslo'", "'Lagos'", "'Lima'", "'Pune'", "'Perth'"]
out = sys.stdout.buffer
head = b"-- coffer benchmark: a generated SQL dump\nBEGIN;\n"
out.write(head)
written = len(head)
next_id = 1
N = 20000
while written < size:
    cust = [rnd.randrange(1, 5000000) for _ in range(N)]
    amt = [rnd.randrange(100, 500000) for _ in range(N)]
    ts = [1500000000 + (next_id + i) * 3 + rnd.randrange(0, 60) for i in range(N)]
    st = rnd.choices(statuses, k=N)
    ci = rnd.choices(cities, k=N)
    nw = rnd.choices(words, k=N * 4)
    tok = [rnd.getrandbits(24) for _ in range(N)]
    rows = ["(%d,%d,%s,%d.%02d,%s,%d,'%s %s %s %s','%06x')"
            % (next_id + i, cust[i], st[i], amt[i] // 100, amt[i] % 100, ci[i], ts[i],
               nw[4*i], nw[4*i+1], nw[4*i+2], nw[4*i+3], tok[i])
            for i in range(N)]
    lines = ["INSERT INTO `orders` VALUES " + ",".join(rows[j:j + 500]) + ";\n"
             for j in range(0, N, 500)]
    next_id += N
    block = "".join(lines).encode()
    if written + len(block) > size:
        block = block[:size - written]
    out.write(block)
    written += len(block)
PY
}

bench_inputs() {
	local who=$1
	if [ $QUICK = 1 ]; then
		LIBS=$OUT/inputs/libs-256m.tar
		SQL=$OUT/inputs/dump-256m.sql
		SQL_BYTES=$((256 * MIB))
	else
		LIBS=$OUT/inputs/libs.tar
		SQL=$OUT/inputs/dump-2g.sql
		SQL_BYTES=$((2048 * MIB))
	fi
	if [ ! -s "$LIBS" ]; then
		echo "$who: writing $LIBS (tar of /usr/lib/x86_64-linux-gnu)..." >&2
		if [ $QUICK = 1 ]; then
			# tar stops on the closed pipe once head has its 256 MiB.
			{ tar -cf - -C /usr/lib x86_64-linux-gnu 2>/dev/null || true; } | head -c $((256 * MIB)) >"$LIBS.part"
		else
			tar -cf "$LIBS.part" -C /usr/lib x86_64-linux-gnu 2>/dev/null || [ $? = 1 ] # 1: a file changed
		fi
		mv "$LIBS.part" "$LIBS"
	fi
	if [ ! -s "$SQL" ] || [ "$(stat -c %s "$SQL")" != "$SQL_BYTES" ]; then
		echo "$who: generating $SQL ($((SQL_BYTES / MIB)) MiB SQL dump)..." >&2
		gen_sql "$SQL_BYTES" >"$SQL.part"
		mv "$SQL.part" "$SQL"
	fi
}
