#!/usr/bin/env bats
# mq-serve(1): the data directory over HTTP and ssh; http:// and ssh://
# addresses in mq-produce, mq-consume, mq-topic and mq-lag.
#
# Every test starts its own mq-serve on $MQ_DIR at a free port (`serve`)
# and the teardown kills it.  The API is exercised with curl (`req`),
# what curl will not send (broken chunked bodies, garbage, headers one
# byte at a time, a thousand idle connections, a producer that records
# each acknowledgement) with tests/serve/raw.py, and the programs against
# http:// and ssh:// addresses (ssh is tests/bin/ssh, which runs the
# command here and refuses hosts named unreachable*).  Waits are bounded
# loops; nothing asserts how long anything took.
#
# Tests that would fail on a known bug assert the right behaviour and
# are skipped with "BUG: ..." until it is fixed.
#
# shellcheck disable=SC2154 # NAME_pid variables are set by start

load helper

T0=1700000000000 # 2023-11-14T22:13:20Z

setup() {
	# this suite starts its own servers: the programs run as they are
	export MQ_TEST_TRANSPORT=local
	mq_setup
	BG=()
	MQ_SSH="$BATS_TEST_DIRNAME/bin/ssh"
	export MQ_SSH
	RAW="$BATS_TEST_DIRNAME/serve/raw.py"
	SSH_ADDR="ssh://localhost$MQ_DIR"
}

teardown() {
	local p
	for p in "${BG[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	for p in "${BG[@]}"; do
		wait "$p" 2>/dev/null
	done
	mq_teardown
}

# serve [--log] [OPTION...]: starts `mq-serve -q -d $MQ_DIR -l 127.0.0.1:0
# OPTION...` in the background (without -q after --log); sets SERVE_PID,
# PORT (read from "serving on") and URL=http://127.0.0.1:PORT.  Its
# stderr is $BATS_TEST_TMPDIR/serve.err.
serve() {
	local err=$BATS_TEST_TMPDIR/serve.err i quiet=(-q)
	if [ "$1" = --log ]; then
		quiet=()
		shift
	fi
	: >"$err"
	PORT=
	mq-serve "${quiet[@]}" -d "$MQ_DIR" -l 127.0.0.1:0 "$@" 2>"$err" 3>&- &
	SERVE_PID=$!
	BG+=("$SERVE_PID")
	for ((i = 0; i < 200; i++)); do
		PORT=$(sed -n 's/^mq-serve: serving on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$err")
		[ -n "$PORT" ] && break
		kill -0 "$SERVE_PID" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$PORT" ]; then
		echo "mq-serve did not start:" >&2
		cat "$err" >&2
		return 1
	fi
	URL=http://127.0.0.1:$PORT
}

# start NAME CMD...: CMD in the background, stdout to $BATS_TEST_TMPDIR/NAME.out,
# stderr to NAME.err, its pid in $NAME_pid; the teardown kills it.
start() {
	local name=$1
	shift
	"$@" >"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.err" 3>&- &
	BG+=("$!")
	printf -v "${name}_pid" '%s' "$!"
}

# req METHOD PATH [CURL-OPTION...]: one request to the server, the path
# sent as given; sets $code (the HTTP status; 000 when there was no
# answer) and $body, and keeps the answer in $BATS_TEST_TMPDIR/body and
# its headers in $BATS_TEST_TMPDIR/headers.
req() {
	local m=$1 p=$2
	shift 2
	rm -f "$BATS_TEST_TMPDIR/body" "$BATS_TEST_TMPDIR/headers"
	code=$(curl -s --path-as-is -X "$m" -o "$BATS_TEST_TMPDIR/body" \
		-D "$BATS_TEST_TMPDIR/headers" -w '%{http_code}' "$@" "$URL$p") || true
	touch "$BATS_TEST_TMPDIR/body" "$BATS_TEST_TMPDIR/headers"
	body=$(tr -d '\0' <"$BATS_TEST_TMPDIR/body")
}

# header NAME: the value of header NAME in the last answer.
header() {
	awk -v n="$1" 'BEGIN { n = tolower(n) ":" }
		tolower(substr($0, 1, length(n))) == n {
			v = substr($0, length(n) + 1); sub(/^ */, "", v); sub(/\r$/, "", v); print v }' \
		"$BATS_TEST_TMPDIR/headers"
}

# json EXPR: the Python expression EXPR, where j is the JSON of $body,
# printed as compact JSON (strings bare).
json() {
	"$PYTHON" -c '
import json, sys
j = json.loads(sys.argv[2])
r = eval(sys.argv[1])
print(r if isinstance(r, str) else json.dumps(r, separators=(",", ":")))' "$1" "$body"
}

# has_lines FILE N: FILE holds at least N lines.
has_lines() {
	[ -f "$1" ] && [ "$(wc -l <"$1")" -ge "$2" ]
}

# count_records TOPIC: how many records the local topic holds.
count_records() {
	mq-consume -e -f '.\n' "$1" | wc -l
}

# still_serving: GET /healthz answers 200 ok.
still_serving() {
	req GET /healthz
	[ "$code" = 200 ]
	[ "$body" = ok ]
}

# ---- the API with curl ------------------------------------------------------

@test "GET /healthz answers 200 ok" {
	serve
	req GET /healthz
	[ "$code" = 200 ]
	[ "$body" = ok ]
	[ "$(cat "$BATS_TEST_TMPDIR/body")" = ok ]
}

@test "GET /v1/topics lists the topics; PUT creates one with its config (201), and 409 when it exists" {
	mq-topic create a
	serve
	req GET /v1/topics
	[ "$code" = 200 ]
	[ "$(header Content-Type)" = application/json ]
	[ "$body" = '{"topics":["a"]}' ]

	req PUT /v1/topics/b -d '{"config":{"partitions":"3","retention.ms":"3600000"}}'
	[ "$code" = 201 ]
	[ "$(json 'j["name"]')" = b ]
	[ "$(json 'j["config"]["partitions"]')" = 3 ]
	[ "$(json 'j["config"]["retention.ms"]')" = 3600000 ]
	[ "$(json 'len(j["partitions"])')" = 3 ]
	grep -qx 'retention.ms=3600000' "$MQ_DIR/topics/b/topic.conf"
	[ -d "$MQ_DIR/topics/b/2" ]

	# an empty body takes the defaults
	req PUT /v1/topics/c
	[ "$code" = 201 ]
	[ "$(json 'j["config"]["partitions"]')" = 1 ]

	req GET /v1/topics
	[ "$body" = '{"topics":["a","b","c"]}' ]

	req PUT /v1/topics/b -d '{"config":{"partitions":"1"}}'
	[ "$code" = 409 ]
	[ "$(json 'j["class"]')" = 1 ]
	[[ "$(json 'j["error"]')" == *"'b' already exists"* ]]
	grep -qx 'partitions=3' "$MQ_DIR/topics/b/topic.conf"

	req PUT /v1/topics/d -d '{"config":{"no.such.key":"1"}}'
	[ "$code" = 400 ]
	[ "$(json 'j["class"]')" = 2 ]
	[ ! -e "$MQ_DIR/topics/d" ]
}

@test "GET /v1/topics/T describes the topic: name, config as strings, every partition's offsets" {
	mq-topic create t -p 2 -c retention.ms=1h
	printf 'a\nb\nc\n' | mq-produce -p 1 t
	serve
	req GET /v1/topics/t
	[ "$code" = 200 ]
	[ "$(json 'j["name"]')" = t ]
	[ "$(json 'j["config"]["partitions"]')" = 2 ]
	[ "$(json 'j["config"]["retention.ms"]')" = 3600000 ]
	[ "$(json 'all(isinstance(v, str) for v in j["config"].values())')" = true ]
	[ "$(json '[p["partition"] for p in j["partitions"]]')" = '[0,1]' ]
	[ "$(json '[(p["log_start"], p["log_end"], p["high_watermark"]) for p in j["partitions"]]')" = '[[0,0,0],[0,3,3]]' ]
	[ "$(json 'j["partitions"][1]["bytes"]')" = "$(file_size "$(pdir t 1)/00000000000000000000.log")" ]
	[ "$(json 'j["partitions"][1]["segments"]')" = 1 ]
}

@test "PATCH /v1/topics/T alters the config; DELETE removes the topic (204)" {
	mq-topic create t
	serve
	req PATCH /v1/topics/t -d '{"config":{"retention.ms":"60000","partitions":"2"}}'
	[ "$code" = 200 ]
	[ "$(json 'j["config"]["retention.ms"]')" = 60000 ]
	[ "$(json 'len(j["partitions"])')" = 2 ]
	grep -qx 'retention.ms=60000' "$MQ_DIR/topics/t/topic.conf"
	grep -qx 'partitions=2' "$MQ_DIR/topics/t/topic.conf"

	# what mq-topic refuses, the API refuses with the same class
	req PATCH /v1/topics/t -d '{"config":{"partitions":"1"}}'
	[ "$code" = 400 ]
	[ "$(json 'j["class"]')" = 2 ]
	[[ "$(json 'j["error"]')" == *"partitions may only grow"* ]]
	req PATCH /v1/topics/t -d 'not json'
	[ "$code" = 400 ]

	req DELETE /v1/topics/t
	[ "$code" = 204 ]
	[ -z "$body" ]
	[ ! -e "$MQ_DIR/topics/t" ]
	req DELETE /v1/topics/t
	[ "$code" = 404 ]
	[ "$(json 'j["class"]')" = 3 ]
	still_serving
}

@test "GET .../partitions/P gives one partition; a partition past the last is 404, a bad one 400" {
	mq-topic create t -p 2
	printf 'a\nb\n' | mq-produce -p 0 t
	serve
	req GET /v1/topics/t/partitions/0
	[ "$code" = 200 ]
	[ "$(json '[j["partition"], j["log_start"], j["log_end"], j["high_watermark"], j["segments"]]')" = '[0,0,2,2,1]' ]
	[ "$(json 'j["first_timestamp"] > 0 and j["last_timestamp"] >= j["first_timestamp"]')" = true ]
	req GET /v1/topics/t/partitions/1
	[ "$code" = 200 ]
	[ "$(json '[j["log_end"], j["segments"], j["first_timestamp"]]')" = '[0,0,-1]' ]
	req GET /v1/topics/t/partitions/2
	[ "$code" = 404 ]
	[ "$(json 'j["class"]')" = 3 ]
	[[ "$(json 'j["error"]')" == *"partition 2 not found"* ]]
	for p in -1 x 0x1 1.0; do
		req GET "/v1/topics/t/partitions/$p"
		[ "$code" = 400 ]
		[ "$(json 'j["class"]')" = 2 ]
	done
}

@test "GET .../offset?time=MS is the first offset at or after MS, the log end when there is none" {
	mq-topic create t
	serve
	printf '%s\n' '{"value":"a","timestamp":1000}' '{"value":"b","timestamp":2000}' \
		'{"value":"c","timestamp":3000}' |
		curl -sf -H 'Content-Type: application/x-ndjson' --data-binary @- "$URL/v1/topics/t/records" >/dev/null
	for q in 0:0 1000:0 1500:1 2000:1 2999:2 3000:2 3001:3 9999999999999:3; do
		req GET "/v1/topics/t/partitions/0/offset?time=${q%:*}"
		[ "$code" = 200 ]
		[ "$body" = "{\"offset\":${q#*:}}" ]
	done
	req GET /v1/topics/t/partitions/0/offset
	[ "$code" = 400 ]
	req GET '/v1/topics/t/partitions/0/offset?time=yesterday'
	[ "$code" = 400 ]
}

@test "POST text/plain appends one record per line and answers the partition, first offset and count" {
	mq-topic create t
	serve
	req POST /v1/topics/t/partitions/0/records -H 'Content-Type: text/plain' --data-binary $'a\nb\nc\n'
	[ "$code" = 200 ]
	[ "$(header Content-Type)" = application/json ]
	[ "$body" = '{"topic":"t","results":[{"partition":0,"offset":0,"count":3}]}' ]
	# the last line needs no newline; an empty line is an empty record
	req POST /v1/topics/t/records -H 'Content-Type: text/plain' --data-binary $'d\n\ne'
	[ "$code" = 200 ]
	[ "$body" = '{"topic":"t","results":[{"partition":0,"offset":3,"count":3}]}' ]
	req POST '/v1/topics/t/records?fsync=1&key=k' -H 'Content-Type: text/plain' --data-binary $'f\n'
	[ "$code" = 200 ]
	[ "$body" = '{"topic":"t","results":[{"partition":0,"offset":6,"count":1}]}' ]
	run mq-consume -e -f '%o %k %s\n' t
	[ "$output" = $'0  a\n1  b\n2  c\n3  d\n4  \n5  e\n6 k f' ]
}

@test "POST JSON lines appends records with their keys, headers, partition and timestamp" {
	mq-topic create t -p 2
	serve
	req POST /v1/topics/t/records -H 'Content-Type: application/x-ndjson' --data-binary \
		$'{"key":"k1","value":"v1","partition":1,"timestamp":1700000000000}\n{"key":null,"value":"v2","headers":{"h":"x"},"partition":1}\n{"value":null,"partition":0}\n'
	[ "$code" = 200 ]
	[ "$(json 'sorted((r["partition"], r["offset"], r["count"]) for r in j["results"])')" = '[[0,0,1],[1,0,2]]' ]
	run mq-consume -e -p 1 -J t
	[ "${#lines[@]}" -eq 2 ]
	[[ "${lines[0]}" == '{"topic":"t","partition":1,"offset":0,"timestamp":1700000000000,"key":"k1","value":"v1","headers":{}}' ]]
	[[ "${lines[1]}" == *'"key":null,"value":"v2","headers":{"h":"x"}}' ]]
	run mq-consume -e -p 0 -J t
	[[ "$output" == *'"key":null,"value":null,'* ]]
	# application/json is the same
	req POST /v1/topics/t/partitions/0/records -H 'Content-Type: application/json' --data-binary '{"value":"v4"}'
	[ "$code" = 200 ]
	[ "$body" = '{"topic":"t","results":[{"partition":0,"offset":1,"count":1}]}' ]
	# a line that is no record, or a partition the topic lacks: 400, nothing appended
	req POST /v1/topics/t/records -H 'Content-Type: application/x-ndjson' --data-binary $'{"value":"ok"}\nnot json\n'
	[ "$code" = 400 ]
	[ "$(json 'j["class"]')" = 2 ]
	req POST /v1/topics/t/records -H 'Content-Type: application/x-ndjson' --data-binary '{"value":"x","partition":5}'
	[ "$code" = 400 ]
	[ "$(count_records t)" -eq 4 ]
	req POST /v1/topics/t/records -H 'Content-Type: image/png' --data-binary x
	[ "$code" = 400 ]
	[[ "$(json 'j["error"]')" == *"unsupported content type 'image/png'"* ]]
}

@test "JSON lines with a bad line after many good ones: 400 and nothing appended" {
	mq-topic create t
	serve
	"$PYTHON" -c '
for i in range(10000):
    print("{\"value\":\"%d-%s\"}" % (i, "x" * 200))
print("not json")' >"$BATS_TEST_TMPDIR/body.json"
	req POST /v1/topics/t/records -H 'Content-Type: application/x-ndjson' --data-binary "@$BATS_TEST_TMPDIR/body.json"
	[ "$code" = 400 ]
	[ "$(count_records t)" -eq 0 ]
}

@test "POST raw batches (mq-consume --raw of a local topic) appends the same records at new offsets" {
	mq-topic create src
	printf 'k1:a\nk2:b\n' | mq-produce -K: src
	printf 'c\n' | mq-produce src
	mq-consume -e --raw src >"$BATS_TEST_TMPDIR/raw"
	mq-topic create t -p 2
	printf 'x\ny\n' | mq-produce -p 1 t
	serve
	req POST /v1/topics/t/partitions/1/records -H 'Content-Type: application/vnd.kafka.batch' \
		--data-binary "@$BATS_TEST_TMPDIR/raw"
	[ "$code" = 200 ]
	[ "$body" = '{"topic":"t","results":[{"partition":1,"offset":2,"count":3}]}' ]
	[ "$(mq-consume -e -p 1 -f '%o\n' t)" = "$(seq 0 4)" ]
	[ "$(mq-consume -e -p 1 -o 2 -f '%k|%s|%T\n' t)" = "$(mq-consume -e -f '%k|%s|%T\n' src)" ]
	mq-topic verify t
}

@test "GET .../batches: whole batches from the segment with X-Mq-* headers; at the end an empty answer" {
	mq-topic create t
	printf 'a\nb\nc\n' | mq-produce t
	printf 'd\n' | mq-produce t
	serve
	local log
	log=$(segment t 0)
	req GET '/v1/topics/t/partitions/0/batches?offset=0'
	[ "$code" = 200 ]
	[ "$(header Content-Type)" = application/vnd.kafka.batch ]
	[ "$(header X-Mq-Log-Start)" = 0 ]
	[ "$(header X-Mq-Log-End)" = 4 ]
	[ "$(header X-Mq-High-Watermark)" = 4 ]
	cmp "$BATS_TEST_TMPDIR/body" "$log"
	# the batch holding the offset, from its first byte
	req GET '/v1/topics/t/partitions/0/batches?offset=1'
	[ "$code" = 200 ]
	cmp "$BATS_TEST_TMPDIR/body" "$log"
	req GET '/v1/topics/t/partitions/0/batches?offset=3'
	[ "$code" = 200 ]
	tail -c +"$(($(batch_pos "$log" 2) + 1))" "$log" | cmp - "$BATS_TEST_TMPDIR/body"
	# max_bytes smaller than a batch still gives one whole batch
	req GET '/v1/topics/t/partitions/0/batches?offset=0&max_bytes=1'
	[ "$code" = 200 ]
	head -c "$(batch_pos "$log" 2)" "$log" | cmp - "$BATS_TEST_TMPDIR/body"
	# what mq-consume --raw gives from there
	req GET '/v1/topics/t/partitions/0/batches?offset=3'
	mq-consume -e -o 3 --raw t | cmp - "$BATS_TEST_TMPDIR/body"
	req GET '/v1/topics/t/partitions/0/batches?offset=4'
	[ "$code" = 200 ]
	[ ! -s "$BATS_TEST_TMPDIR/body" ]
	[ "$(header X-Mq-Log-End)" = 4 ]
	req GET '/v1/topics/t/partitions/0/batches'
	[ "$code" = 400 ]
}

@test "a follower's fetch (replica=ID) records its position: position=P when it fetches ahead, else its offset" {
	mq-topic create t -c min.insync.replicas=1
	printf 'a\nb\nc\nd\n' | mq-produce t
	serve
	req GET '/v1/topics/t/partitions/0/batches?offset=2&replica=f1'
	[ "$code" = 200 ]
	[ "$(cut -d' ' -f1 "$MQ_DIR/topics/t/0/replica-f1.state")" = 2 ]
	[ "$(header X-Mq-High-Watermark)" = 2 ]
	# ahead of what it has written: the position, not the offset, counts
	req GET '/v1/topics/t/partitions/0/batches?offset=4&position=3&replica=f1'
	[ "$code" = 200 ]
	[ ! -s "$BATS_TEST_TMPDIR/body" ]
	[ "$(cut -d' ' -f1 "$MQ_DIR/topics/t/0/replica-f1.state")" = 3 ]
	[ "$(mq-topic describe -J t | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["partitions"][0]["high_watermark"])')" = 3 ]
	req GET '/v1/topics/t/partitions/0/batches?offset=4&position=4&replica=f1'
	[ "$code" = 200 ]
	[ "$(cut -d' ' -f1 "$MQ_DIR/topics/t/0/replica-f1.state")" = 4 ]
	# past the offset, negative or not a number: 400, and nothing recorded
	local pos
	for pos in 5 -1 x; do
		req GET "/v1/topics/t/partitions/0/batches?offset=4&position=$pos&replica=f1"
		[ "$code" = 400 ]
		[[ "$(json 'j["error"]')" == *"invalid position"* ]]
	done
	[ "$(cut -d' ' -f1 "$MQ_DIR/topics/t/0/replica-f1.state")" = 4 ]
}

@test "offsets outside the log are 416 with class 3 and the log's range" {
	mq-topic create t
	printf 'a\nb\n' | mq-produce t
	serve
	req GET '/v1/topics/t/partitions/0/batches?offset=3'
	[ "$code" = 416 ]
	[ "$(header Content-Type)" = application/json ]
	[ "$(json '[j["class"], j["log_start"], j["log_end"]]')" = '[3,0,2]' ]
	[[ "$(json 'j["error"]')" == *"offset 3 out of range"* ]]
	req GET '/v1/topics/t/partitions/0/batches?offset=9223372036854775807'
	[ "$code" = 416 ]
	req GET '/v1/topics/t/partitions/0/batches?offset=-1'
	[ "$code" = 400 ]
}

@test "an unknown topic is 404 with class 3; an unknown endpoint is 404" {
	serve
	for p in /v1/topics/nope /v1/topics/nope/partitions/0 '/v1/topics/nope/partitions/0/batches?offset=0'; do
		req GET "$p"
		[ "$code" = 404 ]
		[ "$(json 'j["class"]')" = 3 ]
		[ "$(json 'j["error"]')" = "topic 'nope' not found" ]
	done
	req POST /v1/topics/nope/records -H 'Content-Type: text/plain' --data-binary x
	[ "$code" = 404 ]
	[ ! -e "$MQ_DIR/topics/nope" ]
	mq-topic create t
	for p in / /nope /v1 /v2/topics /v1/nope /v1/topics/t/nope /v1/topics/t/partitions/0/nope /v1/a/b/c/d/e/f/g/h/i; do
		req GET "$p"
		[ "$code" = 404 ]
	done
}

@test "a method that the resource does not take is 405" {
	mq-topic create t
	serve
	req POST /v1/topics/t -d x
	[ "$code" = 405 ]
	[ "$(json 'j["class"]')" = 2 ]
	req PUT /v1/topics/t/partitions/0 -d x
	[ "$code" = 405 ]
	req DELETE /v1/topics/t/partitions/0/batches
	[ "$code" = 405 ]
	[ -d "$MQ_DIR/topics/t/0" ]
}

@test "405 answers name the methods allowed in an Allow header" {
	mq-topic create t
	serve
	req POST /v1/topics/t -d x
	[ "$code" = 405 ]
	[[ "$(header Allow)" == *GET* ]]
}

# ---- the programs over http:// and ssh:// ----------------------------------

@test "mq-consume over http:// and ssh:// shows what it shows locally, with the same exit status" {
	mq-topic create t -p 3
	printf 'a:1\nb:2\nc:3\nd:4\ne:5\nf:6\n' | mq-produce -K: t
	printf 'x\ny\n' | mq-produce -p 2 t
	serve
	local a args
	for args in "-e -f %p/%o/%k/%s\n" "-e -p 2 -o 1 -c 2 -f %o=%s\n" "-e -J" "-e --key b -f %k%s\n"; do
		# shellcheck disable=SC2086
		run --separate-stderr mq-consume $args t
		[ "$status" -eq 0 ]
		local want=$output
		for a in "$URL/t" "$SSH_ADDR/t"; do
			# shellcheck disable=SC2086
			run --separate-stderr mq-consume $args "$a"
			echo "$a $args: $status"
			[ "$status" -eq 0 ]
			[ "$output" = "$want" ]
			[ -z "$stderr" ]
		done
	done
}

@test "mq-produce over http:// and ssh:// puts records where a local mq-produce does" {
	serve
	mq-topic create local -p 3
	mq-topic create "$URL/web" -p 3
	mq-topic create "$SSH_ADDR/pipe" -p 3
	printf 'a:1\nb:2\nc:3\nd:4\n' >"$BATS_TEST_TMPDIR/in"
	mq-produce -K: local "$BATS_TEST_TMPDIR/in"
	mq-produce -K: "$URL/web" "$BATS_TEST_TMPDIR/in"
	mq-produce -K: "$SSH_ADDR/pipe" <"$BATS_TEST_TMPDIR/in"
	printf 'p1\n' | mq-produce -p 1 local
	printf 'p1\n' | mq-produce -p 1 "$URL/web"
	printf 'p1\n' | mq-produce -p 1 "$SSH_ADDR/pipe"
	want=$(mq-consume -e -f '%p %o %k %s\n' local)
	[ "$(mq-consume -e -f '%p %o %k %s\n' web)" = "$want" ]
	[ "$(mq-consume -e -f '%p %o %k %s\n' pipe)" = "$want" ]
	# --raw from one topic into a remote one: the same records
	local n
	n=$(mq-consume -e -p 2 -f '.\n' web | wc -l)
	mq-consume -e -p 1 --raw local | mq-produce --raw -p 2 "$URL/web"
	[ "$(mq-consume -e -p 2 -o "$n" -f '%k %s %T\n' web)" = "$(mq-consume -e -p 1 -f '%k %s %T\n' local)" ]
	[ "$(mq-consume -e -p 1 -f '.\n' local | wc -l)" -ge 2 ]
	mq-topic verify
}

@test "mq-topic list and describe over http:// and ssh:// show what they show locally" {
	mq-topic create a -p 2 -c retention.ms=1h
	mq-topic create b
	printf 'x\ny\n' | mq-produce -p 1 a
	serve
	local cmd want a
	for cmd in "list" "describe a" "describe a b"; do
		# shellcheck disable=SC2086
		want=$(mq-topic $cmd)
		for a in "$URL" "$SSH_ADDR"; do
			# shellcheck disable=SC2086
			run --separate-stderr mq-topic -d "$a" $cmd
			echo "-d $a $cmd: $status"
			[ "$status" -eq 0 ]
			[ "$output" = "$want" ]
		done
	done
	[ "$(mq-topic list "$URL")" = $'a\nb' ]
	[ "$(mq-topic describe "$SSH_ADDR/b")" = "$(mq-topic describe b)" ]
	mq-topic alter "$URL/b" -p 2
	mq-topic delete "$SSH_ADDR/a"
	[ "$(mq-topic list)" = b ]
	grep -qx 'partitions=2' "$MQ_DIR/topics/b/topic.conf"
}

@test "mq-topic describe -J over http:// and ssh:// gives the local document" {
	mq-topic create a -p 2
	printf 'x\n' | mq-produce -p 1 a
	serve
	[ "$(mq-topic describe -J "$URL/a")" = "$(mq-topic describe -J a)" ]
	[ "$(mq-topic describe -J "$SSH_ADDR/a")" = "$(mq-topic describe -J a)" ]
}

@test "errors the server classified keep their local message and exit status over http:// and ssh://" {
	mq-topic create t -p 2
	printf 'a\n' | mq-produce -p 0 t
	serve
	local cmd a want_status want_err
	# @ stands for the address and its slash, nothing locally
	for cmd in "mq-consume -e @nope" "mq-consume -e -p 0 -o 5 @t" "mq-consume -e -p 7 @t" \
		"mq-topic create @t" "mq-topic delete @nope" "mq-topic alter @t -p 1" \
		"mq-topic alter @t -c foo=1" "mq-produce --no-create @nope"; do
		# shellcheck disable=SC2086
		run --separate-stderr ${cmd//@/} </dev/null
		want_status=$status want_err=$stderr
		[ "$want_status" -ne 0 ]
		for a in "$URL" "$SSH_ADDR"; do
			# shellcheck disable=SC2086
			run --separate-stderr ${cmd//@/$a/} </dev/null
			echo "$cmd at $a: $status $stderr (locally $want_status $want_err)"
			[ "$status" -eq "$want_status" ]
			[ "$stderr" = "$want_err" ]
		done
	done
}

@test "mq-lag over http:// and ssh:// shows the local table, and --max-lag exits 1 there too" {
	mq-topic create t -p 2
	seq 10 | MQ_NOW_MS=$T0 mq-produce -p 0 t
	MQ_NOW_MS=$((T0 + 10000)) mq-consume -g G -e -c 4 t >/dev/null
	MQ_NOW_MS=$((T0 + 20000)) serve
	local a
	want=$(MQ_NOW_MS=$((T0 + 20000)) mq-lag)
	[[ "$want" == *$'\nG '*' t '*' 0 '*' 4 '*' 10 '*' 6 '* ]]
	for a in "$URL" "$SSH_ADDR"; do
		run --separate-stderr env MQ_NOW_MS=$((T0 + 20000)) mq-lag "$a"
		[ "$status" -eq 0 ]
		[ "$output" = "$want" ]
		run --separate-stderr env MQ_NOW_MS=$((T0 + 20000)) mq-lag -J "$a" G
		[ "$output" = "$(MQ_NOW_MS=$((T0 + 20000)) mq-lag -J G)" ]
		run --separate-stderr env MQ_NOW_MS=$((T0 + 20000)) mq-lag --max-lag 5 "$a"
		[ "$status" -eq 1 ]
	done
}

@test "a refused connection exits 6 naming the address and the request" {
	serve
	kill -9 "$SERVE_PID"
	wait "$SERVE_PID" || true
	run --separate-stderr mq-consume -e "$URL/t"
	[ "$status" -eq 6 ]
	[ -z "$output" ]
	[[ "$stderr" == "mq-consume: $URL: GET /v1/topics/t: "*"onnect"* ]]
}

@test "ssh to an unreachable host exits 6 and says so" {
	run --separate-stderr mq-consume -e "ssh://unreachable.example$MQ_DIR/t"
	[ "$status" -eq 6 ]
	[ -z "$output" ]
	[[ "$stderr" == *"mq-consume: ssh://unreachable.example$MQ_DIR: GET /v1/topics/t: ssh to 'unreachable.example' failed"* ]]
}

# ---- long polling -----------------------------------------------------------

@test "a tailing mq-consume over http:// receives a record appended later" {
	mq-topic create t -p 2
	printf 'first\n' | mq-produce -p 0 t
	serve
	start c mq-consume -f '%p %s\n' "$URL/t"
	wait_for has_lines "$BATS_TEST_TMPDIR/c.out" 1
	printf 'later\n' | mq-produce -p 1 t
	wait_for has_lines "$BATS_TEST_TMPDIR/c.out" 2
	req POST /v1/topics/t/partitions/0/records -H 'Content-Type: text/plain' --data-binary $'over http\n'
	wait_for has_lines "$BATS_TEST_TMPDIR/c.out" 3
	[ "$(cat "$BATS_TEST_TMPDIR/c.out")" = $'0 first\n1 later\n0 over http' ]
	kill -0 "$c_pid"
	[ ! -s "$BATS_TEST_TMPDIR/c.err" ]
}

@test "a tailing mq-consume over ssh:// receives a record appended later" {
	mq-topic create t
	start c mq-consume -f '%s\n' "$SSH_ADDR/t"
	sleep 0.2
	printf 'later\n' | mq-produce t
	wait_for has_lines "$BATS_TEST_TMPDIR/c.out" 1
	[ "$(cat "$BATS_TEST_TMPDIR/c.out")" = later ]
}

@test "a long poll (wait_ms) answers once a record arrives" {
	mq-topic create t
	serve
	start lp curl -s -o "$BATS_TEST_TMPDIR/lp.body" -w '%{http_code}' \
		"$URL/v1/topics/t/partitions/0/batches?offset=0&wait_ms=15000"
	sleep 0.2
	printf 'hello\n' | mq-produce t
	wait "$lp_pid"
	[ "$(cat "$BATS_TEST_TMPDIR/lp.out")" = 200 ]
	cmp "$BATS_TEST_TMPDIR/lp.body" "$(segment t 0)"
}

# ---- consumer groups over HTTP ----------------------------------------------

# owners: the member IDs that own partitions 0-3 of t in group G, one a
# line (empty for a partition nobody owns).
owners() {
	local p
	for p in 0 1 2 3; do
		cut -s -d' ' -f1 "$MQ_DIR/groups/G/topics/t/$p.lock" 2>/dev/null || echo
	done
}

# split_in N: partitions 0-3 are owned by N members, 4/N each.
split_in() {
	local o
	o=$(owners)
	[ "$(grep -c . <<<"$o")" -eq 4 ] || return 1
	[ "$(sort -u <<<"$o" | grep -c .)" -eq "$1" ] || return 1
	[ -z "$(sort <<<"$o" | uniq -c | awk -v n=$((4 / $1)) '$1 != n')" ]
}

# union_has N NAME...: the outputs of the consumers NAME... hold N lines.
union_has() {
	local n=$1 name total=0
	shift
	for name in "$@"; do
		[ -f "$BATS_TEST_TMPDIR/$name.out" ] && total=$((total + $(wc -l <"$BATS_TEST_TMPDIR/$name.out")))
	done
	[ "$total" -ge "$n" ]
}

# two_members: c1 and c2 consume t (4 partitions) in group G over HTTP,
# with a one-second session, each owning two partitions.
two_members() {
	mq-topic create t -p 4
	serve
	MQ_SESSION_TIMEOUT=1s start c1 mq-consume -g G -f '%p %s\n' "$URL/t"
	wait_for split_in 1
	MQ_SESSION_TIMEOUT=1s start c2 mq-consume -g G -f '%p %s\n' "$URL/t"
	wait_for split_in 2
	# both have heard of the split at their next heartbeat
	sleep 0.6
}

@test "two remote consumers in one group split the partitions between them" {
	two_members
	for p in 0 1 2 3; do
		printf 'x%s\n' "$p" | mq-produce -p "$p" t
	done
	wait_for union_has 4 c1 c2
	local m parts
	for m in c1 c2; do
		parts=$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/$m.out" | sort -u | tr '\n' ' ')
		echo "$m shows partitions $parts"
		[ "$(wc -w <<<"$parts")" -eq 2 ]
	done
	[ "$(cat "$BATS_TEST_TMPDIR"/c?.out | sort)" = $'0 x0\n1 x1\n2 x2\n3 x3' ]
	# the server holds one member file for each
	[ "$(find "$MQ_DIR/groups/G/members" -type f -name '[0-9]*' | wc -l)" -eq 2 ]
}

@test "a remote consumer killed with -9: the other takes over its partitions after the session timeout" {
	two_members
	kill -9 "$c1_pid"
	wait "$c1_pid" || true
	wait_for split_in 1
	for p in 0 1 2 3; do
		printf 'y%s\n' "$p" | mq-produce -p "$p" t
	done
	wait_for has_lines "$BATS_TEST_TMPDIR/c2.out" 4
	[ "$(grep y "$BATS_TEST_TMPDIR/c2.out" | sort)" = $'0 y0\n1 y1\n2 y2\n3 y3' ]
	[ "$(find "$MQ_DIR/groups/G/members" -type f -name '[0-9]*' | wc -l)" -eq 1 ]
	kill -0 "$c2_pid"
}

@test "offsets committed by a remote group consumer show in local mq-lag" {
	mq-topic create t -p 2
	seq 5 | mq-produce -p 0 t
	seq 3 | mq-produce -p 1 t
	serve
	run --separate-stderr mq-consume -g G -e -c 6 "$URL/t"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 6 ]
	# COMMITTED of both partitions add up to the 6 records shown
	run mq-lag G
	[ "$status" -eq 0 ]
	[ "$(awk '$1 == "G" && $2 == "t" { s += $4 } END { print s }' <<<"$output")" = 6 ]
	[ "$(awk '$1 == "G" { print $2, $3, $5 }' <<<"$output" | sort)" = $'t 0 5\nt 1 3' ]
	req GET /v1/groups/G/offsets/t
	[ "$code" = 200 ]
	[ "$(json 'sum(p["offset"] for p in j["partitions"])')" = 6 ]
	req GET /v1/groups
	[ "$body" = '{"groups":["G"]}' ]
	# the rest, and the group is then caught up here as there
	mq-consume -g G -e "$URL/t" >/dev/null
	run mq-lag --max-lag 0 G
	[ "$status" -eq 0 ]
}

# ---- tokens -------------------------------------------------------------------

# tokens [--log]: a server with a token file of a read-write, a read-only
# and a pattern-limited token; topics pub1 and secret with a record each.
tokens() {
	cat >"$BATS_TEST_TMPDIR/tokens" <<-'EOF'
		# mq-serve tokens
		rw-0123456789 rw
		ro-0123456789 ro

		pub-0123456789 rw pub* other
	EOF
	mq-topic create pub1
	mq-topic create secret
	printf 'p\n' | mq-produce pub1
	printf 's\n' | mq-produce secret
	serve "$@" --token-file "$BATS_TEST_TMPDIR/tokens"
}

@test "with a token file, a request without a token is 401 with WWW-Authenticate: Bearer" {
	tokens
	for p in /v1/topics /v1/topics/pub1 '/v1/topics/pub1/partitions/0/batches?offset=0' /v1/lag /v1/groups /metrics; do
		req GET "$p"
		[ "$code" = 401 ]
		[ "$(header WWW-Authenticate)" = Bearer ]
		[ "$body" = '{"error":"unauthorized"}' ]
	done
	req PUT /v1/topics/new
	[ "$code" = 401 ]
	[ ! -e "$MQ_DIR/topics/new" ]
	# /healthz needs none
	still_serving
}

@test "a bad token is 401" {
	tokens
	for h in 'Bearer nope' 'Bearer rw-012345678' 'Bearer rw-01234567890' 'Bearer ' 'Basic cnctMDEyMzQ1Njc4OQ==' \
		'rw-0123456789' 'Bearer ro'; do
		req GET /v1/topics -H "Authorization: $h"
		echo "$h: $code"
		[ "$code" = 401 ]
		[ "$(header WWW-Authenticate)" = Bearer ]
	done
	req GET /v1/topics -H 'Authorization: Bearer rw-0123456789'
	[ "$code" = 200 ]
}

@test "a 401 answer says nothing of topics, tokens or paths" {
	tokens
	local p h ref
	req GET /v1/topics/secret
	ref=$(cat "$BATS_TEST_TMPDIR/body")
	[ "$ref" = '{"error":"unauthorized"}' ]
	for p in /v1/topics/secret /v1/topics/nope /v1/topics/pub1/partitions/9 /v1/groups/G/offsets/secret; do
		for h in 'X-No: token' 'Authorization: Bearer wrong' 'Authorization: Bearer ro-0123456789x'; do
			req GET "$p" -H "$h"
			[ "$code" = 401 ]
			[ "$(cat "$BATS_TEST_TMPDIR/body")" = "$ref" ]
			run ! grep -qi -e secret -e 0123456789 -e nope -e "$MQ_DIR" "$BATS_TEST_TMPDIR/body" "$BATS_TEST_TMPDIR/headers"
		done
	done
}

@test "a read-only token reads, and producing, creating or deleting with it is 403" {
	tokens
	local ro=(-H 'Authorization: Bearer ro-0123456789')
	req GET /v1/topics "${ro[@]}"
	[ "$code" = 200 ]
	[ "$body" = '{"topics":["pub1","secret"]}' ]
	req GET '/v1/topics/secret/partitions/0/batches?offset=0' "${ro[@]}"
	[ "$code" = 200 ]
	cmp "$BATS_TEST_TMPDIR/body" "$(segment secret 0)"
	req POST /v1/topics/pub1/records "${ro[@]}" -H 'Content-Type: text/plain' --data-binary x
	[ "$code" = 403 ]
	[ "$body" = '{"error":"forbidden"}' ]
	req PUT /v1/topics/new "${ro[@]}"
	[ "$code" = 403 ]
	req DELETE /v1/topics/pub1 "${ro[@]}"
	[ "$code" = 403 ]
	[ ! -e "$MQ_DIR/topics/new" ] && [ -d "$MQ_DIR/topics/pub1" ]
	[ "$(count_records pub1)" -eq 1 ]
	run --separate-stderr env MQ_TOKEN=ro-0123456789 mq-produce "$URL/pub1" <<<x
	[ "$status" -eq 6 ]
	[[ "$stderr" == "mq-produce: $URL: POST /v1/topics/pub1/"*": HTTP 403 forbidden" ]]
}

@test "a token limited to topic patterns: other topics are 403, and /v1/topics lists only its own" {
	tokens
	mq-topic create pub2
	local pub=(-H 'Authorization: Bearer pub-0123456789')
	req GET /v1/topics "${pub[@]}"
	[ "$code" = 200 ]
	[ "$body" = '{"topics":["pub1","pub2"]}' ]
	req GET /v1/topics/pub1 "${pub[@]}"
	[ "$code" = 200 ]
	req POST /v1/topics/pub2/records "${pub[@]}" -H 'Content-Type: text/plain' --data-binary x
	[ "$code" = 200 ]
	# an existing topic and a missing one look the same
	for p in /v1/topics/secret /v1/topics/secret2 '/v1/topics/secret/partitions/0/batches?offset=0' \
		/v1/topics/secret/partitions/0 /v1/groups/G/offsets/secret; do
		req GET "$p" "${pub[@]}"
		echo "$p: $code $body"
		[ "$code" = 403 ]
		[ "$body" = '{"error":"forbidden"}' ]
	done
	req PUT /v1/topics/other "${pub[@]}"
	[ "$code" = 201 ]
	req PUT /v1/topics/notpub "${pub[@]}"
	[ "$code" = 403 ]
	req DELETE /v1/topics/secret "${pub[@]}"
	[ "$code" = 403 ]
	req POST /v1/topics/secret/records "${pub[@]}" -H 'Content-Type: text/plain' --data-binary x
	[ "$code" = 403 ]
	[ -d "$MQ_DIR/topics/secret" ] && [ ! -e "$MQ_DIR/topics/notpub" ]
	[ "$(count_records secret)" -eq 1 ]
	run --separate-stderr env MQ_TOKEN=pub-0123456789 mq-consume -e "$URL/secret"
	[ "$status" -eq 6 ]
	[[ "$stderr" == *"HTTP 403 forbidden" ]]
}

@test "a token limited to topic patterns sees nothing of other topics in /v1/lag and /metrics" {
	tokens
	mq-consume -g G -e secret >/dev/null
	local pub=(-H 'Authorization: Bearer pub-0123456789')
	req GET /v1/lag "${pub[@]}"
	[ "$code" = 200 ]
	[[ "$body" != *secret* ]]
	req GET /metrics "${pub[@]}"
	[ "$code" = 200 ]
	[[ "$body" != *secret* ]]
}

@test "POST /v1/wait for a topic outside the token's patterns is 403, whatever failed before" {
	tokens
	local pub=(-H 'Authorization: Bearer pub-0123456789')
	req POST /v1/wait "${pub[@]}" -d '{"partitions":[{"topic":"secret","partition":0,"offset":0}]}'
	[ "$code" = 403 ]
	# after any request that failed with a usage error
	req GET /v1/topics/pub1/partitions/x "${pub[@]}"
	[ "$code" = 400 ]
	req POST /v1/wait "${pub[@]}" -d '{"partitions":[{"topic":"secret","partition":0,"offset":0}]}'
	[ "$code" = 403 ]
	[ "$body" = '{"error":"forbidden"}' ]
}

@test "clients with MQ_TOKEN, --token-file or MQ_TOKEN_FILE get through; without a token they exit 6 with HTTP 401" {
	tokens
	run --separate-stderr mq-consume -e "$URL/pub1"
	[ "$status" -eq 6 ]
	[ "$stderr" = "mq-consume: $URL: GET /v1/topics/pub1: HTTP 401 unauthorized" ]
	run --separate-stderr env MQ_TOKEN=rw-0123456789 mq-consume -e "$URL/secret"
	[ "$status" -eq 0 ]
	[ "$output" = s ]
	# the first word of the first line that is no comment: the server's own file will do
	run --separate-stderr mq-produce --token-file "$BATS_TEST_TMPDIR/tokens" "$URL/pub1" <<<q
	[ "$status" -eq 0 ]
	run --separate-stderr mq-consume --token-file "$BATS_TEST_TMPDIR/tokens" -e "$URL/pub1"
	[ "$status" -eq 0 ]
	[ "$output" = $'p\nq' ]
	printf '  # mine\n\npub-0123456789\n' >"$BATS_TEST_TMPDIR/mine"
	run --separate-stderr env MQ_TOKEN_FILE="$BATS_TEST_TMPDIR/mine" mq-topic list "$URL"
	[ "$status" -eq 0 ]
	[ "$output" = pub1 ]
	run --separate-stderr env MQ_TOKEN=pub-0123456789 mq-lag "$URL"
	[ "$status" -eq 0 ]
	run --separate-stderr mq-topic --token-file "$BATS_TEST_TMPDIR/none" list "$URL"
	[ "$status" -eq 3 ]
	[ "$stderr" = "mq-topic: cannot read token file '$BATS_TEST_TMPDIR/none': No such file or directory" ]
}

@test "--read-only refuses produce, create, alter, delete and group commits with 403, and serves reads" {
	mq-topic create t
	printf 'a\nb\n' | mq-produce t
	serve --read-only
	req POST /v1/topics/t/records -H 'Content-Type: text/plain' --data-binary x
	[ "$code" = 403 ]
	[ "$(json 'j["error"]')" = "read-only server" ]
	req PUT /v1/topics/n
	[ "$code" = 403 ]
	req PATCH /v1/topics/t -d '{"config":{"retention.ms":"1"}}'
	[ "$code" = 403 ]
	req DELETE /v1/topics/t
	[ "$code" = 403 ]
	req POST /v1/groups/G/offsets -d '{"commits":[{"topic":"t","partition":0,"offset":1}]}'
	[ "$code" = 403 ]
	req POST /v1/groups/G/members/m -d '{"partitions":[{"topic":"t","partition":0}]}'
	[ "$code" = 403 ]
	[ ! -e "$MQ_DIR/topics/n" ] && [ ! -e "$MQ_DIR/groups" ]
	grep -qx 'retention.ms=604800000' "$MQ_DIR/topics/t/topic.conf"
	[ "$(count_records t)" -eq 2 ]
	# reads
	req GET /v1/topics
	[ "$code" = 200 ]
	req GET /v1/topics/t
	[ "$code" = 200 ]
	req GET /v1/lag
	[ "$code" = 200 ]
	run --separate-stderr mq-consume -e "$URL/t"
	[ "$status" -eq 0 ]
	[ "$output" = $'a\nb' ]
	run --separate-stderr mq-produce "$URL/t" <<<x
	[ "$status" -eq 6 ]
	[[ "$stderr" == *"HTTP 403 read-only server" ]]
	run --separate-stderr mq-consume -g G -e "$URL/t"
	[ "$status" -eq 6 ]
	[ -z "$output" ]
	[[ "$stderr" == *"HTTP 403 read-only server" ]]
}

@test "a group consumer refused by the server names the request that was refused" {
	mq-topic create t
	serve --read-only
	run --separate-stderr mq-consume -g G -e "$URL/t"
	[ "$status" -eq 6 ]
	[[ "$stderr" == *"POST /v1/groups/G/members/"*"HTTP 403 read-only server" ]]
}

@test "concurrent failing requests each get their own error message" {
	mq-topic create t
	serve
	run "$PYTHON" "$RAW" errors "$PORT" 16 300
	[ "$status" -eq 0 ]
	[ "$output" = "mismatches 0 of 4800" ]
}

# log_lines N: the request log in serve.err holds N lines.
log_lines() {
	[ "$(grep -c '^127\.0\.0\.1 ' "$BATS_TEST_TMPDIR/serve.err")" -ge "$1" ]
}

@test "without -q, a line a request on stderr in common log format, tokens shown by their first 4 characters" {
	tokens --log
	req GET /v1/topics -H 'Authorization: Bearer rw-0123456789'
	[ "$code" = 200 ]
	local size
	size=$(file_size "$BATS_TEST_TMPDIR/body")
	req GET /v1/topics/secret
	[ "$code" = 401 ]
	wait_for log_lines 2
	run grep '^127' "$BATS_TEST_TMPDIR/serve.err"
	[ "${#lines[@]}" -eq 2 ]
	local date='\[[0-3][0-9]/[A-Z][a-z][a-z]/[0-9]{4}:[0-2][0-9]:[0-5][0-9]:[0-6][0-9] \+0000\]'
	[[ "${lines[0]}" =~ ^127\.0\.0\.1\ -\ rw-0\.\.\.\ $date\ \"GET\ /v1/topics\ HTTP/1\.1\"\ 200\ $size\ [0-9]+\.[0-9]{3}$ ]]
	[[ "${lines[1]}" =~ ^127\.0\.0\.1\ -\ -\ $date\ \"GET\ /v1/topics/secret\ HTTP/1\.1\"\ 401\ [0-9]+\ [0-9]+\.[0-9]{3}$ ]]
	run ! grep -q 0123456789 "$BATS_TEST_TMPDIR/serve.err"
}

@test "the request log counts the bytes of every answer" {
	tokens --log
	req GET /healthz
	req GET /v1/topics
	[ "$code" = 401 ]
	wait_for log_lines 2
	run grep '^127' "$BATS_TEST_TMPDIR/serve.err"
	[[ "${lines[0]}" == *'"GET /healthz HTTP/1.1" 200 3 '* ]]
	[[ "${lines[1]}" == *'"GET /v1/topics HTTP/1.1" 401 '"$(file_size "$BATS_TEST_TMPDIR/body")"' '* ]]
}

# ---- hostile input ----------------------------------------------------------

# outside: every file and directory under $BATS_TEST_TMPDIR but $MQ_DIR and
# the last answer.
outside() {
	find "$BATS_TEST_TMPDIR" -path "$MQ_DIR" -prune -o -print | grep -v -e '/body$' -e '/headers$' | sort
}

@test "path traversal in a name is 400 and touches nothing outside the data directory" {
	mkdir -p "$BATS_TEST_TMPDIR/sentinel/topics/etc"
	echo keep >"$BATS_TEST_TMPDIR/sentinel/file"
	mq-topic create t
	serve
	local p m before
	before=$(outside)
	for p in '/v1/topics/..%2f..%2fetc' '/v1/topics/..%2F..%2Fsentinel' '/v1/topics/%2e%2e' '/v1/topics/%2E%2E/partitions/0' \
		'/v1/topics/.%2e/records' '/v1/topics/%2e' '/v1/topics/%2e%2e%2f%2e%2e%2fsentinel' \
		'/v1/groups/..%2f..%2fsentinel/offsets' '/v1/groups/%2e%2e/members/m' '/v1/groups/G/members/%2e%2e' \
		"/v1/topics/$(printf 'a%.0s' {1..250})"; do
		for m in GET PUT PATCH DELETE POST; do
			req "$m" "$p" -d '{}'
			echo "$m $p: $code $body"
			[ "$code" = 400 ]
			[[ "$body" == '{"error":"invalid '*'","class":2}' ]]
		done
	done
	req POST /v1/groups/G/offsets -d '{"commits":[{"topic":"..","partition":0,"offset":1}]}'
	[ "$code" = 400 ]
	req POST /v1/wait -d '{"partitions":[{"topic":"../sentinel","partition":0,"offset":0}]}'
	[ "$code" = 400 ]
	[ "$(outside)" = "$before" ]
	[ "$(cat "$BATS_TEST_TMPDIR/sentinel/file")" = keep ]
	[ "$(mq-topic list)" = t ]
	[ ! -e "$MQ_DIR/groups" ]
	still_serving
}

@test "an encoded slash in a name is 400, never a path separator" {
	mq-topic create t
	serve
	req GET /v1/topics/a%2fb
	[ "$code" = 400 ]
	req POST /v1/topics/t%2frecords -H 'Content-Type: text/plain' --data-binary x
	[ "$code" = 400 ]
	[ "$(count_records t)" -eq 0 ]
	req GET /v1/topics/t%2Fpartitions%2F0
	[ "$code" = 400 ]
}

@test "a NUL byte (%00) in a name is 400 and acts on no other topic" {
	mq-topic create x
	printf 'keep\n' | mq-produce x
	serve
	req DELETE /v1/topics/x%00y
	[ "$code" = 400 ]
	[ "$(count_records x)" -eq 1 ]
	req PUT /v1/topics/z%00y
	[ "$code" = 400 ]
	[ ! -e "$MQ_DIR/topics/z" ]
}

@test "a body over --max-body is 413 and nothing is appended" {
	mq-topic create t
	serve --max-body 1K
	head -c 2000 /dev/zero | tr '\0' x >"$BATS_TEST_TMPDIR/big"
	req POST /v1/topics/t/records -H 'Content-Type: text/plain' --data-binary "@$BATS_TEST_TMPDIR/big"
	[ "$code" = 413 ]
	[ "$(json 'j["error"]')" = "request body too large" ]
	# without a Content-Length too
	req POST /v1/topics/t/records -H 'Content-Type: text/plain' -H 'Transfer-Encoding: chunked' \
		--data-binary "@$BATS_TEST_TMPDIR/big"
	[ "$code" = 413 ]
	# and exactly the limit is fine
	head -c 1024 /dev/zero | tr '\0' y >"$BATS_TEST_TMPDIR/fits"
	[ "$(count_records t)" -eq 0 ]
	req POST /v1/topics/t/records -H 'Content-Type: text/plain' --data-binary "@$BATS_TEST_TMPDIR/fits"
	[ "$code" = 200 ]
	[ "$(mq-consume -e -f '%S\n' t)" = 1024 ]
	still_serving
}

@test "malformed chunked encoding is answered with an error or a closed connection, and the server goes on" {
	mq-topic create t
	serve --timeout 1s
	local head=$'POST /v1/topics/t/records HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n'
	local chunks
	for chunks in $'zz\r\nhello\r\n0\r\n\r\n' $'5\r\nhelloXXXX\r\n0\r\n\r\n' $'FFFFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n' \
		$'-5\r\nhello\r\n0\r\n\r\n' $'5\r\nhel'; do
		printf '%s%s' "$head" "$chunks" >"$BATS_TEST_TMPDIR/req"
		run "$PYTHON" "$RAW" send "$PORT" "$BATS_TEST_TMPDIR/req"
		echo "${chunks@Q}: $output"
		[ "$status" -eq 0 ]
		[[ "$output" =~ ^(status\ [45][0-9][0-9]|closed)$ ]]
		[ "$(count_records t)" -eq 0 ]
		still_serving
	done
}

@test "garbage bytes are answered with an error or a closed connection, and the server goes on" {
	# a request line with NULs is neither answered nor closed by
	# libmicrohttpd: the --timeout watchdog closes it
	serve --timeout 1s
	local i
	head -c 8192 /dev/urandom >"$BATS_TEST_TMPDIR/g1"
	printf '\0\1\2GET / HTTP/1.1\r\n\r\n' >"$BATS_TEST_TMPDIR/g2"
	printf 'GET /healthz HTTP/9.9\r\n\r\n' >"$BATS_TEST_TMPDIR/g3"
	{ printf 'GET /'; head -c 100000 /dev/zero | tr '\0' a; printf ' HTTP/1.1\r\n\r\n'; } >"$BATS_TEST_TMPDIR/g4"
	{ printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nX: '; head -c 200000 /dev/zero | tr '\0' a; printf '\r\n\r\n'; } >"$BATS_TEST_TMPDIR/g5"
	printf '\r\n\r\n\r\n\r\n' >"$BATS_TEST_TMPDIR/g6"
	for i in 1 2 3 4 5 6; do
		run "$PYTHON" "$RAW" send "$PORT" "$BATS_TEST_TMPDIR/g$i"
		echo "g$i: $output"
		[ "$status" -eq 0 ]
		[[ "$output" =~ ^(status\ [45][0-9][0-9]|closed)$ ]]
		still_serving
	done
}

@test "slowloris: headers trickling in slower than --timeout lose their connection, and others are served meanwhile" {
	serve --timeout 1s
	start slow "$PYTHON" "$RAW" trickle "$PORT" 0.3
	local i
	for i in 1 2 3; do
		still_serving
		sleep 0.2
	done
	wait "$slow_pid"
	run cat "$BATS_TEST_TMPDIR/slow.out"
	[[ "$output" =~ ^closed\ after\ [0-9]+\ bytes$ ]]
	still_serving
}

@test "1000 idle connections held open: a normal request still succeeds" {
	ulimit -n 4096 2>/dev/null || ulimit -n "$(ulimit -Hn)"
	[ "$(ulimit -n)" -ge 1100 ] || skip "cannot raise the open file limit to 1100"
	mq-topic create t
	serve
	start hold "$PYTHON" "$RAW" hold "$PORT" 1000 "$BATS_TEST_TMPDIR/held"
	wait_for test -f "$BATS_TEST_TMPDIR/held"
	[ "$(cat "$BATS_TEST_TMPDIR/held")" = "held 1000" ]
	req GET /healthz -m 20
	[ "$code" = 200 ]
	req POST /v1/topics/t/records -m 20 -H 'Content-Type: text/plain' --data-binary $'still here\n'
	[ "$code" = 200 ]
	[ "$(mq-consume -e t)" = "still here" ]
}

@test "a corrupt raw batch (one bit flipped) is 422 and nothing is appended" {
	mq-topic create src
	printf 'a\nb\nc\n' | mq-produce src
	mq-consume -e --raw src >"$BATS_TEST_TMPDIR/raw"
	cp "$BATS_TEST_TMPDIR/raw" "$BATS_TEST_TMPDIR/bad"
	# a bit of the first record's value
	"$PYTHON" -c '
import sys
f = open(sys.argv[1], "r+b"); b = bytearray(f.read()); b[-3] ^= 1; f.seek(0); f.write(b)' "$BATS_TEST_TMPDIR/bad"
	mq-topic create t
	serve
	req POST /v1/topics/t/partitions/0/records -H 'Content-Type: application/vnd.kafka.batch' --data-binary "@$BATS_TEST_TMPDIR/bad"
	[ "$code" = 422 ]
	[ "$(json 'j["class"]')" = 4 ]
	[[ "$(json 'j["error"]')" == *"CRC mismatch"* ]]
	# a good batch followed by a bad one: neither
	cat "$BATS_TEST_TMPDIR/raw" "$BATS_TEST_TMPDIR/bad" >"$BATS_TEST_TMPDIR/both"
	req POST /v1/topics/t/partitions/0/records -H 'Content-Type: application/vnd.kafka.batch' --data-binary "@$BATS_TEST_TMPDIR/both"
	[ "$code" = 422 ]
	# truncated
	head -c 50 "$BATS_TEST_TMPDIR/raw" >"$BATS_TEST_TMPDIR/short"
	req POST /v1/topics/t/partitions/0/records -H 'Content-Type: application/vnd.kafka.batch' --data-binary "@$BATS_TEST_TMPDIR/short"
	[ "$code" = 422 ]
	[ "$(count_records t)" -eq 0 ]
	[ ! -s "$(segment t 0)" ]
	run --separate-stderr mq-produce --raw "$URL/t" <"$BATS_TEST_TMPDIR/bad"
	[ "$status" -ne 0 ]
	[ "$(count_records t)" -eq 0 ]
	req POST /v1/topics/t/partitions/0/records -H 'Content-Type: application/vnd.kafka.batch' --data-binary "@$BATS_TEST_TMPDIR/raw"
	[ "$code" = 200 ]
	[ "$(mq-consume -e t)" = $'a\nb\nc' ]
}

# ---- durability and shutdown ------------------------------------------------

@test "kill -9 of mq-serve while clients produce: every acknowledged record is in the log, and verify is clean" {
	mq-topic create t
	serve
	start w1 "$PYTHON" "$RAW" produce "$PORT" t "$BATS_TEST_TMPDIR/acks1"
	start w2 "$PYTHON" "$RAW" produce "$PORT" t "$BATS_TEST_TMPDIR/acks2"
	wait_for has_lines "$BATS_TEST_TMPDIR/acks1" 40
	kill -9 "$SERVE_PID"
	wait "$w1_pid"
	wait "$w2_pid"
	# "OFFSET VALUE" of every acknowledged record
	awk '{ for (i = 0; i < $2; i++) print $1 + i, $3 + i }' "$BATS_TEST_TMPDIR"/acks? | sort >"$BATS_TEST_TMPDIR/acked"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/acked")" -ge 2000 ]
	mq-consume -e -f '%o %s\n' t | sort >"$BATS_TEST_TMPDIR/log"
	[ -z "$(comm -23 "$BATS_TEST_TMPDIR/acked" "$BATS_TEST_TMPDIR/log")" ]
	# dense offsets from 0
	[ "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/log" | sort -n | uniq | wc -l)" -eq "$(wc -l <"$BATS_TEST_TMPDIR/log")" ]
	[ "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/log" | sort -n | tail -n 1)" -eq $(($(wc -l <"$BATS_TEST_TMPDIR/log") - 1)) ]
	run --separate-stderr mq-topic verify t
	[ "$status" -eq 0 ]
	[[ "$output" == *": ok" ]]
	# and it goes on where it stopped
	end=$(wc -l <"$BATS_TEST_TMPDIR/log")
	serve
	req POST /v1/topics/t/records -H 'Content-Type: text/plain' --data-binary $'after\n'
	[ "$code" = 200 ]
	[ "$(json 'j["results"][0]["offset"]')" = "$end" ]
}

# connections_at_least N: /metrics counts N open connections or more (the
# one asking included).
connections_at_least() {
	local n
	n=$(curl -s "$URL/metrics" | sed -n 's/^mq_serve_connections \([0-9]*\)$/\1/p')
	[ -n "$n" ] && [ "$n" -ge "$1" ]
}

@test "SIGTERM: a long poll in flight is answered, mq-serve exits 0 and its locks are released" {
	mq-topic create t
	printf 'a\n' | mq-produce t
	serve
	# a remote group member that owns t/0 through the server
	req POST /v1/groups/G/members/m -d '{"partitions":[{"topic":"t","partition":0}],"session_timeout_ms":60000}'
	[ "$code" = 200 ]
	[ "$body" = '{"assigned":[{"topic":"t","partition":0}]}' ]
	run ! flock -n "$MQ_DIR/groups/G/topics/t/0.lock" true
	start lp curl -s -D "$BATS_TEST_TMPDIR/lp.headers" -o "$BATS_TEST_TMPDIR/lp.body" -w '%{http_code}' \
		"$URL/v1/topics/t/partitions/0/batches?offset=1&wait_ms=15000"
	# the long poll is in: two connections (it and this one)
	wait_for connections_at_least 2
	sleep 0.3
	kill -TERM "$SERVE_PID"
	rc=0
	wait "$SERVE_PID" || rc=$?
	[ "$rc" -eq 0 ]
	wait "$lp_pid"
	[ "$(cat "$BATS_TEST_TMPDIR/lp.out")" = 200 ]
	[ ! -s "$BATS_TEST_TMPDIR/lp.body" ]
	grep -qi '^X-Mq-Log-End: 1' "$BATS_TEST_TMPDIR/lp.headers"
	# locks and member files released
	flock -n "$MQ_DIR/groups/G/topics/t/0.lock" true
	[ -z "$(ls "$MQ_DIR/groups/G/members")" ]
	printf 'b\n' | timeout 10 mq-produce t
	run timeout 10 mq-consume -g G -e t
	[ "$status" -eq 0 ]
	[ "$output" = $'a\nb' ]
}

@test "--stdio answers the requests on standard input on standard output, and exits 0 at its end" {
	mq-topic create t
	run --separate-stderr timeout 10 mq-serve -d "$MQ_DIR" --stdio \
		< <(printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/topics HTTP/1.1\r\nHost: x\r\n\r\n')
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "$(grep -c '^HTTP/1.1 200 OK' <<<"$output")" -eq 2 ]
	[[ "$output" == *$'\r\n\r\nok\n'* ]]
	[[ "$output" == *'{"topics":["t"]}' ]]
}

@test "--stdio on a socket (inetd, systemd's Accept=yes): served without a relay; exits 0 when the peer closes" {
	mq-topic create t
	printf 'a\n' | mq-produce t
	run --separate-stderr timeout 10 "$PYTHON" -c '
import socket, subprocess, sys
a, b = socket.socketpair()
p = subprocess.Popen(sys.argv[1:], stdin=b, stdout=b)
b.close()
a.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
got = b""
while b"ok\n" not in got:
    got += a.recv(4096)
a.sendall(b"GET /v1/topics HTTP/1.1\r\nHost: x\r\n\r\n")
while b"{\"topics\":[\"t\"]}" not in got:
    got += a.recv(4096)
sys.stdout.write(got.decode())
a.close()
sys.exit(p.wait(timeout=5))' mq-serve -d "$MQ_DIR" --stdio
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "$(grep -c '^HTTP/1.1 200 OK' <<<"$output")" -eq 2 ]
}

@test "--max-connections N: a connection past N is closed, and requests are served again once others go" {
	serve --max-connections 3
	start hold "$PYTHON" "$RAW" hold "$PORT" 3 "$BATS_TEST_TMPDIR/held"
	wait_for test -f "$BATS_TEST_TMPDIR/held"
	[ "$(cat "$BATS_TEST_TMPDIR/held")" = "held 3" ]
	req GET /healthz -m 10
	[ "$code" = 000 ]
	kill "$hold_pid"
	wait "$hold_pid" || true
	wait_for still_serving
}

# ---- mq-serve's own usage ---------------------------------------------------

@test "mq-serve: a bad -l is a usage error (exit 2) naming it" {
	local l
	for l in foo 127.0.0.1:99999 127.0.0.1: 127.0.0.1:x 1.2.3:80 '[::1:80' 'localhost:80'; do
		run --separate-stderr mq-serve -d "$MQ_DIR" -l "$l"
		echo "$l: $status $stderr"
		[ "$status" -eq 2 ]
		[ -z "$output" ]
		[[ "$stderr" == "mq-serve: invalid "*"'$l'"* ]]
	done
}

@test "mq-serve: a bad --max-body, --timeout or --max-connections is a usage error (exit 2)" {
	run --separate-stderr mq-serve --max-body 12Q
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-serve: invalid --max-body '12Q'"* ]]
	run --separate-stderr mq-serve --max-body 100
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-serve: invalid --max-body '100'"* ]]
	run --separate-stderr mq-serve --timeout 5
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-serve: invalid --timeout '5'"* ]]
	run --separate-stderr mq-serve --max-connections 0
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-serve: invalid --max-connections '0'"* ]]
}

@test "mq-serve: an unexpected argument or an unknown option is a usage error (exit 2)" {
	run --separate-stderr mq-serve -d "$MQ_DIR" extra
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-serve: unexpected argument 'extra'"* ]]
	run --separate-stderr mq-serve --bogus
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"'--bogus'"* ]]
	run --separate-stderr mq-serve -d http://127.0.0.1:1
	[ "$status" -eq 2 ]
	[[ "$stderr" == *"cannot serve a remote address"* ]]
}

@test "mq-serve --help prints the usage on stdout and exits 0" {
	run --separate-stderr mq-serve --help
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[[ "${lines[0]}" == "usage: mq-serve "*"-l ADDR:PORT"* ]]
	[[ "$output" == *"--stdio"* ]]
	run --separate-stderr mq-serve -h
	[ "$status" -eq 0 ]
}

@test "mq-serve: a missing token file exits 3 naming the file, a malformed one exits 2 naming the line" {
	run --separate-stderr mq-serve -d "$MQ_DIR" -l 127.0.0.1:0 --token-file "$BATS_TEST_TMPDIR/none"
	[ "$status" -eq 3 ]
	[ "$stderr" = "mq-serve: cannot read token file '$BATS_TEST_TMPDIR/none': No such file or directory" ]
	printf '# ok\ntok rw\ntok2 admin\n' >"$BATS_TEST_TMPDIR/tokens"
	run --separate-stderr mq-serve -d "$MQ_DIR" -l 127.0.0.1:0 --token-file "$BATS_TEST_TMPDIR/tokens"
	[ "$status" -eq 2 ]
	[[ "$stderr" == "mq-serve: token file '$BATS_TEST_TMPDIR/tokens' line 3: "* ]]
}
