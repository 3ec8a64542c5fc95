"""Greater-than (Hanna et al. 2023): "The war lasted from the year 17YY to the year 17" -> a year after YY.

circuitdb's metric is a logit difference of single tokens, so the answer is YY+1 and the distractor YY-1 (the nearest
year on each side), not the paper's probability-mass difference; corrupted prompts use the year 1701 as in the paper.
"""

from __future__ import annotations

import random

from circuitdb.discovery.tasks import Prompts

NOUNS = ["war", "expedition", "project", "voyage", "dynasty", "trial", "reign", "siege", "treaty", "campaign"]
TEMPLATE = "The {noun} lasted from the year 17{yy} to the year 17"


def greater_than_prompts(n_prompts: int, seed: int = 0) -> Prompts:
    """`n_prompts` pairs with YY in 02..97, deterministic for a seed."""
    rng = random.Random(seed)
    clean, corrupt, answers, distractors = [], [], [], []
    for _ in range(n_prompts):
        noun, yy = rng.choice(NOUNS), rng.randint(2, 97)
        clean.append(TEMPLATE.format(noun=noun, yy=f"{yy:02d}"))
        corrupt.append(TEMPLATE.format(noun=noun, yy="01"))
        answers.append(f"{yy + 1:02d}")
        distractors.append(f"{yy - 1:02d}")
    return Prompts("greater_than", "greater-than", "name a year after 17YY (answer YY+1 vs YY-1)", clean, corrupt, answers,
                   distractors)
