#!/usr/bin/env python3
"""Regenerates the byte-level BPE test fixtures under tests/Cllm.Runtime.Tests/Fixtures/.

Nothing can be downloaded here, so this trains a small but genuine GPT-2/Qwen2-style byte-level BPE
(stdlib only) on license texts that ship with Debian plus a fixed block of lines with digits,
punctuation, accents and emoji, and writes it in the Hugging Face `tokenizers` format:

  Fixtures/bpe/tokenizer.json          vocab = 256 byte symbols + learned merges + 3 added tokens
  Fixtures/bpe/tokenizer_config.json   Qwen2-like: no BOS, eos_token given as an object
  Fixtures/bpe/generation_config.json  eos_token_id as a list, like Qwen2-Instruct
  Fixtures/tiktoken/original/tokenizer.model
                                       the same ranks as a tiktoken file ("base64(bytes) rank"), laid
                                       out like LLaMA-3's original/ folder (no config next to it)

Deterministic: fixed inputs in a fixed order, ties between equally frequent pairs broken by the pair
itself.
"""
import base64
import json
import os
import re
import sys
import unicodedata
from collections import Counter

NUM_MERGES = 600
LICENSES = ["GPL-3", "Apache-2.0", "MPL-2.0"]
EXTRA_LINES = """\
The year 2024 had 366 days; 3.14159 is pi, 2.71828 is e, and 1,000,000 is a million.
Call +1 (555) 010-9999 or write to info@example.org before 09:30 on 2025-01-31.
Prices: $19.99, €20,00, £17.50, ¥2,300 - a 15% discount applies (see §4.2).
Café, naïve, résumé, façade, jalapeño, Zürich, São Paulo, Kraków, smörgåsbord, Straße.
Emoji: 😀 😂 👍 🎉 🚀 ✨ 🔥 ✅ — arrows → ← and “quotes” …
def main(argv):\n    for i in range(10):\n        print(f"{i:02d} -> {i ** 2}")
if (x >= 10 && y != 0) { return x / y; } else { printf("%d\\n", x * 2); }
"""

# The pre-tokenizer regex written into tokenizer.json: Qwen2's, which .NET's Regex runs as is.
QWEN2_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
# Python's `re` has no \p{..}; this approximation is only used to split the training corpus into
# words. Merges learned on slightly different words are still a valid BPE model.
TRAIN_PATTERN = re.compile(
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\w]?[^\W\d_]+|\d| ?(?:[^\s\w]|_)+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
ADDED_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def byte_symbols():
    """GPT-2's reversible byte -> printable character table: printable Latin-1 bytes stand for
    themselves, the other 68 bytes get the characters from U+0100 on, in byte order."""
    keep = set(range(ord("!"), ord("~") + 1)) | set(range(0xA1, 0xAD)) | set(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return table


def corpus_text():
    parts = []
    for name in LICENSES:
        with open(os.path.join("/usr/share/common-licenses", name), encoding="utf-8") as f:
            parts.append(f.read())
    parts.append(EXTRA_LINES)
    return unicodedata.normalize("NFC", "".join(parts))


def learn_merges(text, sym):
    words = Counter(TRAIN_PATTERN.findall(text))
    # Each distinct word as a tuple of byte symbols, with its frequency.
    seqs = {tuple(sym[b] for b in w.encode("utf-8")): n for w, n in words.items()}
    merges = []
    for _ in range(NUM_MERGES):
        pairs = Counter()
        for seq, n in seqs.items():
            for a, b in zip(seq, seq[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        if pairs[best] < 2:
            break
        merges.append(best)
        joined = best[0] + best[1]
        new_seqs = {}
        for seq, n in seqs.items():
            out, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and seq[i] == best[0] and seq[i + 1] == best[1]:
                    out.append(joined)
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            key = tuple(out)
            new_seqs[key] = new_seqs.get(key, 0) + n
        seqs = new_seqs
    return merges


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "Cllm.Runtime.Tests", "Fixtures")
    sym = byte_symbols()
    merges = learn_merges(corpus_text(), sym)

    vocab = {sym[b]: b for b in range(256)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    added = [
        {"id": len(vocab) + i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i, t in enumerate(ADDED_TOKENS)
    ]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": QWEN2_PATTERN}, "behavior": "Isolated", "invert": False},
                byte_level,
            ],
        },
        "post_processor": byte_level,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
            "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab,
            "merges": [[a, b] for a, b in merges],
        },
    }
    ids = {t["content"]: t["id"] for t in added}
    config = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(t["id"]): {k: v for k, v in t.items() if k != "id"} for t in added
        },
        "bos_token": None,
        "eos_token": {"__type": "AddedToken", "content": "<|im_end|>", "lstrip": False, "normalized": False,
                      "rstrip": False, "single_word": False},
        "pad_token": "<|endoftext|>",
        "model_max_length": 2048,
        "tokenizer_class": "Qwen2Tokenizer",
    }
    generation = {"eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]], "pad_token_id": ids["<|endoftext|>"]}

    bpe_dir = os.path.join(root, "bpe")
    os.makedirs(bpe_dir, exist_ok=True)
    for name, obj in [("tokenizer.json", tokenizer), ("tokenizer_config.json", config),
                      ("generation_config.json", generation)]:
        with open(os.path.join(bpe_dir, name), "w", encoding="utf-8", newline="\n") as f:
            json.dump(obj, f, ensure_ascii=False, indent=2)
            f.write("\n")

    # tiktoken: rank = id, bytes = the token's byte symbols mapped back to bytes.
    unsym = {c: b for b, c in sym.items()}
    tik_dir = os.path.join(root, "tiktoken", "original")
    os.makedirs(tik_dir, exist_ok=True)
    with open(os.path.join(tik_dir, "tokenizer.model"), "w", encoding="ascii", newline="\n") as f:
        for token, rank in sorted(vocab.items(), key=lambda kv: kv[1]):
            raw = bytes(unsym[c] for c in token)
            f.write(f"{base64.b64encode(raw).decode('ascii')} {rank}\n")

    print(f"{len(merges)} merges, vocab {len(vocab)} + {len(added)} added tokens -> {root}", file=sys.stderr)


if __name__ == "__main__":
    main()
