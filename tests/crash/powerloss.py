#!/usr/bin/python3
"""tests/crash/powerloss.py: power-loss simulation for mq's --fsync path.

usage: powerloss.py --shim journal.so [--only SCENARIO,...] [--reorder N]
                    [--scale N] [--max-states N] [--seed S] [--bin DIR] [--keep]

A scenario runs mq programs under tests/fault/journal.c, which records
every change to files under the data directory (creates, writes with
their bytes, truncates, fsync/fdatasync of files and directories,
renames, unlinks, mkdirs) and, in the same order, what the program wrote
to standard error: the -v acknowledgements of mq-produce.  Then, for
crash points in the journal, the disk is rebuilt as a power loss at that
point would leave it, and mq is checked on it.

The model (strict POSIX, as in the ALICE and CrashMonkey studies):
  - the state before the run is durable;
  - a file's contents after the crash are what they were at its last
    fsync or fdatasync before the crash point; writes and truncates
    after it are lost (a new file never synced is empty);
  - a directory entry made by create, mkdir or rename, or removed by
    unlink or rename, is durable only once that directory was fsynced
    afterwards; until then the crash leaves the directory as it was at
    its last fsync (a renamed file keeps its old name, a new file or
    directory is not there, an unlinked one is back).  A rename between
    two directories is two changes, one per directory;
  - nothing else reaches the disk ("drop" model, below).
Since the disk changes only at an fsync in this model, two crash points
with no fsync between them leave the same disk; the one to check is the
later one, which has the more acknowledgements.  So every prefix of the
journal is covered by checking one state per fsync ("distinct crash
states").

A second model, "reorder", is sampled at random crash points: besides
what the first model keeps, any subset of the unsynced writes and
truncates (in 512-byte pieces) may have reached each file, applied in
program order, and a prefix (in journal order) of the unsynced directory
changes may have reached the disk, as a file system that writes back
some dirty pages and commits its journal in order would leave it.

At each crash state, on two copies of it:
  1. recovery: mq-produce appends a few records (its writer recovers the
     tail of every partition it appends to, each partition gets one);
     then mq-topic verify must be clean;
  2. repair: mq-topic verify --repair, then mq-topic verify clean;
and on both: offsets dense, no record twice, each partition a prefix of
what the whole run left (same records at the same offsets), and every
record acknowledged by -v under --fsync before the crash point there.
For a consumer group: the committed offsets (groups/G/offsets/T) are
never below the ones committed before the run (they never move back),
never past the log end, and the file is whole.

Scenarios:
  existing   mq-produce --fsync -v into a topic that has data, small
             segments (rolls: segment fsync, new segment, directory
             fsync, recovery-point checkpoint) and a small index interval
  new-topic  mq-produce --fsync -v creating its topic, in a data directory
             that has another topic already (topic creation: temporary
             directory, topic.conf, rename, directory fsync)
  fresh      the same in an empty data directory (topics/ is new too)
  group      mq-consume -g G four times with -c N, then with -e, on a
             group that committed before
  new-group  the same on a group that never committed
The last line says how many crash points were checked.
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqtest import (ACK, Failure, Mq, batches, check, check_dense, check_unique, cleanup,
                    commits, scratch)

TOPIC = "t"


# ---- the journal ----

def parse_journal(path):
    """[(kind, fields...)]; W and A carry their bytes last."""
    with open(path, "rb") as f:
        data = f.read()
    ev, pos = [], 0
    while pos < len(data):
        end = data.index(b"\n", pos)
        f = data[pos:end].decode("utf-8", "surrogateescape").split("\t")
        pos = end + 1
        if f[0] in ("W", "A"):
            n = int(f[-1])
            f.append(data[pos:pos + n])
            pos += n + 1
        ev.append(tuple(f))
    return ev


class File:
    def __init__(self, content=b""):
        self.cur = bytearray(content)
        self.synced = bytes(content)
        self.pending = []      # writes and truncates since the last sync


class Dir:
    def __init__(self, entries=None):
        self.cur = dict(entries or {})
        self.init = dict(entries or {})
        self.last_sync = -1


def snapshot(root):
    """The data directory as it is: {relpath: (kind, ino, bytes)}."""
    out = {".": ("d", os.lstat(root).st_ino, None)}
    for dpath, dnames, fnames in os.walk(root):
        rel = os.path.relpath(dpath, root)
        for n in dnames:
            p = os.path.join(dpath, n)
            out[os.path.normpath(os.path.join(rel, n))] = ("d", os.lstat(p).st_ino, None)
        for n in fnames:
            p = os.path.join(dpath, n)
            with open(p, "rb") as f:
                out[os.path.normpath(os.path.join(rel, n))] = ("f", os.lstat(p).st_ino, f.read())
    return out


class Replay:
    """The journal replayed up to a crash point: what the program saw
    (cur) and what each model says survived."""

    def __init__(self, root, init, events, k, offsets_file=None):
        self.root_path = root
        self.offsets_file = offsets_file
        self.commit = None
        self.ino = {}
        self.root = Dir()
        self.root.init = {}
        dirs = {".": self.root}
        self.ino[int(init["."][1])] = self.root
        for rel in sorted((r for r in init if r != "."), key=lambda r: r.count("/")):
            kind, ino, content = init[rel]
            obj = Dir() if kind == "d" else File(content)
            parent = dirs[os.path.dirname(rel) or "."]
            parent.cur[os.path.basename(rel)] = obj
            parent.init[os.path.basename(rel)] = obj
            self.ino[int(ino)] = obj
            if kind == "d":
                dirs[rel] = obj
        self.ns = []               # (index, dir, name, obj or None)
        self.stderr = bytearray()
        for i, e in enumerate(events[:k]):
            self.apply(i, e)

    def lookup(self, path):
        rel = os.path.relpath(os.path.normpath(path), self.root_path)
        d = self.root
        parts = rel.split("/")
        for p in parts[:-1]:
            d = d.cur[p]
        return d, parts[-1]

    def apply(self, i, e):
        k = e[0]
        if k in ("C", "M"):
            d, name = self.lookup(e[2])
            obj = File() if k == "C" else Dir()
            self.ino[int(e[1])] = obj
            d.cur[name] = obj
            self.ns.append((i, d, name, obj))
        elif k == "W":
            f = self.ino[int(e[1])]
            off, data = int(e[2]), e[4]
            self.write(f.cur, off, data)
            f.pending.append(("W", off, data))
        elif k == "T":
            f = self.ino[int(e[1])]
            self.truncate(f.cur, int(e[2]))
            f.pending.append(("T", int(e[2])))
        elif k == "S":
            f = self.ino[int(e[1])]
            f.synced = bytes(f.cur)
            f.pending = []
        elif k == "D":
            d = self.ino[int(e[1])]
            d.last_sync = i
            # a commit is complete once its directory was synced
            # (mq_write_file_atomic returns then): the crash must keep it
            if self.offsets_file:
                try:
                    od, name = self.lookup(self.offsets_file)
                except KeyError:
                    od = None
                if od is d and name in d.cur:
                    self.commit = bytes(d.cur[name].synced)
        elif k == "R":
            sd, sn = self.lookup(e[1])
            dd, dn = self.lookup(e[2])
            obj = sd.cur.pop(sn)
            dd.cur[dn] = obj
            self.ns.append((i, sd, sn, None))
            self.ns.append((i, dd, dn, obj))
        elif k in ("U", "X"):
            d, name = self.lookup(e[1])
            d.cur.pop(name, None)
            self.ns.append((i, d, name, None))
        elif k == "A":
            self.stderr += e[2]

    @staticmethod
    def write(buf, off, data):
        if len(buf) < off:
            buf.extend(b"\0" * (off - len(buf)))
        buf[off:off + len(data)] = data

    @staticmethod
    def truncate(buf, n):
        if len(buf) > n:
            del buf[n:]
        else:
            buf.extend(b"\0" * (n - len(buf)))

    def acks(self):
        """-v acknowledgements written before the crash point (whole
        lines only)."""
        out = []
        for line in bytes(self.stderr).decode("utf-8", "replace").split("\n")[:-1]:
            m = ACK.match(line)
            if m:
                out.append((int(m.group(1)), int(m.group(2))))
        return out

    def materialize(self, dest, rnd=None, cut=-1):
        """Writes the disk after the crash into dest.  Without rnd: the
        drop model; with rnd: the reorder model, with the directory
        changes before index cut surviving too."""
        entries = {}
        for i, d, name, obj in self.ns:
            if not (d.last_sync > i or i < cut):
                continue
            m = entries.setdefault(id(d), dict(d.init))
            if obj is None:
                m.pop(name, None)
            else:
                m[name] = obj
        done = set()

        def content(f):
            if rnd is None or not f.pending:
                return f.synced
            buf = bytearray(f.synced)
            for op in f.pending:
                if op[0] == "T":
                    if rnd.random() < 0.5:
                        self.truncate(buf, op[1])
                    continue
                off, data = op[1], op[2]
                pos = off
                while pos < off + len(data):
                    end = min(off + len(data), (pos // 512 + 1) * 512)
                    if rnd.random() < 0.5:
                        self.write(buf, pos, data[pos - off:end - off])
                    pos = end
            return bytes(buf)

        def walk(d, path):
            os.makedirs(path, exist_ok=True)
            for name, obj in entries.get(id(d), d.init).items():
                p = os.path.join(path, name)
                if isinstance(obj, Dir):
                    if id(obj) in done:
                        continue
                    done.add(id(obj))
                    walk(obj, p)
                else:
                    with open(p, "wb") as f:
                        f.write(content(obj))
        walk(self.root, dest)


# ---- scenarios ----

def values(prefix, n):
    return ["%s-%05d.%s" % (prefix, i, "p" * (i * 13 % 70)) for i in range(n)]


def setup(name, mq, scale=1):
    """Prepares the data directory; returns (commands to journal, topic
    expected to exist before, group)."""
    if name == "existing":
        mq.create(TOPIC, 2, segment_bytes="3K", index_interval_bytes=200)
        mq.ok("mq-produce", "--batch-size", "400", TOPIC,
              input=("\n".join(values("before", 60)) + "\n").encode())
    elif name == "new-topic":
        mq.create("other", 1)
    elif name in ("group", "new-group"):
        mq.create(TOPIC, 2, segment_bytes="3K")
        mq.ok("mq-produce", "--batch-size", "300", TOPIC,
              input=("\n".join(values("c", 150 * scale)) + "\n").encode())
        if name == "group":
            mq.ok("mq-consume", "-g", "G", "-c", "40", TOPIC)
        # several members one after the other: each commits when it ends
        return [["mq-consume", "-g", "G", "-c", 25 * scale, "-f", r"%p\t%o\t%s\n", TOPIC]] * 4 + \
               [["mq-consume", "-e", "-g", "G", "-f", r"%p\t%o\t%s\n", TOPIC]], "G"
    inp = "\n".join(values("ack", 120 * scale)) + "\n"
    return [["mq-produce", "--fsync", "-v", "--batch-size", "350", TOPIC, inp]], None


def run_journaled(mq, cmds, shim, journal):
    env = dict(os.environ, LD_PRELOAD=shim, MQ_JOURNAL=journal, MQ_JOURNAL_DIR=mq.dir)
    for c in cmds:
        prog, args = c[0], c[1:]
        inp = None
        if prog == "mq-produce":
            args, inp = args[:-1], args[-1].encode()
        p = subprocess.run(mq.cmd(prog, *args), input=inp, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        check(p.returncode == 0, "%s under the journal: status %d: %s" %
              (prog, p.returncode, p.stderr.decode().strip()))


class Checker:
    def __init__(self, name, mq, group, before_commits):
        self.name, self.mq, self.group = name, mq, group
        self.ref = {(p, o): v for p, o, v in mq.records(TOPIC)}
        self.bmap = batches(mq.dir, TOPIC)
        self.before = before_commits
        self.states = 0
        self.offsets_file = os.path.join(mq.dir, "groups", group, "offsets", TOPIC) if group else None

    def acked(self, acks, what):
        out = []
        for p, first in acks:
            n = self.bmap.get(p, {}).get(first)
            check(n is not None, "%s: acknowledged batch %d/%d not in the finished log" % (what, p, first))
            out.extend((p, first + i) for i in range(n))
        return out

    def check_log(self, mq, acked, what, post=()):
        exists = os.path.isdir(os.path.join(mq.dir, "topics", TOPIC))
        if not exists:
            check(not acked, "%s: the topic is gone, with %d acknowledged records" % (what, len(acked)))
            return
        mq.verify_clean(TOPIC, what + ": ")
        recs = mq.records(TOPIC, what=what + ": ")
        check_dense(recs, what=what + ": ")
        check_unique(recs, what=what + ": ")
        log = {}
        posts = set(post)
        for p, o, v in recs:
            log[(p, o)] = v
            if v in posts:
                continue
            check(self.ref.get((p, o)) == v, "%s: partition %d holds '%s' at offset %d, which the run "
                  "never wrote there (not a prefix)" % (what, p, v[:50], o))
        for k in acked:
            check(log.get(k) == self.ref[k], "%s: record '%s' acknowledged at %d/%d is %s" %
                  (what, self.ref[k][:50], k[0], k[1], "lost" if k not in log else "'%s'" % log[k][:50]))
        got = set(log.values())
        check(all(v in got for v in post), "%s: records appended after the crash are missing" % what)
        return log

    def check_commits(self, d, what, log, drained=False, done=None):
        """The commits a crash left: whole, never below those before the
        run or those completed before the crash (done: the offsets file
        as the last completed commit wrote it), never past the log end
        (drained: at the end)."""
        com = commits(d, self.group, TOPIC)
        ends = {}
        for p, o in log:
            ends[p] = max(ends.get(p, 0), o + 1)
        least = dict(self.before)
        for line in (done or b"").decode().splitlines():
            p, o = map(int, line.split()[:2])
            least[p] = max(least.get(p, 0), o)
        for p, c in least.items():
            check(p in com and com[p][-1] >= c, "%s: committed offset of partition %d moved back "
                  "from %d to %s%s" % (what, p, c, com[p][-1] if p in com else "none",
                                       "" if p in com else self.missing(d, self.offsets_file)))
        for p, h in com.items():
            check(h[-1] <= ends.get(p, 0), "%s: committed offset %d past the log end %d" %
                  (what, h[-1], ends.get(p, 0)))
        if drained:
            check({p: h[-1] for p, h in com.items()} == ends, "%s: committed %s after draining, not the "
                  "log ends %s" % (what, {p: h[-1] for p, h in com.items()}, ends))

    def missing(self, base, path):
        """Which directory on the way to path the crash took away."""
        rel = os.path.relpath(path, self.mq.dir).split("/")
        for i in range(1, len(rel) + 1):
            if not os.path.exists(os.path.join(base, *rel[:i])):
                return " (after the crash there is no '%s': it was created but its parent directory " \
                       "was never fsynced)" % "/".join(rel[:i])
        return ""

    def state(self, rep, work, what, rnd=None, cut=-1):
        self.states += 1
        acked = self.acked(rep.acks(), what)
        base = os.path.join(work, "crash")
        shutil.rmtree(base, ignore_errors=True)
        rep.materialize(base, rnd, cut)
        if self.group:
            self.check_commits(base, what + ", as the crash left it", self.ref, done=rep.commit)
        elif acked and not os.path.isdir(os.path.join(base, "topics", TOPIC)):
            raise Failure("%s: the topic is gone, with %d acknowledged records%s" %
                          (what, len(acked), self.missing(base, os.path.join(self.mq.dir, "topics", TOPIC))))
        # 1. recovery by the next writer
        d1 = os.path.join(work, "recovered")
        shutil.rmtree(d1, ignore_errors=True)
        shutil.copytree(base, d1)
        mq1 = Mq(d1, self.mq.bin)
        post = []
        if not self.group:
            np = mq1.partitions(TOPIC) if os.path.exists(os.path.join(d1, "topics", TOPIC, "topic.conf")) else 1
            for p in range(np):
                v = "post-%d" % p
                post.append(v)
                rc, out, err = mq1.run("mq-produce", "-p", p, TOPIC, input=(v + "\n").encode())
                check(rc == 0, "%s: appending after the crash: status %d: %s" % (what, rc, err.strip()))
        else:
            rc, out, err = mq1.run("mq-consume", "-e", "-g", self.group, TOPIC)
            check(rc == 0, "%s: consuming after the crash: status %d: %s" % (what, rc, err.strip()))
        log = self.check_log(mq1, acked, what + ", recovered", post)
        if self.group:
            self.check_commits(d1, what + ", consumed again", log, drained=True)
        # 2. mq-topic verify --repair
        d2 = os.path.join(work, "repaired")
        shutil.rmtree(d2, ignore_errors=True)
        shutil.copytree(base, d2)
        mq2 = Mq(d2, self.mq.bin)
        if os.path.isdir(os.path.join(d2, "topics", TOPIC)):
            rc, out, err = mq2.run("mq-topic", "verify", "--repair", TOPIC)
            check(rc == 0, "%s: mq-topic verify --repair: status %d: %s" % (what, rc, (out + err).strip()))
        self.check_log(mq2, acked, what + ", repaired")


def scenario(name, a, shim, rnd):
    work = scratch("powerloss")
    data = os.path.realpath(os.path.join(work, "data"))
    os.mkdir(data)
    mq = Mq(data, a.bin)
    cmds, group = setup(name, mq, a.scale)
    before = {p: h[-1] for p, h in commits(data, group, TOPIC).items()} if group else {}
    init = snapshot(data)
    journal = os.path.join(work, "journal")
    run_journaled(mq, cmds, shim, journal)
    events = parse_journal(journal)
    ck = Checker(name, mq, group, before)
    syncs = [i for i, e in enumerate(events) if e[0] in ("S", "D")]
    # drop model: the state after each fsync, with every acknowledgement
    # up to the next one (the crash point just before it)
    bounds = syncs[1:] + [len(events)]
    points = [(syncs[0] if syncs else len(events))] + bounds
    if a.max_states and len(points) > a.max_states:
        points = sorted(set([points[0], points[-1]] + rnd.sample(points, a.max_states - 2)))
    try:
        for k in points:
            rep = Replay(data, init, events, k, ck.offsets_file)
            ck.state(rep, work, "powerloss %s, drop model, crash after journal entry %d of %d" %
                     (name, k, len(events)))
        for j in range(a.reorder):
            k = rnd.randrange(0, len(events) + 1)
            rep = Replay(data, init, events, k, ck.offsets_file)
            cut = rnd.randrange(0, k + 1)
            seed = rnd.randrange(1 << 30)
            ck.state(rep, work, "powerloss %s, reorder model (seed %d), crash after journal entry %d of %d, "
                     "directory changes before %d kept" % (name, seed, k, len(events), cut),
                     random.Random(seed), cut)
    except Failure as e:
        raise Failure("%s\n  (journal: %s; data kept in %s)" % (e, journal, work))
    cleanup(work, a.keep)
    return len(events), len(points), a.reorder


SCENARIOS = ["existing", "new-topic", "fresh", "group", "new-group"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shim", required=True)
    ap.add_argument("--only", default=",".join(SCENARIOS))
    ap.add_argument("--reorder", type=int, default=20, help="reorder-model crash points per scenario")
    ap.add_argument("--max-states", type=int, default=0, help="at most this many drop-model states (0: all)")
    ap.add_argument("--scale", type=int, default=1, help="records written: this many times the default")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--bin", default=None)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    shim = os.path.abspath(a.shim)
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    t0 = time.time()
    total = [0, 0, 0]
    failures = []
    for name in a.only.split(","):
        check(name in SCENARIOS, "unknown scenario '%s'" % name)
        try:
            n, d, r = scenario(name, a, shim, random.Random("%d-%s" % (seed, name)))
        except Failure as e:
            failures.append(str(e))
            print("powerloss %s: FAILED" % name)
            continue
        total = [total[0] + n, total[1] + d, total[2] + r]
        print("powerloss %s: %d journal entries, %d distinct crash states (drop model) and %d reorder-model "
              "crash points checked: ok" % (name, n, d, r))
    for f in failures:
        sys.stderr.write("powerloss: FAILED (seed %d): %s\n" % (seed, f))
    if failures:
        return 1
    print("powerloss: %d journal prefixes covered by %d distinct crash states, plus %d reorder-model crash "
          "points (seed %d, %.0fs)" % (total[0], total[1], total[2], seed, time.time() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
