#!/usr/bin/env bash
# Reproduces models/cllm-tiny-base (the AR-pretrained base) and models/cllm-tiny (the CLLM made from it).
# Every step is seeded; work files go to artifacts/ (ignored). Needs Debian's `sentencepiece` package for
# spm_train (a data-making step only: the engine reads the resulting tokenizer.model with Microsoft.ML.Tokenizers).
#
# RECIPE=v1 (default) is the recipe of the committed models. RECIPE=v2 is the paper's way, on the richer corpus
# (issue 12): rich wording, bf16 mixed-precision base training, trajectories of the whole training set and one epoch of
# consistency training (every trajectory block once). v2 has not been run yet: on this 2-core machine it is projected at
# about 3 hours unshared (the model card has the projection); its AR weight is the v1 value, not yet tuned.
set -euo pipefail
cd "$(dirname "$0")/.."
recipe=${RECIPE:-v1}
case "$recipe" in v1|v2) ;; *) echo "RECIPE must be v1 or v2, not '$recipe'" >&2; exit 2 ;; esac
work=artifacts/default-model
[ "$recipe" = v2 ] && work=artifacts/default-model-v2
mkdir -p "$work"
dotnet build src/Cllm.Cli -c Release
cllm=src/Cllm.Cli/bin/Release/net10.0/cllm

# 1. The synthetic corpus: sql, tool-calling and math conversations, and the evaluation splits (test: new instances of
#    the training distribution; heldout-values; heldout-phrasings; heldout: the mixed set of the first model).
language=basic; [ "$recipe" = v2 ] && language=rich
$cllm data --out "$work/data" --train 20000 --held-out 300 --seed 1 --language $language

# 2. A SentencePiece BPE tokenizer with byte fallback trained on the corpus; chat markers are single pieces.
mkdir -p "$work/tokenizer"
spm_train --input="$work/data/tokenizer.txt" --model_prefix="$work/tokenizer/spm" --vocab_size=1024 --model_type=bpe \
  --byte_fallback=true --character_coverage=1.0 --normalization_rule_name=identity --split_digits=true \
  --allow_whitespace_only_pieces=true --remove_extra_whitespaces=false --unk_id=0 --bos_id=1 --eos_id=2 --pad_id=-1 \
  --user_defined_symbols='<|system|>,<|user|>,<|assistant|>,<|tool|>,<|end|>,<tool_call>,</tool_call>' \
  --num_threads=2 --shuffle_input_sentence=false > "$work/tokenizer/spm_train.log" 2>&1
cp "$work/tokenizer/spm.model" "$work/tokenizer/tokenizer.model"
cat > "$work/tokenizer/tokenizer_config.json" <<'JSON'
{
  "tokenizer_class": "LlamaTokenizer",
  "bos_token": "<s>",
  "eos_token": "<|end|>",
  "unk_token": "<unk>",
  "add_bos_token": true,
  "add_eos_token": false,
  "legacy": false,
  "chat_format": "cllm",
  "added_tokens_decoder": {
    "3": { "content": "<|system|>", "special": true },
    "4": { "content": "<|user|>", "special": true },
    "5": { "content": "<|assistant|>", "special": true },
    "6": { "content": "<|tool|>", "special": true },
    "7": { "content": "<|end|>", "special": true },
    "8": { "content": "<tool_call>", "special": false },
    "9": { "content": "</tool_call>", "special": false }
  }
}
JSON

# 3. Pre-train the base model from scratch (AR objective).
if [ "$recipe" = v1 ]; then
  $cllm train --objective ar --data "$work/data/train.jsonl" --tokenizer "$work/tokenizer" --preset cllm-tiny \
    --out models/cllm-tiny-base --steps 3000 --batch 16 --lr 2e-3 --warmup 0.03 --weight-decay 0.1 --seed 1 \
    --metrics "$work/base-metrics.jsonl"
else
  # More steps for the richer wording; bf16 compute with f32 master weights (1.6x the f32 tokens per CPU second here,
  # the same loss curve over 150 steps: the model card). MIXED=0 trains in float32.
  compute=(--compute bfloat16); [ "${MIXED:-1}" = 0 ] && compute=()
  $cllm train --objective ar --data "$work/data/train.jsonl" --tokenizer "$work/tokenizer" --preset cllm-tiny \
    --out models/cllm-tiny-base --steps 5000 --batch 16 --lr 2e-3 --warmup 0.03 --weight-decay 0.1 --seed 1 \
    --metrics "$work/base-metrics.jsonl" "${compute[@]}"
fi

# 4. Jacobi trajectories of the base model, block after block, n = 16, augmented: v1 on the first 12,000 training
#    examples (both turns of tool round trips), v2 on all of them.
limit=(--limit 12000); [ "$recipe" = v2 ] && limit=()
$cllm collect --model models/cllm-tiny-base --prompts "$work/data/train.jsonl" "${limit[@]}" --block 16 \
  --max-tokens 128 --augment --seed 1 --out "$work/trajectories.jsonl"

# 5. Consistency training (global loss + AR loss on the teacher's output) from the base model: v1 4,000 steps of 8
#    states (each block about 1.5 times), v2 one epoch (one state of every block, as many steps as blocks / 8).
steps=4000; [ "$recipe" = v2 ] && steps=$(( $(grep -c . "$work/trajectories.jsonl") / 8 ))
$cllm train --objective consistency --from models/cllm-tiny-base --trajectories "$work/trajectories.jsonl" \
  --out models/cllm-tiny --loss global --ar-weight 10 --steps $steps --batch 8 --lr 5e-4 --warmup 0.03 --weight-decay 0 \
  --seed 1 --threads 1 --metrics "$work/cllm-metrics.jsonl"

# 6. Evaluate both on the test, held-out-values and held-out-phrasings splits (decoders interleaved in one run each).
for model in cllm-tiny-base cllm-tiny; do
  $cllm eval --model models/$model --data "$work/data" --decoders ar,jacobi,lookahead --block 16 --json \
    > "$work/eval-$model.json"
done
