"""CHECK-ONLY workarounds + tracing for scripts/sglang_check.sh on a CPU-only host (never part of warmkern).

Put this folder on PYTHONPATH and every Python process of the engine (the engine, the tokenizer/
detokenizer and each TP scheduler, all spawned) runs this file at start-up:
1. Only with WARMKERN_CHECK_CPU=1: after `sglang.srt.distributed.parallel_state` is imported, TP groups
   are built with use_pynccl=False and no custom all-reduce (sglang 0.5.23 otherwise constructs a NCCL
   communicator with a CPU device and fails); collectives then use torch.distributed (gloo) on CPU
   tensors, sglang's own CPU fallback.
2. Only with WARMKERN_CHECK_DUMMY_RANGE=a: `--load-format dummy` draws weights from U(-a, a) instead of
   sglang's U(-1e-3, 1e-3), whose logits are all ~0 (every confidence ~1/V, so every rule commits one
   token a step); a wider range gives a decisive random model.
3. Tracing (only with WARMKERN_CHECK_TRACE=path): each call of the plugin's `register` and each
   denoising step of the Warmkern algorithm appends a JSON line (pid, TP rank, rids, block tokens) to
   path, so the check can show that every process loaded the plugin and every rank committed the same.
"""

import importlib.abc
import importlib.machinery
import json
import os
import sys


def _patch_parallel_state(mod):
    original = mod.init_model_parallel_group

    def init_model_parallel_group(*args, **kwargs):
        kwargs["use_pynccl"] = False
        kwargs["use_custom_allreduce"] = False
        return original(*args, **kwargs)

    mod.init_model_parallel_group = init_model_parallel_group


def _trace(record):
    path = os.environ.get("WARMKERN_CHECK_TRACE")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"pid": os.getpid(), **record}) + "\n")


def _tp_rank():
    try:
        from sglang.srt.distributed.parallel_state import get_tensor_model_parallel_rank

        return get_tensor_model_parallel_rank()
    except Exception as exc:
        return repr(exc)


def _patch_plugin(mod):
    register = mod.register

    def traced_register():
        register()
        _trace({"event": "register", "argv0": sys.argv[0] if sys.argv else ""})

    mod.register = traced_register
    steps = mod.WarmkernSteps
    step = steps.step

    def traced_step(self, forward_batch, full_logits, states):
        done = step(self, forward_batch, full_logits, states)
        ids = forward_batch.input_ids.view(forward_batch.batch_size, -1).tolist()
        _trace({"event": "step", "rank": _tp_rank(), "rids": list(forward_batch.rids or []), "ids": ids,
                "done": done, "steps": [s.step for s in states], "seeds": [s.info.seed for s in states],
                "logits_dtype": str(full_logits.dtype)})
        return done

    steps.step = traced_step


def _patch_dummy_weights(mod):
    span = float(os.environ["WARMKERN_CHECK_DUMMY_RANGE"])
    original = mod.initialize_dummy_weights

    def initialize_dummy_weights(model, low=-1e-3, high=1e-3, seed=1234):
        return original(model, low=-span, high=span, seed=seed)

    mod.initialize_dummy_weights = initialize_dummy_weights


_PATCHES = {"warmkern.integrations.sglang": _patch_plugin}
if os.environ.get("WARMKERN_CHECK_CPU") == "1":
    _PATCHES["sglang.srt.distributed.parallel_state"] = _patch_parallel_state
if os.environ.get("WARMKERN_CHECK_DUMMY_RANGE"):
    _PATCHES["sglang.srt.model_loader.loader"] = _patch_dummy_weights


class _PostImport(importlib.abc.MetaPathFinder):
    """Runs a patch right after one of _PATCHES' modules has executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _PATCHES:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = getattr(finder, "find_spec", lambda *a: None)(fullname, path, target)
            if spec is not None and spec.loader is not None:
                loader = spec.loader
                exec_module = loader.exec_module

                def patched_exec(module, _exec=exec_module, _name=fullname):
                    _exec(module)
                    _PATCHES[_name](module)

                loader.exec_module = patched_exec
                return spec
        return None


sys.meta_path.insert(0, _PostImport())
