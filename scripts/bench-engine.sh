#!/usr/bin/env bash
# The engine benchmarks of docs/benchmarks.md ("CPU engine"), each side by side in one process run, 2 threads.
# Writes JSON results to artifacts/bench/ (ignored). Random-weight models of real shapes are made with cllm init.
# Usage: scripts/bench-engine.sh [runs]   (run on a quiet machine: nothing else using the cores)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
out=artifacts/bench
mkdir -p "$out" artifacts/models
dotnet build src/Cllm.Cli -c Release > /dev/null
cllm=src/Cllm.Cli/bin/Release/net10.0/cllm
for preset in small qwen2.5-0.5b tinyllama-1.1b; do
  dtype=float32; [ "$preset" = small ] || dtype=bfloat16
  [ -f "artifacts/models/$preset/model.safetensors" ] || $cllm init --preset "$preset" --dtype $dtype --out "artifacts/models/$preset" > /dev/null
done
# The default model's test split (new instances of its training distribution, as the paper evaluates).
prompts=artifacts/bench/test-prompts.jsonl
[ -f "$prompts" ] || { $cllm data --out artifacts/bench/data --train 20000 --held-out 300 --seed 1 > /dev/null
  head -n 100 artifacts/bench/data/test-prompts.jsonl > "$prompts"; }

# 1. Pass cost: a 16-token pass against a 1-token pass.
for preset in small qwen2.5-0.5b tinyllama-1.1b; do
  for dtype in float32 bfloat16; do
    $cllm bench --model artifacts/models/$preset --pass-cost --context 256 --block 16 --dtype $dtype --threads 2 --runs 30 --json \
      > "$out/pass-cost-$preset-$dtype.json"
  done
done
# 2. AR against llama.cpp on the same weights (F32 GGUF for float32, BF16 GGUF for bfloat16).
$cllm bench --model artifacts/models/small --vs-llamacpp --decoders ar,jacobi --threads 2 --runs "$runs" --max-tokens 128 --json \
  > "$out/vs-llamacpp-small-float32.json"
for dtype in float32 bfloat16; do
  $cllm bench --model artifacts/models/qwen2.5-0.5b --vs-llamacpp --decoders ar --dtype $dtype --threads 2 --runs 1 --max-tokens 32 \
    --prompt-count 2 --json > "$out/vs-llamacpp-qwen2.5-0.5b-$dtype.json"
done
# 3. The default model on 100 test-split prompts: every decoder against llama.cpp AR.
for dtype in float32 bfloat16; do
  $cllm bench --model models/cllm-tiny --prompts "$prompts" --vs-llamacpp --decoders ar,jacobi,lookahead --dtype $dtype --threads 2 \
    --runs "$runs" --max-tokens 128 --json > "$out/vs-llamacpp-cllm-tiny-$dtype.json"
done
# 4. Load and first token of a 0.99 GB bfloat16 checkpoint (files in the page cache).
cat artifacts/models/qwen2.5-0.5b/model.safetensors > /dev/null
for i in 1 2 3; do
  /usr/bin/time -f "%e s, peak RSS %M KiB" $cllm generate --model artifacts/models/qwen2.5-0.5b --prompt Hello --max-tokens 1 \
    --decoder ar --dtype bfloat16 --threads 2 > /dev/null 2>> "$out/load-first-token.txt"
done
cat "$out/load-first-token.txt"
