#!/usr/bin/env bash
# Installs every Debian 12 package pg_vms needs to build, test and run the demo.
# Idempotent: does nothing (and needs no network) when everything is present.
set -euo pipefail

PACKAGES=(
  # server, headers for PGXS, TAP test modules, scheduler
  postgresql-15 postgresql-server-dev-15 postgresql-15-cron libipc-run-perl
  # libpq-be.h pulls in gssapi.h; OpenSSL for the hash chain and later crypto
  libkrb5-dev libssl-dev libpq-dev
  # tools/ (later issues): FFmpeg 5.1, LDAP
  libavformat-dev libavcodec-dev libavutil-dev libavfilter-dev libswscale-dev libldap2-dev
  # authentication (issue 4): cracklib and its dictionary, john's common-password
  # list, an OpenLDAP server and client tools for the LDAP/LDAPS tests, openssl CLI
  libcrack2-dev cracklib-runtime john-data slapd ldap-utils openssl
  # an independent TOTP generator (RFC 6238) for the demo and the interop test
  oathtool
  # ingest (issue 6): the ffmpeg/ffprobe CLI as the benchmark baseline and an
  # independent reader of our segments; a real RTSP camera for the tests and the
  # demo (gst-rtsp-server through python3-gi, with x264, digest auth and TLS)
  ffmpeg gir1.2-gst-rtsp-server-1.0 gir1.2-gstreamer-1.0 python3-gi glib-networking
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly
  gstreamer1.0-plugins-bad libx264-dev
  # export (issue 7): clang for vms-verify's libFuzzer target (make -C tools fuzz)
  clang
  # build and test plumbing
  make gcc pkg-config perl util-linux
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (or install them) first" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# The Debian postgresql package would start a 'main' cluster on port 5432; we never use it.
mkdir -p /etc/postgresql-common
if [ ! -f /etc/postgresql-common/createcluster.conf ] || ! grep -q '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf; then
  echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
