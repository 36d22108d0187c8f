#!/usr/bin/python3
"""gen.py (bench): deterministic input for tests/bench/run.

  gen.py lines N SEED PLAIN KEYED
      writes N access-log lines of about 100 bytes to PLAIN, and the same
      lines keyed by host ("HOST<TAB>LINE", for mq-produce -K '\\t') to KEYED:
      2026-03-14T09:26:53.123Z web-eu-07 GET /api/v1/users/482913/orders 200 13.2ms req=8f3a9c1e2b7d4e60
  gen.py resp KEY < LINES > PROTO
      writes the Redis protocol for "XADD KEY * line <line>" per input line,
      for redis-cli --pipe.
  gen.py sum < DATA
      prints "LINES MD5" of its input.
  gen.py keycheck KEYED < OUTPUT
      checks the output of mq-consume -f '%p\t%k\t%s\n' against KEYED: the
      same records, each key in one partition only, and the records of each
      key in input order; prints "ok: ..." or the mismatch and exits 1.
"""
import hashlib
import random
import sys
import time

ROLES = ["web", "api", "edge", "auth", "cart", "search"]
REGIONS = ["eu", "us", "ap", "sa"]
HOSTS = [f"{r}-{g}-{n:02d}" for r in ROLES for g in REGIONS for n in (1, 2)]  # 48
METHODS = ["GET"] * 14 + ["POST"] * 4 + ["PUT", "DELETE"]
PATHS = [
    "/api/v1/users/{}", "/api/v1/users/{}/orders", "/api/v2/orders/{}/items",
    "/static/img/{}.png", "/search?q=item{}&page=2", "/api/v1/carts/{}/checkout",
    "/api/v1/sessions/{}", "/api/v2/products/{}/reviews",
]
STATUS = ["200"] * 40 + ["201"] * 3 + ["204"] * 2 + ["301", "304", "304"] + \
         ["400", "401", "403"] + ["404"] * 3 + ["500", "502", "503"]


def lines(n, seed, plain, keyed):
    rnd = random.Random(seed)
    bits = rnd.getrandbits
    t_ms = 1773480413000  # 2026-03-14T09:26:53Z
    cur_sec, prefix = -1, ""
    nh, nm, npth, ns = len(HOSTS), len(METHODS), len(PATHS), len(STATUS)
    with open(plain, "w", buffering=1 << 20) as fp, open(keyed, "w", buffering=1 << 20) as fk:
        out_p, out_k = [], []
        for i in range(n):
            r = bits(64)
            t_ms += r & 7
            sec = t_ms // 1000
            if sec != cur_sec:
                cur_sec = sec
                prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
            r >>= 3
            host = HOSTS[r % nh]; r //= nh
            meth = METHODS[r % nm]; r //= nm
            path = PATHS[r % npth].format(100000 + r % 9000000); r //= npth * 9000000
            st = STATUS[r % ns]; r //= ns
            dur = r % 20000
            line = (f"{prefix}.{t_ms % 1000:03d}Z {host} {meth} {path} {st} "
                    f"{dur // 10}.{dur % 10}ms req={bits(64):016x}\n")
            out_p.append(line)
            out_k.append(host + "\t" + line)
            if len(out_p) >= 8192:
                fp.write("".join(out_p)); fk.write("".join(out_k))
                out_p.clear(); out_k.clear()
        fp.write("".join(out_p)); fk.write("".join(out_k))


def resp(key):
    k = key.encode()
    head = b"*5\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$4\r\nline\r\n" % (len(k), k)
    out = sys.stdout.buffer
    buf = []
    for line in sys.stdin.buffer:
        v = line[:-1] if line.endswith(b"\n") else line
        buf.append(b"%s$%d\r\n%s\r\n" % (head, len(v), v))
        if len(buf) >= 8192:
            out.write(b"".join(buf)); buf.clear()
    out.write(b"".join(buf))


def linesum():
    h, n = hashlib.md5(), 0
    f = sys.stdin.buffer
    while True:
        b = f.read(1 << 20)
        if not b:
            break
        h.update(b)
        n += b.count(b"\n")
    print(n, h.hexdigest())


def keycheck(keyed):
    want = {}
    with open(keyed, "rb") as f:
        for line in f:
            k = line[:line.index(b"\t")]
            h = want.get(k)
            if h is None:
                h = want[k] = hashlib.md5()
            h.update(line)
    got, parts, n = {}, {}, 0
    for line in sys.stdin.buffer:
        n += 1
        t = line.index(b"\t")
        p, rest = line[:t], line[t + 1:]
        k = rest[:rest.index(b"\t")]
        h = got.get(k)
        if h is None:
            h = got[k] = hashlib.md5()
            parts[k] = p
        elif parts[k] != p:
            sys.exit(f"keycheck: key {k.decode()} in partitions {parts[k].decode()} and {p.decode()}")
        h.update(rest)
    if set(want) != set(got):
        sys.exit(f"keycheck: keys differ: {len(want)} in input, {len(got)} in topic")
    bad = [k.decode() for k in want if want[k].digest() != got[k].digest()]
    if bad:
        sys.exit(f"keycheck: records of {len(bad)} keys differ or are out of order, e.g. {bad[0]}")
    print(f"ok: {n} records, {len(got)} keys in {len(set(parts.values()))} partitions, "
          "each key in one partition, per-key order kept")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "lines":
        lines(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif len(sys.argv) == 3 and sys.argv[1] == "resp":
        resp(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "sum":
        linesum()
    elif len(sys.argv) == 3 and sys.argv[1] == "keycheck":
        keycheck(sys.argv[2])
    else:
        sys.exit(__doc__)
