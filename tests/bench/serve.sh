# tests/bench/serve.sh: section 11 of tests/bench/run, mq-serve over HTTP.
# Sourced by run (--only serve runs this group alone); it uses run's
# helpers (scen, timed, record, fail, note, check_count, topic_stats...)
# and variables (BIN, SCR, RES, LINESF, RUNS, QUICK...).
#
#   fetch   mq-consume -e --raw http://HOST/big > /dev/null, a topic of
#           SERVE_BYTES (1 GiB; --quick 128 MiB), against curl downloading
#           a file of the same bytes from nginx (sendfile on), both servers
#           on this machine
#   hprod   mq-produce --batch-size B http://HOST/T, B chosen for 1,000
#           records a batch and so a request, against the same mq-produce
#           into a local directory
#   lpoll   the delay from a local append (one record every 50 ms) to a
#           tailing mq-consume over HTTP printing it, against the same
#           consumer on the directory
#   conns   mq-serve's peak RSS holding 1,000 idle connections, against
#           the same (fresh) server before them
#
# The servers are started here (serve_start is run's) and stopped at the
# end, or by run's trap.
# shellcheck shell=bash disable=SC2034,SC2154,SC2046,SC2207

SD=$SCR/serve       # mq-serve's data directory
WWW=$SCR/www        # nginx's root
SURL=
NURL=

# nginx_start ROOT: nginx in the foreground, one process (no master, so no
# change of user), a private configuration and logs; sets NGINX_PID, NURL
nginx_start() {
	local d=$SCR/nginx port
	mkdir -p "$d"
	port=$(free_port)
	cat > "$d/nginx.conf" <<-EOF
	daemon off;
	master_process off;
	worker_rlimit_nofile 8192;
	error_log $d/error.log;
	pid $d/nginx.pid;
	events { worker_connections 4096; }
	http {
		access_log off;
		sendfile on;
		tcp_nopush on;
		client_body_temp_path $d/body;
		proxy_temp_path $d/proxy;
		fastcgi_temp_path $d/fastcgi;
		uwsgi_temp_path $d/uwsgi;
		scgi_temp_path $d/scgi;
		server {
			listen 127.0.0.1:$port;
			root $1;
		}
	}
	EOF
	"$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/error.log" > "$d/out" 2>&1 &
	NGINX_PID=$!
	NURL=http://127.0.0.1:$port
	for _ in $(seq 100); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$NURL/ping")" = 200 ] && return 0
		kill -0 "$NGINX_PID" 2>/dev/null || break
		sleep 0.05
	done
	return 1
}
nginx_stop() {
	[ -n "$NGINX_PID" ] || return 0
	kill "$NGINX_PID" 2>/dev/null
	wait "$NGINX_PID" 2>/dev/null
	NGINX_PID=
}

# ---- the served topic: the input again and again up to SERVE_BYTES --------------
log "mq-serve: a topic of $((SERVE_BYTES >> 20)) MiB"
rm -rf "$SD" "$WWW"
mkdir -p "$WWW"
echo ok > "$WWW/ping"
SREC=0
SBYTES=0
berr=
"$BIN/mq-topic" -d "$SD" create big -p 1 > /dev/null || berr="mq-topic create failed"
while [ -z "$berr" ] && [ "$SBYTES" -lt "$SERVE_BYTES" ] && [ "$SREC" -lt $((LINES * 64)) ]; do
	"$BIN/mq-produce" -d "$SD" big < "$LINESF" || berr="mq-produce failed"
	set -- $(topic_stats "$SD" big)
	SREC=${1:-0}
	SBYTES=${2:-0}
done
BIGSEGS=($(ls "$SD"/topics/big/0/*.log | sort))
cat "${BIGSEGS[@]}" > "$WWW/file" || berr="${berr:-cannot copy the segments for nginx}"

SOK=1
if ! serve_start "$SD" "$SCR/serve.err"; then
	berr="${berr:-mq-serve did not start: $(tail -n 3 "$SCR/serve.err")}"
	SOK=0
fi
NOK=0
if [ -z "$NGINX" ]; then
	log "nginx not available"
elif nginx_start "$WWW"; then
	NOK=1
else
	log "nginx did not start: $(tail -n 3 "$SCR/nginx/error.log" "$SCR/nginx/out" 2>/dev/null)"
	nginx_stop
fi

# ---- 11a. fetch ---------------------------------------------------------------------
if [ $NOK = 1 ]; then
	scen fetch "HTTP fetch: consume -e --raw http://… > /dev/null" "$SREC" "$SBYTES" \
		"curl http://nginx/file -o /dev/null" thr "ratio_min:0.5,rss_max:32768"
	note fetch "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), sendfile on, one process; CPU s is the client's plus the server's"
else
	scen fetch "HTTP fetch: consume -e --raw http://… > /dev/null" "$SREC" "$SBYTES" "" none "rss_max:32768"
	note fetch "nginx not available: no yardstick"
fi
[ -z "$berr" ] || fail fetch "$berr"
if [ $SOK = 1 ]; then
	WARM=("${BIGSEGS[@]}" "$WWW/file")
	want_sum=$(cksum < "$WWW/file")
	got=$("$BIN/mq-consume" -e --raw "$SURL/big" | cksum)
	[ "$got" = "$want_sum" ] || fail fetch "--raw over HTTP (cksum $got) differs from the segment files ($want_sum)"
	if [ $NOK = 1 ]; then
		got=$(curl -sf "$NURL/file" | cksum)
		[ "$got" = "$want_sum" ] || fail fetch "nginx served cksum $got, the file is $want_sum"
	fi
	for i in $(seq "$RUNS"); do
		if [ $NOK = 1 ]; then
			c0=$(proc_cpu "$NGINX_PID")
			NORECORD=1 timed fetch yard 'TM curl -sf -o /dev/null "$NURL/file"' &&
				add_cpu "$NGINX_PID" "$c0" && record fetch yard
		fi
		c0=$(proc_cpu "$SERVE_PID")
		NORECORD=1 timed fetch mq 'TM "$BIN/mq-consume" -e --raw "$SURL/big" > /dev/null' &&
			add_cpu "$SERVE_PID" "$c0" && record fetch mq
	done
	note fetch "$((SBYTES >> 20)) MiB ($SREC records; the client asks for 1 MiB a request); mq-serve's peak RSS $(( $(proc_hwm "$SERVE_PID") >> 10 )) MiB"
	WARM=()
fi

# ---- 11b. produce -----------------------------------------------------------------------
# --batch-size for 1,000 records a batch: a batch is cut before the record
# that would take it past the size, counting that record as its key and
# value plus 32 bytes; with e the mean bytes of a record in the log and v
# the mean value, the 1,000th fits and the 1,001st does not when the size
# is about header (61) + 999 e + v + 32.  The mean reached is reported.
set -- $(topic_stats "$SD" big)
BS=$(awk -v b="${2:-0}" -v n="${1:-1}" -v ib="$IN_BYTES" -v l="$LINES" \
	'BEGIN { printf "%d", 61 + 999 * b / n + (ib / l - 1) + 32 }')
scen hprod "HTTP produce: mq-produce --batch-size $BS http://… (1,000 records a request)" "$LINES" "$IN_BYTES" \
	"the same, -d DIR (local)" thr "recs_min:500000,rss_max:32768"
if [ $SOK = 1 ]; then
	note hprod "CPU s of HTTP produce is the client's plus mq-serve's"
	WARM=("$LINESF")
	for i in $(seq "$RUNS"); do
		new_topic "$D2" 1 || fail hprod "mq-topic create failed"
		timed hprod yard 'TM "$BIN/mq-produce" -d "$D2" --batch-size "$BS" t < "$LINESF"' &&
			check_count hprod "$D2" t "$LINES"
		"$BIN/mq-topic" -d "$SURL" create "hp$i" -p 1 > /dev/null || fail hprod "mq-topic create over HTTP failed"
		c0=$(proc_cpu "$SERVE_PID")
		NORECORD=1 timed hprod mq 'TM "$BIN/mq-produce" --batch-size "$BS" "$SURL/hp$i" < "$LINESF"' &&
			add_cpu "$SERVE_PID" "$c0" && record hprod mq && check_count hprod "$SD" "hp$i" "$LINES"
		if [ "$i" = "$RUNS" ]; then
			check_content hprod "$SURL" "hp$i"
			per=$("$BIN/mq-topic" dump "$SD"/topics/hp$i/0/*.log | awk '
				{ for (i = 1; i < NF; i++) if ($i == "count:") { n++; s += $(i + 1) } }
				END { if (n) printf "%d requests of %.1f records on average", n, s / n }')
			note hprod "${per:-no batches}"
		fi
		"$BIN/mq-topic" -d "$SURL" delete "hp$i" > /dev/null || fail hprod "mq-topic delete over HTTP failed"
	done
	rm -rf "$D2"
	WARM=()
fi

# ---- 11c. long-poll latency -----------------------------------------------------------
LATN=$((QUICK ? 20 : 100))
LATW=5
LAT_MS=50
scen lpoll "HTTP long-poll: local append → consume -f over HTTP, 1 record / ${LAT_MS} ms" 0 0 \
	"the same consumer, -d DIR (local)" time "p99_max:100" latency
# lat_run ROLE TOPIC CONSUMER-ARGS...: one run of LATN records
lat_run() {
	local role=$1 topic=$2 cpid c0 p50 p99 max n
	shift 2
	"$BIN/mq-topic" -d "$SD" create "$topic" -p 1 > /dev/null || { fail lpoll "mq-topic create failed"; return 1; }
	rm -f "$TF" "$SCR/lat.out"
	c0=$(proc_cpu "$SERVE_PID")
	{ TM timeout 120 "$BIN/mq-consume" -c $((LATN + LATW)) -f "$FMT" "$@" |
		"$PY" "$BENCH/serve.py" recv "$LATN" > "$SCR/lat.out"; } &
	cpid=$!
	"$PY" "$BENCH/serve.py" send "$LATN" "$LAT_MS" "$LATW" |
		"$BIN/mq-produce" -d "$SD" --linger 0 "$topic" || fail lpoll "mq-produce --linger 0 failed"
	if ! wait "$cpid"; then
		fail lpoll "$role: the tailing consumer did not see $LATN records"
		return 1
	fi
	read -r p50 p99 max n < "$SCR/lat.out"
	read -r _ TU TS TRSS TFSIN <<< "$(tail -n 1 "$TF")"
	[ "$role" = mq ] && add_cpu "$SERVE_PID" "$c0"
	T0=0
	T1=$(awk -v a="$p50" 'BEGIN { printf "%.6f", a / 1000 }')
	record lpoll "$role"
	stat_sample lpoll "$role" p50_ms "$p50"
	stat_sample lpoll "$role" p99_ms "$p99"
	stat_sample lpoll "$role" max_ms "$max"
}
if [ $SOK = 1 ]; then
	for i in $(seq "$RUNS"); do
		lat_run yard "lat-local$i" -d "$SD" "lat-local$i"
		lat_run mq "lat-http$i" "$SURL/lat-http$i"
	done
	note lpoll "$LATN records a run after $LATW to warm up; mq-produce --linger 0 appends each as it comes; the latency is the consumer's print time minus the time written in the record; CPU s is the consumer's (plus mq-serve's over HTTP) for the whole run"
fi
serve_stop

# ---- 11d. idle connections ------------------------------------------------------------
NCONN=1000
NCONN_TXT=1,000
scen conns "mq-serve holding $NCONN_TXT idle connections (peak RSS)" 0 0 "the same mq-serve before them" none \
	"connkib_max:64" conns
for i in $(seq "$RUNS"); do
	rm -rf "$SCR/empty"
	mkdir -p "$SCR/empty"
	if ! serve_start "$SCR/empty" "$SCR/serve.err"; then
		fail conns "mq-serve did not start: $(tail -n 3 "$SCR/serve.err")"
		serve_stop
		break
	fi
	out=$("$PY" "$BENCH/serve.py" conns "${SURL##*:}" "$NCONN" "$SERVE_PID" 2) ||
		fail conns "serve.py conns failed"
	set -- $out
	# before HWM RSS THREADS round HWM RSS THREADS ALIVE round HWM RSS THREADS ALIVE
	if [ $# -ne 14 ] || [ "${9}" != "$NCONN" ] || [ "${14}" != "$NCONN" ]; then
		fail conns "not all $NCONN connections were held open: '$out'"
	else
		T0=0 T1=0 TU=0 TS=0 TFSIN=0
		TRSS=$2
		record conns yard
		TRSS=$6
		record conns mq
		stat_sample conns mq conn_kib "$(awk -v a="$2" -v b="$6" -v n="$NCONN" 'BEGIN { printf "%.2f", (b - a) / n }')"
		stat_sample conns mq round2_kib $((${11} - $6))
		stat_sample conns mq threads $(($8 - $4))
		r2="one thread each ($(($8 - $4)) more threads with the connections); closed and opened again, $NCONN_TXT more raised the peak by $((${11} - $6)) KiB; the connections are idle: a request in progress may also use libmicrohttpd's 64 KiB pool, its body (up to --max-body) and the thread's stack (1 MiB reserved)"
	fi
	serve_stop
done
[ -n "${r2:-}" ] && note conns "$r2"
if [ $NOK = 1 ]; then
	set -- $("$PY" "$BENCH/serve.py" conns "${NURL##*:}" "$NCONN" "$NGINX_PID")
	[ $# -eq 9 ] && [ "$9" = "$NCONN" ] &&
		note conns "nginx (one event loop) holding the same $NCONN_TXT connections: $(awk -v a="$3" -v b="$7" -v n="$NCONN" 'BEGIN { printf "%.1f", (b - a) / n }') KiB RSS each"
fi
nginx_stop
rm -rf "$SD" "$WWW" "$SCR/empty"
