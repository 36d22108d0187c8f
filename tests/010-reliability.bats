#!/usr/bin/env bats
# tests/010-reliability.bats: the quick form of the reliability suite
# (tests/RELIABILITY.md says what each part proves; tests/torture runs
# the same tools for much longer).  "Nothing acknowledged is ever lost,
# nothing torn is ever shown", checked the way SQLite and Kafka check it:
#
#   tests/crash/driver       SIGKILL at random moments and at every call
#                            of an operation in turn, restart, check
#                            (also of mq-replicate and its leader)
#   tests/fault/faults.py    the Nth write/fsync/rename/open failing
#                            (tests/fault/faultinj.c), N = 1, 2, ...
#   tests/crash/powerloss.py the disk as a power loss would leave it,
#                            from a journal of the run
#                            (tests/fault/journal.c)
#   tests/crash/stress.py    producers, group consumers, retention and a
#                            partition change at once
#
# Each tool prints what it checked and, on failure, the property that did
# not hold, with the data directory it kept.

load helper

setup_file() {
	local shim
	mkdir -p "$BATS_FILE_TMPDIR/shims"
	# a shim that does not build makes the tests needing it skip
	for shim in faultinj journal; do
		cc -shared -fPIC -O1 -o "$BATS_FILE_TMPDIR/shims/$shim.so" \
			"$BATS_TEST_DIRNAME/fault/$shim.c" -ldl 2>>"$BATS_FILE_TMPDIR/shims/cc.err" ||
			rm -f "$BATS_FILE_TMPDIR/shims/$shim.so"
	done
}

setup() {
	mq_setup
	FAULTINJ="$BATS_FILE_TMPDIR/shims/faultinj.so"
	JOURNAL="$BATS_FILE_TMPDIR/shims/journal.so"
	# the tools' scratch directories go under the test's own
	TMPDIR="$BATS_TEST_TMPDIR"
	export TMPDIR
}

need_shims() {
	if [ ! -f "$FAULTINJ" ] || [ ! -f "$JOURNAL" ]; then
		skip "cannot build the LD_PRELOAD shims: $(cat "$BATS_FILE_TMPDIR/shims/cc.err")"
	fi
}

# Runs a tool; on failure its report is shown.
tool() {
	run --separate-stderr "$PYTHON" "$@"
	printf '%s\n' "$output" "$stderr"
	[ "$status" -eq 0 ]
}

@test "crash: SIGKILL rounds of mq-produce (plain, --fsync, lz4, several at once, -F) lose nothing acknowledged" {
	tool "$BATS_TEST_DIRNAME/crash/driver" --rounds 3 --only plain,fsync,lz4,multi,follow,follow-keyed
	[[ "$output" == *"crash: "*" rounds survived"* ]]
}

@test "crash: SIGKILL rounds of mq-consume -g skip no record and never move commits back" {
	tool "$BATS_TEST_DIRNAME/crash/driver" --rounds 4 --only group
}

@test "crash: SIGKILL at every write, sync, rename and open of mq-produce (also -F) and mq-consume -g" {
	need_shims
	tool "$BATS_TEST_DIRNAME/crash/driver" --only points,follow-points,group-points --shim "$FAULTINJ"
}

@test "crash: SIGKILL rounds of mq-replicate -f and mq-produce --acks all (directory, mq-serve, ssh)" {
	# one round through each kind of source; the follower a byte-identical
	# prefix of the leader, the high watermark never past what it holds
	tool "$BATS_TEST_DIRNAME/crash/driver" --rounds 3 --only replicate
	[[ "$output" == *"crash replicate: 3 rounds (dir 1, http 1, ssh 1)"*": ok"* ]]
}

@test "faults: mq-produce fails cleanly on a failing write, fsync, fdatasync, rename, open, ftruncate" {
	need_shims
	tool "$BATS_TEST_DIRNAME/fault/faults.py" --shim "$FAULTINJ" --only produce
}

@test "faults: mq-topic create leaves a topic whole or not at all" {
	need_shims
	tool "$BATS_TEST_DIRNAME/fault/faults.py" --shim "$FAULTINJ" --only create
}

@test "faults: mq-consume -g fails cleanly when a commit cannot be written" {
	need_shims
	tool "$BATS_TEST_DIRNAME/fault/faults.py" --shim "$FAULTINJ" --only consume
}

@test "faults: EINTR and short writes do not show (mq-produce, mq-consume -g)" {
	need_shims
	tool "$BATS_TEST_DIRNAME/fault/faults.py" --shim "$FAULTINJ" --only transparent
}

@test "faults: mq-serve's Nth write, fdatasync, open failing under HTTP produce and fetch" {
	need_shims
	tool "$BATS_TEST_DIRNAME/fault/faults.py" --shim "$FAULTINJ" --only serve
}

@test "power loss: --fsync keeps every acknowledged record and every completed commit" {
	need_shims
	tool "$BATS_TEST_DIRNAME/crash/powerloss.py" --shim "$JOURNAL" --only existing,new-topic,group --reorder 15
	[[ "$output" == *"distinct crash states"* ]]
}

@test "power loss: directories mq creates are durable (a fresh data directory, a new group)" {
	need_shims
	tool "$BATS_TEST_DIRNAME/crash/powerloss.py" --shim "$JOURNAL" --only fresh,new-group --reorder 5
}

@test "stress: 8 producers, 6 group consumers, gc and a partition change, 15 seconds" {
	tool "$BATS_TEST_DIRNAME/crash/stress.py" --time 15
}
