"""Statistics of sets of patterns: the energy-variance criterion's quantity and generator quality.

The generator-quality scores (docs/science.md, "Generator quality") compare a generated set of +-1
patterns with the observed one: moment and correlation errors, three-point correlations, the
covariance spectrum, a gzip entropy proxy, the nearest-neighbour adversarial accuracy (AAI, Hamming
distance) and the fraction of generated patterns that copy a training pattern. Everything is
vectorised and chunked, so hundreds of thousands of patterns of a few hundred spins stay within a
few hundred MB.
"""

from __future__ import annotations

import gzip
import math

import numpy as np
import torch
from torch import Tensor

from isingaug.errors import DataError, check_options, is_int
from isingaug.ising import IsingParams, energy

#: Elements (numbers or bytes) per chunk of the chunked passes: bounds every temporary buffer.
CHUNK_ELEMENTS = 1 << 22
#: Words per chunk of the three-point XOR pass: cache-sized and below torch's parallel grain, so
#: its many small ops run serially (no thread hand-offs, which stall when cores are shared).
_XOR_CHUNK_WORDS = 1 << 14
#: gzip level of the entropy proxy: fixed so sizes compare; 9 is ~20x slower on 0/1 bytes.
GZIP_LEVEL = 6
#: Above this many triplets, random ones are drawn by rank with rejection instead of a permutation.
_PERMUTE_TRIPLETS_MAX = 1 << 24

QUALITY_KEYS = ("mag_err", "corr_err", "conn_corr_err", "three_point_err", "spectrum_err",
                "entropy_err", "aa_true", "aa_syn", "aai", "copy_fraction")


def energy_variance(params: IsingParams, spins: Tensor) -> float:
    """Var[E] of the patterns' energies under `params` (population variance)."""
    e = energy(params, spins.to(device=params.device, dtype=params.dtype))
    return float(torch.var(e, correction=0))


# ----------------------------------------------------------------------------- input checks


def check_spins(x: Tensor, name: str) -> Tensor:
    """The patterns as a 2-D tensor, or a DataError naming what is wrong with them."""
    x = torch.as_tensor(x)
    if x.ndim != 2:
        raise DataError(f"{name} must be a 2-D (patterns, spins) array; got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{name} is empty: shape {tuple(x.shape)}")
    if x.is_complex() or not x.is_signed():  # unsigned: 255 == -1 would pass the check below
        raise DataError(f"{name} must be a real signed (float or int) array of -1/+1 spins; "
                        f"got dtype {x.dtype}")
    if not bool(((x == 1) | (x == -1)).all()):
        raise DataError(f"{name} must hold only -1 and +1 spin values")
    return x


def _spin_pair(generated: Tensor, reference: Tensor,
               names: tuple[str, str]) -> tuple[Tensor, Tensor]:
    """Both sets checked and on the first one's device; the spin counts must agree."""
    g = check_spins(generated, names[0])
    d = check_spins(reference, names[1])
    if g.shape[1] != d.shape[1]:
        raise DataError(f"{names[0]} has {g.shape[1]} spins per pattern but {names[1]} has "
                        f"{d.shape[1]}")
    return g, d.to(g.device)


def _rows_per_chunk(width: int) -> int:
    return max(1, CHUNK_ELEMENTS // max(1, width))


# ----------------------------------------------------------------------------- bit packing


#: Multiplying eight 0/1 bytes (one int64) by this gathers them into the top byte, byte k -> bit k:
#: the partial products 2^(8k + 7j + 7) never share a bit, so no carry disturbs it.
_GATHER_BYTES = 0x0102040810204080


def _pack_words(bits: Tensor) -> Tensor:
    """(rows, L) booleans as (rows, ceil(L/64)) int64 words, zero-padded (bits, not bytes)."""
    rows, length = bits.shape
    words = -(-length // 64)
    out = torch.empty(rows, 8 * words, dtype=torch.uint8, device=bits.device)
    step = _rows_per_chunk(64 * words)
    for start in range(0, rows, step):
        chunk = bits[start:start + step].contiguous().view(torch.uint8)  # bool -> 0/1 bytes
        if length % 64:
            chunk = torch.nn.functional.pad(chunk, (0, 64 * words - length))
        eight = chunk.view(torch.int64) * _GATHER_BYTES  # int64 arithmetic wraps
        out[start:start + step] = ((eight >> 56) & 0xFF).to(torch.uint8)
    return out.view(torch.int64)


def _row_keys(spins: Tensor) -> Tensor:
    """Each +-1 row as ceil(n/64) int64 words: equal rows, and only they, get equal keys."""
    return _pack_words(spins > 0)


def _popcount_(x: Tensor) -> Tensor:
    """Set bits of every int64 word, in place (SWAR, wrapping arithmetic; torch has no popcount)."""
    x -= (x >> 1) & 0x5555555555555555
    x.copy_((x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333))
    x += x >> 4
    x &= 0x0F0F0F0F0F0F0F0F
    x *= 0x0101010101010101  # the top byte becomes the sum of the eight byte counts
    x >>= 56
    x &= 0xFF
    return x


# ----------------------------------------------------------------------------- copies


def copy_fraction(generated: Tensor, train: Tensor) -> float:
    """Fraction of generated patterns identical to some training pattern (a memorisation rate).

    Rows are bit-packed into int64 words and matched exactly, so any n works and no pair of rows
    is ever compared one by one.
    """
    return _copy_fraction(*_spin_pair(generated, train, ("generated", "train")))


def _copy_fraction(g: Tensor, t: Tensor) -> float:
    keys = _single_keys(torch.cat([_row_keys(t), _row_keys(g)]))
    train = torch.sort(keys[:t.shape[0]]).values
    pos = torch.searchsorted(train, keys[t.shape[0]:]).clamp_(max=train.shape[0] - 1)
    return float((train[pos] == keys[t.shape[0]:]).double().mean())


def _single_keys(words: Tensor) -> Tensor:
    """One int64 key per multi-word row, equal exactly for equal rows (dense ranks, word by word).

    1-D sorts only: much faster than torch.unique(dim=0). Ranks are < rows, so the combined
    rank * base + rank stays far inside int64.
    """
    keys = words[:, 0]
    for w in range(1, words.shape[1]):
        high = torch.unique(keys, return_inverse=True)[1]
        low = torch.unique(words[:, w], return_inverse=True)[1]
        keys = high * (int(low.max()) + 1) + low
    return keys


# ----------------------------------------------------------------------------- moments


def pattern_moments(spins: Tensor) -> tuple[Tensor, Tensor]:
    """<s_i> and <s_i s_j> in float64, exact: chunk sums of +-1 are integers below 2^24."""
    n = spins.shape[1]
    first = torch.zeros(n, dtype=torch.float64, device=spins.device)
    second = torch.zeros(n, n, dtype=torch.float64, device=spins.device)
    step = _rows_per_chunk(n)  # < 2^24 rows, so float32 sums of +-1 stay exact
    for start in range(0, spins.shape[0], step):
        x = spins[start:start + step].to(torch.float32)
        first += x.sum(0, dtype=torch.float64)
        second += (x.T @ x).double()
    return first / spins.shape[0], second / spins.shape[0]


def draw_triplets(n: int, count: int, rng: torch.Generator) -> Tensor:
    """(T, 3) index triplets i<j<k: all of them, or `count` distinct ones drawn at random.

    sample_quality draws its triplets with this as the first use of its rng, so another score
    drawing from a generator seeded alike (truth_quality) uses the same triplets.
    """
    total = math.comb(n, 3)
    if total <= count:
        return _unrank_triplets(n, torch.arange(total))
    if total <= _PERMUTE_TRIPLETS_MAX:
        ranks = torch.randperm(total, generator=rng, device=rng.device)[:count]
    else:
        ranks = torch.empty(0, dtype=torch.int64)
        while ranks.shape[0] < count:
            more = torch.randint(total, (2 * count,), generator=rng,
                                 device=rng.device)
            ranks = torch.unique(torch.cat([ranks, more.cpu()]))
        ranks = ranks[torch.randperm(ranks.shape[0], generator=rng,
                                     device=rng.device).cpu()][:count]
    return _unrank_triplets(n, torch.sort(ranks.cpu()).values)


def _unrank_triplets(n: int, ranks: Tensor) -> Tensor:
    """Combinatorial number system: rank r = C(k,3) + C(j,2) + C(i,1) with k > j > i."""
    k_all = torch.arange(n, dtype=torch.int64)
    out = torch.empty(ranks.shape[0], 3, dtype=torch.int64)
    rest = ranks.clone()
    for col, order in ((2, 3), (1, 2)):
        table = torch.tensor([math.comb(int(k), order) for k in k_all], dtype=torch.int64)
        idx = torch.searchsorted(table, rest, right=True) - 1
        out[:, col] = idx
        rest -= table[idx]
    out[:, 0] = rest
    return out


def third_moments(spins: Tensor, triplets: Tensor) -> Tensor:
    """<s_i s_j s_k> per triplet, exact: XOR of per-spin bit columns over patterns, popcounted.

    Bits are 1 where a spin is -1, so s_i s_j s_k = -1 exactly where the XOR is 1.
    """
    num = spins.shape[0]
    columns = _pack_words((spins < 0).T.contiguous())  # (n, ceil(num / 64))
    triplets = triplets.to(spins.device)
    out = torch.empty(triplets.shape[0], dtype=torch.float64, device=spins.device)
    step = max(1, _XOR_CHUNK_WORDS // columns.shape[1])
    for start in range(0, triplets.shape[0], step):
        i, j, k = triplets[start:start + step].T
        x = torch.index_select(columns, 0, i)  # index_select: far cheaper than columns[i]
        x ^= torch.index_select(columns, 0, j)
        x ^= torch.index_select(columns, 0, k)
        negatives = _popcount_(x).sum(1)
        out[start:start + step] = (num - 2 * negatives).double() / num
    return out


def connected_third(first: Tensor, second: Tensor, third: Tensor, triplets: Tensor) -> Tensor:
    """<ds_i ds_j ds_k> = M3 - m_i M2_jk - m_j M2_ik - m_k M2_ij + 2 m_i m_j m_k."""
    i, j, k = triplets.to(first.device).T
    n = first.shape[0]
    mi, mj, mk = first.take(i), first.take(j), first.take(k)
    return (third - mi * second.take(j * n + k) - mj * second.take(i * n + k)
            - mk * second.take(i * n + j) + 2 * mi * mj * mk)


def mean_sq(a: Tensor, b: Tensor) -> float:
    """Mean squared difference; 0 for empty sets (nothing to disagree on, e.g. pairs at n = 1)."""
    return float(((a - b) ** 2).mean()) if a.numel() else 0.0


def _eigenvalues(cov: Tensor) -> Tensor:
    """Ascending eigenvalues, on one CPU thread: an n <= few hundred matrix gains nothing from
    threads, and LAPACK's thread barriers stall for seconds when the cores are shared."""
    if cov.device.type != "cpu":
        return torch.linalg.eigvalsh(cov)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.linalg.eigvalsh(cov)
    finally:
        torch.set_num_threads(threads)


def _relative_norm(diff: Tensor, ref: Tensor) -> float:
    """||diff|| / ||ref||, with 0/0 = 0 and x/0 = inf (a constant data set)."""
    num, den = float(torch.linalg.vector_norm(diff)), float(torch.linalg.vector_norm(ref))
    if den > 0:
        return num / den
    return 0.0 if num == 0 else math.inf


# ----------------------------------------------------------------------------- entropy, AA


def _gzip_size(spins: Tensor) -> int:
    """Compressed size of the patterns written row by row as bytes 0 (spin -1) and 1 (+1)."""
    raw = (spins > 0).to(torch.uint8).cpu().numpy()
    return len(gzip.compress(np.ascontiguousarray(raw).tobytes(), compresslevel=GZIP_LEVEL,
                             mtime=0))


def _nearest_distances(data: Tensor, gen: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Hamming nearest-neighbour distances d_TT, d_TS, d_ST, d_SS (self-pairs excluded).

    Hamming(a, b) = (n - a.b) / 2; the float32 dot products of +-1 rows are exact integers, so
    nearest means largest dot product. A set of one pattern has d_TT (or d_SS) = inf.
    """
    n = data.shape[1]
    t, s = data.to(torch.float32), gen.to(torch.float32)

    def best_dots(a: Tensor, b: Tensor, same: bool) -> tuple[Tensor, Tensor]:
        row_best = torch.empty(a.shape[0], device=a.device)
        col_best = torch.full((b.shape[0],), -math.inf, device=a.device)
        step = _rows_per_chunk(b.shape[0])
        for start in range(0, a.shape[0], step):
            dots = a[start:start + step] @ b.T
            if same:
                rows = torch.arange(dots.shape[0], device=a.device)
                dots[rows, rows + start] = -math.inf
            row_best[start:start + step] = dots.max(1).values
            col_best = torch.maximum(col_best, dots.max(0).values)
        return row_best, col_best

    def to_distance(dot: Tensor) -> Tensor:
        return (n - dot.double()) / 2

    tt = best_dots(t, t, True)[0]
    ts, st = best_dots(t, s, False)
    ss = best_dots(s, s, True)[0]
    return to_distance(tt), to_distance(ts), to_distance(st), to_distance(ss)


def _subsample(spins: Tensor, size: int, rng: torch.Generator) -> Tensor:
    """`size` distinct rows drawn at random, kept in their original order."""
    if size >= spins.shape[0]:
        return spins
    rows = torch.randperm(spins.shape[0], generator=rng, device=rng.device)[:size]
    return spins[torch.sort(rows).values.to(spins.device)]


# ----------------------------------------------------------------------------- the scores


def sample_quality(generated: Tensor, data: Tensor, *, rng: torch.Generator | None = None,
                   max_patterns: int = 5000, max_triplets: int = 20000) -> dict[str, float]:
    """Scores of a generated set of +-1 patterns against the observed data (ideal: 0; AA: 1/2).

    Keys (the F&F paper's scores plus moment errors):
    - mag_err, corr_err, conn_corr_err: mean squared differences of <s_i>, of <s_i s_j> (i<j) and
      of the connected C_ij = <s_i s_j> - <s_i><s_j> (i<j), on all patterns of both sets.
    - three_point_err: same for C_ijk = <ds_i ds_j ds_k>, ds = s - <s>, over all i<j<k or over
      `max_triplets` distinct triplets drawn with `rng` (the same ones for both sets).
    - spectrum_err: ||lambda_gen - lambda_data|| / ||lambda_data|| of the sorted eigenvalues of
      the two (population) covariance matrices.
    - entropy_err: gzip size per pattern of the generated set / that of the data - 1 (bytes 0/1,
      level GZIP_LEVEL), both subsampled to m = min(G, D, max_patterns) patterns.
    - aa_true, aa_syn, aai: nearest-neighbour adversarial accuracy (Hamming) on the same m-pattern
      subsamples: AA_true = mean over data of [d_TS > d_TT], AA_syn = mean over generated of
      [d_ST > d_SS], AAI = (AA_true - 1/2)^2 + (AA_syn - 1/2)^2. Ties count as "the nearest is in
      the other set" (strict >, as in F&F), so copies give AA = 0 and, with discrete distances,
      even two sets from one distribution score AA somewhat below 1/2.
    - copy_fraction: fraction of all generated patterns equal to some data pattern.

    `rng` (None: a fresh one seeded 0, so scores are reproducible) draws the triplets and
    then the subsamples; a set of at most m patterns is used whole.
    """
    check_options([
        ("max_patterns", max_patterns, is_int(max_patterns) and max_patterns >= 1,
         "an integer >= 1"),
        ("max_triplets", max_triplets, is_int(max_triplets) and max_triplets >= 1,
         "an integer >= 1"),
    ], context="sample_quality")
    g, d = _spin_pair(generated, data, ("generated", "data"))
    if rng is None:
        rng = torch.Generator().manual_seed(0)
    n = g.shape[1]
    pairs = torch.triu_indices(n, n, offset=1, device=g.device)

    m_g, c2_g = pattern_moments(g)
    m_d, c2_d = pattern_moments(d)
    cov_g = c2_g - torch.outer(m_g, m_g)
    cov_d = c2_d - torch.outer(m_d, m_d)

    triplets = draw_triplets(n, max_triplets, rng)
    three_g = connected_third(m_g, c2_g, third_moments(g, triplets), triplets)
    three_d = connected_third(m_d, c2_d, third_moments(d, triplets), triplets)

    eig_g, eig_d = _eigenvalues(cov_g), _eigenvalues(cov_d)

    size = min(g.shape[0], d.shape[0], max_patterns)
    sub_g, sub_d = _subsample(g, size, rng), _subsample(d, size, rng)
    entropy_err = _gzip_size(sub_g) / _gzip_size(sub_d) - 1.0
    d_tt, d_ts, d_st, d_ss = _nearest_distances(sub_d, sub_g)
    aa_true = float((d_ts > d_tt).double().mean())
    aa_syn = float((d_st > d_ss).double().mean())

    return {
        "mag_err": mean_sq(m_g, m_d),
        "corr_err": mean_sq(c2_g[pairs[0], pairs[1]], c2_d[pairs[0], pairs[1]]),
        "conn_corr_err": mean_sq(cov_g[pairs[0], pairs[1]], cov_d[pairs[0], pairs[1]]),
        "three_point_err": mean_sq(three_g, three_d),
        "spectrum_err": _relative_norm(eig_g - eig_d, eig_d),
        "entropy_err": entropy_err,
        "aa_true": aa_true,
        "aa_syn": aa_syn,
        "aai": (aa_true - 0.5) ** 2 + (aa_syn - 0.5) ** 2,
        "copy_fraction": _copy_fraction(g, d),
    }
