#!/usr/bin/env bash
# Run a codecorpus job with spark-submit.
#   ./spark-submit.sh [--master URL] [--pack-env|--no-pack-env] [--conf k=v ...] jobs/<job>.py [--config FILE] [--set key=value ...]
# Default master: local[*]. --pack-env (automatic for yarn and k8s masters) ships this project's
# virtualenv to executors as an archive, so native dependencies (pyarrow, numpy, tokenizers)
# travel with the job; on one machine or a shared filesystem the venv is used in place.
# --no-pack-env: the executors have the environment already (a container image); set
# spark.pyspark.python with --conf. See docs/cluster.md.
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
    --no-pack-env) PACK=-1; shift ;;
    --conf) EXTRA+=(--conf "$2"); shift 2 ;;
    *) break ;;
  esac
done
[[ $# -ge 1 ]] || { echo "usage: $0 [--master URL] [--pack-env|--no-pack-env] [--conf k=v ...] jobs/<job>.py [args...]" >&2; exit 2; }
[[ -x "$VENV/bin/spark-submit" ]] || { echo "error: $VENV has no pyspark; run 'make venv' first" >&2; exit 2; }
command -v java >/dev/null || [[ -n "${JAVA_HOME:-}" ]] || { echo "error: Java 17+ is required (no java on PATH)" >&2; exit 2; }

mkdir -p "$HERE/build"
# lib/ travels to executors as a zip on the Python path. The zip is named after its sources and
# written under a temporary name first: jobs started from one checkout at the same time never
# rewrite a zip that a running job is still importing from.
LIB_HASH=$(cd "$HERE/lib" && find codecorpus -type f ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z \
           | xargs -0 sha256sum | sha256sum | cut -c1-16)
LIB_ZIP="$HERE/build/codecorpus-$LIB_HASH.zip"
if [[ ! -f "$LIB_ZIP" ]]; then
  TMP_ZIP=$(mktemp "$HERE/build/.codecorpus-XXXXXX")
  (cd "$HERE/lib" && "$VENV/bin/python" -m zipfile -c "$TMP_ZIP" codecorpus) && chmod a+r "$TMP_ZIP" && mv -f "$TMP_ZIP" "$LIB_ZIP"
fi
touch "$LIB_ZIP"
find "$HERE/build" -maxdepth 1 -name 'codecorpus-*.zip' -mtime +7 -delete 2>/dev/null || true

# The executors' Python: this venv, packed once (again when its packages change). venv-pack 0.2
# refuses editable installs, and this project is one: its import hook is left out of the
# archive (lib/ travels as the zip above), and so are packages executors never import
# (CODECORPUS_PACK_EXCLUDE, fnmatch patterns under the venv).
PACK_EXCLUDE="${CODECORPUS_PACK_EXCLUDE-lib/python*/site-packages/__editable__* lib/python*/site-packages/torch*
  lib/python*/site-packages/functorch/* lib/python*/site-packages/pyspark/jars/*}"
ENV_ARCHIVE="$HERE/build/env.tar.gz"
pack_env() {
  local tmp
  tmp=$(mktemp "$HERE/build/.env-XXXXXX.tar.gz")
  echo "packing $VENV -> build/env.tar.gz (once; again when its packages change)" >&2
  PACK_EXCLUDE="$PACK_EXCLUDE" "$VENV/bin/python" - "$VENV" "$tmp" <<'PY' || { rm -f "$tmp"; exit 2; }
import os
import sys

import venv_pack.core as core

prefix, output = sys.argv[1:]
exclude = os.environ["PACK_EXCLUDE"].split()
core.check_no_editable_packages = lambda context: None  # see the comment above pack_env
core.pack(prefix=prefix, output=output, force=True, compress_level=1,
          filters=[("exclude", pattern) for pattern in exclude])
PY
  chmod a+r "$tmp" && mv -f "$tmp" "$ENV_ARCHIVE"
}

# The compiled n-gram tokenizer (built by pip install into lib/) cannot load from a zip: it
# travels as a file, and PySpark's workers have the files' folder on their Python path.
NATIVE=$(compgen -G "$HERE/lib/codecorpus_scan*.so" | head -n 1 || true)
ARGS=(--master "$MASTER" --properties-file "$HERE/conf/spark-defaults.conf"
      --py-files "$LIB_ZIP,$HERE/jobs/_door.py" --files "$HERE/conf/default.toml${NATIVE:+,$NATIVE}"
      --driver-java-options "-Dlog4j2.configurationFile=file:$HERE/conf/log4j2.properties")
if [[ $PACK == 0 ]]; then case "$MASTER" in yarn*|k8s://*) PACK=1 ;; esac; fi
if [[ $PACK == 1 ]]; then
  SITE=$(echo "$VENV"/lib/python3*/site-packages)
  if [[ ! -f "$ENV_ARCHIVE" || "$SITE" -nt "$ENV_ARCHIVE" ]]; then pack_env; fi
  ARGS+=(--archives "$ENV_ARCHIVE#environment"
         --conf spark.pyspark.python=./environment/bin/python
         --conf spark.pyspark.driver.python="$VENV/bin/python")
  export PYSPARK_PYTHON=./environment/bin/python
elif [[ $PACK == -1 ]]; then
  unset PYSPARK_PYTHON
else
  export PYSPARK_PYTHON="$VENV/bin/python"
fi
export PYSPARK_DRIVER_PYTHON="$VENV/bin/python"
exec "$VENV/bin/spark-submit" "${ARGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"} "$@"
