# tests/replicate/helper.bash: what tests/008-replicate.bats shares
# (`load replicate/helper`): records to produce, the leader as a SOURCE
# of each kind (mq-serve, the wire.py proxy), mq-replicate in the
# background, and the comparisons of a follower with its leader.
#
# The leader is the data directory $LEADER, the follower $MQ_DIR; $BG
# lists the pids the test's teardown ends, $WIRE is tests/replicate.

# records PREFIX N: N distinct lines of lengths from 10 to 160 bytes.
records() {
	awk -v p="$1" -v n="$2" 'BEGIN {
		pad = "abcdefghijklmnopqrstuvwxyz0123456789"; pad = pad pad pad pad pad
		for (i = 1; i <= n; i++) printf "%s-%07d %s\n", p, i, substr(pad, 1, i % 150)
	}'
}

# keyed PREFIX N: N lines "KEY<TAB>VALUE" over 11 keys.
keyed() {
	records "$1" "$2" | awk '{ printf "key%d\t%s\n", NR % 11, $0 }'
}

# serve [PORT]: starts mq-serve on the leader (on PORT, default any free
# one): $SERVE_PID, $SERVE_PORT.
# shellcheck disable=SC2120
serve() {
	local err="$BATS_TEST_TMPDIR/serve.err" i
	: >"$err"
	mq-serve -q -d "$LEADER" -l "127.0.0.1:${1:-0}" </dev/null >/dev/null 2>"$err" 3>&- &
	SERVE_PID=$!
	BG+=("$SERVE_PID")
	for ((i = 0; i < 200; i++)); do
		SERVE_PORT=$(sed -n 's/^mq-serve: serving on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$err")
		[ -n "$SERVE_PORT" ] && return 0
		kill -0 "$SERVE_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "mq-serve -l 127.0.0.1:${1:-0} did not start:" >&2
	cat "$err" >&2
	return 1
}

# wire OPTIONS...: a tests/replicate/wire.py proxy in front of the
# mq-serve (see wire.py for the options); $SRC becomes its address.
wire() {
	local err="$BATS_TEST_TMPDIR/wire.err" i port
	: >"$err"
	"$PYTHON" "$WIRE/wire.py" proxy "$SERVE_PORT" "$@" </dev/null >/dev/null 2>"$err" 3>&- &
	BG+=("$!")
	for ((i = 0; i < 200; i++)); do
		port=$(sed -n 's/^wire: listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$err")
		if [ -n "$port" ]; then
			SRC=http://127.0.0.1:$port
			return 0
		fi
		sleep 0.05
	done
	echo "wire.py proxy did not start:" >&2
	cat "$err" >&2
	return 1
}

# use dir|http|ssh: $SRC, the leader as mq-replicate's SOURCE, and
# $LT, the words that name topic t of the leader for the other programs
# (mq-produce "${LT[@]}"), in that kind of address.
# shellcheck disable=SC2034
use() {
	KIND=$1
	case $1 in
	dir)
		SRC=$LEADER
		LT=(-d "$LEADER" t)
		;;
	http)
		serve
		SRC=http://127.0.0.1:$SERVE_PORT
		LT=("$SRC/t")
		;;
	ssh)
		SRC=ssh://localhost$LEADER
		LT=("$SRC/t")
		;;
	*) return 1 ;;
	esac
}

# replicate_bg ARGS...: mq-replicate ARGS in the background: its pid in
# $REP, its standard error in the file $REP_ERR.
replicate_bg() {
	NREP=$((NREP + 1))
	REP_ERR="$BATS_TEST_TMPDIR/replicate.$NREP.err"
	mq-replicate "$@" </dev/null >/dev/null 2>"$REP_ERR" 3>&- &
	REP=$!
	BG+=("$REP")
}

# reap PID: waits for PID; its exit status in $rc.
reap() {
	rc=0
	wait "$1" || rc=$?
}

# logs DIR [TOPIC...]: the .log files under DIR/topics (of TOPICs), as
# TOPIC/P/NAME lines in order.
logs() {
	local t
	(
		cd "$1/topics" || exit 1
		shift
		if [ $# -eq 0 ]; then
			find . -name '*.log'
		else
			for t; do find "./$t" -name '*.log'; done
		fi
	) | sed 's|^\./||' | sort
}

# same_logs [TOPIC...]: the follower has every .log of the leader (of
# TOPICs), byte for byte, and no other.
same_logs() {
	same_as "$MQ_DIR" "$@"
}

# same_as DIR [TOPIC...]: the same for a follower in DIR.
same_as() {
	local d=$1 f rc=0
	shift
	if ! diff <(logs "$LEADER" "$@") <(logs "$d" "$@") >&2; then
		echo "same_logs: the segment files differ (< leader, > follower $d)" >&2
		return 1
	fi
	for f in $(logs "$LEADER" "$@"); do
		cmp "$LEADER/topics/$f" "$d/topics/$f" >&2 || rc=1
	done
	return "$rc"
}

# prefix_logs: the follower holds a prefix of the leader: in every
# partition the leader's first segments, all whole but the last, which
# is a prefix of the leader's file of that name (empty at the most).
prefix_logs() {
	local d f n last
	for d in "$MQ_DIR"/topics/*/[0-9]*; do
		[ -d "$d" ] || continue
		d=${d#"$MQ_DIR/topics/"}
		last=$(find "$MQ_DIR/topics/$d" -name '*.log' | sort | tail -n 1)
		if ! diff <(logs "$MQ_DIR" "${d%/*}" | grep "^$d/") \
			<(logs "$LEADER" "${d%/*}" | grep "^$d/" | head -n "$(logs "$MQ_DIR" "${d%/*}" | grep -c "^$d/")") >&2; then
			echo "prefix_logs: $d holds other segments than the leader's first ones" >&2
			return 1
		fi
		for f in $(logs "$MQ_DIR" "${d%/*}" | grep "^$d/"); do
			n=$(file_size "$MQ_DIR/topics/$f")
			if [ "$MQ_DIR/topics/$f" != "$last" ] && [ "$n" -ne "$(file_size "$LEADER/topics/$f")" ]; then
				echo "prefix_logs: $f is not whole and not the last segment" >&2
				return 1
			fi
			cmp -n "$n" "$LEADER/topics/$f" "$MQ_DIR/topics/$f" >&2 || return 1
		done
	done
}

# log_sum DIR: checksums of the .log files and topic.conf of DIR.
log_sum() {
	(cd "$1/topics" && find . -name '*.log' -o -name topic.conf | sort | xargs md5sum)
}

# tree_sum DIR: names, sizes and checksums of every file under DIR.
tree_sum() {
	(cd "$1" && find . -type f | sort | xargs md5sum && find . | sort)
}

# follower_bytes: bytes in the follower's .log files.
follower_bytes() {
	find "$MQ_DIR/topics" -name '*.log' -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'
}

# follower_past N: the follower's .log files hold more than N bytes.
follower_past() {
	[ "$(follower_bytes)" -gt "$1" ]
}

# verify_clean DIR: mq-topic verify finds every partition of DIR ok.
verify_clean() {
	local out rc=0
	out=$(mq-topic -d "$1" verify 2>&1) || rc=$?
	if [ "$rc" -ne 0 ] || grep -v ': ok$' <<<"$out" | grep -q .; then
		echo "mq-topic -d $1 verify: status $rc" >&2
		echo "$out" >&2
		return 1
	fi
}

# dump_values DIR TOPIC: "PARTITION OFFSET KEY VALUE" of every record,
# read with mq-consume -e.
dump_values() {
	mq-consume -d "$1" -e -f '%p %o %k %s\n' "$2" | sort -n -k1,1 -k2,2
}

# replica_row DIR TOPIC P ID: "POSITION IN-SYNC" of replica ID of
# partition P in mq-topic describe.
replica_row() {
	mq-topic -d "$1" describe "$2" |
		awk -v p="$3" -v id="$4" 'seen && $1 == p && $2 == id { print $3, $NF } /^PARTITION +REPLICA/ { seen = 1 }'
}

# log_end DIR TOPIC P: the log end offset of a partition (describe -J).
log_end() {
	mq-topic -d "$1" describe -J "$2" | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
print([p["log_end_offset"] for p in d["partitions"] if p["partition"] == int(sys.argv[1])][0])' "$3"
}

# high_watermark DIR TOPIC P: the same for the high watermark.
high_watermark() {
	mq-topic -d "$1" describe -J "$2" | "$PYTHON" -c '
import json, sys
d = json.load(sys.stdin)
print([p["high_watermark"] for p in d["partitions"] if p["partition"] == int(sys.argv[1])][0])' "$3"
}

# descendant PID NAME: the pid of a process named NAME below PID.
descendant() {
	local -a queue=("$1")
	local p
	while [ "${#queue[@]}" -gt 0 ]; do
		p=${queue[0]}
		queue=("${queue[@]:1}")
		if [ "$p" != "$1" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ]; then
			echo "$p"
			return 0
		fi
		# shellcheck disable=SC2207
		queue+=($(cat /proc/"$p"/task/*/children 2>/dev/null))
	done
	return 1
}

# be64lo FILE POS: the low 32 bits of the big-endian i64 at POS.
be64lo() {
	be32 "$1" $(($2 + 4))
}

# wire_use http|ssh OPTIONS...: $SRC through tests/replicate/wire.py.
wire_use() {
	local kind=$1
	shift
	if [ "$kind" = http ]; then
		serve
		wire "$@"
	else
		export MQ_SSH=$WIRE/ssh MQ_WIRE="$*"
		SRC=ssh://localhost$LEADER
	fi
}

# lines_in FILE: its number of lines.
lines_in() {
	wc -l <"$1"
}

# has_lines FILE N: FILE has N lines.
has_lines() {
	[ "$(lines_in "$1")" -eq "$2" ]
}
