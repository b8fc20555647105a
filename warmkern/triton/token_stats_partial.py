"""token_stats_partial: the partial state of token_stats over one vocabulary shard (spec: warmkern.partial.state).

The one-device vocabulary pass of `stats_pass` (same loop, same per-tile update and lane merge) with two
changes: ids and Philox counters use the global index vocab_start + v (counter row length
ceil(vocab_total / 4), row position_offset + g; a shard whose start is not a multiple of 4 draws its
noise entry by entry, SAMPLE == 2), and the epilogue stores the STATE_WIDTH fields instead of finalising.
Truncation was decided before (`cutoff`, per position), so the kernel never searches for it.
Grid (B*G,): one program per position (a shard is already a slice of the vocabulary; no split).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from warmkern.schema import STATE_WIDTH
from warmkern.triton import config, launch
from warmkern.triton.common import noise_key
from warmkern.triton.stats_pass import add_specials, chunk_state, count_plain_inf, current_zt, prior_of
from warmkern.triton.token_stats import MODES, Plan, packed, prior_args

NINF = tl.constexpr(float("-inf"))
WIDTH = tl.constexpr(STATE_WIDTH)


@triton.jit
def store_state(out, m, s, acc, m1, t2, best, idx, ztb, n_inf, zt_cur, vocab_start, MODE: tl.constexpr):
    """The state.py fields of one position from the loop's state (+ specials): the spec's conventions for
    empty softmaxes (s = 0), +inf maxima (s counts the +inf entries) and unused fields (ent 0, c1 = c2 = -inf)."""
    s = tl.where(m == float("inf"), n_inf.to(tl.float32), tl.where(m == NINF, 0.0, s))
    ent = 0.0
    if MODE == 2:
        ent = tl.where((m > NINF) & (m < float("inf")), acc, 0.0)
    c1 = tl.full([], NINF, tl.float32)
    c2 = c1
    if MODE == 1:
        c1 = m1
        c2 = t2
    tl.store(out + 0, best)
    tl.store(out + 1, (idx + vocab_start).to(tl.int32).to(tl.float32, bitcast=True))
    tl.store(out + 2, ztb)
    tl.store(out + 3, (best > NINF).to(tl.float32))
    tl.store(out + 4, m)
    tl.store(out + 5, s)
    tl.store(out + 6, ent)
    tl.store(out + 7, c1)
    tl.store(out + 8, c2)
    tl.store(out + 9, zt_cur)


@triton.jit
def token_stats_partial_kernel(logits_ptr, sl_b, sl_g, uncond_ptr, su_b, su_g, x_ptr, sx_b, G, V, vocab_start, groups,
                               mask_id, inv_t, cfg1, sp_ptr, n_sp, seed, seed_stride, step, prior_ptr, spr_b, bias_ptr,
                               spr_bias, cut_ptr, sc_b, sc_g, position_offset, out_ptr, HAS_CFG: tl.constexpr,
                               SAMPLE: tl.constexpr, SCALE_T: tl.constexpr, MODE: tl.constexpr,
                               SEED_MODE: tl.constexpr, STEP_PTR: tl.constexpr, PACKED: tl.constexpr,
                               PRIOR: tl.constexpr, TRUNC: tl.constexpr, BLOCK: tl.constexpr, TR: tl.constexpr,
                               TE: tl.constexpr):
    """Grid (B*G,): program -> position (b, g); writes out[b, g, :STATE_WIDTH]."""
    HAS_PRIOR: tl.constexpr = PRIOR != 0
    pid = tl.program_id(0)
    b64 = (pid // G).to(tl.int64)
    g64 = (pid % G).to(tl.int64)
    row_ptr = logits_ptr + b64 * sl_b + g64 * sl_g
    urow_ptr = uncond_ptr + b64 * su_b + g64 * su_g
    key, row, st = noise_key(seed, seed_stride, step, b64, g64 + position_offset, SEED_MODE, STEP_PTR)
    prior, bias = prior_of(prior_ptr, spr_b, bias_ptr, spr_bias, b64, g64, PRIOR)
    prior = prior - vocab_start  # shard-local ids from here on: a prior elsewhere never lands in a tile
    cut = float("-inf")
    if TRUNC:
        cut = tl.load(cut_ptr + b64 * sc_b + g64 * sc_g).to(tl.float32)
    xg = tl.load(x_ptr + b64 * sx_b + g64)
    xl = (xg - vocab_start).to(tl.int32)
    zt_cur = current_zt(row_ptr, urow_ptr, xl, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, cut, HAS_CFG, SCALE_T,
                        HAS_PRIOR, TRUNC)
    zt_cur = tl.where((xl >= 0) & (xl < V) & (xg != mask_id), zt_cur, NINF)
    m, s, acc, t2, best, idx, ztb = chunk_state(row_ptr, urow_ptr, 0, (V + BLOCK - 1) // BLOCK, V // BLOCK, V,
                                                vocab_start, groups, sp_ptr, n_sp, cfg1, inv_t, prior, bias, cut, key,
                                                st, row, HAS_CFG, SAMPLE, SCALE_T, MODE, PACKED, HAS_PRIOR, TRUNC,
                                                BLOCK)
    m1 = m  # margin: the two largest plain values (the specials are never candidates with a finite zt)
    n_inf = tl.zeros([], tl.int32)
    if m == float("inf"):
        n_inf = count_plain_inf(row_ptr, urow_ptr, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, cut, HAS_CFG, SCALE_T,
                                HAS_PRIOR, TRUNC, TR, TE)
    m, s, acc, best, idx, ztb, n_inf = add_specials(m, s, acc, best, idx, ztb, n_inf, row_ptr, urow_ptr, V,
                                                    vocab_start, groups, sp_ptr, n_sp, cfg1, inv_t, prior, bias, cut,
                                                    key, st, row, HAS_CFG, SAMPLE, SCALE_T, HAS_PRIOR, TRUNC)
    if best == float("-inf"):  # dead: the spec's argmax of an all -inf row is its first entry
        idx = tl.zeros_like(idx)
        first = tl.zeros([], tl.int32)
        ztb = current_zt(row_ptr, urow_ptr, first, V, sp_ptr, n_sp, cfg1, inv_t, prior, bias, cut, HAS_CFG, SCALE_T,
                         HAS_PRIOR, TRUNC)
    out = out_ptr + (b64 * G + g64) * WIDTH
    store_state(out, m, s, acc, m1, t2, best, idx, ztb, n_inf, zt_cur, vocab_start, MODE)


def _cutoff_args(cutoff, logits) -> tuple[list, bool]:
    """([pointer, row stride, column stride], TRUNC) of the per-position cutoff (the logits stand in when None)."""
    if cutoff is None:
        return [logits, 0, 0], False
    return [cutoff, cutoff.stride(0), cutoff.stride(1)], True


def plan(logits, x, *, vocab_start, vocab_total, uncond_logits=None, mask_id, temperature=0.0, score="prob",
         score_temperature="none", suppress_ids=(), pick_suppress_ids=(), score_suppress_ids=(), cfg_scale=0.0,
         seed=0, row_seeds=None, step=0, step_tensor=None, prior_ids=None, prior_bias=None, cutoff=None,
         position_offset=0, cc=None) -> Plan:
    """The launch for these inputs (meta tensors and `cc` give the plan a target compiles, see aot)."""
    b, g, v = logits.shape
    dev = logits.device
    seed_v, seed_stride, seed_mode = launch.seed_arg(seed, row_seeds, b, dev)
    step_v, step_ptr = launch.step_arg(step, step_tensor, dev)
    sp, n_sp = launch.shard_special_ids(mask_id, suppress_ids, pick_suppress_ids, score_suppress_ids, vocab_start, v,
                                        vocab_total, dev)
    prior, prior_mode = prior_args(prior_ids, prior_bias, logits)
    cut, trunc = _cutoff_args(cutoff, logits)
    u = uncond_logits if uncond_logits is not None else logits
    sample = temperature > 0
    cfg = config.stats_tile(v, config.on_gpu(dev), sample, config.capability(dev, cc), trunc, prior_mode != 0,
                            uncond_logits is not None, score in ("margin", "entropy"))
    out = torch.empty((b, g, STATE_WIDTH), dtype=torch.float32, device=dev)
    args = [logits, logits.stride(0), logits.stride(1), u, u.stride(0), u.stride(1), x, x.stride(0), g, v,
            int(vocab_start), (int(vocab_total) + 3) // 4, mask_id,
            launch.fp32(1.0 / temperature if sample else 1.0), launch.fp32(cfg_scale + 1.0), sp, n_sp, seed_v,
            seed_stride, step_v, *prior, *cut, int(position_offset), out]
    meta = dict(HAS_CFG=uncond_logits is not None, SAMPLE=(2 if vocab_start % 4 else 1) if sample else 0,
                SCALE_T=score_temperature == "sampling", MODE=MODES[score], SEED_MODE=seed_mode, STEP_PTR=step_ptr,
                PACKED=packed(logits, u), PRIOR=prior_mode, TRUNC=trunc, BLOCK=cfg.block_v,
                TR=cfg.block_t // cfg.trunc_e, TE=cfg.trunc_e, num_warps=cfg.num_warps, enable_fp_fusion=False)
    if cfg.maxnreg:
        meta["maxnreg"] = cfg.maxnreg
    return Plan(token_stats_partial_kernel, (b * g,), args, meta, cfg, (out,))


def token_stats_partial(logits, x, *, vocab_start, vocab_total, uncond_logits=None, mask_id, temperature=0.0,
                        score="prob", score_temperature="none", suppress_ids=(), pick_suppress_ids=(),
                        score_suppress_ids=(), cfg_scale=0.0, seed=0, row_seeds=None, step=0, step_tensor=None,
                        prior_ids=None, prior_bias=None, cutoff=None, position_offset=0):
    """Triton token_stats_partial (the reference's signature): [B, G, STATE_WIDTH] fp32, one launch, one pass over
    the shard (plus one to count +inf entries in the rare position whose score softmax has one)."""
    b, g, _ = logits.shape
    if b * g == 0:
        return torch.empty((b, g, STATE_WIDTH), dtype=torch.float32, device=logits.device)
    with launch.serialised(logits.device):
        p = plan(logits, x, vocab_start=vocab_start, vocab_total=vocab_total, uncond_logits=uncond_logits,
                 mask_id=mask_id, temperature=temperature, score=score, score_temperature=score_temperature,
                 suppress_ids=tuple(suppress_ids), pick_suppress_ids=tuple(pick_suppress_ids),
                 score_suppress_ids=tuple(score_suppress_ids), cfg_scale=cfg_scale, seed=seed, row_seeds=row_seeds,
                 step=step, step_tensor=step_tensor, prior_ids=prior_ids, prior_bias=prior_bias, cutoff=cutoff,
                 position_offset=position_offset)
        launch.run(p.kernel, p.grid, p.args, p.meta, device=logits.device, op="token_stats_partial")
    return p.outputs[0]
