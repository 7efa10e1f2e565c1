#!/usr/bin/python3
"""A real RFC 3161 time-stamp authority on 127.0.0.1 for the export tests:
every POST of application/timestamp-query is answered by the openssl CLI
(`openssl ts -reply -config CONFIG -queryfile QUERY`) with content-type
application/timestamp-reply.

usage: tsa_server.py --config tsa.cnf [--port N] [--section NAME]

--config is an openssl configuration with a [tsa] section (signer_cert,
signer_key, certs, serial, default_policy, digests, ...), as `openssl ts`
documents.  --port 0 (the default) lets the system pick a free port.  Once
serving, one line goes to stdout:  ready http://127.0.0.1:PORT/
Each request is logged on stderr as one line:
  request N: CONTENT-TYPE BYTES bytes -> STATUS
Anything but a POST of application/timestamp-query gets 400 (405 for other
methods) and no token.  SIGTERM and SIGINT stop the server (exit 0).
"""
import argparse
import http.server
import os
import signal
import subprocess
import sys
import tempfile
import threading


def parse_args():
    ap = argparse.ArgumentParser(description='loopback RFC 3161 TSA (openssl ts -reply)')
    ap.add_argument('--config', required=True)
    ap.add_argument('--section', default=None)
    ap.add_argument('--port', type=int, default=0)
    return ap.parse_args()


ARGS = parse_args()
LOCK = threading.Lock()      # openssl ts -reply updates the serial file
COUNT = [0]
MAX_QUERY = 64 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, fmt, *args):  # quiet: one line per request below
        pass

    def _answer(self, status, body=b'', ctype='text/plain'):
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Connection', 'close')
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_GET(self):
        self._log('GET', 0, 405)
        self._answer(405, b'POST a timestamp query\n')

    def _log(self, ctype, n, status):
        COUNT[0] += 1
        sys.stderr.write('request %d: %s %d bytes -> %d\n' % (COUNT[0], ctype, n, status))
        sys.stderr.flush()

    def do_POST(self):
        ctype = self.headers.get('Content-Type', '')
        try:
            n = int(self.headers.get('Content-Length', '-1'))
        except ValueError:
            n = -1
        if n < 0 or n > MAX_QUERY:
            self._log(ctype, max(n, 0), 400)
            self._answer(400, b'bad Content-Length\n')
            return
        query = self.rfile.read(n)
        if ctype.split(';')[0].strip().lower() != 'application/timestamp-query':
            self._log(ctype, n, 400)
            self._answer(400, b'expected application/timestamp-query\n')
            return
        with LOCK, tempfile.TemporaryDirectory() as d:
            qf = os.path.join(d, 'query.tsq')
            rf = os.path.join(d, 'reply.tsr')
            with open(qf, 'wb') as f:
                f.write(query)
            cmd = ['openssl', 'ts', '-reply', '-config', ARGS.config, '-queryfile', qf, '-out', rf]
            if ARGS.section:
                cmd[3:3] = ['-section', ARGS.section]
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
            reply = b''
            if r.returncode == 0 and os.path.exists(rf):
                with open(rf, 'rb') as f:
                    reply = f.read()
        if not reply:
            sys.stderr.write('openssl ts -reply failed: %s\n' % r.stderr.decode(errors='replace').strip())
            self._log(ctype, n, 500)
            self._answer(500, b'openssl ts -reply failed\n')
            return
        self._log(ctype, n, 200)
        self._answer(200, reply, 'application/timestamp-reply')


def main():
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', ARGS.port), Handler)
    srv.daemon_threads = True

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print('ready http://127.0.0.1:%d/' % srv.server_address[1], flush=True)
    srv.serve_forever()
    srv.server_close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
