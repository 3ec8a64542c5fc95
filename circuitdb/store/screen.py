"""User Cypher is screened before it runs: exactly one statement, which only reads the catalog (no files, extensions,
other databases, transactions or settings). The engine's own plan decides (each store's `plan_of`); the word checks
here come first only where planning itself has effects (Kuzu's EXPLAIN EXPORT DATABASE creates the folder) and stay
as a second line after the plan."""

from __future__ import annotations

import re

from circuitdb.errors import CircuitdbError

READ_CLAUSES = ("MATCH", "OPTIONAL", "UNWIND", "WITH", "RETURN", "CALL")
# words that open a clause touching files, extensions, other databases or server state, in either dialect
OUTSIDE_WORDS = ("LOAD", "COPY", "EXPORT", "IMPORT", "INSTALL", "ATTACH", "DETACH", "CHECKPOINT", "USE", "PERIODIC")
_TOKEN = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`|//[^\n]*|/\*.*?\*/|;|[.$]?[A-Za-z_][A-Za-z_0-9]*|\S""",
                    re.S)


def _tokens(cypher: str) -> list[str]:
    """Words and `;` of a statement; strings, quoted names and comments dropped, property keys kept with their dot."""
    out = []
    for token in _TOKEN.findall(cypher):
        if token.startswith("/*") and not token.endswith("*/"):
            raise CircuitdbError("refused: an unclosed /* comment")
        if token[0] in "'\"`" or token.startswith(("//", "/*")):
            continue
        out.append(token)
    return out


def screen(cypher: str, params: dict | None = None) -> str:
    """The statement, if it is one read-only statement by its words whose `$parameters` are all given; else one line
    saying why not."""
    tokens = _tokens(cypher)
    statements = [s for s in " ".join(tokens).split(";") if s.strip()]
    if not statements:
        raise CircuitdbError("refused: the query is empty")
    if len(statements) > 1:
        raise CircuitdbError(f"refused: one statement per query, this has {len(statements)}")
    words = [t.upper() for t in tokens if t != ";"]
    if words[0] not in READ_CLAUSES:
        raise CircuitdbError(f"refused: `{words[0]}` is not a read query (queries start with {', '.join(READ_CLAUSES)})")
    outside = [w for w, after in zip(words, [*words[1:], ""]) if w in OUTSIDE_WORDS and (w, after) != ("DETACH", "DELETE")]
    if outside:
        raise CircuitdbError(f"refused: `{outside[0]}` reaches outside the catalog (files, extensions, databases); "
                             "queries only read the catalog")
    used = {t[1:] for t in tokens if t.startswith("$")}
    missing = sorted(used - set(params or {}))
    if missing:
        raise CircuitdbError(f"the query uses ${missing[0]}, which has no value (give --param {missing[0]}=VALUE)")
    unused = sorted(set(params or {}) - used)
    if unused:
        raise CircuitdbError(f"--param {unused[0]}: the query has no ${unused[0]} (parameters it uses: "
                             f"{', '.join('$' + p for p in sorted(used)) or 'none'})")
    return cypher.strip().rstrip(";")


def refuse_plan(found: set[str], what: str) -> None:
    """One line naming the first of `found`, the parts of a query plan that reach outside the catalog, if any."""
    if found:
        raise CircuitdbError(f"refused: the query plan {what} ({sorted(found)[0]}); queries only read the catalog")
