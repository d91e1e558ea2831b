"""``atgwin exposure``: per-patient AUC table of a cohort."""

from __future__ import annotations

import click

from ml._atomic import atomic_path
from ml.cli._common import exposure_options


@click.command()
@click.argument("cohort_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write the table as CSV.")
@exposure_options
def exposure(cohort_dir, out, exposure_method, pk_model):
    """Per-patient active-ATG AUC (pre, post, total) from the measured levels (MAP by default, or NCA)."""
    import numpy as np

    from ml.cli._common import cohort_exposure, load_cohort_or_exit, prepare_out

    prepare_out(out)
    cohort = load_cohort_or_exit(cohort_dir)
    table, definition = cohort_exposure(cohort, exposure_method, pk_model)
    unit = table.attrs["unit"]
    miss = table.attrs["missingness"]
    table = table.assign(unit=unit, simulated=cohort.meta.simulated)
    total = table["auc_total"].to_numpy(float)
    missing = np.isnan(total)
    q = np.nanpercentile(total, [10, 25, 50, 75, 90]) if (~missing).any() else [np.nan] * 5
    click.echo(f"{cohort.meta.name}: {cohort.n} patients, exposure unit {unit}")
    click.echo(f"definition: {definition}")
    click.echo("auc_total percentiles  10%: {:.1f}  25%: {:.1f}  50%: {:.1f}  75%: {:.1f}  90%: {:.1f}".format(*q))
    ex = miss.excluded
    click.echo(f"{miss.n_with_auc} with an AUC, {miss.n_excluded} excluded (no dose {ex['no_dose']}, no level "
               f"{ex['no_level']}, terminal slope not estimable {ex['no_terminal_slope']}); excluded rows are left "
               "empty, never imputed")
    if out:
        from ml._spreadsheet import inert_text_columns

        # ids such as "=cmd|..." would run as formulas in a spreadsheet: written as text ('=cmd|...)
        with atomic_path(out, mkdir=False) as tmp:
            inert_text_columns(table).to_csv(tmp, index=False, float_format="%.4f", lineterminator="\n")
        click.echo(f"wrote {out}")
    else:
        click.echo(table.head(10).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        if len(table) > 10:
            click.echo(f"... {len(table) - 10} more rows (use --out FILE.csv)")
