"""The window search's building blocks against R and scikit-survival.

Reference values were produced with R 4.2 (Debian bookworm packages r-cran-maxstat 0.7-25,
r-cran-survival, r-cran-cmprsk) by the script below, run on the data tables written literally
in this file (XA..CC; the R script had the same vectors as ``c(...)``). R is not needed to run
these tests; re-run the script to regenerate the constants.

R script (data vectors omitted, they are the Python lists below):
#   suppressMessages({library(maxstat); library(survival); library(cmprsk)})
#   options(digits = 15)
#   set.seed(1)
#   a <- maxstat.test(Surv(TA, EA) ~ XA, data = data.frame(TA, EA, XA), smethod = "LogRank", pmethod = "condMC", B = 100000)
#   cat("A statistic", format(a$statistic, digits = 15), "estimate", format(a$estimate, digits = 15), "p", a$p.value, "\n")
#   cat("A stats", format(a$stats, digits = 15), "\n")
#   set.seed(1)
#   b <- maxstat.test(Surv(TB, EB) ~ XB, data = data.frame(TB, EB, XB), smethod = "LogRank", pmethod = "condMC", B = 100000)
#   cat("B statistic", format(b$statistic, digits = 15), "estimate", format(b$estimate, digits = 15), "p", b$p.value, "\n")
#   cat("B stats", format(b$stats, digits = 15), "\n")
#   cat("B cuts", b$cuts, "\n")
#   f <- coxph(Surv(TB, EB) ~ Z1 + Z2, ties = "breslow")
#   cat("COX coef", format(coef(f), digits = 15), "\n")
#   cat("COX se", format(sqrt(diag(vcov(f))), digits = 15), "\n")
#   cat("COX loglik", format(f$loglik[2], digits = 15), "\n")
#   cat("COX mart", format(residuals(f, type = "martingale"), digits = 15), "\n")
#   g <- coxph(Surv(TB, EB) ~ I(XB >= 110 & XB < 150), ties = "breslow")
#   cat("HR", format(exp(coef(g)), digits = 15), format(exp(confint(g)), digits = 15), "\n")
#   ci <- cuminc(TC, CC)
#   e <- ci[["1 1"]]; k <- seq(3, length(e$time), 2)
#   cat("CIF1 time", e$time[k], "\n"); cat("CIF1 est", format(e$est[k], digits = 15), "\n"); cat("CIF1 var", format(e$var[k], digits = 15), "\n")
#   e <- ci[["1 2"]]; k <- seq(3, length(e$time), 2)
#   cat("CIF2 time", e$time[k], "\n"); cat("CIF2 est", format(e$est[k], digits = 15), "\n"); cat("CIF2 var", format(e$var[k], digits = 15), "\n")
#   sd <- survdiff(Surv(TB, EB) ~ I(XB >= 105))
#   cat("SURVDIFF obs", sd$obs, "exp", format(sd$exp, digits = 15), "\n")

"""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.datasets import load_bmt
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.nonparametric import cumulative_incidence_competing_risks

from ml.features import SURVIVAL_DTYPE
from ml.window import (
    LogRankScores,
    QuantileGrid,
    WindowSearch,
    aalen_johansen,
    cox_fit,
    hazard_ratio,
    logrank_scores,
)
from ml.window._scores import subdistribution_hazard

pytestmark = pytest.mark.r_reference

# --- data (identical to the R vectors) ----------------------------------------------------------
# A: 40 patients, no ties in exposure or time.  B: ties in both (exposure in steps of 10,
# integer days).  Z1, Z2: covariates for B.  TC, CC: competing-risk data (0 censored, 1, 2).
XA = [112.836, 141.212, 127.604, 133.439, 93.802, 57.366, 93.62, 140.497, 86.794, 91.678, 160.206, 122.773, 129.582, 131.48, 160.144, 186.945, 155.232, 205.549, 161.05, 88.938, 69.117, 101.667, 58.57, 115.418, 96.032, 101.381, 90.947, 105.386, 160.072, 161.167, 73.263, 125.17, 101.717, 119.874, 156.612, 163.008, 81.12, 119.328, 147.787, 149.061]  # noqa: E501
TA = [6.17, 46.69, 24.54, 2.07, 209.33, 5.03, 157.36, 22.98, 7.33, 5.34, 78.99, 7.35, 22.96, 414.04, 168.23, 119.26, 149.21, 169.99, 10.16, 249.68, 27.26, 56.21, 145.44, 64.61, 33.94, 44.88, 12.55, 128.41, 126.28, 4.52, 193.73, 203.36, 143.59, 63.21, 109.13, 38.19, 136.39, 46.81, 140.92, 58.9]  # noqa: E501
EA = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1, 1]  # noqa: E501
XB = [160, 150, 140, 100, 140, 130, 160, 130, 70, 110, 120, 140, 110, 90, 150, 130, 90, 100, 150, 80, 150, 120, 120, 150, 110, 120, 170, 90, 170, 70, 90, 150, 100, 110, 140, 150, 130, 100, 140, 120]  # noqa: E501
TB = [30, 32, 18, 13, 36, 28, 37, 39, 21, 59, 9, 52, 52, 20, 13, 32, 43, 37, 46, 22, 20, 20, 38, 5, 55, 33, 7, 23, 47, 23, 50, 31, 26, 21, 14, 51, 13, 10, 34, 9]  # noqa: E501
EB = [0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1]  # noqa: E501
Z1 = [1.79, 0.33, -0.16, -0.45, 0.38, 0.01, 0.22, 0.88, 0.14, -0.09, -0.61, -1.33, 0.43, 0.36, -0.66, -0.56, -1.09, -0.99, -0.35, -0.06, 0.87, 0.56, -0.55, 0.81, -1.95, -0.39, 0.48, 1.47, -1.64, -1.21, -0.5, -1.57, -0.05, 0.26, -0.27, -0.88, 1.88, 1.58, 0.3, 1.47]  # noqa: E501
Z2 = [0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1]  # noqa: E501
TC = [39, 10, 31, 11, 15, 20, 10, 25, 17, 34, 7, 15, 23, 10, 5, 21, 7, 36, 8, 2, 1, 29, 31, 3, 4, 15, 14, 28, 27, 33, 25, 22, 1, 16, 36, 31, 36, 11, 22, 12]  # noqa: E501
CC = [2, 0, 0, 0, 1, 2, 1, 2, 2, 1, 1, 2, 1, 1, 1, 1, 1, 2, 1, 0, 0, 2, 1, 0, 2, 1, 1, 1, 0, 0, 1, 0, 1, 1, 2, 2, 0, 0, 0, 1]  # noqa: E501

# --- R output ------------------------------------------------------------------------------------
A_STATISTIC, A_ESTIMATE, A_P_CONDMC = 1.09654050933434, 131.48, 0.94031
B_STATISTIC, B_ESTIMATE, B_P_CONDMC = 1.51403227182053, 100.0, 0.46973
B_CUTS = [90, 100, 110, 120, 130, 140, 150]
COX_COEF = [0.530191607927296, 0.552100159116192]
COX_SE = [0.227406548017094, 0.394657816589401]
COX_LOGLIK = -73.0083246680239
HR_WINDOW = (0.458061166509247, 0.195018177484569, 1.075899872361458)  # exp(coef), exp(confint)
SURVDIFF_HIGH_OBS, SURVDIFF_HIGH_EXP = 19, 22.33782356288935  # group XB >= 105
A_STATS = [
    0.21085847115527975, 0.14658245327607461, 0.30798661416748480, 0.63706727963479937,
    0.25067703307392364, 0.16403561886445578, 0.01879037035752325, 0.56514182643657507,
    0.69508926473538701, 0.82138470899902027, 0.59488115943011000, 0.62146751387123789,
    0.92900139789560610, 0.58953644957601137, 0.43813746775456641, 0.58430373565634586,
    0.41737248728258214, 0.11138165213419854, 0.51269636883476188, 0.26620079468418989,
    0.00876175092420713, 1.09654050933434455, 0.73867042294819996, 0.47513290875794872,
    0.24711253200911878, 0.25468572846126242, 0.04957097498281447, 0.14113959911172375,
    0.01604835529167381, 0.05907451709789720, 0.17944535694900721, 0.00237447013861382,
    0.48910285091821498,
]
B_STATS = [
    1.478311222708403, 1.514032271820529, 0.563587857085854, 0.105133553988833,
    0.164597913596235, 0.588710237538295, 0.913870986229240,
]
COX_MART = [
    -0.9003859193950454, -0.0137894983345213, -0.1784430466451712, -0.0702718408143967,
    0.2528437514059813, -0.3504024701784397, -1.1921859493541749, -0.2712086099300823,
    0.7654041606911313, -1.8607232042993318, -0.0364670241085424, 0.0358152584880016,
    -3.2578529330816739, 0.6626075175126793, 0.9371324002611880, 0.3675633634510778,
    0.1087501143879360, -0.6276683912824891, -0.5105408084134431, 0.7593557152816927,
    0.5578520258508342, -0.2159798360312789, 0.0937587312061041, 0.9570458942303897,
    -0.6940639615713853, 0.5553450687601056, 0.9262626777167909, -0.1795880911810939,
    -0.7622509580426848, 0.7151373677398909, 0.0541914867600174, 0.7018645467273872,
    0.4104431981742804, 0.7499934309399918, 0.8316662851531578, 0.0907908098503186,
    -0.4198165233873895, 0.8396957188661667, -0.6410649356234628, 0.8091844782194837,
]
CIF1_TIME = [
    1, 5, 7, 8,
    10, 12, 14, 15,
    16, 21, 23, 25,
    28, 31, 34,
]
CIF1_EST = [
    0.0250000000000000, 0.0520833333333333, 0.1062500000000000, 0.1333333333333333,
    0.1875000000000000, 0.2177083333333333, 0.2479166666666666, 0.3083333333333333,
    0.3385416666666666, 0.3687500000000000, 0.4029861111111111, 0.4372222222222222,
    0.4745707070707071, 0.5119191919191919, 0.5642070707070707,
]
CIF1_VAR = [
    0.00062500000000000, 0.00132486575648778, 0.00260287166039916, 0.00318172804808910,
    0.00421757604303212, 0.00482338600352214, 0.00537147250786201, 0.00629276071268388,
    0.00666271092061771, 0.00698099678412078, 0.00741907800074064, 0.00776445230366698,
    0.00815578753210743, 0.00843411932883613, 0.00948977177673252,
]
CIF2_TIME = [
    4, 15, 17, 20,
    25, 29, 31, 36,
    39,
]
CIF2_EST = [
    0.0270833333333333, 0.0572916666666667, 0.0875000000000000, 0.1177083333333333,
    0.1519444444444444, 0.1892929292929293, 0.2266414141414141, 0.3312171717171717,
    0.4357929292929293,
]
CIF2_VAR = [
    0.000733989197530864, 0.001610811723090973, 0.002428943193302503, 0.003190072325591707,
    0.004139590296396468, 0.005203940437545424, 0.006138238255287913, 0.009556668867627599,
    0.020425860849276140,
]


def _surv(time, event):
    y = np.empty(len(time), dtype=SURVIVAL_DTYPE)
    y["time"], y["event"] = time, np.asarray(event, dtype=bool)
    return y


def _single_cut(x, y, ties, n_permutations=0, seed=0):
    return WindowSearch(LogRankScores(ties=ties), QuantileGrid(k=None), single_cut=True,
                        n_permutations=n_permutations, n_bootstraps=0, n_folds=0, min_events=1,
                        random_state=seed).fit(np.asarray(x, float), y)


def _lower_group_stats(search):
    """|statistic| of every cut, ordered by cut (maxstat's ``stats`` vector)."""
    scan = search.scan_[np.isneginf(search.scan_["lower"])].sort_values("upper")
    return np.abs(scan["statistic"].to_numpy()), scan["upper"].to_numpy()


@pytest.mark.parametrize("ties", ["breslow", "maxstat"])
def test_single_cut_equals_maxstat_without_ties(ties):
    s = _single_cut(XA, _surv(TA, EA), ties)
    stats, _ = _lower_group_stats(s)
    np.testing.assert_allclose(stats, A_STATS, rtol=0, atol=1e-6)
    assert s.statistic_ == pytest.approx(A_STATISTIC, abs=1e-6)
    # maxstat's estimate is the largest exposure of the lower group; our bound lies just above it
    xs = np.sort(XA)
    bound = s.upper_ if np.isfinite(s.upper_) else s.lower_
    assert xs[xs < bound].max() == A_ESTIMATE


def test_single_cut_equals_maxstat_with_ties():
    s = _single_cut(XB, _surv(TB, EB), "maxstat")
    stats, cuts = _lower_group_stats(s)
    np.testing.assert_allclose(stats, B_STATS, rtol=0, atol=1e-6)
    assert s.statistic_ == pytest.approx(B_STATISTIC, abs=1e-6)
    # cut points only between distinct values: one per maxstat cut, just above it
    xs = np.unique(XB)
    np.testing.assert_array_equal([xs[xs < c].max() for c in cuts], B_CUTS)


def test_default_ties_give_the_mantel_haenszel_logrank():
    # With tied times the default (Breslow / Nelson-Aalen) scores sum to survival::survdiff's O - E;
    # maxstat's tie formula differs slightly (documented in logrank_scores).
    s = logrank_scores(TB, np.array(EB, bool), ties="breslow")
    high = np.array(XB) >= 105
    assert s[high].sum() == pytest.approx(SURVDIFF_HIGH_OBS - SURVDIFF_HIGH_EXP, abs=1e-10)
    default = _single_cut(XB, _surv(TB, EB), "breslow").statistic_
    assert abs(default - B_STATISTIC) < 0.05  # same cut, small tie-handling difference


@pytest.mark.parametrize("x, t, e, p_r", [(XA, TA, EA, A_P_CONDMC), (XB, TB, EB, B_P_CONDMC)])
def test_permutation_p_agrees_with_maxstat_condmc(x, t, e, p_r):
    s = _single_cut(x, _surv(t, e), "maxstat", n_permutations=4000, seed=11)
    se = np.sqrt(p_r * (1 - p_r) / 4000)  # Monte Carlo error of ours (R's, with B=1e5, is smaller)
    assert abs(s.p_value_ - p_r) < 4 * se + 1e-3


def test_cox_breslow_equals_survival_coxph():
    fit = cox_fit(TB, np.array(EB, bool), np.column_stack([Z1, Z2]))
    np.testing.assert_allclose(fit.coef, COX_COEF, rtol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov)), COX_SE, rtol=1e-5)
    assert fit.loglik == pytest.approx(COX_LOGLIK, rel=1e-9)
    np.testing.assert_allclose(fit.martingale, COX_MART, atol=1e-6)


def test_cox_equals_scikit_survival():
    Z = np.column_stack([Z1, Z2])
    ref = CoxPHSurvivalAnalysis(ties="breslow").fit(Z, _surv(TB, EB))
    np.testing.assert_allclose(cox_fit(TB, np.array(EB, bool), Z).coef, ref.coef_, rtol=1e-5)


def test_hazard_ratio_equals_coxph():
    inside = (np.array(XB) >= 110) & (np.array(XB) < 150)
    hr = hazard_ratio(inside, TB, np.array(EB, bool))
    np.testing.assert_allclose([hr["hr"], hr["ci_low"], hr["ci_high"]], HR_WINDOW, rtol=1e-6)


def test_null_cox_martingale_residuals_are_logrank_scores():
    fit = cox_fit(TB, np.array(EB, bool))
    np.testing.assert_allclose(fit.martingale, logrank_scores(TB, np.array(EB, bool)), atol=1e-12)


@pytest.mark.parametrize("cause, times, est, var", [
    (1, CIF1_TIME, CIF1_EST, CIF1_VAR), (2, CIF2_TIME, CIF2_EST, CIF2_VAR),
])
def test_aalen_johansen_equals_cmprsk(cause, times, est, var):
    t, f, v = aalen_johansen(TC, CC, cause=cause)
    np.testing.assert_array_equal(t, times)
    np.testing.assert_allclose(f, est, atol=1e-12)
    np.testing.assert_allclose(v, var, atol=1e-12)


def test_aalen_johansen_equals_scikit_survival_on_bmt():
    # Real transplant data shipped with scikit-survival (Scrucca et al. 2007): 1 relapse, 2 TRM
    _, bmt = load_bmt()
    codes, time = bmt["status"].astype(int), bmt["ftime"].astype(float)
    ref_t, ref_ci = cumulative_incidence_competing_risks(codes, time)
    for cause in (1, 2):
        t, f, _ = aalen_johansen(time, codes, cause)
        at = np.searchsorted(ref_t, t)
        np.testing.assert_allclose(f, ref_ci[cause][at], atol=1e-12)


def test_subdistribution_hazard_reproduces_aalen_johansen():
    # IPCW-weighted Fine-Gray risk sets: 1 - prod(1 - dLambda) is the Aalen-Johansen estimate
    # (Geskus 2011), here with ties between events and censorings.
    codes, time = np.array(CC), np.array(TC, float)
    grid, dlam, _, _ = subdistribution_hazard(time, codes)
    ref_t, ref_ci = cumulative_incidence_competing_risks(codes, time)
    np.testing.assert_allclose(1 - np.cumprod(1 - dlam), ref_ci[1][np.searchsorted(ref_t, grid)], atol=1e-12)


def test_subdistribution_scores_equal_their_definition():
    # score_i = N_i - sum_s w_i(s) dLambda(s), w_i(s) = 1 while T_i >= s, G(s-)/G(T_i-) after a
    # competing event at T_i (Fine & Gray 1999), evaluated here patient by patient.
    from ml.features import COMPETING_DTYPE
    from ml.window import SubdistributionScores

    codes, time = np.array(CC), np.array(TC, float)
    grid, dlam, g_before, _ = subdistribution_hazard(time, codes)
    G = dict(zip(grid, g_before))
    expected = []
    for c, t in zip(codes, time):
        total = 0.0
        for s, dl in zip(grid, dlam):
            if t >= s:
                total += dl
            elif c == 2:
                total += G[s] / G[t] * dl
        expected.append((c == 1) - total)
    y = np.empty(len(TC), dtype=COMPETING_DTYPE)
    y["event"], y["time"] = codes, time
    np.testing.assert_allclose(SubdistributionScores().scores(y), expected, atol=1e-12)
