#!/usr/bin/python3
"""tests/replicate/wire.py: the wire between a follower and its leader,
for tests/008-replicate.bats: passes the leader's replies through, slowed
down or with one bit flipped inside a batch.

usage: wire.py pipe  [OPTIONS]        standard input to standard output
                                      (the remote side of an ssh, see
                                      tests/replicate/ssh)
       wire.py proxy PORT [OPTIONS]   listens on 127.0.0.1, a free port,
                                      says "wire: listening on
                                      127.0.0.1:N" on standard error, and
                                      forwards each connection to
                                      127.0.0.1:PORT (an mq-serve)

Options (what goes to the leader is never touched, what comes back is):
  --flip STATE     flip one bit in the first record batch of the first
                   reply of Content-Type application/vnd.kafka.batch
                   whose body has at least --min-body bytes: a bit in
                   the middle of that batch's records, which only the
                   CRC can tell.  Flips once: STATE is created with
                   "OFFSET POSITION" (the batch's base offset, the byte
                   of the stream flipped), and while it exists nothing
                   is flipped, whichever process or connection comes
                   next.
  --always         with --flip: every such reply, one more line in
                   STATE each time
  --min-body N     (default 1000)
  --chunk N        pass at most N bytes at a time (default 65536)
  --delay-ms MS    and sleep MS milliseconds after each (default 0)
"""

import argparse
import os
import re
import socket
import sys
import threading
import time

HEAD = re.compile(rb"HTTP/1\.[01] 200 [^\r\n]*\r\n((?:[^\r\n]+\r\n)*?)\r\n")
LOCK = threading.Lock()


class Flipper:
    """Finds reply headers in the stream and the bit to flip in the body
    after them; feed() is called on each chunk before it is passed on,
    so the byte to flip is always in this chunk or a later one."""

    def __init__(self, a):
        self.a = a
        self.win = b""          # the last bytes seen, to find headers in
        self.wabs = 0           # stream position of win[0]
        self.seen = 0           # headers that end before this are done
        self.body = None        # stream position of a chosen body
        self.target = None      # stream position of the byte to flip

    def allowed(self):
        return self.a.flip and (self.a.always or not os.path.exists(self.a.flip))

    def feed(self, chunk):
        start = self.wabs + len(self.win)
        self.win += chunk
        if self.body is None and self.target is None:
            for m in HEAD.finditer(self.win):
                end = self.wabs + m.end()
                if end <= self.seen:
                    continue
                self.seen = end
                h = m.group(1).lower()
                n = re.search(rb"content-length: *(\d+)", h)
                if (b"application/vnd.kafka.batch" in h and n and int(n.group(1)) >= self.a.min_body
                        and self.allowed()):
                    self.body = end
                    break
        if self.body is not None and self.wabs + len(self.win) >= self.body + 12:
            b = self.win[self.body - self.wabs:self.body - self.wabs + 12]
            size = 12 + int.from_bytes(b[8:12], "big")
            self.offset = int.from_bytes(b[0:8], "big")
            self.target = self.body + 61 + (size - 61) // 2
            self.body = None
        if self.target is not None and start <= self.target < start + len(chunk):
            i = self.target - start
            chunk = chunk[:i] + bytes([chunk[i] ^ 0x10]) + chunk[i + 1:]
            with LOCK, open(self.a.flip, "a") as f:
                f.write("%d %d\n" % (self.offset, self.target))
            self.target = None
        keep = 16384
        if len(self.win) > keep and self.body is None:
            self.wabs += len(self.win) - keep
            self.win = self.win[-keep:]
        return chunk


def pump(read, write, a, flip):
    while True:
        try:
            chunk = read(a.chunk)
        except OSError:
            break
        if not chunk:
            break
        if flip:
            chunk = flip.feed(chunk)
        try:
            write(chunk)
        except OSError:
            break
        if a.delay_ms:
            time.sleep(a.delay_ms / 1000.0)


def writeall(fd):
    def w(b):
        while b:
            n = os.write(fd, b)
            b = b[n:]
    return w


def proxy(a):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    sys.stderr.write("wire: listening on 127.0.0.1:%d\n" % ls.getsockname()[1])
    sys.stderr.flush()

    def conn(c):
        try:
            u = socket.create_connection(("127.0.0.1", a.port))
        except OSError:
            c.close()
            return

        def down():
            pump(u.recv, c.sendall, a, Flipper(a))
            for s in (c, u):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        t = threading.Thread(target=down, daemon=True)
        t.start()
        pump(c.recv, u.sendall, argparse.Namespace(chunk=65536, delay_ms=0), None)
        for s in (c, u):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        t.join()
        c.close()
        u.close()

    while True:
        c, _ = ls.accept()
        threading.Thread(target=conn, args=(c,), daemon=True).start()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["pipe", "proxy"])
    ap.add_argument("port", type=int, nargs="?")
    ap.add_argument("--flip")
    ap.add_argument("--always", action="store_true")
    ap.add_argument("--min-body", type=int, default=1000)
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--delay-ms", type=float, default=0)
    a = ap.parse_args()
    if a.mode == "proxy":
        if a.port is None:
            ap.error("proxy needs the PORT of the server")
        proxy(a)
    else:
        pump(lambda n: os.read(0, n), writeall(1), a, Flipper(a))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
