#!/usr/bin/env python3
"""A compact copy of the MiniLM model folder for a machine without internet access.

Writes DEST/ (default .gpu/minilm-model, which the GPU bundle carries) with model.safetensors
in float16 (about 46 MB instead of 91 MB) and the tokenizer and sentence-transformers configs,
so the model and the `tl` binary fit the 64 MiB a GPU run may carry. Both sides of the GPU
comparison (scripts/minilm-gpu.sh) then read these same weights.

Usage: python3 scripts/minilm_pack.py [DEST]   (after examples/minilm/fetch.sh)
Needs: numpy, safetensors (or torch).
"""
import pathlib
import shutil
import sys

root = pathlib.Path(__file__).resolve().parent.parent
src = root / "examples" / "minilm" / "model"
dest = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / ".gpu" / "minilm-model"

from safetensors.numpy import load_file, save_file  # noqa: E402

tensors = load_file(str(src / "model.safetensors"))
half = {k: (v.astype("float16") if v.dtype.kind == "f" else v) for k, v in tensors.items()}
dest.mkdir(parents=True, exist_ok=True)
save_file(half, str(dest / "model.safetensors"), metadata={"format": "pt"})
for name in ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
             "vocab.txt", "modules.json", "sentence_bert_config.json",
             "config_sentence_transformers.json"]:
    if (src / name).exists():
        shutil.copy(src / name, dest / name)
(dest / "1_Pooling").mkdir(exist_ok=True)
shutil.copy(src / "1_Pooling" / "config.json", dest / "1_Pooling" / "config.json")
size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
print(f"{dest}: {size / 2**20:.1f} MiB")
