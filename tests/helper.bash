# tests/helper.bash: what every bats suite shares (`load helper`).
#
# Each test runs in its own data directory, $MQ_DIR, a fresh directory
# under the test's $BATS_TEST_TMPDIR, with the programs just built
# (bin/) first on PATH.  A suite that needs its own setup or teardown
# defines them and calls mq_setup / mq_teardown from there.
#
# MQ_TEST_TRANSPORT=http or ssh runs the programs against $MQ_DIR
# through mq-serve instead (tests/run does so for the suites of
# mq-produce, mq-consume and mq-lag): in http mode mq_setup starts an
# `mq-serve -q -d $MQ_DIR -l 127.0.0.1:0` for the test, in ssh mode the
# address is ssh://localhost$MQ_DIR through the fake ssh of tests/bin.
# Either way tests/remote comes first on PATH: its mq-produce,
# mq-consume, mq-lag and mq-topic run the real ones with the data
# directory turned into its address (tests/remote/wrapper), so that
# $MQ_DIR in the test still names the directory on disk.  $MQ_TEST_ADDR
# is the address (empty in local mode), $MQ_TEST_BIN the real programs;
# mq_teardown stops the servers and fails unless they are gone.  A
# command run with the fake clock MQ_NOW_MS gets a server with the same
# clock (tests/remote/transport.bash), as the fake ssh gives it too.
#
# Helpers:
#   local_only REASON          skip the test unless in local mode: for
#                              what cannot or must not work remotely,
#                              REASON saying which
#   not_over_http REASON       skip the test in http mode, where the
#                              server does not share the environment a
#                              command runs with (an LD_PRELOAD shim);
#                              the fake ssh passes it on to the
#                              mq-serve --stdio it starts
#   on_server PROG ARGS...     run PROG of bin/ on $MQ_DIR itself, in
#                              every mode: what one runs where the data
#                              is (mq-consume --reset-offsets refuses an
#                              address)
#   need_kafka                 skip the test unless python3-kafka is there
#   kafka_segment DIR OPTS...  write a Kafka segment with kafka-python's
#                              encoder (tests/kafka_segment.py; see its
#                              usage); call it directly, not under `run`,
#                              so that it can skip the test
#   pdir TOPIC [P]             path of partition P (default 0) of TOPIC
#   segment TOPIC BASE [EXT]   path of a segment file (default ext: log)
#   batch_pos FILE N           byte position of the N-th batch (from 1)
#                              of a .log, read from the batch lengths
#   be32 FILE POS              the big-endian u32 at POS of FILE
#   flip_byte FILE POS         invert every bit of the byte at POS
#   file_size FILE             size in bytes
#   wait_until SECS CMD...     run CMD every 50 ms until it succeeds; fails
#                              when SECS went by first
#   wait_for CMD...            the same with 20 s
#   now_ms                     the time in epoch milliseconds

bats_require_minimum_version 1.5.0

# Debian's python3, which has the kafka module; another python may come
# first on PATH.  MQ_TEST_PYTHON overrides it.
PYTHON=${MQ_TEST_PYTHON:-/usr/bin/python3}

MQ_TEST_TRANSPORT=${MQ_TEST_TRANSPORT:-local}
export MQ_TEST_TRANSPORT
# shellcheck source=tests/remote/transport.bash
. "$BATS_TEST_DIRNAME/remote/transport.bash"

mq_setup() {
	MQ_TEST_BIN=$(cd "$BATS_TEST_DIRNAME/../bin" && pwd)
	PATH="$MQ_TEST_BIN:$PATH"
	MQ_DIR="$BATS_TEST_TMPDIR/data"
	MQ_TEST_ADDR=
	export PATH MQ_DIR MQ_TEST_BIN MQ_TEST_ADDR
	rm -rf "$MQ_DIR"
	mkdir -p "$MQ_DIR"
	case $MQ_TEST_TRANSPORT in
	local) return 0 ;;
	http) ;;
	ssh) PATH="$BATS_TEST_DIRNAME/bin:$PATH" ;;
	*)
		echo "MQ_TEST_TRANSPORT: expected local, http or ssh, not '$MQ_TEST_TRANSPORT'" >&2
		return 1
		;;
	esac
	MQ_TEST_SERVERS="$BATS_TEST_TMPDIR/servers"
	MQ_TEST_DIR=$MQ_DIR
	PATH="$BATS_TEST_DIRNAME/remote:$PATH"
	export MQ_TEST_SERVERS MQ_TEST_DIR
	MQ_TEST_ADDR=$(transport_addr "$MQ_DIR")
}

mq_teardown() {
	local rc=0
	if [ "$MQ_TEST_TRANSPORT" != local ]; then
		transport_stop || rc=1
	fi
	if [ -n "$MQ_DIR" ] && [ -d "$MQ_DIR" ]; then
		chmod -R u+rwx "$MQ_DIR" 2>/dev/null
		rm -rf "$MQ_DIR"
	fi
	return "$rc"
}

setup() { mq_setup; }
teardown() { mq_teardown; }

local_only() {
	[ "$MQ_TEST_TRANSPORT" = local ] || skip "local only: $1"
}

not_over_http() {
	[ "$MQ_TEST_TRANSPORT" != http ] || skip "not over http: $1"
}

on_server() {
	local prog=$1
	shift
	"$MQ_TEST_BIN/$prog" "$@"
}

need_kafka() {
	"$PYTHON" -c 'import kafka.record.default_records' 2>/dev/null ||
		skip "python3-kafka is not installed (Debian: apt-get install python3-kafka)"
}

kafka_segment() {
	need_kafka
	"$PYTHON" "$BATS_TEST_DIRNAME/kafka_segment.py" "$@" >/dev/null
	local rc=$?
	if [ "$rc" -eq 3 ]; then
		skip "kafka-python cannot write this segment ($*)"
	fi
	return "$rc"
}

pdir() {
	printf '%s/topics/%s/%s\n' "$MQ_DIR" "$1" "${2:-0}"
}

segment() {
	printf '%s/topics/%s/0/%020d.%s\n' "$MQ_DIR" "$1" "$2" "${3:-log}"
}

be32() {
	# shellcheck disable=SC2046
	set -- $(od -An -tu1 -j "$2" -N4 "$1")
	echo $(((($1 * 256 + $2) * 256 + $3) * 256 + $4))
}

batch_pos() {
	local f=$1 n=$2 pos=0 i=1
	while [ "$i" -lt "$n" ]; do
		pos=$((pos + 12 + $(be32 "$f" $((pos + 8)))))
		i=$((i + 1))
	done
	echo "$pos"
}

flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	# shellcheck disable=SC2059
	printf "\\$(printf '%03o' $((b ^ 255)))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

file_size() {
	stat -c %s "$1"
}

# wait_until SECS CMD...: runs CMD every 50 ms until it succeeds; fails,
# saying what it waited for, once SECS seconds went by first.
wait_until() {
	local secs=$1 i=0
	shift
	while ! "$@"; do
		i=$((i + 1))
		if [ "$i" -gt $((secs * 20)) ]; then
			echo "timed out after ${secs}s waiting for: $*" >&2
			return 1
		fi
		sleep 0.05
	done
}

# wait_for CMD...: the same for at most 20 s, for what a background
# process must eventually do.
wait_for() { wait_until 20 "$@"; }

now_ms() {
	echo $(($(date +%s) * 1000))
}
