"""Importers: seqcont files, EAP-IG graph JSON, circuitdb's own export; malformed files name file and line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fixtures import catalog_runs

from circuitdb import Catalog, CircuitdbError, Edge, Selection, Task
from circuitdb import catalog as catalog_module
from circuitdb.domain import model_named
from circuitdb.ingest import native as native_module
from circuitdb.ingest.eapig import read_eapig
from circuitdb.ingest.native import dumps, native_batches, read_native
from circuitdb.ingest.seqcont import read_seqcont
from circuitdb.queries import runs as runs_module

GPT2 = model_named("gpt2-small")


def test_seqcont_example(examples: Path) -> None:
    path = examples / "seqcont" / "numerals_circuit_thres_0.8.json"
    data = json.loads(path.read_text())
    run = read_seqcont(path, GPT2, Task("numerals"), 0.8).validate()
    assert set(run.components) == {f"a{l_}.h{h}" for l_, h in data["heads"]} | {f"m{m}" for m in data["mlps"]}
    assert (run.method, run.threshold, run.edges) == ("prune", 0.8, [])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"heads": [[1, 2],\n [3, 4],\n [5]], "mlps": []}', r":3: head entry \[5\] is not \[layer, head\]"),
        ('{"heads": [[1, 2]],\n "mlps": [0,\n "x"]}', r":3: mlp entry 'x' is not a layer number"),
        ('{"heads": [[1, 2]],\n\n "mlps": [0, 1,]}', r":3:\d+: malformed JSON"),
        ('{"heads": [[1, 2],\n [12, 0]], "mlps": []}', r":2: head \[12, 0\] does not exist in gpt2-small"),
        ("[1, 2]", r":1: not a seqcont circuit file"),
    ],
)
def test_seqcont_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(CircuitdbError, match=f"bad.json{message}"):
        read_seqcont(path, GPT2, Task("numerals"), 0.8)


def test_seqcont_missing_file_and_bad_threshold(tmp_path: Path) -> None:
    with pytest.raises(CircuitdbError, match="cannot read"):
        read_seqcont(tmp_path / "nope.json", GPT2, Task("t"), 0.8)
    with pytest.raises(CircuitdbError, match="threshold"):
        read_seqcont(tmp_path / "nope.json", GPT2, Task("t"), 1.2)


def test_eapig_example(examples: Path) -> None:
    path = examples / "eap-ig" / "ioi_graph.json"
    data = json.loads(path.read_text())
    run = read_eapig(path, GPT2, Task("ioi")).validate()
    in_graph = {k: v for k, v in data["edges"].items() if v["in_graph"]}
    assert sorted(e.name for e in run.edges) == sorted(in_graph)
    assert {e.name: e.weight for e in run.edges} == {k: v["score"] for k, v in in_graph.items()}
    flagged = {n for n, v in data["nodes"].items() if v["in_graph"]}
    assert set(run.components) == flagged
    assert run.components["a9.h9"] == data["nodes"]["a9.h9"]["score"]
    assert [e.input for e in run.edges if e.name == "a7.h3->a9.h9<q>"] == ["q"]


def test_eapig_old_format_with_boolean_nodes(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(
        json.dumps(
            {
                "cfg": {"n_layers": 2, "n_heads": 2},
                "nodes": {"a0.h1": True, "m1": False},
                "edges": {"a0.h1->m1": {"score": 0.5, "in_graph": True}, "input->a1.h0<k>": {"score": 0.1, "in_graph": False}},
            }
        )
    )
    run = read_eapig(path, model_named("tiny"), Task("t")).validate()
    assert run.components == {"a0.h1": None, "m1": None}  # m1 joins as an endpoint of an in-graph edge
    assert run.model.n_layers == 2


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ('{"a0.h1->m1": {"score": 1, "in_graph": true},\n "a0.h1=>m1": {"score": 1, "in_graph": true}}', r":3: not an edge name"),
        (
            '{"a0.h1->m1": {"score": 1, "in_graph": true},\n "a0.h1->m0": {"score": "x", "in_graph": true}}',
            r":3: .*score must be a number",
        ),
        ('{"a0.h1->m1": {"score": 1}}', r":2: edge 'a0.h1->m1' needs in_graph"),
    ],
)
def test_eapig_errors_name_file_and_line(tmp_path: Path, edges: str, message: str) -> None:
    path = tmp_path / "g.json"
    path.write_text('{"cfg": {},\n "edges": ' + edges + ',\n "nodes": {}}')
    with pytest.raises(CircuitdbError, match=f"g.json{message}"):
        read_eapig(path, GPT2, Task("t"))


def test_native_round_trip_through_a_store(tmp_path: Path) -> None:
    runs = catalog_runs()[:6]
    with Catalog(f"kuzu:{tmp_path / 'a.kuzu'}") as first:
        first.add(runs)
        exported = dumps([first.run(r.id) for r in reversed(first.runs())])
    path = tmp_path / "runs.json"
    path.write_text(exported)
    back = read_native(path)
    with Catalog(f"kuzu:{tmp_path / 'b.kuzu'}") as second:
        second.add(back)  # parents come first in the file, so NESTS_IN resolves
        for run in runs:
            again = second.run(run.id)
            assert again.components == run.components
            assert sorted(again.edges, key=lambda e: e.key) == sorted(run.edges, key=lambda e: e.key)
            assert (again.nests_in, again.faithfulness, again.params, again.evaluations) == (
                run.nests_in,
                run.faithfulness,
                run.params,
                run.evaluations,
            )
        assert dumps([second.run(r.id) for r in second.runs()]) == dumps([first_run for first_run in back])


def test_json_export_in_batches_round_trips(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Catalog.export streams the document a few runs per batch; it is the text dumps makes of the whole list, and
    importing it gives back every run as it was added."""
    monkeypatch.setattr(runs_module, "ROWS_PER_BATCH", 300)  # about 2 runs per batch: 15 batches for 30 runs
    runs = catalog_runs()
    path = tmp_path / "all.json"
    with Catalog(store_url) as first:
        first.add(runs)
        infos = first.select(Selection(methods=("prune", "eap")))
        assert first.export(Selection(methods=("prune", "eap")), path).count == len(runs)
        text = path.read_text()
        assert text == dumps([first.run(r.id) for r in infos]) == json.dumps(json.loads(text), indent=1)
    assert not path.with_name("all.json.part").exists()
    with Catalog(f"kuzu:{tmp_path / 'back.kuzu'}") as second:
        second.import_file("json", path)
        assert len(second.runs()) == len(runs)
        for run in runs:
            again = second.run(run.id)
            assert (again.components, again.nests_in, again.evaluations, again.params, again.faithfulness) == (
                run.components, run.nests_in, run.evaluations, run.params, run.faithfulness)
            assert sorted(again.edges, key=lambda e: e.key) == sorted(run.edges, key=lambda e: e.key)


def test_native_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"format": "other", "runs": []}')
    with pytest.raises(CircuitdbError, match="not a circuitdb export"):
        read_native(path)
    doc = json.loads(dumps(catalog_runs()[:1]))
    doc["runs"][0]["threshold"] = 2
    path.write_text(json.dumps(doc))
    with pytest.raises(CircuitdbError, match=r"runs\[0\]: threshold must be in"):
        read_native(path)
    doc["runs"][0]["threshold"] = 0.9
    path.write_text(json.dumps(doc))
    with pytest.raises(CircuitdbError, match="does not match its defining fields"):
        read_native(path)
    del doc["runs"][0]["model"]
    path.write_text(json.dumps(doc))
    with pytest.raises(CircuitdbError, match=r"runs\[0\]: missing or malformed field"):
        read_native(path)


def _batch_ids(path: Path, rows: int) -> list[list[str]]:
    return [[r.id for r in batch] for batch in native_batches(path, rows)]


@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])  # pieces splitting every token, to the whole file at once
def test_native_batches_read_the_file_in_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """The runs read_native reads, in file order, in lists bounded by memberships + edges (a larger run alone)."""
    monkeypatch.setattr(native_module, "READ_CHUNK", chunk)
    runs = catalog_runs()[:8]
    path = tmp_path / "runs.json"
    path.write_text(dumps(runs))
    whole = read_native(path)
    monkeypatch.setattr(native_module, "read_json", None)  # the file is read in pieces, never whole
    limit = 2 * max(len(r.components) + len(r.edges) for r in runs)
    batches = list(native_batches(path, limit))
    assert [r.validate() for batch in batches for r in batch] == whole
    assert len(batches) > 1
    assert all(sum(len(r.components) + len(r.edges) for r in batch) <= limit for batch in batches)
    assert _batch_ids(path, 1) == [[r.id] for r in whole]
    path.write_text(json.dumps({"format": "circuitdb", "version": 1, "runs": []}))
    assert _batch_ids(path, limit) == []


def test_native_batches_read_unusual_layouts_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys out of order, compact JSON, extra keys: the same runs; malformed JSON and bad runs: read_native's error,
    raised before any batch, even when the bad run comes after a whole batch of good ones."""
    monkeypatch.setattr(native_module, "READ_CHUNK", 16)
    runs = catalog_runs()[:4]
    doc = json.loads(dumps(runs))
    path = tmp_path / "runs.json"
    path.write_text(dumps(runs))
    ids = [r.id for r in read_native(path)]
    for layout in ({"runs": doc["runs"], "format": "circuitdb", "version": 1}, {**doc, "note": [1, {"a": 2}]},
                   {"note": 1.5, **doc}):
        path.write_text(json.dumps(layout))
        assert [i for batch in _batch_ids(path, 1) for i in batch] == ids
    for text in (dumps(runs)[:-3], dumps(runs) + "x", '{"format": "circuitdb", "version": 1, "version": 2, "runs": []}',
                 '{"format": "other", "version": 1, "runs": []}', "[]", ""):
        path.write_text(text)
        with pytest.raises(CircuitdbError) as expected:
            read_native(path)
        with pytest.raises(CircuitdbError, match=re.escape(str(expected.value))):
            next(native_batches(path, 1))
    doc["runs"][3]["threshold"] = 2
    path.write_text(json.dumps(doc))
    with pytest.raises(CircuitdbError, match=r"runs\[3\]: threshold must be in"):
        next(native_batches(path, 1))


def test_import_json_writes_bounded_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`import json` hands the store's batch write lists of runs bounded by IMPORT_ROWS, and writes nothing when a
    run late in the file is bad."""
    runs = catalog_runs()
    path = tmp_path / "runs.json"
    path.write_text(dumps(runs))
    limit = 3 * max(len(r.components) + len(r.edges) for r in runs)
    monkeypatch.setattr(catalog_module, "IMPORT_ROWS", limit)
    with Catalog(f"kuzu:{tmp_path / 'c.kuzu'}") as cat:
        calls: list[int] = []
        write_runs = cat.store.write_runs
        monkeypatch.setattr(cat.store, "write_runs",
                            lambda batch: (calls.append(sum(t.includes.num_rows + t.edges.num_rows for t in batch)),
                                           write_runs(batch)))
        assert len(cat.import_file("json", path)) == len(runs)
        assert len(calls) > 1 and max(calls) <= limit and sum(calls) == sum(len(r.components) + len(r.edges) for r in runs)
        assert {r.id for r in cat.runs()} == {r.id for r in runs}
    doc = json.loads(dumps(runs))
    doc["runs"][-1]["edges"][0]["weight"] = "heavy"
    path.write_text(json.dumps(doc))
    with Catalog(f"kuzu:{tmp_path / 'd.kuzu'}") as cat:
        with pytest.raises(CircuitdbError, match=rf"runs\[{len(runs) - 1}\]: edge 0"):
            cat.import_file("json", path)
        assert len(cat.runs()) == 0


def test_run_with_an_edge_end_outside_its_members(store_url: str) -> None:
    """Edges arrive with node numbers for their ends, named from the run's members; an end that is not a member
    (which the write path refuses, but an older catalog may hold) is named by a lookup of its own."""
    runs = catalog_runs()
    first = runs[0]
    second = next(r for r in runs if set(r.components) - set(first.components))
    outsider = next(n for n in second.components if n not in first.components)
    with Catalog(store_url) as cat:
        cat.add([first, second])
        model = first.model.name
        ends = f"MATCH (a:Component {{id: '{model}/{outsider}'}}), (b:Component {{id: '{model}/logits'}}) "
        props = f"run_id: '{first.id}', weight: 0.5, input: ''"
        if cat.store.backend == "kuzu":
            cat.store._exec(f"{ends} CREATE (a)<-[:SENDER]-(:Edge {{id: -1, {props}}})-[:RECEIVER]->(b)")
        else:
            with cat.store.driver.session() as session:
                session.run(f"{ends} CREATE (a)-[:EDGE {{{props}}}]->(b)").consume()
        again = cat.run(first.id)
        assert sorted(again.edges, key=lambda e: e.key) == sorted([*first.edges, Edge(outsider, "logits", 0.5)],
                                                                  key=lambda e: e.key)
        exported = json.loads(dumps([again]))["runs"][0]
        assert {"sender": outsider, "receiver": "logits", "input": "", "weight": 0.5} in exported["edges"]
