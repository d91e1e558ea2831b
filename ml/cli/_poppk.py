"""``atgwin poppk``: population PK estimation from a cohort's own levels."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click


@click.group()
def poppk() -> None:
    """Population PK of active ATG: estimate the model from a cohort's doses and levels."""


@poppk.command()
@click.argument("cohort_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None,
              help="Write the fitted model here: TOML (the format of the shipped default model), "
                   "or the same tables as JSON when the name ends in .json.")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"typical": ..., "iiv_cv": ..., "residual": ..., ...} to stdout.')
@click.option("--start", "start", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Model file with starting values (default: the shipped assumption set).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed of SAEM.")
@click.option("--explore", type=click.IntRange(min=20), default=None,
              help="Most SAEM exploration iterations (it stops earlier once stationary) [default: PopPKFit's].")
@click.option("--smooth", type=click.IntRange(min=1), default=None,
              help="SAEM smoothing iterations [default: PopPKFit's].")
@click.option("--chains", type=click.IntRange(min=1), default=1, show_default=True,
              help="Markov chains per patient.")
@click.option("--lloq", type=click.FloatRange(min=0), default=None,
              help="Assay LLOQ in the cohort's concentration unit [default: the start model's].")
@click.option("--fix-covariates", is_flag=True,
              help="Keep the covariate exponents of the start model instead of estimating them.")
@click.option("--figures", "figures", type=click.Path(file_okay=False), default=None,
              help="Write diagnostic figures (gof.png, vpc.png, eta.png, trace.png) here.")
@click.option("--vpc-sims", type=click.IntRange(min=20), default=200, show_default=True,
              help="Simulated designs for the visual predictive check.")
def fit(cohort_dir, out, as_json, start, seed, explore, smooth, chains, lloq, fix_covariates,
        figures, vpc_sims):
    """Fit the ATG population model (SAEM, M3 for BLOQ) to the levels of COHORT_DIR."""
    from ml.cli._common import load_cohort_or_exit, prepare_out, show_progress
    from ml.poppk import PopPKFit, read_model, write_model

    prepare_out(out)
    prepare_out(figures, "--figures", folder=True)
    cohort = load_cohort_or_exit(cohort_dir)
    if not cohort.has_levels:
        raise click.ClickException(
            f"{cohort_dir}: the cohort has no atg_doses/atg_levels: nothing to fit")
    try:
        start_model = read_model(start) if start else None
        if start_model is not None and start_model.concentration_unit != cohort.meta.concentration_unit:
            raise ValueError(
                f"the start model is in {start_model.concentration_unit} but the cohort's levels "
                f"are in {cohort.meta.concentration_unit}: units cannot be converted")
        budget = {k: v for k, v in (("n_explore", explore), ("n_smooth", smooth)) if v is not None}
        est = PopPKFit(start_model, n_chains=chains, estimate_covariates=not fix_covariates, lloq=lloq,
                       random_state=seed, verbose=show_progress(), **budget)
        est.fit(cohort)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    res = est.result_
    if out:
        path = write_model(est.model_, out)
        click.echo(f"wrote fitted model to {path}", err=True)
    if figures:
        _write_figures(est, Path(figures), vpc_sims, seed)
    if as_json:
        click.echo(json.dumps(_finite(res.summary()), indent=2))
    else:
        click.echo(_table(res))


def _write_figures(est, folder: Path, n_sim: int, seed: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    from ml.poppk import plot_eta, plot_goodness_of_fit, plot_trace, plot_vpc

    folder.mkdir(parents=True, exist_ok=True)
    figs = {"gof.png": plot_goodness_of_fit(est), "eta.png": plot_eta(est),
            "trace.png": plot_trace(est),
            "vpc.png": plot_vpc(est.vpc(n_sim=n_sim, random_state=seed))}
    for name, fig in figs.items():
        fig.savefig(folder / name, dpi=110)
    click.echo(f"wrote {', '.join(figs)} to {folder}", err=True)


def _table(res) -> str:
    rse = res.rse()
    lines = [f"{'parameter':<24}{'estimate':>12}{'RSE %':>9}"]

    def row(label, value, key):
        r = rse.get(key, math.nan)
        lines.append(f"{label:<24}{value:>12.4g}{r:>9.1f}" if math.isfinite(r)
                     else f"{label:<24}{value:>12.4g}{'-':>9}")

    for p, v in res.typical.items():
        row(f"typical {p}", v, f"typical.{p}")
    for k in ("CL_weight", "V1_weight", "Vmax_alc"):
        row(f"exponent {k}", res.covariates[k], f"covariates.{k}")
    for p, w in res.omega.items():
        row(f"omega {p} (CV {100 * res.iiv_cv[p]:.0f} %)", w, f"omega.{p}")
    row("residual additive", res.residual["additive"], "residual.additive")
    row("residual proportional", res.residual["proportional"], "residual.proportional")
    shrink = ", ".join(f"{k} {100 * v:.0f} %" for k, v in res.shrinkage.items())
    lines += [f"-2LL (importance sampling) {res.ofv:.1f} +- {res.ofv_se:.1f}",
              f"{res.n_patients} patients, {res.n_observations} levels, {res.n_bloq} below LLOQ; "
              f"shrinkage {shrink}; {res.elapsed_seconds:.0f} s",
              *res.notes]
    return "\n".join(lines)


def _finite(value):
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
