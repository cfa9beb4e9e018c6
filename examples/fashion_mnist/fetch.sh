#!/usr/bin/env bash
# Fetches Fashion-MNIST (60,000 training and 10,000 test images of 28 x 28 pixels, ten classes)
# from Debian's package dataset-fashion-mnist into examples/fashion_mnist/data/ (git-ignored):
# the four gzip-compressed IDX files, which `tl` reads directly. Needs apt-get (Debian or
# Ubuntu; no root: the package is downloaded and unpacked, not installed) and checks each file's
# sha256. Does nothing when the files are already there.
# Usage: examples/fashion_mnist/fetch.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dest="$here/data"
files=(
  "train-images-idx3-ubyte.gz b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"
  "train-labels-idx1-ubyte.gz 0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"
  "t10k-images-idx3-ubyte.gz cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"
  "t10k-labels-idx1-ubyte.gz 8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"
)

present=1
for f in "${files[@]}"; do [ -f "$dest/${f%% *}" ] || present=0; done
if [ "$present" = 1 ]; then
  echo "data already in $dest"
  exit 0
fi
command -v apt-get >/dev/null 2>&1 || { echo "fetch.sh: apt-get is needed (Debian's dataset-fashion-mnist)" >&2; exit 1; }

tmp=$(mktemp -d)
chmod 755 "$tmp"  # apt-get downloads as its own user
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download dataset-fashion-mnist >/dev/null)
dpkg-deb -x "$tmp"/dataset-fashion-mnist_*.deb "$tmp/unpacked"
mkdir -p "$dest"
for f in "${files[@]}"; do
  name=${f%% *}; sha=${f##* }
  src="$tmp/unpacked/usr/share/datasets/fashion-mnist/$name"
  got=$(sha256sum "$src" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "fetch.sh: $name has sha256 $got, expected $sha" >&2
    exit 1
  fi
  cp "$src" "$dest/$name"
done
echo "Fashion-MNIST in $dest"
