#!/usr/bin/env bash
# The main job of the README: builds dyncc (installing what is missing),
# then runs real models and the dynamic examples, each printing its outputs
# and decisions next to PyTorch's:
#
# 1. all-MiniLM-L6-v2 (sentence-transformers) imported from PyTorch with
#    dyncc.export: sentence embeddings next to sentence-transformers' own
#    (24 sentences, batch 1 and 8).
# 2. DeeBERT on all-MiniLM-L6-v2 with dyncc.nn.EarlyExit: an exit head after
#    every layer (trained on generated sentences), compiled with
#    dyncc.compile; exit layers next to the eager module's at five entropy
#    thresholds, accuracy, mean exit layer and time per sentence; then
#    bucketed batches of 8.
# 3. MoE transformer blocks with dyncc.nn.MoE (Mixtral-style top-2 and
#    Switch-style top-1 with capacity): tokens per expert, dropped tokens
#    and assignments next to the eager module's.
# 4. Skim-RNN (LSTM) and Skip RNN (GRU) classifiers with dyncc.nn.Skim: the
#    step traces (read / skim / skip per token) next to the eager loop's.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

scripts/install-deps.sh >/dev/null
cmake -G Ninja -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target dyncc >/dev/null
export DYNCC="$build/tools/dyncc/dyncc"
export DYNCC_CACHE="$work/cache"
# The project's Python environment (scripts/install-deps.sh made it).
py=.venv/bin/python

echo "== examples/minilm: all-MiniLM-L6-v2 from PyTorch (dyncc.export), embeddings vs sentence-transformers"
"$py" examples/minilm/embed.py --work "$work/minilm"
echo
echo "== examples/deebert: DeeBERT on all-MiniLM-L6-v2 (dyncc.nn.EarlyExit), exit layers vs eager"
"$py" examples/deebert/deebert.py --work "$work/deebert" 2>&1 | grep -v "^Loading weights"
echo
echo "== examples/nn/moe_block.py: Mixtral- and Switch-style MoE blocks (dyncc.nn.MoE), assignments vs eager"
"$py" examples/nn/moe_block.py --work "$work/moe"
echo
echo "== examples/nn/skim_rnn.py: Skim-RNN and Skip RNN (dyncc.nn.Skim), step traces vs eager"
"$py" examples/nn/skim_rnn.py --work "$work/skim"
