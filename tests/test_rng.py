"""Shared Philox: Random123 known answers, the counter layout, and the statistics of what it feeds."""

import math

import pytest
import torch

from warmkern import rng

KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), KNOWN_ANSWERS)
def test_philox_known_answers(counter, key, expected):
    words = rng.philox4x32(*(torch.tensor([c]) for c in counter), *key)
    assert tuple(int(w) for w in words) == expected


def test_seed_key_splits_lo_hi():
    assert rng.seed_key(0x0123456789ABCDEF) == (0x89ABCDEF, 0x01234567)


def test_vocab_words_counter_layout():
    """Row b, position g, entry v: key seeds[b], counter n = g*ceil(V/4) + v//4, output lane v%4."""
    seeds, step, v = torch.tensor([1234, 2**40 + 5]), 7, 10
    words = rng.vocab_words(seeds, step, rng.STREAM_GUMBEL, positions=3, vocab=v)
    groups = math.ceil(v / 4)
    for b in range(2):
        k0, k1 = rng.seed_key(int(seeds[b]))
        for g in range(3):
            for e in range(v):
                n = g * groups + e // 4
                out = rng.philox4x32(torch.tensor([n]), torch.tensor([0]), torch.tensor([step]), torch.tensor([0]),
                                     k0, k1)
                assert int(words[b, g, e]) == int(out[e % 4])


def test_vocab_shard_draws_its_slice_of_the_full_vocabulary():
    seeds = torch.tensor([3, 4])
    full = rng.vocab_words(seeds, 2, rng.STREAM_GUMBEL, positions=2, vocab=13)
    for start, size in ((0, 5), (5, 3), (8, 5), (1, 11)):
        shard = rng.vocab_words(seeds, 2, rng.STREAM_GUMBEL, 2, size, vocab_start=start, vocab_total=13)
        assert torch.equal(shard, full[:, :, start : start + size])


def test_a_row_draws_the_same_alone_and_in_a_batch():
    seeds = torch.tensor([11, 12, 13])
    batch = rng.gumbel_noise(seeds, 4, 3, 9)
    for b in range(3):
        assert torch.equal(rng.gumbel_noise(int(seeds[b]), 4, 3, 9)[0], batch[b])
    keep = rng.keep_mask(seeds, 0.5, (3, 40))
    assert torch.equal(rng.keep_mask(12, 0.5, (1, 40))[0], keep[1])


def test_step_may_be_a_tensor():
    a = rng.position_words(5, 9, rng.STREAM_RANDOM_SCORE, 4)
    assert torch.equal(a, rng.position_words(5, torch.tensor(9), rng.STREAM_RANDOM_SCORE, 4))


def test_position_words_use_word_zero_of_counter_g():
    k0, k1 = rng.seed_key(99)
    words = rng.position_words(99, 3, rng.STREAM_RANDOM_SCORE, positions=5)
    for g in range(5):
        out = rng.philox4x32(torch.tensor([g]), torch.tensor([0]), torch.tensor([3]), torch.tensor([1]), k0, k1)
        assert int(words[0, g]) == int(out[0])


def test_uniform_is_open_interval_and_clamped():
    w = torch.tensor([0, 1, 2**31, 2**32 - 129, 2**32 - 1], dtype=torch.int64)
    u = rng.uniform_from_word(w)
    assert u.dtype == torch.float32
    assert (u > 0).all() and (u < 1).all()
    assert u[0].item() == 0.5 * 2.0**-32
    assert u[-1].item() == rng.ONE_MINUS_ULP


def test_gumbel_tail_and_series_branch():
    u = torch.tensor([0.5 * 2.0**-32, 2.0**-11, 2.0**-9, 0.5, rng.ONE_MINUS_ULP], dtype=torch.float32)
    g = rng.gumbel_from_uniform(u)
    assert torch.isfinite(g).all()
    assert g[0].item() == pytest.approx(22.87, abs=0.01)  # the tail the 32-bit series keeps
    exact = -torch.log(-torch.log1p(-u.double()))
    torch.testing.assert_close(g.double(), exact, rtol=1e-6, atol=1e-6)


def test_keep_rate_statistics():
    keep = rng.keep_mask(torch.arange(64), 0.3, (64, 500))  # 64 distinct row seeds: 32000 independent draws
    rate = keep.float().mean().item()
    assert abs(rate - 0.3) < 4 * math.sqrt(0.3 * 0.7 / keep.numel())
    assert rng.keep_mask(7, 1.0, (4, 100)).all()
    assert not rng.keep_mask(7, 0.0, (4, 100)).any()


def test_gumbel_max_frequencies_match_softmax():
    """Chi-square: argmax(z + g) over many independent rows is distributed as softmax(z)."""
    probs = torch.tensor([0.05, 0.1, 0.15, 0.3, 0.4])
    z = probs.log()
    rows = 40000
    g = rng.gumbel_noise(3, 0, rows, 5)[0]
    counts = torch.bincount((z + g).argmax(-1), minlength=5).double()
    expected = probs.double() * rows
    chi2 = (((counts - expected) ** 2) / expected).sum().item()
    assert chi2 < 18.47  # chi-square, 4 degrees of freedom, p = 0.001


def test_streams_and_steps_are_independent():
    a = rng.position_words(5, 0, rng.STREAM_RANDOM_SCORE, 100)
    b = rng.position_words(5, 0, rng.STREAM_KEEP, 100)
    c = rng.position_words(5, 1, rng.STREAM_RANDOM_SCORE, 100)
    d = rng.position_words(6, 0, rng.STREAM_RANDOM_SCORE, 100)
    assert (a != d).float().mean() > 0.99
    assert (a != b).float().mean() > 0.99 and (a != c).float().mean() > 0.99
