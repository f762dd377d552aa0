# Load generator for test/integration/connection-limits.test.ts, in its own process so that the test's
# timings are not the load's event loop. Real sockets only, to 127.0.0.1.
#   slow HOST PORT PATH COUNT SECONDS: COUNT readers, each from its own address 127.1.x.y, with a 4 KiB
#     receive buffer, send GET PATH and read 64 bytes a second each for SECONDS, then close.
#   idle HOST PORT COUNT PER_ADDRESS: COUNT connections that never send a byte, PER_ADDRESS from each
#     address 127.2.1.z; then counts how many the server closed, and closes the rest.
# Prints "ready" once every socket is connected, then one JSON line with what it saw.
import json, socket, sys, time

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

def conn(addr, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((addr, 0))
    s.connect((host, port))
    return s

if mode == 'slow':
    path, count, seconds = sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
    socks = []
    for i in range(count):
        s = conn('127.1.%d.%d' % (1 + i // 250, 1 + i % 250), 4096)
        s.sendall(('GET %s HTTP/1.1\r\nhost: x\r\n\r\n' % path).encode())
        s.setblocking(False)
        socks.append(s)
    print('ready', flush=True)
    got = 0
    end = time.time() + seconds
    while time.time() < end:
        for s in socks:
            try:
                got += len(s.recv(64))
            except BlockingIOError:
                pass
            except OSError:
                pass
        time.sleep(1)
    for s in socks:
        s.close()
    print(json.dumps({'readers': len(socks), 'bytes': got}), flush=True)
else:
    count, per = int(sys.argv[4]), int(sys.argv[5])
    socks, failed = [], 0
    for i in range(count):
        try:
            socks.append(conn('127.2.1.%d' % (1 + i // per)))
        except OSError:
            failed += 1
    print('ready', flush=True)
    time.sleep(1)
    closed = refused = 0
    for s in socks:
        s.setblocking(False)
        try:
            d = s.recv(4096)
            if d.startswith(b'HTTP/1.1 503'):
                refused += 1
            else:
                closed += 1 if d == b'' else 0
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    held = len(socks) - closed - refused
    for s in socks:
        s.close()
    print(json.dumps({'opened': len(socks), 'failed': failed, 'closedByServer': closed, 'refused': refused, 'held': held}), flush=True)
