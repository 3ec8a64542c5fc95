#!/usr/bin/env bash
# The main job, offline, on the embedded store: find the toy model's circuits for digits, number words and months at
# 0.97 / 0.9 / 0.8 with path-patching edges (each run's nodes and edges hold jointly), then ask the cross-circuit
# questions and draw the shared subcircuit; compare edge rankings by their faithfulness curves.
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

echo; echo "== ranking every edge of the full graph: path patching vs EAP vs EAP-IG (faithfulness curves, CPR and CMD)"
rankers=(--method path --method eap --method eap-ig)
$cdb discover --model toy --task digits --threshold 0.9 "${rankers[@]}"
$cdb curve --model toy --task digits --threshold 0.9 "${rankers[@]}" -o "$out/curve.png"

echo; echo "== SAE features: the toy SAEs read the residual stream entering blocks 2 and 3"
features=(--method sae-attr:resid2+resid3)
$cdb features discover --model toy --sae toy:resid2 --sae toy:resid3 "${tasks[@]}" --threshold 0.9 --threshold 0.8
$cdb shared --model toy "${tasks[@]}" --threshold 0.8 "${features[@]}"
$cdb export --model toy --task digits --threshold 0.8 "${features[@]}" --top 16 -o "$out/digits_features.png"
$cdb features cosine --model toy --sae toy:resid2 --sae toy:resid3 --cutoff 0.6
feature=$($cdb shared --model toy "${tasks[@]}" --threshold 0.8 "${features[@]}" --json | .venv/bin/python -c \
  "import json, sys; print(next(r['component'] for r in json.load(sys.stdin)['components'] if r['kind'] == 'sae_feature'))")
$cdb features related "$feature" --model toy --limit 5 -o "$out/feature_relations.png"
$cdb steer build months-minus-digits --model toy --layer 2 --plus months --minus digits
$cdb steer decompose months-minus-digits --model toy --sae toy:resid2 --top-k 8
$cdb steer effects months-minus-digits --model toy --sae toy:resid3 --on digits --coef 1 --top 5

echo; echo "== importers: the example GPT-2 files (illustrative, see README) and an EAP-IG graph"
for task in numerals numwords months; do
  $cdb import seqcont "examples/seqcont/${task}_circuit_thres_0.8.json" --model gpt2-small --task "$task" --threshold 0.8
done
$cdb import eap-ig examples/eap-ig/ioi_graph.json --model gpt2-small --task ioi --method eap-ig
$cdb shared --model gpt2-small --task numerals --task numwords --task months --threshold 0.8
$cdb export --model toy --method prune -o "$out/runs.json"
echo "demo: catalog, pictures and export in $out/"
