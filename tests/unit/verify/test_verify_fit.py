"""verify's default curve fitted to the free CPU before it: pure, no daemon."""
from swarmml.verify import fit


def test_a_quiet_two_core_machine_keeps_the_whole_default_curve():
    # the cluster at rest with one replica: 0.15-0.25 cores busy; six 0.25-CPU replicas and their load fit
    assert fit.fit(fit.DEFAULT_STEPS, 0.25, 2, 0.25) == ([1, 2, 4, 6], [])
    assert fit.fit(fit.DEFAULT_STEPS, 0.25, 2, 0.35)[0] == [1, 2, 4]


def test_a_busy_core_beside_it_leaves_out_what_would_starve():
    # `sh -c 'while :; do :; done'` beside the cluster: 1.2 cores busy before the curve
    kept, left = fit.fit(fit.DEFAULT_STEPS, 0.25, 2, 1.2)
    assert kept == [1, 2] and [s["replicas"] for s in left] == [4, 6]
    assert left[0]["why"] == ("4 replicas at 0.25 CPU need about 2.36 of the 2 cores, and 1.20 were busy before "
                              "the curve")
    assert fit.too_few(kept, left, 0.25) is None
    # a smaller --cpus fits more of them on the same machine
    assert fit.fit(fit.DEFAULT_STEPS, 0.1, 2, 1.2)[0] == [1, 2, 4, 6]


def test_the_base_is_always_kept_and_a_curve_of_one_step_says_what_to_do():
    kept, left = fit.fit([6, 1, 2], 0.5, 2, 1.6)
    assert kept == [1] and [s["replicas"] for s in left] == [2, 6]
    assert fit.too_few(kept, left, 0.5) == (
        "only the base (1 replica) fits this machine's free CPU: 2 replicas at 0.5 CPU need about 2.76 of the 2 "
        "cores, and 1.60 were busy before the curve; to measure a curve: a smaller --cpus (e.g. 0.25), or a "
        "quieter machine")
    assert fit.fit([], 0.25, 2, 0.0) == ([], [])


def test_the_need_matches_the_recorded_curve():
    # scripts/results/verify-report.md, a quiet run: 0.50 cores busy at 1 replica under load, 1.82 at 6
    rest = 0.15
    assert abs(fit.needed_cores(1, 0.25, rest) - 0.50) < 0.05
    assert abs(fit.needed_cores(6, 0.25, rest) - 1.82) < 0.05
