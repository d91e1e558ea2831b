"""Defaults of the benefit-harm window search, declared once.

:class:`ml.window.BenefitHarmSearch` takes its constructor defaults from here, and so do
``atgwin discover`` and the experiment files. The module imports nothing, so the command line can
show these defaults without loading the scientific stack.
"""

#: Constructor defaults of :class:`ml.window.BenefitHarmSearch` (horizons in days from transplant).
BENEFIT_HARM = {
    # under-exposure harm: acute GVHD grade II-IV and chronic GVHD, each endpoint's scores standardised and
    # summed, both by day 730 (chronic GVHD's horizon). Against acute GVHD alone by day 180: power 93 % vs
    # 90 %, the right finding in a world with a floor only 86 % vs 77 %, any claim on 400 null cohorts 19 vs 21
    # (docs/benchmarks.md, "benefit-harm")
    "floor_endpoints": ("agvhd2", "cgvhd"),
    # over-exposure harm: CMV and EBV reactivation, each endpoint's scores standardised and summed
    # (ceiling evidenced in 98 % of urd cohorts against 85 % for the first-event composite "cmv|ebv":
    # docs/benchmarks.md, "benefit-harm")
    "ceiling_endpoints": ("cmv", "ebv"),
    "floor_horizon": 730.0,
    "ceiling_horizon": 180.0,
    "n_permutations": 1000,
    "n_bootstraps": 1000,
    "ci_level": 0.95,
    "ci_method": "ij",                # infinitesimal-jackknife interval of the smoothed bound
    "n_folds": 5,
    "alpha": 0.05,
    # the global null is tested by the min-p of the joint, floor and ceiling maxima (docs/benchmarks.md,
    # "benefit-harm": in a floor-only world it rejects in 79 % of cohorts, the joint statistic alone in 62 %)
    "global_test": "min-p",
    "min_events": 10,
    "estimate": "smoothed",           # mean of the bootstrap bounds (docs/benchmarks.md, "benefit-harm")
}

#: Names of the global tests of :class:`ml.window.BenefitHarmSearch` (``global_test``).
GLOBAL_TEST_NAMES = ("min-p", "joint")
#: The candidate grid of the benefit-harm search: ``QuantileGrid(k=GRID_K, minprop=MINPROP)``.
GRID_K = 40
#: Smallest share of patients below the floor, inside the window and above the ceiling.
MINPROP = 0.1
#: The composite two-cut search's minprop (docs/benchmarks.md, "Power study").
COMPOSITE_MINPROP = 0.2

#: Defaults of the promotion gates (``ml.window.PromotionGates``, ``atgwin promote``, experiment files).
#: ``max_ci_width`` (UE*day/mL, each bound's 95 % interval): on 400 simulated urd cohorts the
#: benefit-harm search's intervals had a median width of about 29 and a 90th percentile of about 50
#: (docs/benchmarks.md, "benefit-harm"), so 50 lets nine in ten true windows through and refuses a
#: bound known only to within more than the half-width of the published window (48.5).
PROMOTION = {"alpha": 0.05, "max_ci_width": 50.0, "min_events": 50}
