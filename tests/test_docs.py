"""Docs as tests (sqlite-utils style): every command and option is in the README, every README example runs, and each
command is a thin call of the Catalog method of its name."""

from __future__ import annotations

import ast
import inspect
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from circuitdb import Catalog
from circuitdb.catalog import IMPORT_KINDS
from circuitdb.cli import main

README = (Path(__file__).parent.parent / "README.md").read_text()

# Commands whose API function lives outside Catalog (or under another name); every other `a b` calls Catalog.a_b.
API_NAMES = {
    **{f"import {kind}": "import_file" for kind in IMPORT_KINDS},  # one API call, the format as its first argument
    "sweep": "sweep",  # circuitdb.catalog.sweep: opens the store the sweep file names
    "toy train": "train_and_save", "toy train-sae": "train_and_save_saes",  # circuitdb.discovery: no catalog involved
    "serve": "serve",  # circuitdb.serve.serve: the web view, each of its routes one Catalog call
}


def commands(group: click.Group = main, prefix: str = "") -> dict[str, click.Command]:
    """Every leaf command by its full name (`features match`)."""
    out: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            out |= commands(command, full + " ")
        else:
            out[full] = command
    return out


COMMANDS = commands()


def command_table() -> str:
    return README.split("## The command line", 1)[1].split("\n## ", 1)[0]


def test_the_cli_has_commands() -> None:
    assert {"runs", "shared", "features match", "steer effects", "import eap-ig"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_is_in_the_readme_table_with_its_options(name: str) -> None:
    rows = [line for line in command_table().splitlines() if line.startswith(f"| `{name}")]
    assert rows, f"`{name}` has no row in the README's command table"
    documented = set(re.findall(r"--[a-z][a-z0-9-]*", README))
    flags = {o for p in COMMANDS[name].params for o in p.opts + p.secondary_opts if o.startswith("--")}
    assert not flags - documented, f"options of `{name}` missing from the README: {sorted(flags - documented)}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_command_calls_the_api_function_of_its_name(name: str) -> None:
    """A command parses, makes one API call, renders: the call is named after the command, the body stays short."""
    api = API_NAMES.get(name, name.replace(" ", "_").replace("-", "_"))
    if name not in API_NAMES:
        assert callable(getattr(Catalog, api, None)), f"`{name}` has no Catalog.{api}"
    callback = COMMANDS[name].callback
    tree = ast.parse(textwrap.dedent(inspect.getsource(callback)))
    calls = {n.func.attr if isinstance(n.func, ast.Attribute) else getattr(n.func, "id", "")
             for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert api in calls, f"`{name}` does not call {api}"
    body = tree.body[0].body
    body = body[1:] if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else body
    logic = [line for statement in body for line in ast.unparse(statement).splitlines()]
    assert len(logic) <= 15, f"`{name}` has {len(logic)} lines of logic"


def test_importing_the_catalog_and_cli_does_not_import_torch() -> None:
    code = "import sys, circuitdb, circuitdb.cli, circuitdb.catalog; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_cli_starts_without_its_heavy_libraries() -> None:
    """pandas, numpy, pyarrow and rich load when a command needs them (circuitdb.lazy), not when the CLI starts."""
    heavy = ("pandas", "numpy", "pyarrow", "rich", "torch", "matplotlib", "networkx", "neo4j")
    code = ("import sys, circuitdb, circuitdb.cli, circuitdb.catalog, circuitdb.serve; "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def blocks(language: str) -> list[tuple[str, str]]:
    """(heading, body) of every fenced block of `language`."""
    found, heading = [], ""
    for part in re.split(r"(^```[a-z]*\n.*?^```)", README, flags=re.S | re.M):
        if part.startswith("```"):
            lang, body = part.split("\n", 1)
            if lang[3:] == language:
                found.append((heading, body.rsplit("```", 1)[0]))
        else:
            titles = re.findall(r"^#+ (.*)$", part, flags=re.M)
            heading = titles[-1] if titles else heading
    return found


def shell_lines() -> list[str]:
    """The commands of every bash block, `a && b` split, comments dropped."""
    out = []
    for _, body in blocks("bash"):
        for line in body.splitlines():
            words = shlex.split(line, comments=True)
            while words:
                cut = words.index("&&") if "&&" in words else len(words)
                out.append(shlex.join(words[:cut]))
                words = words[cut + 1:]
    return out


def test_every_readme_example_runs(tmp_path: Path, examples: Path, neo4j_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every bash line (on a fresh embedded store, then the Neo4j section on the test server), the Python block and
    the Cypher recipes, in README order, in a folder holding the shipped examples."""
    import shutil

    from conftest import wipe_neo4j

    shutil.copytree(examples, tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CIRCUITDB_STORE", raising=False)
    wipe_neo4j(neo4j_url)
    ran = 0
    for line in shell_lines():
        words = shlex.split(line)
        if words[0] in ("make", ".", "docker"):  # set-up lines: the venv is active and the test server stands for docker
            continue
        if words[0] == "export":
            for pair in words[1:]:
                key, value = pair.split("=", 1)
                monkeypatch.setenv(key, neo4j_url if key == "CIRCUITDB_STORE" else value)
            continue
        assert words[0] == "circuitdb", f"README line the test cannot run: {line}"
        result = CliRunner().invoke(main, words[1:], catch_exceptions=False)
        assert result.exit_code == 0, f"{line}\n{result.output}"
        ran += 1
    assert ran >= 30
    for picture in ("venn.png", "similarity.png", "overlap.png", "ioi.png", "relations.png", "curve.png"):
        assert (tmp_path / picture).read_bytes()[:4] == b"\x89PNG", picture
    assert (tmp_path / "shared.svg").read_text().lstrip().startswith("<?xml")

    monkeypatch.delenv("CIRCUITDB_STORE")
    (python,) = [body for _, body in blocks("python")]
    exec(compile(python, "README.md", "exec"), {})
    recipes = [s.strip() for _, body in blocks("cypher") for s in body.split(";") if s.strip()]
    assert len(recipes) >= 3
    with Catalog(create=False, read_only=True) as catalog:
        for statement in recipes:
            catalog.query("\n".join(line for line in statement.splitlines() if not line.startswith("//")))

