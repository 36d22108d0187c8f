# tests/helper.bash: what every bats suite shares (`load helper`).
#
# Each test runs in its own data directory, $MQ_DIR, a fresh directory
# under the test's $BATS_TEST_TMPDIR, with the programs just built
# (bin/) first on PATH.  A suite that needs its own setup or teardown
# defines them and calls mq_setup / mq_teardown from there.
#
# Helpers:
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
#   now_ms                     the time in epoch milliseconds

bats_require_minimum_version 1.5.0

# Debian's python3, which has the kafka module; another python may come
# first on PATH.  MQ_TEST_PYTHON overrides it.
PYTHON=${MQ_TEST_PYTHON:-/usr/bin/python3}

mq_setup() {
	PATH="$BATS_TEST_DIRNAME/../bin:$PATH"
	MQ_DIR="$BATS_TEST_TMPDIR/data"
	export PATH MQ_DIR
	rm -rf "$MQ_DIR"
	mkdir -p "$MQ_DIR"
}

mq_teardown() {
	if [ -n "$MQ_DIR" ] && [ -d "$MQ_DIR" ]; then
		chmod -R u+rwx "$MQ_DIR" 2>/dev/null
		rm -rf "$MQ_DIR"
	fi
}

setup() { mq_setup; }
teardown() { mq_teardown; }

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

now_ms() {
	echo $(($(date +%s) * 1000))
}
