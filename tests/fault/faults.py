#!/usr/bin/python3
"""tests/fault/faults.py: SQLite's I/O-error method applied to mq.

usage: faults.py --shim faultinj.so [--full] [--only TARGET,...] [--bin DIR]

For each target program, each operation and each error, the program is
run under tests/fault/faultinj.c with the Nth call failing, for N = 1,
2, 3, ... until a run completes without meeting the fault; once with the
fault failing that single call (MQ_FAULT_MODE=once) and once failing it
and every later one (persistent).  Every run starts from a copy of the
same data directory, and only calls on paths inside it are counted.

After every run that met the fault:
  - the status is 0, or 5 (system or I/O error) with a message on
    standard error in the DESIGN.md section 6 form ("PROG: what failed:
    strerror"); a status 0 means the program got past the fault and
    must then have done all of its work;
  - mq-topic verify (without the shim) is clean;
  - everything acknowledged before the failure is there: for
    mq-produce, the batches named by -v; for mq-consume -g, every offset
    below the committed one was written out (at-least-once), and
    committed offsets never move backwards;
  - offsets are dense, no record is there twice;
  - a following normal run works and completes the work.

Targets:
  produce      mq-produce -v --fsync into an existing topic with small
               segments (rolls, checkpoints, index entries, recovery of
               the tail): ops write, fsync, fdatasync, rename, open,
               ftruncate (full: also mkdir, unlink, and without --fsync)
  create       mq-topic create: ops write, fsync, rename, open, mkdir;
               afterwards the topic is there whole or not at all
  consume      mq-consume -e -g G with commits: ops write, fsync,
               rename, open, ftruncate
  transparent  EINTR on the Nth write, and short writes (once and from
               N on) must not show: status 0, all data, verify clean
               (mq-produce and mq-consume -g)
  serve        mq-serve under the shim, mq-produce -v --fsync and
               mq-consume -e as its HTTP clients (not under the shim):
               ops write, fdatasync, open with EIO (full: also fsync,
               rename, and every error); the client
               exits 0, or 5 with the server's message; what the server
               acknowledged is in the log; the server still answers; a
               new server afterwards takes the rest

Errors: ENOSPC and EIO (full: also EDQUOT and EROFS).  The last line
says how many faults were injected.
"""

import argparse
import concurrent.futures
import errno
import os
import re
import shutil
import sys
import threading
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crash"))
from mqtest import (Failure, Mq, acked_offsets, batches, check, check_dense, check_unique,
                    cleanup, commits, parse_acks, scratch)

MAX_N = 2000


class Runner:
    def __init__(self, shim, work, bin, full, jobs):
        self.shim, self.work, self.bin, self.full = os.path.abspath(shim), work, bin, full
        self.injected = 0
        self.runs = 0
        self.failures = []
        self.lock = threading.Lock()
        self.pool = concurrent.futures.ThreadPoolExecutor(jobs)
        self.queued = []
        self.seq = 0

    def fresh(self, base):
        """A copy of the data directory base, for one run (mq.seq names
        the run)."""
        with self.lock:
            self.seq += 1
            seq = self.seq
        d = os.path.join(self.work, "run%d" % seq)
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(base, d, symlinks=True)
        mq = Mq(d, self.bin)
        mq.seq = seq
        return mq

    def faulty(self, mq, prog, args, input, op, n, err, mode, short=False):
        """Runs prog under the shim; (status, stdout, stderr, faults met)."""
        log = mq.dir + ".log"
        if os.path.exists(log):
            os.unlink(log)
        env = {"LD_PRELOAD": self.shim, "MQ_FAULT_OP": op, "MQ_FAULT_N": str(n),
               "MQ_FAULT_ERRNO": err, "MQ_FAULT_MODE": mode, "MQ_FAULT_PATH": mq.dir,
               "MQ_FAULT_LOG": log, "MQ_FAULT_SHORT": "1" if short else "0"}
        rc, out, errtext = mq.run(prog, *args, input=input, env=env, timeout=60)
        faults = []
        if os.path.exists(log):
            with open(log) as f:
                faults = [l.split() for l in f if l.startswith("fault ")]
            os.unlink(log)
        with self.lock:
            self.runs += 1
            self.injected += len(faults) > 0
        return rc, out, errtext, faults

    def check_failed(self, what, prog, rc, err, errname):
        """Status 0, or 5 with a message naming the cause."""
        check(rc in (0, 5), "%s: status %d (expected 0, or 5 for an I/O error); stderr: %s" %
              (what, rc, err.strip()))
        if rc == 5:
            cause = os.strerror(getattr(errno, errname))
            lines = [l for l in err.splitlines() if l.startswith(prog + ": ") and cause in l]
            check(lines, "%s: status 5 but no message naming the cause ('%s: ...: %s'); stderr: %s" %
                  (what, prog, cause, err.strip() or "(empty)"))

    def loop(self, name, fn, op, err, mode, short=False):
        """Queues a loop: fn(n, what) runs the Nth-call fault and checks,
        and returns True when the run completed without meeting it.  A
        failure ends its loop (and is kept for the report); the other
        loops go on.  Loops run in parallel (--jobs); wait() ends them."""
        def run():
            try:
                for n in range(1, MAX_N):
                    what = "%s: %s %s %s N=%d%s" % (name, op, err, mode, n, " short" if short else "")
                    if fn(n, what):
                        return
                raise Failure("%s: %s %s %s: still meeting the fault at N=%d" % (name, op, err, mode, MAX_N))
            except Failure as e:
                self.failures.append(str(e))
            except Exception as e:
                self.failures.append("%s: %s %s %s: %r" % (name, op, err, mode, e))
        self.queued.append(self.pool.submit(run))
        return 0

    def wait(self):
        for f in self.queued:
            f.result()
        self.queued = []


# ---- mq-produce ----

def produce_base(r):
    base = os.path.join(r.work, "produce-base")
    if os.path.isdir(base):
        return base
    os.mkdir(base)
    mq = Mq(base, r.bin)
    mq.create("t", 2, segment_bytes="6K", index_interval_bytes=256)
    mq.ok("mq-produce", "--batch-size", "1K", "t",
          input=("".join("base-%04d.%s\n" % (i, "b" * (i % 40)) for i in range(160))).encode())
    return base


def produce_input(r, tag, n):
    return ("".join("%s-%04d.%s\n" % (tag, i, "v" * (i * 7 % 50)) for i in range(n))).encode()


def produce_target(r, base, ops, errs, fsync_modes, nrec):
    def check_state(mq, what, acks, must):
        """Verify clean, dense, unique, acked present; must: values that
        must all be there."""
        mq.verify_clean("t", what + ": ")
        recs = mq.records("t", what=what + ": ")
        check_dense(recs, what=what + ": ")
        check_unique(recs, what=what + ": ")
        log = {(p, o): v for p, o, v in recs}
        for k in acked_offsets(acks, batches(mq.dir, "t"), what + ": "):
            check(k in log, "%s: acknowledged record at %d/%d is missing" % ((what,) + k))
        values = set(log.values())
        missing = [v for v in must if v not in values]
        check(not missing, "%s: %d records missing, e.g. '%s'" % (what, len(missing), missing[:1]))
        return log

    def one(n, what, op, err, mode, sync):
        mq = r.fresh(base)
        tag = "r%d" % mq.seq
        inp = produce_input(r, tag, nrec)
        args = ["-v", "--batch-size", "300"] + (["--fsync"] if sync else []) + ["t"]
        rc, out, errtext, faults = r.faulty(mq, "mq-produce", args, inp, op, n, err, mode)
        acks, other = parse_acks(errtext)
        if not faults:
            check(rc == 0, "%s: status %d without a fault: %s" % (what, rc, errtext.strip()))
            check_state(mq, what, acks, inp.decode().split())
            shutil.rmtree(mq.dir)
            return True
        r.check_failed(what, "mq-produce", rc, errtext, err)
        must = inp.decode().split() if rc == 0 else []
        log = check_state(mq, what + " (after the fault)", acks, must)
        # the next run works and all of its records get in
        inp2 = produce_input(r, tag + "next", 25)
        rc2, out2, err2 = mq.run("mq-produce", "-v", "t", input=inp2)
        check(rc2 == 0, "%s: the next run: status %d: %s" % (what, rc2, err2.strip()))
        log2 = check_state(mq, what + " (the next run)", acks + parse_acks(err2)[0], inp2.decode().split())
        for k, v in log.items():
            check(log2.get(k) == v, "%s: record at %d/%d changed by the next run" % ((what,) + k))
        shutil.rmtree(mq.dir)
        return False

    for sync in fsync_modes:
        for op in ops:
            for err in errs:
                for mode in ("once", "persistent"):
                    r.loop("produce%s" % (" --fsync" if sync else ""),
                                     lambda n, what, op=op, err=err, mode=mode, sync=sync: one(n, what, op, err, mode, sync), op, err, mode)


# ---- mq-topic create ----

def create_target(r, ops, errs):
    base = os.path.join(r.work, "create-base")
    os.mkdir(base)
    Mq(base, r.bin).create("other", 1)

    def whole(mq, what):
        """The topic is there whole (and works) or not at all (and can
        be created)."""
        rc, out, err = mq.run("mq-topic", "list")
        check(rc == 0, "%s: mq-topic list: status %d: %s" % (what, rc, err.strip()))
        names = out.split()
        check("other" in names, "%s: the other topic is gone from the list" % what)
        if "t" in names:
            check(mq.partitions("t") == 3, "%s: topic listed with %d partitions, not 3" %
                  (what, mq.partitions("t")))
            mq.ok("mq-topic", "describe", "t")
        else:
            rc, out, err = mq.run("mq-topic", "create", "t", "-p", "3")
            check(rc == 0, "%s: topic not there, but creating it again fails: status %d: %s" %
                  (what, rc, err.strip()))
        mq.ok("mq-produce", "t", input=b"a\nb\nc\n")
        mq.verify_clean("t", what + ": ")
        check(len(mq.records("t", what=what + ": ")) == 3, "%s: the topic does not take records" % what)

    def one(n, what, op, err, mode):
        mq = r.fresh(base)
        rc, out, errtext, faults = r.faulty(mq, "mq-topic", ["create", "t", "-p", "3"], None,
                                            op, n, err, mode)
        if not faults:
            check(rc == 0, "%s: status %d without a fault: %s" % (what, rc, errtext.strip()))
            whole(mq, what)
            shutil.rmtree(mq.dir)
            return True
        r.check_failed(what, "mq-topic", rc, errtext, err)
        if rc == 0:
            check(os.path.isdir(os.path.join(mq.dir, "topics", "t")),
                  "%s: status 0 but no topic" % what)
        whole(mq, what)
        shutil.rmtree(mq.dir)
        return False

    for op in ops:
        for err in errs:
            for mode in ("once", "persistent"):
                r.loop("create", lambda n, what, op=op, err=err, mode=mode: one(n, what, op, err, mode),
                       op, err, mode)


# ---- mq-consume -g ----

def consume_base(r):
    base = os.path.join(r.work, "consume-base")
    if os.path.isdir(base):
        return base
    os.mkdir(base)
    mq = Mq(base, r.bin)
    mq.create("c", 2, segment_bytes="4K")
    mq.ok("mq-produce", "--batch-size", "500", "c",
          input=("".join("c-%04d\n" % i for i in range(300))).encode())
    # a group that has committed part of it already
    mq.ok("mq-consume", "-g", "G", "-c", "70", "c")
    return base


def consume_target(r, base, ops, errs):
    def delivered(out):
        got = set()
        for line in out.split("\n")[:-1]:
            p, o, v = line.split("\t", 2)
            got.add((int(p), int(o)))
        return got

    recs = Mq(base, r.bin).records("c")
    before = {p: h[-1] for p, h in commits(base, "G", "c").items()}

    def one(n, what, op, err, mode):
        mq = r.fresh(base)
        args = ["-e", "-g", "G", "-f", r"%p\t%o\t%s\n", "c"]
        rc, out, errtext, faults = r.faulty(mq, "mq-consume", args, None, op, n, err, mode)
        got = delivered(out)
        if faults:
            r.check_failed(what, "mq-consume", rc, errtext, err)
        else:
            check(rc == 0, "%s: status %d: %s" % (what, rc, errtext.strip()))
        after = {p: h[-1] for p, h in commits(mq.dir, "G", "c").items()}
        for p, c in after.items():
            check(c >= before.get(p, 0), "%s: committed offset of partition %d moved back from %d to %d" %
                  (what, p, before.get(p, 0), c))
            for o in range(before.get(p, 0), c):
                check((p, o) in got, "%s: offset %d of partition %d committed but never written out" %
                      (what, o, p))
        if rc == 0:
            ends = {}
            for p, o, v in recs:
                ends[p] = o + 1
            check(after == ends, "%s: status 0 but committed %s, not the ends %s" % (what, after, ends))
        # the next run delivers the rest
        rc2, out2, err2 = mq.run("mq-consume", *args)
        check(rc2 == 0, "%s: the next run: status %d: %s" % (what, rc2, err2.strip()))
        got |= delivered(out2)
        for p, o, v in recs:
            check((p, o) in got or o < before.get(p, 0),
                  "%s: offset %d of partition %d never delivered (a record skipped)" % (what, o, p))
        mq.verify_clean("c", what + ": ")
        shutil.rmtree(mq.dir)
        return not faults

    for op in ops:
        for err in errs:
            for mode in ("once", "persistent"):
                r.loop("consume", lambda n, what, op=op, err=err, mode=mode: one(n, what, op, err, mode),
                       op, err, mode)


def transparent_target(r, pbase, cbase):
    """EINTR and short writes are retried: nothing shows."""

    def produce(n, what, mode, err, short):
        mq = r.fresh(pbase)
        inp = produce_input(r, "t%d" % mq.seq, 60)
        rc, out, errtext, faults = r.faulty(mq, "mq-produce", ["--fsync", "--batch-size", "300", "t"],
                                            inp, "write", n, err, mode, short)
        check(rc == 0, "%s: status %d: %s" % (what, rc, errtext.strip()))
        mq.verify_clean("t", what + ": ")
        recs = mq.records("t", what=what + ": ")
        check_dense(recs, what=what + ": ")
        check_unique(recs, what=what + ": ")
        values = set(v for p, o, v in recs)
        check(all(v in values for v in inp.decode().split()), "%s: records missing" % what)
        shutil.rmtree(mq.dir)
        return not faults

    for err, mode, short in (("EINTR", "once", False), ("EIO", "once", True), ("EIO", "persistent", True)):
        label = "EINTR" if err == "EINTR" else "short"
        r.loop("transparent produce", lambda n, what, mode=mode, err=err, short=short: produce(n, what, mode, err, short),
                         "write", label, mode, short)
    for err, mode, short in (("EINTR", "once", False), ("EIO", "once", True), ("EIO", "persistent", True)):
        consume_target_transparent(r, cbase, err, mode, short)


def consume_target_transparent(r, base, err, mode, short):
    recs = Mq(base, r.bin).records("c")

    def one(n, what):
        mq = r.fresh(base)
        args = ["-e", "-g", "G", "-f", r"%p\t%o\t%s\n", "c"]
        rc, out, errtext, faults = r.faulty(mq, "mq-consume", args, None, "write", n, err, mode, short)
        check(rc == 0, "%s: status %d: %s" % (what, rc, errtext.strip()))
        ends = {}
        for p, o, v in recs:
            ends[p] = o + 1
        after = {p: h[-1] for p, h in commits(mq.dir, "G", "c").items()}
        check(after == ends, "%s: committed %s, not the ends %s" % (what, after, ends))
        shutil.rmtree(mq.dir)
        return not faults

    r.loop("transparent consume", one, "write", "EINTR" if err == "EINTR" else "short", mode, short)


# ---- mq-serve ----

def serve_target(r, base, ops, errs):
    import subprocess
    import urllib.request

    def start(mq, env):
        e = dict(os.environ)
        e.update(env)
        p = subprocess.Popen([os.path.join(mq.bin, "mq-serve"), "-q", "-d", mq.dir, "-l", "127.0.0.1:0"],
                             env=e, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        line = p.stderr.readline().decode()
        m = re.search(r"serving on 127\.0\.0\.1:(\d+)", line)
        if not m:
            p.kill()
            p.wait()
            raise Failure("mq-serve did not start: %s" % line.strip())
        return p, "http://127.0.0.1:%s" % m.group(1)

    def stop(p):
        p.terminate()
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise Failure("mq-serve did not end on SIGTERM")

    def one(n, what, op, err, mode):
        mq = r.fresh(base)
        tag = "s%d" % mq.seq
        inp = produce_input(r, tag, 30)
        log = mq.dir + ".log"
        env = {"LD_PRELOAD": r.shim, "MQ_FAULT_OP": op, "MQ_FAULT_N": str(n), "MQ_FAULT_ERRNO": err,
               "MQ_FAULT_MODE": mode, "MQ_FAULT_PATH": mq.dir, "MQ_FAULT_LOG": log, "MQ_FAULT_SHORT": "0"}
        p, url = start(mq, env)
        try:
            prc = subprocess.run([os.path.join(mq.bin, "mq-produce"), "-v", "--fsync", "--batch-size", "300",
                                  url + "/t"], input=inp, capture_output=True, timeout=60)
            crc = subprocess.run([os.path.join(mq.bin, "mq-consume"), "-e", url + "/t"],
                                 capture_output=True, timeout=60)
            # the server still answers, whatever happened to the requests
            with urllib.request.urlopen(url + "/healthz", timeout=10) as h:
                check(h.read() == b"ok\n", "%s: /healthz after the fault" % what)
        finally:
            stop(p)
        faults = []
        if os.path.exists(log):
            with open(log) as f:
                faults = [l.split() for l in f if l.startswith("fault ")]
            os.unlink(log)
        with r.lock:
            r.runs += 1
            r.injected += len(faults) > 0
        perr = prc.stderr.decode("utf-8", "replace")
        for rc, e, prog in ((prc.returncode, perr, "mq-produce"),
                            (crc.returncode, crc.stderr.decode("utf-8", "replace"), "mq-consume")):
            if faults:
                r.check_failed(what, prog, rc, e, err)
            else:
                check(rc == 0, "%s: %s: status %d without a fault: %s" % (what, prog, rc, e.strip()))
        mq.verify_clean("t", what + ": ")
        recs = mq.records("t", what=what + ": ")
        check_dense(recs, what=what + ": ")
        check_unique(recs, what=what + ": ")
        logd = {(pp, o): v for pp, o, v in recs}
        acks, _ = parse_acks(perr)
        for k in acked_offsets(acks, batches(mq.dir, "t"), what + ": "):
            check(k in logd, "%s: acknowledged record at %d/%d is missing" % ((what,) + k))
        if prc.returncode == 0:
            values = set(logd.values())
            check(all(v in values for v in inp.decode().split()), "%s: status 0 but records missing" % what)
        # a new server, without the fault, takes more
        p, url = start(mq, {})
        try:
            inp2 = produce_input(r, tag + "next", 10)
            rc2 = subprocess.run([os.path.join(mq.bin, "mq-produce"), url + "/t"], input=inp2,
                                 capture_output=True, timeout=60)
            check(rc2.returncode == 0, "%s: the next server: status %d: %s" %
                  (what, rc2.returncode, rc2.stderr.decode().strip()))
        finally:
            stop(p)
        values = set(v for _, _, v in mq.records("t", what=what + ": "))
        check(all(v in values for v in inp2.decode().split()), "%s: the next server lost records" % what)
        mq.verify_clean("t", what + " (the next server): ")
        shutil.rmtree(mq.dir)
        return not faults

    for op in ops:
        for err in errs:
            for mode in ("once", "persistent"):
                r.loop("serve", lambda n, what, op=op, err=err, mode=mode: one(n, what, op, err, mode),
                       op, err, mode)


def similar(failures):
    """Failures grouped by their shape (the same message but for the
    numbers, the error, the mode and paths): [(first, [others' heads])]."""
    groups = {}
    for f in failures:
        key = re.sub(r"'[^']*'", "'.'", f)
        key = re.sub(r"ENOSPC|EIO|EDQUOT|EROFS|EINTR|once|persistent|No space left on device|"
                     r"Input/output error|Disk quota exceeded|Read-only file system|\d+", "#", key)
        groups.setdefault(key, []).append(f)
    return [(v[0], [x.split(":")[0] + ":" + x.split(":")[1] for x in v[1:]]) for v in groups.values()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shim", required=True)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--only", default="produce,create,consume,transparent")
    ap.add_argument("--bin", default=None)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--jobs", type=int, default=max(2, os.cpu_count() or 2), help="loops run at once")
    a = ap.parse_args()
    work = scratch("faults")
    r = Runner(a.shim, work, a.bin, a.full, a.jobs)
    errs = ["ENOSPC", "EIO"] + (["EDQUOT", "EROFS"] if a.full else [])
    t0 = time.time()
    try:
        for target in a.only.split(","):
            t1, i1, r1, f1 = time.time(), r.injected, r.runs, len(r.failures)
            if target == "produce":
                ops = ["write", "fsync", "fdatasync", "rename", "open", "ftruncate"]
                if a.full:
                    ops += ["mkdir", "unlink"]
                produce_target(r, produce_base(r), ops, errs, [True, False] if a.full else [True],
                               120 if a.full else 40)
            elif target == "create":
                create_target(r, ["write", "fsync", "rename", "open", "mkdir"], errs)
            elif target == "consume":
                consume_target(r, consume_base(r), ["write", "fsync", "rename", "open", "ftruncate"], errs)
            elif target == "transparent":
                transparent_target(r, produce_base(r), consume_base(r))
            elif target == "serve":
                # the quick form: the calls an append and a fetch make, one error
                serve_target(r, produce_base(r),
                             ["write", "fsync", "fdatasync", "rename", "open"] if a.full else
                             ["write", "fdatasync", "open"], errs if a.full else ["EIO"])
            else:
                raise Failure("unknown target '%s'" % target)
            r.wait()
            print("faults %s: %d runs, %d faults injected: %s (%.0fs)" %
                  (target, r.runs - r1, r.injected - i1, "ok" if len(r.failures) == f1 else "FAILED",
                   time.time() - t1))
    except Exception as e:
        if not isinstance(e, Failure):
            traceback.print_exc()
        r.failures.append(str(e))
    for f, more in similar(r.failures):
        sys.stderr.write("faults: FAILED: %s%s\n" % (f, "\n  (and %d more like it: %s)" %
                                                      (len(more), "; ".join(more)) if more else ""))
    if r.failures:
        sys.stderr.write("faults: data kept in %s\n" % work)
        return 1
    print("faults: %d runs, %d fault points injected, all recovered (%.0fs)" %
          (r.runs, r.injected, time.time() - t0))
    cleanup(work, a.keep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
