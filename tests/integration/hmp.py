"""Asks QEMU's human monitor directly through the VM's monitor.sock — no klab code on the way — and prints
each answer: the tests' independent oracle for translations (gva2gpa) and physical bytes (xp).
    python3 hmp.py MONITOR_SOCK 'gva2gpa 0xffffffff81000000' ['xp/16bx 0x1000' ...]
Each answer is printed as one line 'CMD => ANSWER' (ANSWER's lines joined by ' | ')."""
import socket
import sys
import time


def read_until_prompt(sock, timeout=10.0):
    data = b""
    deadline = time.time() + timeout
    while not data.endswith(b"(qemu) ") and time.time() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


sock = socket.socket(socket.AF_UNIX)
sock.settimeout(10)
sock.connect(sys.argv[1])
read_until_prompt(sock)                     # the banner
for cmd in sys.argv[2:]:
    sock.sendall(cmd.encode() + b"\n")
    out = read_until_prompt(sock)
    # QEMU echoes the command line (with terminal escapes) before the answer.
    lines = [l.strip() for l in out.replace("\r", "").split("\n")]
    lines = [l for l in lines if l and not l.endswith("(qemu)") and cmd not in l and "\x1b" not in l]
    print("%s => %s" % (cmd, " | ".join(lines)))
