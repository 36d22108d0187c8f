# tests/remote/transport.bash: the servers behind MQ_TEST_TRANSPORT=http
# and the address of a data directory in each transport.  Sourced by
# tests/helper.bash (mq_setup, mq_teardown) and by tests/remote/wrapper.
#
# Environment (exported by mq_setup):
#   MQ_TEST_TRANSPORT  local, http or ssh
#   MQ_TEST_BIN        the programs just built (bin/)
#   MQ_TEST_DIR        the test's data directory, $MQ_DIR
#   MQ_TEST_ADDR       its address
#   MQ_TEST_SERVERS    the test's registry of mq-serve processes, one
#                      "PID PORT KIND DIR" line each (KIND: shared, or
#                      clocked for one program's own); a lock on it
#                      (flock) keeps two programs from serving one
#                      directory twice
#
# In ssh mode, a directory /ABS/DIR is ssh://localhost/ABS/DIR, reached
# through the fake ssh of tests/bin.  In http mode it is the address of
# the mq-serve that serves it: the one mq_setup started for $MQ_DIR, or
# one started on first use for any other directory (a test's second data
# directory), left running until mq_teardown; or, for a program run with
# the fake clock MQ_NOW_MS, a server of its own with that clock.

# transport_serve DIR [PID]: starts `mq-serve -q -d DIR -l 127.0.0.1:0`,
# waits for its "serving on" line and registers it; prints its address.
# The server keeps none of the caller's descriptors (a `run` or bats
# itself would wait for them, and the registry's lock would stay held)
# and is nobody's child but init's once the subshell that started it is
# gone.
#
# With PID, the server is that program's alone and ends when it does: a
# program run with the fake clock MQ_NOW_MS needs a server that keeps
# the same time (the commit times and the ages mq-lag shows are the
# server's), as the fake ssh gives it.  It runs under a small watcher,
# the registered pid, that ends it when PID is gone or on SIGTERM.
transport_serve() {
	local dir=$1 watch=$2 err pid port i kind=shared
	err=$(mktemp "${MQ_TEST_SERVERS}.err.XXXXXX") || return 1
	[ -z "$watch" ] || kind=clocked
	pid=$(
		(
			for fd in /proc/"$BASHPID"/fd/*; do
				fd=${fd##*/}
				[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
			done
			[ -n "$watch" ] || exec "$MQ_TEST_BIN/mq-serve" -q -d "$dir" -l 127.0.0.1:0
			"$MQ_TEST_BIN/mq-serve" -q -d "$dir" -l 127.0.0.1:0 &
			srv=$!
			trap 'kill -TERM "$srv" 2>/dev/null; wait "$srv"; exit 0' TERM
			while ! transport_gone "$watch" && kill -0 "$srv" 2>/dev/null; do
				sleep 0.05 &
				wait $!
			done
			kill -TERM "$srv" 2>/dev/null
			wait "$srv"
		) </dev/null >/dev/null 2>"$err" &
		echo $!
	)
	for ((i = 0; i < 1000; i++)); do
		port=$(sed -n 's/^mq-serve: serving on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$err")
		[ -n "$port" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.01
	done
	if [ -z "$port" ]; then
		echo "transport: mq-serve -d $dir did not start:" >&2
		cat "$err" >&2
		kill "$pid" 2>/dev/null
		return 1
	fi
	echo "$pid $port $kind $dir" >>"$MQ_TEST_SERVERS"
	echo "http://127.0.0.1:$port"
}

# transport_addr DIR [PID]: the address of data directory DIR in this
# transport; fails for a relative path (a program would resolve it
# against its own directory, which no server shares).  In http mode,
# with PID, a server of PID's own (transport_serve).
transport_addr() {
	local dir=$1 watch=$2 pid port kind d
	while [ "${#dir}" -gt 1 ] && [ "${dir%/}" != "$dir" ]; do
		dir=${dir%/}
	done
	case $dir in
	/*) ;;
	*) return 1 ;;
	esac
	case $MQ_TEST_TRANSPORT in
	ssh) echo "ssh://localhost$dir" ;;
	http)
		(
			flock -x 9
			touch "$MQ_TEST_SERVERS"
			while [ -z "$watch" ] && read -r pid port kind d; do
				if [ "$kind" = shared ] && [ "$d" = "$dir" ]; then
					echo "http://127.0.0.1:$port"
					exit 0
				fi
			done <"$MQ_TEST_SERVERS"
			transport_serve "$dir" "$watch"
		) 9>>"$MQ_TEST_SERVERS.lock"
		;;
	*) return 1 ;;
	esac
}

# transport_gone PID: PID has exited (a zombie counts as gone).
transport_gone() {
	! kill -0 "$1" 2>/dev/null ||
		[ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" = Z ]
}

# transport_stop: ends every registered server with SIGTERM and fails
# unless each one is gone within 5 s (it is killed then).  Errors a
# server wrote go to stderr, for the test's diagnostics.
transport_stop() {
	local pid port kind dir i rc=0 f
	[ -f "$MQ_TEST_SERVERS" ] || return 0
	while read -r pid port kind dir; do
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		for ((i = 0; i < 500; i++)); do
			transport_gone "$pid" && break
			sleep 0.01
		done
		if ! transport_gone "$pid"; then
			echo "transport: mq-serve $pid (port $port, $dir) still there 5 s after SIGTERM" >&2
			kill -9 "$pid" 2>/dev/null
			rc=1
		fi
	done <"$MQ_TEST_SERVERS"
	for f in "$MQ_TEST_SERVERS".err.*; do
		[ -f "$f" ] || continue
		grep -v '^mq-serve: serving on ' "$f" >&2
		rm -f "$f"
	done
	rm -f "$MQ_TEST_SERVERS" "$MQ_TEST_SERVERS.lock"
	return "$rc"
}
