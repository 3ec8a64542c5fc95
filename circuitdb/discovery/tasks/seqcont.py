"""The seqcont tasks: continue digits, number words, months or days ("1 2 3 4" -> " 5"), in two template families.

Clean prompts show four members starting at 1..8 (staying within 1..12) inside a template ("Van done in 1 . ... Sun
done in") or bare ("1 2 3 4"); the answer is the next member, the distractor the last shown one. Corruptions:
randAll (four random members with S4 - 1 != S3), repeatLast ("1 2 3 3"), switchLast (a random last member).
"""

from __future__ import annotations

import random

from circuitdb.discovery.tasks import Prompts
from circuitdb.discovery.tasks.sequences import SEQUENCES, TEMPLATES, fillers, render
from circuitdb.errors import CircuitdbError

CORRUPTIONS = ("randAll", "repeatLast", "switchLast")
SHOWN, TOP = 4, 12  # four members shown; values stay within 1..12 (1..7 for days)


def parse_spec(spec: str) -> tuple[str, bool, bool, str]:
    """`months:bare:down:repeatLast` -> (sequence, bare, decreasing, corruption)."""
    name, *options = spec.split(":")
    if name not in SEQUENCES:
        raise CircuitdbError(f"unknown task {name!r} (built in: {', '.join(SEQUENCES)}, greater_than; or a .yaml/.jsonl file)")
    unknown = [o for o in options if o not in ("bare", "down", *CORRUPTIONS)]
    if unknown:
        raise CircuitdbError(f"task {spec!r}: unknown option {unknown[0]!r} (use bare, down, {', '.join(CORRUPTIONS)})")
    corruption = next((o for o in options if o in CORRUPTIONS), "randAll")
    return name, "bare" in options, "down" in options, corruption


def _clean_values(start: int, down: bool, top: int) -> list[int]:
    """Five consecutive values in 1..top: the four shown and the answer (mirrored for decreasing sequences)."""
    values = [start + i for i in range(SHOWN + 1)]
    return [top + 1 - v for v in values] if down else values


def _corrupt_values(rng: random.Random, shown: list[int], kind: str, down: bool, top: int) -> list[int]:
    """Corrupted values in 1..top that no longer imply the answer."""
    step = -1 if down else 1
    if kind == "repeatLast":
        return [*shown[:-1], shown[-2]]
    if kind == "switchLast":
        return [*shown[:-1], rng.choice([v for v in range(1, top + 1) if v not in (shown[-1], shown[-2] + step)])]
    while True:
        values = [rng.randint(1, top) for _ in range(SHOWN)]
        if values[-1] - step != values[-2]:
            return values


def seqcont_prompts(spec: str, n_prompts: int, seed: int = 0) -> Prompts:
    """`n_prompts` clean/corrupt pairs of one seqcont task, deterministic for a seed."""
    name, bare, down, corruption = parse_spec(spec)
    members = SEQUENCES[name]
    top = min(TOP, len(members))

    def member(value: int) -> str:  # digits are listed from 0, the others from 1
        return members[value] if members[0] == "0" else members[value - 1]

    rng = random.Random(seed)
    templates = [None] if bare else list(TEMPLATES.values())
    clean, corrupt, answers, distractors, used = [], [], [], [], []
    for i in range(n_prompts):
        template = templates[i % len(templates)]
        used.append(template or "bare")
        values = _clean_values(rng.randint(1, top - SHOWN), down, top)
        shown = values[:SHOWN]
        bad = _corrupt_values(rng, shown, corruption, down, top)
        words = rng.sample(fillers(template), SHOWN + 1) if template else []
        clean.append(render(template, [member(v) for v in shown], words))
        corrupt.append(render(template, [member(v) for v in bad], words))
        answers.append(" " + member(values[-1]))
        distractors.append(" " + member(shown[-1]))
    family = ("bare" if bare else "templates") + (" decreasing" if down else "")
    description = f"continue {name} ({family}), corrupted by {corruption}"
    return Prompts(spec, f"seqcont {family}", description, clean, corrupt, answers, distractors, used)
