"""Component names, edge names, run ids and run validation."""

from __future__ import annotations

import pytest

from circuitdb import CircuitdbError, Edge, Model, Run, Task, canonical, parse_component


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("a9.h1", "a9.h1"),
        ("9.1", "a9.h1"),
        ("L9H1", "a9.h1"),
        ("l9 h1", "a9.h1"),
        ("[9, 1]", "a9.h1"),
        ([9, 1], "a9.h1"),
        ("(9,1)", "a9.h1"),
        ("MLP 9", "m9"),
        ("mlp9", "m9"),
        ("m9", "m9"),
        (9, "m9"),
        ("m3.n77", "m3.n77"),
        ("input", "input"),
        ("embed", "input"),
        ("logits", "logits"),
        ("fresid3/42", "fresid3/42"),
        ("fresid3/err", "fresid3/err"),
    ],
)
def test_spellings_parse_to_canonical_names(spelling: object, name: str) -> None:
    assert canonical(spelling) == name


def test_feature_layer_comes_from_its_dictionary() -> None:
    feature = parse_component("fresid7/123")
    assert (feature.kind, feature.layer, feature.index, feature.dictionary) == ("sae_feature", 7, 123, "resid7")


@pytest.mark.parametrize("bad", ["", "9", "a9", "head", "9.1.2", [9], [9, "1"], [True, 1], None, "f/3"])
def test_bad_names_are_refused(bad: object) -> None:
    with pytest.raises(CircuitdbError, match="not a component name"):
        parse_component(bad)


def test_forward_order() -> None:
    names = ["logits", "m1", "a1.h0", "a0.h11", "a0.h2", "m0", "input", "fresid1/3"]
    ordered = sorted(names, key=lambda n: parse_component(n).sort_key())
    assert ordered == ["input", "a0.h2", "a0.h11", "m0", "a1.h0", "m1", "fresid1/3", "logits"]


def _run(**kw: object) -> Run:
    base = {
        "model": Model("gpt2-small"),
        "task": Task("ioi"),
        "method": "prune",
        "threshold": 0.8,
        "components": {"9.1": 0.5, "MLP 9": None},
        "edges": [Edge("9.1", "m9", 0.25)],
    }
    return Run(**{**base, **kw})


def test_run_id_depends_on_defining_fields_only() -> None:
    a, b = _run(), _run(components={"a0.h0": 1.0}, edges=[], params={"x": 1}, seed=3)
    assert a.id == b.id and len(a.id) == 16
    assert _run(threshold=0.9).id != a.id and _run(method="eap").id != a.id and _run(ablation="zero").id != a.id


def test_validate_canonicalises() -> None:
    run = _run().validate()
    assert run.components == {"a9.h1": 0.5, "m9": None}
    assert run.edges == [Edge("a9.h1", "m9", 0.25, "")]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"threshold": 1.5}, r"threshold must be in \(0, 1\]"),
        ({"threshold": 0}, r"threshold must be in \(0, 1\]"),
        ({"components": {"9.1": float("nan")}}, "finite"),
        ({"edges": [Edge("9.1", "a10.h0", 1.0)]}, "a10.h0 is not a component of the run"),
        ({"edges": [Edge("9.1", "m9", 1.0, "q")]}, "needs a head receiver"),
        ({"edges": [Edge("9.1", "m9", 1.0, "x")]}, "input must be q, k, v"),
        ({"edges": [Edge("9.1", "m9", 1.0), Edge("a9.h1", "MLP 9", 2.0)]}, "duplicate edge"),
    ],
)
def test_validation_errors(change: dict, message: str) -> None:
    with pytest.raises(CircuitdbError, match=message):
        _run(**change).validate()
