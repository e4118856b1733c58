#!/usr/bin/env python3
"""A stand-in worker for the dispatcher's event-path tests (stdlib only).

Answers the health and index endpoints like `osprey serve` (model "echo"),
and proxied requests according to its role (--role) and the query string:

  good      POST: body = "<X-Request-Id>\\n" + the request body; GET: a JSON
            object naming the model. ?te=chunked answers in random-sized
            chunks instead of with a Content-Length; ?mode=slow&ms=N waits N
            ms first (each request has its own thread, so a slow one does
            not hold up others).
  garbage   proxied requests get bytes that are not HTTP, then a close.
  close     proxied requests get a head promising 100000 bytes, 10 of them,
            then a close (a worker dying mid-answer).
  hang      proxied requests are read and never answered.
  early     POSTs are answered 413 at once, before their body is read, then
            the connection is closed after reading and dropping the rest (a
            server answering early, with a lingering close; GETs as good).
  stall     POSTs: the body is read only 1.5 s after the head, then
            answered with {"len": bytes, "md5": hex} (a worker slower than
            its client: the proxy in between must push back, not buffer).

Prints {"msg":"listening","port":N} on stdout when ready. Counts the proxied
requests it received at GET /count.
"""

import argparse
import hashlib
import json
import random
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

ROLE = "good"
COUNT = 0
LOCK = threading.Lock()


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):  # quiet
        pass

    def _send(self, status, body, ctype="application/json", chunked=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            i = 0
            while i < len(body):
                n = random.randint(1, 70000)
                part = body[i:i + n]
                self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
                i += n
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        self.wfile.flush()

    def _own(self):
        p = urlparse(self.path).path
        if p in ("/v2/health/ready", "/v2/health/live"):
            self._send(200, b'{"ready": true}\n')
            return True
        if p == "/v2/repository/index":
            self._send(200, json.dumps([{"name": "echo", "version": "1",
                                         "state": "READY"}]).encode())
            return True
        if p == "/count":
            self._send(200, json.dumps({"count": COUNT}).encode())
            return True
        return False

    def _proxied(self, body):
        global COUNT
        with LOCK:
            COUNT += 1
        q = parse_qs(urlparse(self.path).query)
        if ROLE == "garbage":
            self.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
            return
        if ROLE == "close":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
                             b"0123456789")
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if ROLE == "hang":
            time.sleep(3600)
            return
        if q.get("mode") == ["slow"]:
            time.sleep(int(q.get("ms", ["2000"])[0]) / 1000)
        chunked = q.get("te") == ["chunked"]
        rid = (self.headers.get("X-Request-Id") or "").encode()
        if self.command == "GET":
            out = json.dumps({"name": "echo", "request_id": rid.decode()}).encode()
            self._send(200, out, chunked=chunked)
        else:
            self._send(200, rid + b"\n" + body, "application/octet-stream",
                       chunked=chunked)

    def do_GET(self):
        if not self._own():
            self._proxied(b"")

    def do_POST(self):
        if ROLE == "early" and not self._own():
            global COUNT
            with LOCK:
                COUNT += 1
            self._send(413, b'{"error": "too large"}\n')
            # A lingering close, as real servers do after an early answer
            # (nginx's lingering_close, libmicrohttpd's drain): stop
            # writing, read and drop what the client still sends, then
            # close. Closing with unread bytes instead makes the kernel
            # reset the connection, and a reset may discard the answer
            # before the client reads it — no proxy can forward that.
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_WR)
                self.connection.settimeout(5)
                while self.connection.recv(1 << 16):
                    pass
            except OSError:
                pass
            return
        n = int(self.headers.get("Content-Length") or 0)
        if ROLE == "stall" and not self._own():
            time.sleep(1.5)
            h, left = hashlib.md5(), n
            while left > 0:
                part = self.rfile.read(min(left, 1 << 20))
                if not part:
                    break
                h.update(part)
                left -= len(part)
            self._send(200, json.dumps({"len": n - left,
                                        "md5": h.hexdigest()}).encode())
            return
        body = self.rfile.read(n) if n else b""
        if not self._own():
            self._proxied(body)


def main():
    global ROLE
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", default="good",
                    choices=["good", "garbage", "close", "hang", "early", "stall"])
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    ROLE = a.role
    # A listen backlog like a real server's: the default 5 drops SYNs when
    # the dispatcher opens dozens of connections at once, and a dropped SYN
    # is retransmitted only after 1 s — the dispatcher's connect timeout.
    ThreadingHTTPServer.request_queue_size = 512
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), H)
    srv.daemon_threads = True
    print(json.dumps({"msg": "listening", "port": srv.server_address[1]}),
          flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
