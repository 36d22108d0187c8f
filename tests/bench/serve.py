#!/usr/bin/python3
"""serve.py (bench): helpers for the mq-serve rows of tests/bench/run.

  serve.py send N INTERVAL_MS WARMUP
      writes WARMUP lines "w", then N lines holding the current time in
      milliseconds ("1773480413123.456"), one every INTERVAL_MS, flushing
      each: the input of a mq-produce whose records a tailing consumer
      reads back.  Waits half a second first, so that the consumer is
      polling before the first record.
  serve.py recv N
      reads lines from standard input (a tailing mq-consume -f '%s\\n'),
      skips those that are not times, and for the first N times takes the
      delay from that time to now; prints "P50_MS P99_MS MAX_MS N".
  serve.py conns PORT N PID [ROUNDS]
      holds N idle TCP connections to 127.0.0.1:PORT (opened and left
      silent, as idle keep-alive clients are) and reads the memory of the
      server PID from /proc/PID/status before and with them, ROUNDS times
      (default 1), closing them between rounds and waiting for the server
      to be back to its thread count.  Prints "before HWM_KIB RSS_KIB
      THREADS", then per round "round HWM_KIB RSS_KIB THREADS ALIVE", ALIVE
      being how many connections the server still held open at the end.
"""
import errno
import math
import resource
import socket
import sys
import time


def now_ms():
    return time.time() * 1000.0


def send(n, interval_ms, warmup):
    out = sys.stdout
    time.sleep(0.5)
    for _ in range(warmup):
        out.write("w\n")
        out.flush()
        time.sleep(interval_ms / 1000.0)
    t = time.monotonic()
    for _ in range(n):
        out.write(f"{now_ms():.3f}\n")
        out.flush()
        t += interval_ms / 1000.0
        time.sleep(max(0.0, t - time.monotonic()))


def percentile(xs, p):
    xs = sorted(xs)
    k = max(0, math.ceil(p / 100.0 * len(xs)) - 1)
    return xs[k]


def recv(n):
    lat = []
    for line in sys.stdin:
        t = now_ms()
        try:
            sent = float(line)
        except ValueError:
            continue
        lat.append(t - sent)
        if len(lat) == n:
            break
    if len(lat) < n:
        print(f"recv: got {len(lat)} records of {n}", file=sys.stderr)
        sys.exit(1)
    print(f"{percentile(lat, 50):.3f} {percentile(lat, 99):.3f} {max(lat):.3f} {len(lat)}")


def status(pid):
    d = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            d[k] = v.split()[0] if v.split() else ""
    return int(d["VmHWM"]), int(d["VmRSS"]), int(d["Threads"])


def conns(port, n, pid, rounds):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))
    hwm0, rss0, th0 = status(pid)
    print("before", hwm0, rss0, th0)
    for _ in range(rounds):
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
        # a thread-per-connection server: wait for all its threads; an
        # event loop: for its accepts (a moment)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and status(pid)[2] < th0 + n and th0 > 1:
            time.sleep(0.05)
        time.sleep(0.5)
        hwm, rss, th = status(pid)
        alive = 0
        for s in socks:
            s.setblocking(False)
            try:
                alive += s.recv(1) != b""
            except OSError as e:
                alive += e.errno in (errno.EAGAIN, errno.EWOULDBLOCK)
        for s in socks:
            s.close()
        print("round", hwm, rss, th, alive)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and status(pid)[2] > th0:
            time.sleep(0.05)
    sys.stdout.flush()


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "send":
        send(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "recv":
        recv(int(sys.argv[2]))
    elif cmd == "conns":
        conns(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
              int(sys.argv[5]) if len(sys.argv) > 5 else 1)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
