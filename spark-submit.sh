#!/usr/bin/env bash
# Run a codecorpus job with spark-submit.
#   ./spark-submit.sh [--master URL] [--pack-env] [--conf k=v ...] jobs/<job>.py [--config FILE] [--set key=value ...]
# Default master: local[*]. --pack-env (automatic for yarn and k8s masters) ships this project's
# virtualenv to executors as an archive, so native dependencies (pyarrow, numpy, tokenizers)
# travel with the job; on one machine or a shared filesystem the venv is used in place.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${CODECORPUS_VENV:-$HERE/.venv}"
MASTER="local[*]"
PACK=0
EXTRA=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --master) MASTER="$2"; shift 2 ;;
    --master=*) MASTER="${1#--master=}"; shift ;;
    --pack-env) PACK=1; shift ;;
    --conf) EXTRA+=(--conf "$2"); shift 2 ;;
    *) break ;;
  esac
done
[[ $# -ge 1 ]] || { echo "usage: $0 [--master URL] [--pack-env] jobs/<job>.py [args...]" >&2; exit 2; }
[[ -x "$VENV/bin/spark-submit" ]] || { echo "error: $VENV has no pyspark; run 'make venv' first" >&2; exit 2; }
command -v java >/dev/null || [[ -n "${JAVA_HOME:-}" ]] || { echo "error: Java 17+ is required (no java on PATH)" >&2; exit 2; }

mkdir -p "$HERE/build"
# lib/ travels to executors as a zip on the Python path.
(cd "$HERE/lib" && rm -f "$HERE/build/codecorpus.zip" && "$VENV/bin/python" -m zipfile -c "$HERE/build/codecorpus.zip" codecorpus)

ARGS=(--master "$MASTER" --properties-file "$HERE/conf/spark-defaults.conf"
      --py-files "$HERE/build/codecorpus.zip" --files "$HERE/conf/default.toml"
      --driver-java-options "-Dlog4j2.configurationFile=file:$HERE/conf/log4j2.properties")
case "$MASTER" in yarn*|k8s://*) PACK=1 ;; esac
if [[ $PACK == 1 ]]; then
  if [[ ! -f "$HERE/build/env.tar.gz" || "$VENV/pyvenv.cfg" -nt "$HERE/build/env.tar.gz" ]]; then
    echo "packing $VENV -> build/env.tar.gz" >&2
    "$VENV/bin/venv-pack" -p "$VENV" -o "$HERE/build/env.tar.gz" -f -q
  fi
  ARGS+=(--archives "$HERE/build/env.tar.gz#environment"
         --conf spark.pyspark.python=./environment/bin/python
         --conf spark.pyspark.driver.python="$VENV/bin/python")
  export PYSPARK_PYTHON=./environment/bin/python
else
  export PYSPARK_PYTHON="$VENV/bin/python"
fi
export PYSPARK_DRIVER_PYTHON="$VENV/bin/python"
exec "$VENV/bin/spark-submit" "${ARGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"} "$@"
