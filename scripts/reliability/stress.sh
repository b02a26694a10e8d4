#!/usr/bin/env bash
# 64 concurrent chat streams with random cancellation through one CllmChatClient on the default model.
# Usage: scripts/reliability/stress.sh [seconds=600] [streams=64] [cancel share=0.3]
# Prints requests finished / cancelled, wrong answers (vs. the sequential greedy reference) and RSS growth.
# Runs niced: the machine may be shared.
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-600}"; streams="${2:-64}"; share="${3:-0.3}"
dotnet build scripts/reliability/Stress/Stress.csproj -c Release -v quiet -nologo >/dev/null
exec nice -n 10 dotnet scripts/reliability/Stress/bin/Release/net10.0/Stress.dll models/cllm-tiny "$streams" "$seconds" "$share"
