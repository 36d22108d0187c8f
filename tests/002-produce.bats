#!/usr/bin/env bats
# mq-produce(1): lines, delimiters, keys, headers, JSON, raw batches and
# whole files into a topic; partitioning, batching, compression, linger,
# follow mode, signals, crashes, concurrent producers and bad input.

load helper
load produce_helper

setup_file() {
	# one million lines, shared by the tests that need that many
	gen_lines 1000000 >"$BATS_FILE_TMPDIR/1m"
}

teardown() { produce_teardown; }

# The attributes' codec bits of the first batch of partition P of TOPIC.
first_codec() {
	echo $(($(od -An -tu1 -j 22 -N1 "$(pdir "$1" "${2:-0}")/00000000000000000000.log") & 7))
}

# The keyed partition Kafka's Java client picks for each key on stdin
# (one a line), for N partitions: "PARTITION KEY" lines.
java_partition() {
	"$PYTHON" -c '
import sys
from kafka.partitioner.default import murmur2
n = int(sys.argv[1])
for line in sys.stdin.buffer:
    k = line.rstrip(b"\n")
    sys.stdout.buffer.write(b"%d %s\n" % ((murmur2(k) & 0x7fffffff) % n, k))
' "$1"
}

# ---- round trips ------------------------------------------------------------

@test "1,000,000 lines piped in come out of mq-consume -e byte for byte, offsets dense" {
	local in=$BATS_FILE_TMPDIR/1m
	cat "$in" | mq-produce big
	mq-consume -e big >"$BATS_TEST_TMPDIR/out"
	cmp "$in" "$BATS_TEST_TMPDIR/out"
	run offsets_dense big
	[ "$status" -eq 0 ]
	[ "$output" = 1000000 ]
	[ "$(first_codec big)" -eq 0 ]
	verify_clean big
}

@test "-z gzip: 1,000,000 lines round-trip, batches are gzip and smaller" {
	local in=$BATS_FILE_TMPDIR/1m
	cat "$in" | mq-produce -z gzip big
	mq-consume -e big | cmp "$in" -
	run offsets_dense big
	[ "$output" = 1000000 ]
	[ "$(first_codec big)" -eq 1 ]
	[ "$(du -sk "$(pdir big)" | cut -f1)" -lt $(($(file_size "$in") / 1024 / 2)) ]
}

@test "--compression lz4: 1,000,000 lines round-trip, batches are lz4" {
	local in=$BATS_FILE_TMPDIR/1m
	cat "$in" | mq-produce --compression lz4 big
	mq-consume -e big | cmp "$in" -
	run offsets_dense big
	[ "$output" = 1000000 ]
	[ "$(first_codec big)" -eq 3 ]
}

@test "the topic's compression.type is the default codec" {
	mq-topic create zt -c compression.type=gzip
	gen_lines 1000 | mq-produce zt
	[ "$(first_codec zt)" -eq 1 ]
	gen_lines 1000 | mq-produce -z none zt2 2>/dev/null
	[ "$(first_codec zt2)" -eq 0 ]
}

@test "-K splits key and value at the first delimiter; -H adds headers to every record" {
	gen_keyed 200000 >"$BATS_TEST_TMPDIR/in"
	mq-produce -K '\t' -H a=b -H c=d kh <"$BATS_TEST_TMPDIR/in" 2>/dev/null
	mq-consume -e -f '%k\t%s\n' kh | cmp "$BATS_TEST_TMPDIR/in" -
	run sh -c "mq-consume -e -f '%h\n' kh | uniq -c | awk '{ print \$1, \$2 }'"
	[ "$output" = "200000 a=b,c=d" ]
	run offsets_dense kh
	[ "$output" = 200000 ]
	run mq-consume -e -c 1 -f '%k|%s|%h\n' kh
	[ "$output" = "$(head -1 "$BATS_TEST_TMPDIR/in" | sed 's/\t/|/' | sed 's/$/|a=b,c=d/')" ]
}

@test "-K: a record without the key delimiter has a null key; -J shows keys and headers" {
	printf 'k1\tv1\nno key here\n\tempty key\nk2\tv\t2\n' | mq-produce -K '\t' -H a=b -H c=d j 2>/dev/null
	run mq-consume -e -J j
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 4 ]
	[[ "${lines[0]}" == *'"offset":0,'*'"key":"k1","value":"v1","headers":{"a":"b","c":"d"}}' ]]
	[[ "${lines[1]}" == *'"key":null,"value":"no key here","headers":{"a":"b","c":"d"}}' ]]
	[[ "${lines[2]}" == *'"key":"","value":"empty key",'* ]]
	[[ "${lines[3]}" == *'"key":"k2","value":"v\t2",'* ]]
	run mq-consume -e -f '%k %h %s\n' j
	[ "${lines[0]}" = "k1 a=b,c=d v1" ]
	[ "${lines[1]}" = " a=b,c=d no key here" ]
}

@test "-0: binary NUL-delimited records (newlines, bytes 0x01-0xff) round-trip" {
	gen_binary 200000 >"$BATS_TEST_TMPDIR/in"
	mq-produce -0 bin <"$BATS_TEST_TMPDIR/in" 2>/dev/null
	mq-consume -e -f '%s\0' bin | cmp "$BATS_TEST_TMPDIR/in" -
	run offsets_dense bin
	[ "$output" = 200000 ]
	# record 0 holds every byte but NUL
	run mq-consume -e -c 1 -f '%S' bin
	[ "$output" = 255 ]
}

@test "empty lines are empty records; a last line without newline is a record" {
	printf '\n\nx\n\nlast' | mq-produce e 2>/dev/null
	run mq-consume -e -f '%o:%S:%s\n' e
	[ "$output" = $'0:0:\n1:0:\n2:1:x\n3:0:\n4:4:last' ]
}

@test "-D takes a multi-character delimiter and escapes" {
	printf 'a<>b<c<>>d<>' | mq-produce -D '<>' d 2>/dev/null
	run mq-consume -e -f '[%s]\n' d
	[ "$output" = $'[a]\n[b<c]\n[>d]' ]
	printf 'one\r\ntwo\nstill two\r\n' | mq-produce --delim '\r\n' crlf 2>/dev/null
	run mq-consume -e -f '[%s]\n' crlf
	[ "$output" = $'[one]\n[two\nstill two]' ]
}

# ---- partitioning -----------------------------------------------------------

@test "keyed records land where Kafka's Java default partitioner puts them" {
	mq-topic create k -p 7
	{
		for i in $(seq 1 500); do printf 'key-%d\tv%d\n' "$i" "$i"; done
		printf 'ü日本\tv\n\tempty key\nsession:4f2a-9c\tv\n'
	} >"$BATS_TEST_TMPDIR/in"
	mq-produce -K '\t' k <"$BATS_TEST_TMPDIR/in"
	cut -f1 "$BATS_TEST_TMPDIR/in" | java_partition 7 | sort >"$BATS_TEST_TMPDIR/want"
	mq-consume -e -f '%p %k\n' k | sort >"$BATS_TEST_TMPDIR/got"
	diff "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
	# every partition got some
	[ "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/got" | sort -u | wc -l)" -eq 7 ]
}

@test "records of one key keep their order" {
	mq-topic create k -p 5
	gen_keyed 20000 >"$BATS_TEST_TMPDIR/in"
	mq-produce -K '\t' --batch-size 4K k <"$BATS_TEST_TMPDIR/in"
	for key in user-0 user-17 user-49; do
		grep "^$key	" "$BATS_TEST_TMPDIR/in" >"$BATS_TEST_TMPDIR/want"
		mq-consume -e --key "$key" -f '%k\t%s\n' k | cmp "$BATS_TEST_TMPDIR/want" -
	done
}

@test "unkeyed records spread over the partitions batch by batch" {
	mq-topic create u -p 4
	seq -f 'line %.0f' 1 20000 >"$BATS_TEST_TMPDIR/in"
	mq-produce --batch-size 4K u <"$BATS_TEST_TMPDIR/in"
	for p in 0 1 2 3; do
		mq-consume -e -p "$p" u >"$BATS_TEST_TMPDIR/p$p"
		# several batches each, in input order within the partition
		[ "$(wc -l <"$BATS_TEST_TMPDIR/p$p")" -gt 1000 ]
		sort -k2n "$BATS_TEST_TMPDIR/p$p" | cmp "$BATS_TEST_TMPDIR/p$p" -
	done
	cat "$BATS_TEST_TMPDIR"/p[0-3] | sort -k2n | cmp "$BATS_TEST_TMPDIR/in" -
}

@test "-p N puts every record in partition N, keys or not" {
	mq-topic create p -p 3
	printf 'a\tone\nb\ttwo\nc\tthree\n' | mq-produce -p 2 -K '\t' p
	seq 1 100 | mq-produce --partition 1 p
	run mq-consume -e -p 2 -f '%p %k %s\n' p
	[ "$output" = $'2 a one\n2 b two\n2 c three' ]
	[ "$(mq-consume -e -p 1 p | wc -l)" -eq 100 ]
	[ "$(mq-consume -e -p 0 p | wc -l)" -eq 0 ]
}

@test "-p out of range exits 2 and appends nothing" {
	mq-topic create p -p 2
	run --separate-stderr mq-produce -p 2 p <<<"x"
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[ "$stderr" = "mq-produce: partition 2 out of range: topic 'p' has 2" ]
	run mq-produce -p -1 p <<<"x"
	[ "$status" -eq 2 ]
	run mq-produce -p x p <<<"x"
	[ "$status" -eq 2 ]
	[ "$(nrecords p)" -eq 0 ]
}

@test "-k gives every record the same key, in that key's partition" {
	mq-topic create k -p 5
	seq 1 50 | mq-produce -k host-1 k
	want=$(echo host-1 | java_partition 5 | cut -d' ' -f1)
	run sh -c "mq-consume -e -f '%p %k\n' k | sort | uniq -c | awk '{ print \$1, \$2, \$3 }'"
	[ "$output" = "50 $want host-1" ]
	run mq-consume -e -f '%s\n' k
	[ "$output" = "$(seq 1 50)" ]
}

# ---- --json, --raw, --file-per-record ----------------------------------------

@test "--json takes key, value, headers and partition from each object" {
	mq-topic create j -p 3
	cat >"$BATS_TEST_TMPDIR/in" <<'EOF'
{"key":"k1","value":"v1","headers":{"h":"1","n":null},"partition":2}
{"key":null,"value":"no key","partition":0}
{"value":"just a value","partition":1}
{"key":"ü日本","value":"tab\there \"q\" \\ \n newline","headers":{"x":"y"},"partition":0}
{"key":{"base64":"AAEC/w=="},"value":{"base64":"/wA="},"partition":1}
{"key":"k2","value":null,"partition":2}

EOF
	run --separate-stderr mq-produce --json j "$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	run mq-consume -e -p 0 -f '%k|%s|%S|%h\n' j
	[ "${lines[0]}" = "|no key|6|" ]
	[ "${lines[1]}" = "ü日本|tab	here \"q\" \\ " ]
	[ "${lines[2]}" = " newline|24|x=y" ]
	[ "${#lines[@]}" -eq 3 ]
	run mq-consume -e -p 2 -f '%k|%s|%S|%h\n' j
	[ "$output" = $'k1|v1|2|h=1,n\nk2||-1|' ]
	run mq-consume -e -p 1 -c 1 -f '%k|%s|%K\n' j
	[ "$output" = "|just a value|-1" ]
	cmp <(mq-consume -e -p 1 -o 1 -f '%k%s' j) <(printf '\0\1\2\377\377\0')
}

@test "mq-consume -J output round-trips through mq-produce --json" {
	mq-topic create a -p 3
	mq-topic create b -p 3
	gen_keyed 3000 | mq-produce -K '\t' -H trace=abc a
	printf 'x\0y\n' | mq-produce -p 1 -k $'\xff\xfe' a
	printf '{"key":null,"value":null,"headers":{"z":null}}\n' | mq-produce --json a
	mq-consume -e -J a >"$BATS_TEST_TMPDIR/a.json"
	mq-produce --json b <"$BATS_TEST_TMPDIR/a.json"
	mq-consume -e -J b >"$BATS_TEST_TMPDIR/b.json"
	# in order within each partition (mq-consume interleaves partitions
	# batch by batch, and the batches differ)
	strip() {
		sed -E 's/"topic":"[ab]",//; s/"offset":[0-9]+,//; s/"timestamp":[0-9]+,//' "$1" |
			sort -s -t, -k1,1
	}
	diff <(strip "$BATS_TEST_TMPDIR/a.json") <(strip "$BATS_TEST_TMPDIR/b.json")
	[ "$(wc -l <"$BATS_TEST_TMPDIR/b.json")" -eq 3002 ]
}

@test "--json: a malformed line exits 2 naming the line; the lines before it are in the topic" {
	{ seq -f '{"value":"ok %.0f"}' 1 5000; echo 'not json'; echo '{"value":"after"}'; } >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr mq-produce --json --batch-size 4K j "$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"line 5001: invalid JSON"* ]]
	# like an oversize record: refused with its number, nothing before it lost
	run mq-consume -e -f '%s\n' j
	echo "records in the topic: ${#lines[@]} (want the 5000 before the bad line)"
	[ "$output" = "$(seq -f 'ok %.0f' 1 5000)" ]
}

@test "--raw: batches from mq-consume --raw are appended with new offsets" {
	gen_keyed 5000 | mq-produce -K '\t' -H a=b --batch-size 4K -z lz4 src 2>/dev/null
	seq 1 10 | mq-produce dst 2>/dev/null
	mq-consume -e --raw src | mq-produce --raw dst
	mq-consume -e -f '%k|%s|%h\n' src >"$BATS_TEST_TMPDIR/want"
	mq-consume -e -o 10 -f '%k|%s|%h\n' dst | cmp "$BATS_TEST_TMPDIR/want" -
	run offsets_dense dst
	[ "$output" = 5010 ]
	run kafka_decode summary dst
	[ "$status" -eq 0 ]
	[[ "$output" == "0 5010 "*" lz4,none" ]]
	verify_clean dst
}

@test "--raw: input that is not record batches exits 4, nothing appended" {
	seq 1 3 | mq-produce r 2>/dev/null
	run --separate-stderr mq-produce --raw r <<<"garbage"
	[ "$status" -eq 4 ]
	[[ "$stderr" == "mq-produce: standard input: byte 0: "* ]]
	head -c 200 /dev/urandom >"$BATS_TEST_TMPDIR/junk"
	run mq-produce --raw r "$BATS_TEST_TMPDIR/junk"
	[ "$status" -eq 4 ]
	[ "$(nrecords r)" -eq 3 ]
}

@test "--file-per-record: each FILE is one record, exact bytes" {
	head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/bin"
	: >"$BATS_TEST_TMPDIR/empty"
	printf 'two\nlines\n' >"$BATS_TEST_TMPDIR/txt"
	run mq-produce --file-per-record f "$BATS_TEST_TMPDIR/bin" "$BATS_TEST_TMPDIR/empty" "$BATS_TEST_TMPDIR/txt"
	[ "$status" -eq 0 ]
	run mq-consume -e -f '%o %S\n' f
	[ "$output" = $'0 300000\n1 0\n2 10' ]
	mq-consume -e -c 1 -f '%s' f | cmp "$BATS_TEST_TMPDIR/bin" -
	mq-consume -e -o 2 -f '%s' f | cmp "$BATS_TEST_TMPDIR/txt" -
	run mq-produce --file-per-record f
	[ "$status" -eq 2 ]
}

# ---- topics -------------------------------------------------------------------

@test "a missing topic is created, and mq-produce says so on stderr" {
	run --separate-stderr mq-produce new <<<"x"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$stderr" = "mq-produce: created topic 'new'" ]
	[ -f "$MQ_DIR/topics/new/topic.conf" ]
	run mq-topic list
	[ "$output" = new ]
	run --separate-stderr mq-produce new <<<"y"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	run mq-consume -e new
	[ "$output" = $'x\ny' ]
}

@test "--no-create on a missing topic exits 3 and creates nothing" {
	run --separate-stderr mq-produce --no-create nope <<<"x"
	[ "$status" -eq 3 ]
	[ "$stderr" = "mq-produce: topic 'nope' not found" ]
	[ ! -e "$MQ_DIR/topics/nope" ]
	run mq-topic list
	[ -z "$output" ]
}

@test "-d DIR writes to that data directory" {
	run mq-produce -d "$BATS_TEST_TMPDIR/other" t <<<"x"
	[ "$status" -eq 0 ]
	[ -d "$BATS_TEST_TMPDIR/other/topics/t/0" ]
	[ ! -e "$MQ_DIR/topics/t" ]
	run mq-consume -d "$BATS_TEST_TMPDIR/other" -e t
	[ "$output" = x ]
}

@test "hostile topic names exit 2 and create nothing" {
	run --separate-stderr mq-produce ../x <<<"x"
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-produce: invalid topic name '../x'"* ]]
	run mq-produce 'a/b' <<<"x"
	[ "$status" -eq 2 ]
	run mq-produce .. <<<"x"
	[ "$status" -eq 2 ]
	[ ! -e "$MQ_DIR/x" ]
	[ ! -e "$MQ_DIR/topics/a" ]
}

# ---- concurrent producers, crashes -------------------------------------------

# Four producers of PREFIX-N lines into partition 0 of TOPIC at once;
# then every line is there once, each producer's in its order.
four_producers() {
	local t=$1 i pids=()
	shift
	for i in 1 2 3 4; do
		seq -f "p$i-%.0f" 1 20000 >"$BATS_TEST_TMPDIR/in$i"
	done
	for i in 1 2 3 4; do
		cat "$BATS_TEST_TMPDIR/in$i" | mq-produce "$@" "$t" 3>&- &
		pids+=($!)
	done
	for i in 0 1 2 3; do
		wait "${pids[$i]}"
	done
	mq-consume -e "$t" >"$BATS_TEST_TMPDIR/all"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/all")" -eq 80000 ]
	[ -z "$(sort "$BATS_TEST_TMPDIR/all" | uniq -d)" ]
	for i in 1 2 3 4; do
		grep "^p$i-" "$BATS_TEST_TMPDIR/all" | cmp "$BATS_TEST_TMPDIR/in$i" -
	done
	run offsets_dense "$t"
	[ "$output" = 80000 ]
	verify_clean "$t"
	run kafka_decode summary "$t"
	[ "$status" -eq 0 ]
}

@test "four producers appending to one partition at once: every record once, in order" {
	mq-topic create c
	four_producers c --batch-size 4K
	# many batches, none interleaved (kafka_decode checked each one)
	[ "$(mq-topic verify c | sed -n 's/.*: \([0-9]*\) batches.*/\1/p')" -gt 100 ]
}

@test "four producers at once across segment rolls (segment.bytes=16384)" {
	mq-topic create c -c segment.bytes=16384
	four_producers c --batch-size 4K -z gzip
	[ "$(ls "$(pdir c)"/*.log | wc -l)" -gt 10 ]
}

@test "kill -9 in the middle of a large input leaves whole batches, then appends go on" {
	"$PYTHON" -c '
import sys, time
for i in range(1, 100000000):
    sys.stdout.write("line %d\n" % i)
    if i % 2000 == 0:
        sys.stdout.flush()
        time.sleep(0.002)
' 2>/dev/null 3>&- | mq-produce --batch-size 4K crash 2>/dev/null 3>&- &
	local pid=$!
	bg_started "$pid"
	wait_until 10 has_records crash 20000
	sleep 0.3
	kill -9 "$pid"
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 137 ]
	verify_clean crash
	run kafka_decode summary crash
	[ "$status" -eq 0 ]
	# a prefix of the input: line 1 .. line N, nothing missing or doubled
	mq-consume -e crash >"$BATS_TEST_TMPDIR/got"
	n=$(wc -l <"$BATS_TEST_TMPDIR/got")
	[ "$n" -ge 20000 ]
	seq -f 'line %.0f' 1 "$n" | cmp - "$BATS_TEST_TMPDIR/got"
	run offsets_dense crash
	[ "$output" = "$n" ]
	# the next run appends after it
	seq -f 'next %.0f' 1 1000 | mq-produce crash
	run mq-consume -e -o "$n" crash
	[ "$output" = "$(seq -f 'next %.0f' 1 1000)" ]
	run offsets_dense crash
	[ "$output" = $((n + 1000)) ]
	verify_clean crash
}

# ---- follow mode ---------------------------------------------------------------

# Starts mq-produce -F FILE TOPIC [OPTS] in the background; $pid is its pid.
start_follow() {
	local f=$1 t=$2
	shift 2
	mq-produce -F "$f" "$@" "$t" 2>>"$BATS_TEST_TMPDIR/follow.err" 3>&- &
	pid=$!
	bg_started "$pid"
}

# Sends SIG to it and waits for it; $rc is its exit status.
stop_follow() {
	rc=0
	kill "-$1" "$pid"
	wait "$pid" || rc=$?
}

@test "-F follows a file across stops, restarts, rotation and truncation: every line once" {
	local f=$BATS_TEST_TMPDIR/app.log
	seq -f 'line %.0f' 1 100 >"$f"
	if [ "$MQ_TEST_TRANSPORT" != local ]; then
		run --separate-stderr mq-produce -F "$f" fl
		[ "$status" -eq 2 ]
		[[ "$stderr" == "mq-produce: --follow needs a local topic"* ]]
	fi
	local_only "-F refuses a remote topic: it reads back what it wrote"
	start_follow "$f" fl
	wait_until 10 has_records fl 100
	stop_follow TERM
	[ "$rc" -eq 0 ]
	# written while nobody follows
	seq -f 'line %.0f' 101 200 >>"$f"
	start_follow "$f" fl
	wait_until 10 has_records fl 200
	seq -f 'line %.0f' 201 300 >>"$f"
	wait_until 10 has_records fl 300
	stop_follow TERM
	[ "$rc" -eq 0 ]
	start_follow "$f" fl
	seq -f 'line %.0f' 301 400 >>"$f"
	wait_until 10 has_records fl 400
	# rotation: the old file moves away, a new one takes its name
	mv "$f" "$f.1"
	seq -f 'line %.0f' 401 500 >"$f"
	wait_until 10 has_records fl 500
	stop_follow TERM
	[ "$rc" -eq 0 ]
	start_follow "$f" fl
	seq -f 'line %.0f' 501 600 >>"$f"
	wait_until 10 has_records fl 600
	# truncation: the file starts again, shorter
	: >"$f"
	seq -f 'line %.0f' 601 620 >>"$f"
	wait_until 10 has_records fl 620
	sleep 0.5
	stop_follow INT
	[ "$rc" -eq 0 ]
	run mq-consume -e fl
	[ "$output" = "$(seq -f 'line %.0f' 1 620)" ]
	run offsets_dense fl
	[ "$output" = 620 ]
}

@test "-F resumes after kill -9 without losing or doubling a line" {
	local_only "-F refuses a remote topic: it reads back what it wrote"
	local f=$BATS_TEST_TMPDIR/app.log i wpid
	seq -f 'line %.0f' 1 100000 >"$f"
	# the file grows while the follower is killed and restarted
	slow_append "$f" 100001 400000 3>&- &
	wpid=$!
	bg_started "$wpid"
	for i in 1 2 3 4 5 6; do
		start_follow "$f" fl --batch-size 4K
		sleep 0.$((RANDOM % 3 + 2))
		stop_follow 9
		[ "$rc" -eq 137 ]
		verify_clean fl
	done
	wait "$wpid"
	start_follow "$f" fl --batch-size 4K
	wait_until 30 has_records fl 400000
	sleep 0.5
	stop_follow TERM
	[ "$rc" -eq 0 ]
	mq-consume -e fl >"$BATS_TEST_TMPDIR/got"
	seq -f 'line %.0f' 1 400000 | cmp - "$BATS_TEST_TMPDIR/got"
	run offsets_dense fl
	[ "$output" = 400000 ]
	verify_clean fl
}

@test "-F with keys over several partitions resumes after kill -9: every line once" {
	local_only "-F refuses a remote topic: it reads back what it wrote"
	local f=$BATS_TEST_TMPDIR/app.log i wpid
	mq-topic create fk -p 3
	slow_append "$f" 1 300000 keyed 3>&- &
	wpid=$!
	bg_started "$wpid"
	sleep 0.2
	for i in 1 2 3 4 5 6; do
		start_follow "$f" fk -K '\t' --batch-size 4K
		sleep 0.$((RANDOM % 3 + 2))
		stop_follow 9
		[ "$rc" -eq 137 ]
	done
	wait "$wpid"
	start_follow "$f" fk -K '\t' --batch-size 4K
	wait_until 30 has_records fk 300000
	sleep 0.5
	stop_follow TERM
	[ "$rc" -eq 0 ]
	[ "$(nrecords fk)" -eq 300000 ]
	mq-consume -e -f '%k\t%s\n' fk | sort >"$BATS_TEST_TMPDIR/got"
	sort "$f" | cmp - "$BATS_TEST_TMPDIR/got"
	# each key in file order
	for key in user-3 user-44; do
		grep "^$key	" "$f" >"$BATS_TEST_TMPDIR/want"
		mq-consume -e --key "$key" -f '%k\t%s\n' fk | cmp "$BATS_TEST_TMPDIR/want" -
	done
	for p in 0 1 2; do
		run offsets_dense fk "$p"
		[ "$status" -eq 0 ]
	done
}

# ---- -v, --tee, --linger, --fsync, signals --------------------------------------

@test "-v prints 'partition offset' of each batch written on stderr" {
	mq-topic create v -p 2
	gen_lines 5000 >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr mq-produce -v --batch-size 16K v "$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	printf '%s\n' "$stderr" | sort >"$BATS_TEST_TMPDIR/said"
	kafka_decode batches v | cut -d' ' -f1,2 | sort >"$BATS_TEST_TMPDIR/batches"
	diff "$BATS_TEST_TMPDIR/batches" "$BATS_TEST_TMPDIR/said"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/said")" -gt 4 ]
	run mq-produce v <"$BATS_TEST_TMPDIR/in"
	[ -z "$output" ]
}

@test "--tee echoes the records on stdout once written: stdout is the input" {
	gen_lines 20000 >"$BATS_TEST_TMPDIR/in"
	mq-produce --tee --batch-size 4K t <"$BATS_TEST_TMPDIR/in" 2>/dev/null >"$BATS_TEST_TMPDIR/out"
	cmp "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/out"
	mq-produce --tee -K '\t' t2 <"$BATS_TEST_TMPDIR/in" 2>/dev/null | cmp "$BATS_TEST_TMPDIR/in" -
	gen_binary 1000 >"$BATS_TEST_TMPDIR/bin"
	mq-produce --tee -0 t3 <"$BATS_TEST_TMPDIR/bin" 2>/dev/null | cmp "$BATS_TEST_TMPDIR/bin" -
	mq-consume -e t | cmp "$BATS_TEST_TMPDIR/in" -
}

@test "--tee with --json echoes each record as the JSON it came in" {
	cat >"$BATS_TEST_TMPDIR/in" <<'EOF'
{"key":"k1","value":"v1","headers":{"h":"x"}}
{"key":null,"value":"no key"}
{"key":"k2","value":"line\nbreak"}
EOF
	run --separate-stderr mq-produce --json --tee tj "$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	echo "stdout of --tee: $output"
	# the same records come out: a pipeline after --tee still has keys
	run "$PYTHON" -c '
import json, sys
ins = [json.loads(l) for l in open(sys.argv[1])]
outs = [json.loads(l) for l in sys.argv[2].splitlines()]
assert len(ins) == len(outs), (ins, outs)
for i, o in zip(ins, outs):
    for f in ("key", "value"):
        assert i.get(f) == o.get(f), (i, o)
print("ok")' "$BATS_TEST_TMPDIR/in" "$output"
	[ "$output" = ok ]
}

@test "--linger: a slow trickle is readable while the producer still runs" {
	mkfifo "$BATS_TEST_TMPDIR/fifo"
	mq-produce --linger 100ms lg <"$BATS_TEST_TMPDIR/fifo" 2>/dev/null 3>&- &
	local pid=$!
	bg_started "$pid"
	exec 5>"$BATS_TEST_TMPDIR/fifo"
	echo a >&5
	wait_until 5 has_records lg 1
	kill -0 "$pid"
	[ "$(mq-consume -e lg)" = a ]
	echo b >&5
	wait_until 5 has_records lg 2
	kill -0 "$pid"
	exec 5>&-
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ]
	[ "$(mq-consume -e lg)" = $'a\nb' ]
}

@test "--fsync: records round-trip and the log verifies" {
	gen_lines 20000 >"$BATS_TEST_TMPDIR/in"
	mq-produce --fsync --batch-size 64K fs <"$BATS_TEST_TMPDIR/in" 2>/dev/null
	mq-consume -e fs | cmp "$BATS_TEST_TMPDIR/in" -
	verify_clean fs
	run mq-produce --acks 1 fs </dev/null
	[ "$status" -eq 0 ]
}

# Feeds 1000 lines through a fifo to a producer that lingers for an hour,
# sends SIG, and checks that it exits 0 with all of them written.
signal_during_pipe() {
	mkfifo "$BATS_TEST_TMPDIR/fifo"
	mq-produce --linger 1h sig <"$BATS_TEST_TMPDIR/fifo" 3>&- &
	local pid=$! rc=0
	bg_started "$pid"
	exec 5>"$BATS_TEST_TMPDIR/fifo"
	seq 1 1000 >&5
	sleep 1
	# still pending: nothing written yet
	[ "$(nrecords sig)" -eq 0 ]
	kill "-$1" "$pid"
	wait "$pid" || rc=$?
	exec 5>&-
	[ "$rc" -eq 0 ]
	run mq-consume -e sig
	[ "$output" = "$(seq 1 1000)" ]
}

@test "SIGTERM during a pipe: exit 0, everything read is in the topic" {
	mq-topic create sig
	signal_during_pipe TERM
}

@test "SIGINT during a pipe: exit 0, everything read is in the topic" {
	mq-topic create sig
	signal_during_pipe INT
}

# ---- Kafka's own decoder ---------------------------------------------------------

@test "batches are valid Kafka RecordBatch v2 for kafka-python (none, gzip, lz4)" {
	need_kafka
	gen_keyed 20000 >"$BATS_TEST_TMPDIR/in"
	sed 's/\\/\\\\/g; s/\t/|/; s/\t/\\t/g; s/|/\t/; s/$/\ta=b,c=/' "$BATS_TEST_TMPDIR/in" |
		sort >"$BATS_TEST_TMPDIR/want"
	for z in none gzip lz4; do
		mq-topic create "k$z" -p 3
		mq-produce -z "$z" -K '\t' -H a=b -H c= --batch-size 16K "k$z" <"$BATS_TEST_TMPDIR/in"
		run kafka_decode summary "k$z"
		[ "$status" -eq 0 ]
		[ "${#lines[@]}" -eq 3 ]
		for l in "${lines[@]}"; do
			[[ "$l" == *" $z" ]]
		done
		kafka_decode records "k$z" | cut -f3- | sort | diff "$BATS_TEST_TMPDIR/want" -
	done
}

@test "unkeyed, NUL-delimited and --file-per-record batches decode with kafka-python" {
	need_kafka
	gen_binary 3000 >"$BATS_TEST_TMPDIR/bin"
	mq-produce -0 -z lz4 --batch-size 8K b "$BATS_TEST_TMPDIR/bin" 2>/dev/null
	kafka_decode values b '\0' | cmp "$BATS_TEST_TMPDIR/bin" -
	head -c 50000 /dev/urandom >"$BATS_TEST_TMPDIR/r"
	mq-produce --file-per-record -z gzip f "$BATS_TEST_TMPDIR/r" 2>/dev/null
	kafka_decode values f '' | cmp "$BATS_TEST_TMPDIR/r" -
}

# ---- bad input ------------------------------------------------------------------

@test "a bad delimiter exits 2" {
	run --separate-stderr mq-produce -D '' t </dev/null
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-produce: invalid delimiter '': "* ]]
	[[ "$stderr" == *"Try 'mq-produce --help'"* ]]
	run --separate-stderr mq-produce -D '\q' t </dev/null
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-produce: invalid delimiter '\\q'"* ]]
	run mq-produce -K '' t </dev/null
	[ "$status" -eq 2 ]
	[ ! -e "$MQ_DIR/topics/t" ]
}

@test "a bad header exits 2" {
	run --separate-stderr mq-produce -H novalue t </dev/null
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-produce: invalid header 'novalue': expected NAME=VALUE"* ]]
	run --separate-stderr mq-produce -H =x t </dev/null
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-produce: invalid header '=x'"* ]]
	# an empty value is fine
	run mq-produce -H a= t <<<"x"
	[ "$status" -eq 0 ]
	run mq-consume -e -f '%h' t
	[ "$output" = "a=" ]
}

@test "-z snappy, --acks 2 and other bad options exit 2" {
	run --separate-stderr mq-produce -z snappy t </dev/null
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-produce: invalid compression 'snappy'"* ]]
	run --separate-stderr mq-produce --acks-timeout soon t </dev/null
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-produce: invalid --acks-timeout 'soon'"* ]]
	run mq-produce --acks 2 t </dev/null
	[ "$status" -eq 2 ]
	run mq-produce --linger soon t </dev/null
	[ "$status" -eq 2 ]
	run mq-produce --batch-size big t </dev/null
	[ "$status" -eq 2 ]
	run mq-produce -k a -K '\t' t </dev/null
	[ "$status" -eq 2 ]
	run mq-produce --json --raw t </dev/null
	[ "$status" -eq 2 ]
	run mq-produce </dev/null
	[ "$status" -eq 2 ]
	[ ! -e "$MQ_DIR/topics/t" ]
}

@test "an oversize record exits 1 naming its number; the records before it are in" {
	mq-topic create o -c max.message.bytes=1000
	{ echo one; echo two; head -c 2000 /dev/zero | tr '\0' x; echo; echo four; } >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr mq-produce o <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 1 ]
	[[ "$stderr" == "mq-produce: standard input: record 3 refused: "*"max.message.bytes (1000)" ]]
	run mq-consume -e o
	[ "$output" = $'one\ntwo' ]
}

@test "--skip-oversize warns, skips the record and keeps all the others" {
	mq-topic create o -c max.message.bytes=1000
	{ echo one; echo two; head -c 2000 /dev/zero | tr '\0' x; echo; echo four; } >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr mq-produce --skip-oversize o "$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	[[ "$stderr" == "mq-produce: $BATS_TEST_TMPDIR/in: record 3 skipped: "* ]]
	[ "${#stderr_lines[@]}" -eq 1 ]
	run mq-consume -e o
	[ "$output" = $'one\ntwo\nfour' ]
}

@test "--skip-oversize: a record of megabytes through a pipe gives one warning" {
	mq-topic create o -c max.message.bytes=1000
	{ echo one; head -c 3000000 /dev/zero | tr '\0' x; echo; echo three; } >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr sh -c 'cat "$1" | mq-produce --skip-oversize o' sh "$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	[[ "${stderr_lines[0]}" == "mq-produce: standard input: record 2 skipped: "* ]]
	echo "warnings: ${#stderr_lines[@]} (want 1)"
	[ "${#stderr_lines[@]}" -eq 1 ]
	run mq-consume -e o
	[ "$output" = $'one\nthree' ]
}

@test "an unreadable FILE exits 5 and appends nothing, even after a good FILE" {
	seq 1 5 | mq-produce t 2>/dev/null
	seq -f 'good %.0f' 1 100000 >"$BATS_TEST_TMPDIR/good"
	run --separate-stderr mq-produce t "$BATS_TEST_TMPDIR/good" "$BATS_TEST_TMPDIR/missing"
	[ "$status" -eq 5 ]
	[ "$stderr" = "mq-produce: cannot open '$BATS_TEST_TMPDIR/missing': No such file or directory" ]
	[ "$(nrecords t)" -eq 5 ]
	run mq-produce t2 "$BATS_TEST_TMPDIR/missing"
	[ "$status" -eq 5 ]
	[ ! -e "$MQ_DIR/topics/t2" ]
	# a directory opens, but cannot be read
	run --separate-stderr mq-produce --batch-size 4K t "$BATS_TEST_TMPDIR/good" "$BATS_TEST_TMPDIR"
	[ "$status" -eq 5 ]
	[[ "$stderr" == *"'$BATS_TEST_TMPDIR'"*"Is a directory" ]]
	n=$(nrecords t)
	echo "records in the topic: $n (want the 5 from before)"
	[ "$n" -eq 5 ]
}

# Builds the shim that makes writes to .log files fail (tests/fault/enospc.c).
build_enospc() {
	cc -shared -fPIC -o "$BATS_TEST_TMPDIR/enospc.so" "$BATS_TEST_DIRNAME/fault/enospc.c" -ldl ||
		skip "cannot build the LD_PRELOAD shim"
}

@test "a full disk exits 5 with a clear message; what was acknowledged stays" {
	not_over_http "the LD_PRELOAD shim is in the client; the writes are the server's"
	build_enospc
	gen_lines 2000 >"$BATS_TEST_TMPDIR/first"
	gen_lines 20000 7 >"$BATS_TEST_TMPDIR/second"
	mq-produce full <"$BATS_TEST_TMPDIR/first" 2>/dev/null
	run --separate-stderr env LD_PRELOAD="$BATS_TEST_TMPDIR/enospc.so" MQ_FAIL_AFTER=3 \
		mq-produce -v --batch-size 4K full <"$BATS_TEST_TMPDIR/second"
	[ "$status" -eq 5 ]
	[[ "${stderr_lines[-1]}" == "mq-produce: cannot append to "*": No space left on device" ]]
	# three batches were acknowledged (-v), and exactly those are there
	[ "${#stderr_lines[@]}" -eq 4 ]
	acked=$(($(echo "${stderr_lines[2]}" | cut -d' ' -f2) + 0))
	verify_clean full
	mq-consume -e -c 2000 full | cmp "$BATS_TEST_TMPDIR/first" -
	n=$(nrecords full)
	[ "$n" -gt "$acked" ]
	mq-consume -e -o 2000 full | cmp - <(head -n $((n - 2000)) "$BATS_TEST_TMPDIR/second")
	# the next run, with room again, appends after it
	mq-produce full <"$BATS_TEST_TMPDIR/first"
	[ "$(nrecords full)" -eq $((n + 2000)) ]
	mq-consume -e -o "$n" full | cmp "$BATS_TEST_TMPDIR/first" -
	verify_clean full
	run kafka_decode summary full
	[ "$status" -eq 0 ]
}

@test "a disk filling up in the middle of a write leaves no torn batch" {
	not_over_http "the LD_PRELOAD shim is in the client; the writes are the server's"
	build_enospc
	gen_lines 2000 >"$BATS_TEST_TMPDIR/first"
	mq-produce full <"$BATS_TEST_TMPDIR/first" 2>/dev/null
	size=$(file_size "$(segment full 0)")
	run --separate-stderr env LD_PRELOAD="$BATS_TEST_TMPDIR/enospc.so" MQ_FAIL_AFTER=0 MQ_FAIL_PARTIAL=1 \
		mq-produce full <"$BATS_TEST_TMPDIR/first"
	[ "$status" -eq 5 ]
	[[ "$stderr" == *"No space left on device" ]]
	[ "$(file_size "$(segment full 0)")" -eq "$size" ]
	verify_clean full
	mq-consume -e full | cmp "$BATS_TEST_TMPDIR/first" -
	mq-produce full <"$BATS_TEST_TMPDIR/first"
	[ "$(nrecords full)" -eq 4000 ]
	verify_clean full
}

# ---- usage -----------------------------------------------------------------------

@test "--help prints the usage on stdout and exits 0" {
	run --separate-stderr mq-produce --help
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[[ "${lines[0]}" == "usage: mq-produce "* ]]
	[[ "$output" == *"TOPIC [FILE...]"* ]]
	run mq-produce -h
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "usage: mq-produce "* ]]
}

@test "an unknown option exits 2 with a hint to --help" {
	run --separate-stderr mq-produce --bogus t </dev/null
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[[ "$stderr" == *"Try 'mq-produce --help' for more information." ]]
	run --separate-stderr mq-produce -Q t </dev/null
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"Try 'mq-produce --help'"* ]]
	[ ! -e "$MQ_DIR/topics/t" ]
}
