#!/usr/bin/env bash
# Prepares the GPT example's data: the GNU GPL version 3 as Debian's base-files package ships
# it (/usr/share/common-licenses/GPL-3; where it is missing, the package is downloaded with
# apt-get and unpacked, not installed), sha256-checked, then cut into windows by prepare.py
# (NumPy) into examples/gpt/data/ (git-ignored). Does nothing when the data is already there.
# Usage: examples/gpt/fetch.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
if [ -f "$here/data/train.npy" ]; then
  echo "data already in $here/data"
  exit 0
fi
sum=3972dc9744f6499f0f9b2dbf76696f2ae7ad8af9b23dde66d6af86c9dfb36986
text=/usr/share/common-licenses/GPL-3
tmp=$(mktemp -d)
chmod 755 "$tmp"  # apt-get downloads as its own user
trap 'rm -rf "$tmp"' EXIT
if [ ! -f "$text" ]; then
  command -v apt-get >/dev/null 2>&1 || { echo "fetch.sh: $text is missing and apt-get is needed to fetch base-files" >&2; exit 1; }
  (cd "$tmp" && apt-get download base-files >/dev/null && dpkg-deb -x base-files_*.deb unpacked)
  text="$tmp/unpacked/usr/share/common-licenses/GPL-3"
fi
echo "$sum  $text" | sha256sum -c --quiet
"${PYTHON:-python3}" "$here/prepare.py" "$text" 32
