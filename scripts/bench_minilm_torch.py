#!/usr/bin/env python3
"""PyTorch side of the MiniLM throughput comparison (scripts/minilm-gpu.sh).

Encodes SENTENCES (one per line) with sentence-transformers' all-MiniLM-L6-v2 from MODEL_DIR:
the whole encoder (BERT, mean pooling, L2 normalisation) on token ids padded and truncated to
LENGTH tokens, in bfloat16 on the GPU, batch = every sentence. Times the forward pass only
(tokenisation is done once beforehand, as TL's is done at load time), eager and with
torch.compile, as the median of RUNS timed runs after WARMUP untimed ones, with the device
synchronised around each run. Prints one JSON object per mode.

Usage: python3 scripts/bench_minilm_torch.py MODEL_DIR SENTENCES [LENGTH] [WARMUP] [RUNS]
"""
import json
import statistics
import sys
import time

import torch
from sentence_transformers import SentenceTransformer

model_dir, sentences_path = sys.argv[1], sys.argv[2]
length = int(sys.argv[3]) if len(sys.argv) > 3 else 128
warmup = int(sys.argv[4]) if len(sys.argv) > 4 else 10
runs = int(sys.argv[5]) if len(sys.argv) > 5 else 50

sentences = [l for l in open(sentences_path, encoding="utf-8").read().splitlines() if l.strip()]
device = "cuda"
dtype = torch.bfloat16
model = SentenceTransformer(model_dir, device=device)
model = model.to(dtype).eval()
# Same input as TL's `length 128`: every sentence exactly `length` tokens.
features = model.tokenizer(sentences, padding="max_length", truncation=True, max_length=length,
                           return_tensors="pt")
features = {k: v.to(device) for k, v in features.items()}


def forward(module):
    with torch.inference_mode():
        return module(dict(features))["sentence_embedding"]


def timed(module, label):
    for _ in range(warmup):
        forward(module)
    torch.cuda.synchronize()
    times = []
    for _ in range(runs):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        forward(module)
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    ms = statistics.median(times)
    print(json.dumps({"system": label, "dtype": "bf16", "batch": len(sentences),
                      "tokens": length, "median_ms": ms, "runs": runs, "warmup": warmup,
                      "sentences_per_s": len(sentences) / ms * 1e3,
                      "attention": getattr(model[0].auto_model.config, "_attn_implementation",
                                           "?"),
                      "torch": torch.__version__, "gpu": torch.cuda.get_device_name()}),
          flush=True)


timed(model, "pytorch eager")
compiled = torch.compile(model)
timed(compiled, "torch.compile")
