#!/usr/bin/env bash
# The main job, offline, on the embedded store: find the toy model's circuits for digits, number words and months at
# 0.97 / 0.9 / 0.8 with path-patching edges, then ask the cross-circuit questions and draw the shared subcircuit.
set -euo pipefail
out=${1:-demo}
rm -rf "$out" && mkdir -p "$out"
export CIRCUITDB_STORE="kuzu:$out/circuitdb.kuzu" HF_HUB_OFFLINE=1
cdb=.venv/bin/circuitdb
tasks=(--task digits --task numwords --task months)

$cdb discover --model toy "${tasks[@]}" --threshold 0.97 --threshold 0.9 --threshold 0.8 --method prune --edges path
$cdb runs
echo; echo "== shared subcircuit of digits, number words and months at 0.8"
$cdb shared --model toy "${tasks[@]}" --threshold 0.8
$cdb shared --model toy "${tasks[@]}" --threshold 0.8 --edges
$cdb venn --model toy "${tasks[@]}" --threshold 0.8 -o "$out/venn.png"
$cdb diff --model toy --task digits --task months --threshold 0.8
$cdb ladder --model toy --task months
$cdb similarity --model toy -o "$out/similarity.png"
$cdb export --model toy "${tasks[@]}" --threshold 0.8 --only-shared -o "$out/shared.png"
$cdb export --model toy "${tasks[@]}" --threshold 0.8 -o "$out/overlap.png"

echo; echo "== importers: the example GPT-2 files (illustrative, see README) and an EAP-IG graph"
for task in numerals numwords months; do
  $cdb import seqcont "examples/seqcont/${task}_circuit_thres_0.8.json" --model gpt2-small --task "$task" --threshold 0.8
done
$cdb import eap-ig examples/eap-ig/ioi_graph.json --model gpt2-small --task ioi --method eap-ig
$cdb shared --model gpt2-small --task numerals --task numwords --task months --threshold 0.8
$cdb export --model toy -o "$out/runs.json"
echo "demo: catalog, pictures and export in $out/"
