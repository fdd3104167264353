"""Statistics the benchmarks share: a median with a bootstrap interval, and paired per-round ratios."""
import random
import statistics


def median_interval(values, draws=4000, level=0.95, seed=16):
    """The median and a bootstrap interval of it (percentile method, a fixed seed: the same data give the
    same report)."""
    rng = random.Random(seed)
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    lo, hi = meds[int((1 - level) / 2 * draws)], meds[int((1 + level) / 2 * draws) - 1]
    return statistics.median(values), lo, hi


def paired_ratios(rounds_a, rounds_b):
    """a / b for each round both were measured in: drift that moves a whole round cancels out."""
    return [a / b for a, b in zip(rounds_a, rounds_b) if a and b]
