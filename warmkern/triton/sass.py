"""Static facts read from a kernel's SASS (cuobjdump -sass) and from ptxas' verbose output.

`vocab_loop` finds the vocabulary loop: the innermost loop (a backward branch) that holds a 128-bit
global load (LDG.E.128 / cp.async LDGSTS.*.128). Its per-tile instruction count is taken along the
common path: conditional forward branches that stay inside the loop (blocks for the rare tiles that
hold a special id) are taken, i.e. skipped; branches leaving the loop are not followed. Predicated
instructions count (they issue whether or not their predicate holds).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

_LINE = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)\s*([^;]*);")
_SPILL = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")


@dataclass(frozen=True)
class Instr:
    addr: int
    op: str  # full opcode with modifiers, e.g. LDG.E.128
    args: str
    predicated: bool

    @property
    def base(self) -> str:
        return self.op.split(".")[0]

    def branch_target(self) -> int | None:
        if self.base not in ("BRA", "BRX"):
            return None
        m = re.search(r"0x([0-9a-f]+)", self.args)
        return int(m.group(1), 16) if m else None


@dataclass
class Loop:
    head: int
    tail: int  # address of the backward branch
    body: list[Instr] = field(default_factory=list)
    path: list[Instr] = field(default_factory=list)  # the common path through one iteration

    def count(self, *bases: str) -> int:
        return sum(i.base in bases for i in self.path)


def _tool(name: str) -> str:
    import triton

    return str(Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / name)


def _run_on_file(data: bytes, suffix: str, cmd: list[str]) -> subprocess.CompletedProcess:
    with tempfile.NamedTemporaryFile(suffix=suffix) as f:
        f.write(data)
        f.flush()
        return subprocess.run([*cmd, f.name], capture_output=True, text=True, check=True)


def disassemble(cubin: bytes) -> str:
    return _run_on_file(cubin, ".cubin", [_tool("cuobjdump"), "-sass"]).stdout


def resource_usage(cubin: bytes) -> dict[str, int]:
    """REG / SHARED / LOCAL / STACK of the (single) function in a cubin, via cuobjdump."""
    out = _run_on_file(cubin, ".cubin", [_tool("cuobjdump"), "--dump-resource-usage"]).stdout
    fields = dict(re.findall(r"\b(REG|SHARED|LOCAL|STACK):(\d+)", out))
    return {k.lower(): int(v) for k, v in fields.items()}


def _ptxas(cc: int) -> str:
    from triton.backends.nvidia.compiler import get_ptxas

    return get_ptxas(cc).path  # the binary Triton itself runs for this target


def ptxas_spills(ptx: str, cc: int, cache_dir: Path | None = None) -> dict[str, int]:
    """Stack frame and spill bytes from `ptxas -v` (the same flags Triton uses: -lineinfo, no FMA
    contraction, --regAllocOptLevel=2), cached by PTX hash (the Triton cache keeps no ptxas log)."""
    arch = f"sm_{cc}a" if cc >= 90 else f"sm_{cc}"
    key = hashlib.sha256(f"{arch}\n{ptx}".encode()).hexdigest()[:32]
    cached = cache_dir / f"{key}.txt" if cache_dir else None
    if cached is not None and cached.exists():
        log = cached.read_text()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "k.ptx"
            src.write_text(ptx)
            cmd = [_ptxas(cc), "-lineinfo", "--fmad=false", "-v", "--regAllocOptLevel=2", f"--gpu-name={arch}",
                   str(src), "-o", str(Path(tmp) / "k.o")]
            log = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(log)
    m = _SPILL.search(log)
    if m is None:
        raise RuntimeError(f"ptxas -v printed no spill line:\n{log}")
    frame, stores, loads = (int(x) for x in m.groups())
    return {"stack_frame": frame, "spill_stores": stores, "spill_loads": loads}


def parse(text: str) -> list[Instr]:
    return [Instr(int(m.group(1), 16), m.group(3), m.group(4).strip(), m.group(2) is not None)
            for m in _LINE.finditer(text)]


def loops(instrs: list[Instr]) -> list[Loop]:
    out = []
    for ins in instrs:
        tgt = ins.branch_target()
        if tgt is not None and tgt <= ins.addr:
            out.append(Loop(tgt, ins.addr, [i for i in instrs if tgt <= i.addr <= ins.addr]))
    return out


def _common_path(loop: Loop) -> list[Instr]:
    by_addr = {i.addr: n for n, i in enumerate(loop.body)}
    path, n, seen = [], 0, set()
    while n < len(loop.body) and n not in seen:
        seen.add(n)
        ins = loop.body[n]
        path.append(ins)
        tgt = ins.branch_target()
        if ins.addr == loop.tail:
            break
        if tgt is not None and loop.head <= tgt <= loop.tail and tgt > ins.addr:
            n = by_addr[tgt]  # skip the rare block (conditional) or jump over an else (unconditional)
        else:
            n += 1
    return path


def straight_path(instrs: list[Instr]) -> list[Instr]:
    """The fall-through path from the entry to the first unconditional EXIT: conditional branches are
    not taken (compilers lay the likely path out as fall-through and move slow paths, e.g. div.rn's
    or a second loop iteration, behind them), unconditional forward branches are followed."""
    by_addr = {i.addr: n for n, i in enumerate(instrs)}
    path, n = [], 0
    while n < len(instrs):
        ins = instrs[n]
        path.append(ins)
        if ins.base == "EXIT" and not ins.predicated:
            break
        tgt = ins.branch_target()
        if tgt is not None and not ins.predicated and tgt > ins.addr:
            n = by_addr[tgt]
        elif tgt is not None and not ins.predicated:
            break
        else:
            n += 1
    return path


def _wide_load(i: Instr) -> bool:
    return (i.base == "LDG" or i.base == "LDGSTS") and ".128" in i.op


def vocab_loop(instrs: list[Instr]) -> Loop:
    """The vocabulary loop (see module docstring); raises if the kernel has none."""
    cands = [lp for lp in loops(instrs) if any(_wide_load(i) for i in lp.body)]
    inner = [lp for lp in cands if not any(o is not lp and lp.head <= o.head and o.tail <= lp.tail
                                           and o.tail != lp.tail for o in cands)]
    if not inner:
        raise ValueError("no loop with a 128-bit global load in this kernel")
    loop = max(inner, key=lambda lp: len(lp.body))
    loop.path = _common_path(loop)
    return loop


def load_loop(instrs: list[Instr]) -> Loop:
    """The largest loop that loads from global memory (any width): the full-tile loop of a truncation pass
    compiled alone (`probes`; its 2-D tiles load E entries per thread). Its body holds the rare branches
    (a special id's tile, a bracket entry's tile) and their small loops; its path skips them."""
    cands = [lp for lp in loops(instrs) if any(i.base in ("LDG", "LDGSTS") for i in lp.body)]
    if not cands:
        raise ValueError("no loop with a global load in this kernel")
    loop = max(cands, key=lambda lp: len(lp.body))
    loop.path = _common_path(loop)
    return loop
