#!/usr/bin/env bats
# mq-lag(1): lag, age, rate, status and owner of consumer groups; thresholds
# for cron; table, summary, JSON and Prometheus output.
#
# Time is the fake clock MQ_NOW_MS, which every program honours: `at S
# CMD` runs CMD S seconds after T0.  Records are produced, consumed and
# committed by the real programs at chosen times wherever that gives the
# history a scenario needs (mq-consume writes the commit times from the
# fake clock).  Where a scenario needs a precise commit history that no
# program would write on cue -- several groups at once, a consumer that
# commits the same offset while alive -- the history file
# groups/G/offsets/T is written directly (`commits`), in the format of
# libcore/group.c and mq-format(5): "partition offset time_ms end" lines.
# A live owner is either a real mq-consume stopped with SIGSTOP, or a
# background process that holds a member file and the partition lock
# with flock(1) and writes the owner line (`hold_lock`), as a member does.

load helper

T0=1700000000000 # 2023-11-14T22:13:20Z

setup_file() {
	# a real Prometheus text-format parser, when the machine can have one
	if ! /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null &&
		[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		DEBIAN_FRONTEND=noninteractive timeout 300 \
			apt-get install -y -qq python3-prometheus-client >/dev/null 2>&1 || true
	fi
}

setup() {
	mq_setup
	BG=()
}

teardown() {
	local p
	for p in "${BG[@]}"; do
		kill -CONT "$p" 2>/dev/null
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	mq_teardown
}

# at S CMD...: run CMD with the clock at T0 + S seconds.
at() {
	local s=$1
	shift
	MQ_NOW_MS=$((T0 + s * 1000)) "$@"
}

# produce_at S TOPIC N: N records (1..N) in one batch at T0 + S seconds.
produce_at() {
	seq "$3" | at "$1" mq-produce "$2"
}

# consume_at S GROUP TOPIC N: group GROUP consumes and commits N records.
consume_at() {
	at "$1" mq-consume -g "$2" -c "$4" "$3" >/dev/null
}

# commits GROUP TOPIC P <<<"OFFSET S END...": write the commit history of
# a partition directly, times in seconds after T0, into the group's
# history file of the topic (groups/G/offsets/T, "P OFFSET TIME END"
# lines, each partition's lines together, oldest first).
commits() {
	local f="$MQ_DIR/groups/$1/offsets/$2" off s end
	mkdir -p "${f%/*}"
	touch "$f"
	{
		awk -v p="$3" '$1 != p' "$f"
		while read -r off s end; do
			echo "$3 $off $((T0 + s * 1000)) $end"
		done
	} >"$f.new"
	mv "$f.new" "$f"
}

# hold_lock GROUP TOPIC P: a background process stands for a live member
# that owns the partition: it holds a member file under members/ and the
# partition lock, both flock'd, with the owner line "test-member PID
# testhost" in the lock; its pid is in $holder.
hold_lock() {
	local g="$MQ_DIR/groups/$1"
	local lock="$g/topics/$2/$3.lock"
	mkdir -p "${lock%/*}" "$g/members"
	(
		exec 8>"$g/members/0000000000000-testhost-$BASHPID" 9>>"$lock"
		flock -x 8
		flock -x 9
		echo "$BASHPID testhost $T0" >&8
		echo "test-member $BASHPID testhost" >"$lock"
		exec sleep 600
	) >/dev/null 2>&1 3>&- &
	holder=$!
	BG+=("$holder")
	wait_for grep -qs " $holder " "$lock"
}

# fields GROUP TOPIC P: the row of that partition in the table in $output,
# as "COMMITTED END LAG AGE RATE STATUS OWNER".
fields() {
	awk -v g="$1" -v t="$2" -v p="$3" \
		'$1 == g && $2 == t && $3 == p { print $4, $5, $6, $7, $8, $9, $10 }' <<<"$output"
}

# status_of GROUP TOPIC P: the STATUS column of that row.
status_of() {
	awk -v g="$1" -v t="$2" -v p="$3" '$1 == g && $2 == t && $3 == p { print $9 }' <<<"$output"
}

# groups_shown: the GROUP column of the table in $output, one line.
groups_shown() {
	awk 'NR > 1 { print $1 }' <<<"$output" | tr '\n' ' ' | sed 's/ $//'
}

HEADER='GROUP            TOPIC            PARTITION    COMMITTED          END        LAG      AGE       RATE STATUS OWNER'

# One group per status, at 1000 s, with the default window of 10 minutes:
# topic t holds 100 records written at T0.
#   ok      caught up
#   warn    lag 10, 20, 40 at three commits inside the window
#   rewind  committed 50, then 20, inside the window
#   stall   a live owner, offset 40 for the whole window (last commit 950)
#   stop    no owner, last commit at 200
five_statuses() {
	mq-topic create t
	produce_at 0 t 100
	commits ok t 0 <<<"100 900 100"
	commits warn t 0 <<<$'10 500 20\n20 700 40\n30 900 70'
	commits rewind t 0 <<<$'50 800 100\n20 900 100'
	commits stall t 0 <<<$'40 100 50\n40 950 100'
	commits stop t 0 <<<"60 200 100"
	hold_lock stall t 0
}

# ---- the table and the statuses -------------------------------------------

@test "a caught-up consumer is OK with lag 0, and mq-lag exits 0" {
	mq-topic create t
	produce_at 0 t 10
	at 10 mq-consume -e -g G t >/dev/null
	run --separate-stderr at 20 mq-lag
	[ "$status" -eq 0 ]
	[ -z "$stderr" ]
	[ "${lines[0]}" = "$HEADER" ]
	[ "${#lines[@]}" -eq 2 ]
	[ "$(fields G t 0)" = "10 10 0 0s 0.0/s OK -" ]
}

@test "a consumer behind a faster producer, its lag growing at three commits or more in the window, is WARN" {
	mq-topic create t
	# every minute 10 records arrive and the group consumes 5
	for k in 0 1 2 3; do
		produce_at $((k * 60)) t 10
		consume_at $((k * 60 + 30)) G t 5
	done
	run at 240 mq-lag
	[ "$status" -eq 0 ]
	[ "$(status_of G t 0)" = WARN ]
	read -r committed end lag _ <<<"$(fields G t 0)"
	[ "$committed $end $lag" = "20 40 20" ]
	run at 240 mq-lag --fail-on warn
	[ "$status" -eq 1 ]
}

@test "WARN needs three commits inside the window: a shorter --window makes it OK" {
	mq-topic create t
	for k in 0 1 2 3; do
		produce_at $((k * 60)) t 10
		consume_at $((k * 60 + 30)) G t 5
	done
	# only the commits at 150 s and 210 s are within 100 s of 240 s
	run at 240 mq-lag --window 100s
	[ "$status" -eq 0 ]
	[ "$(status_of G t 0)" = OK ]
	run at 240 mq-lag --window 3m
	[ "$(status_of G t 0)" = WARN ]
}

@test "a consumer whose lag shrinks is OK while it is behind" {
	mq-topic create t
	produce_at 0 t 30
	consume_at 30 G t 5
	consume_at 90 G t 10
	consume_at 150 G t 10
	run at 160 mq-lag
	[ "$status" -eq 0 ]
	read -r committed end lag _ <<<"$(fields G t 0)"
	[ "$committed $end $lag" = "25 30 5" ]
	[ "$(status_of G t 0)" = OK ]
	run at 160 mq-lag --fail-on warn
	[ "$status" -eq 0 ]
}

@test "a stopped consumer with a backlog is STOP once its last commit is older than the window" {
	mq-topic create t
	produce_at 0 t 10
	consume_at 10 G t 4
	run at 600 mq-lag
	[ "$(status_of G t 0)" = OK ]
	run at 620 mq-lag
	[ "$status" -eq 0 ]
	[ "$(fields G t 0)" = "4 10 6 10m20s 0.0/s STOP -" ]
	# the window is an option
	run at 320 mq-lag --window 5m
	[ "$(status_of G t 0)" = STOP ]
	run at 320 mq-lag --fail-on stop --window 5m
	[ "$status" -eq 1 ]
}

@test "a hung consumer that stays alive without committing is STALL, and its OWNER is pid@host" {
	mq-topic create t
	produce_at 0 t 10
	at 0 mq-consume -e -g G t >/dev/null
	# a member that holds the partition, then hangs
	MQ_NOW_MS=$T0 mq-consume -g G t >/dev/null 2>&1 3>&- &
	local pid=$!
	BG+=("$pid")
	wait_for grep -qs " $pid " "$MQ_DIR/groups/G/topics/t/0.lock"
	kill -STOP "$pid"
	produce_at 60 t 5
	# not yet: the lag is younger than the window
	run at 300 mq-lag
	[ "$(status_of G t 0)" = OK ]
	run at 660 mq-lag
	[ "$status" -eq 0 ]
	[ "$(fields G t 0)" = "10 15 5 10m00s 0.0/s STALL $pid@$(hostname)" ]
	run at 660 mq-lag --fail-on stall
	[ "$status" -eq 1 ]
	run at 660 mq-lag --summary
	[ "${lines[1]}" = "$(printf '%-16s %7d %10d %12d %12d %8s %s' G 1 1 5 5 10m00s STALL)" ]
}

@test "a live owner committing the same offset for the whole window is STALL (lock held with flock)" {
	mq-topic create t
	produce_at 0 t 20
	commits G t 0 <<<$'10 0 10\n10 300 15\n10 600 20'
	hold_lock G t 0
	run at 700 mq-lag
	[ "$status" -eq 0 ]
	[ "$(fields G t 0)" = "10 20 10 11m40s 0.0/s STALL $holder@testhost" ]
	# once the owner is gone and the window has passed: STOP
	kill "$holder"
	wait "$holder" 2>/dev/null || true
	run at 1300 mq-lag
	[ "$(fields G t 0)" = "10 20 10 21m40s 0.0/s STOP -" ]
}

@test "offsets reset backwards with mq-consume --reset-offsets are REWIND, until the window passes" {
	mq-topic create t
	produce_at 0 t 10
	at 10 mq-consume -e -g G t >/dev/null
	run at 60 on_server mq-consume --reset-offsets beginning -g G t
	[ "$status" -eq 0 ]
	[ "$output" = "t 0 0" ]
	run at 120 mq-lag
	[ "$status" -eq 0 ]
	[ "$(fields G t 0)" = "0 10 10 2m00s 0.0/s REWIND -" ]
	run at 120 mq-lag --fail-on warn
	[ "$status" -eq 1 ]
	# REWIND ranks below STALL
	run at 120 mq-lag --fail-on stall
	[ "$status" -eq 0 ]
	# the rewinding commit still inside a window of 1 minute
	run at 100 mq-lag --window 1m
	[ "$(status_of G t 0)" = REWIND ]
	run at 700 mq-lag
	[ "$(status_of G t 0)" = STOP ]
}

@test "a group that never committed shows '-' and is fully behind and STOP" {
	mq-topic create t
	produce_at 0 t 10
	at 5 mq-consume -e -g G --commit none t >/dev/null
	[ -e "$MQ_DIR/groups/G/topics/t/0.lock" ]
	[ ! -e "$MQ_DIR/groups/G/offsets/t" ]
	run at 30 mq-lag G
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(fields G t 0)" = "- 10 10 30s 0.0/s STOP -" ]
	run at 30 mq-lag -J G
	[ "$(/usr/bin/python3 -c 'import json,sys; p = json.load(sys.stdin)["groups"][0]["partitions"][0]; print(p["committed"], p["lag"], p["age_ms"])' <<<"$output")" = "None 10 30000" ]
	run at 30 mq-lag --prometheus G
	[[ "$output" != *'mq_consumergroup_current_offset{'* ]]
	[[ "$output" == *$'\nmq_consumergroup_lag{group="G",topic="t",partition="0"} 10\n'* ]]
}

@test "a group directory with no commits at all lists no rows and exits 0" {
	mkdir -p "$MQ_DIR/groups/empty/members"
	run --separate-stderr mq-lag empty
	[ "$status" -eq 0 ]
	[ "$output" = "$HEADER" ]
	[ -z "$stderr" ]
}

@test "a partition without a commit counts as fully behind from the log start" {
	mq-topic create t -p 2
	seq 3 | at 0 mq-produce -p 0 t
	seq 5 | at 0 mq-produce -p 1 t
	at 10 mq-consume -e -g G -p 0 t >/dev/null
	run at 40 mq-lag
	[ "$status" -eq 0 ]
	[ "$(fields G t 0)" = "3 3 0 0s 0.0/s OK -" ]
	[ "$(fields G t 1)" = "- 5 5 40s 0.0/s STOP -" ]
}

@test "when retention deleted past the committed offset, the lag counts what is left" {
	mq-topic create r -c segment.bytes=100 -c retention.ms=1h
	for i in 1 2 3 4 5 6; do
		printf 'a\nb\n' | at "$i" mq-produce r
	done
	consume_at 1 G r 2
	run at 7200 mq-topic gc r
	[ "$output" = "r/0: removed 5 segments" ]
	# log start 10, end 12, committed 2: the 2 records left are the lag,
	# and the oldest of them was written at 6 s
	run at 7206 mq-lag
	[ "$status" -eq 0 ]
	[ "$(fields G r 0)" = "2 12 2 2h00m 0.0/s STOP -" ]
	run at 7206 mq-lag -J
	[ "$(/usr/bin/python3 -c 'import json,sys; p = json.load(sys.stdin)["groups"][0]["partitions"][0]; print(p["log_start"], p["lag"], p["age_ms"])' <<<"$output")" = "10 2 7200000" ]
}

@test "--allowed-lag: a lag up to N counts as caught up" {
	mq-topic create t
	produce_at 0 t 10
	consume_at 10 G t 7
	run at 1000 mq-lag
	[ "$(status_of G t 0)" = STOP ]
	run at 1000 mq-lag --allowed-lag 3
	[ "$(status_of G t 0)" = OK ]
	run at 1000 mq-lag --allowed-lag 2
	[ "$(status_of G t 0)" = STOP ]
}

@test "statuses of five groups at once, and the group status is the worst of its partitions" {
	five_statuses
	run at 1000 mq-lag
	[ "$status" -eq 0 ]
	[ "$(groups_shown)" = "ok rewind stall stop warn" ]
	[ "$(status_of ok t 0)" = OK ]
	[ "$(status_of warn t 0)" = WARN ]
	[ "$(status_of rewind t 0)" = REWIND ]
	[ "$(status_of stall t 0)" = STALL ]
	[ "$(status_of stop t 0)" = STOP ]
	# a second partition, caught up, does not hide the first
	mq-topic alter t -p 2
	commits stop t 1 <<<"0 990 0"
	run at 1000 mq-lag --summary stop
	[ "$(awk 'NR == 2 { print $3, $7 }' <<<"$output")" = "2 STOP" ]
}

# ---- age and rate ----------------------------------------------------------

@test "AGE is the time since the oldest unconsumed record was written" {
	mq-topic create t
	produce_at 0 t 10
	run at 90 mq-lag
	# no group yet
	[ "$output" = "$HEADER" ]
	consume_at 0 G t 4
	run at 90 mq-lag
	[ "$(fields G t 0)" = "4 10 6 1m30s 0.0/s OK -" ]
	run at 90 mq-lag -J
	[[ "$output" == *'"age_ms":90000,'* ]]
	run at 90 mq-lag --prometheus
	[[ "$output" == *$'\nmq_consumergroup_lag_seconds{group="G",topic="t",partition="0"} 90.000\n'* ]]
	run at $((2 * 3600 + 5 * 60)) mq-lag
	[ "$(awk 'NR == 2 { print $7 }' <<<"$output")" = 2h05m ]
	run at $((26 * 3600)) mq-lag
	[ "$(awk 'NR == 2 { print $7 }' <<<"$output")" = 1d02h ]
}

@test "AGE is that of the oldest unconsumed record when later batches are newer" {
	mq-topic create t
	produce_at 0 t 10   # offsets 0-9
	produce_at 60 t 10  # offsets 10-19
	produce_at 120 t 10 # offsets 20-29
	consume_at 130 G t 10
	# offset 10, the oldest not consumed, was written at 60 s: 4 minutes ago
	run at 300 mq-lag -J
	echo "$output"
	[[ "$output" == *'"committed":10,'* ]]
	[[ "$output" == *'"age_ms":240000,'* ]]
	run at 300 mq-lag
	[ "$(fields G t 0)" = "10 30 20 4m00s 0.0/s OK -" ]
}

@test "RATE is records per second consumed over the recent commits" {
	mq-topic create t
	produce_at 0 t 1000
	consume_at 10 G t 300
	consume_at 40 G t 300
	run at 50 mq-lag
	[ "$(fields G t 0)" = "600 1000 400 50s 10.0/s OK -" ]
	run at 50 mq-lag -J
	[[ "$output" == *'"rate":10.000,'* ]]
	# history older than the window still gives the rate into it
	commits H t 0 <<<$'0 0 1000\n100 100 1000\n400 400 1000\n1000 500 1000'
	run at 550 mq-lag --window 60s H
	[ "$(awk 'NR == 2 { print $8 }' <<<"$output")" = 6.0/s ]
}

@test "OWNER is pid@host of the live member holding the partition, '-' once it has gone" {
	mq-topic create t -p 2
	seq 4 | mq-produce -p 0 t
	mq-consume -g G t >/dev/null 2>&1 3>&- &
	local pid=$!
	BG+=("$pid")
	wait_for grep -qs " $pid " "$MQ_DIR/groups/G/topics/t/0.lock"
	wait_for grep -qs " $pid " "$MQ_DIR/groups/G/topics/t/1.lock"
	run mq-lag
	[ "$(fields G t 0 | awk '{ print $7 }')" = "$pid@$(hostname)" ]
	[ "$(fields G t 1 | awk '{ print $7 }')" = "$pid@$(hostname)" ]
	run mq-lag -J
	[[ "$output" == *"\"members\":1,"* ]]
	[[ "$output" == *"\"owner\":\"$pid@$(hostname)\""* ]]
	run mq-lag --prometheus
	[[ "$output" == *$'\nmq_consumergroup_members{group="G"} 1\n'* ]]
	kill "$pid"
	wait "$pid" || true
	run mq-lag
	[ "$(fields G t 0 | awk '{ print $7 }')" = - ]
	[ "$(fields G t 1 | awk '{ print $7 }')" = - ]
	run mq-lag --prometheus
	[[ "$output" == *$'\nmq_consumergroup_members{group="G"} 0\n'* ]]
}

# ---- thresholds and exit status -------------------------------------------

@test "--max-lag N exits 1 and prints only the partitions whose lag is above N" {
	mq-topic create t
	produce_at 0 t 10
	consume_at 1 A t 10
	consume_at 1 B t 3
	run --separate-stderr at 10 mq-lag --max-lag 7
	[ "$status" -eq 0 ]
	[ "$output" = "$HEADER" ]
	[ -z "$stderr" ]
	run --separate-stderr at 10 mq-lag --max-lag 6
	[ "$status" -eq 1 ]
	[ -z "$stderr" ]
	[ "${#lines[@]}" -eq 2 ]
	[ "${lines[0]}" = "$HEADER" ]
	[ "$(groups_shown)" = B ]
}

@test "--max-age DURATION exits 1 and prints only the partitions older than that" {
	mq-topic create t
	produce_at 0 t 10
	consume_at 1 A t 10
	consume_at 1 B t 3
	run at 600 mq-lag --max-age 10m
	[ "$status" -eq 0 ]
	[ "$output" = "$HEADER" ]
	run at 601 mq-lag --max-age 10m
	[ "$status" -eq 1 ]
	[ "$(groups_shown)" = B ]
	# a bare number is milliseconds
	run at 601 mq-lag --max-age 601000
	[ "$status" -eq 0 ]
	run at 601 mq-lag --max-age 600999
	[ "$status" -eq 1 ]
}

@test "--fail-on warn, stall and stop each fail on that status and the worse ones" {
	five_statuses
	run at 1000 mq-lag --fail-on warn
	[ "$status" -eq 1 ]
	[ "$(groups_shown)" = "rewind stall stop warn" ]
	run at 1000 mq-lag --fail-on stall
	[ "$status" -eq 1 ]
	[ "$(groups_shown)" = "stall stop" ]
	run at 1000 mq-lag --fail-on stop
	[ "$status" -eq 1 ]
	[ "$(groups_shown)" = "stop" ]
	run at 1000 mq-lag --fail-on stop ok warn
	[ "$status" -eq 0 ]
	[ "$output" = "$HEADER" ]
}

@test "thresholds combine: a row offends when it breaches any of them" {
	five_statuses
	# lags: ok 0, warn 70, rewind 80, stall 60, stop 40
	run at 1000 mq-lag --max-lag 75 --fail-on stop
	[ "$status" -eq 1 ]
	[ "$(groups_shown)" = "rewind stop" ]
}

@test "-q prints nothing when no threshold is breached, and the offending rows when one is" {
	five_statuses
	run --separate-stderr at 1000 mq-lag -q --max-age 1h ok
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -z "$stderr" ]
	run at 1000 mq-lag -q
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	run at 1000 mq-lag -q --fail-on stall
	[ "$status" -eq 1 ]
	[ "${lines[0]}" = "$HEADER" ]
	[ "$(groups_shown)" = "stall stop" ]
	run at 1000 mq-lag --quiet --fail-on stop --summary
	[ "$status" -eq 1 ]
	[ "$(awk 'NR > 1 { print $1, $7 }' <<<"$output")" = "stop STOP" ]
}

@test "an unknown group or topic exits 3 with a message" {
	mq-topic create t
	produce_at 0 t 1
	consume_at 0 G t 1
	run --separate-stderr mq-lag nosuch
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	[ "$stderr" = "mq-lag: group 'nosuch' not found" ]
	run --separate-stderr mq-lag G nosuch
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	run --separate-stderr mq-lag -t nosuch
	[ "$status" -eq 3 ]
	[ -z "$output" ]
	[ "$stderr" = "mq-lag: topic 'nosuch' not found" ]
	run --separate-stderr mq-lag --topic nosuch G
	[ "$status" -eq 3 ]
}

@test "bad options exit 2 with a message and the usage hint" {
	local args
	for args in "--fail-on bogus" "--max-age x" "--max-age -5m" "-w 0" "--watch x" "--window 0" \
		"--max-lag -1" "--max-lag x" "--allowed-lag x" "-J --summary" "--summary --prometheus" \
		"-J --prometheus" "--bogus" "-t ../x" "bad/group" "-d"; do
		# shellcheck disable=SC2086
		run --separate-stderr mq-lag $args
		echo "mq-lag $args: $status: $stderr"
		[ "$status" -eq 2 ]
		[ -z "$output" ]
		[[ "$stderr" == "mq-lag: "* ]]
		[[ "$stderr" == *$'\n'"Try 'mq-lag --help' for more information." ]]
	done
	run --separate-stderr mq-lag --fail-on bogus
	[ "${stderr%%$'\n'*}" = "mq-lag: invalid --fail-on 'bogus': expected warn, stall or stop" ]
}

@test "a commit history that cannot be read is corrupt data, exit 4" {
	mq-topic create t
	produce_at 0 t 3
	consume_at 0 G t 3
	echo 'not a commit' >>"$MQ_DIR/groups/G/offsets/t"
	run --separate-stderr mq-lag
	[ "$status" -eq 4 ]
	[ -z "$output" ]
	[ "$stderr" = "mq-lag: invalid commit history in '$MQ_DIR/groups/G/offsets/t'" ]
}

@test "-h prints the usage and exits 0; -V prints the version" {
	run mq-lag -h
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == "usage: mq-lag "* ]]
	run mq-lag --version
	[ "$status" -eq 0 ]
	[[ "$output" == "mq-lag "* ]]
}

# ---- choosing groups and topics -------------------------------------------

@test "GROUP arguments and -t TOPIC choose the rows; -d DIR the data directory" {
	mq-topic create t
	mq-topic create u
	produce_at 0 t 5
	produce_at 0 u 5
	at 1 mq-consume -e -g A t u >/dev/null
	at 1 mq-consume -e -g B t >/dev/null
	run mq-lag
	[ "$(awk 'NR > 1 { print $1 $2 }' <<<"$output" | tr '\n' ' ')" = "At Au Bt " ]
	run mq-lag B
	[ "$(awk 'NR > 1 { print $1 $2 }' <<<"$output" | tr '\n' ' ')" = "Bt " ]
	run mq-lag -t u
	[ "$(awk 'NR > 1 { print $1 $2 }' <<<"$output" | tr '\n' ' ')" = "Au " ]
	run mq-lag --topic u B
	[ "$status" -eq 0 ]
	[ "$output" = "$HEADER" ]
	run env MQ_DIR="$BATS_TEST_TMPDIR/elsewhere" mq-lag -d "$MQ_DIR" B
	[ "$(awk 'NR > 1 { print $1 $2 }' <<<"$output" | tr '\n' ' ')" = "Bt " ]
	run env MQ_DIR="$BATS_TEST_TMPDIR/elsewhere" mq-lag --dir="$MQ_DIR" B
	[ "$(awk 'NR > 1 { print $1 $2 }' <<<"$output" | tr '\n' ' ')" = "Bt " ]
}

# ---- output formats --------------------------------------------------------

@test "--summary prints one row per group: members, partitions, total and max lag, max age, status" {
	mq-topic create t -p 2
	seq 10 | at 0 mq-produce -p 0 t
	seq 4 | at 0 mq-produce -p 1 t
	at 1 mq-consume -e -g A t >/dev/null
	at 1 mq-consume -g B -p 0 -c 3 t >/dev/null
	run at 30 mq-lag --summary
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 3 ]
	[ "${lines[0]}" = "$(printf '%-16s %7s %10s %12s %12s %8s %s' GROUP MEMBERS PARTITIONS TOTAL-LAG MAX-LAG MAX-AGE STATUS)" ]
	[ "${lines[1]}" = "$(printf '%-16s %7d %10d %12d %12d %8s %s' A 0 2 0 0 0s OK)" ]
	# B: partition 0 at 3 of 10, partition 1 never committed (4 behind)
	[ "${lines[2]}" = "$(printf '%-16s %7d %10d %12d %12d %8s %s' B 0 2 11 7 30s STOP)" ]
}

@test "-J prints valid JSON with every group and partition" {
	five_statuses
	run --separate-stderr at 1000 mq-lag -J
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1 ]
	/usr/bin/python3 -m json.tool <<<"$output" >/dev/null
	run /usr/bin/python3 -c '
import json, sys
d = json.load(sys.stdin)
for g in d["groups"]:
    for p in g["partitions"]:
        print(g["group"], g["status"], g["members"], g["total_lag"], p["topic"], p["partition"],
              p["committed"], p["log_start"], p["end"], p["lag"], p["age_ms"], p["status"], p["owner"])
' <<<"$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "ok OK 0 0 t 0 100 0 100 0 0 OK None" ]
	[ "${lines[1]}" = "rewind REWIND 0 80 t 0 20 0 100 80 1000000 REWIND None" ]
	[ "${lines[2]}" = "stall STALL 1 60 t 0 40 0 100 60 1000000 STALL $holder@testhost" ]
	[ "${lines[3]}" = "stop STOP 0 40 t 0 60 0 100 40 1000000 STOP None" ]
	[ "${lines[4]}" = "warn WARN 0 70 t 0 30 0 100 70 1000000 WARN None" ]
}

@test "-J with a threshold lists the offending partitions of each offending group" {
	five_statuses
	run at 1000 mq-lag -J --fail-on stall
	[ "$status" -eq 1 ]
	echo "$output"
	run /usr/bin/python3 -c '
import json, sys
for g in json.load(sys.stdin)["groups"]:
    print(g["group"], [(p["topic"], p["partition"], p["status"]) for p in g["partitions"]])
' <<<"$output"
	[ "$status" -eq 0 ]
	[ "${lines[0]}" = "stall [('t', 0, 'STALL')]" ]
	[ "${lines[1]}" = "stop [('t', 0, 'STOP')]" ]
	[ "${#lines[@]}" -eq 2 ]
}

# check_prometheus FILE: strict checks of the text exposition format, then
# the metrics parsed with prometheus_client when it is installed; prints
# "name {labels} value" per sample, sorted.
check_prometheus() {
	/usr/bin/python3 - "$1" <<-'EOF'
	import re, sys
	text = open(sys.argv[1]).read()
	assert text.endswith("\n"), "no final newline"
	label = r'[a-z_]+="[A-Za-z0-9._-]*"'
	sample = re.compile(r'^([a-z_]+)\{(%s(?:,%s)*)\} (-?[0-9]+(?:\.[0-9]+)?)$' % (label, label))
	help_ = re.compile(r'^# HELP ([a-z_]+) [^\n]+$')
	type_ = re.compile(r'^# TYPE ([a-z_]+) gauge$')
	allowed = {
	    "mq_consumergroup_lag": ["group", "topic", "partition"],
	    "mq_consumergroup_lag_seconds": ["group", "topic", "partition"],
	    "mq_consumergroup_current_offset": ["group", "topic", "partition"],
	    "mq_topic_partition_end_offset": ["topic", "partition"],
	    "mq_consumergroup_members": ["group"],
	    "mq_consumergroup_status": ["group", "status"],
	}
	helped, typed, done, series, out = set(), set(), set(), set(), []
	current = None
	for line in text.split("\n")[:-1]:
	    m = help_.match(line)
	    if m:
	        name = m.group(1)
	        assert name in allowed and name not in helped, line
	        assert name not in done, "family split: " + line
	        if current: done.add(current)
	        helped.add(name); current = name
	        continue
	    m = type_.match(line)
	    if m:
	        assert m.group(1) == current and m.group(1) not in typed, line
	        typed.add(m.group(1))
	        continue
	    m = sample.match(line)
	    assert m, "bad line: %r" % line
	    name = m.group(1)
	    assert name == current and name in typed, "sample outside its family: " + line
	    keys = [kv.split("=")[0] for kv in m.group(2).split(",")]
	    assert keys == allowed[name], "labels of " + line
	    assert (name, m.group(2)) not in series, "duplicate series: " + line
	    series.add((name, m.group(2)))
	    out.append("%s {%s} %s" % (name, m.group(2), m.group(3)))
	try:
	    from prometheus_client.parser import text_string_to_metric_families
	except ImportError:
	    print("# no prometheus_client", file=sys.stderr)
	else:
	    parsed = []
	    for fam in text_string_to_metric_families(text):
	        assert fam.type == "gauge", fam.name
	        assert fam.name in allowed, fam.name
	        for s in fam.samples:
	            assert s.name == fam.name
	            assert sorted(s.labels) == sorted(allowed[s.name]), s
	            parsed.append((s.name, tuple(sorted(s.labels.items())), s.value))
	    mine = []
	    for l in out:
	        name, labels, value = l.split(" ")
	        kv = tuple(sorted(tuple(x.split("=")) for x in labels[1:-1].split(",")))
	        kv = tuple((k, v.strip('"')) for k, v in kv)
	        mine.append((name, kv, float(value)))
	    assert sorted(parsed) == sorted(mine), (parsed, mine)
	    print("# parsed with prometheus_client", file=sys.stderr)
	for l in sorted(out, key=lambda l: l.encode()):
	    print(l)
	EOF
}

@test "--prometheus prints the text exposition format, checked strictly and by a Prometheus parser" {
	five_statuses
	at 1000 mq-lag --prometheus >"$BATS_TEST_TMPDIR/m.prom"
	run --separate-stderr check_prometheus "$BATS_TEST_TMPDIR/m.prom"
	echo "$output"
	echo "$stderr"
	[ "$status" -eq 0 ]
	local want
	want=$(LC_ALL=C sort <<-EOF
	mq_consumergroup_current_offset {group="ok",topic="t",partition="0"} 100
	mq_consumergroup_current_offset {group="rewind",topic="t",partition="0"} 20
	mq_consumergroup_current_offset {group="stall",topic="t",partition="0"} 40
	mq_consumergroup_current_offset {group="stop",topic="t",partition="0"} 60
	mq_consumergroup_current_offset {group="warn",topic="t",partition="0"} 30
	mq_consumergroup_lag {group="ok",topic="t",partition="0"} 0
	mq_consumergroup_lag {group="rewind",topic="t",partition="0"} 80
	mq_consumergroup_lag {group="stall",topic="t",partition="0"} 60
	mq_consumergroup_lag {group="stop",topic="t",partition="0"} 40
	mq_consumergroup_lag {group="warn",topic="t",partition="0"} 70
	mq_consumergroup_lag_seconds {group="ok",topic="t",partition="0"} 0.000
	mq_consumergroup_lag_seconds {group="rewind",topic="t",partition="0"} 1000.000
	mq_consumergroup_lag_seconds {group="stall",topic="t",partition="0"} 1000.000
	mq_consumergroup_lag_seconds {group="stop",topic="t",partition="0"} 1000.000
	mq_consumergroup_lag_seconds {group="warn",topic="t",partition="0"} 1000.000
	mq_consumergroup_members {group="ok"} 0
	mq_consumergroup_members {group="rewind"} 0
	mq_consumergroup_members {group="stall"} 1
	mq_consumergroup_members {group="stop"} 0
	mq_consumergroup_members {group="warn"} 0
	mq_consumergroup_status {group="ok",status="OK"} 0
	mq_consumergroup_status {group="rewind",status="REWIND"} 2
	mq_consumergroup_status {group="stall",status="STALL"} 3
	mq_consumergroup_status {group="stop",status="STOP"} 4
	mq_consumergroup_status {group="warn",status="WARN"} 1
	mq_topic_partition_end_offset {topic="t",partition="0"} 100
	EOF
	)
	[ "$output" = "$want" ]
}

@test "--prometheus shows each partition's end once whatever the number of groups, and exits 1 on a threshold" {
	mq-topic create t -p 2
	mq-topic create u
	produce_at 0 t 3
	produce_at 0 u 2
	at 1 mq-consume -e -g A t u >/dev/null
	at 1 mq-consume -e -g B t >/dev/null
	commits C u 0 <<<"0 1 2"
	run at 2 mq-lag --prometheus
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/m.prom"
	run check_prometheus "$BATS_TEST_TMPDIR/m.prom"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^mq_topic_partition_end_offset ' <<<"$output")" -eq 3 ]
	# A: t/0, t/1, u/0; B: t/0, t/1; C: u/0
	[ "$(grep -c '^mq_consumergroup_lag ' <<<"$output")" -eq 6 ]
	# with a threshold every row is still shown, and the status tells
	run at 2 mq-lag --prometheus --max-lag 1
	[ "$status" -eq 1 ]
	[ "$(grep -c '^mq_consumergroup_lag{' <<<"$output")" -eq 6 ]
}

@test "-o FILE writes the output atomically: the whole of it, no temp file left" {
	five_statuses
	local dir=$BATS_TEST_TMPDIR/textfile
	mkdir "$dir"
	run --separate-stderr at 1000 mq-lag --prometheus -o "$dir/mq.prom"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -z "$stderr" ]
	at 1000 mq-lag --prometheus >"$BATS_TEST_TMPDIR/stdout.prom"
	cmp "$dir/mq.prom" "$BATS_TEST_TMPDIR/stdout.prom"
	[ "$(ls -A "$dir")" = mq.prom ]
	# a rewrite replaces the file (a new inode), never writes into it
	local ino
	ino=$(stat -c %i "$dir/mq.prom")
	exec 4<"$dir/mq.prom"
	run at 1000 mq-lag --output "$dir/mq.prom" --summary
	[ "$status" -eq 0 ]
	[ "$(stat -c %i "$dir/mq.prom")" != "$ino" ]
	cmp /dev/fd/4 "$BATS_TEST_TMPDIR/stdout.prom"
	exec 4<&-
	[ "$(head -1 "$dir/mq.prom" | awk '{ print $1, $2 }')" = "GROUP MEMBERS" ]
	[ "$(ls -A "$dir")" = mq.prom ]
	# with a threshold breached the file is written all the same
	run at 1000 mq-lag --prometheus -o "$dir/mq.prom" --fail-on stop
	[ "$status" -eq 1 ]
	cmp "$dir/mq.prom" "$BATS_TEST_TMPDIR/stdout.prom"
}

@test "-o FILE with -q and nothing breached leaves an empty file" {
	mq-topic create t
	produce_at 0 t 3
	consume_at 0 G t 3
	echo old >"$BATS_TEST_TMPDIR/out"
	run at 10 mq-lag -q --max-lag 0 -o "$BATS_TEST_TMPDIR/out"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ -f "$BATS_TEST_TMPDIR/out" ]
	[ ! -s "$BATS_TEST_TMPDIR/out" ]
	run at 10 mq-lag -q --max-lag 0 -o "$BATS_TEST_TMPDIR/out" --prometheus
	grep -q '^mq_consumergroup_lag{group="G",topic="t",partition="0"} 0$' "$BATS_TEST_TMPDIR/out"
}

@test "-o FILE in a directory that cannot hold it is an I/O error, exit 5" {
	touch "$BATS_TEST_TMPDIR/file"
	run --separate-stderr mq-lag -o "$BATS_TEST_TMPDIR/file/mq.prom"
	[ "$status" -eq 5 ]
	[[ "$stderr" == "mq-lag: cannot "* ]]
	run --separate-stderr mq-lag -o "$BATS_TEST_TMPDIR/missing/mq.prom"
	echo "$status: $stderr"
	[ "$status" -eq 5 ]
	[ ! -e "$BATS_TEST_TMPDIR/missing" ]
}

@test "-w SECONDS redraws until interrupted, and ends cleanly on SIGTERM" {
	mq-topic create t
	produce_at 0 t 3
	consume_at 0 G t 3
	run timeout 3 mq-lag -w 1 --summary
	[ "$status" -eq 124 ]
	[ "$(grep -c '^GROUP ' <<<"$output")" -ge 2 ]
	[ "$(grep -c '^G ' <<<"$output")" -eq "$(grep -c '^GROUP ' <<<"$output")" ]
	# not a terminal: no escape sequences
	[[ "$output" != *$'\033'* ]]
	run timeout -k 5 --preserve-status 2 mq-lag --watch 1
	[ "$status" -eq 0 ]
}

@test "-w on a terminal clears the screen before each redraw" {
	command -v script >/dev/null || skip "script(1) is not installed"
	mq-topic create t
	produce_at 0 t 3
	consume_at 0 G t 3
	run script -qec "timeout 2.5 mq-lag -w 1 --summary" /dev/null
	[ "$(grep -o $'\033\\[H\033\\[J''GROUP ' <<<"$output" | wc -l)" -ge 2 ]
}

# ---- documentation ----------------------------------------------------------

# The EXAMPLES of mq-lag(1) are run by tests/009-examples.bats; the cron
# and systemd examples of share/ here.

@test "the cron line and the systemd service in share/ run as written" {
	local share=$BATS_TEST_DIRNAME/../share prom=$BATS_TEST_TMPDIR/textfile_collector cmd
	mkdir -p "$prom"
	mq-topic create logs
	produce_at 0 logs 10
	consume_at 0 indexer logs 10
	# cron.d: five time fields, the user, the command
	run grep -Ev '^[[:space:]]*(#|$|[A-Z_]+=)' "$share/mq-lag.cron"
	[ "${#lines[@]}" -ge 1 ]
	for line in "${lines[@]}"; do
		read -r _ _ _ _ _ _ cmd <<<"$line"
		[[ $cmd == mq-lag* ]]
		run --separate-stderr bash -c "$cmd"
		[ "$status" -eq 0 ]
		[ -z "$output" ]
		[ -z "$stderr" ]
		# silent while all is well; mail (output) when not
		run bash -c "MQ_NOW_MS=$((T0 + 3600 * 1000)) $cmd"
		[ "$status" -eq 1 ] || [ "$status" -eq 0 ]
	done
	# the man page shows the same command
	grep -qF -- "$cmd" "$BATS_TEST_DIRNAME/../man/mq-lag.1"
	# systemd: every ExecStart, with the textfile directory moved here
	run grep '^ExecStart=' "$share/mq-lag.service"
	[ "${#lines[@]}" -ge 1 ]
	for line in "${lines[@]}"; do
		cmd=${line#ExecStart=}
		cmd=${cmd#-}
		cmd=${cmd//\/usr\/local\/bin\//}
		cmd=${cmd//\/var\/lib\/node_exporter\/textfile_collector/$prom}
		run --separate-stderr bash -c "$cmd"
		echo "$cmd: $status: $stderr"
		[ "$status" -eq 0 ]
		[ -z "$stderr" ]
	done
	run check_prometheus "$prom/mq.prom"
	[ "$status" -eq 0 ]
	[[ "$output" == *'mq_consumergroup_lag {group="indexer",topic="logs",partition="0"} 0'* ]]
	grep -q '^OnCalendar=' "$share/mq-lag.timer"
	grep -q '^Type=oneshot' "$share/mq-lag.service"
}

@test "bash completion offers the options, the groups and the topics" {
	mq-topic create logs
	produce_at 0 logs 1
	consume_at 0 indexer logs 1
	# shellcheck disable=SC1091
	source "$BATS_TEST_DIRNAME/../completions/mq-lag.bash"
	COMP_WORDS=(mq-lag --fail)
	COMP_CWORD=1
	_mq_lag
	[ "${COMPREPLY[*]}" = "--fail-on" ]
	COMP_WORDS=(mq-lag --fail-on '')
	COMP_CWORD=2
	_mq_lag
	[ "${COMPREPLY[*]}" = "warn stall stop" ]
	COMP_WORDS=(mq-lag -t '')
	_mq_lag
	[ "${COMPREPLY[*]}" = "logs" ]
	COMP_WORDS=(mq-lag -q '')
	_mq_lag
	[ "${COMPREPLY[*]}" = "indexer" ]
	COMP_WORDS=(mq-lag -d "$MQ_DIR" i)
	COMP_CWORD=3
	MQ_DIR=/nonexistent _mq_lag
	[ "${COMPREPLY[*]}" = "indexer" ]
}
