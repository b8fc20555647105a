"""Partial states over vocabulary shards (issue 16): the spec of the shard passes, their merges and the rounds.

state.py       the token_stats state of one shard, merge (shard order), finalize -> (x0, score, p_cur)
truncation.py  top_k / top_p over shards: round-1 (max, exp-sum, top-k list) and the 4 top-p histogram rounds
protocol.py    the driver: rounds over any `Shards` (a process group, the LM head's column chunks)
head.py        head_token_stats: the LM-head GEMM chunk by chunk with the state update (logits never whole)
"""

from warmkern.partial.state import FIELDS, finalize, merge, merge_states, token_stats_partial
from warmkern.partial.truncation import nucleus_partial, truncation_partial

__all__ = ["FIELDS", "finalize", "merge", "merge_states", "nucleus_partial", "token_stats_partial",
           "truncation_partial"]
