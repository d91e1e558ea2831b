"""``atgwin protocol-window``: a prespecified window from a publication (e.g. the haplo window the
URD trial's individualised arm doses against before any URD outcome exists)."""

from __future__ import annotations

from pathlib import Path

import click

_FIELDS = ("lower", "upper", "unit", "publication", "pmid", "population", "assay")


@click.command("protocol-window")
@click.option("--preset", type=click.Choice(["haplo-2022"]), default=None,
              help="A published window: haplo-2022 = total active-ATG AUC 100-148.5 UE*day/mL, Transplant Cell "
                   "Ther 2022;28(6):332.e1, PMID 35314377 (docs/sources.md). Explicit options override it.")
@click.option("--lower", type=float, help="Published lower bound, in --unit.")
@click.option("--upper", type=float, help="Published upper bound, in --unit.")
@click.option("--unit", help="Exposure unit as published, e.g. 'UE*day/mL' (assays cannot be converted).")
@click.option("--publication", help="Citation of the source.")
@click.option("--pmid", help="PubMed id of the source.")
@click.option("--population", help="The population the window was derived on.")
@click.option("--assay", help="The assay behind the unit.")
@click.option("--by", "by", required=True, help="Who enters the window (recorded).")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the window (JSON, status 'candidate').")
def protocol_window(preset, lower, upper, unit, publication, pmid, population, assay, by, out: Path) -> None:
    """Write a PROTOCOL window: bounds taken from a publication, labelled as such everywhere.

    It is a candidate like any other: `atgwin promote FILE --by WHO --reason WHY` validates it (its
    gates: both bounds, a named source, the published unit), and `atgwin discover DIR --evaluate
    FILE` scores it on a cohort.
    """
    from ml.cli._common import prepare_out
    from ml.window import PRESETS
    from ml.window import protocol_window as make

    given = {"lower": lower, "upper": upper, "unit": unit, "publication": publication, "pmid": pmid,
             "population": population, "assay": assay}
    values = dict(PRESETS[preset]) if preset else {}
    values.update({k: v for k, v in given.items() if v is not None})
    missing = [f"--{k}" for k in _FIELDS if values.get(k) in (None, "")]
    if missing:
        raise click.UsageError(f"a protocol window names its bounds and its source: give {', '.join(missing)} "
                               "(or --preset)")
    prepare_out(out)
    try:
        window = make(entered_by=by, **values)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    window.to_json(out)
    click.echo(f"Protocol window [{window.lower:g}, {window.upper:g}) {window.unit}\n  {window.provenance}")
    click.echo(f"Written: {out} (status 'candidate'). Next: atgwin promote {out} --by WHO --reason WHY")
