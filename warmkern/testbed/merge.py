"""`warmkern eval --json PATH --merge`: add or re-measure some rows of a saved table without re-running the rest.

A row is identified by (dLLM, block length, row key). The saved table and the new run must describe the same
measurement (split, n, seed, batch, G), else merging would mix problems; that is checked before anything is
computed. Rows the new run measured replace the saved ones; the others are kept as they were, with the run
that measured them recorded in `runs`. Table order: the drafter first, then per (dLLM, block length) in
`ROW_KEYS` order. "NFE vs cold" is recomputed against the merged table's cold top-k row.
"""

from __future__ import annotations

import json
from pathlib import Path

from warmkern.testbed.methods import ROW_KEYS, methods_from_hparams

SAME = ("split", "n", "seed", "batch", "gen_length")  # what makes two runs' rows comparable


def mismatch(path: Path, meta: dict) -> str | None:
    """Why the table at `path` cannot take rows measured as `meta` describes (None: it can, or it is absent)."""
    if not path.exists():
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        return f"cannot read {str(path)!r} ({err})"
    if not isinstance(old, dict) or not isinstance(old.get("rows"), list):
        return f"{str(path)!r} is not a `warmkern eval --json` table"
    diff = [f"{k} {old.get(k)!r} there, {meta[k]!r} here" for k in SAME if old.get(k) != meta[k]]
    return "; ".join(diff) or None


def _key(row: dict, hparams: dict) -> str:
    """The row key of a saved row; tables written before rows carried one are matched by method name."""
    if row.get("key"):
        return row["key"]
    if row["dllm"] is None:
        return "drafter"
    names = {m.name: m.key for m in methods_from_hparams(hparams.get(row["dllm"], {"tau": None}))}
    if row["method"] not in names:
        raise ValueError(f"--merge: cannot tell which row {row['method']!r} ({row['dllm']}) is")
    return names[row["method"]]


def _order(rows: list[dict]) -> list[dict]:
    dllms = list(dict.fromkeys(r["dllm"] for r in rows if r["dllm"] is not None))
    blocks = list(dict.fromkeys(r["block_length"] for r in rows if r["block_length"] is not None))

    def rank(r: dict) -> tuple:
        if r["dllm"] is None:
            return (-1, -1, -1)
        return dllms.index(r["dllm"]), blocks.index(r["block_length"]), ROW_KEYS.index(r["key"])

    return sorted(rows, key=rank)


def _nfe_change(rows: list[dict]) -> None:
    cold = {(r["dllm"], r["block_length"]): r["mean_nfe"] for r in rows if r["key"] == "cold_topk"}
    for r in rows:
        base = cold.get((r["dllm"], r["block_length"]))
        r["nfe_change"] = r["mean_nfe"] / base - 1 if (r["mean_nfe"] is not None and base) else None


def merge(old: dict, new: dict) -> dict:
    """The table `old` with the rows of `new` added or replacing theirs (see the module docstring)."""
    old_rows = [dict(r, key=_key(r, old.get("hparams", {}))) for r in old["rows"]]
    redone = {(r["dllm"], r["block_length"], r["key"]) for r in new["rows"]}
    kept = [r for r in old_rows if (r["dllm"], r["block_length"], r["key"]) not in redone]
    rows = _order(kept + new["rows"])
    _nfe_change(rows)
    runs = old.get("runs") or [{"rows": "all rows of the table before the first merge"}]
    blocks = list(dict.fromkeys([*old.get("block_lengths", []), *new["block_lengths"]]))
    merged = old | {k: v for k, v in new.items() if k not in ("rows", "runs")}
    merged.update(rows=rows, block_lengths=blocks, runs=[*runs, *new.get("runs", [])],
                  hparams=old.get("hparams", {}) | new["hparams"],
                  hparams_tuned=old.get("hparams_tuned", {}) | new["hparams_tuned"],
                  alone_n=old.get("alone_n", new["alone_n"]))
    return merged
