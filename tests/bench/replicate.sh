# tests/bench/replicate.sh: section 12 of tests/bench/run, mq-replicate.
# Sourced by run (--only replicate runs this group alone); it uses run's
# helpers (scen, timed, record, fail, note, topic_stats, serve_start...)
# and variables (BIN, SCR, RES, LINESF, RUNS, QUICK...).
#
#   rcssh   catch-up of an empty follower: mq-replicate -d EMPTY
#           ssh://localhost$LEADER big, through tests/bin/ssh (a fake ssh
#           that runs mq-serve --stdio here on the connection it was
#           given, a local socket; no encryption), a topic of a little
#           more than REP_BYTES (1 GiB;
#           --quick 128 MiB) in segments of REP_BYTES (the default 1 GiB
#           in a full run), so that, as in any long catch-up, all but a
#           small last segment are rolled, against cat SEGMENTS | cat >
#           FILE of the same bytes
#   rcpipe  the same with MQ_SSH=pipessh (pipessh.c), which gives
#           mq-serve --stdio pipes, as sshd does, and moves the bytes
#           between them and the connection with splice(2) (standing in
#           for sshd and ssh, without crypto)
#   rchttp  the same from http://127.0.0.1:PORT (an mq-serve on $LEADER)
#   rcdir   the same from the directory $LEADER
#   rcone   the same over ssh from a topic of the same size in one
#           segment: no roll, so no fdatasync of a closed segment (what
#           the roll costs is the difference from rcssh)
#   rlssh   steady state: mq-replicate -f over ssh running, one record
#           appended to the leader every 50 ms with its send time as the
#           value; the delay until a tailing mq-consume on the follower's
#           directory prints it, against the same consumer on the
#           leader's directory, tailing at the same time
#   rlhttp  the same with mq-replicate -f from the mq-serve
#
# Every catch-up is checked before it is timed, and after each timed run:
# cmp of every segment file.  The mq-serve is started here and stopped at
# the end, or by run's trap (as is a follower still running).
# shellcheck shell=bash disable=SC2034,SC2154,SC2046,SC2207

RL=$SCR/rlead       # the leader's data directory
RF=$SCR/rfol        # the follower's, emptied between runs
RLOG=$SCR/rep.err   # mq-replicate's standard error
FAKE_SSH=$ROOT/tests/bin/ssh

# the environment of every mq-replicate: the fake ssh first on PATH, and
# the remote mq-serve the private copy of this run
REPENV=(env -u MQ_SSH -u MQ_TOKEN -u MQ_TOKEN_FILE "PATH=$ROOT/tests/bin:$PATH" "MQ_SERVE=$BIN/mq-serve")

# same_segments ID TOPIC: every .log of the leader's TOPIC is in the
# follower, byte for byte, and the follower has no other
same_segments() {
	local f n=0 m
	for f in "$RL"/topics/"$2"/0/*.log; do
		cmp -s "$f" "$RF/topics/$2/0/${f##*/}" ||
			{ fail "$1" "the follower's $2/0/${f##*/} differs from the leader's (cmp)"; return 1; }
		n=$((n + 1))
	done
	m=$(ls "$RF"/topics/"$2"/0/*.log | wc -l)
	[ "$m" = "$n" ] || { fail "$1" "the follower has $m segments of $2, the leader $n"; return 1; }
}

# spread ID UNIT SCALE: the range of the runs' wall times (or, for the
# latency rows, p50s) of mq and of the yardstick, for a note: this
# machine is shared, and a median of 3 hides how far apart the runs were
spread() {
	awk -F'\t' -v id="$1" -v unit="$2" -v k="$3" '
		$1 == "sample" && $2 == id {
			w = ($5 - $4) * k
			if (!($3 in n) || w < lo[$3]) lo[$3] = w
			if (!($3 in n) || w > hi[$3]) hi[$3] = w
			n[$3]++
		}
		END {
			if ("mq" in n) printf "runs: mq %.2f-%.2f %s", lo["mq"], hi["mq"], unit
			if ("yard" in n) printf ", yardstick %.2f-%.2f %s", lo["yard"], hi["yard"], unit
		}' "$RES"
}

# descendants PID: the processes under PID (ssh, and mq-serve --stdio)
descendants() {
	local c
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		echo "$c"
		descendants "$c"
	done
}

# ---- the leader's topics: the input again and again up to REP_BYTES ---------------
# big in segments of REP_BYTES; one, the same input as many times, in one
REP_BYTES=$(( (QUICK ? 128 : 1024) << 20 ))
log "mq-replicate: topics of $((REP_BYTES >> 20)) MiB"
rm -rf "$RL" "$RF"
RREC=0
RBYTES=0
rerr=
"$BIN/mq-topic" -d "$RL" create big -p 1 -c segment.bytes=$REP_BYTES > /dev/null &&
	"$BIN/mq-topic" -d "$RL" create one -p 1 -c segment.bytes=2147483647 > /dev/null ||
	rerr="mq-topic create failed"
while [ -z "$rerr" ] && [ "$RBYTES" -lt "$REP_BYTES" ] && [ "$RREC" -lt $((LINES * 64)) ]; do
	"$BIN/mq-produce" -d "$RL" big < "$LINESF" && "$BIN/mq-produce" -d "$RL" one < "$LINESF" ||
		rerr="mq-produce failed"
	set -- $(topic_stats "$RL" big)
	RREC=${1:-0}
	RBYTES=${2:-0}
done
# sizes of files (0 for none)
bytes_of() { stat -c %s -- /dev/null "$@" | awk '{ s += $1 } END { print s + 0 }'; }
RSEGS=($(ls "$RL"/topics/big/0/*.log 2>/dev/null | sort))
RSEG_BYTES=$(bytes_of "${RSEGS[@]}")
RONE=($(ls "$RL"/topics/one/0/*.log 2>/dev/null))
RONE_BYTES=$(bytes_of "${RONE[@]}")
[ ${#RSEGS[@]} -ge 2 ] && [ ${#RONE[@]} = 1 ] ||
	rerr="${rerr:-topics of ${#RSEGS[@]} and ${#RONE[@]} segments, expected 2 or more and 1}"
[ -x "$FAKE_SSH" ] || rerr="${rerr:-$FAKE_SSH (the fake ssh) is missing}"

RSOK=1
if ! serve_start "$RL" "$SCR/serve.err"; then
	rerr="${rerr:-mq-serve did not start: $(tail -n 3 "$SCR/serve.err")}"
	RSOK=0
fi

# ---- 12a. catch-up -------------------------------------------------------------------
# rep_src KIND: the SOURCE of that kind; rep_topic KIND: the topic
rep_src() {
	case $1 in
	ssh|pipe|one) echo "ssh://localhost$RL" ;;
	http) echo "$SURL" ;;
	dir) echo "$RL" ;;
	esac
}
rep_topic() { [ "$1" = one ] && echo one || echo big; }
# rep_ssh KIND: the ssh command (MQ_SSH) for that kind
rep_ssh() { [ "$1" = pipe ] && echo "$SCR/bin/pipessh" || echo ssh; }
scen rcssh "replication catch-up: mq-replicate -d EMPTY ssh://localhost… (fake ssh passing its socket, no crypto)" \
	"$RREC" "$RSEG_BYTES" "cat segments | cat > file" thr "ratio_min:0.7"
scen rcpipe "replication catch-up: mq-replicate -d EMPTY ssh://localhost… (pipes as from sshd, a splice relay for ssh, no crypto)" \
	"$RREC" "$RSEG_BYTES" "cat segments | cat > file" thr "ratio_min:0.7"
scen rchttp "replication catch-up: mq-replicate -d EMPTY http://127.0.0.1:PORT (mq-serve)" \
	"$RREC" "$RSEG_BYTES" "cat segments | cat > file" thr ""
scen rcdir "replication catch-up: mq-replicate -d EMPTY DIR (another directory)" \
	"$RREC" "$RSEG_BYTES" "cat segments | cat > file" thr ""
scen rcone "replication catch-up over ssh, the topic in one segment (no roll, no fdatasync)" \
	"$RREC" "$RONE_BYTES" "cat segment | cat > file" thr ""
KINDS="ssh pipe dir one"
[ $RSOK = 1 ] && KINDS="ssh pipe http dir one"
if [ -n "$rerr" ]; then
	fail rcssh "$rerr"
	fail rcpipe "$rerr"
	[ $RSOK = 1 ] || fail rchttp "$rerr"
else
	# correctness first: one untimed copy from each source (which also
	# warms what is read)
	for k in $KINDS; do
		rm -rf "$RF"
		"${REPENV[@]}" MQ_SSH="$(rep_ssh $k)" "$BIN/mq-replicate" -d "$RF" "$(rep_src $k)" "$(rep_topic $k)" 2> "$RLOG" ||
			{ fail "rc$k" "mq-replicate failed: $(tail -n 3 "$RLOG")"; continue; }
		same_segments "rc$k" "$(rep_topic $k)"
	done
	rm -rf "$RF"
	for i in $(seq "$RUNS"); do
		for k in $KINDS; do
			if [ $k = one ]; then
				YSEGS=("${RONE[@]}")
			else
				YSEGS=("${RSEGS[@]}")
			fi
			WARM=("${YSEGS[@]}")
			timed "rc$k" yard 'cat "${YSEGS[@]}" | TM cat > "$YOUT"'
			rm -f "$YOUT"
			rm -rf "$RF"
			[ $k = http ] && c0=$(proc_cpu "$SERVE_PID")
			if NORECORD=1 timed "rc$k" mq 'TM "${REPENV[@]}" MQ_SSH="$(rep_ssh $k)" "$BIN/mq-replicate" -d "$RF" "$(rep_src $k)" "$(rep_topic $k)" 2> "$RLOG"'; then
				[ $k = http ] && add_cpu "$SERVE_PID" "$c0"
				record "rc$k" mq
				same_segments "rc$k" "$(rep_topic $k)"
			else
				log "$(tail -n 3 "$RLOG")"
			fi
			rm -rf "$RF"
		done
	done
	WARM=()
	note rcssh "$((RSEG_BYTES >> 20)) MiB, $RREC records in ${#RSEGS[@]} segments (segment.bytes $((REP_BYTES >> 20)) MiB); every copy is checked with cmp of the segment files; a fetch is up to 32 MiB, the next one made while this one is written; CPU s is the client's plus the mq-serve --stdio it runs (its child); the follower rolls where the leader did and, as mq-produce does, fdatasyncs each segment it closes, which the yardstick does not"
	note rcpipe "as rcssh, but mq-serve --stdio relays between pipes and its server (splice), and tests/bench/pipessh moves the bytes between those pipes and the connection with splice, where real ssh would have sshd and ssh encrypt them; CPU s includes it"
	note rcone "$((RONE_BYTES >> 20)) MiB in one segment (segment.bytes 2 GiB - 1): the same copy without the fdatasync at the roll"
	note rchttp "CPU s is the client's plus the mq-serve's"
	note rcdir "no server: the follower reads the leader's segments"
	for k in $KINDS; do
		note "rc$k" "$(spread "rc$k" s 1)"
	done
fi

# ---- 12b. steady-state replication delay ----------------------------------------------
RLATN=$((QUICK ? 20 : 100))
RLATW=5
RLAT_MS=50
scen rlssh "replication delay: append → readable on the follower, mq-replicate -f ssh://… (1 record / ${RLAT_MS} ms)" \
	0 0 "the same consumer on the leader's directory" time "p99_max:100" latency
scen rlhttp "replication delay: append → readable on the follower, mq-replicate -f http://… (1 record / ${RLAT_MS} ms)" \
	0 0 "the same consumer on the leader's directory" time "p99_max:100" latency
REP_PID=
# rlat_run ID KIND TOPIC: one run of RLATN records, the yardstick (a
# consumer on the leader's directory) tailing at the same time
rlat_run() {
	local id=$1 kind=$2 topic=$3 fpid lpid c0 p50 p99 max n pids p t0 ok=1
	rm -rf "$RF"
	"$BIN/mq-topic" -d "$RL" create "$topic" -p 1 > /dev/null || { fail "$id" "mq-topic create failed"; return 1; }
	[ "$kind" = http ] && c0=$(proc_cpu "$SERVE_PID")
	"${REPENV[@]}" "$BIN/mq-replicate" -f -d "$RF" "$(rep_src "$kind")" "$topic" 2> "$RLOG" &
	REP_PID=$!
	# the follower creates the topic on its first pass
	for _ in $(seq 200); do
		"$BIN/mq-topic" -d "$RF" describe "$topic" > /dev/null 2>&1 && break
		kill -0 "$REP_PID" 2>/dev/null || break
		sleep 0.05
	done
	if ! "$BIN/mq-topic" -d "$RF" describe "$topic" > /dev/null 2>&1; then
		fail "$id" "mq-replicate -f did not create the topic on the follower: $(tail -n 3 "$RLOG")"
		ok=0
	fi
	rm -f "$SCR/time.f" "$SCR/time.l" "$SCR/lat.f" "$SCR/lat.l"
	if [ $ok = 1 ]; then
		{ TF=$SCR/time.f TM timeout 120 "$BIN/mq-consume" -d "$RF" -c $((RLATN + RLATW)) -f "$FMT" "$topic" |
			"$PY" "$BENCH/serve.py" recv "$RLATN" > "$SCR/lat.f"; } &
		fpid=$!
		{ TF=$SCR/time.l TM timeout 120 "$BIN/mq-consume" -d "$RL" -c $((RLATN + RLATW)) -f "$FMT" "$topic" |
			"$PY" "$BENCH/serve.py" recv "$RLATN" > "$SCR/lat.l"; } &
		lpid=$!
		"$PY" "$BENCH/serve.py" send "$RLATN" "$RLAT_MS" "$RLATW" |
			"$BIN/mq-produce" -d "$RL" --linger 0 "$topic" || fail "$id" "mq-produce --linger 0 failed"
		wait "$fpid" || { fail "$id" "the consumer on the follower did not see $RLATN records: $(tail -n 3 "$RLOG")"; ok=0; }
		wait "$lpid" || { fail "$id" "the consumer on the leader did not see $RLATN records"; ok=0; }
	fi
	if [ $ok = 1 ]; then
		# the yardstick: the consumer on the leader
		read -r p50 p99 max n < "$SCR/lat.l"
		read -r _ TU TS TRSS TFSIN <<< "$(tail -n 1 "$SCR/time.l")"
		T0=0
		T1=$(awk -v a="$p50" 'BEGIN { printf "%.6f", a / 1000 }')
		record "$id" yard
		stat_sample "$id" yard p50_ms "$p50"
		stat_sample "$id" yard p99_ms "$p99"
		stat_sample "$id" yard max_ms "$max"
		# mq: the consumer on the follower; CPU: plus mq-replicate and its
		# server (mq-serve --stdio under it, or the mq-serve); peak RSS:
		# mq-replicate's
		read -r p50 p99 max n < "$SCR/lat.f"
		read -r _ TU TS TRSS TFSIN <<< "$(tail -n 1 "$SCR/time.f")"
		pids="$REP_PID $(descendants "$REP_PID")"
		for p in $pids; do
			add_cpu "$p" "0 0"
		done
		[ "$kind" = http ] && add_cpu "$SERVE_PID" "$c0"
		TRSS=$(proc_hwm "$REP_PID")
		T0=0
		T1=$(awk -v a="$p50" 'BEGIN { printf "%.6f", a / 1000 }')
		record "$id" mq
		stat_sample "$id" mq p50_ms "$p50"
		stat_sample "$id" mq p99_ms "$p99"
		stat_sample "$id" mq max_ms "$max"
	fi
	# SIGTERM: how long the follower takes to exit
	t0=$EPOCHREALTIME
	kill "$REP_PID" 2>/dev/null
	wait "$REP_PID" 2>/dev/null
	REP_PID=
	stat_sample "$id" mq exit_s "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')"
	"$BIN/mq-topic" -d "$RL" delete "$topic" > /dev/null || fail "$id" "mq-topic delete failed"
	rm -rf "$RF"
	[ $ok = 1 ]
}
LKINDS=ssh
[ $RSOK = 1 ] && LKINDS="ssh http"
[ $RSOK = 1 ] || fail rlhttp "${rerr:-mq-serve did not start}"
for i in $(seq "$RUNS"); do
	for k in $LKINDS; do
		rlat_run "rl$k" "$k" "lat-$k$i"
	done
done
note rlssh "$RLATN records a run after $RLATW to warm up, mq-produce --linger 0 appending each as it comes to the leader; the delay is the print time of a tailing mq-consume on the follower's directory minus the time written in the record; the yardstick is a second consumer on the leader's directory in the same run; CPU s is the follower's consumer, mq-replicate and its server (mq-serve --stdio, or the mq-serve) for the whole run; peak RSS is mq-replicate's"
for k in $LKINDS; do
	note "rl$k" "$(spread "rl$k" "ms (p50)" 1000)"
	x=$(awk -F'\t' -v id="rl$k" '$1 == "stat" && $2 == id && $4 == "exit_s" { printf "%s%s", s, $5; s = ", " }' "$RES")
	[ -n "$x" ] && note "rl$k" "after SIGTERM mq-replicate -f took $x s to exit"
done
serve_stop
rm -rf "$RL" "$RF"
