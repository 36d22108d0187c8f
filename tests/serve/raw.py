#!/usr/bin/env python3
"""tests/serve/raw.py: speaks to mq-serve below HTTP, for what curl will not
send (tests/005-serve.bats).  Prints what a test asserts on, one line.

  raw.py send PORT FILE       send FILE's bytes on one connection, then read
                              until the server answers or closes; prints
                              "status N" (the first answer's status code) or
                              "closed" (no answer before the server closed)
                              or "open" (neither within 10 s)
  raw.py trickle PORT DELAY   send a request's headers one byte every DELAY
                              seconds; prints "closed after N bytes" when the
                              server drops the connection first, "answered"
                              if it answers, "open" if the whole request
                              went out (bounded: 60 bytes)
  raw.py hold PORT N FILE     open N connections and keep them idle; writes
                              "held N" (how many connected) to FILE, then
                              sleeps until killed
  raw.py produce PORT TOPIC LOG
                              post batches of 50 numbered lines to TOPIC
                              (POST /v1/topics/TOPIC/partitions/0/records,
                              text/plain) one after the other, and append
                              "FIRST COUNT FROM" to LOG for each answer 200
                              (FROM: the number of its first line), flushed
                              at once; ends at the first failure
  raw.py errors PORT THREADS N
                              THREADS connections at once each make N
                              requests that fail, each with an error
                              naming what it asked for (a missing topic,
                              a bad partition); prints "mismatches M of
                              T": answers whose error is not their own,
                              or that never came
"""
import http.client
import json
import os
import threading
import socket
import sys
import time


def connect(port):
    return socket.create_connection(("127.0.0.1", int(port)), timeout=10)


def read_answer(s):
    """The status of the first answer, None when closed without one."""
    data = b""
    while b"\r\n" not in data:
        try:
            chunk = s.recv(4096)
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        data += chunk
    line = data.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) >= 2 and line[1].isdigit() else -1


def send(port, path):
    with open(path, "rb") as f:
        body = f.read()
    s = connect(port)
    try:
        s.sendall(body)
    except (BrokenPipeError, ConnectionResetError):
        pass
    try:
        status = read_answer(s)
    except socket.timeout:
        print("open")
        return
    print("closed" if status is None else "status %d" % status)


def trickle(port, delay):
    req = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 40 + b"\r\n\r\n"
    s = connect(port)
    s.setblocking(False)
    for i in range(min(len(req), 60)):
        try:
            s.send(req[i:i + 1])
        except (BrokenPipeError, ConnectionResetError):
            print("closed after %d bytes" % i)
            return
        time.sleep(float(delay))
        try:
            chunk = s.recv(4096)
            if not chunk:
                print("closed after %d bytes" % (i + 1))
                return
            print("answered")
            return
        except BlockingIOError:
            pass
        except ConnectionResetError:
            print("closed after %d bytes" % (i + 1))
            return
    print("open")


def hold(port, n, out):
    socks = []
    for _ in range(int(n)):
        try:
            socks.append(connect(port))
        except OSError as e:
            sys.stderr.write("connect: %s\n" % e)
            break
    with open(out + ".tmp", "w") as f:
        f.write("held %d\n" % len(socks))
    os.rename(out + ".tmp", out)
    while True:
        time.sleep(60)


def produce(port, topic, log):
    s = None
    n = 1
    with open(log, "a") as out:
        while True:
            body = "".join("%d\n" % i for i in range(n, n + 50)).encode()
            req = ("POST /v1/topics/%s/partitions/0/records HTTP/1.1\r\nHost: x\r\n"
                   "Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
                   % (topic, len(body))).encode() + body
            try:
                if s is None:
                    s = connect(port)
                    f = s.makefile("rb")
                s.sendall(req)
                status = f.readline().split()
                length = 0
                while True:
                    h = f.readline()
                    if h in (b"\r\n", b""):
                        break
                    k, _, v = h.decode().partition(":")
                    if k.lower() == "content-length":
                        length = int(v)
                answer = f.read(length)
            except OSError:
                return
            if len(status) < 2 or status[1] != b"200" or len(answer) != length:
                return
            r = json.loads(answer)["results"][0]
            out.write("%d %d %d\n" % (r["offset"], r["count"], n))
            out.flush()
            n += 50


def errors(port, threads, n):
    counts = {"bad": 0, "total": 0}
    lock = threading.Lock()

    def worker(k):
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
        for i in range(int(n)):
            if k % 2:
                path, want = "/v1/topics/missing%d-%d" % (k, i), "topic 'missing%d-%d' not found" % (k, i)
            else:
                path, want = "/v1/topics/t/partitions/x%d-%d" % (k, i), "invalid partition 'x%d-%d'" % (k, i)
            try:
                c.request("GET", path)
                got = json.loads(c.getresponse().read())["error"]
            except (OSError, ValueError, KeyError, http.client.HTTPException):
                got = None
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
            with lock:
                counts["total"] += 1
                if got != want:
                    counts["bad"] += 1
                    if counts["bad"] <= 3:
                        sys.stderr.write("asked %s, told %r\n" % (path, got))

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(int(threads))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("mismatches %d of %d" % (counts["bad"], counts["total"]))


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    {"send": send, "trickle": trickle, "hold": hold, "produce": produce,
     "errors": errors}[cmd](*args)


if __name__ == "__main__":
    main()
