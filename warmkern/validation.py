"""Input validation shared by every backend: clear errors that name the argument, before any kernel.

Shape/dtype/device checks are free (metadata only). Checks of tensor *values* (ids in range, window
bounds, alpha in [0, 1]) need a host sync, so callers inside a hot loop pass check_values=False
after validating once (the sampler does).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch

from warmkern.schema import SCORE_MODES, SCORE_TEMPERATURES, Arg, OpSchema

FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
INT64_MAX = 2**63 - 1
T = TypeVar("T")


def _fail(name: str, expected: str, got: object) -> None:
    raise ValueError(f"{name}: expected {expected}, got {got}")


def check_tensor(
    name: str,
    t: object,
    *,
    dtypes: Sequence[torch.dtype],
    ndim: int,
    shape: Sequence[int | None] | None = None,
    device: torch.device | None = None,
    unit_last_stride: bool = True,
) -> torch.Tensor:
    """Type, dtype, rank, shape (None = any), device and unit last-dim stride of one tensor."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(t).__name__}")
    if t.dtype not in dtypes:
        names = " or ".join(str(d).replace("torch.", "") for d in dtypes)
        raise TypeError(f"{name}: expected dtype {names}, got {str(t.dtype).replace('torch.', '')}")
    if t.dim() != ndim:
        _fail(name, f"{ndim} dimensions", f"shape {tuple(t.shape)}")
    if shape is not None:
        for want, have in zip(shape, t.shape):
            if want is not None and want != have:
                _fail(name, f"shape {tuple('*' if s is None else s for s in shape)}", f"{tuple(t.shape)}")
    if device is not None and t.device != device:
        _fail(name, f"a tensor on {device} (like the other inputs)", f"device {t.device}")
    if unit_last_stride and t.dim() and t.shape[-1] > 1 and t.stride(-1) != 1:
        _fail(name, "a contiguous last dimension (stride 1)", f"stride {t.stride()}")
    return t


def values_ok(name: str, ok: torch.Tensor, expected: str) -> bool:
    """Whether a value check passed; under torch.compile a device-side assert instead (no host sync).

    Value checks read tensor values, which a compiled graph cannot branch on: there the check becomes
    `torch._assert_async` (it fails when the graph runs, with this message), so check_values=True
    still works under torch.compile(fullgraph=True).
    """
    if torch.compiler.is_compiling():
        torch._assert_async(ok.all(), f"{name}: expected {expected}")
        return True
    return bool(ok.all())


def check_ids(name: str, t: torch.Tensor, vocab: int, *, allow_minus_one: bool = False) -> None:
    """Every id in [0, vocab) (or -1 when allowed). Syncs with the device."""
    if t.numel() == 0:
        return
    low = -1 if allow_minus_one else 0
    expected = f"ids in [{low}, {vocab})" + (" (-1 = none)" if allow_minus_one else "")
    if values_ok(name, (t >= low) & (t < vocab), expected):
        return
    lo, hi = int(t.min()), int(t.max())
    if lo < low or hi >= vocab:
        bad = lo if lo < low else hi
        rng = f"[{low}, {vocab})"
        _fail(name, f"ids in {rng}" + (" (-1 = no prior)" if allow_minus_one else ""), f"id {bad}")


def check_id(name: str, value: object, vocab: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int token id, got {type(value).__name__}")
    if not 0 <= value < vocab:
        _fail(name, f"a token id in [0, {vocab})", value)
    return value


def check_id_list(name: str, ids: Sequence[int] | None, vocab: int) -> tuple[int, ...]:
    if ids is None:
        return ()
    if isinstance(ids, int):
        ids = (ids,)
    return tuple(check_id(f"{name}[{i}]", int(v) if not isinstance(v, int) else v, vocab) for i, v in enumerate(ids))


def check_float(name: str, value: object, *, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a float, got {type(value).__name__}")
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        _fail(name, "a finite number", v)
    if lo is not None and v < lo:
        _fail(name, f"a value >= {lo}", v)
    if hi is not None and v > hi:
        _fail(name, f"a value <= {hi}", v)
    return v


def check_int(name: str, value: object, *, lo: int = 0, hi: int = INT64_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if not lo <= value <= hi:
        _fail(name, f"an int in [{lo}, {hi}]", value)
    return value


def check_score(score: object, score_temperature: object, temperature: float) -> None:
    if score not in SCORE_MODES:
        _fail("score", f"one of {SCORE_MODES}", repr(score))
    if score_temperature not in SCORE_TEMPERATURES:
        _fail("score_temperature", f"one of {SCORE_TEMPERATURES}", repr(score_temperature))
    if score_temperature == "sampling" and temperature == 0:
        _fail("score_temperature", "'none' when temperature == 0 ('sampling' divides by T)", "'sampling'")


def _check_range_values(name: str, t: torch.Tensor, lo: float | None, hi: float | None) -> None:
    if t.dtype.is_floating_point and not values_ok(name, torch.isfinite(t), "finite values"):
        _fail(name, "finite values", "a non-finite value")
    if lo is not None and not values_ok(name, t >= lo, f"values >= {lo}"):
        _fail(name, f"values >= {lo}", t.min().item())
    if hi is not None and not values_ok(name, t <= hi, f"values <= {hi}"):
        _fail(name, f"values <= {hi}", t.max().item())


def per_row_tensor(
    name: str, value: object, b: int, device: torch.device, *, dtype: torch.dtype, check_values: bool,
    lo: float | None = None, hi: float | None = None,
) -> torch.Tensor:
    """A python number or a [B] tensor, as a [B] tensor of `dtype` on `device`, range-checked."""
    if isinstance(value, torch.Tensor):
        is_float = dtype.is_floating_point
        is_int = not value.dtype.is_floating_point and value.dtype != torch.bool
        ok = value.dtype.is_floating_point if is_float else is_int
        if not ok:
            raise TypeError(f"{name}: expected a {'float' if is_float else 'integer'} tensor, got {value.dtype}")
        if value.dim() > 1 or (value.dim() == 1 and value.shape[0] != b):
            _fail(name, f"a number or a tensor of shape ({b},)", f"shape {tuple(value.shape)}")
        if value.device != device:
            _fail(name, f"a tensor on {device}", f"device {value.device}")
        t = value.to(dtype).reshape(-1).expand(b).contiguous()
        if check_values and t.numel():
            _check_range_values(name, t, lo, hi)
        return t
    if dtype.is_floating_point:
        v: float | int = check_float(name, value, lo=lo, hi=hi)
    else:
        ilo = int(lo) if lo is not None else -INT64_MAX
        v = check_int(name, value, lo=ilo, hi=int(hi) if hi is not None else INT64_MAX)
    return torch.full((b,), v, dtype=dtype, device=device)


# ----------------------------------------------------------------------------- schema-driven validation
_DTYPES = {
    "float": FLOAT_DTYPES,
    "float32": (torch.float32,),
    "int64": (torch.int64,),
    "bool": (torch.bool,),
}


class _Ctx:
    """What validation has learnt so far: bound shape symbols, the device, the tensors seen."""

    def __init__(self, check_values: bool) -> None:
        self.check_values = check_values
        self.dims: dict[str, int] = {}
        self.device: torch.device | None = None
        self.tensors: dict[str, torch.Tensor] = {}
        self.hidden: dict[str, Any] = {}  # op-level arguments filled in by another argument's check

    def size(self, value: object) -> object:
        """A bound for a range check: a number, or a shape symbol resolved to its size."""
        return self.dims[value] if isinstance(value, str) else value


def _check_tensor_arg(arg: Arg, value: object, ctx: _Ctx) -> torch.Tensor | None:
    if value is None and arg.default is None:
        return None
    shape = [ctx.dims.get(s) for s in arg.shape]
    t = check_tensor(arg.name, value, dtypes=_DTYPES[arg.dtypes], ndim=len(arg.shape), shape=shape, device=ctx.device)
    if ctx.device is None:
        ctx.device = t.device
    for sym, n in zip(arg.shape, t.shape):
        ctx.dims.setdefault(sym, n)
    min_vocab = arg.opt("min_vocab")
    if min_vocab is not None and ctx.dims["V"] < min_vocab:
        _fail(arg.name, f"a vocabulary of at least {min_vocab} entries", f"shape {tuple(t.shape)}")
    same = arg.opt("same_dtype")
    if same is not None and t.dtype != ctx.tensors[same].dtype:
        raise TypeError(f"{arg.name}: expected dtype {_dtype_name(ctx.tensors[same].dtype)} (like {same}), "
                        f"got {_dtype_name(t.dtype)}")
    if arg.mutable:
        check_writable(arg.name, t)
    ids = arg.opt("ids")
    if ids is not None and ctx.check_values:
        check_ids(arg.name, t, ctx.dims[ids], allow_minus_one=arg.opt("allow_minus_one", False))
    ctx.tensors[arg.name] = t
    return t


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def check_writable(name: str, t: torch.Tensor) -> None:
    """A tensor an op writes in place: no internal overlap, not an inference tensor outside inference
    mode, no autograd history (the same error on every backend, before any kernel runs)."""
    if torch.compiler.is_compiling():
        # Dynamo cannot trace these tests (int-returning op, is_inference); under torch.compile the graph's
        # inputs are functionalized, and the cpu kernels re-check overlap and inference tensors themselves.
        return
    if torch._debug_has_internal_overlap(t) == 1:  # 1 = MemOverlap::Yes (e.g. an expanded, stride-0 view)
        _fail(name, "a tensor without internal overlap (it is written in place)", f"stride {t.stride()}")
    if t.is_inference() and not torch.is_inference_mode_enabled():
        _fail(name, "a tensor that can be written in place", "an inference tensor outside torch.inference_mode()")
    if t.requires_grad:
        _fail(name, "a tensor that does not require grad (it is written in place)", "requires_grad=True")


def _check_out_arg(arg: Arg, value: object, ctx: _Ctx) -> torch.Tensor:
    """warm_embed's optional output: allocated here when absent, else weight's dtype, [B, G, D], contiguous."""
    weight = ctx.tensors["weight"]
    shape = (ctx.dims["B"], ctx.dims["G"], ctx.dims["D"])
    if value is None:
        return torch.empty(shape, dtype=weight.dtype, device=ctx.device)
    out = check_tensor(arg.name, value, dtypes=(weight.dtype,), ndim=3, shape=shape, device=ctx.device)
    if not out.is_contiguous():
        _fail(arg.name, "a contiguous tensor", f"stride {out.stride()}")
    check_writable(arg.name, out)
    return out


def _check_status_arg(arg: Arg, value: object, ctx: _Ctx) -> torch.Tensor | None:
    """warm_embed's optional error flag: an int32 [1] tensor on the inputs' device."""
    if value is None:
        return None
    t = check_tensor(arg.name, value, dtypes=(torch.int32,), ndim=1, shape=(1,), device=ctx.device)
    check_writable(arg.name, t)
    return t


def _check_scalar_or_tensor(arg: Arg, value: object, ctx: _Ctx, *, hidden: str, hi: int, rows: bool) -> int:
    """`seed` / `step`: a Python int (returned), or an int64 device tensor moved to ctx.hidden[hidden].

    seed tensors may be 0-d, [1] or [B] (per-row seeds; expanded to [B] without a copy); step tensors
    0-d or [1]. Tensor values are range-checked with check_values (a host sync).
    """
    if not isinstance(value, torch.Tensor):
        return check_int(arg.name, value, lo=0, hi=hi)
    shapes = [(), (1,)] + ([(ctx.dims["B"],)] if rows else [])
    if value.dtype != torch.int64:
        raise TypeError(f"{arg.name}: expected an int or an int64 tensor, got dtype {_dtype_name(value.dtype)}")
    if tuple(value.shape) not in shapes:
        want = " or ".join(str(x) for x in shapes)
        _fail(arg.name, f"an int or a tensor of shape {want}", f"shape {tuple(value.shape)}")
    if value.device != ctx.device:
        _fail(arg.name, f"a tensor on {ctx.device}", f"device {value.device}")
    if ctx.check_values and value.numel():
        _check_range_values(arg.name, value, 0, hi)
    ctx.hidden[hidden] = value.reshape(-1).expand(ctx.dims["B"]) if rows else value.reshape(())
    return 0


def _check_float_arg(arg: Arg, value: object, ctx: _Ctx) -> float | None:
    if value is None and arg.default is None:
        return None
    v = check_float(arg.name, value, lo=arg.opt("lo"), hi=arg.opt("hi"))
    if arg.opt("finite_inverse") and v > 0 and not _fp32_finite(1.0 / v):
        _fail(arg.name, "0 or a value whose fp32 inverse is finite (>= ~2.9e-39)", v)
    return v


def _fp32_finite(x: float) -> bool:
    """Whether x rounds to a finite fp32, in plain Python (no tensor: check_values=False stays free of
    host syncs and allocations). struct rounds to nearest-even (raising or giving inf on overflow)."""
    try:
        return math.isfinite(struct.unpack("f", struct.pack("f", x))[0])
    except OverflowError:
        return False


def _check_int_arg(arg: Arg, value: object, ctx: _Ctx) -> int | None:
    if value is None and arg.default is None:
        return None
    return check_int(arg.name, value, lo=arg.opt("lo", 0), hi=arg.opt("hi", INT64_MAX))


def _check_choice_arg(arg: Arg, value: object, ctx: _Ctx) -> str:
    choices = arg.opt("choices")
    if value not in choices:
        _fail(arg.name, f"one of {choices}", repr(value))
    return value  # type: ignore[return-value]


def _check_per_row_arg(arg: Arg, value: object, ctx: _Ctx) -> torch.Tensor | None:
    only_with = arg.opt("only_with")
    if only_with is not None:
        if ctx.tensors.get(only_with) is None:
            return None
        if value is None:
            _fail(arg.name, f"a float or a [B] tensor when {only_with} is given", None)
    if value is None and arg.default is None:
        return None
    dtype = getattr(torch, arg.opt("dtype"))
    lo, hi = arg.opt("lo"), arg.opt("hi")
    return per_row_tensor(arg.name, value, ctx.dims["B"], ctx.device, dtype=dtype, check_values=ctx.check_values,
                          lo=None if lo is None else ctx.size(lo), hi=None if hi is None else ctx.size(hi))


def _check_vocab_total_arg(arg: Arg, value: object, ctx: _Ctx) -> int:
    """A shard op's whole-vocabulary size: binds the symbol VT that global ids are checked against."""
    total = check_int(arg.name, value, lo=2)
    ctx.dims["VT"] = total
    return total


CHECKS = {
    "tensor": _check_tensor_arg,
    "out": _check_out_arg,
    "token_id": lambda arg, value, ctx: check_id(arg.name, value, ctx.dims[arg.opt("vocab", "V")]),
    "id_list": lambda arg, value, ctx: check_id_list(arg.name, value, ctx.dims[arg.opt("vocab", "V")]),
    "vocab_total": _check_vocab_total_arg,
    "float": _check_float_arg,
    "int": _check_int_arg,
    "choice": _check_choice_arg,
    "per_row": _check_per_row_arg,
    "status": _check_status_arg,
    "seed": lambda arg, value, ctx: _check_scalar_or_tensor(arg, value, ctx, hidden="row_seeds", hi=INT64_MAX,
                                                            rows=True),
    "step": lambda arg, value, ctx: _check_scalar_or_tensor(arg, value, ctx, hidden="step_tensor", hi=2**32 - 1,
                                                            rows=False),
    "hidden": lambda arg, value, ctx: ctx.hidden.get(arg.name, arg.default),
}


def _rule_score_temperature(v: dict[str, Any], ctx: _Ctx) -> None:
    if v["score_temperature"] == "sampling" and v["temperature"] == 0:
        _fail("score_temperature", "'none' when temperature == 0 ('sampling' divides by T)", "'sampling'")


def _rule_one_rule(v: dict[str, Any], ctx: _Ctx) -> None:
    chosen = [n for n in ("k", "threshold", "factor") if v[n] is not None]
    if len(chosen) != 1:
        raise ValueError(f"k/threshold/factor: expected exactly one of them, got {chosen or 'none'}")


def _rule_window(v: dict[str, Any], ctx: _Ctx) -> None:
    if ctx.check_values and not values_ok("lo/hi", v["lo"] <= v["hi"], "lo <= hi for every row"):
        raise ValueError("lo/hi: expected lo <= hi for every row")


def _rule_alg_temp(v: dict[str, Any], ctx: _Ctx) -> None:
    if v["alg_temp"] > 0 and v["k"] is None:
        _fail("alg_temp", "0 unless the top-k rule (k) is used (Dream draws k positions)", v["alg_temp"])


def _rule_vocab_slice(v: dict[str, Any], ctx: _Ctx) -> None:
    end = v["vocab_start"] + ctx.dims["V"]
    if end > v["vocab_total"]:
        _fail("vocab_start", f"a shard inside the vocabulary (vocab_start + {ctx.dims['V']} <= vocab_total = "
              f"{v['vocab_total']})", v["vocab_start"])


RULES = {
    "score_temperature": _rule_score_temperature,
    "one_rule": _rule_one_rule,
    "window": _rule_window,
    "alg_temp": _rule_alg_temp,
    "vocab_slice": _rule_vocab_slice,
}


def validate(op: OpSchema, values: dict[str, Any], check_values: bool) -> tuple[dict[str, Any], torch.device]:
    """Check and normalise one call's arguments by the op's schema (warmkern.schema), in table order.

    Returns the values the backends get (per-row arguments as [B] tensors, id lists as tuples,
    warm_embed's `out` allocated) and the device of the call. Value checks that need a host sync
    run only with check_values.
    """
    ctx = _Ctx(check_values)
    out = {arg.name: CHECKS[arg.check](arg, values[arg.name], ctx) for arg in op.args}
    for rule in op.rules:
        RULES[rule](out, ctx)
    assert ctx.device is not None  # every op has a required tensor argument
    return out, ctx.device


# ----------------------------------------------------------------------------- shared by generate / WarmStart
# The rule everywhere: a wrong *type* raises TypeError, the right type with a bad *value* raises ValueError,
# and the message reads "name: expected ..., got ...".
class DTypeError(TypeError, ValueError):
    """A tensor of the wrong dtype. A TypeError by the rule; also a ValueError because `generate` raised
    ValueError for a non-int64 prompt before the dialects were unified, and callers may catch that."""


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """One of a fixed set of strings (same message as check_score for a string outside the set)."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected one of {tuple(choices)}, got {type(value).__name__}")
    if value not in choices:
        _fail(name, f"one of {tuple(choices)}", repr(value))
    return value


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, got {type(value).__name__}")
    return value


def optional(check: Callable[..., T], name: str, value: object, **bounds: object) -> T | None:
    """None passes through; anything else goes through `check(name, value, **bounds)`."""
    return None if value is None else check(name, value, **bounds)
