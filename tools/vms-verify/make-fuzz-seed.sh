#!/bin/sh
# make-fuzz-seed.sh PACKAGE_DIR > SEED: one input for bin/fuzz-vms-verify
# (see fuzz_package.c) from a real evidence package: manifest.json,
# SHA256SUMS, manifest.json.p7s and manifest.json.p7s.tsr (empty when the
# package has none), each as a 4-byte little-endian length and the bytes.
set -eu
dir=${1:?usage: make-fuzz-seed.sh PACKAGE_DIR > SEED}
for f in manifest.json SHA256SUMS manifest.json.p7s manifest.json.p7s.tsr; do
  if [ -f "$dir/$f" ]; then
    perl -e 'local $/; my $d = <STDIN>; print pack("V", length $d), $d' <"$dir/$f"
  else
    perl -e 'print pack("V", 0)'
  fi
done
