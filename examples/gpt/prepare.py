"""Character-level data for examples/gpt/gpt.tl from a text that ships with Debian's base-files
package (/usr/share/common-licenses/GPL-3, the GNU GPL version 3, about 35,000 characters).

Writes examples/gpt/data/train.npy: the text cut into windows of CONTEXT + 1 characters (one
row each, consecutive windows overlapping by one character), each character its index in the
sorted set of the text's characters, and data/vocab.txt, those characters one per line (a
newline written as \\n). Usage: python3 examples/gpt/prepare.py [TEXT] [CONTEXT]
"""

import os
import sys

import numpy as np

text_path = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/common-licenses/GPL-3"
context = int(sys.argv[2]) if len(sys.argv) > 2 else 32
with open(text_path, encoding="utf-8") as f:
    text = f.read()
chars = sorted(set(text))
index = {c: i for i, c in enumerate(chars)}
ids = np.array([index[c] for c in text], dtype=np.float32)
rows = (len(ids) - 1) // context
windows = np.stack([ids[k * context : k * context + context + 1] for k in range(rows)])
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
os.makedirs(out, exist_ok=True)
np.save(os.path.join(out, "train.npy"), windows)
with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as f:
    for c in chars:
        f.write(c.replace("\n", "\\n") + "\n")
print(f"{len(text)} characters, {len(chars)} distinct, {rows} windows of {context + 1}")
