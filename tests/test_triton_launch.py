"""Launch hazards (issue 13, items 1-3): device guard, workspace lifetime, capture safety, tensor seeds/steps,
and that cross-program merges do not depend on the order programs run in."""

from __future__ import annotations

import contextlib
import importlib
import random
import threading

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes

from warmkern import launches, reference
from warmkern import triton as wt
from warmkern.triton import launch, workspace

DEV = "cuda" if torch.cuda.is_available() else "cpu"
B, G, V, MASK = 2, 6, 300, 200
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


def inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    logits = (torch.randn(B, G, V, generator=gen) * 2).to(DEV)
    x = torch.where(torch.rand(B, G, generator=gen) < 0.7, MASK, torch.randint(0, MASK, (B, G), generator=gen))
    prov = (x != MASK) & (torch.rand(B, G, generator=gen) < 0.5)
    return logits, x.to(DEV), prov.to(DEV)


def rows(*vals):
    return torch.tensor(vals, dtype=torch.int64, device=DEV)


def all_launchers(logits, x, prov):
    """One call of every launcher (small shapes, split forced by the caller)."""
    w = torch.randn(V, 8).to(DEV)
    keep = torch.ones(B, G, dtype=torch.bool, device=DEV)
    wt.warm_embed(w, x, x.clone(), keep, mask_id=MASK, alpha=rows(1, 1).float() * 0.5)
    x0, sc, pc = wt.token_stats(logits, x, mask_id=MASK, temperature=0.5, seed=1, step=2)
    wt.select(sc, x0, pc, x.clone(), prov.clone(), mask_id=MASK, lo=rows(0, 1), hi=rows(G, 4), k=rows(2, 1),
              alg_temp=0.5)
    wt.denoise_step(logits, x.clone(), prov.clone(), mask_id=MASK, lo=rows(0, 1), hi=rows(G, 4), k=rows(2, 1))


def test_every_launch_runs_under_its_tensors_device(monkeypatch):
    """Item 1: each kernel launch (and its count) happens inside the device guard of its tensors' device."""
    entered, inside = [], [False]

    @contextlib.contextmanager
    def recording(device):
        entered.append(device)
        inside[0] = True
        try:
            yield
        finally:
            inside[0] = False

    counted = []
    monkeypatch.setattr(launch, "device_context", recording)
    monkeypatch.setattr(launches, "count", lambda op, n=1: counted.append((op, inside[0])))
    monkeypatch.setenv("WARMKERN_TRITON_SPLIT", "2")
    all_launchers(*inputs())
    assert [op for op, _ in counted] == ["warm_embed", "token_stats", "select", "denoise_step"]
    assert all(was_inside for _, was_inside in counted)
    assert entered == [torch.device(DEV)] * 4 or all(d.type == "cuda" for d in entered)


def test_device_guard_targets_the_given_cuda_device():
    guard = launch.device_context(torch.device("cuda", 1))  # constructing it needs no GPU
    assert isinstance(guard, torch.cuda.device) and guard.idx == 1
    assert isinstance(launch.device_context(torch.device("cpu")), contextlib.nullcontext)


def test_workspace_growth_keeps_the_old_buffer_alive():
    """Item 2: a grown workspace is a new buffer; the old one stays referenced (a graph may hold it)."""
    dev = torch.device(DEV)
    small = workspace.get(dev, 8)
    big = workspace.get(dev, small.counters.numel() + 1)
    assert big is not small and any(r is small for r in workspace._RETIRED)
    assert workspace.get(dev, 8) is big  # never shrinks


def test_supplied_workspace_is_used_and_left_zeroed(monkeypatch):
    monkeypatch.setenv("WARMKERN_TRITON_SPLIT", "3")
    monkeypatch.setenv("WARMKERN_TRITON_BLOCK_V", "64")
    logits, x, prov = inputs(1)
    mine = workspace.Workspace.allocate(DEV, 4 * B * G, 4 * B * G, 64 * B * G)
    mine.counters.fill_(0)
    monkeypatch.setattr(workspace.Workspace, "allocate", lambda *a, **k: pytest.fail("allocated its own"))
    with workspace.using(mine):
        got = wt.denoise_step(logits, x, prov, mask_id=MASK, lo=rows(0, 2), hi=rows(G, 5), k=rows(2, 2))
    assert int(mine.counters.abs().sum()) == 0  # counters reset themselves
    assert got[0].shape == (B,)
    with workspace.using(workspace.Workspace(mine.counters[:1], mine.ints[:1], mine.floats[:1])):
        with pytest.raises(ValueError, match="workspace: expected"):
            wt.token_stats(logits, x, mask_id=MASK)


def test_pending_zeroing_happens_before_first_eager_use():
    ws = workspace.Workspace.allocate(DEV, 64)
    ws.counters.fill_(7)
    ws.zero_pending = True  # as if created inside a graph capture
    with workspace.using(ws):
        assert workspace.get(torch.device(DEV), 8) is ws
    assert int(ws.counters.abs().sum()) == 0 and not ws.zero_pending


def test_id_tensors_are_never_evicted():
    dev = torch.device(DEV)
    first = launch.id_tensor((1, 2, 3), dev)
    for i in range(200):
        launch.id_tensor((i, i + 1), dev)
    assert launch.id_tensor((1, 2, 3), dev) is first


class _Allocations(TorchDispatchMode):
    """Counts tensor-creating ATen ops (what could allocate or copy host data during a capture)."""

    MAKERS = ("empty", "zeros", "ones", "full", "new_", "scalar_tensor", "_to_copy", "clone", "lift", "tensor")

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__ if hasattr(func, "__name__") else str(func)
        if any(name.startswith(m) for m in self.MAKERS):
            self.ops.append(name)
        return func(*args, **(kwargs or {}))


def _count_syncs_and_allocations(monkeypatch, fn) -> tuple[int, list[str]]:
    syncs = [0]
    for name in ("__bool__", "item", "tolist", "__int__", "__float__", "__index__"):
        orig = getattr(torch.Tensor, name)

        def counted(self, *a, _orig=orig, **k):
            syncs[0] += 1
            return _orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    run = launch.run

    def kernel_uncounted(*a, **k):  # what the interpreter does to run a kernel is no host code of ours
        with _disable_current_modes():
            saved = syncs[0]
            run(*a, **k)
            syncs[0] = saved

    monkeypatch.setattr(launch, "run", kernel_uncounted)
    with _Allocations() as mode:
        fn()
    return syncs[0], mode.ops


@pytest.mark.parametrize("extras", ["plain", "truncation+prior"])
def test_warm_launches_are_capture_safe(monkeypatch, extras):
    """Item 3: with tensor seed/step and a warm workspace, no host sync and no allocation but the outputs
    (also with the truncation search, the prior and per-row seeds)."""
    monkeypatch.setenv("WARMKERN_TRITON_SPLIT", "2")
    logits, x, prov = inputs(2)
    seed, step = rows(7)[0], rows(3)[0]
    lo, hi, k = rows(0, 1), rows(G, 5), rows(2, 2)
    kw = dict(mask_id=MASK, temperature=0.7, score="margin", row_seeds=seed, step_tensor=step)
    if extras != "plain":
        kw.update(row_seeds=rows(7, 8), top_k=9, top_p=0.9, prior_ids=x.clone(),
                  prior_bias=torch.tensor([1.0, 2.0], device=DEV), pick_suppress_ids=(5,), score_suppress_ids=(6,))
    wt.token_stats(logits, x, **kw)
    wt.denoise_step(logits, x.clone(), prov.clone(), lo=lo, hi=hi, k=k, **kw)  # warm-up: workspace + id lists
    n, ops = _count_syncs_and_allocations(monkeypatch, lambda: wt.token_stats(logits, x, **kw))
    assert n == 0 and len(ops) == 3, (n, ops)  # x0, score, p_cur
    xs, ps = x.clone(), prov.clone()
    n, ops = _count_syncs_and_allocations(
        monkeypatch, lambda: wt.denoise_step(logits, xs, ps, lo=lo, hi=hi, k=k, **kw))
    assert n == 0 and len(ops) == 2, (n, ops)  # n_transfer, n_remask


def test_ops_with_check_values_false_is_capture_safe(monkeypatch):
    """The public ops on the triton backend with check_values=False (int seed/step; lo/hi/k as tensors):
    no host sync, no allocation but the outputs."""
    from warmkern import ops

    logits, x, prov = inputs(8)
    kw = dict(mask_id=MASK, lo=rows(0, 1), hi=rows(G, 5), k=rows(2, 2), temperature=0.5, seed=rows(3, 4),
              step=rows(1)[0], top_p=0.9, alg_temp=0.3, prior_ids=x.clone(), prior_bias=torch.ones(B, device=DEV),
              backend="triton", check_values=False)
    ops.denoise_step(logits, x.clone(), prov.clone(), **kw)
    xs, ps = x.clone(), prov.clone()
    n, made = _count_syncs_and_allocations(monkeypatch, lambda: ops.denoise_step(logits, xs, ps, **kw))
    assert n == 0 and len(made) == 2, (n, made)


def test_tensor_seed_and_step_draw_what_ints_draw():
    logits, x, _ = inputs(3)
    for score in ("prob", "random"):
        kw = dict(mask_id=MASK, temperature=0.9, score=score)
        want = wt.token_stats(logits, x, seed=1234, step=5, **kw)
        for seeds in (rows(1234)[0], rows(1234), rows(1234, 1234)):
            got = wt.token_stats(logits, x, row_seeds=seeds, step_tensor=rows(5)[0], **kw)
            assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_advancing_a_step_tensor_in_place_is_like_passing_the_new_step():
    """What a CUDA-graph replay relies on: the step is read at run time, not baked into the launch."""
    logits, x, _ = inputs(4)
    step = rows(0)[0]
    kw = dict(mask_id=MASK, temperature=1.0, seed=9)
    first = wt.token_stats(logits, x, step_tensor=step, **kw)
    step.fill_(6)
    again = wt.token_stats(logits, x, step_tensor=step, **kw)
    assert torch.equal(again[0], wt.token_stats(logits, x, step=6, **kw)[0])
    assert not torch.equal(again[0], first[0])


def test_per_row_seeds_make_each_row_its_own_batch_of_one():
    """A [B] seed tensor keys each row by its own seed and its position g (the per-row-seed layout): row b
    draws what a batch of one with seed s[b] draws, on this backend and on the reference."""
    logits, x, _ = inputs(5)
    seeds = rows(11, 12345)
    for score in ("prob", "random"):
        kw = dict(mask_id=MASK, temperature=0.8, score=score, step=4)
        got = wt.token_stats(logits, x, row_seeds=seeds, **kw)
        for b in range(B):
            alone = reference.token_stats(logits[b : b + 1].cpu(), x[b : b + 1].cpu(), seed=int(seeds[b]), **kw)
            assert torch.equal(got[0][b].cpu(), alone[0][0])
            torch.testing.assert_close(got[1][b].cpu(), alone[1][0], rtol=1e-5, atol=1e-6)


def test_bad_seed_or_step_tensor_is_named():
    logits, x, _ = inputs(6)
    with pytest.raises(ValueError, match="row_seeds: expected"):
        wt.token_stats(logits, x, mask_id=MASK, row_seeds=torch.zeros(3, dtype=torch.int64, device=DEV))
    with pytest.raises(ValueError, match="step_tensor: expected"):
        wt.token_stats(logits, x, mask_id=MASK, step_tensor=torch.zeros(1, dtype=torch.int32, device=DEV))


def _permuted(monkeypatch, order: str):
    """Run the interpreter's grid in another program order (reverse or shuffled): the last-arriver merges
    must give the same bits whichever program arrives last."""
    interp = importlib.import_module("triton.runtime.interpreter")
    builder = interp.interpreter_builder
    set_dim, set_idx = builder.set_grid_dim, builder.set_grid_idx
    perm = []

    def grid_dim(nx, ny, nz):
        perm[:] = list(range(nx))[::-1] if order == "reverse" else random.Random(nx).sample(range(nx), nx)
        set_dim(nx, ny, nz)

    monkeypatch.setattr(builder, "set_grid_dim", grid_dim)
    monkeypatch.setattr(builder, "set_grid_idx", lambda x, y, z: set_idx(perm[x], y, z))


@pytest.mark.skipif(DEV != "cpu", reason="permutes the interpreter's program loop")
@pytest.mark.parametrize("order", ["reverse", "shuffled"])
@pytest.mark.parametrize("truncation", [False, True])
def test_merges_do_not_depend_on_program_order(order, truncation, monkeypatch):
    """Also with truncation: every split program searches the cutoff on its own, then merges as usual."""
    monkeypatch.setenv("WARMKERN_TRITON_SPLIT", "3")
    monkeypatch.setenv("WARMKERN_TRITON_BLOCK_V", "64")
    monkeypatch.setenv("WARMKERN_TRITON_BLOCK_T", "32")
    logits, x, prov = inputs(7)
    kw = dict(mask_id=MASK, temperature=0.6, score="entropy", seed=3, step=1)
    sel = dict(lo=rows(0, 1), hi=rows(G, 5), factor=1.0, remask_threshold=0.5)
    if truncation:
        kw.update(top_p=0.9, top_k=40, prior_ids=x.clone(), prior_bias=1.5)
        sel = dict(lo=rows(0, 1), hi=rows(G, 5), k=rows(3, 2), alg_temp=0.7)
    want_stats = wt.token_stats(logits, x, **kw)
    xa, pa = x.clone(), prov.clone()
    want_counts = wt.denoise_step(logits, xa, pa, **sel, **kw)
    _permuted(monkeypatch, order)
    got_stats = wt.token_stats(logits, x, **kw)
    xb, pb = x.clone(), prov.clone()
    got_counts = wt.denoise_step(logits, xb, pb, **sel, **kw)
    assert all(torch.equal(a, b) for a, b in zip(got_stats, want_stats))
    assert torch.equal(xb, xa) and torch.equal(pb, pa)
    assert all(torch.equal(a, b) for a, b in zip(got_counts, want_counts))


def _step_in_threads(jobs: list, n_threads: int) -> list:
    """Run each job (a no-argument callable) on its own thread, all started together; their results."""
    results: list = [None] * len(jobs)
    errors: list = []
    start = threading.Barrier(n_threads)

    def work(i: int) -> None:
        try:
            start.wait()
            results[i] = jobs[i]()
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


@pytest.mark.skipif(DEV != "cpu", reason="the interpreter's lock; on a GPU each stream has its own workspace")
def test_concurrent_threads_get_what_sequential_calls_get(monkeypatch):
    """Issue 12.15: denoise_step from two Python threads gave wrong results (shared counters and the
    interpreter's grid state: InterpreterErrors without the lock). Split positions use the counters."""
    monkeypatch.setenv("WARMKERN_TRITON_SPLIT", "3")
    monkeypatch.setenv("WARMKERN_TRITON_BLOCK_V", "64")

    def job(seed: int):
        def run():
            logits, x, prov = inputs(seed)
            out = []
            for step in range(1):
                n = wt.denoise_step(logits, x, prov, mask_id=MASK, lo=rows(0, 1), hi=rows(G, 5), k=rows(2, 1),
                                    temperature=0.8, score="margin", seed=seed, step=step)
                out.append((x.clone(), prov.clone(), *n))
            return out
        return run

    want = [job(s)() for s in (20, 21)]
    got = _step_in_threads([job(20), job(21)], 2)
    for w, g in zip(want, got):
        for a, b in zip(w, g):
            assert all(torch.equal(u, v) for u, v in zip(a, b))
