"""Waits until a VM's shell answers on its console socket: connects (retrying while the socket is not there
yet), types `echo klab-ready-$((N+1))` and returns once the computed line comes back (only a shell that
runs the command prints it: the echo of the typed line holds the unexpanded text). The line is typed again
every 0.25 s without an answer: bytes sent while a restored VM is still loading its device state may be lost.
    python3 bench/shell_ready.py CONSOLE_SOCK [TIMEOUT_S]"""
import os
import random
import socket
import sys
import time

path, limit = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 60
deadline = time.time() + limit
n = random.randint(1000, 9999)
want = ("klab-ready-%d" % (n + 1)).encode()
while True:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        break
    except OSError:
        if time.time() > deadline:
            sys.exit("shell_ready: no console at %s" % path)
        time.sleep(0.005)
line = b"echo klab-ready-$((%d+1))\n" % n
s.settimeout(0.05)
out = b""
sent = 0
while time.time() < deadline:
    if time.time() - sent > 0.25:
        s.sendall(line)
        sent = time.time()
    try:
        data = s.recv(4096)
        if not data:
            break
        out += data
        if want in out.replace(b"\r", b""):
            sys.exit(0)
    except socket.timeout:
        pass
sys.exit("shell_ready: the shell did not answer within %g s" % limit)
