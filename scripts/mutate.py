#!/usr/bin/env python3
"""Mutation testing by hand-made mutants: does the test suite notice a small, realistic bug?

Each mutant is one exact snippet of a source file and the buggy text that replaces it. For each, in a
temporary copy of the repository (the current working tree, built once), the script applies the mutant,
builds the test project(s) it names, runs their tests with a filter, and restores the file. A mutant is
"caught" when some test fails (or the run times out), "missed" when every selected test passes. Mutants whose
snippet is no longer in the file (the code changed) are "stale" and mutants that do not compile are
"invalid": neither counts towards the score. The report goes to docs/mutation-report.md after every mutant,
so an interrupted run still leaves its results.

Not part of CI (each mutant costs a build, about a minute). On a shared machine run it niced, e.g.
    nice -n 19 python3 scripts/mutate.py                 # all mutants
    nice -n 19 python3 scripts/mutate.py --only sampler-temperature-twice,objective-mask-from-zero
    python3 scripts/mutate.py --list                     # the mutants, no build
Options: --limit N (first N selected), --areas decoding,model,... , --timeout S (per test run, default 600),
--keep (leave the temporary copy), --copy DIR (reuse a kept copy), --merge (keep earlier results of
mutants not run now), --report PATH.
"""
import argparse
import datetime
import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

RUNTIME = "tests/Cllm.Runtime.Tests/Cllm.Runtime.Tests.csproj"
CLIENT = "tests/Cllm.Extensions.AI.Tests/Cllm.Extensions.AI.Tests.csproj"
ORACLE = "tests/Cllm.Oracle.Tests/Cllm.Oracle.Tests.csproj"

# Test selections, cheapest first: a mutant stops at the first selection that fails.
DECODING = [(RUNTIME, "(FullyQualifiedName~Cllm.Tests.Decoding|FullyQualifiedName~Cllm.Tests.EngineTests)"
                      "&FullyQualifiedName!~FirstTokensFollowTheExactDistribution")]
SAMPLER = [(RUNTIME, "FullyQualifiedName~Cllm.Tests.Decoding.SamplerTests")] + DECODING
MODEL = [(RUNTIME, "FullyQualifiedName~Cllm.Tests.Model|FullyQualifiedName~Cllm.Tests.Decoding.LosslessTests"),
         (ORACLE, "FullyQualifiedName~LogitAgreementTests|FullyQualifiedName~GreedyAgreementTests")]
CHECKPOINTS = [(RUNTIME, "FullyQualifiedName~Cllm.Tests.Checkpoints"),
               (ORACLE, "FullyQualifiedName~ExportTests|FullyQualifiedName~LogitAgreementTests")]
# (The Runtime project's Text/ChatFormatTests live in the Cllm.Tests.Training.Data namespace.)
TEXT = [(RUNTIME, "FullyQualifiedName~Cllm.Tests.Text|FullyQualifiedName~ChatFormatTests"),
        (CLIENT, "FullyQualifiedName~StopSequenceTests|FullyQualifiedName~ChatFormatTests")]
CHAT = [(CLIENT, "FullyQualifiedName~StopSequenceTests|FullyQualifiedName~ChatClientTests"
                 "|FullyQualifiedName~ToolCallingTests|FullyQualifiedName~ChatFormatTests")]
TRAINING = [(RUNTIME, "FullyQualifiedName~Cllm.Tests.Training.ObjectiveTests"),
            (RUNTIME, "FullyQualifiedName~Cllm.Tests.Training.TrainingTests")]

S = "src/Cllm.Runtime/Decoding/Sampler.cs"
J = "src/Cllm.Runtime/Decoding/JacobiDecoder.cs"
DV = "src/Cllm.Runtime/Decoding/DraftVerifier.cs"
DEC = "src/Cllm.Runtime/Decoding/Decoder.cs"
NP = "src/Cllm.Runtime/Decoding/NgramPool.cs"
T = "src/Cllm.Runtime/Model/Transformer.cs"
R = "src/Cllm.Runtime/Model/RotaryEmbedding.cs"
KV = "src/Cllm.Runtime/Model/KvCache.cs"
GE = "src/Cllm.Runtime/Checkpoints/GgufExport.cs"
GW = "src/Cllm.Runtime/Checkpoints/GgufWriter.cs"
ST = "src/Cllm.Runtime/Checkpoints/SafeTensors.cs"
STD = "src/Cllm.Runtime/Checkpoints/SafeTensorsDType.cs"
HF = "src/Cllm.Runtime/Checkpoints/HfCheckpoint.cs"
MF = "src/Cllm.Runtime/Checkpoints/ModelFiles.cs"
SD = "src/Cllm.Runtime/Text/StreamingDetokenizer.cs"
CF = "src/Cllm.Runtime/Text/CllmChatFormat.cs"
CC = "src/Cllm.Extensions.AI/CllmChatClient.cs"
OB = "src/Cllm.Training/Objectives.cs"
LO = "src/Cllm.Training/Losses.cs"

# (id, area, file, original snippet, mutated snippet, test selections)
MUTANTS = [
    # ---- Decoding ----
    ("sampler-temperature-twice", "decoding", S,
     "var scores = logits / options.Temperature;",
     "var scores = logits / options.Temperature / options.Temperature;", SAMPLER),
    ("sampler-top-p-drops-crossing-token", "decoding", S,
     "var before = sorted.cumsum(-1) - sorted;",
     "var before = sorted.cumsum(-1);", SAMPLER),
    ("sampler-top-k-keeps-one-more", "decoding", S,
     "var kth = scores.topk(options.TopK).values.narrow(-1, options.TopK - 1, 1);",
     "var kth = scores.topk(options.TopK + 1).values.narrow(-1, options.TopK, 1);", SAMPLER),
    ("sampler-same-uniform-for-every-token", "decoding", S,
     "indices.Select(i => Uniform(_seed, i))",
     "indices.Select(i => Uniform(_seed, 0))", SAMPLER),
    ("sampler-searchsorted-left", "decoding", S,
     "searchsorted(cdf, target, right: true)",
     "searchsorted(cdf, target, right: false)", SAMPLER),
    ("verifier-draft-token-blind-to-itself", "decoding", DV,
     "for (var k = 0; k <= j; k++) visible[r * t + _base[d] + k] = true;",
     "for (var k = 0; k < j; k++) visible[r * t + _base[d] + k] = true;", DECODING),
    ("verifier-draft-blind-to-root", "decoding", DV,
     "visible[r * t] = true;",
     "visible[r * t] = false;", DECODING),
    ("jacobi-cache-keeps-rejected-guesses", "decoding", J,
     "cache.Truncate(start + 1 + k);",
     "cache.Truncate(Math.Min(cache.Length, start + 1 + m));", DECODING),
    ("lookahead-no-cache-move", "decoding", J,
     "if (winner > 0) cache.Move(start + verifier.Row(winner, 0), start + 1, k);",
     "if (winner > 0 && k < 0) cache.Move(start + verifier.Row(winner, 0), start + 1, k);", DECODING),
    ("jacobi-next-guesses-shifted", "decoding", J,
     "for (var i = k + 1; i < m; i++)",
     "for (var i = k + 2; i < m; i++)", DECODING),
    ("jacobi-fast-forward-count-ignores-cut", "decoding", J,
     "run.Stats.FastForwardedTokens += kept;",
     "run.Stats.FastForwardedTokens += k;", DECODING),
    ("run-stop-token-not-emitted", "decoding", DEC,
     "take = i + 1;",
     "take = i;", DECODING),
    ("run-ignores-max-new-tokens", "decoding", DEC,
     "var take = Math.Min(tokens.Length, Remaining);",
     "var take = tokens.Length;", DECODING),
    ("ngram-pool-evicts-newest", "decoding", NP,
     "if (list.Count > PerKey) list.RemoveAt(list.Count - 1);",
     "if (list.Count > PerKey) list.RemoveAt(0);", DECODING),
    ("ngram-pool-misses-last-ngram", "decoding", NP,
     "for (var i = Math.Max(0, from); i + N <= tokens.Count; i++) Add(Slice(tokens, i));",
     "for (var i = Math.Max(0, from); i + N < tokens.Count; i++) Add(Slice(tokens, i));", DECODING),
    ("prompt-lookup-compares-last-token-only", "decoding", J,
     "match = context[i - j] == context[last - j];",
     "match = context[i - j] == context[last];", DECODING),
    # ---- Model ----
    ("rmsnorm-weight-dropped", "model", T,
     "return weight * (x.dtype == float32 ? normed : normed.to(x.dtype));",
     "return x.dtype == float32 ? normed : normed.to(x.dtype);", MODEL),
    ("rmsnorm-eps-dropped", "model", T,
     "rsqrt(input.pow(2).mean([-1L], keepdim: true) + _eps)",
     "rsqrt(input.pow(2).mean([-1L], keepdim: true))", MODEL),
    ("rmsnorm-sum-not-mean", "model", T,
     "rsqrt(input.pow(2).mean([-1L], keepdim: true) + _eps)",
     "rsqrt(input.pow(2).sum([-1L], keepdim: true) + _eps)", MODEL),
    ("rope-rotation-sign", "model", R,
     "cat([x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)], -1)",
     "cat([x.narrow(-1, half, half), x.narrow(-1, 0, half).neg()], -1)", MODEL),
    ("rope-frequency-exponent", "model", R,
     "inv[j] = 1.0 / Math.Pow(theta, 2.0 * j / d);",
     "inv[j] = 1.0 / Math.Pow(theta, 1.0 * j / d);", MODEL),
    ("rope-linear-scaling-multiplies", "model", R,
     "for (var j = 0; j < inv.Length; j++) inv[j] /= scaling.Factor;",
     "for (var j = 0; j < inv.Length; j++) inv[j] *= scaling.Factor;", MODEL),
    ("rope-llama3-band-inverted", "model", R,
     "if (wavelength > lowWavelength) inv[j] /= scaling.Factor;",
     "if (wavelength < lowWavelength) inv[j] /= scaling.Factor;", MODEL),
    ("rope-dynamic-integer-exponent", "model", R,
     "d / (d - 2.0)",
     "d / (d - 2)", MODEL),
    ("swiglu-gate-and-up-swapped", "model", T,
     "F.silu(gateUp.narrow(-1, 0, _intermediate)) * gateUp.narrow(-1, _intermediate, _intermediate)",
     "F.silu(gateUp.narrow(-1, _intermediate, _intermediate)) * gateUp.narrow(-1, 0, _intermediate)", MODEL),
    ("residual-skips-attention", "model", T,
     "return h + feed_forward.Forward(ffn_norm.forward(h));",
     "return x + feed_forward.Forward(ffn_norm.forward(h));", MODEL),
    ("gqa-mask-not-repeated", "model", T,
     "mask = mask?.repeat(group, 1);",
     "mask = mask?.repeat_interleave(group, 0);", MODEL),
    ("kv-move-keys-only", "model", KV,
     "foreach (var tensors in new[] { _keys, _values })",
     "foreach (var tensors in new[] { _keys })", DECODING),
    # ---- Checkpoints ----
    ("gguf-permute-inverted", "checkpoints", GE,
     'var permute = arch == "llama";',
     'var permute = arch != "llama";', CHECKPOINTS),
    ("gguf-k-permuted-with-query-heads", "checkpoints", GE,
     "Bytes(Rows(q, kv, c.NumKvHeads)(wqkv), big)",
     "Bytes(Rows(q, kv, c.NumHeads)(wqkv), big)", CHECKPOINTS),
    ("gguf-gate-is-up", "checkpoints", GE,
     "Bytes(w13.narrow(0, 0, ff), big)",
     "Bytes(w13.narrow(0, ff, ff), big)", CHECKPOINTS),
    ("gguf-no-alignment", "checkpoints", GW,
     "static long Align(long n) => (n + Alignment - 1) / Alignment * Alignment;",
     "static long Align(long n) => n;", CHECKPOINTS),
    ("safetensors-header-unaligned", "checkpoints", ST,
     "var padded = (buffer.Length + HeaderAlignment - 1) / HeaderAlignment * HeaderAlignment;",
     "var padded = buffer.Length;", CHECKPOINTS),
    ("safetensors-accepts-long-spans", "checkpoints", ST,
     "if (bytes != end - begin)",
     "if (bytes > end - begin)", CHECKPOINTS),
    ("safetensors-bf16-size", "checkpoints", STD,
     'new("BF16", 2, ScalarType.BFloat16)',
     'new("BF16", 4, ScalarType.BFloat16)', CHECKPOINTS),
    ("shards-split-at-equal", "checkpoints", HF,
     "if (currentBytes + bytes > maxShardBytes)",
     "if (currentBytes + bytes >= maxShardBytes)", CHECKPOINTS),
    ("checkpoint-norms-swapped-on-load", "checkpoints", MF,
     'ours[o + "attention_norm.weight"] = Take(h + "input_layernorm.weight", [d]);\n'
     '            ours[o + "ffn_norm.weight"] = Take(h + "post_attention_layernorm.weight", [d]);',
     'ours[o + "ffn_norm.weight"] = Take(h + "input_layernorm.weight", [d]);\n'
     '            ours[o + "attention_norm.weight"] = Take(h + "post_attention_layernorm.weight", [d]);', CHECKPOINTS),
    ("stale-index-kept", "checkpoints", HF,
     "            File.Delete(index);\n",
     "", CHECKPOINTS),
    # ---- Text ----
    ("detokenizer-shows-partial-utf8", "text", SD,
     "bool holding = text.Length > 0 && text[^1] == '\\uFFFD';",
     "bool holding = false;", TEXT),
    ("detokenizer-flush-drops-rest", "text", SD,
     'string rest = text.Length > _emitted ? text[_emitted..] : "";',
     'string rest = "";', TEXT),
    ("tool-call-trailing-garbage-accepted", "text", CF,
     "if (rest.Length > 0 && !rest.StartsWith(ToolCallEnd, StringComparison.Ordinal) && rest != End) return null;",
     "if (rest.Length > 0 && rest.Length < 0) return null;", TEXT + CHAT),
    # ---- Chat client output parsing ----
    ("stop-hold-back-one-too-few", "client", CC,
     "for (int n = Math.Min(marker.Length - 1, text.Length); n > hold; n--)",
     "for (int n = Math.Min(marker.Length - 2, text.Length); n > hold; n--)", CHAT),
    ("stop-no-final-flush", "client", CC,
     "int hold = final ? 0 : HeldBack(pending);",
     "int hold = HeldBack(pending);", CHAT),
    ("stop-first-marker-not-earliest", "client", CC,
     "if (at >= 0 && at < best.At) best = (at, marker);",
     "if (at >= 0) best = (at, marker);", CHAT),
    ("stop-token-text-shown", "client", CC,
     "int[] kept = tokens.Any(_stopIds.Contains) ? [.. tokens.Where(t => !_stopIds.Contains(t))] : tokens;",
     "int[] kept = tokens;", CHAT),
    ("json-scanner-ignores-strings", "client", CC,
     "else if (c == '\"') _inString = true;",
     "else if (c == '\"') _inString = false;", CHAT),
    ("tool-name-suffix-without-dot", "client", CC,
     "n[^(name.Length + 1)] is '_' or '-' or '.'",
     "n[^(name.Length + 1)] is '_' or '-'", CHAT),
    # ---- Training objectives ----
    ("objective-mask-from-zero", "training", OB,
     "for (var i = firstWrong + 1; i < n; i++) mask[b * n + i] = true;",
     "for (var i = 0; i < n; i++) mask[b * n + i] = true;", TRAINING),
    ("objective-mask-from-first-wrong", "training", OB,
     "for (var i = firstWrong + 1; i < n; i++) mask[b * n + i] = true;",
     "for (var i = firstWrong; i < n; i++) mask[b * n + i] = true;", TRAINING),
    ("objective-ar-weight-ignored", "training", OB,
     "loss = consistency + arWeight * ar;",
     "loss = consistency + ar;", TRAINING),
    ("objective-no-label-smoothing", "training", OB,
     "var ar = Losses.Autoregressive(arLogits, labels, labelSmoothing);",
     "var ar = Losses.Autoregressive(arLogits, labels);", TRAINING),
    ("objective-local-targets-fixed-point", "training", OB,
     "Goal: kind == ConsistencyKind.Global ? t.FixedPoint : t.States[j + 1]",
     "Goal: t.FixedPoint", TRAINING),
    ("objective-ar-on-student-logits", "training", OB,
     "? goalLogits",
     "? studentLogits", TRAINING),
    ("objective-pretraining-padding-counted", "training", OB,
     "Array.Fill(labels, Losses.Ignore);",
     "Array.Fill(labels, 0L);", TRAINING),
    ("loss-kl-reversed", "training", LO,
     "var perPosition = (targetLog.exp() * (targetLog - studentLogits.to(float32).log_softmax(-1))).sum(-1);",
     "var studentLog = studentLogits.to(float32).log_softmax(-1);\n"
     "        var perPosition = (studentLog.exp() * (studentLog - targetLog)).sum(-1);", TRAINING),
    ("loss-consistency-sum-not-mean", "training", LO,
     "return (perPosition * weights).sum() / weights.sum().clamp_min(1);",
     "return (perPosition * weights).sum();", TRAINING),
    ("loss-target-not-detached", "training", LO,
     "var targetLog = targetLogits.detach().to(float32).log_softmax(-1);",
     "var targetLog = targetLogits.to(float32).log_softmax(-1);", TRAINING),
]


def run(cmd, cwd, timeout=None):
    start = time.time()
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr, time.time() - start, False
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return 124, out, time.time() - start, True


def build(copy, project, restore=False):
    # Mutants only touch source files: after the baseline build, restoring again is wasted time.
    return run(["dotnet", "build", project, "-nologo", "-v", "q", "-p:TreatWarningsAsErrors=false"]
               + ([] if restore else ["--no-restore"]), copy)


def build_with_retry(copy, project):
    """A build that fails for a reason outside the mutant (another build holding a lock on a shared machine) is
    retried once after a pause; the first error line is kept for the report."""
    rc, out, _, _ = build(copy, project)
    if rc != 0:
        time.sleep(20)
        rc, out, _, _ = build(copy, project)
    errors = re.findall(r"error [A-Z]+\d+: [^\[]*", out)
    return rc, (errors[0].strip() if errors else out.strip().splitlines()[-1:] or [""])[0] if rc != 0 else ""


def previous_results(path):
    """The rows of an earlier report (for --merge): id -> entry."""
    rows = {}
    if not os.path.exists(path):
        return rows
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0] in {m[0] for m in MUTANTS}:
            file = next(m[2] for m in MUTANTS if m[0] == cells[0])
            rows[cells[0]] = {"id": cells[0], "area": cells[1], "file": file, "result": cells[3],
                              "runs": int(cells[4] or 0), "failing": [f for f in cells[5].split(", ") if f],
                              "seconds": float(cells[6] or 0)}
    return rows


def failing_tests(output):
    # "  Failed Namespace.Class.Method(arg: value, ...) [12 ms]": the method names, without arguments.
    names = []
    for full in re.findall(r"^\s+Failed (\S.*?) \[[^\]]+\]\s*$", output, re.M):
        name = full.split("(")[0].split(".")[-1]
        if name not in names:
            names.append(name)
    return names[:2]


def copy_tree(repo, dest):
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for f in files:
        if not f or not os.path.isfile(os.path.join(repo, f)):
            continue
        source, target = os.path.join(repo, f), os.path.join(dest, f)
        # Only changed files, with a fresh time stamp: a reused copy's incremental build must see them.
        if os.path.exists(target) and filecmp.cmp(source, target, shallow=False):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy(source, target)


def write_report(path, results, selected, started, commit, note):
    counted = [r for r in results if r["result"] in ("caught", "missed", "timeout")]
    caught = [r for r in counted if r["result"] in ("caught", "timeout")]
    lines = [
        "# Mutation report",
        "",
        f"Made by `scripts/mutate.py` at commit {commit}, started {started} UTC. {note}".rstrip(),
        "",
        f"**Score: {len(caught)} of {len(counted)} mutants caught**; {len(results)} of {len(selected)} selected mutants ran "
        f"({len(MUTANTS)} in the list). Stale (snippet not found) and invalid (does not compile) mutants are not counted.",
        "",
        "| mutant | area | file | result | tests run | first failing tests | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(f"| {r['id']} | {r['area']} | {r['file'].split('/')[-1]} | {r['result']} | {r['runs']} | "
                     f"{', '.join(n.split('.')[-1][:70] for n in r['failing'])} | {r['seconds']:.0f} |")
    missed = [r for r in results if r["result"] == "missed"]
    if missed:
        lines += ["", "## Missed", ""]
        for r in missed:
            m = next(x for x in MUTANTS if x[0] == r["id"])
            lines.append(f"- **{r['id']}** ({m[2]}): `{m[3].strip()}` -> `{m[4].strip() or '(deleted)'}`")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated mutant ids")
    ap.add_argument("--areas", help="comma-separated areas: decoding, model, checkpoints, text, client, training")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--copy", help="reuse (and keep) this copy from an earlier --keep run: its builds are warm; "
                                   "its source files are refreshed from the working tree first")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--report", default="docs/mutation-report.md")
    ap.add_argument("--note", default="")
    ap.add_argument("--merge", action="store_true",
                    help="keep the results of mutants not run now from the existing report (e.g. after --only)")
    args = ap.parse_args()

    repo = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=True).stdout.strip()
    selected = MUTANTS
    if args.only:
        ids = set(args.only.split(","))
        unknown = ids - {m[0] for m in MUTANTS}
        if unknown:
            sys.exit(f"unknown mutant ids: {', '.join(sorted(unknown))} (see --list)")
        selected = [m for m in MUTANTS if m[0] in ids]
    if args.areas:
        areas = set(args.areas.split(","))
        selected = [m for m in selected if m[1] in areas]
    # Round-robin over the areas, so that a run cut short (--limit, or stopped) still covers every area.
    by_area = {}
    for m in selected:
        by_area.setdefault(m[1], []).append(m)
    queues = list(by_area.values())
    selected = [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]
    if args.limit:
        selected = selected[:args.limit]
    if args.list:
        for m in selected:
            with open(os.path.join(repo, m[2])) as f:
                found = f.read().count(m[3])
            print(f"{m[0]:45} {m[1]:12} {m[2]}{'' if found == 1 else f'  STALE: snippet found {found} times'}")
        print(f"{len(selected)} mutants")
        return

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout.strip()
    if dirty:
        commit += " (with uncommitted changes)"
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    copy = args.copy or tempfile.mkdtemp(prefix="cllm-mutate-")
    if args.copy:
        args.keep = True
    print(f"copying the working tree to {copy}", flush=True)
    copy_tree(repo, copy)
    report = os.path.join(repo, args.report)
    earlier = previous_results(report) if args.merge else {}
    results = []

    def save():
        rerun = {r["id"] for r in results}
        merged = [earlier[m[0]] for m in MUTANTS if m[0] in earlier and m[0] not in rerun] + results
        merged.sort(key=lambda r: [m[0] for m in MUTANTS].index(r["id"]))
        total = selected if not earlier else [m for m in MUTANTS if m[0] in rerun or m[0] in earlier]
        write_report(report, merged, total, started, commit, args.note)

    try:
        for project in sorted({p for m in selected for p, _ in m[5]}):
            rc, out, secs, _ = build(copy, project, restore=True)
            print(f"baseline build of {project}: rc {rc} ({secs:.0f} s)", flush=True)
            if rc != 0:
                sys.exit("the unmutated copy does not build:\n" + out[-3000:])
        for i, (mid, area, file, original, mutated, selections) in enumerate(selected):
            path = os.path.join(copy, file)
            with open(path) as f:
                source = f.read()
            entry = {"id": mid, "area": area, "file": file, "failing": [], "runs": 0, "seconds": 0.0}
            start = time.time()
            if source.count(original) != 1:
                entry["result"] = "stale"
            else:
                with open(path, "w") as f:
                    f.write(source.replace(original, mutated))
                try:
                    entry["result"] = "missed"
                    for project, test_filter in selections:
                        rc, error = build_with_retry(copy, project)
                        if rc != 0:
                            entry["result"] = "invalid"
                            entry["failing"] = ["build: " + error.replace("|", "/")[:100]]
                            break
                        entry["runs"] += 1
                        rc, out, _, timed_out = run(["dotnet", "test", project, "--no-build", "--filter", test_filter],
                                                    copy, timeout=args.timeout)
                        if timed_out:
                            entry["result"] = "timeout"
                            break
                        if rc != 0:
                            entry["result"] = "caught"
                            entry["failing"] = failing_tests(out)
                            break
                finally:
                    with open(path, "w") as f:
                        f.write(source)
            entry["seconds"] = time.time() - start
            results.append(entry)
            print(f"[{i + 1}/{len(selected)}] {mid}: {entry['result']} ({entry['seconds']:.0f} s) {' '.join(entry['failing'])}",
                  flush=True)
            save()
    finally:
        if not args.keep:
            shutil.rmtree(copy, ignore_errors=True)
    counted = [r for r in results if r["result"] in ("caught", "missed", "timeout")]
    print(f"{sum(r['result'] != 'missed' for r in counted)} of {len(counted)} mutants caught; report: {args.report}")


if __name__ == "__main__":
    main()
