"""mqtest: what the reliability tools under tests/ share (tests/crash/driver,
tests/crash/powerloss.py, tests/crash/stress.py, tests/fault/faults.py).

Running the programs of bin/ on a data directory, reading a topic back
(records, batch extents, committed offsets), and the checks every tool
makes after something went wrong: `mq-topic verify` clean, offsets dense,
no record twice, every acknowledged record where it was acknowledged.

A check that does not hold raises Failure with a message that says what
was expected and what was found; the tools print it and exit 1.
"""

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ACK = re.compile(r"^(\d+) (\d+)$")


STARTED = []                   # processes started in the background

# Under make test SANITIZE=1 the programs carry AddressSanitizer, which
# refuses to start when an LD_PRELOAD shim comes before its runtime;
# the shims call on to it (RTLD_NEXT), so the order is harmless.
if "verify_asan_link_order" not in os.environ.get("ASAN_OPTIONS", ""):
    os.environ["ASAN_OPTIONS"] = ":".join(
        x for x in (os.environ.get("ASAN_OPTIONS", ""), "verify_asan_link_order=0") if x)


def reap():
    """Ends (SIGKILL, by pid) what was started in the background and is
    still running: a failed check leaves nothing behind."""
    for p in STARTED:
        if p.poll() is None:
            p.kill()
            p.wait()
    del STARTED[:]


class Failure(Exception):
    """A property mq promises did not hold."""


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def bindir(arg=None):
    d = arg or os.environ.get("MQ_BIN") or os.path.join(ROOT, "bin")
    check(os.path.exists(os.path.join(d, "mq-produce")),
          "no mq programs in '%s': run make all first" % d)
    return os.path.abspath(d)


def scratch(prefix):
    """A fresh temporary directory (mktemp -d style)."""
    return tempfile.mkdtemp(prefix="mq-%s." % prefix)


def build_shim(src, out):
    """Builds an LD_PRELOAD shim from tests/fault/SRC into OUT."""
    subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", out,
                    os.path.join(ROOT, "tests", "fault", src), "-ldl"], check=True)
    return out


class Mq:
    """The programs of bin/ over one data directory."""

    def __init__(self, datadir, bin=None):
        self.dir = datadir
        self.bin = bindir(bin)

    def cmd(self, prog, *args):
        return [os.path.join(self.bin, prog), "-d", self.dir] + [str(a) for a in args]

    def run(self, prog, *args, input=None, env=None, timeout=60):
        """Runs a program; returns (status, stdout, stderr) as text."""
        e = dict(os.environ)
        if env:
            e.update(env)
        try:
            p = subprocess.run(self.cmd(prog, *args), input=input, env=e, timeout=timeout,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except subprocess.TimeoutExpired:
            raise Failure("%s %s: still running after %ds (deadlock?)" %
                          (prog, " ".join(map(str, args)), timeout))
        dec = lambda b: b.decode("utf-8", "replace")
        return p.returncode, dec(p.stdout), dec(p.stderr)

    def popen(self, prog, *args, **kw):
        p = subprocess.Popen(self.cmd(prog, *args), **kw)
        STARTED.append(p)
        return p

    def ok(self, prog, *args, input=None, timeout=60):
        rc, out, err = self.run(prog, *args, input=input, timeout=timeout)
        check(rc == 0, "%s %s: status %d: %s" % (prog, " ".join(map(str, args)), rc, err.strip()))
        return out

    def create(self, topic, partitions=1, **conf):
        args = ["create", topic, "-p", partitions]
        for k, v in conf.items():
            args += ["-c", "%s=%s" % (k.replace("_", "."), v)]
        self.ok("mq-topic", *args)

    def partitions(self, topic):
        with open(os.path.join(self.dir, "topics", topic, "topic.conf")) as f:
            for line in f:
                if line.startswith("partitions="):
                    return int(line.split("=", 1)[1])
        return 1

    def verify(self, topic, repair=False):
        """(status, problem lines) of mq-topic verify."""
        args = ["verify"] + (["--repair"] if repair else []) + [topic]
        rc, out, err = self.run("mq-topic", *args, timeout=120)
        lines = [l for l in (out + err).splitlines() if l]
        bad = [l for l in lines if not l.endswith(": ok")]
        return rc, bad

    def verify_clean(self, topic, what=""):
        rc, bad = self.verify(topic)
        check(rc == 0 and not bad, "%smq-topic verify %s: status %d:\n  %s" %
              (what, topic, rc, "\n  ".join(bad)))

    def records(self, topic, partition=None, what=""):
        """[(partition, offset, value)] of the whole topic, read with
        mq-consume -e (partition order, then offset order); a reader
        error is a failure."""
        args = ["-e", "-f", r"%p\t%o\t%s\n"]
        if partition is not None:
            args += ["-p", partition]
        rc, out, err = self.run("mq-consume", *(args + [topic]), timeout=120)
        check(rc == 0 and not err.strip(), "%smq-consume -e %s: status %d: %s" %
              (what, topic, rc, err.strip()))
        recs = []
        for line in out.split("\n")[:-1]:
            p, o, v = line.split("\t", 2)
            recs.append((int(p), int(o), v))
        recs.sort(key=lambda r: (r[0], r[1]))
        return recs

    def describe(self, topic):
        """{partition: (log start, log end)} from mq-topic describe -J."""
        out = json.loads(self.ok("mq-topic", "describe", "-J", topic))
        return {x["partition"]: (x["log_start_offset"], x["log_end_offset"]) for x in out["partitions"]}

    def log_start(self, topic, p):
        path = os.path.join(self.dir, "topics", topic, str(p), "log-start-offset.checkpoint")
        try:
            with open(path) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return 0


def murmur2(data):
    """Kafka's murmur2 (Utils.murmur2), as a signed 32-bit value."""
    m, r, mask = 0x5bd1e995, 24, 0xffffffff
    n = len(data)
    h = (0x9747b28c ^ n) & mask
    for i in range(n // 4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    rest, tail = n & 3, n & ~3
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def partition_for(key, n):
    """The partition Kafka's default partitioner gives a keyed record."""
    return (murmur2(key) & 0x7fffffff) % n


def by_partition(recs):
    out = {}
    for p, o, v in recs:
        out.setdefault(p, {})[o] = v
    return out


def check_dense(recs, starts=None, what=""):
    """Offsets of each partition run without a gap or a repeat from the
    partition's first offset (starts: {p: log start}; default 0)."""
    last = {}
    for p, o, v in recs:
        want = last[p] + 1 if p in last else (starts or {}).get(p, 0)
        check(o == want, "%spartition %d: offset %d where %d was expected (offsets must be dense)" %
              (what, p, o, want))
        last[p] = o


def check_unique(recs, what="", ignore=None):
    seen = {}
    for p, o, v in recs:
        if ignore and ignore(v):
            continue
        check(v not in seen, "%srecord '%s' twice: at %d/%d and %d/%d" %
              ((what, v[:60]) + seen.get(v, (0, 0)) + (p, o)))
        seen[v] = (p, o)
    return seen


def batches(datadir, topic):
    """{partition: {base offset: record count}} from the .log files,
    read with a minimal RecordBatch walker (whole batches only)."""
    out = {}
    tdir = os.path.join(datadir, "topics", topic)
    for d in os.listdir(tdir):
        if not d.isdigit():
            continue
        pd = os.path.join(tdir, d)
        bs = out.setdefault(int(d), {})
        for seg in sorted(f for f in os.listdir(pd) if f.endswith(".log")):
            with open(os.path.join(pd, seg), "rb") as f:
                data = f.read()
            pos = 0
            while pos + 61 <= len(data):
                base, blen = struct.unpack_from(">qi", data, pos)
                if blen < 49 or pos + 12 + blen > len(data):
                    break
                last_delta = struct.unpack_from(">i", data, pos + 23)[0]
                bs[base] = last_delta + 1
                pos += 12 + blen
    return out


def acked_offsets(acks, bmap, what=""):
    """The (partition, offset) of every record of the acknowledged
    batches: acks are (partition, first offset) pairs from -v."""
    out = []
    for p, first in acks:
        n = bmap.get(p, {}).get(first)
        check(n is not None, "%sacknowledged batch %d/%d is not in the log" % (what, p, first))
        out.extend((p, first + i) for i in range(n))
    return out


def parse_acks(text):
    """(acks, other lines) from a -v standard error."""
    acks, other = [], []
    for line in text.splitlines():
        m = ACK.match(line)
        if m:
            acks.append((int(m.group(1)), int(m.group(2))))
        elif line.strip():
            other.append(line)
    return acks, other


def commits(datadir, group, topic):
    """{partition: [offsets, oldest first]} from groups/G/offsets/T
    ("P OFFSET TIME END" lines); a malformed file is a failure."""
    path = os.path.join(datadir, "groups", group, "offsets", topic)
    out = {}
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return out
    for line in text.splitlines():
        f = line.split()
        check(len(f) == 4 and all(re.match(r"^-?\d+$", x) for x in f),
              "%s: malformed commit line '%s'" % (path, line))
        out.setdefault(int(f[0]), []).append(int(f[1]))
    return out


def cleanup(path, keep=False):
    if keep:
        sys.stderr.write("kept %s\n" % path)
    else:
        shutil.rmtree(path, ignore_errors=True)
