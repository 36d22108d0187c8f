# tests/consume_helper.bash: what tests/003-consume.bats needs beyond
# helper.bash: background consumers that the teardown always ends, waiting
# for a condition with a deadline, CPU time of a process, and a group's
# committed offsets as they are on disk.
#
#   start NAME CMD...          run CMD in the background, stdout to
#                              $BATS_TEST_TMPDIR/NAME.out, stderr to
#                              NAME.err; its pid goes into $NAME_pid (and
#                              into the list the teardown kills)
#   lines_in FILE              number of lines of FILE (0 when missing)
#   cpu_ticks PID              utime + stime of PID, in clock ticks
#   offsets_file G T           groups/G/offsets/T, the commit histories
#   committed G T P            the committed offset of partition P, or
#                              "none"
#   offset_history G T P       every offset of P's history, oldest first
#   owner_pid G T P            pid in groups/G/topics/T/P.lock (its owner),
#                              or nothing

BG_PIDS=()

start() {
	local name=$1
	shift
	"$@" >"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.err" 3>&- &
	local pid=$!
	BG_PIDS+=("$pid")
	printf -v "${name}_pid" '%s' "$pid"
}

kill_background() {
	local pid
	for pid in "${BG_PIDS[@]}"; do
		kill -9 "$pid" 2>/dev/null
	done
	for pid in "${BG_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	BG_PIDS=()
}

teardown() {
	kill_background
	mq_teardown
}

lines_in() {
	if [ -f "$1" ]; then
		wc -l <"$1" | tr -d ' '
	else
		echo 0
	fi
}

cpu_ticks() {
	# fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends
	# the command name (which may hold spaces)
	sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# groups/G/offsets/T holds "P OFFSET TIME END" lines, oldest first, for
# every partition of T (mq-format(5)); a partition's last line is its
# committed offset.
offsets_file() {
	echo "$MQ_DIR/groups/$1/offsets/$2"
}

committed() {
	local f
	f=$(offsets_file "$1" "$2")
	[ -f "$f" ] && awk -v p="$3" '$1 == p { o = $2 } END { if (o != "") print o; else print "none" }' "$f" ||
		echo none
}

offset_history() {
	local f
	f=$(offsets_file "$1" "$2")
	[ -f "$f" ] && awk -v p="$3" '$1 == p { print $2 }' "$f"
	return 0
}

owner_pid() {
	local f="$MQ_DIR/groups/$1/topics/$2/$3.lock"
	[ -s "$f" ] && cut -d' ' -f2 "$f"
	return 0
}
