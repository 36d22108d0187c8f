#!/usr/bin/python3
"""tests/crash/stress.py: many writers, readers, retention and a partition
change at once, for a bounded time.

usage: stress.py [--time SECONDS] [--producers N] [--consumers N]
                 [--seed S] [--bin DIR] [--keep]

On one topic of 4 partitions with small segments (16K), a small
retention (retention.bytes=64K per partition) and a small index interval:
  - 8 producers (-v --tee; plain, --fsync, -z lz4, -z gzip, keyed -K TAB)
    fed unique records through pipes;
  - 6 consumers of one group (--offset-reset earliest, since retention
    may delete what a slow member has not read);
  - `mq-topic gc` in a loop, next to the retention every roll runs;
  - half way, `mq-topic alter -p 6`, then every producer and consumer is
    restarted in turn (SIGTERM, which must end it cleanly) so that all
    of them see 6 partitions;
  - a monitor reading the group's committed offsets every 100 ms.
At the end the producers' input is closed, gc stops, the consumers drain
the topic and get SIGTERM.  Every process must finish within its
timeout (no deadlock) with status 0 and nothing on standard error.
Then:
  - mq-topic verify is clean;
  - in every partition the offsets run dense from the log start to the
    end; no record is there twice;
  - no lost or duplicated offsets: the log ends add up to exactly the
    number of records the producers acknowledged (all of them, since
    they ended cleanly), and every acknowledged batch at or above its
    partition's log start is there (-v PARTITION FIRSTOFFSET);
  - every record a consumer wrote out is the one at that offset (when
    retention kept it) and one that was produced;
  - every offset from the log start on was delivered (nothing skipped),
    and the committed offsets are the log ends;
  - committed offsets never moved back.
"""

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqtest import (Failure, Mq, batches, check, check_dense, check_unique, cleanup, commits, parse_acks,
                    reap, scratch)

TOPIC, GROUP = "stress", "sg"
PIPE = subprocess.PIPE
PRODUCER_ARGS = [[], ["--fsync"], ["-z", "lz4"], ["-K", r"\t"], ["-z", "gzip"],
                 ["--fsync", "-z", "lz4"], ["-K", r"\t", "-z", "lz4"], []]


class Producer:
    def __init__(self, mq, idx, gen, rnd):
        self.idx, self.gen, self.rnd = idx, gen, rnd
        self.args = PRODUCER_ARGS[idx % len(PRODUCER_ARGS)]
        self.keyed = "-K" in self.args
        self.p = mq.popen("mq-produce", "-v", "--tee", "--batch-size", "4K", "--linger", "10ms",
                          *(self.args + [TOPIC]), stdin=PIPE, stdout=PIPE, stderr=PIPE)
        self.err, self.out = [], []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.feed),
                        threading.Thread(target=lambda: self.err.append(self.p.stderr.read())),
                        threading.Thread(target=lambda: self.out.append(self.p.stdout.read()))]
        for t in self.threads:
            t.daemon = True
            t.start()

    def feed(self):
        try:
            while not self.stop.is_set():
                lines = []
                for _ in range(self.rnd.randrange(1, 40)):
                    v = self.gen()
                    lines.append("k%d\t%s" % (len(v) % 17, v) if self.keyed else v)
                self.p.stdin.write(("\n".join(lines) + "\n").encode())
                self.p.stdin.flush()
                time.sleep(0.005 + self.rnd.random() * 0.02)
        except (BrokenPipeError, OSError, ValueError):
            pass

    def end(self, timeout):
        """Closes the input; the producer must flush and end."""
        self.stop.set()
        self.threads[0].join()
        self.p.stdin.close()
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise Failure("producer %d (%s) still running %ds after its input closed" %
                          (self.idx, " ".join(self.args), timeout))
        for t in self.threads[1:]:
            t.join()
        err = b"".join(self.err).decode("utf-8", "replace")
        acks, other = parse_acks(err)
        other = [l for l in other if "created topic" not in l]
        check(rc == 0 and not other, "producer %d (%s): status %d: %s" %
              (self.idx, " ".join(self.args), rc, "; ".join(other)))
        tee = [l.split("\t", 1)[-1] for l in b"".join(self.out).decode().split("\n")[:-1]]
        return acks, tee


class Consumer:
    def __init__(self, mq, idx, work):
        self.idx = idx
        self.out = os.path.join(work, "consumer-%d-%d.out" % (idx, time.monotonic_ns()))
        self.errf = self.out[:-4] + ".err"
        with open(self.out, "wb") as o, open(self.errf, "wb") as e:
            self.p = mq.popen("mq-consume", "-g", GROUP, "--offset-reset", "earliest",
                              "-f", r"%p\t%o\t%s\n", TOPIC, stdout=o, stderr=e)

    def end(self, timeout):
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            raise Failure("consumer %d still running %ds after SIGTERM" % (self.idx, timeout))
        with open(self.errf) as f:
            err = f.read().strip()
        check(rc == 0 and not err, "consumer %d: status %d: %s" % (self.idx, rc, err))
        got = []
        with open(self.out, "rb") as f:
            for line in f.read().decode("utf-8", "replace").split("\n")[:-1]:
                p, o, v = line.split("\t", 2)
                got.append((int(p), int(o), v))
        return got


def run(a, mq, work, rnd):
    mq.create(TOPIC, 4, segment_bytes="16K", retention_bytes="64K", index_interval_bytes="1K")
    seq = [0]
    lock = threading.Lock()

    def gen_for(i):
        def gen():
            with lock:
                seq[0] += 1
                return "p%d-%08d.%s" % (i, seq[0], "z" * rnd.randrange(0, 60))
        return gen

    failures = []
    stop = threading.Event()
    stats = {"gc": 0, "samples": 0}

    def gc_loop():
        try:
            while not stop.is_set():
                rc, out, err = mq.run("mq-topic", "gc", TOPIC, timeout=30)
                if rc != 0 or err.strip():
                    failures.append("mq-topic gc: status %d: %s" % (rc, err.strip()))
                    return
                stats["gc"] += 1
                time.sleep(0.05)
        except Exception as e:          # a timeout (deadlock) among them
            failures.append("mq-topic gc: %s" % e)

    last = {}

    def monitor():
        while not stop.is_set():
            try:
                com = commits(mq.dir, GROUP, TOPIC)
            except Exception as e:
                failures.append(str(e))
                return
            for p, h in com.items():
                if h[-1] < last.get(p, 0):
                    failures.append("committed offset of partition %d moved back from %d to %d" %
                                    (p, last[p], h[-1]))
                last[p] = max(last.get(p, 0), h[-1])
            stats["samples"] += 1
            time.sleep(0.1)

    threads = [threading.Thread(target=gc_loop), threading.Thread(target=monitor)]
    for t in threads:
        t.daemon = True
        t.start()
    prods = [Producer(mq, i, gen_for(i), random.Random(rnd.random())) for i in range(a.producers)]
    cons = [Consumer(mq, i, work) for i in range(a.consumers)]
    acks, tee, delivered = [], [], []
    t0 = time.time()
    time.sleep(a.time / 2)
    mq.ok("mq-topic", "alter", TOPIC, "-p", "6", timeout=30)
    # restart everyone in turn, so that all see 6 partitions
    step = (a.time / 2) / (len(prods) + len(cons))
    for i in range(len(prods)):
        ak, te = prods[i].end(30)
        acks += ak
        tee += te
        prods[i] = Producer(mq, i, gen_for(i), random.Random(rnd.random()))
        time.sleep(step)
    for i in range(len(cons)):
        delivered += cons[i].end(30)
        cons[i] = Consumer(mq, i, work)
        time.sleep(step)
    for pr in prods:
        ak, te = pr.end(30)
        acks += ak
        tee += te
    stop.set()
    for t in threads:
        t.join(60)
        check(not t.is_alive(), "gc or the monitor did not end (deadlock?)")
    check(not failures, "; ".join(failures))
    duration = time.time() - t0
    # the consumers drain what is left
    deadline = time.time() + 60
    while True:
        bounds = mq.describe(TOPIC)
        com = {p: h[-1] for p, h in commits(mq.dir, GROUP, TOPIC).items()}
        if all(com.get(p, -1) == end or start == end for p, (start, end) in bounds.items()):
            break
        check(time.time() < deadline, "the group did not drain the topic in 60s: committed %s, log %s" %
              (com, bounds))
        time.sleep(0.2)
    for c in cons:
        delivered += c.end(30)

    # the checks
    mq.verify_clean(TOPIC, "stress: ")
    recs = mq.records(TOPIC, what="stress: ")
    check_unique(recs, what="stress: ")
    bounds = mq.describe(TOPIC)
    check_dense(recs, {p: b[0] for p, b in bounds.items()}, "stress: ")
    log = {(p, o): v for p, o, v in recs}
    last = {}
    for p, o, v in recs:
        last[p] = o
    for p, (start, end) in bounds.items():
        check(last.get(p, start - 1) == end - 1, "stress: partition %d: records up to %s, log end %d" %
              (p, last.get(p), end))
    first = {p: b[0] for p, b in bounds.items()}
    ends = {p: b[1] for p, b in bounds.items()}
    check(sum(ends.values()) == len(tee), "stress: the log ends add up to %d offsets, but %d records were "
          "acknowledged (lost or duplicated offsets)" % (sum(ends.values()), len(tee)))
    bmap = batches(mq.dir, TOPIC)
    kept = 0
    for p, f in acks:
        if f >= first.get(p, ends.get(p, 0)):
            check(f in bmap.get(p, {}), "stress: acknowledged batch %d/%d (above the log start %d) is missing" %
                  (p, f, first.get(p, 0)))
            kept += 1
    produced = set(tee)
    check(len(produced) == len(tee), "stress: a record was acknowledged twice")
    seen = set()
    for p, o, v in delivered:
        check(v in produced, "stress: a consumer wrote out '%s' (%d/%d), which nobody produced" % (v[:60], p, o))
        if (p, o) in log:
            check(log[(p, o)] == v, "stress: a consumer wrote out '%s' for %d/%d, the log holds '%s'" %
                  (v[:60], p, o, log[(p, o)][:60]))
        seen.add((p, o))
    missing = [k for k in log if k not in seen]
    check(not missing, "stress: %d retained records never delivered, e.g. %d/%d" %
          ((len(missing),) + (missing[0] if missing else (0, 0))))
    return ("%.0fs, %d producers, %d consumers, %d records acknowledged, %d kept by retention (%d batches), "
            "%d gc runs, %d commit samples" % (duration, a.producers, a.consumers, len(tee), len(log), kept,
                                               stats["gc"], stats["samples"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--time", type=float, default=20)
    ap.add_argument("--producers", type=int, default=8)
    ap.add_argument("--consumers", type=int, default=6)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--bin", default=None)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    work = scratch("stress")
    mq = Mq(os.path.join(work, "data"), a.bin)
    os.mkdir(mq.dir)
    try:
        msg = run(a, mq, work, random.Random(seed))
    except Failure as e:
        sys.stderr.write("stress: FAILED (seed %d): %s\nstress: data kept in %s\n" % (seed, e, work))
        return 1
    finally:
        reap()
    print("stress: %s: ok" % msg)
    cleanup(work, a.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
