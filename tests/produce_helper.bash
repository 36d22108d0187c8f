# tests/produce_helper.bash: helpers of the mq-produce suite
# (tests/002-produce.bats loads it after helper.bash).
#
#   gen_lines N [SEED]         N text lines on stdout: words with UTF-8,
#                              tabs inside lines, every 997th line empty,
#                              each line ending in its number (so that
#                              every line is distinct)
#   gen_keyed N [SEED]         N lines "key<TAB>value...", 50 distinct keys,
#                              values that hold further tabs
#   gen_binary N [SEED]        N NUL-terminated binary records (bytes
#                              0x01-0xff, newlines included) on stdout
#   slow_append FILE FROM TO [keyed]
#                              appends "line N" (keyed: "user-K<TAB>line N",
#                              50 keys) for N = FROM..TO to FILE, 1000 lines
#                              every 5 ms or so, lines cut across writes
#   kafka_decode MODE TOPIC [ARG]
#                              reads every partition of TOPIC straight from
#                              its .log files with kafka-python's own
#                              decoder (DefaultRecordBatch), and fails
#                              (status 1, reason on stderr) unless every
#                              batch is whole, magic 2, CRC-32C valid,
#                              decodes to exactly its record count and
#                              lastOffsetDelta, and offsets are dense from
#                              the first segment's base offset.  MODE:
#                                summary  one line per non-empty partition:
#                                         "P RECORDS BATCHES CODECS" (codecs
#                                         used, comma-separated)
#                                values   the values of all partitions, in
#                                         partition then offset order, each
#                                         followed by ARG (default newline;
#                                         backslash escapes: '\0' for NUL)
#                                batches  one line per batch: "P BASEOFFSET
#                                         RECORDS CODEC"
#                                records  "P OFFSET KEY VALUE HEADERS" lines,
#                                         tab-separated, bytes shown as
#                                         UTF-8 with \xNN for the rest and
#                                         \\ \t \n escaped, null as (null),
#                                         headers k=v,...
#   offsets_dense TOPIC [P]    fails unless mq-consume -e -f '%o' of
#                              partition P lists 0..N-1; prints N
#   verify_clean TOPIC         mq-topic verify TOPIC exits 0 and says "ok"
#                              for every partition
#   nrecords TOPIC             records in all partitions of TOPIC
#   has_records TOPIC N        at least N records in TOPIC
#   bg_started PID             ends PID (kill -9) at teardown if still there
#   produce_teardown           teardown of the suite: ends what bg_started
#                              names, then mq_teardown

gen_lines() {
	awk -v n="$1" -v seed="${2:-1}" 'BEGIN {
		srand(seed)
		nw = split("alpha beta gamma délta εψιλον 日本語 😀 GET /index.html?q=1 200 ß € \"quoted\" back\\slash - [x] {y} naïve ÆØÅ", w, " ")
		for (i = 0; i < n; i++) {
			if (i % 997 == 996) { print ""; continue }
			k = int(rand() * 14); s = ""
			for (j = 0; j < k; j++)
				s = s w[int(rand() * nw) + 1] (rand() < 0.15 ? "\t" : " ")
			print s i
		}
	}'
}

gen_keyed() {
	awk -v n="$1" -v seed="${2:-1}" 'BEGIN {
		srand(seed)
		for (i = 0; i < n; i++) {
			k = int(rand() * 50)
			printf "user-%d\tvalue %d\twith tab ü %d\n", k, i, int(rand() * 1000000)
		}
	}'
}

gen_binary() {
	"$PYTHON" -c '
import random, sys
n, seed = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(seed)
out = bytearray()
every = bytes(range(1, 256))
for i in range(n):
    if i % 100 == 0:
        rec = every                     # every byte but NUL, \n among them
    else:
        rec = bytes(rnd.randrange(1, 256) for _ in range(rnd.randrange(0, 60)))
        rec += b"\n" + str(i).encode()
    out += rec + b"\0"
sys.stdout.buffer.write(out)
' "$1" "${2:-1}"
}

slow_append() {
	"$PYTHON" -c '
import sys, time
path, a, b, keyed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:] == ["keyed"]
with open(path, "a") as f:
    for i in range(a, b + 1):
        f.write("user-%d\tline %d\n" % (i * 7919 % 50, i) if keyed else "line %d\n" % i)
        if i % 1000 == 0:
            f.flush()
            time.sleep(0.005)
' "$@"
}

kafka_decode() {
	"$PYTHON" - "$MQ_DIR/topics/$2" "$1" "${3-$'\n'}" <<'EOF'
import os, struct, sys
from kafka.record.default_records import DefaultRecordBatch

tdir, mode = sys.argv[1], sys.argv[2]
sep = sys.argv[3].encode("utf-8").decode("unicode_escape").encode("latin-1")
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
out = sys.stdout.buffer

def fail(msg):
    sys.stderr.write("kafka_decode: %s\n" % msg)
    sys.exit(1)

def show(b):
    if b is None:
        return "(null)"
    s = b.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")
    return s.replace("\t", "\\t").replace("\n", "\\n")

parts = sorted(int(d) for d in os.listdir(tdir) if d.isdigit())
for p in parts:
    pdir = os.path.join(tdir, str(p))
    segs = sorted(f for f in os.listdir(pdir) if f.endswith(".log"))
    expect = None
    nrec = nbatch = 0
    codecs = set()
    for seg in segs:
        base = int(seg[:-4])
        if expect is not None and base != expect:
            fail("%s/%s: segment starts at %d, previous ended at %d" % (p, seg, base, expect))
        expect = base
        data = open(os.path.join(pdir, seg), "rb").read()
        pos = 0
        while pos < len(data):
            if len(data) - pos < 61:
                fail("%s/%s: byte %d: torn batch header" % (p, seg, pos))
            boff, blen = struct.unpack_from(">qi", data, pos)
            if data[pos + 16] != 2:
                fail("%s/%s: byte %d: magic %d" % (p, seg, pos, data[pos + 16]))
            if pos + 12 + blen > len(data):
                fail("%s/%s: byte %d: torn batch" % (p, seg, pos))
            b = DefaultRecordBatch(data[pos:pos + 12 + blen])
            if not b.validate_crc():
                fail("%s/%s: byte %d: CRC mismatch" % (p, seg, pos))
            if b.base_offset != expect:
                fail("%s/%s: byte %d: base offset %d, expected %d" % (p, seg, pos, b.base_offset, expect))
            if b.is_control_batch:
                fail("%s/%s: byte %d: unexpected control batch" % (p, seg, pos))
            codec = CODECS.get(b.compression_type, "?")
            codecs.add(codec)
            n = 0
            maxts = -1
            for r in b:
                if r.offset != expect + n:
                    fail("%s/%s: record offset %d, expected %d" % (p, seg, r.offset, expect + n))
                maxts = max(maxts, r.timestamp)
                if mode == "values":
                    out.write(r.value or b"")
                    out.write(sep)
                elif mode == "records":
                    hs = ",".join("%s=%s" % (k, show(v)) for k, v in r.headers)
                    out.write(("%d\t%d\t%s\t%s\t%s\n" % (p, r.offset, show(r.key), show(r.value), hs)).encode())
                n += 1
            if n == 0 or b.last_offset_delta != n - 1:
                fail("%s/%s: byte %d: %d records, lastOffsetDelta %d" % (p, seg, pos, n, b.last_offset_delta))
            if b.max_timestamp != maxts:
                fail("%s/%s: byte %d: maxTimestamp %d, records up to %d" % (p, seg, pos, b.max_timestamp, maxts))
            if mode == "batches":
                out.write(("%d %d %d %s\n" % (p, b.base_offset, n, codec)).encode())
            expect += n
            nrec += n
            nbatch += 1
            pos += 12 + blen
    if mode == "summary" and nrec:
        out.write(("%d %d %d %s\n" % (p, nrec, nbatch, ",".join(sorted(codecs)))).encode())
EOF
}

offsets_dense() {
	local n
	n=$(mq-consume -e -p "${2:-0}" -f '%o\n' "$1" | awk '$0 != NR - 1 { bad = 1; exit } END { if (bad) exit 1; print NR }') || {
		echo "offsets of $1/${2:-0} are not 0..N-1" >&2
		return 1
	}
	echo "$n"
}

verify_clean() {
	local out rc=0
	out=$(mq-topic verify "$1" 2>&1) || rc=$?
	if [ "$rc" -ne 0 ] || [ -z "$out" ] || printf '%s\n' "$out" | grep -qv ': ok$'; then
		echo "mq-topic verify $1: status $rc: $out" >&2
		return 1
	fi
}

nrecords() {
	mq-consume -e -f '%o\n' "$1" 2>/dev/null | wc -l
}

has_records() {
	[ "$(nrecords "$1")" -ge "$2" ]
}

# Remembers a background process for teardown to end (produce_teardown).
bg_started() {
	echo "$1" >>"$BATS_TEST_TMPDIR/bg.pids"
}

produce_teardown() {
	local pid
	if [ -f "$BATS_TEST_TMPDIR/bg.pids" ]; then
		while read -r pid; do
			kill -9 "$pid" 2>/dev/null || true
		done <"$BATS_TEST_TMPDIR/bg.pids"
	fi
	mq_teardown
}
