#!/usr/bin/env bats
# The EXAMPLES of every man page, run as a user would type them, in order,
# in a fresh data directory (see tests/man_examples.py for the markers).

load helper

setup() { mq_setup; cd "$BATS_TEST_TMPDIR"; }
teardown() { mq_teardown; }

run_examples() {
	/usr/bin/python3 "$BATS_TEST_DIRNAME/man_examples.py" "$BATS_TEST_DIRNAME/../man/$1" > examples.sh
	run bash examples.sh
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "mq-topic(1) EXAMPLES run" { run_examples mq-topic.1; }
@test "mq-produce(1) EXAMPLES run" { run_examples mq-produce.1; }
@test "mq-consume(1) EXAMPLES run" { run_examples mq-consume.1; }
@test "mq-lag(1) EXAMPLES run" { run_examples mq-lag.1; }
@test "mq-serve(1) EXAMPLES run" { run_examples mq-serve.1; }
@test "mq-replicate(1) EXAMPLES run" { run_examples mq-replicate.1; }
@test "mq(7) EXAMPLES run" { run_examples mq.7; }
