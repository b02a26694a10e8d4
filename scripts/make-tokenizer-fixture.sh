#!/usr/bin/env bash
# Regenerates src/Cllm.Runtime/Text/Assets/cllm-sp4k.model: a 4096-piece SentencePiece BPE model with
# byte fallback, trained with Debian 12's spm_train (sentencepiece 0.1.97) on English text that ships
# with every Debian install (license texts and a few core man pages) plus a fixed block of lines with
# digits, punctuation, accents, emoji and code.
#
# The flags are the LLaMA-like set from the platform notes (Microsoft.ML.Tokenizers 2.0.1): spm_train's
# default nmt_nfkc normalization is rejected by Microsoft.ML.Tokenizers' LlamaTokenizer, identity is
# accepted, and with these flags its ids equal spm_encode's.
# Reproducibility: fixed file list in a fixed order, no shuffling, one thread, a fixed seed, and
# relative input/output names (spm_train stores them inside the model's trainer_spec).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$repo_root/src/Cllm.Runtime/Text/Assets/cllm-sp4k.model"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export LC_ALL=C.UTF-8

licenses=(Apache-2.0 Artistic BSD CC0-1.0 GFDL-1.3 GPL-2 GPL-3 LGPL-2.1 LGPL-3 MPL-1.1 MPL-2.0)
manpages=(bash cp date diff find grep gzip ls sed sort tar)

{
  for f in "${licenses[@]}"; do
    cat "/usr/share/common-licenses/$f"
  done
  # Man pages: drop troff requests and comments, unescape the common font/dash escapes.
  for m in "${manpages[@]}"; do
    zcat "/usr/share/man/man1/$m.1.gz" \
      | sed -E -e '/^[.'"'"']/d' \
               -e 's/\\f(\[[^]]*\]|\(..|.)//g' \
               -e 's/\\[-]/-/g; s/\\&//g; s/\\\(em/--/g; s/\\\(dq/"/g; s/\\\(aq/'"'"'/g; s/\\e/\\/g; s/\\[,\/|^]//g' \
               -e 's/\\\([a-z][a-z]//g'
  done
  # Lines that make sure digits, punctuation, accented letters and a few emoji have pieces; other
  # characters (CJK, most emoji) are left to byte fallback on purpose.
  cat <<'LINES'
The year 2024 had 366 days; 3.14159 is pi, 2.71828 is e, and 1,000,000 is a million.
Call +1 (555) 010-9999 or write to info@example.org before 09:30 on 2025-01-31.
Prices: $19.99, €20,00, £17.50, ¥2,300 - a 15% discount applies (see §4.2).
Café, naïve, résumé, façade, jalapeño, Zürich, São Paulo, Kraków, Ærøskøbing, smörgåsbord.
Élève, garçon, crème brûlée, déjà vu, piñata, über, Straße, Ångström, Dvořák, Łódź.
Emoji: 😀 😂 👍 🎉 ❤️ 🚀 ✨ 🔥 ✅ — and arrows → ← ↑ ↓ plus “quotes” and ‘single quotes’ …
if (x >= 10 && y != 0) { return x / y; } else { printf("%d\n", x * 2); }
for i in range(10): print(f"{i:02d} -> {i ** 2}")
<html><body class="main">Hello, world!</body></html> [1] {2} (3) <4> #5 @6 ^7 ~8 `9` |0|
LINES
} > "$work/corpus.txt"

(
  cd "$work"
  spm_train \
    --input=corpus.txt --model_prefix=cllm-sp4k --vocab_size=4096 \
    --model_type=bpe --byte_fallback=true --character_coverage=1.0 \
    --normalization_rule_name=identity --split_digits=true \
    --allow_whitespace_only_pieces=true --remove_extra_whitespaces=false \
    --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
    --input_sentence_size=1000000 --shuffle_input_sentence=false \
    --random_seed=20240601 --num_threads=1 --minloglevel=1
)

mkdir -p "$(dirname "$out")"
cp "$work/cllm-sp4k.model" "$out"
echo "wrote $out ($(stat -c %s "$out") bytes, sha256 $(sha256sum "$out" | cut -c1-16))"
