#!/usr/bin/python3
"""A real RTSP(S) camera on 127.0.0.1 for the ingest tests: gst-rtsp-server 1.22
through python3-gi (use /usr/bin/python3: it has gi).

usage: rtsp_camera.py [--port N] [--auth none|basic|digest] [--user U]
                      [--password P | --password-file F]
                      [--tls-cert bundle.pem] [--size WxH] [--fps N] [--gop N]
                      [--file x.mp4 [--no-loop]] [--bitrate KBIT]

--password-file reads the password from the file's first line (without its
newline), keeping it off the command line (`ps`).
--port 0 (the default) lets the system pick a free port.  Once serving, one
line goes to stdout:  ready rtsp[s]://127.0.0.1:PORT/test auth=MODE
--tls-cert takes the certificate (chain) and its private key in one PEM file;
every connection is then TLS: rtsps:// and the RTSP-over-HTTPS tunnel.
--file serves a pre-encoded H.264 MP4 paced in real time, looped seamlessly
(timestamps keep increasing) unless --no-loop.  Without it a synthetic live
picture (videotestsrc, x264 baseline, a keyframe every --gop frames, SPS/PPS
in band) is encoded per client.

The media factory is not shared: every client gets its own pipeline, which
avoids gst-rtsp-server 1.22's abort in gst_rtsp_media_get_rates when several
clients set up a fresh shared media at the same instant.  SIGTERM and SIGINT
stop the server cleanly (exit 0).
"""
import argparse
import signal
import sys

import gi

gi.require_version('Gst', '1.0')
gi.require_version('GstRtsp', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import GLib, Gio, Gst, GstRtsp, GstRtspServer  # noqa: E402


def parse_args():
    ap = argparse.ArgumentParser(description='loopback RTSP(S) test camera')
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--auth', default='none', choices=['none', 'basic', 'digest'])
    ap.add_argument('--user', default='cam')
    ap.add_argument('--password', default='secret')
    ap.add_argument('--password-file', help='read the password from this file (first line)')
    ap.add_argument('--tls-cert', help='PEM file with the certificate (chain) and private key')
    ap.add_argument('--size', default='640x360')
    ap.add_argument('--fps', type=int, default=25)
    ap.add_argument('--gop', type=int, default=25, help='keyframe interval in frames')
    ap.add_argument('--bitrate', type=int, default=1000, help='x264 bitrate, kbit/s')
    ap.add_argument('--file', help='serve this H.264 MP4 (real-time paced) instead of videotestsrc')
    ap.add_argument('--no-loop', action='store_true', help='with --file: end the stream at the end of the file')
    a = ap.parse_args()
    try:
        w, h = (int(v) for v in a.size.split('x'))
    except ValueError:
        ap.error('--size must be WIDTHxHEIGHT')
    if w <= 0 or h <= 0 or a.fps <= 0 or a.gop <= 0 or not 0 <= a.port <= 65535:
        ap.error('--size, --fps and --gop must be positive, --port 0..65535')
    a.width, a.height = w, h
    if a.password_file:
        try:
            with open(a.password_file, encoding='utf-8') as f:
                a.password = f.readline().rstrip('\n')
        except OSError as e:
            ap.error(f'--password-file: {e}')
    return a


class LoopingFactory(GstRtspServer.RTSPMediaFactory):
    """Serves a file forever: at the end of the file the demuxer is seeked back
    to 0 and the running time is shifted by what was already played, so the
    client sees one continuous stream (no flush reaches the payloader)."""

    def __init__(self, path, loop):
        super().__init__()
        self.path = path
        self.loop = loop
        self.connect('media-configure', self.on_media_configure)

    def do_create_element(self, url):
        loop = 'identity name=loopgate ! ' if self.loop else ''
        return Gst.parse_launch(
            f'( filesrc location="{self.path}" ! qtdemux name=demux ! h264parse name=parse '
            f'config-interval=-1 ! {loop}rtph264pay name=pay0 pt=96 config-interval=1 )')

    def on_media_configure(self, factory, media):
        if not self.loop:
            return
        bin_ = media.get_element()
        gate = bin_.get_by_name('loopgate')
        parse = bin_.get_by_name('parse')
        src = gate.get_static_pad('src')
        state = {'offset': 0, 'last_end': 0, 'seeking': False}

        def reseek():
            seek = Gst.Event.new_seek(1.0, Gst.Format.TIME, Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT,
                                      Gst.SeekType.SET, 0, Gst.SeekType.NONE, -1)
            parse.get_static_pad('src').send_event(seek)
            return False

        def probe(pad, info):
            if info.type & Gst.PadProbeType.BUFFER:
                buf = info.get_buffer()
                if buf.pts != Gst.CLOCK_TIME_NONE:
                    end = buf.pts + (buf.duration if buf.duration != Gst.CLOCK_TIME_NONE else 0)
                    state['last_end'] = max(state['last_end'], end)
                return Gst.PadProbeReturn.OK
            ev = info.get_event()
            if ev is None:
                return Gst.PadProbeReturn.OK
            if ev.type == Gst.EventType.EOS:
                # Played to the end: shift later running times by its length.
                state['offset'] += state['last_end']
                state['last_end'] = 0
                state['seeking'] = True
                pad.set_offset(state['offset'])
                GLib.idle_add(reseek)
                return Gst.PadProbeReturn.DROP
            if state['seeking'] and ev.type in (Gst.EventType.FLUSH_START, Gst.EventType.FLUSH_STOP,
                                                Gst.EventType.STREAM_START):
                return Gst.PadProbeReturn.DROP
            if ev.type == Gst.EventType.SEGMENT:
                state['seeking'] = False
            return Gst.PadProbeReturn.OK

        src.add_probe(Gst.PadProbeType.BUFFER | Gst.PadProbeType.EVENT_DOWNSTREAM
                      | Gst.PadProbeType.EVENT_FLUSH, probe)


def main():
    a = parse_args()
    Gst.init(None)
    if a.file:
        factory = LoopingFactory(a.file, not a.no_loop)
    else:
        factory = GstRtspServer.RTSPMediaFactory.new()
        factory.set_launch(
            '( videotestsrc is-live=true pattern=smpte horizontal-speed=4 ! '
            f'video/x-raw,width={a.width},height={a.height},framerate={a.fps}/1 ! '
            f'x264enc tune=zerolatency speed-preset=ultrafast bitrate={a.bitrate} '
            f'key-int-max={a.gop} threads=1 ! '
            'video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=1 )')
    factory.set_shared(False)
    # TCP interleaved, UDP and the HTTP(S) tunnel are all allowed (the default).

    server = GstRtspServer.RTSPServer.new()
    server.set_address('127.0.0.1')
    server.set_service(str(a.port))
    if a.auth != 'none' or a.tls_cert:
        auth = GstRtspServer.RTSPAuth.new()
        if a.tls_cert:
            try:
                auth.set_tls_certificate(Gio.TlsCertificate.new_from_file(a.tls_cert))
            except GLib.Error as e:
                sys.exit(f'rtsp_camera: cannot load {a.tls_cert}: {e.message}')
        token = GstRtspServer.RTSPToken()
        token.set_string('media.factory.role', 'user')
        if a.auth == 'basic':
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(a.user, a.password), token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
        elif a.auth == 'digest':
            auth.add_digest(a.user, a.password, token)
            auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        else:  # TLS only: anonymous clients allowed
            anon = GstRtspServer.RTSPToken()
            anon.set_string('media.factory.role', 'user')
            auth.set_default_token(anon)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions.new()
        perms.add_role_from_structure(Gst.Structure.new_empty('user'))
        perms.add_permission_for_role('user', 'media.factory.access', True)
        perms.add_permission_for_role('user', 'media.factory.construct', True)
        factory.set_permissions(perms)
    server.get_mount_points().add_factory('/test', factory)
    if server.attach(None) == 0:
        sys.exit(f'rtsp_camera: cannot listen on 127.0.0.1:{a.port}')
    port = server.get_bound_port()
    scheme = 'rtsps' if a.tls_cert else 'rtsp'
    print(f'ready {scheme}://127.0.0.1:{port}/test auth={a.auth}', flush=True)

    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    # Expire the sessions of clients that vanished without a TEARDOWN.
    pool = server.get_session_pool()
    GLib.timeout_add_seconds(2, lambda: (pool.cleanup(), True)[1])
    loop.run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
