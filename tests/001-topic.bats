#!/usr/bin/env bats
# mq-topic(1): create, list, describe, alter, delete, verify, gc, dump.

load helper

# "START END" of partition P of TOPIC, as describe shows them.
start_end() {
	mq-topic describe "$1" | awk -v p="${2:-0}" 'f && $1 == p { print $2, $3 } /^PARTITION/ { f = 1 }'
}

# Nothing at all under $MQ_DIR but (perhaps) an empty topics/.
assert_nothing_created() {
	run find "$MQ_DIR" -mindepth 1 ! -path "$MQ_DIR/topics"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ ! -e "$BATS_TEST_TMPDIR/x" ]
}

# ---- create, list, describe, delete ---------------------------------------

@test "create makes the topic directory, one directory per partition and topic.conf" {
	run mq-topic create logs -p 3
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -f "$MQ_DIR/topics/logs/topic.conf" ]
	[ -d "$MQ_DIR/topics/logs/0" ] && [ -d "$MQ_DIR/topics/logs/1" ] && [ -d "$MQ_DIR/topics/logs/2" ]
	[ ! -e "$MQ_DIR/topics/logs/3" ]
}

@test "topic.conf holds every config as key=value lines with Kafka's names and defaults" {
	mq-topic create logs -p 2
	run cat "$MQ_DIR/topics/logs/topic.conf"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "partitions=2" ]
	[[ "$output" == *$'\nretention.ms=604800000\n'* ]]
	[[ "$output" == *$'\nretention.bytes=-1\n'* ]]
	[[ "$output" == *$'\nsegment.bytes=1073741824\n'* ]]
	[[ "$output" == *$'\ncompression.type=producer\n'* ]]
	[[ "$output" == *$'\ncleanup.policy=delete\n'* ]]
	[[ "$output" == *$'\nmax.message.bytes=1048588\n'* ]]
	[[ "$output" == *$'\nmin.insync.replicas=0\n'* ]]
	# nothing but key=value lines
	run grep -cv '^[a-z.]*=[^=]*$' "$MQ_DIR/topics/logs/topic.conf"
	[ "$output" = 0 ]
}

@test "create -c takes sizes and durations with suffixes and stores plain numbers" {
	run mq-topic create logs -c retention.ms=1h -c segment.bytes=16M -c compression.type=gzip
	[ "$status" -eq 0 ]
	run cat "$MQ_DIR/topics/logs/topic.conf"
	[[ "$output" == *$'\nretention.ms=3600000\n'* ]]
	[[ "$output" == *$'\nsegment.bytes=16777216\n'* ]]
	[[ "$output" == *$'\ncompression.type=gzip\n'* ]]
}

@test "create --config and --partitions are the long forms of -c and -p" {
	run mq-topic create logs --partitions 2 --config retention.ms=2d
	[ "$status" -eq 0 ]
	run cat "$MQ_DIR/topics/logs/topic.conf"
	[ "${lines[0]}" = "partitions=2" ]
	[[ "$output" == *$'\nretention.ms=172800000\n'* ]]
}

@test "create of an existing topic exits 1 with 'already exists' and leaves it alone" {
	mq-topic create logs -p 2
	cp "$MQ_DIR/topics/logs/topic.conf" "$BATS_TEST_TMPDIR/before"
	run --separate-stderr mq-topic create logs -p 5
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[ "$stderr" = "mq-topic: topic 'logs' already exists" ]
	cmp "$MQ_DIR/topics/logs/topic.conf" "$BATS_TEST_TMPDIR/before"
	[ ! -e "$MQ_DIR/topics/logs/2" ]
}

@test "create --if-not-exists of an existing topic exits 0 and changes nothing" {
	mq-topic create logs -p 2
	cp "$MQ_DIR/topics/logs/topic.conf" "$BATS_TEST_TMPDIR/before"
	run mq-topic create logs -p 5 --if-not-exists
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	cmp "$MQ_DIR/topics/logs/topic.conf" "$BATS_TEST_TMPDIR/before"
	run mq-topic create fresh --if-not-exists
	[ "$status" -eq 0 ]
	[ -f "$MQ_DIR/topics/fresh/topic.conf" ]
}

@test "list prints the topic names sorted, one a line" {
	run mq-topic list
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	mq-topic create zeta
	mq-topic create alpha
	mq-topic create mid.dle_x-1
	run mq-topic list
	[ "$status" -eq 0 ]
	[ "$output" = $'alpha\nmid.dle_x-1\nzeta' ]
}

@test "describe shows partitions, config and one line per partition" {
	mq-topic create logs -p 2 -c retention.ms=1h
	run mq-topic describe logs
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = $'Topic: logs\tPartitions: 2' ]
	[[ "${lines[1]}" == "Config: partitions=2 retention.ms=3600000 "* ]]
	[[ "${lines[2]}" =~ ^PARTITION\ +START\ +END\ +HW\ +SEGMENTS\ +BYTES\ +FIRST-TIME\ +LAST-TIME ]]
	[[ "${lines[3]}" =~ ^0\ +0\ +0\ +0\ +0\ +0\ +-\ +-\ *$ ]]
	[[ "${lines[4]}" =~ ^1\ +0\ +0\ +0\ +0\ +0\ +-\ +-\ *$ ]]
	[ "${#lines[@]}" -eq 5 ]
}

@test "describe -J prints valid JSON with the partitions and the config" {
	mq-topic create logs -p 2 -c retention.ms=1h -c compression.type=lz4
	run mq-topic describe -J logs
	[ "$status" -eq 0 ]
	echo "$output" | "$PYTHON" -m json.tool >/dev/null
	run "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
assert d["topic"] == "logs", d
assert [p["partition"] for p in d["partitions"]] == [0, 1], d
assert d["partitions"][0]["log_end_offset"] == 0, d
assert d["config"]["retention.ms"] == 3600000, d
assert d["config"]["compression.type"] == "lz4", d
assert d["config"]["partitions"] == 2, d
print("ok")' <<<"$output"
	[ "$status" -eq 0 ]
	[ "$output" = ok ]
}

@test "describe --json of two topics prints one JSON object a line" {
	mq-topic create a
	mq-topic create b -p 3
	run mq-topic describe --json a b
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 2 ]
	echo "$output" | "$PYTHON" -m json.tool --json-lines >/dev/null
}

@test "describe of a missing topic exits 3 with 'not found'" {
	run --separate-stderr mq-topic describe nope
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	[ "$stderr" = "mq-topic: topic 'nope' not found" ]
}

@test "delete removes the topic and everything in it" {
	mq-topic create logs -p 2
	mq-topic create keep
	run mq-topic delete logs
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ ! -e "$MQ_DIR/topics/logs" ]
	run mq-topic list
	[ "$output" = keep ]
	# nothing left behind in topics/
	run find "$MQ_DIR/topics" -mindepth 1 -maxdepth 1 -name '.*'
	[ -z "$output" ]
}

@test "delete takes several topics" {
	mq-topic create a
	mq-topic create b
	run mq-topic delete a b
	[ "$status" -eq 0 ]
	run mq-topic list
	[ -z "$output" ]
}

@test "delete of a missing topic exits 3 with 'not found'" {
	run --separate-stderr mq-topic delete nope
	[ "$status" -eq 3 ]
	[ "$stderr" = "mq-topic: topic 'nope' not found" ]
}

@test "-d DIR chooses the data directory over \$MQ_DIR" {
	run mq-topic -d "$BATS_TEST_TMPDIR/other" create logs
	[ "$status" -eq 0 ]
	[ -f "$BATS_TEST_TMPDIR/other/topics/logs/topic.conf" ]
	[ ! -e "$MQ_DIR/topics/logs" ]
	run mq-topic --dir "$BATS_TEST_TMPDIR/other" list
	[ "$output" = logs ]
}

# ---- hostile and invalid names ---------------------------------------------

@test "create refuses '../x' with exit 2 and creates nothing" {
	run --separate-stderr mq-topic create ../x
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-topic: invalid topic name '../x'"* ]]
	assert_nothing_created
}

@test "create refuses 'a/b' with exit 2 and creates nothing" {
	run --separate-stderr mq-topic create a/b
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-topic: invalid topic name 'a/b': only letters, digits, '.', '_' and '-' are allowed" ]]
	assert_nothing_created
}

@test "create refuses '..' and '.' with exit 2 and creates nothing" {
	run --separate-stderr mq-topic create ..
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-topic: invalid topic name '..'"* ]]
	run --separate-stderr mq-topic create .
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-topic: invalid topic name '.'"* ]]
	assert_nothing_created
}

@test "create refuses the empty name with exit 2 and creates nothing" {
	run --separate-stderr mq-topic create ''
	[ "$status" -eq 2 ]
	[ "$stderr" = "mq-topic: invalid topic name '': empty" ]
	assert_nothing_created
}

@test "create takes a 249-character name and refuses 250 characters" {
	n249=$(printf 'a%.0s' $(seq 249))
	n250=${n249}b
	run --separate-stderr mq-topic create "$n250"
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-topic: invalid topic name '"*"': longer than 249 characters" ]]
	assert_nothing_created
	run mq-topic create "$n249"
	[ "$status" -eq 0 ]
	[ -f "$MQ_DIR/topics/$n249/topic.conf" ]
}

@test "create refuses names with spaces, newlines and other bytes" {
	for name in 'a b' $'a\nb' 'a*' 'ü' 'a:b' 'a\b'; do
		run --separate-stderr mq-topic create -- "$name"
		[ "$status" -eq 2 ]
		[[ "$stderr" == "mq-topic: invalid topic name"* ]]
	done
	assert_nothing_created
}

@test "delete, describe, alter and verify refuse '../x' and touch nothing outside topics/" {
	mkdir "$MQ_DIR/x" "$BATS_TEST_TMPDIR/x"
	echo precious >"$MQ_DIR/x/file"
	for cmd in delete describe verify gc; do
		run --separate-stderr mq-topic $cmd ../x
		[ "$status" -eq 2 ]
		[[ "$stderr" == "mq-topic: invalid topic name '../x'"* ]]
	done
	run --separate-stderr mq-topic alter ../x -p 2
	[ "$status" -eq 2 ]
	[ "$(cat "$MQ_DIR/x/file")" = precious ]
	[ -d "$BATS_TEST_TMPDIR/x" ]
	[ -z "$(ls -A "$BATS_TEST_TMPDIR/x")" ]
}

@test "delete removes a topic with a 249-character name" {
	n249=$(printf 'b%.0s' $(seq 249))
	# made by hand, so that this test does not depend on create
	mq-topic create short -p 2
	mkdir "$MQ_DIR/topics/$n249"
	cp -R "$MQ_DIR/topics/short/." "$MQ_DIR/topics/$n249/"
	run mq-topic describe "$n249"
	[ "$status" -eq 0 ]
	run --separate-stderr mq-topic delete "$n249"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ ! -e "$MQ_DIR/topics/$n249" ]
	run mq-topic list
	[ "$output" = short ]
}

# ---- invalid options ------------------------------------------------------

@test "create -p abc, -p 0 and -p -1 exit 2 naming the count and create nothing" {
	for n in abc 0 -1 3x ''; do
		run --separate-stderr mq-topic create logs -p "$n"
		[ "$status" -eq 2 ]
		[ "${stderr_lines[0]}" = "mq-topic: invalid partition count '$n': expected 1 to 100000" ]
		[ "${stderr_lines[1]}" = "Try 'mq-topic --help' for more information." ]
	done
	[ ! -e "$MQ_DIR/topics/logs" ]
}

@test "create -c foo=1 exits 2 naming the unknown key and creates nothing" {
	run --separate-stderr mq-topic create logs -c foo=1
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[[ "$stderr" == *"unknown config 'foo'"* ]]
	[ ! -e "$MQ_DIR/topics/logs" ]
}

@test "create -c segment.bytes=abc exits 2 naming the key and the value" {
	run --separate-stderr mq-topic create logs -c segment.bytes=abc
	[ "$status" -eq 2 ]
	[ "$stderr" = "mq-topic: invalid value 'abc' for 'segment.bytes': expected a size like 16M" ]
	[ ! -e "$MQ_DIR/topics/logs" ]
}

@test "create -c rejects values out of range and words a key does not take" {
	for kv in segment.bytes=1 retention.ms=-5 partitions=0 cleanup.policy=shred \
		compression.type=brotli min.insync.replicas=x; do
		run --separate-stderr mq-topic create logs -c "$kv"
		[ "$status" -eq 2 ]
		[[ "$stderr" == *"'${kv%%=*}'"* ]]
	done
	[ ! -e "$MQ_DIR/topics/logs" ]
}

@test "create -c without '=' exits 2 asking for KEY=VALUE" {
	run --separate-stderr mq-topic create logs -c retention.ms
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "mq-topic: invalid config 'retention.ms': expected KEY=VALUE" ]
	[ ! -e "$MQ_DIR/topics/logs" ]
}

@test "create needs exactly one topic" {
	run --separate-stderr mq-topic create
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"create needs exactly one TOPIC"* ]]
	run --separate-stderr mq-topic create a b
	[ "$status" -eq 2 ]
	[ ! -e "$MQ_DIR/topics/a" ]
}

@test "an option that does not apply to the command exits 2" {
	mq-topic create logs
	run --separate-stderr mq-topic list -J
	[ "$status" -eq 2 ]
	[ "${stderr_lines[0]}" = "mq-topic: option '--json' does not apply to 'list'" ]
	[ "${stderr_lines[1]}" = "Try 'mq-topic --help' for more information." ]
	run --separate-stderr mq-topic delete -p 3 logs
	[ "$status" -eq 2 ]
	[ -d "$MQ_DIR/topics/logs" ]
}

@test "--help prints the usage to stdout and exits 0" {
	run --separate-stderr mq-topic --help
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[[ "${lines[0]}" == "usage: mq-topic [-d DIR] create TOPIC"* ]]
	[[ "$output" == *"mq-topic [-d DIR] verify [--repair] [TOPIC...]"* ]]
	[[ "$output" == *"mq-topic dump [--records] FILE|DIR..."* ]]
	run mq-topic -h
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "usage: mq-topic"* ]]
}

@test "--version prints the program and version" {
	run mq-topic --version
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^mq-topic\ \(mq\)\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "an unknown command exits 2 with 'Try mq-topic --help'" {
	run --separate-stderr mq-topic frobnicate
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[ "${stderr_lines[0]}" = "mq-topic: unknown command 'frobnicate'" ]
	[ "${stderr_lines[1]}" = "Try 'mq-topic --help' for more information." ]
}

@test "an unknown option exits 2 with 'Try mq-topic --help'" {
	run --separate-stderr mq-topic --frobnicate list
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[[ "$stderr" == *"'--frobnicate'"* ]]
	[[ "$stderr" == *"Try 'mq-topic --help' for more information."* ]]
}

@test "no command at all exits 2 with the usage on stderr" {
	run --separate-stderr mq-topic
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[[ "$stderr" == *"usage: mq-topic"* ]]
}

# ---- alter ----------------------------------------------------------------

@test "alter -p grows the topic and creates the new partition directories" {
	mq-topic create logs -p 2
	run mq-topic alter logs -p 5
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	for p in 0 1 2 3 4; do [ -d "$MQ_DIR/topics/logs/$p" ]; done
	[ "$(head -1 "$MQ_DIR/topics/logs/topic.conf")" = "partitions=5" ]
	run mq-topic describe logs
	[ "${lines[0]}" = $'Topic: logs\tPartitions: 5' ]
}

@test "alter -p refuses to shrink with exit 2 and changes nothing" {
	mq-topic create logs -p 3
	cp "$MQ_DIR/topics/logs/topic.conf" "$BATS_TEST_TMPDIR/before"
	run --separate-stderr mq-topic alter logs -p 1
	[ "$status" -eq 2 ]
	[ "$stderr" = "mq-topic: cannot shrink topic 'logs' from 3 to 1 partitions: partitions may only grow" ]
	cmp "$MQ_DIR/topics/logs/topic.conf" "$BATS_TEST_TMPDIR/before"
	[ -d "$MQ_DIR/topics/logs/2" ]
}

@test "alter -c changes one config and keeps the others" {
	mq-topic create logs -p 2 -c segment.bytes=1M
	run mq-topic alter logs -c retention.ms=2h
	[ "$status" -eq 0 ]
	run cat "$MQ_DIR/topics/logs/topic.conf"
	[ "${lines[0]}" = "partitions=2" ]
	[[ "$output" == *$'\nretention.ms=7200000\n'* ]]
	[[ "$output" == *$'\nsegment.bytes=1048576\n'* ]]
}

@test "alter -c validates the change: exit 2 and topic.conf unchanged" {
	mq-topic create logs
	cp "$MQ_DIR/topics/logs/topic.conf" "$BATS_TEST_TMPDIR/before"
	run --separate-stderr mq-topic alter logs -c segment.bytes=abc
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"'segment.bytes'"* ]]
	run --separate-stderr mq-topic alter logs -c foo=1
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"unknown config 'foo'"* ]]
	run --separate-stderr mq-topic alter logs -p 4 -c retention.bytes=lots
	[ "$status" -eq 2 ]
	cmp "$MQ_DIR/topics/logs/topic.conf" "$BATS_TEST_TMPDIR/before"
	[ ! -e "$MQ_DIR/topics/logs/1" ]
}

@test "alter without -p or -c exits 2" {
	mq-topic create logs
	run --separate-stderr mq-topic alter logs
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"alter needs -p N or -c KEY=VALUE"* ]]
}

@test "alter of a missing topic exits 3 with 'not found'" {
	run --separate-stderr mq-topic alter nope -p 2
	[ "$status" -eq 3 ]
	[ "$stderr" = "mq-topic: topic 'nope' not found" ]
	[ ! -e "$MQ_DIR/topics/nope" ]
}

# ---- the data directory ----------------------------------------------------

@test "a missing data directory is created, parents and all" {
	run mq-topic -d "$BATS_TEST_TMPDIR/new/deep" create logs
	[ "$status" -eq 0 ]
	[ -f "$BATS_TEST_TMPDIR/new/deep/topics/logs/topic.conf" ]
}

@test "\$MQ_DIR is created when missing" {
	MQ_DIR=$BATS_TEST_TMPDIR/fresh/data
	run mq-topic create logs
	[ "$status" -eq 0 ]
	[ -f "$BATS_TEST_TMPDIR/fresh/data/topics/logs/topic.conf" ]
}

@test "a data directory that cannot be created exits 5 naming it" {
	run --separate-stderr mq-topic -d /proc/forbidden create logs
	[ "$status" -eq 5 ]
	[[ "$stderr" == "mq-topic: "*"'/proc/forbidden'"* ]]
	[ ! -e /proc/forbidden ]
}

@test "a data directory under a regular file exits 5 with 'Not a directory'" {
	: >"$BATS_TEST_TMPDIR/file"
	for cmd in 'create logs' list 'describe logs' verify gc; do
		run --separate-stderr mq-topic -d "$BATS_TEST_TMPDIR/file/sub" $cmd
		[ "$status" -eq 5 ]
		[[ "$stderr" == "mq-topic: "*"'$BATS_TEST_TMPDIR/file/sub'"*": Not a directory" ]]
	done
	[ -f "$BATS_TEST_TMPDIR/file" ] && [ ! -s "$BATS_TEST_TMPDIR/file" ]
}

@test "a read-only data directory exits 5 (when not root)" {
	[ "$(id -u)" -ne 0 ] || skip "root ignores directory permissions"
	mkdir "$BATS_TEST_TMPDIR/ro"
	chmod 0500 "$BATS_TEST_TMPDIR/ro"
	run --separate-stderr mq-topic -d "$BATS_TEST_TMPDIR/ro" create logs
	chmod 0700 "$BATS_TEST_TMPDIR/ro"
	[ "$status" -eq 5 ]
	[[ "$stderr" == *"Permission denied"* ]]
}

# ---- concurrent create -------------------------------------------------------

@test "of two processes creating the same topic at once exactly one wins" {
	for i in $(seq 1 20); do
		mq-topic create "race$i" -p 2 >"$BATS_TEST_TMPDIR/a" 2>&1 &
		a=$!
		mq-topic create "race$i" -p 3 >"$BATS_TEST_TMPDIR/b" 2>&1 &
		b=$!
		ra=0 rb=0
		wait "$a" || ra=$?
		wait "$b" || rb=$?
		echo "round $i: $ra $rb: $(cat "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b")"
		if [ "$ra" -eq 0 ]; then
			[ "$rb" -eq 1 ]
			[ "$(cat "$BATS_TEST_TMPDIR/b")" = "mq-topic: topic 'race$i' already exists" ]
			[ ! -s "$BATS_TEST_TMPDIR/a" ]
			want=2
		else
			[ "$ra" -eq 1 ] && [ "$rb" -eq 0 ]
			[ "$(cat "$BATS_TEST_TMPDIR/a")" = "mq-topic: topic 'race$i' already exists" ]
			[ ! -s "$BATS_TEST_TMPDIR/b" ]
			want=3
		fi
		# the winner's topic, whole
		[ "$(head -1 "$MQ_DIR/topics/race$i/topic.conf")" = "partitions=$want" ]
		[ "$(wc -l <"$MQ_DIR/topics/race$i/topic.conf")" -eq 11 ]
		[ "$(find "$MQ_DIR/topics/race$i" -mindepth 1 -type d | wc -l)" -eq "$want" ]
		mq-topic describe "race$i" >/dev/null
	done
	run find "$MQ_DIR/topics" -mindepth 1 -maxdepth 1 -name '.*'
	[ -z "$output" ]
	[ "$(mq-topic list | wc -l)" -eq 20 ]
}

# ---- dump -----------------------------------------------------------------

@test "dump lists the batches of a segment written by Kafka's encoder like kafka-dump-log" {
	mkdir "$BATS_TEST_TMPDIR/p"
	kafka_segment "$BATS_TEST_TMPDIR/p" --batches 3 --records 10
	f=$BATS_TEST_TMPDIR/p/00000000000000000000.log
	run --separate-stderr mq-topic dump "$f"
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${lines[0]}" = "Dumping $f" ]
	[ "${lines[1]}" = "Log starting offset: 0" ]
	[ "${#lines[@]}" -eq 5 ]
	for n in 1 2 3; do
		pos=$(batch_pos "$f" $n)
		size=$(($(be32 "$f" $((pos + 8))) + 12))
		crc=$(be32 "$f" $((pos + 17)))
		first=$(((n - 1) * 10)) last=$((n * 10 - 1))
		[ "${lines[n + 1]}" = "baseOffset: $first lastOffset: $last count: 10 baseSequence: -1 lastSequence: -1 producerId: -1 producerEpoch: -1 partitionLeaderEpoch: 0 isTransactional: false isControl: false position: $pos CreateTime: $((1763769600000 + last)) size: $size magic: 2 compresscodec: none crc: $crc isvalid: true" ]
	done
}

@test "dump --records prints each record with its key, header keys and payload" {
	mkdir "$BATS_TEST_TMPDIR/p"
	kafka_segment "$BATS_TEST_TMPDIR/p" --base-offset 100 --batches 2 --records 3 --keys --headers
	f=$BATS_TEST_TMPDIR/p/00000000000000000100.log
	run mq-topic dump --records "$f"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "Log starting offset: 100" ]
	[[ "${lines[2]}" == "baseOffset: 100 lastOffset: 102 count: 3 "* ]]
	[ "${lines[3]}" = "| offset: 100 CreateTime: 1763769600100 keySize: 7 valueSize: 9 sequence: -1 headerKeys: [h1,h2] key: key-100 headers: [h1=hv-100, h2=null] payload: value-100" ]
	[[ "${lines[5]}" == "| offset: 102 "*"key: key-102 "*"payload: value-102" ]]
	[[ "${lines[6]}" == "baseOffset: 103 lastOffset: 105 count: 3 "* ]]
	[[ "${lines[9]}" == "| offset: 105 "*"headerKeys: [h1,h2] key: key-105 "*"payload: value-105" ]]
	[ "${#lines[@]}" -eq 10 ]
}

@test "dump --records shows null keys as keySize -1 and no key" {
	mkdir "$BATS_TEST_TMPDIR/p"
	kafka_segment "$BATS_TEST_TMPDIR/p" --records 2 --value 'hello {offset}'
	run mq-topic dump --records "$BATS_TEST_TMPDIR/p/00000000000000000000.log"
	[ "$status" -eq 0 ]
	[ "${lines[3]}" = "| offset: 0 CreateTime: 1763769600000 keySize: -1 valueSize: 7 sequence: -1 headerKeys: [] payload: hello 0" ]
	[ "${lines[4]}" = "| offset: 1 CreateTime: 1763769600001 keySize: -1 valueSize: 7 sequence: -1 headerKeys: [] payload: hello 1" ]
}

# Writes a compressed segment with kafka-python and checks mq decodes it.
dump_codec() {
	mkdir "$BATS_TEST_TMPDIR/p"
	kafka_segment "$BATS_TEST_TMPDIR/p" --batches 2 --records 50 --codec "$1" --keys --headers \
		--value 'a fairly repetitive value, number {offset}'
	run --separate-stderr mq-topic dump --records "$BATS_TEST_TMPDIR/p/00000000000000000000.log"
	if [[ "$output$stderr" == *"not supported"* ]]; then
		skip "mq was built without $1: $(echo "$output$stderr" | grep 'not supported' | head -1)"
	fi
	[ "$status" -eq 0 ]
	[ "$(grep -c "^baseOffset: .* compresscodec: $1 crc: [0-9]* isvalid: true$" <<<"$output")" -eq 2 ]
	[ "$(grep -c '^| offset: ' <<<"$output")" -eq 100 ]
	[ "${lines[3]}" = "| offset: 0 CreateTime: 1763769600000 keySize: 5 valueSize: 35 sequence: -1 headerKeys: [h1,h2] key: key-0 headers: [h1=hv-0, h2=null] payload: a fairly repetitive value, number 0" ]
	[[ "${lines[-1]}" == "| offset: 99 "*" payload: a fairly repetitive value, number 99" ]]
}

@test "dump --records decodes gzip batches written by Kafka's encoder" {
	dump_codec gzip
}

@test "dump --records decodes lz4 batches written by Kafka's encoder" {
	dump_codec lz4
}

@test "dump --records decodes snappy (xerial) batches written by Kafka's encoder" {
	dump_codec snappy
}

@test "dump of Kafka's zero-padded .index prints its entries and stops at the padding" {
	mkdir "$BATS_TEST_TMPDIR/p"
	kafka_segment "$BATS_TEST_TMPDIR/p" --base-offset 50 --batches 5 --records 10 --index --index-interval 100
	f=$BATS_TEST_TMPDIR/p/00000000000000000050.log
	[ "$(file_size "${f%.log}.index")" -eq $((10 * 1024 * 1024)) ]
	run mq-topic dump "${f%.log}.index"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "Dumping ${f%.log}.index" ]
	[ "${lines[1]}" = "offset: 69 position: $(batch_pos "$f" 2)" ]
	[ "${lines[2]}" = "offset: 79 position: $(batch_pos "$f" 3)" ]
	[ "${lines[3]}" = "offset: 89 position: $(batch_pos "$f" 4)" ]
	[ "${lines[4]}" = "offset: 99 position: $(batch_pos "$f" 5)" ]
	[ "${#lines[@]}" -eq 5 ]
}

@test "dump of Kafka's zero-padded .timeindex prints its entries and stops at the padding" {
	mkdir "$BATS_TEST_TMPDIR/p"
	kafka_segment "$BATS_TEST_TMPDIR/p" --batches 3 --records 10 --timeindex --index-interval 100
	run mq-topic dump "$BATS_TEST_TMPDIR/p/00000000000000000000.timeindex"
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "timestamp: 1763769600019 offset: 19" ]
	[ "${lines[2]}" = "timestamp: 1763769600029 offset: 29" ]
	[ "${#lines[@]}" -eq 3 ]
}

@test "dump of a partition directory dumps each segment in offset order" {
	mq-topic create logs
	P=$(pdir logs)
	kafka_segment "$P" --base-offset 30 --batches 1 --records 5
	kafka_segment "$P" --base-offset 0 --batches 3 --records 10
	run mq-topic dump "$P"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "Dumping $P/00000000000000000000.log" ]
	[ "${lines[1]}" = "Log starting offset: 0" ]
	[[ "${lines[4]}" == "baseOffset: 20 lastOffset: 29 "* ]]
	[ "${lines[5]}" = "Dumping $P/00000000000000000030.log" ]
	[ "${lines[6]}" = "Log starting offset: 30" ]
	[[ "${lines[7]}" == "baseOffset: 30 lastOffset: 34 count: 5 "* ]]
	[ "${#lines[@]}" -eq 8 ]
}

@test "dump shows isvalid: false for a batch whose CRC does not match" {
	mkdir "$BATS_TEST_TMPDIR/p"
	kafka_segment "$BATS_TEST_TMPDIR/p" --batches 3 --records 10
	f=$BATS_TEST_TMPDIR/p/00000000000000000000.log
	flip_byte "$f" $(($(batch_pos "$f" 2) + 70))
	run mq-topic dump "$f"
	[ "$status" -eq 0 ]
	[[ "${lines[2]}" == *" isvalid: true" ]]
	[[ "${lines[3]}" == "baseOffset: 10 "*" isvalid: false" ]]
	[[ "${lines[4]}" == *" isvalid: true" ]]
}

@test "dump reports trailing bytes that are not a whole batch" {
	mkdir "$BATS_TEST_TMPDIR/p"
	kafka_segment "$BATS_TEST_TMPDIR/p" --batches 2 --records 10
	f=$BATS_TEST_TMPDIR/p/00000000000000000000.log
	size=$(file_size "$f")
	truncate -s -5 "$f"
	pos=$(batch_pos "$f" 2)
	run mq-topic dump "$f"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 4 ]
	[ "${lines[3]}" = "Found $((size - 5 - pos)) trailing bytes at position $pos that are not a whole batch" ]
}

@test "dump of a file that is not a segment exits 2" {
	echo hello >"$BATS_TEST_TMPDIR/notes.txt"
	run --separate-stderr mq-topic dump "$BATS_TEST_TMPDIR/notes.txt"
	[ "$status" -eq 2 ]
	[ "$stderr" = "mq-topic: cannot dump '$BATS_TEST_TMPDIR/notes.txt': not a .log, .index or .timeindex file" ]
}

@test "dump of a missing file exits 3 naming it" {
	run --separate-stderr mq-topic dump "$BATS_TEST_TMPDIR/00000000000000000000.log"
	[ "$status" -eq 3 ]
	[[ "$stderr" == *"'$BATS_TEST_TMPDIR/00000000000000000000.log': No such file or directory" ]]
}

@test "dump needs a file" {
	run --separate-stderr mq-topic dump
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"dump needs a FILE or DIR"* ]]
}

# ---- a partition holding Kafka's files ------------------------------------------

@test "a partition holding only a Kafka .log verifies ok and describes its offsets" {
	mq-topic create logs
	kafka_segment "$(pdir logs)" --batches 4 --records 25 --keys
	size=$(file_size "$(segment logs 0)")
	run mq-topic verify logs
	[ "$status" -eq 0 ]
	[ "$output" = "logs/0: 4 batches, 100 records, $size bytes: ok" ]
	[ "$(start_end logs)" = "0 100" ]
	run mq-topic describe logs
	[[ "${lines[3]}" =~ ^0\ +0\ +100\ +100\ +1\ +$size\ +2025-11-22T00:00:00.000Z\ +2025-11-22T00:00:00.099Z\ *$ ]]
}

@test "a Kafka partition with several segments and padded indexes verifies ok" {
	mq-topic create logs
	P=$(pdir logs)
	kafka_segment "$P" --base-offset 0 --batches 20 --records 10 --index --timeindex --index-interval 1000
	kafka_segment "$P" --base-offset 200 --batches 20 --records 10 --index --timeindex --index-interval 1000
	run mq-topic verify logs
	[ "$status" -eq 0 ]
	[[ "$output" =~ ^logs/0:\ 40\ batches,\ 400\ records,\ [0-9]+\ bytes:\ ok$ ]]
	[ "$(start_end logs)" = "0 400" ]
}

@test "verify accepts the all-zero .index Kafka preallocates before its first entry" {
	mq-topic create logs
	# 2 batches, well under index.interval.bytes: Kafka has written no
	# index entry yet, and the preallocated file is 10 MiB of zeros
	kafka_segment "$(pdir logs)" --batches 2 --records 10 --index --timeindex
	[ "$(tr -d '\0' <"$(segment logs 0 index)" | wc -c)" -eq 0 ]
	run mq-topic verify logs
	[ "$status" -eq 0 ]
	[[ "$output" == "logs/0: 2 batches, 20 records, "*" bytes: ok" ]]
}

@test "verify of a fresh topic says ok for each partition" {
	mq-topic create logs -p 2
	run mq-topic verify logs
	[ "$status" -eq 0 ]
	[ "$output" = $'logs/0: 0 batches, 0 records, 0 bytes: ok\nlogs/1: 0 batches, 0 records, 0 bytes: ok' ]
}

@test "verify with no topic checks every topic" {
	mq-topic create a
	mq-topic create b
	run mq-topic verify
	[ "$status" -eq 0 ]
	[ "$output" = $'a/0: 0 batches, 0 records, 0 bytes: ok\nb/0: 0 batches, 0 records, 0 bytes: ok' ]
}

@test "verify of a missing topic exits 3 with 'not found'" {
	run --separate-stderr mq-topic verify nope
	[ "$status" -eq 3 ]
	[ "$stderr" = "mq-topic: topic 'nope' not found" ]
}

# ---- verify and repair of corrupt data --------------------------------------------

@test "verify finds a flipped byte: exit 4 naming the .log file and the batch's byte" {
	mq-topic create logs
	kafka_segment "$(pdir logs)" --batches 5 --records 10
	f=$(segment logs 0)
	pos=$(batch_pos "$f" 3)
	flip_byte "$f" $((pos + 80))
	run mq-topic verify logs
	[ "$status" -eq 4 ]
	[[ "${lines[0]}" == "$f: byte $pos: CRC mismatch"* ]]
	[ "${lines[1]}" = "logs/0: 2 batches, 20 records, $pos bytes: 1 problem" ]
}

@test "verify --repair truncates at the corrupt batch, says what it removed, then verify is clean" {
	mq-topic create logs
	kafka_segment "$(pdir logs)" --batches 5 --records 10
	f=$(segment logs 0)
	size=$(file_size "$f")
	pos=$(batch_pos "$f" 3)
	flip_byte "$f" $((pos + 80))
	run mq-topic verify --repair logs
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "$f: byte $pos: CRC mismatch"* ]]
	[ "${lines[1]}" = "logs/0: 2 batches, 20 records, $pos bytes: 1 problem, repaired ($((size - pos)) bytes removed)" ]
	[ "$(file_size "$f")" -eq "$pos" ]
	run mq-topic verify logs
	[ "$status" -eq 0 ]
	[ "$output" = "logs/0: 2 batches, 20 records, $pos bytes: ok" ]
	[ "$(start_end logs)" = "0 20" ]
}

@test "verify --repair of a corrupt batch removes the later segments too" {
	mq-topic create logs
	P=$(pdir logs)
	kafka_segment "$P" --base-offset 0 --batches 3 --records 10
	kafka_segment "$P" --base-offset 30 --batches 3 --records 10
	f=$(segment logs 0)
	pos=$(batch_pos "$f" 2)
	flip_byte "$f" $((pos + 70))
	run mq-topic verify --repair logs
	[ "$status" -eq 0 ]
	[[ "$output" == *"repaired"* ]]
	[ ! -e "$(segment logs 30)" ]
	run mq-topic verify logs
	[ "$status" -eq 0 ]
	[ "$(start_end logs)" = "0 10" ]
}

@test "verify reports a torn tail (exit 4) and --repair cuts it off" {
	mq-topic create logs
	kafka_segment "$(pdir logs)" --batches 4 --records 10
	f=$(segment logs 0)
	truncate -s -5 "$f"
	pos=$(batch_pos "$f" 4)
	run mq-topic verify logs
	[ "$status" -eq 4 ]
	[ "${lines[0]}" = "$f: byte $pos: torn batch: $(($(file_size "$f") - pos)) bytes at the end are not a whole batch" ]
	[[ "${lines[1]}" == "logs/0: 3 batches, 30 records, $pos bytes: 1 problem" ]]
	run mq-topic verify --repair logs
	[ "$status" -eq 0 ]
	[[ "${lines[1]}" == *"repaired ("*" bytes removed)" ]]
	[ "$(file_size "$f")" -eq "$pos" ]
	run mq-topic verify logs
	[ "$status" -eq 0 ]
	[ "$output" = "logs/0: 3 batches, 30 records, $pos bytes: ok" ]
}

@test "verify reports a garbage .index and --repair rebuilds it" {
	mq-topic create logs
	kafka_segment "$(pdir logs)" --batches 30 --records 10 --index --no-pad
	f=$(segment logs 0)
	cp "$(segment logs 0 index)" "$BATS_TEST_TMPDIR/good.index"
	[ -s "$BATS_TEST_TMPDIR/good.index" ]
	head -c 64 /dev/urandom >"$(segment logs 0 index)"
	run mq-topic verify logs
	[ "$status" -eq 4 ]
	[[ "${lines[0]}" == "$(segment logs 0 index): byte "* ]]
	[[ "${lines[-1]}" == "logs/0: 30 batches, 300 records, "*" problem"* ]]
	run mq-topic verify --repair logs
	[ "$status" -eq 0 ]
	[[ "${lines[-1]}" == *"repaired (0 bytes removed)" ]]
	[ "$(file_size "$f")" -gt 0 ]
	run mq-topic verify logs
	[ "$status" -eq 0 ]
	[[ "$output" == "logs/0: 30 batches, 300 records, "*" bytes: ok" ]]
	# rebuilt as Kafka would have written it
	cmp "$(segment logs 0 index)" "$BATS_TEST_TMPDIR/good.index"
	[ "$(start_end logs)" = "0 300" ]
}

# ---- gc ---------------------------------------------------------------------------

@test "gc deletes the oldest segments past retention.bytes and moves the log start" {
	mq-topic create logs -c segment.bytes=1024 -c retention.bytes=2048
	P=$(pdir logs)
	ts=$(now_ms)
	# six closed segments of about 1100 bytes each, offsets 0..359
	for i in 0 1 2 3 4 5; do
		kafka_segment "$P" --base-offset $((i * 60)) --batches 3 --records 20 --timestamp "$ts"
	done
	[ "$(start_end logs)" = "0 360" ]
	run mq-topic gc logs
	[ "$status" -eq 0 ]
	# the newest two hold 2048 bytes or more; one segment alone would not
	[ "$output" = "logs/0: removed 4 segments" ]
	for b in 0 60 120 180; do [ ! -e "$(segment logs $b)" ]; done
	[ -f "$(segment logs 240)" ] && [ -f "$(segment logs 300)" ]
	[ "$(cat "$P/log-start-offset.checkpoint")" = 240 ]
	[ "$(start_end logs)" = "240 360" ]
	run mq-topic verify logs
	[ "$status" -eq 0 ]
	# a second gc finds nothing more to do
	run mq-topic gc logs
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "gc deletes segments older than retention.ms but never the active one" {
	mq-topic create logs -c retention.ms=1h
	P=$(pdir logs)
	old=$(($(now_ms) - 2 * 3600 * 1000))
	for i in 0 1 2; do
		kafka_segment "$P" --base-offset $((i * 10)) --records 10 --timestamp "$old"
	done
	run mq-topic gc
	[ "$status" -eq 0 ]
	[ "$output" = "logs/0: removed 2 segments" ]
	[ ! -e "$(segment logs 0)" ] && [ ! -e "$(segment logs 10)" ]
	[ -f "$(segment logs 20)" ]
	[ "$(cat "$P/log-start-offset.checkpoint")" = 20 ]
	[ "$(start_end logs)" = "20 30" ]
}

@test "gc keeps segments within retention and prints nothing" {
	mq-topic create logs -c segment.bytes=1024
	P=$(pdir logs)
	ts=$(now_ms)
	for i in 0 1 2; do
		kafka_segment "$P" --base-offset $((i * 10)) --records 10 --timestamp "$ts"
	done
	run mq-topic gc logs
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -f "$(segment logs 0)" ]
	[ ! -e "$P/log-start-offset.checkpoint" ]
	[ "$(start_end logs)" = "0 30" ]
}

@test "gc of a missing topic exits 3 with 'not found'" {
	run --separate-stderr mq-topic gc nope
	[ "$status" -eq 3 ]
	[ "$stderr" = "mq-topic: topic 'nope' not found" ]
}
