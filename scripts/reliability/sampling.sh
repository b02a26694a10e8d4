#!/usr/bin/env bash
# Measures how exact seeded sampling is across decoders on the default model (docs/reliability.md).
# Usage: scripts/reliability/sampling.sh [prompts=64] [seeds=3] [max tokens=48]
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet build scripts/reliability/Sampling/Sampling.csproj -c Release -v quiet -nologo >/dev/null
exec nice -n 10 dotnet scripts/reliability/Sampling/bin/Release/net10.0/Sampling.dll models/cllm-tiny "${1:-64}" "${2:-3}" "${3:-48}"
