#!/usr/bin/env bats
# mq-consume(1): read, tail and group-consume topics.

load helper
load consume_helper

# The timestamp kafka_segment.py gives offset 0 unless told otherwise:
# 2025-11-22T00:00:00.000Z.
KTS=1763769600000

# END of partition P (default 0) of TOPIC, as mq-topic describe shows it.
log_end() {
	mq-topic describe "$1" | awk -v p="${2:-0}" 'f && $1 == p { print $3 } /^PARTITION/ { f = 1 }'
}

log_start() {
	mq-topic describe "$1" | awk -v p="${2:-0}" 'f && $1 == p { print $2 } /^PARTITION/ { f = 1 }'
}

# The log end of partition 0 of TOPIC is above N.
log_end_above() {
	[ "$(log_end "$1")" -gt "$2" ]
}

# G's committed offset for partition P of T is N.
committed_is() {
	[ "$(committed "$1" "$2" "$3")" = "$4" ]
}

# $stderr names where a corrupt batch is: the segment FILE and the byte
# POS, or through mq-serve, whose files are not the program's to name,
# partition P of TOPIC at its address and the batch's OFFSET.
corrupt_named() {
	if [ "$MQ_TEST_TRANSPORT" = local ]; then
		[[ "$stderr" == "mq-consume: "*"'$1'"*"byte $2"* ]]
	else
		[[ "$stderr" == "mq-consume: "*"'$MQ_TEST_ADDR/$3/$4' at offset $5"* ]]
	fi
}

# No live member in group G (mq-lag's MEMBERS).
no_members() {
	mq-lag -J "$1" | grep -q '"members":0,'
}

# At least N lines in FILE.
has_lines() {
	[ "$(lines_in "$1")" -ge "$2" ]
}

# What a kafka_segment.py segment of N records written with --keys
# --headers --value 'value-{offset}PAD' shows through
# -f '%o %T %k %s %h\n' (offsets from BASE, timestamps from TS).
kafka_expected() {
	local n=$1 pad=$2 base=${3:-0} ts=${4:-$KTS} o
	for ((o = base; o < base + n; o++)); do
		echo "$o $((ts + o)) key-$o value-$o$pad h1=hv-$o,h2"
	done
}

# Writes a 3-batch, 12-record Kafka segment compressed with CODEC into
# topic k and checks every field mq-consume shows.
check_kafka_codec() {
	local pad='-padding-padding-padding-padding-padding'
	mq-topic create k
	kafka_segment "$(pdir k)" --codec "$1" --batches 3 --records 4 --keys --headers \
		--value "value-{offset}$pad"
	run --separate-stderr mq-consume -e -f '%o %T %k %s %h\n' k
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "$output" = "$(kafka_expected 12 "$pad")" ]
}

# ---- round trips with mq-produce ------------------------------------------

@test "by default -e prints each value and a newline, in order, and exits 0" {
	mq-topic create t
	printf 'one\ntwo\nthree\n' | mq-produce t
	run --separate-stderr mq-consume -e t
	[ "$status" -eq 0 ]
	[ "$output" = $'one\ntwo\nthree' ]
	[ -z "$stderr" ]
}

@test "--exit is the long form of -e, and an empty topic prints nothing" {
	mq-topic create t
	run --separate-stderr timeout 10 mq-consume --exit t
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -z "$stderr" ]
}

@test "keys written with mq-produce -K come back through %k and %K" {
	mq-topic create t
	printf 'k1:v1\nk2:v:2\nnokey\n:v4\n' | mq-produce -K : t
	run mq-consume -e -f '[%k][%K][%s]\n' t
	[ "$status" -eq 0 ]
	[ "$output" = $'[k1][2][v1]\n[k2][2][v:2]\n[][-1][nokey]\n[][0][v4]' ]
}

@test "headers written with mq-produce -H come back through %h" {
	mq-topic create t
	printf 'a\nb\n' | mq-produce -H host=web1 -H 'trace=x y=z' t
	run mq-consume -e -f '%h|%s\n' t
	[ "$status" -eq 0 ]
	[ "$output" = $'host=web1,trace=x y=z|a\nhost=web1,trace=x y=z|b' ]
}

@test "gzip and lz4 batches written with mq-produce -z read back the same records" {
	for codec in gzip lz4; do
		mq-topic create "$codec"
		seq -f "line %g of a compressible text, compressible text" 300 >"$BATS_TEST_TMPDIR/in"
		mq-produce -z "$codec" "$codec" <"$BATS_TEST_TMPDIR/in"
		# the segment really is compressed: attributes (byte 21-22) name the codec
		attr=$(od -An -tu1 -j 22 -N1 "$(segment "$codec" 0)" | tr -d ' ')
		[ $((attr & 7)) -eq "$([ "$codec" = gzip ] && echo 1 || echo 3)" ]
		[ "$(file_size "$(segment "$codec" 0)")" -lt "$(file_size "$BATS_TEST_TMPDIR/in")" ]
		run --separate-stderr mq-consume -e "$codec"
		[ "$status" -eq 0 ]
		[ -z "$stderr" ]
		[ "$output" = "$(cat "$BATS_TEST_TMPDIR/in")" ]
	done
}

@test "binary values with NUL bytes, newlines and high bytes round-trip through -0 and -f '%s\\0'" {
	mq-topic create t
	printf 'a\nb\0\377\376x\0\001\002\0last\0' >"$BATS_TEST_TMPDIR/in"
	mq-produce -0 t <"$BATS_TEST_TMPDIR/in"
	mq-consume -e -f '%s\0' t >"$BATS_TEST_TMPDIR/out"
	cmp "$BATS_TEST_TMPDIR/in" "$BATS_TEST_TMPDIR/out"
	run mq-consume -e -f '%S\n' t
	[ "$output" = $'3\n3\n2\n4' ]
}

@test "-J prints one JSON object per record with topic, partition, offset, timestamp, key, value and headers" {
	mq-topic create t -p 1
	before=$(date +%s%3N)
	printf 'k1:v1\n' | mq-produce -K : -H h=1 -H g=two t
	printf 'say "hi"\tthere\\\n' | mq-produce t
	after=$(date +%s%3N)
	run --separate-stderr mq-consume -e -J t
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 2 ]
	run "$PYTHON" -c '
import json, sys
before, after = int(sys.argv[1]), int(sys.argv[2])
recs = [json.loads(l) for l in sys.stdin]
assert len(recs) == 2, recs
for i, r in enumerate(recs):
    assert sorted(r) == ["headers", "key", "offset", "partition", "timestamp", "topic", "value"], r
    assert r["topic"] == "t" and r["partition"] == 0 and r["offset"] == i, r
    assert isinstance(r["timestamp"], int) and before <= r["timestamp"] <= after, r
assert recs[0]["key"] == "k1" and recs[0]["value"] == "v1", recs[0]
assert recs[0]["headers"] == {"h": "1", "g": "two"}, recs[0]
assert recs[1]["key"] is None and recs[1]["headers"] == {}, recs[1]
assert recs[1]["value"] == "say \"hi\"\tthere\\", recs[1]
print("ok")' "$before" "$after" <<<"$output"
	[ "$status" -eq 0 ]
	[ "$output" = ok ]
}

@test "--json writes non-UTF-8 data as {\"base64\": ...} and mq-produce --json reads it back byte for byte" {
	mq-topic create t
	printf 'plain\0\377\376bin\0caf\303\251\0\355\240\200surrogate\0' | mq-produce -0 t
	printf '\377k:\300v\0' | mq-produce -0 -K : -H "h=$(printf 'x\377')" t
	run --separate-stderr mq-consume -e --json t
	[ "$status" -eq 0 ]
	run "$PYTHON" -c '
import base64, json, sys
recs = [json.loads(l) for l in sys.stdin]
b64 = lambda b: {"base64": base64.b64encode(b).decode()}
assert recs[0]["value"] == "plain", recs[0]
assert recs[1]["value"] == b64(b"\xff\xfebin"), recs[1]
assert recs[2]["value"] == "caf\u00e9", recs[2]
assert recs[3]["value"] == b64(b"\xed\xa0\x80surrogate"), recs[3]
assert recs[4]["key"] == b64(b"\xffk"), recs[4]
assert recs[4]["value"] == b64(b"\xc0v"), recs[4]
assert recs[4]["headers"] == {"h": b64(b"x\xff")}, recs[4]
print("ok")' <<<"$output"
	[ "$output" = ok ]
	mq-topic create copy
	mq-consume -e -J t | mq-produce --json copy
	mq-consume -e -f '%K %k|%S %s|%h\0' t >"$BATS_TEST_TMPDIR/a"
	mq-consume -e -f '%K %k|%S %s|%h\0' copy >"$BATS_TEST_TMPDIR/b"
	cmp "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/b"
	# timestamps are kept too
	[ "$(mq-consume -e -f '%T\n' t)" = "$(mq-consume -e -f '%T\n' copy)" ]
}

@test "--raw batches piped into mq-produce --raw give the same records" {
	mq-topic create t
	printf 'k1:v1\nk2:v2\n' | mq-produce -K : -H a=b t
	printf 'x\n' | mq-produce -z gzip t
	mq-topic create copy
	mq-consume -e --raw t | mq-produce --raw copy
	[ "$(mq-consume -e -f '%o %T %k %s %h\n' copy)" = "$(mq-consume -e -f '%o %T %k %s %h\n' t)" ]
}

@test "several topics are read in one run, each record with its own topic" {
	mq-topic create a
	mq-topic create b
	printf 'a1\na2\n' | mq-produce a
	printf 'b1\n' | mq-produce b
	run mq-consume -e -f '%t %s\n' a b
	[ "$status" -eq 0 ]
	[ "$(sort <<<"$output")" = $'a a1\na a2\nb b1' ]
}

# ---- segments written by another Kafka encoder ------------------------------

@test "reads an uncompressed segment written by kafka-python, every field" {
	check_kafka_codec none
}

@test "reads a gzip segment written by kafka-python, every field" {
	check_kafka_codec gzip
}

@test "reads an lz4 segment written by kafka-python, every field" {
	check_kafka_codec lz4
}

@test "reads a snappy segment written by kafka-python, every field" {
	check_kafka_codec snappy
}

@test "-J of a kafka-python segment shows a null header value as null" {
	mq-topic create k
	kafka_segment "$(pdir k)" --records 2 --keys --headers
	run mq-consume -e -J k
	[ "$status" -eq 0 ]
	[ "${lines[1]}" = "{\"topic\":\"k\",\"partition\":0,\"offset\":1,\"timestamp\":$((KTS + 1)),\"key\":\"key-1\",\"value\":\"value-1\",\"headers\":{\"h1\":\"hv-1\",\"h2\":null}}" ]
}

@test "a Kafka segment at a non-zero base offset with padded indexes is read and sought into" {
	mq-topic create k
	kafka_segment "$(pdir k)" --base-offset 1000 --batches 40 --records 5 --keys --headers \
		--index --timeindex --index-interval 256
	[ "$(file_size "$(segment k 1000 index)")" -eq 10485760 ]
	run mq-consume -e -f '%o %T %k %s %h\n' k
	[ "$status" -eq 0 ]
	[ "$output" = "$(kafka_expected 200 '' 1000)" ]
	run mq-consume -e -o 1137 -c 3 -f '%o %s\n' k
	[ "$status" -eq 0 ]
	[ "$output" = $'1137 value-1137\n1138 value-1138\n1139 value-1139' ]
	run mq-consume -e -o "@$((KTS + 1150))" -c 1 -f '%o %T\n' k
	[ "$status" -eq 0 ]
	[ "$output" = "1150 $((KTS + 1150))" ]
}

@test "control batches are never shown as records, and offsets go on past them" {
	mq-topic create k
	kafka_segment "$(pdir k)" --batches 3 --records 2
	# turn batch 2 into a transactional control batch (attributes bits 4
	# and 5) with a valid CRC-32C, as a Kafka transaction marker would be
	"$PYTHON" - "$(segment k 0)" <<-'EOF'
		import struct, sys
		from kafka.record.util import calc_crc32c
		path = sys.argv[1]
		data = bytearray(open(path, "rb").read())
		pos = 0
		for _ in range(1):
		    pos += 12 + struct.unpack_from(">i", data, pos + 8)[0]
		end = pos + 12 + struct.unpack_from(">i", data, pos + 8)[0]
		attrs = struct.unpack_from(">h", data, pos + 21)[0] | 0x30
		struct.pack_into(">h", data, pos + 21, attrs)
		struct.pack_into(">I", data, pos + 17, calc_crc32c(bytes(data[pos + 21:end])))
		open(path, "wb").write(data)
	EOF
	run --separate-stderr mq-consume -e -f '%o %s\n' k
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "$output" = $'0 value-0\n1 value-1\n4 value-4\n5 value-5' ]
	run mq-consume -e -J k
	[ "${#lines[@]}" -eq 4 ]
	mq-consume -g G -e k >/dev/null
	[ "$(committed G k 0)" = 6 ]
}

@test "a batch still being written is not there yet, then shows once complete" {
	mq-topic create t
	for b in 1 2 3; do
		printf 'b%s-1\nb%s-2\n' "$b" "$b" | mq-produce t
	done
	f=$(segment t 0)
	cp "$f" "$BATS_TEST_TMPDIR/whole"
	truncate -s $(($(file_size "$f") - 5)) "$f"
	run --separate-stderr timeout 10 mq-consume -e t
	[ "$status" -eq 0 ]
	[ "$output" = $'b1-1\nb1-2\nb2-1\nb2-2' ]
	[ -z "$stderr" ]
	start c mq-consume t
	wait_until 2 has_lines "$BATS_TEST_TMPDIR/c.out" 4
	tail -c 5 "$BATS_TEST_TMPDIR/whole" >>"$f"
	wait_until 2 has_lines "$BATS_TEST_TMPDIR/c.out" 6
	[ "$(cat "$BATS_TEST_TMPDIR/c.out")" = $'b1-1\nb1-2\nb2-1\nb2-2\nb3-1\nb3-2' ]
	[ ! -s "$BATS_TEST_TMPDIR/c.err" ]
}

@test "null values show as nothing with %S -1, as null in -J, and round-trip through --json" {
	mq-topic create t
	printf '{"key":"k","value":null}\n{"key":"k2","value":""}\n' | mq-produce --json t
	run mq-consume -e -f '[%s][%S]\n' t
	[ "$output" = $'[][-1]\n[][0]' ]
	run mq-consume -e -J t
	[[ "${lines[0]}" == *'"key":"k","value":null,'* ]]
	[[ "${lines[1]}" == *'"key":"k2","value":"",'* ]]
	mq-topic create copy
	mq-consume -e -J t | mq-produce --json copy
	[ "$(mq-consume -e -f '%k[%s][%S]\n' copy)" = $'k[][-1]\nk2[][0]' ]
}

# ---- where to start, where to stop ------------------------------------------

@test "-o beginning is the default without a group" {
	mq-topic create t
	printf 'a\nb\n' | mq-produce t
	run mq-consume -e -o beginning t
	[ "$status" -eq 0 ]
	[ "$output" = $'a\nb' ]
	[ "$output" = "$(mq-consume -e t)" ]
}

@test "-o end with -e prints nothing and exits 0" {
	mq-topic create t
	printf 'a\nb\n' | mq-produce t
	run --separate-stderr timeout 10 mq-consume -e -o end t
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -z "$stderr" ]
}

@test "-o end without -e shows only what is produced afterwards" {
	mq-topic create t
	printf 'old\n' | mq-produce t
	start c mq-consume -o end t
	sleep 0.5
	printf 'new\n' | mq-produce t
	wait_until 2 grep -qx new "$BATS_TEST_TMPDIR/c.out"
	[ "$(cat "$BATS_TEST_TMPDIR/c.out")" = new ]
}

@test "-o N starts at offset N; --offset is the long form" {
	mq-topic create t
	seq 0 9 | mq-produce t
	run mq-consume -e -o 7 -f '%o %s\n' t
	[ "$status" -eq 0 ]
	[ "$output" = $'7 7\n8 8\n9 9' ]
	run mq-consume -e --offset 9 t
	[ "$output" = 9 ]
	run mq-consume -e -o 10 t
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "-o N past the end of the log exits 3 and says out of range" {
	mq-topic create t
	seq 0 4 | mq-produce t
	run --separate-stderr mq-consume -e -o 6 t
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	[[ "$stderr" == "mq-consume: "*"out of range"* ]]
}

@test "-o -N prints the last N records of every partition" {
	mq-topic create t -p 3
	for p in 0 1 2; do
		seq -f "p$p-%g" 5 | mq-produce -p "$p" t
	done
	seq -f "p2-more-%g" 2 | mq-produce -p 2 t
	run mq-consume -e -o -2 -f '%p %o %s\n' t
	[ "$status" -eq 0 ]
	[ "$(sort <<<"$output")" = $'0 3 p0-4\n0 4 p0-5\n1 3 p1-4\n1 4 p1-5\n2 5 p2-more-1\n2 6 p2-more-2' ]
	# more than a partition holds: all of it
	run mq-consume -e -o -100 -p 0 t
	[ "$output" = "$(seq -f 'p0-%g' 5)" ]
}

@test "-o @TIME starts at the first record at or after TIME, in epoch ms or ISO 8601" {
	mq-topic create k
	kafka_segment "$(pdir k)" --timestamp 1700000000000 --batches 10 --records 4 --timeindex --index
	run mq-consume -e -o @1700000000013 -f '%o %T\n' -c 2 k
	[ "$status" -eq 0 ]
	[ "$output" = $'13 1700000000013\n14 1700000000014' ]
	run mq-consume -e -o @2023-11-14T22:13:20.021Z -f '%o %D\n' -c 1 k
	[ "$status" -eq 0 ]
	[ "$output" = '21 2023-11-14T22:13:20.021Z' ]
	# before everything: from the start; after everything: nothing
	run mq-consume -e -o @1600000000000 -f '%o\n' -c 1 k
	[ "$output" = 0 ]
	run mq-consume -e -o @1800000000000 k
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "-o @TIME finds records by their timestamps across batches written by mq-produce" {
	mq-topic create t
	for ts in 1700000000000 1700000060000 1700000120000; do
		printf '{"value":"at-%s","timestamp":%s}\n' "$ts" "$ts" | mq-produce --json t
	done
	run mq-consume -e -o @1700000030000 t
	[ "$status" -eq 0 ]
	[ "$output" = $'at-1700000060000\nat-1700000120000' ]
	run mq-consume -e -o @1700000060000 -c 1 t
	[ "$output" = at-1700000060000 ]
}

@test "-o @TIME between two records produced at different times starts at the later one" {
	mq-topic create t
	printf 'early\n' | mq-produce t
	sleep 0.2
	mark=$(date +%s%3N)
	sleep 0.2
	printf 'late\n' | mq-produce t
	run mq-consume -e -o "@$mark" t
	[ "$status" -eq 0 ]
	[ "$output" = late ]
}

@test "-o stored without a group exits 2 and says it needs one" {
	mq-topic create t
	printf 'a\n' | mq-produce t
	run --separate-stderr mq-consume -e -o stored t
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[[ "$stderr" == *"stored"*"group"* ]]
}

@test "-o stored with a group starts at the committed offset" {
	mq-topic create t
	seq 1 5 | mq-produce t
	mq-consume -g G -e -c 2 t >/dev/null
	run mq-consume -g G -e -o stored t
	[ "$status" -eq 0 ]
	[ "$output" = $'3\n4\n5' ]
}

@test "-p N reads only partition N; a partition the topic lacks exits 3" {
	mq-topic create t -p 3
	for p in 0 1 2; do
		printf 'in-%s\n' "$p" | mq-produce -p "$p" t
	done
	run mq-consume -e -p 1 -f '%p %s\n' t
	[ "$status" -eq 0 ]
	[ "$output" = '1 in-1' ]
	run mq-consume -e --partition 2 t
	[ "$output" = in-2 ]
	run --separate-stderr mq-consume -e -p 3 t
	[ "$status" -eq 3 ]
	[[ "$stderr" == "mq-consume: "*"partition 3"* ]]
}

@test "-c N stops after N records and exits 0, even without -e" {
	mq-topic create t
	seq 1 10 | mq-produce t
	run --separate-stderr timeout 10 mq-consume -c 3 t
	[ "$status" -eq 0 ]
	[ "$output" = $'1\n2\n3' ]
	[ -z "$stderr" ]
	run timeout 10 mq-consume --count 0 t
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "--until TIME stops before the first record at or after TIME" {
	mq-topic create t
	for ts in 1700000000000 1700000060000 1700000120000; do
		printf '{"value":"at-%s","timestamp":%s}\n' "$ts" "$ts" | mq-produce --json t
	done
	run --separate-stderr timeout 10 mq-consume -e --until 1700000060000 t
	[ "$status" -eq 0 ]
	[ "$output" = at-1700000000000 ]
	[ -z "$stderr" ]
	run timeout 10 mq-consume -e --until 2023-11-14T22:15:00Z t
	[ "$output" = $'at-1700000000000\nat-1700000060000' ]
}

@test "--until TIME ends a following consumer once every partition passed TIME" {
	mq-topic create t
	for ts in 1700000000000 1700000060000; do
		printf '{"value":"at-%s","timestamp":%s}\n' "$ts" "$ts" | mq-produce --json t
	done
	run --separate-stderr timeout 5 mq-consume --until 1700000030000 t
	echo "exit status $status (124: timeout killed it, still following after 5 s)"
	[ "$status" -eq 0 ]
	[ "$output" = at-1700000000000 ]
}

@test "-e stops at the end the log had at start while another producer keeps writing" {
	mq-topic create t
	# 300 records of 1 KiB: more than a pipe holds, so the consumer blocks
	# on its output while the writer goes on
	pad=$(printf '%01000d' 0)
	seq -f "old-%g-$pad" 300 | mq-produce t
	# a writer as quick locally as remotely: it is not what is tested
	start writer bash -c 'i=0; while :; do i=$((i + 1)); echo "new-$i" | "$MQ_TEST_BIN/mq-produce" t || exit; sleep 0.005; done'
	wait_until 5 log_end_above t 300
	n0=$(log_end t)
	timeout 20 mq-consume -e t | { sleep 1.5; cat; } >"$BATS_TEST_TMPDIR/out"
	n1=$(log_end t)
	kill "$writer_pid"
	shown=$(lines_in "$BATS_TEST_TMPDIR/out")
	[ $((n1 - n0)) -gt 20 ]                 # the writer did write meanwhile
	[ "$shown" -ge "$n0" ]
	[ "$shown" -le $((n0 + (n1 - n0) / 2)) ]   # it did not chase the writer
	# what it showed is the log's prefix, in order
	[ "$(cut -c1-10 "$BATS_TEST_TMPDIR/out")" = "$(mq-consume -e -c "$shown" t | cut -c1-10)" ]
}

# ---- output formats ---------------------------------------------------------

@test "-f expands %t %p %o %k %s %S %K %T %D %h" {
	mq-topic create k
	kafka_segment "$(pdir k)" --records 2 --keys --headers
	run mq-consume -e -f '%t|%p|%o|%k|%s|%S|%K|%T|%D|%h\n' k
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "k|0|0|key-0|value-0|7|5|$KTS|2025-11-22T00:00:00.000Z|h1=hv-0,h2" ]
	[ "${lines[1]}" = "k|0|1|key-1|value-1|7|5|$((KTS + 1))|2025-11-22T00:00:00.001Z|h1=hv-1,h2" ]
}

@test "-f shows a null key as nothing with size -1, and no headers as nothing" {
	mq-topic create t
	printf 'v\n' | mq-produce t
	run mq-consume -e -f '[%k][%K][%h][%S]\n' t
	[ "$output" = '[][-1][][1]' ]
}

@test "--format escapes \\t \\n \\x41 \\\\ and %% are expanded" {
	mq-topic create t
	printf 'v1\nv2\n' | mq-produce t
	run mq-consume -e --format '%o\t%s\x41\\%%\n' t
	[ "$status" -eq 0 ]
	[ "$output" = $'0\tv1A\\%\n1\tv2A\\%' ]
}

@test "-f with an unknown token or a bad escape exits 2 naming it, and reads nothing" {
	mq-topic create t
	printf 'v\n' | mq-produce t
	run --separate-stderr mq-consume -e -f '%q' t
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[ "${stderr_lines[0]}" = "mq-consume: unknown format token '%q'" ]
	[ "${stderr_lines[1]}" = "Try 'mq-consume --help' for more information." ]
	run --separate-stderr mq-consume -e -f '%s\q' t
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"escape"* ]]
	run --separate-stderr mq-consume -e -f '%s%' t
	[ "$status" -eq 2 ]
}

# ---- filtering ----------------------------------------------------------------

@test "--key KEY shows only records with exactly that key" {
	mq-topic create t
	printf 'a:1\nb:2\na:3\nab:4\nnokey\n' | mq-produce -K : t
	run mq-consume -e --key a -f '%k=%s\n' t
	[ "$status" -eq 0 ]
	[ "$output" = $'a=1\na=3' ]
}

@test "--grep REGEX shows only values matching the extended regular expression" {
	mq-topic create t
	printf 'GET / status=200\nGET /x status=404\nPOST / status=500\nGET /y status=4040\nstatus=301\n' | mq-produce t
	run mq-consume -e --grep 'status=(404|500)$' t
	[ "$status" -eq 0 ]
	[ "$output" = $'GET /x status=404\nPOST / status=500' ]
	run mq-consume -e --grep 'status=(404|500)' -f '%o\n' t
	[ "$output" = $'1\n2\n3' ]
	run --separate-stderr mq-consume -e --grep '(' t
	[ "$status" -eq 2 ]
}

@test "--key and --grep together must both match" {
	mq-topic create t
	printf 'a:x1\nb:x2\na:y3\n' | mq-produce -K : t
	run mq-consume -e --key a --grep '^x' t
	[ "$output" = x1 ]
}

# ---- follow mode ----------------------------------------------------------------

@test "without -e it follows: a record produced by another process shows up" {
	mq-topic create t
	start c mq-consume t
	sleep 0.5
	[ ! -s "$BATS_TEST_TMPDIR/c.out" ]
	printf 'hello\n' | mq-produce t
	wait_until 2 grep -qx hello "$BATS_TEST_TMPDIR/c.out"
	printf 'again\n' | mq-produce t
	wait_until 2 grep -qx again "$BATS_TEST_TMPDIR/c.out"
	kill -0 "$c_pid"                 # still following
	[ "$(cat "$BATS_TEST_TMPDIR/c.out")" = $'hello\nagain' ]
	[ ! -s "$BATS_TEST_TMPDIR/c.err" ]
}

@test "following goes on into new segments after the log rolls" {
	mq-topic create t -c segment.bytes=300
	start c mq-consume t
	for i in 1 2 3 4 5 6 7 8; do
		printf 'record-%s-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n' "$i" | mq-produce t
	done
	[ "$(find "$(pdir t)" -name '*.log' | wc -l)" -ge 3 ]
	wait_until 3 has_lines "$BATS_TEST_TMPDIR/c.out" 8
	[ "$(cut -d- -f2 "$BATS_TEST_TMPDIR/c.out")" = "$(seq 1 8)" ]
}

@test "following an empty topic in several partitions shows records of each" {
	mq-topic create t -p 3
	start c mq-consume -f '%p %s\n' t
	sleep 0.3
	for p in 2 0 1; do
		printf 'to-%s\n' "$p" | mq-produce -p "$p" t
	done
	wait_until 2 has_lines "$BATS_TEST_TMPDIR/c.out" 3
	[ "$(sort "$BATS_TEST_TMPDIR/c.out")" = $'0 to-0\n1 to-1\n2 to-2' ]
}

@test "an idle follower spends no CPU" {
	mq-topic create t
	printf 'a\n' | mq-produce t
	start c mq-consume t
	wait_until 2 grep -qx a "$BATS_TEST_TMPDIR/c.out"
	[ "$(cat "/proc/$c_pid/comm")" = mq-consume ]
	sleep 0.3
	t0=$(cpu_ticks "$c_pid")
	sleep 2
	t1=$(cpu_ticks "$c_pid")
	echo "ticks while idle: $((t1 - t0))"
	[ $((t1 - t0)) -le 2 ]
	# and it still wakes up
	printf 'b\n' | mq-produce t
	wait_until 2 grep -qx b "$BATS_TEST_TMPDIR/c.out"
}

@test "an idle group member spends no CPU to speak of" {
	mq-topic create t -p 2
	start c mq-consume -g G t
	wait_until 3 test -s "$MQ_DIR/groups/G/topics/t/1.lock"
	sleep 0.3
	t0=$(cpu_ticks "$c_pid")
	sleep 2
	t1=$(cpu_ticks "$c_pid")
	echo "ticks while idle: $((t1 - t0))"
	[ $((t1 - t0)) -le 2 ]
}

# ---- consumer groups -------------------------------------------------------------

@test "-g G -e commits; the next run with -g G goes on where it stopped" {
	mq-topic create t
	seq 1 5 | mq-produce t
	run --separate-stderr mq-consume -g G -e t
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq 1 5)" ]
	[ -z "$stderr" ]
	[ -f "$MQ_DIR/groups/G/offsets/t" ]
	[ "$(committed G t 0)" = 5 ]
	# every line of the history is "partition offset time end"
	run grep -cvE '^0 [0-9]+ [0-9]{13} 5$' "$MQ_DIR/groups/G/offsets/t"
	[ "$output" = 0 ]
	run mq-consume -g G -e t
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	seq 6 8 | mq-produce t
	run mq-consume --group G -e t
	[ "$output" = "$(seq 6 8)" ]
	[ "$(committed G t 0)" = 8 ]
}

@test "-g G -c N commits what it showed: the next run shows no record twice and skips none" {
	mq-topic create t -p 3
	for p in 0 1 2; do
		seq -f "p$p-%g" 4 | mq-produce -p "$p" t
	done
	: >"$BATS_TEST_TMPDIR/all"
	for n in 3 1 5 2; do
		mq-consume -g G -e -c "$n" -f '%p %o %s\n' t >>"$BATS_TEST_TMPDIR/all"
	done
	mq-consume -g G -e -f '%p %o %s\n' t >>"$BATS_TEST_TMPDIR/all"
	[ "$(lines_in "$BATS_TEST_TMPDIR/all")" -eq 12 ]
	[ -z "$(sort "$BATS_TEST_TMPDIR/all" | uniq -d)" ]
	[ "$(committed G t 0)" = 4 ] && [ "$(committed G t 1)" = 4 ] && [ "$(committed G t 2)" = 4 ]
}

@test "two groups keep separate offsets" {
	mq-topic create t
	seq 1 3 | mq-produce t
	mq-consume -g A -e t >/dev/null
	run mq-consume -g B -e t
	[ "$output" = "$(seq 1 3)" ]
	[ "$(committed A t 0)" = 3 ] && [ "$(committed B t 0)" = 3 ]
}

@test "--commit none reads with the group but commits nothing" {
	mq-topic create t
	seq 1 3 | mq-produce t
	run mq-consume -g G --commit none -e t
	[ "$status" -eq 0 ]
	[ "$output" = "$(seq 1 3)" ]
	[ "$(committed G t 0)" = none ]
	run mq-consume -g G -e t
	[ "$output" = "$(seq 1 3)" ]
	run --separate-stderr mq-consume -g G --commit sometimes -e t
	[ "$status" -eq 2 ]
}

@test "a bad group name exits 2" {
	mq-topic create t
	run --separate-stderr mq-consume -g ../x -e t
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-consume: invalid group name '../x'"* ]]
	[ ! -e "$MQ_DIR/x" ]
}

# The partitions 0-5 of t in group G are owned by the given pids, the same
# number each.
owned_evenly_by() {
	local all="" p o pid
	for p in 0 1 2 3 4 5; do
		o=$(owner_pid G t "$p")
		[ -n "$o" ] || return 1
		all+="$o"$'\n'
	done
	for pid in "$@"; do
		[ "$(grep -cx "$pid" <<<"$all")" -eq $((6 / $#)) ] || return 1
	done
}

# The outputs of the background consumers NAME... hold N lines together.
union_has() {
	local n=$1 name total=0
	shift
	for name in "$@"; do
		total=$((total + $(lines_in "$BATS_TEST_TMPDIR/$name.out")))
	done
	[ "$total" -ge "$n" ]
}

# Every partition of t has G's committed offset at N.
all_committed() {
	local p
	for p in 0 1 2 3 4 5; do
		[ "$(committed G t "$p")" = "$1" ] || return 1
	done
}

@test "three members over 6 partitions get 2 each; after kill -9 of one the others take over and nothing is lost" {
	# a remote member that dies is noticed after its session timeout; on
	# a loaded machine a shorter one can expire between two heartbeats
	export MQ_SESSION_TIMEOUT=4s
	mq-topic create t -p 6
	start m1 mq-consume -g G -f '%p %o %s\n' t
	start m2 mq-consume -g G -f '%p %o %s\n' t
	start m3 mq-consume -g G -f '%p %o %s\n' t
	wait_until 5 owned_evenly_by "$m1_pid" "$m2_pid" "$m3_pid"
	for p in 0 1 2 3 4 5; do
		seq -f "r$p-%g" 5 | mq-produce -p "$p" t
	done
	wait_until 5 union_has 30 m1 m2 m3
	# each member shows the records of its two partitions, and only those
	for m in m1 m2 m3; do
		parts=$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/$m.out" | sort -u | tr '\n' ' ')
		pid_var=${m}_pid
		owned=$(for p in 0 1 2 3 4 5; do [ "$(owner_pid G t "$p")" = "${!pid_var}" ] && echo "$p"; done | tr '\n' ' ')
		echo "$m: shows $parts owns $owned"
		[ "$parts" = "$owned" ]
		[ "$(wc -w <<<"$parts")" -eq 2 ]
	done
	[ "$(cut -d' ' -f3 "$BATS_TEST_TMPDIR"/m?.out | sort)" = "$(for p in 0 1 2 3 4 5; do seq -f "r$p-%g" 5; done | sort)" ]
	wait_until 5 all_committed 5
	for p in 0 1 2 3 4 5; do
		offset_history G t "$p" >"$BATS_TEST_TMPDIR/before.$p"
	done

	kill -9 "$m2_pid"
	wait "$m2_pid" || true
	wait_until 10 owned_evenly_by "$m1_pid" "$m3_pid"
	for p in 0 1 2 3 4 5; do
		seq -f "r$p-%g" 6 10 | mq-produce -p "$p" t
	done
	wait_until 5 union_has 60 m1 m2 m3
	# every record, at least once; none twice since all was committed
	[ "$(cut -d' ' -f3 "$BATS_TEST_TMPDIR"/m?.out | sort -u)" = "$(for p in 0 1 2 3 4 5; do seq -f "r$p-%g" 10; done | sort)" ]
	[ -z "$(cat "$BATS_TEST_TMPDIR"/m?.out | sort | uniq -d)" ]
	kill -0 "$m1_pid" && kill -0 "$m3_pid"
	wait_until 5 all_committed 10
	# committed offsets never went backwards
	for p in 0 1 2 3 4 5; do
		offset_history G t "$p" >"$BATS_TEST_TMPDIR/after.$p"
		sort -n -c "$BATS_TEST_TMPDIR/after.$p"
		[ "$(tail -n 1 "$BATS_TEST_TMPDIR/after.$p")" -ge "$(tail -n 1 "$BATS_TEST_TMPDIR/before.$p")" ]
	done
	[ ! -s "$BATS_TEST_TMPDIR/m1.err" ] && [ ! -s "$BATS_TEST_TMPDIR/m3.err" ]
}

# A member working through t with -x is killed with -9 after 60 records;
# a new member must start at the last commit, so that every record is
# handled and only those at or after that commit twice.
kill_mid_backlog() {
	local log=$BATS_TEST_TMPDIR/done c d
	export MQ_SESSION_TIMEOUT=2s        # see the test of three members
	start m1 mq-consume -g G -x "echo \$MQ_OFFSET >> '$log'; sleep 0.02" t
	wait_until 10 has_lines "$log" 60
	kill -9 "$m1_pid"
	wait "$m1_pid" || true
	sleep 0.1                           # its last command finishes
	wait_until 10 no_members G          # remotely: once its session timed out
	c=$(committed G t 0)
	echo "committed at the kill: $c, done: $(lines_in "$log")"
	[ "$c" != none ]
	[ "$c" -gt 0 ] && [ "$c" -lt 200 ]
	[ "$c" -le "$(lines_in "$log")" ]
	run timeout 30 mq-consume -g G -e -x "echo \$MQ_OFFSET >> '$log'" t
	[ "$status" -eq 0 ]
	[ "$(sort -n -u "$log")" = "$(seq 0 199)" ]
	for d in $(sort -n "$log" | uniq -d); do
		[ "$d" -ge "$c" ]
	done
	[ "$(committed G t 0)" = 200 ]
}

@test "kill -9 of an --exec member in a backlog of small batches: the next resumes at the last commit" {
	mq-topic create t
	# written where the data is: a producer that keeps up with the lines
	# one by one, which a remote one need not
	for i in $(seq 1 200); do
		echo "$i"
	done | on_server mq-produce --linger 0 --batch-size 1 t
	[ "$(mq-topic dump "$(segment t 0)" | grep -c '^baseOffset')" -ge 100 ]
	kill_mid_backlog
}

@test "kill -9 of an --exec member inside one big batch: what CMD finished was committed" {
	mq-topic create t
	seq 0 199 | mq-produce t
	kill_mid_backlog
}

@test "a member that joins takes its share, and a member that exits hands its partitions back" {
	mq-topic create t -p 6
	start m1 mq-consume -g G -f '%p %s\n' t
	wait_until 5 owned_evenly_by "$m1_pid"
	start m2 mq-consume -g G -f '%p %s\n' t
	wait_until 5 owned_evenly_by "$m1_pid" "$m2_pid"
	kill -TERM "$m2_pid"
	wait "$m2_pid"
	wait_until 5 owned_evenly_by "$m1_pid"
	for p in 0 1 2 3 4 5; do
		printf 'x%s\n' "$p" | mq-produce -p "$p" t
	done
	wait_until 3 has_lines "$BATS_TEST_TMPDIR/m1.out" 6
}

# ---- --reset-offsets ---------------------------------------------------------------

@test "--reset-offsets beginning moves the group back: the next run re-reads everything" {
	mq-topic create t -p 2
	seq 1 3 | mq-produce -p 0 t
	seq 4 5 | mq-produce -p 1 t
	mq-consume -g G -e t >/dev/null
	[ "$(committed G t 0)" = 3 ] && [ "$(committed G t 1)" = 2 ]
	if [ "$MQ_TEST_TRANSPORT" != local ]; then
		run --separate-stderr mq-consume --reset-offsets beginning -g G t
		[ "$status" -eq 2 ]
		[[ "$stderr" == "mq-consume: --reset-offsets needs a local data directory"* ]]
		[ "$(committed G t 0)" = 3 ]
	fi
	run --separate-stderr on_server mq-consume --reset-offsets beginning -g G t
	[ "$status" -eq 0 ]
	[ "$output" = $'t 0 0\nt 1 0' ]
	[ "$(committed G t 0)" = 0 ] && [ "$(committed G t 1)" = 0 ]
	run mq-consume -g G -e t
	[ "$(sort <<<"$output")" = "$(seq 1 5)" ]
}

@test "--reset-offsets takes end, N and -N like -o" {
	mq-topic create t
	seq 1 10 | mq-produce t
	on_server mq-consume --reset-offsets end -g G t
	[ "$(committed G t 0)" = 10 ]
	on_server mq-consume --reset-offsets 4 -g G t
	run mq-consume -g G -e -c 1 t
	[ "$output" = 5 ]
	on_server mq-consume --reset-offsets -2 -g G t
	run mq-consume -g G -e t
	[ "$output" = $'9\n10' ]
	run --separate-stderr mq-consume --reset-offsets foo -g G t
	[ "$status" -eq 2 ]
	run --separate-stderr mq-consume --reset-offsets beginning t
	[ "$status" -eq 2 ]
}

@test "--reset-offsets is refused while a member runs (exit 1), and --force overrides" {
	mq-topic create t
	seq 1 3 | mq-produce t
	start m mq-consume -g G t
	wait_until 3 has_lines "$BATS_TEST_TMPDIR/m.out" 3
	wait_until 3 committed_is G t 0 3
	run --separate-stderr on_server mq-consume --reset-offsets beginning -g G t
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ "$stderr" == "mq-consume: "*"active member"* ]]
	[ "$(committed G t 0)" = 3 ]
	run --separate-stderr on_server mq-consume --reset-offsets beginning -g G --force t
	[ "$status" -eq 0 ]
	[ "$(committed G t 0)" = 0 ]
}

# ---- --exec ---------------------------------------------------------------------------

@test "-x CMD gets each value on stdin followed by a newline" {
	mq-topic create t
	printf 'a\nb b\nc\n' | mq-produce t
	run --separate-stderr mq-consume -e -x "cat >> '$BATS_TEST_TMPDIR/got'" t
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(cat "$BATS_TEST_TMPDIR/got")" = $'a\nb b\nc' ]
}

@test "--exec CMD sees MQ_TOPIC, MQ_PARTITION, MQ_OFFSET and MQ_KEY (unset for a null key)" {
	mq-topic create t -p 2
	printf 'k1:v1\nk2:v2\n' | mq-produce -K : -p 1 t
	printf 'plain\n' | mq-produce -p 1 t
	run mq-consume -e --exec "echo \"\$MQ_TOPIC \$MQ_PARTITION \$MQ_OFFSET \${MQ_KEY-unset} \$(cat)\" >> '$BATS_TEST_TMPDIR/env'" t
	[ "$status" -eq 0 ]
	[ "$(cat "$BATS_TEST_TMPDIR/env")" = $'t 1 0 k1 v1\nt 1 1 k2 v2\nt 1 2 unset plain' ]
}

@test "with a group, -x commits once CMD exited 0" {
	mq-topic create t
	seq 1 4 | mq-produce t
	run mq-consume -g G -e -x "cat >> '$BATS_TEST_TMPDIR/got'" t
	[ "$status" -eq 0 ]
	[ "$(committed G t 0)" = 4 ]
	run mq-consume -g G -e t
	[ -z "$output" ]
}

@test "a failing CMD is retried --retries times, then without --dlq exits 1 with the offset uncommitted" {
	mq-topic create t
	printf 'good1\nbad\ngood2\n' | mq-produce t
	cmd="v=\$(cat); echo \"\$v\" >> '$BATS_TEST_TMPDIR/tries'; [ \"\$v\" != bad ] || exit 3"
	run --separate-stderr mq-consume -g G -e --retries 2 -x "$cmd" t
	[ "$status" -eq 1 ]
	[ -z "$output" ]
	[[ "$stderr" == "mq-consume: "*"offset 1"*"exit status 3"* ]]
	[ "$(cat "$BATS_TEST_TMPDIR/tries")" = $'good1\nbad\nbad\nbad' ]
	[ "$(committed G t 0)" = 1 ]
	# a rerun sees the record again
	run mq-consume -g G -e t
	[ "$output" = $'bad\ngood2' ]
}

@test "without --retries a failing CMD runs once" {
	mq-topic create t
	printf 'x\n' | mq-produce t
	run --separate-stderr mq-consume -e -x "echo run >> '$BATS_TEST_TMPDIR/n'; exit 3" t
	[ "$status" -eq 1 ]
	[ "$(lines_in "$BATS_TEST_TMPDIR/n")" -eq 1 ]
}

@test "--dlq TOPIC takes the failed record with its key, value and headers plus why, and goes on" {
	mq-topic create t
	printf 'k1:good1\nk2:bad\nk3:good2\n' | mq-produce -K : -H orig=yes t
	cmd="v=\$(cat); echo \"\$v\" >> '$BATS_TEST_TMPDIR/tries'; [ \"\$v\" != bad ] || exit 3"
	run --separate-stderr mq-consume -g G -e --retries 2 --dlq dead -x "$cmd" t
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[[ "$stderr" == *"exit status 3"*"'dead'"* ]]
	[ "$(cat "$BATS_TEST_TMPDIR/tries")" = $'good1\nbad\nbad\nbad\ngood2' ]
	[ "$(committed G t 0)" = 3 ]
	run mq-consume -e -f '%k|%s\n' dead
	[ "$status" -eq 0 ]
	[ "$output" = 'k2|bad' ]
	[ "$(mq-consume -e -f '%T' dead)" = "$(mq-consume -e -o 1 -c 1 -f '%T' t)" ]
	run "$PYTHON" -c '
import json, sys
r = json.loads(sys.stdin.read())
h = r["headers"]
assert h["orig"] == "yes", h
assert h["mq.dlq.reason"] == "exit status 3", h
assert h["mq.dlq.topic"] == "t", h
assert h["mq.dlq.partition"] == "0", h
assert h["mq.dlq.offset"] == "1", h
print("ok")' <<<"$(mq-consume -e -J dead)"
	[ "$output" = ok ]
}

@test "--batch N hands CMD up to N values at once, MQ_COUNT saying how many" {
	mq-topic create t
	seq 1 12 | mq-produce t
	run mq-consume -g G -e --batch 5 -x "echo \"\$MQ_COUNT \$MQ_OFFSET\" >> '$BATS_TEST_TMPDIR/calls'; cat >> '$BATS_TEST_TMPDIR/got'" t
	[ "$status" -eq 0 ]
	[ "$(cat "$BATS_TEST_TMPDIR/got")" = "$(seq 1 12)" ]
	[ "$(cat "$BATS_TEST_TMPDIR/calls")" = $'5 0\n5 5\n2 10' ]
	[ "$(committed G t 0)" = 12 ]
}

@test "--dlq, --retries and --batch without --exec exit 2" {
	mq-topic create t
	run --separate-stderr mq-consume -e --dlq dead t
	[ "$status" -eq 2 ]
	run --separate-stderr mq-consume -e --retries 2 t
	[ "$status" -eq 2 ]
	run --separate-stderr mq-consume -e --batch 2 t
	[ "$status" -eq 2 ]
	[ ! -e "$MQ_DIR/topics/dead" ]
}

# ---- signals ----------------------------------------------------------------------------

@test "a closed pipe (| head) ends the consumer quietly with exit 0 and commits what was written" {
	mq-topic create t
	seq 1 100000 | mq-produce t
	run --separate-stderr bash -c 'set -o pipefail; timeout 20 mq-consume -g G t 2>"$1" | head -n 3' _ "$BATS_TEST_TMPDIR/err"
	[ "$status" -eq 0 ]
	[ "$output" = $'1\n2\n3' ]
	[ ! -s "$BATS_TEST_TMPDIR/err" ]
	c=$(committed G t 0)
	echo "committed: $c"
	[ "$c" != none ]
	[ "$c" -ge 3 ]
}

@test "a closed pipe after several small batches commits at least the batches written" {
	mq-topic create t
	for i in $(seq 1 50); do
		seq -f "b$i-%g" 2000 | mq-produce t
	done
	run --separate-stderr bash -c 'timeout 20 mq-consume -g G t 2>"$1" | head -n 3; echo "${PIPESTATUS[0]}"' _ "$BATS_TEST_TMPDIR/err"
	[ "$output" = $'b1-1\nb1-2\nb1-3\n0' ]
	[ ! -s "$BATS_TEST_TMPDIR/err" ]
	[ "$(committed G t 0)" != none ]
	[ "$(committed G t 0)" -ge 3 ]
}

@test "SIGTERM makes a following group consumer commit and exit 0" {
	mq-topic create t
	seq 1 5 | mq-produce t
	start c mq-consume -g G t
	wait_until 3 has_lines "$BATS_TEST_TMPDIR/c.out" 5
	kill -TERM "$c_pid"
	rc=0
	wait "$c_pid" || rc=$?
	[ "$rc" -eq 0 ]
	[ "$(committed G t 0)" = 5 ]
	[ ! -s "$BATS_TEST_TMPDIR/c.err" ]
	# it left the group
	[ -z "$(ls "$MQ_DIR/groups/G/members")" ]
}

@test "SIGINT ends a following consumer with exit 0" {
	mq-topic create t
	printf 'a\n' | mq-produce t
	start c mq-consume -g G t
	wait_until 3 has_lines "$BATS_TEST_TMPDIR/c.out" 1
	kill -INT "$c_pid"
	rc=0
	wait "$c_pid" || rc=$?
	[ "$rc" -eq 0 ]
	[ "$(committed G t 0)" = 1 ]
}

# ---- bad input --------------------------------------------------------------------------

@test "an unknown topic exits 3 with 'not found'" {
	run --separate-stderr mq-consume -e nope
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	[ "$stderr" = "mq-consume: topic 'nope' not found" ]
	[ ! -e "$MQ_DIR/topics/nope" ]
}

@test "a hostile topic name is refused and no path outside the data directory is touched" {
	run --separate-stderr mq-consume -e ../../etc
	[ "$status" -ne 0 ]
	[[ "$stderr" == "mq-consume: "*"'../../etc'"* ]]
}

@test "a bad offset spec exits 2: -o foo, -o @notatime, -o 1x" {
	mq-topic create t
	printf 'a\n' | mq-produce t
	for spec in foo @notatime 1x -x ''; do
		run --separate-stderr mq-consume -e -o "$spec" t
		echo "spec '$spec': $status $stderr"
		[ "$status" -eq 2 ]
		[ -z "$output" ]
		[[ "$stderr" == "mq-consume: invalid offset '$spec'"* ]]
	done
}

@test "a bad count, partition or time exits 2" {
	mq-topic create t
	run --separate-stderr mq-consume -e -c many t
	[ "$status" -eq 2 ]
	run --separate-stderr mq-consume -e -p -1 t
	[ "$status" -eq 2 ]
	run --separate-stderr mq-consume -e --until yesterday t
	[ "$status" -eq 2 ]
	run --separate-stderr mq-consume -e --offset-reset sometimes t
	[ "$status" -eq 2 ]
	run --separate-stderr mq-consume -e --isolation dirty t
	[ "$status" -eq 2 ]
	run --separate-stderr mq-consume -e
	[ "$status" -eq 2 ]
}

@test "an offset below the log start after retention exits 3 naming the log start; --offset-reset earliest starts there" {
	mq-topic create t -c segment.bytes=1024 -c retention.bytes=2048
	seq 1 500 | mq-produce --batch-size 200 t
	mq-topic gc t
	start=$(log_start t)
	echo "log start: $start"
	[ "$start" -gt 0 ]
	run --separate-stderr mq-consume -e -o 0 t
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	[[ "$stderr" == "mq-consume: "*"offset 0"* ]]
	[[ "$stderr" == *"log start"* ]]
	run --separate-stderr mq-consume -e -o 0 --offset-reset earliest -f '%o %s\n' t
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "$start $((start + 1))" ]
	[ "${lines[-1]}" = "499 500" ]
	# beginning means the log start
	run mq-consume -e -c 1 -f '%o\n' t
	[ "$output" = "$start" ]
}

@test "a group whose committed offset fell below the log start exits 3 unless --offset-reset earliest" {
	mq-topic create t -c segment.bytes=1024 -c retention.bytes=2048
	seq 1 5 | mq-produce t
	mq-consume -g G -e -c 1 t >/dev/null
	[ "$(committed G t 0)" = 1 ]
	seq 6 500 | mq-produce --batch-size 200 t
	mq-topic gc t
	start=$(log_start t)
	[ "$start" -gt 1 ]
	run --separate-stderr mq-consume -g G -e t
	[ "$status" -eq 3 ]
	[[ "$stderr" == *"log start"* ]]
	run mq-consume -g G -e --offset-reset earliest -c 1 -f '%o\n' t
	[ "$status" -eq 0 ]
	[ "$output" = "$start" ]
}

@test "a corrupt batch in the middle of a segment exits 4 naming the file and the byte, after the records before it" {
	mq-topic create t
	for b in 1 2 3 4 5; do
		printf 'b%s-1\nb%s-2\n' "$b" "$b" | mq-produce t
	done
	f=$(segment t 0)
	pos=$(batch_pos "$f" 3)
	flip_byte "$f" $((pos + 70))
	run --separate-stderr mq-consume -e t
	[ "$status" -eq 4 ]
	[ "$output" = $'b1-1\nb1-2\nb2-1\nb2-2' ]
	corrupt_named "$f" "$pos" t 0 4
}

@test "--skip-corrupt warns about the corrupt batch and goes on with the next segment" {
	mq-topic create t -c segment.bytes=200
	for b in 1 2 3 4 5 6 7 8; do
		printf 'b%s-xxxxxxxxxxxxxxxxxxxxxxxx\n' "$b" | mq-produce t
	done
	mq-consume -e -f '%o %s\n' t >"$BATS_TEST_TMPDIR/all"
	[ "$(lines_in "$BATS_TEST_TMPDIR/all")" -eq 8 ]
	mapfile -t segs < <(cd "$(pdir t)" && ls -- *.log)
	[ "${#segs[@]}" -ge 3 ]
	second=$((10#${segs[1]%.log}))
	[ "$second" -ge 2 ]                # the first segment holds 2 batches or more
	f=$(segment t 0)
	pos=$(batch_pos "$f" 2)
	flip_byte "$f" $((pos + 65))
	run --separate-stderr timeout 10 mq-consume -e --skip-corrupt -f '%o %s\n' t
	echo "exit status $status (124: timeout killed it); stdout: $output; stderr: $stderr"
	[ "$status" -eq 0 ]
	corrupt_named "$f" "$pos" t 0 1
	[ "$output" = "$(awk -v s="$second" '$1 < 1 || $1 >= s' "$BATS_TEST_TMPDIR/all")" ]
}

@test "a segment with a codec mq cannot name is reported, not shown as garbage" {
	mq-topic create k
	kafka_segment "$(pdir k)" --records 3
	# attributes codec bits = 7: no such codec (the CRC no longer matches,
	# so a reader checking CRCs must call it corrupt)
	f=$(segment k 0)
	printf '\007' | dd of="$f" bs=1 seek=22 conv=notrunc status=none
	run --separate-stderr mq-consume -e k
	[ "$status" -eq 4 ]
	[ -z "$output" ]
	corrupt_named "$f" 0 k 0 0
}

# ---- usage ----------------------------------------------------------------------------

@test "--help prints the usage on stdout and exits 0" {
	run --separate-stderr mq-consume --help
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "usage: mq-consume "* ]]
	[[ "$output" == *"--reset-offsets"* ]]
	[ -z "$stderr" ]
	run mq-consume -h
	[ "$status" -eq 0 ]
}

@test "--version exits 0; --isolation committed and uncommitted are accepted" {
	run mq-consume --version
	[ "$status" -eq 0 ]
	[ -n "$output" ]
	mq-topic create t
	printf 'a\n' | mq-produce t
	run mq-consume -e --isolation committed t
	[ "$output" = a ]
	run mq-consume -e --isolation uncommitted t
	[ "$output" = a ]
}

@test "an unknown option exits 2 with a hint to --help" {
	run --separate-stderr mq-consume --bogus t
	[ "$status" -eq 2 ]
	[ -z "$output" ]
	[[ "$stderr" == *"--bogus"* ]]
	[[ "$stderr" == *"Try 'mq-consume --help'"* ]]
}

@test "-J, --raw and --exec exclude each other (exit 2)" {
	mq-topic create t
	run --separate-stderr mq-consume -e -J --raw t
	[ "$status" -eq 2 ]
	run --separate-stderr mq-consume -e -J -x cat t
	[ "$status" -eq 2 ]
}
