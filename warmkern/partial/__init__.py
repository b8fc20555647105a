"""Partial states over vocabulary shards (issue 16): the spec of the shard passes, their merges and the rounds.

state.py       the token_stats state of one shard, merge (shard order), finalize -> (x0, score, p_cur)
truncation.py  top_k / top_p over shards: round-1 (max, exp-sum, top-k list) and the 4 top-p histogram rounds
protocol.py    the driver: rounds over any `Shards` (a process group, the LM head's column chunks)
head.py        head_token_stats: the LM-head GEMM chunk by chunk with the state update (logits never whole)

For kernel authors (cpu / triton): merge, finalize and the round drivers are small torch code on [S, B, G, F]
tensors and need no kernel. A backend adds the three shard passes (then lists itself in their schema rows'
`backends`; head_token_stats comes with them as the same composite, or as a fused matmul + stats epilogue):
- token_stats_partial = the one-device vocabulary loop where every id test (mask, pick/score suppression,
  suppress_ids, prior) and the Philox counter use the global index vocab_start + v (counter row length
  ceil(vocab_total / 4), position position_offset + g), entries with z/T < cutoff[b, g] are -inf, and the
  epilogue writes the state fields of state.py (best_idx as int32 bits) instead of (x0, score, p_cur);
- truncation_partial = (max, exp-sum) of z/T and its top_k largest values, descending, -inf padded;
- nucleus_partial = a 256-bin histogram of exp(z/T - zs_max) over the ordered-key bits under `prefix`.
"""

from warmkern.partial.state import FIELDS, finalize, merge, merge_states, token_stats_partial
from warmkern.partial.truncation import nucleus_partial, truncation_partial

__all__ = ["FIELDS", "finalize", "merge", "merge_states", "nucleus_partial", "token_stats_partial",
           "truncation_partial"]
