"""GSM8K-shaped arithmetic word problems with checkable answers, generated from templates.

Each solution line is one small local computation (`17 + 8 = 25`) so a few-million-parameter model can
learn it on CPU in under an hour. Splits use disjoint seed streams: train is drawn on the fly, validation
is for tuning only, test is for reporting only.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

NAMES = (
    "Mia", "Tom", "Ava", "Leo", "Zoe", "Sam", "Ivy", "Ben", "Eva", "Max", "Amy", "Dan",
    "Lily", "Noah", "Emma", "Jack", "Ruby", "Omar", "Nina", "Paul", "Rosa", "Ken", "Sara", "Luis",
)
OBJECTS = (
    "apples", "pens", "cards", "books", "stickers", "marbles", "coins", "shells", "eggs", "cookies",
    "stamps", "balls", "toys", "rocks", "beads", "candies", "flowers", "pencils", "boxes", "cups",
)
START = (
    "{n} has {a} {o} .",
    "{n} owns {a} {o} .",
    "{n} starts with {a} {o} .",
)
ADD = (
    "{n} buys {k} more .",
    "{n} finds {k} more .",
    "{n} gets {k} more {o} .",
    "{n} wins {k} more .",
)
SUB = (
    "{n} gives away {k} .",
    "{n} loses {k} {o} .",
    "{n} sells {k} .",
    "{n} drops {k} .",
)
DOUBLE = (
    "The {o} double .",
    "{n} doubles the {o} .",
)
QUESTION = (
    "How many {o} does {n} have ?",
    "How many {o} are left ?",
    "How many {o} now ?",
)
SEEDS = {"train": 1_000_003, "validation": 2_000_003, "test": 3_000_017}
MAX_VALUE = 40
MAX_STEP = 5


@dataclass(frozen=True)
class Problem:
    prompt: str
    solution: str  # worked lines + "#### answer", lines separated by "\n"
    answer: int


def make_problem(rng: random.Random, min_ops: int = 2, max_ops: int = 3) -> Problem:
    """One problem: a start value, 2-3 +/-/double steps on small integers, values kept in 0..40."""
    n, o = rng.choice(NAMES), rng.choice(OBJECTS)
    x = rng.randint(2, 12)
    sents = [rng.choice(START).format(n=n, a=x, o=o)]
    lines = []
    for _ in range(rng.randint(min_ops, max_ops)):
        kind = rng.random()
        if kind < 0.15 and 2 * x <= MAX_VALUE:
            y = 2 * x
            sents.append(rng.choice(DOUBLE).format(n=n, o=o))
            lines.append(f"{x} * 2 = {y}")
        elif (kind < 0.575 and x >= 2) or x >= MAX_VALUE:
            k = rng.randint(1, min(MAX_STEP, x - 1))
            y = x - k
            sents.append(rng.choice(SUB).format(n=n, k=k, o=o))
            lines.append(f"{x} - {k} = {y}")
        else:
            k = rng.randint(1, min(MAX_STEP, MAX_VALUE - x))
            y = x + k
            sents.append(rng.choice(ADD).format(n=n, k=k, o=o))
            lines.append(f"{x} + {k} = {y}")
        x = y
    sents.append(rng.choice(QUESTION).format(n=n, o=o))
    lines.append(f"#### {x}")
    return Problem(prompt=" ".join(sents), solution="\n".join(lines), answer=x)


def problems(split: str, n: int, offset: int = 0) -> list[Problem]:
    """The first `n` problems (after `offset`) of a fixed split; identical on every call and machine."""
    rng = random.Random(SEEDS[split])
    out = [make_problem(rng) for _ in range(offset + n)]
    return out[offset:]


def train_stream(seed: int = 0):
    """Endless training problems; the seed stream is disjoint from validation/test by construction."""
    rng = random.Random(SEEDS["train"] + seed)
    while True:
        yield make_problem(rng)


_ANSWER = re.compile(r"####\s*(-?[\d\s]+)")


def extract_answer(text: str) -> int | None:
    """Final answer after the last `####` (digits may be space-separated after detokenization)."""
    hits = _ANSWER.findall(text)
    if not hits:
        return None
    digits = re.sub(r"\s+", "", hits[-1].split("\n")[0]) if "\n" in hits[-1] else re.sub(r"\s+", "", hits[-1])
    try:
        return int(digits)
    except ValueError:
        return None
