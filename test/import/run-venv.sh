#!/usr/bin/env bash
# run-venv.sh PYTHON script.py args...: runs the script with the project's
# Python environment, or exits 77 (ctest: skipped) saying why it is missing.
py="$1"; shift
if [ ! -x "$py" ]; then
  echo "SKIP: no project Python environment at $py (scripts/install-deps.sh makes it)"
  exit 77
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false
exec "$py" "$@"
