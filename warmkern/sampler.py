"""`generate`: LLaDA's sampler, drop-in, on warmkern's fused ops — plus Fast-dLLM modes, Dream's
schedule and warm starting from an autoregressive draft.

The loop is semi-autoregressive over blocks of the answer. Inside a block every step is one model
forward and one `ops.denoise_step` on the generation region `x[:, P:]`; per-row counts stay on the
device, so a fixed schedule syncs with the host once per block (to learn how many steps the next
block plans and to check nothing is stuck) plus once per step run beyond the block-start plan (steps
granted to remasked tokens), threshold/factor modes once per step (to stop early).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor

from warmkern import backends, ops, rng
from warmkern import schedule as S
from warmkern.models import ModelAdapter
from warmkern.warmstart import WarmStart

REMASKING = ("low_confidence", "random")


@dataclass
class GenerationStats:
    """What one `generate` call did. Counts are totals over the batch unless said otherwise.

    transfers_per_step / remasks_per_step: one list per denoising step, one int per batch row.
    planned_steps_per_block: the plan made at block start (longest row); steps_per_block: steps run,
    including those granted to remasked tokens (remask_budget='extend') and extra steps.
    nfe_per_row: forwards each row took part in, i.e. what running that row alone costs (rows
    decode exactly as a batch of one; a row sits out steps after it is done).
    survived = injected - remasked: draft tokens that ended in the output as injected.
    time_model_s / time_sampler_s: wall time in model forwards vs everything the sampler does
    (embedding, stats, selection); on CUDA measured with events, so the loop itself never syncs.
    """

    nfe: int = 0
    steps_per_block: list[int] = field(default_factory=list)
    planned_steps_per_block: list[int] = field(default_factory=list)
    transfers_per_step: list[list[int]] = field(default_factory=list)
    remasks_per_step: list[list[int]] = field(default_factory=list)
    nfe_per_row: list[int] = field(default_factory=list)
    injected: int = 0
    survived: int = 0
    remasked: int = 0
    time_model_s: float = 0.0
    time_sampler_s: float = 0.0
    backend: str = ""
    batch_size: int = 0

    @property
    def steps(self) -> int:
        return sum(self.steps_per_block)


class _Clock:
    """Accumulates model vs sampler time; CUDA events (read once at the end) instead of syncs."""

    def __init__(self, device: torch.device, enabled: bool) -> None:
        self.cuda = enabled and device.type == "cuda"
        self.enabled = enabled
        self.spans: dict[str, list] = {"model": [], "sampler": []}
        self.totals = {"model": 0.0, "sampler": 0.0}

    def mark(self) -> object:
        if not self.enabled:
            return None
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def add(self, kind: str, start: object, end: object) -> None:
        if not self.enabled:
            return
        if self.cuda:
            self.spans[kind].append((start, end))
        else:
            self.totals[kind] += end - start  # type: ignore[operator]

    def seconds(self) -> tuple[float, float]:
        if self.cuda:
            torch.cuda.synchronize()
            for kind, spans in self.spans.items():
                self.totals[kind] += sum(a.elapsed_time(b) for a, b in spans) / 1000.0
        return self.totals["model"], self.totals["sampler"]


def _int_arg(name: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ValueError(f"{name}: expected an int >= {lo}, got {value!r}")
    return value


def _check_args(
    prompt: object, attention_mask: object, steps: object, gen_length: object, block_length: object,
    temperature: object, cfg_scale: object, remasking: object, threshold: object, factor: object,
    score: str | None, schedule: str, warm_start: object, seed: object,
) -> str:
    """Validate `generate`'s arguments once (clear errors naming the argument); returns the score mode."""
    if not isinstance(prompt, Tensor) or prompt.dim() != 2 or prompt.dtype != torch.int64:
        got = f"{prompt.dtype} {tuple(prompt.shape)}" if isinstance(prompt, Tensor) else type(prompt).__name__
        raise ValueError(f"prompt: expected an int64 tensor [B, P], got {got}")
    if prompt.shape[0] < 1:
        raise ValueError("prompt: expected at least one row")
    if attention_mask is not None and (
        not isinstance(attention_mask, Tensor) or tuple(attention_mask.shape) != tuple(prompt.shape)
    ):
        got = tuple(attention_mask.shape) if isinstance(attention_mask, Tensor) else type(attention_mask).__name__
        raise ValueError(f"attention_mask: expected a tensor of the prompt's shape {tuple(prompt.shape)}, got {got}")
    steps = _int_arg("steps", steps, 1)
    gen_length = _int_arg("gen_length", gen_length, 1)
    block_length = _int_arg("block_length", block_length, 1)
    if gen_length % block_length:
        raise ValueError(f"block_length: gen_length ({gen_length}) must be a multiple of block_length ({block_length})")
    if schedule not in S.SCHEDULES:
        raise ValueError(f"schedule: expected one of {S.SCHEDULES}, got {schedule!r}")
    n_blocks = gen_length // block_length
    if schedule == "llada" and steps % n_blocks:
        raise ValueError(f"steps: expected a multiple of the number of blocks ({n_blocks}), got {steps}")
    for name, v in (("temperature", temperature), ("cfg_scale", cfg_scale)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not float(v) >= 0.0 or float(v) == float("inf"):
            raise ValueError(f"{name}: expected a finite number >= 0, got {v!r}")
    if remasking not in REMASKING:
        raise ValueError(f"remasking: expected one of {REMASKING}, got {remasking!r}")
    if threshold is not None and factor is not None:
        raise ValueError("threshold/factor: expected at most one of them")
    implied = "random" if remasking == "random" else "prob"
    if score is None:
        score = implied
    elif remasking == "random" and score != "random":
        raise ValueError(f"score: {score!r} conflicts with remasking='random'")
    if warm_start is not None:
        if not isinstance(warm_start, WarmStart):
            raise TypeError(f"warm_start: expected a WarmStart or None, got {type(warm_start).__name__}")
        want = (prompt.shape[0], gen_length)
        if tuple(warm_start.draft.shape) != want:
            got = tuple(warm_start.draft.shape)
            raise ValueError(f"warm_start.draft: expected shape {want} (batch, gen_length), got {got}")
    _int_arg("seed", seed, 0)
    return score


@torch.no_grad()
def generate(
    model,
    prompt: Tensor,
    attention_mask: Tensor | None = None,
    steps: int = 128,
    gen_length: int = 128,
    block_length: int = 128,
    temperature: float = 0.0,
    cfg_scale: float = 0.0,
    remasking: str = "low_confidence",
    mask_id: int = 126336,
    logits_eos_inf: bool = False,
    confidence_eos_eot_inf: bool = False,
    *,
    threshold: float | None = None,
    factor: float | None = None,
    score: str | None = None,
    schedule: str = "llada",
    logits_shift: bool = False,
    eos_id: int = 126081,
    eot_id: int = 126348,
    warm_start: WarmStart | None = None,
    seed: int = 0,
    backend: str | None = None,
    progress: bool = False,
    return_stats: bool = False,
) -> Tensor | tuple[Tensor, GenerationStats]:
    """Sample `gen_length` tokens after `prompt` (left padded, `[B, P]`); returns `[B, P + G]`.

    Cold start reproduces LLaDA's `generate` (same arguments, same tokens at temperature 0; x0 never
    is `mask_id`, ties go to the lower position). Keyword-only extensions:

    - threshold / factor: Fast-dLLM parallel decoding. A block ends once it has no masks; `steps`
      stays an upper bound: a block's last planned step commits everything still masked.
    - score: 'prob' | 'margin' | 'entropy' | 'random' (default from `remasking`).
    - schedule='dream': k = floor(m (1 - s/t)) on linspace(1, 1e-3, n + 1) per block, the rest at
      the last step; with logits_shift=True (position i read at i-1) and one block this is Dream's
      diffusion_generate (maskgit_plus / topk_margin / entropy, no alg_temp, no top-p/top-k).
    - Each block plans ceil(masked_at_block_start * steps / gen_length) steps and runs until it has
      no masks; with remasking on, a block holding injected tokens runs at least one step so the dLLM
      sees each of them. With `warm_start.remask_budget='extend'` (default) a step that remasks nr
      tokens of a row grows that row's plan by ceil(nr * steps / gen_length), so remasked tokens are
      decoded at the cold pace (fixed schedules keep the grown plan on the device: no extra sync
      inside the plan, one per step after it; threshold/factor move their forced last step with it).
      With 'fixed' the plan stays as made at block start and late remasks are decoded in one extra
      step. schedule='dream' keeps Dream's ratios over the block-start plan; its extension steps use
      LLaDA's k = ceil(masked / steps left) (Dream has no notion of a plan that grows).
    - warm_start: see `WarmStart`; its keep mask and all noise come from Philox with `seed`.
    - backend: 'auto' | 'reference' | 'triton' | 'cpu' (ops dispatch); progress: a tqdm bar.
    - return_stats=True returns `(x, GenerationStats)`.
    """
    score = _check_args(
        prompt, attention_mask, steps, gen_length, block_length, temperature, cfg_scale, remasking,
        threshold, factor, score, schedule, warm_start, seed,
    )
    run = _Run(
        ModelAdapter(model, logits_shift=logits_shift), prompt, attention_mask, steps, gen_length, block_length,
        float(temperature), float(cfg_scale), mask_id, score, schedule, threshold, factor,
        (eos_id,) if logits_eos_inf else (), (eos_id, eot_id) if confidence_eos_eot_inf else (),
        warm_start, seed, backend, progress, return_stats,
    )
    x = run.loop()
    return (x, run.stats) if return_stats else x


class _Run:
    """State of one generation (buffers, warm-start tensors, counters); `loop()` does the work."""

    def __init__(
        self, adapter: ModelAdapter, prompt: Tensor, attention_mask: Tensor | None, steps: int, gen_length: int,
        block_length: int, temperature: float, cfg_scale: float, mask_id: int, score: str, schedule: str,
        threshold: float | None, factor: float | None, suppress: tuple[int, ...], demote: tuple[int, ...],
        ws: WarmStart | None, seed: int, backend: str | None, progress: bool, timed: bool,
    ) -> None:
        self.m = adapter
        dev = adapter.device
        self.dev = dev
        self.b, self.p = prompt.shape
        self.g, self.blk, self.steps = gen_length, block_length, steps
        self.mask_id, self.score, self.schedule = mask_id, score, schedule
        self.temperature, self.cfg_scale = temperature, cfg_scale
        self.threshold, self.factor = threshold, factor
        self.suppress, self.demote = suppress, demote
        self.seed = seed
        self.backend = backends.resolve(backend, dev)
        self.score_temperature = "sampling" if schedule == "dream" and temperature > 0 else "none"
        vocab = adapter.vocab_size
        if vocab is not None and not (isinstance(mask_id, int) and 0 <= mask_id < vocab):
            raise ValueError(f"mask_id: expected a token id in [0, {vocab}) (the model's vocabulary), got {mask_id!r}")

        cfg = cfg_scale > 0
        rows = 2 * self.b if cfg else self.b
        self.buf = torch.full((rows, self.p + self.g), mask_id, dtype=torch.int64, device=dev)
        self.x = self.buf[: self.b]
        self.x[:, : self.p] = prompt.to(dev)
        self.cfg = cfg  # the second half keeps the prompt masked and mirrors the answer each step
        self.xg = self.x[:, self.p :]
        am = None
        if attention_mask is not None:
            am = attention_mask.to(dev)
            am = torch.cat([am, torch.ones((self.b, self.g), dtype=am.dtype, device=dev)], dim=1)
            if cfg:
                am = torch.cat([am, am], dim=0)
        self.attn, self.pos_ids = adapter.prepare_attention_mask(am)
        self.prov = torch.zeros((self.b, self.g), dtype=torch.bool, device=dev)

        self.ws = ws
        self.mode = ws.mode if ws is not None else None
        self.remask_threshold = ws.remask_threshold if ws is not None else None
        self.remask_max = ws.remask_max if ws is not None else None
        # Grow a row's block plan by the cold-pace budget of the tokens it remasks (see WarmStart).
        self.grow = ws is not None and ws.remask_threshold is not None and ws.remask_budget == "extend"
        self.injected = torch.zeros((), dtype=torch.int64, device=dev)
        if ws is not None:
            self._setup_warm(ws, vocab)

        self.clock = _Clock(dev, timed)
        self.stats = GenerationStats(backend=self.backend, batch_size=self.b)
        self.step = 0
        self.nt: list[Tensor] = []
        self.nr: list[Tensor] = []
        self.active: list[Tensor] = []
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=steps, desc="warmkern.generate", leave=False)

    # ------------------------------------------------------------------ warm start
    def _setup_warm(self, ws: WarmStart, vocab: int | None) -> None:
        draft = ws.prior().to(self.dev)
        too_big = draft >= vocab if vocab is not None else torch.zeros_like(draft, dtype=torch.bool)
        bad = draft[(draft < -1) | too_big]
        if bad.numel():
            raise ValueError(f"warm_start.draft: expected ids in [-1, {vocab}) (-1 = no prior), got id {int(bad[0])}")
        keep = rng.keep_mask(self.seed, ws.rate, (self.b, self.g), device=self.dev)
        if ws.mode == "token":
            has = keep & (draft >= 0) & (draft != self.mask_id)
            self.xg.copy_(torch.where(has, draft, self.mask_id))
            self.prov.copy_(has)
            self.injected = has.sum()
            return
        if not self.m.accepts_inputs_embeds():
            raise ValueError(
                f"warm_start.mode='embedding': the model ({type(self.m.model).__name__}) does not accept "
                "inputs_embeds; use warm_start.mode='token' instead"
            )
        emb = self.m.embedding()
        rows = self.buf.shape[0]
        no_prior = torch.full((self.b, self.p), -1, dtype=torch.int64, device=self.dev)
        off = torch.zeros((self.b, self.p), dtype=torch.bool, device=self.dev)
        self.draft_full = torch.cat([no_prior, draft], dim=1).repeat(rows // self.b, 1)
        self.keep_full = torch.cat([off, keep], dim=1).repeat(rows // self.b, 1)
        self.emb = emb
        self.embeds = torch.empty((rows, self.p + self.g, emb.weight.shape[1]), dtype=emb.weight.dtype, device=self.dev)

    def _alpha(self, i: int, plan: Tensor) -> Tensor:
        """Per-row alpha at step i of the block: constant, or decaying linearly to 0 over the row's plan."""
        assert self.ws is not None
        a = torch.full((self.b,), self.ws.alpha, dtype=torch.float32, device=self.dev)
        if self.ws.alpha_schedule == "linear":
            a = a * (1.0 - i / plan.clamp(min=1).to(torch.float32)).clamp(min=0.0)
        return a.repeat(self.buf.shape[0] // self.b)

    # ------------------------------------------------------------------ one step
    def _forward(self, i: int, plan: Tensor) -> tuple[Tensor, Tensor | None]:
        t0 = self.clock.mark()
        if self.cfg:
            self.buf[self.b :, self.p :].copy_(self.xg)
        if self.mode == "embedding":
            ops.warm_embed(
                self.emb.weight, self.buf, self.draft_full, self.keep_full, mask_id=self.mask_id,
                alpha=self._alpha(i, plan), scale=self.emb.scale, out=self.embeds, backend=self.backend,
                check_values=self.step == 0,
            )
            t1 = self.clock.mark()
            self.clock.add("sampler", t0, t1)
            logits = self.m.forward(inputs_embeds=self.embeds, attention_mask=self.attn, position_ids=self.pos_ids)
        else:
            t1 = t0
            logits = self.m.forward(input_ids=self.buf, attention_mask=self.attn, position_ids=self.pos_ids)
        self.stats.nfe += 1
        self.clock.add("model", t1, self.clock.mark())
        cond = self.m.region(logits[: self.b], self.p, self.g)
        uncond = self.m.region(logits[self.b :], self.p, self.g) if self.cfg else None
        return cond, uncond

    def _step(self, i: int, plan: Tensor, parts: list[tuple[Tensor, Tensor, Tensor | None]]) -> Tensor:
        """One forward, then the selection rule(s); returns n_remask [B].

        `parts` are (lo, hi, k) over disjoint sets of rows (the others get an empty window); k=None
        means the threshold/factor rule. One part is one fused denoise_step; two parts (rows of a
        threshold batch at different points of their plans) share one token_stats.
        """
        cond, uncond = self._forward(i, plan)
        t0 = self.clock.mark()
        check = self.step == 0
        stats_kw = dict(
            mask_id=self.mask_id, temperature=self.temperature, score=self.score,
            score_temperature=self.score_temperature, suppress_ids=self.suppress, demote_ids=self.demote,
            uncond_logits=uncond, cfg_scale=self.cfg_scale, seed=self.seed, step=self.step,
        )
        rule_kw = dict(remask_threshold=self.remask_threshold, remask_max=self.remask_max, backend=self.backend,
                       check_values=check)
        if len(parts) == 1:
            lo, hi, k = parts[0]
            nt, nr = ops.denoise_step(
                cond, self.xg, self.prov, lo=lo, hi=hi, k=k, threshold=self.threshold if k is None else None,
                factor=self.factor if k is None else None, **stats_kw, **rule_kw,
            )
        else:
            x0, sc, p_cur = ops.token_stats(cond, self.xg, backend=self.backend, check_values=check, **stats_kw)
            nt = nr = torch.zeros((self.b,), dtype=torch.int64, device=self.dev)
            for lo, hi, k in parts:
                a, r = ops.select(
                    sc, x0, p_cur, self.xg, self.prov, mask_id=self.mask_id, lo=lo, hi=hi, k=k,
                    threshold=self.threshold if k is None else None, factor=self.factor if k is None else None,
                    **rule_kw,
                )
                nt, nr = nt + a, nr + r
        self.clock.add("sampler", t0, self.clock.mark())
        self.nt.append(nt)
        self.nr.append(nr)
        self.step += 1
        if self.bar is not None:
            if self.step > self.bar.total:
                self.bar.total = self.step
            self.bar.update(1)
        return nr

    # ------------------------------------------------------------------ blocks
    def _block_counts(self, lo: int, hi: int) -> Tensor:
        """[2, B] device tensor: masked and provisional counts of block [lo, hi)."""
        win_x, win_p = self.xg[:, lo:hi], self.prov[:, lo:hi]
        return torch.stack([(win_x == self.mask_id).sum(1), win_p.sum(1)])

    def _parts(
        self, i: int, plan: list[int], plan_t: Tensor, plan0_t: Tensor, ratios: Tensor | None, lo_i: int, hi_i: int,
        adaptive: bool,
    ) -> list[tuple[Tensor, Tensor, Tensor | None]]:
        """Windows and rule of step i of a block, per row, as a batch-of-one run of that row would do it.

        A row takes part while it has planned steps left (fixed schedules; `plan_t` includes steps
        granted to remasked tokens) or masks left (after its plan, or at any point in threshold/factor
        mode after the first step); the others get an empty window, so a row's tokens never depend on
        which rows share its batch. k is ceil(masked / steps left) (LLaDA; everything once a row's plan
        is used up) or floor(masked (1 - s/t)) (Dream, over the block-start plan `plan0_t`, then LLaDA's
        k over the steps it grew by); threshold/factor rows commit everything at their last planned step.
        """
        masked = (self.xg[:, lo_i:hi_i] == self.mask_id).sum(1)
        active = (masked > 0) | ((plan_t > 0) & (i == 0) if adaptive else plan_t > i)
        self.active.append(active)
        lo, hi = active.long() * lo_i, active.long() * hi_i
        if not adaptive:
            k = S.llada_k(masked, plan_t, i)
            if ratios is not None and i < ratios.shape[1]:
                # At and after a row's last Dream step (ratio 1) llada_k commits everything unless the plan grew.
                k = torch.where(i < plan0_t - 1, S.dream_k(masked, ratios[:, i]), k)
            return [(lo, hi, k)]
        forced = [i >= p - 1 for p in plan]
        if all(forced):
            return [(lo, hi, masked)]
        if not any(forced):
            return [(lo, hi, None)]
        f = torch.tensor(forced, device=self.dev)
        return [(lo * f, hi * f, masked), (lo * ~f, hi * ~f, None)]

    def _extension(self, nr: Tensor) -> Tensor:
        """Steps granted to nr remasked tokens: ceil(nr * steps / gen_length), 0 unless remask_budget='extend'."""
        if not self.grow:
            return torch.zeros_like(nr)
        return (nr * self.steps + self.g - 1) // self.g

    def _extension_host(self, nr: list[int]) -> list[int]:
        return [-(-r * self.steps // self.g) if self.grow else 0 for r in nr]

    def loop(self) -> Tensor:
        n_blocks = self.g // self.blk
        adaptive = self.threshold is not None or self.factor is not None
        warm_token = self.mode == "token"
        verify = warm_token and self.remask_threshold is not None
        counts = self._block_counts(0, self.blk).tolist() if warm_token else [[self.blk] * self.b, [0] * self.b]
        for j in range(n_blocks):
            lo_i, hi_i = j * self.blk, (j + 1) * self.blk
            plan = S.planned_steps(counts[0], self.steps, self.g, [verify and c > 0 for c in counts[1]])
            n_plan = n_plan0 = max(plan)
            plan0_t = torch.tensor(plan, dtype=torch.int64, device=self.dev)
            plan_t = plan0_t  # grows on the device with remasks (remask_budget='extend')
            ratios = S.dream_ratios(plan, n_plan, self.dev) if self.schedule == "dream" and not adaptive else None
            nr = torch.zeros((self.b,), dtype=torch.int64, device=self.dev)
            done_early = n_plan == 0
            i = 0
            while i < n_plan:
                nr = self._step(i, plan_t, self._parts(i, plan, plan_t, plan0_t, ratios, lo_i, hi_i, adaptive))
                i += 1
                if self.grow:
                    plan_t = plan_t + self._extension(nr)
                if not adaptive:
                    continue  # fixed schedules: no sync inside the block-start plan
                if self.grow:
                    # Threshold/factor already sync per step; read the remasks too and move the forced step.
                    m_rows, nr_rows = torch.stack([(self.xg[:, lo_i:hi_i] == self.mask_id).sum(1), nr]).tolist()
                    plan = [p + e for p, e in zip(plan, self._extension_host(nr_rows))]
                    n_plan = max(plan)
                    if not any(m_rows):
                        done_early = True
                        break
                elif i < n_plan and not bool((self.xg[:, lo_i:hi_i] == self.mask_id).any()):
                    done_early = True
                    break
            # One sync per block: is anything left here (remasks, or stuck positions), how far did each
            # row's plan grow, and what does the next block hold (warm start changes its mask count).
            more = warm_token and j + 1 < n_blocks
            probe = [] if done_early else [(self.xg[:, lo_i:hi_i] == self.mask_id).sum(1), nr, plan_t]
            if more:
                probe.extend(self._block_counts(hi_i, hi_i + self.blk))
            host = torch.stack(probe).tolist() if probe else []
            left, last_nr = ([0] * self.b, [0] * self.b) if done_early else (host[0], host[1])
            if not adaptive and not done_early:
                plan = host[2]
            while any(a > 0 or (not adaptive and p > i) for a, p in zip(left, plan)):
                # A row whose last step committed everything (its plan before that step's remasks was
                # used up) holds only what that step remasked, or positions with no finite logit.
                before = [p - e for p, e in zip(plan, self._extension_host(last_nr))]
                stuck = [a - r if pb <= i else 0 for a, r, pb in zip(left, last_nr, before)]
                if any(s > 0 for s in stuck):
                    raise RuntimeError(
                        f"generate: {sum(stuck)} answer position(s) in block {j} have no finite logit for any "
                        "allowed token (NaN or -inf logits), so decoding cannot progress; check the model output "
                        "and suppress_ids"
                    )
                nr = self._step(i, plan_t, self._parts(i, plan, plan_t, plan0_t, ratios, lo_i, hi_i, adaptive))
                i += 1
                if self.grow:
                    plan_t = plan_t + self._extension(nr)
                left, last_nr, grown = torch.stack(
                    [(self.xg[:, lo_i:hi_i] == self.mask_id).sum(1), nr, plan_t]
                ).tolist()
                plan = grown if not adaptive else [p + e for p, e in zip(plan, self._extension_host(last_nr))]
            self.prov[:, lo_i:hi_i] = False  # survivors of a finished block are final
            self.stats.steps_per_block.append(i)
            self.stats.planned_steps_per_block.append(n_plan0)
            if more:
                counts = host[-2:]
        return self._finish()

    def _finish(self) -> Tensor:
        if self.bar is not None:
            self.bar.close()
        st = self.stats
        st.nfe_per_row = [0] * self.b
        if self.nt:
            st.transfers_per_step = torch.stack(self.nt).tolist()
            st.remasks_per_step = torch.stack(self.nr).tolist()
            st.nfe_per_row = torch.stack(self.active).sum(0).tolist()
        st.remasked = sum(sum(r) for r in st.remasks_per_step)
        st.injected = int(self.injected)
        st.survived = st.injected - st.remasked
        st.time_model_s, st.time_sampler_s = self.clock.seconds()
        return self.x.clone() if self.cfg else self.x
