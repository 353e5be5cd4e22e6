"""Types one line into a VM's serial console (its console.sock) and prints what comes back within a few
seconds: how the exam tests act inside a candidate's guest.
    python3 console.py CONSOLE_SOCK 'command' [SECONDS] [slow]
slow types one character at a time, as a person does: a guest under record/replay (icount) takes its
serial interrupts late, and a whole line at once overruns the UART's FIFO."""
import socket
import sys
import time

sock = socket.socket(socket.AF_UNIX)
sock.connect(sys.argv[1])
if len(sys.argv) > 4 and sys.argv[4] == "slow":
    for ch in sys.argv[2].encode() + b"\n":
        sock.sendall(bytes([ch]))
        time.sleep(0.05)
else:
    sock.sendall(sys.argv[2].encode() + b"\n")
deadline = time.time() + float(sys.argv[3] if len(sys.argv) > 3 else 3)
out = b""
sock.settimeout(0.2)
while time.time() < deadline:
    try:
        data = sock.recv(4096)
        if not data:
            break
        out += data
    except socket.timeout:
        pass
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
