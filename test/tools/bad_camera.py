#!/usr/bin/env python3
"""A misbehaving "camera" on 127.0.0.1 for the ingest tests (plain python3).

usage: bad_camera.py --mode MODE [--port N] [--seed N]

modes:
  garbage            accept TCP, send random bytes, read (and discard) whatever comes
  silent             accept TCP, never send a byte (reads and discards what comes)
  rtsp-then-garbage  answer OPTIONS with plausible RTSP headers; DESCRIBE gets a
                     plausible H.264 SDP with bogus parameter sets on odd
                     connections and binary garbage as the SDP body on even
                     ones; SETUP/PLAY are accepted, then interleaved RTP packets
                     with random payloads follow, interleaved with random bytes

--port 0 (the default) picks a free port.  Once listening, one line goes to
stdout:  ready tcp://127.0.0.1:PORT mode=MODE
Each connection is served by its own thread until the peer closes it.
Connections are counted on stderr ("connection N").  SIGTERM/SIGINT: exit 0.
"""
import argparse
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time


def recv_request(conn, buf):
    """Reads one RTSP request (headers + body by Content-Length).
    Returns (request_text, rest_of_buffer) or (None, buf) at EOF."""
    while b'\r\n\r\n' not in buf:
        chunk = conn.recv(4096)
        if not chunk:
            return None, buf
        buf += chunk
        # Interleaved RTCP from the client ('$' framing) before a request: skip it.
        while buf.startswith(b'$') and len(buf) >= 4:
            n = struct.unpack('>H', buf[2:4])[0]
            if len(buf) < 4 + n:
                break
            buf = buf[4 + n:]
    head, _, rest = buf.partition(b'\r\n\r\n')
    m = re.search(rb'(?im)^content-length:\s*(\d+)', head)
    need = int(m.group(1)) if m else 0
    while len(rest) < need:
        chunk = conn.recv(4096)
        if not chunk:
            return None, b''
        rest += chunk
    return head.decode('latin-1'), rest[need:]


def reply(conn, cseq, extra='', body=b'', status='200 OK'):
    head = f'RTSP/1.0 {status}\r\nCSeq: {cseq}\r\nServer: bad_camera\r\n{extra}'
    if body:
        head += f'Content-Length: {len(body)}\r\n'
    conn.sendall(head.encode('latin-1') + b'\r\n' + body)


def peer_still_there(conn):
    """Reads and drops what the client sent; False once it has gone."""
    try:
        return conn.recv(65536) != b''
    except socket.timeout:
        return True
    except OSError:
        return False


def serve_garbage(conn, rnd, stop):
    conn.settimeout(0.05)
    while not stop.is_set():
        try:
            conn.sendall(rnd.randbytes(rnd.randint(1, 4096)))
        except OSError:
            return
        if not peer_still_there(conn):
            return
        time.sleep(0.02)


def serve_silent(conn, rnd, stop):
    conn.settimeout(0.2)
    while not stop.is_set():
        if not peer_still_there(conn):
            return


def serve_rtsp_then_garbage(conn, rnd, stop, number):
    buf = b''
    conn.settimeout(30)
    session = '%08X' % rnd.getrandbits(32)
    while not stop.is_set():
        req, buf = recv_request(conn, buf)
        if req is None:
            return
        first = req.split('\r\n', 1)[0]
        method, _, url = first.partition(' ')
        url = url.rsplit(' ', 1)[0]
        m = re.search(r'(?im)^cseq:\s*(\d+)', req)
        cseq = m.group(1) if m else '0'
        if method == 'OPTIONS':
            reply(conn, cseq, 'Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER\r\n')
        elif method == 'DESCRIBE':
            if number % 2:
                # Looks like H.264, but the parameter sets are random bytes.
                sps = ''.join(rnd.choice('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/')
                              for _ in range(rnd.randint(4, 40)))
                sdp = ('v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=bad\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n'
                       'm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n'
                       f'a=fmtp:96 packetization-mode=1;sprop-parameter-sets={sps},{sps[::-1]}\r\n'
                       'a=control:stream=0\r\n').encode()
            else:
                sdp = rnd.randbytes(rnd.randint(16, 2048))
            reply(conn, cseq, f'Content-Base: {url}/\r\nContent-Type: application/sdp\r\n', sdp)
        elif method == 'SETUP':
            reply(conn, cseq, f'Session: {session};timeout=60\r\n'
                  'Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n')
        elif method == 'PLAY':
            reply(conn, cseq, f'Session: {session}\r\nRange: npt=0-\r\n')
            break
        elif method == 'TEARDOWN':
            reply(conn, cseq, f'Session: {session}\r\n')
            return
        else:
            reply(conn, cseq, status='200 OK')
    # The "stream": interleaved RTP with random payloads, and raw garbage.
    seq = rnd.getrandbits(16)
    ts = rnd.getrandbits(32)
    ssrc = rnd.getrandbits(32)
    conn.settimeout(0.01)
    while not stop.is_set():
        try:
            if rnd.random() < 0.8:
                payload = rnd.randbytes(rnd.randint(1, 1400))
                rtp = struct.pack('>BBHII', 0x80, 0x60 | (0x80 if rnd.random() < 0.3 else 0), seq, ts, ssrc) + payload
                conn.sendall(b'$\x00' + struct.pack('>H', len(rtp)) + rtp)
                seq = (seq + 1) & 0xFFFF
                ts = (ts + 3600) & 0xFFFFFFFF
            else:
                conn.sendall(rnd.randbytes(rnd.randint(1, 512)))
        except OSError:
            return
        if not peer_still_there(conn):
            return
        time.sleep(0.005)


def main():
    ap = argparse.ArgumentParser(description='misbehaving camera for tests')
    ap.add_argument('--mode', required=True, choices=['garbage', 'silent', 'rtsp-then-garbage'])
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--seed', type=int, default=None, help='random seed (default: from the clock)')
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), 'big')
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(('127.0.0.1', a.port))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    print(f'ready tcp://127.0.0.1:{port} mode={a.mode}', flush=True)
    print(f'bad_camera: seed {seed}', file=sys.stderr, flush=True)

    number = 0
    try:
        while True:
            conn, _ = lsock.accept()
            number += 1
            print(f'bad_camera: connection {number}', file=sys.stderr, flush=True)
            rnd = random.Random(seed + number)

            def run(conn=conn, rnd=rnd, number=number):
                try:
                    if a.mode == 'garbage':
                        serve_garbage(conn, rnd, stop)
                    elif a.mode == 'silent':
                        serve_silent(conn, rnd, stop)
                    else:
                        serve_rtsp_then_garbage(conn, rnd, stop, number)
                except OSError:
                    pass
                finally:
                    conn.close()

            threading.Thread(target=run, daemon=True).start()
    except SystemExit:
        pass
    finally:
        stop.set()
        lsock.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
