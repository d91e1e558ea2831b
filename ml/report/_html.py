"""The reviewer's report: one self-contained HTML file rendered from a run folder.

Everything comes from the run folder (``ml.record.RunBundle``): numbers from ``results.json``
(read as an ``ml.record.RunRecord``) and ``run.json``, aggregate tables from ``tables/``, figures from ``figures/`` embedded as base64
PNG. No network access, no script: the file opens anywhere, is archived with the run, and can be
rendered again from the run's artefacts (``atgwin report RUN_ID``).

Sections carry stable ids (``cohort``, ``exposure``, ``window``, ``statistic-map``,
``bootstrap``, ``sides`` (benefit-harm windows: which outcome sets which bound), ``incidence``,
``risk``, ``models``, ``shap``, ``transport``, ``trial-design``, ``provenance``) and
figures ``<figure id="fig-NAME">`` so tests and readers can find them.
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path

from ml._atomic import write_atomic
from ml._format import fmt_bound
from ml._status import WindowStatus
from ml.record import RunBundle


def _label(endpoint) -> str:
    from ml.window._describe import endpoint_label

    return endpoint_label(endpoint)

__all__ = ["render_report", "write_report"]

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d2733;background:#f4f6f8}
main{max-width:1180px;margin:0 auto;padding:18px 28px 60px;background:#fff}
h1{font-size:1.6em;margin:.2em 0 .1em}h2{border-bottom:2px solid #dde3ea;padding-bottom:.2em;margin-top:1.8em}
h3{margin-bottom:.3em}.sub{color:#5b6b7b;margin-top:0}
.banner{background:#b00020;color:#fff;font-weight:700;padding:12px 18px;font-size:1.15em;letter-spacing:.02em;
position:sticky;top:0;z-index:10}
.chance{background:#fff3e0;border-left:5px solid #c77700;padding:8px 14px;margin:10px 0}
.sentence{font-size:1.15em;margin:10px 0 4px}
.failed{background:#fff0f0;border:2px solid #b00020;padding:10px 16px;margin:14px 0}
.nowin{background:#fff8e1;border:2px solid #c77700;padding:10px 16px;margin:14px 0;font-size:1.1em}
.result{background:#edf7ee;border:2px solid #2e7d32;padding:10px 16px;margin:14px 0;font-size:1.1em}
table{border-collapse:collapse;margin:8px 0 14px;font-size:.92em}
th,td{border:1px solid #d5dbe1;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#eef2f6}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:14px 0 22px}figure img{max-width:100%;border:1px solid #e3e8ee}
figcaption{color:#4a5a6a;font-size:.9em;margin-top:4px}
nav{font-size:.9em;margin:8px 0 4px}nav a{margin-right:12px;color:#1558a6}
code,.mono{font-family:SFMono-Regular,Consolas,monospace;font-size:.9em}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600;font-size:.85em}
.ok{background:#d7f0d9;color:#1b5e20}.bad{background:#ffd9d9;color:#8b0000}.warn{background:#ffefc2;color:#6b4a00}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:14px}
"""

SECTIONS = [("cohort", "Cohort"), ("poppk", "PK model"), ("exposure", "Exposure"), ("window", "Window"),
            ("sides", "Floor and ceiling"), ("incidence", "Incidence"),
            ("risk", "Risk curves"), ("models", "Models"), ("shap", "SHAP"), ("private", "Individual views"),
            ("transport", "Transport"),
            ("trial-design", "Trial design"), ("provenance", "Provenance")]


def _e(v) -> str:
    return html.escape(str(v), quote=True)


def _num(v, digits: int = 1) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "&ndash;"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:.{digits}f}"


def _p(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "&ndash;"
    return f"{v:.3g}" if v >= 1e-4 else f"{v:.1e}"


_bound = fmt_bound  # one formatting of a bound for the CLI, the window's description and the report


def _ci(ci) -> str:
    if ci is None:
        return "(no interval)"
    lo = "&minus;&infin;" if ci[0] is None else f"{ci[0]:.1f}"
    hi = "+&infin;" if ci[1] is None else f"{ci[1]:.1f}"
    return f"[{lo}, {hi}]"


def _holm(pvalues: list) -> list:
    """Holm's step-down adjusted p-values (None stays None), in the input order."""
    idx = [k for k, p in enumerate(pvalues) if p is not None]
    order = sorted(idx, key=lambda k: pvalues[k])
    m = len(order)
    out: list = [None] * len(pvalues)
    running = 0.0
    for rank, k in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[k]))
        out[k] = running
    return out


def _table(rows: list[list], header: list[str], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td class='num'>{c}</td>" if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kv(pairs: list[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in pairs) + "</table>"


def _figure_html(bundle: RunBundle, name: str, meta: dict | None) -> str:
    """A figure of ``bundle`` embedded (base64 PNG) with its title and caption ('' when its file is missing)."""
    if not meta or not bundle.path(meta["file"]).is_file():
        return ""
    data = base64.b64encode(bundle.path(meta["file"]).read_bytes()).decode("ascii")
    return (f"<figure id='fig-{_e(name)}'><img alt='{_e(meta['title'])}' src='data:image/png;base64,{data}'>"
            f"<figcaption><b>{_e(meta['title'])}.</b> {_e(meta.get('caption', ''))}</figcaption></figure>")


class _Renderer:
    def __init__(self, bundle: RunBundle, trial_plan: dict | None = None, private: RunBundle | None = None):
        self.plan = trial_plan
        self.private = private
        self.b = bundle
        self.m = bundle.manifest()
        self.r = bundle.record()
        self.figs = bundle.read_json("figures/index.json", {}) or {}

    # ---------------------------------------------------------------------------- pieces
    def figure(self, name: str) -> str:
        return _figure_html(self.b, name, self.figs.get(name))

    def missing(self, what: str) -> str:
        step = self.m.get("failed_step")
        why = f" (the run failed at step <b>{_e(step)}</b>)" if step else ""
        return f"<p class='sub'>{_e(what)} not available{why}.</p>"

    @property
    def simulated(self) -> bool:
        return bool((self.r.cohort or {}).get("simulated", self.m.get("simulated", False)))

    def has_section(self, key: str) -> bool:
        """Whether the report renders section ``key`` (the navigation links only those)."""
        if key == "private":
            return self.private is not None
        if key == "transport":
            return bool(self.r.transport) or "transport" in [s["name"] for s in self.m.get("steps", [])] \
                or self.m.get("failed_step") == "transport"
        if key == "sides":
            return ((self.r.window or {}).get("artefact") or {}).get("search_kind") == "benefit-harm"
        return True

    def artefact(self, key: str = "window"):
        """The window artefact of ``results.json`` as an :class:`ml.window.ExposureWindow` (None if absent)."""
        from ml.window import ExposureWindow

        w = self.r.section(key) if key == "window" else ((self.r.transport or {}).get("rederived"))
        if not w or not w.get("artefact"):
            return None
        try:
            return ExposureWindow.from_dict(w["artefact"])
        except Exception:  # noqa: BLE001 - a report of an old or hand-made folder still renders
            return None

    def sentence(self) -> str:
        """What the window means and how sure we are, in one sentence (as ``atgwin discover`` says it)."""
        from ml.window._describe import window_sentence

        win = self.artefact()
        if win is None:
            return ""
        return f"<p class='sentence' id='window-sentence'>{_e(window_sentence(win))}</p>"

    # --------------------------------------------------------------------------- sections
    def header(self) -> str:
        m = self.m
        out = []
        if self.simulated:
            out.append("<div class='banner' id='simulated-banner'>SIMULATED DATA &mdash; a virtual cohort, not "
                       "patients. Every number below describes the simulator's assumptions.</div>")
        if self.private is not None:
            out.append("<div class='banner' id='private-banner'>PRIVATE REPORT &mdash; it shows individual patients "
                       "(per-patient SHAP views). Keep it on this machine: do not share, upload or attach it.</div>")
        status = m.get("status", "?")
        badge = "ok" if status == "FINISHED" else "bad"
        out.append("<main>")
        out.append(f"<h1>ATG exposure window &mdash; {_e(m.get('experiment', ''))}</h1>")
        out.append(f"<p class='sub'>Run <span class='mono'>{_e(m.get('run_name', ''))}</span> &middot; "
                   f"<span class='badge {badge}' id='run-status'>{_e(status)}</span> &middot; "
                   f"{_e(m.get('created_at', ''))}</p>")
        if m.get("description"):
            out.append(f"<p>{_e(m['description'])}</p>")
        out.append("<nav>" + "".join(f"<a href='#{k}'>{_e(v)}</a>" for k, v in SECTIONS if self.has_section(k))
                   + "</nav>")
        if status != "FINISHED":
            details = self.b.read_text(RunBundle.ERRORS) or m.get("error") or ""
            violations = (self.r.validation or {}).get("violations") or []
            ended = "was KILLED (interrupted)" if status == "KILLED" else "FAILED"
            out.append(f"<div class='failed' id='failure'><b>This run {ended}"
                       + (f" at step '{_e(m.get('failed_step'))}'" if m.get("failed_step") else "")
                       + ". Nothing was registered.</b>")
            if violations:
                out.append(f"<p>The cohort was refused: {len(violations)} violation(s) of the cohort format.</p><ul>"
                           + "".join(f"<li class='mono'>{_e(v)}</li>" for v in violations) + "</ul>")
            else:
                out.append(f"<pre class='mono'>{_e(details.strip()[:4000])}</pre>")
            out.append("</div>")
        out.append(self.sentence())
        out.append(self.verdict())
        return "\n".join(out)

    def truth(self, key: str = "truth") -> str:
        """The simulator's true bounds, labelled, for a simulated run ('' otherwise)."""
        t = self.r.section(key)
        if not t or not self.simulated:
            return ""
        parts = []
        for name, what in (("floor", "floor"), ("ceiling", "ceiling")):
            if t.get(name) is not None:
                parts.append(f"{what} {_num(t[name])}")
        if not parts:
            parts.append("no effect of exposure" if t.get("effect") in (None, "none") else
                         f"window [{_bound(t.get('lower'))}, {_bound(t.get('upper'))})")
        overlap = " (the harms overlap: no exposure avoids both)" if t.get("overlap") else ""
        return (f"<span class='truth'>Simulator's truth (known only because the cohort is SIMULATED; on the true "
                f"AUC): {', '.join(parts)}{overlap}.</span>")

    def verdict(self) -> str:
        w = self.r.window
        if not w:
            return ""
        art = w["artefact"]
        unit = art["unit"]
        truth = self.truth()
        finding = w.get("finding") or art.get("finding")
        reg = self.m.get("registry") or {}
        where = (f" Registered as <span class='mono'>models:/{_e(reg['name'])}/{_e(reg['version'])}</span> "
                 f"with alias <b>{_e(reg.get('alias', 'candidate'))}</b> (registry state when this report was "
                 f"written, {_e(self.m.get('finished_at', ''))}; `atgwin report` renders it again)."
                 if reg.get("version") else "")
        nothing = " Nothing is registered." if w["status"] == WindowStatus.NO_WINDOW else ""
        if finding in ("floor-only", "ceiling-only", "overlap"):
            what = {"floor-only": "Only a floor", "ceiling-only": "Only a ceiling",
                    "overlap": "The harms overlap"}[finding]
            return (f"<div class='nowin' id='verdict'><b>{what}: not a window to dose.</b> Joint adjusted p = "
                    f"{_p(w['p_value'])}; each side's evidence is in <a href='#sides'>Floor and ceiling</a>. Status "
                    f"<b>{_e(w['status'])}</b>.{where or nothing} {truth}</div>")
        if w["status"] == WindowStatus.NO_WINDOW:
            return (f"<div class='nowin' id='verdict'><b>No exposure window.</b> The adjusted p-value "
                    f"{_p(w['p_value'])} (maximum over the whole search, {w['n_permutations']} permutations) is not "
                    f"below alpha = {art['search'].get('alpha', 0.05):g}. The best-scoring window "
                    f"[{_bound(w['lower'])}, {_bound(w['upper'])}) {_e(unit)} is shown for the record only; "
                    f"nothing is registered. {truth}</div>")
        e = w.get("effect") or {}
        eff = (f" Cross-fitted hazard ratio inside vs outside {_num(e.get('hr'), 2)} "
               f"[{_num(e.get('ci_low'), 2)}, {_num(e.get('ci_high'), 2)}]." if e.get("hr") is not None else "")
        return (f"<div class='result' id='verdict'><b>Window [{_bound(w['lower'])}, {_bound(w['upper'])}) {_e(unit)}</b>, "
                f"target {_num(w['target'])}; lower bound 95% CI {_ci(w['lower_ci'])}, upper bound 95% CI "
                f"{_ci(w['upper_ci'])}; adjusted p = {_p(w['p_value'])}.{eff} Status <b>{_e(w['status'])}</b>.{where}"
                f" {truth}</div>")

    def cohort(self) -> str:
        out = ["<section id='cohort'><h2>Cohort</h2>"]
        c = self.r.cohort
        v = (self.r.validation or {})
        if not c:
            out.append(self.missing("Cohort summary"))
            out.append("</section>")
            return "\n".join(out)
        sim = ("<span class='badge bad' id='simulated-flag'>SIMULATED</span>" if c.get("simulated")
               else "<span class='badge ok'>real data</span>")
        counts = lambda d: ", ".join(f"{_e(k)} {n}" for k, n in (d or {}).items())  # noqa: E731
        pairs = [("name", _e(c.get("name", ""))), ("data", sim), ("description", _e(c.get("description", ""))),
                 ("donor source", _e(c.get("donor_source", ""))), ("patients", _num(c.get("n"))),
                 ("concentration unit", _e(c.get("concentration_unit", ""))),
                 ("exposure unit", _e(c.get("exposure_unit", ""))),
                 ("median age (IQR), years", f"{_num(c.get('age_median'))} ({_num((c.get('age_iqr') or [None])[0])}"
                                             f"&ndash;{_num((c.get('age_iqr') or [None, None])[1])})"),
                 ("male", f"{100 * c.get('male_share', float('nan')):.0f}%"),
                 ("median weight, kg", _num(c.get("weight_median"))),
                 ("conditioning", counts(c.get("conditioning_counts"))),
                 ("diagnosis", counts(c.get("diagnosis_counts"))),
                 ("CMV serostatus (recipient/donor)", counts(c.get("cmv_serostatus_counts"))),
                 ("median follow-up, days", _num(c.get("followup_median_days"), 0)),
                 ("patients with event (any time)", counts(c.get("events"))),
                 ("engrafted", counts(c.get("engraftment"))),
                 ("dataset digest", f"<span class='mono'>{_e(c.get('digest', ''))}</span>")]
        out.append(_kv(pairs))
        ok = v.get("ok", True)
        out.append(f"<p>Contract validation: <span class='badge {'ok' if ok else 'bad'}'>"
                   f"{'passed' if ok else 'refused'}</span> ({_e(v.get('source', ''))})</p>")
        if v.get("warnings"):
            out.append("<p>Warnings (do not refuse):</p><ul>" + "".join(f"<li>{_e(w)}</li>" for w in v["warnings"]) + "</ul>")
        out.append("</section>")
        return "\n".join(out)

    def poppk(self) -> str:
        out = ["<section id='poppk'><h2>Population PK model</h2>"]
        k = self.r.poppk
        if not k:
            out.append(self.missing("Population PK model"))
            out.append("</section>")
            return "\n".join(out)
        rec = k.get("model") or {}
        badge = {"fitted": "ok", "fallback": "bad"}.get(k.get("status"), "")
        pairs = [("status", f"<span class='badge {badge}' id='poppk-status'>{_e(k.get('status'))}</span>"),
                 ("origin", _e(k.get("origin", "")))]
        if rec:
            pairs += [("model", _e(rec.get("name", ""))),
                      ("digest", f"<span class='mono' id='poppk-digest'>{_e(rec.get('digest', ''))}</span>"),
                      ("file", _e(rec.get("source", "")))]
        if k.get("seconds"):
            pairs.append(("fit time, s", _num(k.get("seconds"))))
        out.append(_kv(pairs))
        for w in k.get("warnings") or []:
            out.append(f"<div class='failed' id='poppk-warning'><b>Warning:</b> {_e(w)}</div>")
        fit = k.get("fit")
        if fit:
            rse, est = fit.get("rse_percent") or {}, fit.get("estimates") or {}
            rows = [[_e(name), _num(v, 4), _num(rse.get(name), 0)] for name, v in est.items()
                    if not name.startswith(("covariates.weight_ref", "covariates.alc_ref", "residual.lloq"))]
            out.append(f"<p>{fit.get('n_patients')} patients, {fit.get('n_observations')} quantified levels, "
                       f"{fit.get('n_bloq')} below the LLOQ (M3); {fit.get('iterations')} SAEM iterations. "
                       "Relative standard errors from the linearised Fisher information; Vmax and Km are weakly "
                       "determined by this sampling design (docs/benchmarks.md, population PK fit).</p>")
            out.append(_table(rows, ["parameter", "estimate", "RSE %"], {1, 2}))
            sh = fit.get("shrinkage") or {}
            out.append("<p>Shrinkage: " + ", ".join(f"{_e(n)} {100 * v:.0f}%" for n, v in sh.items() if v is not None)
                       + ".</p>")
        out.append(self.figure("poppk_vpc"))
        out.append("</section>")
        return "\n".join(out)

    def exposure(self) -> str:
        out = ["<section id='exposure'><h2>Exposure</h2>"]
        x = self.r.exposure
        if not x:
            out.append(self.missing("Exposure"))
        else:
            ex = x.get("excluded") or {}
            why = (f" (no dose {ex.get('no_dose', 0)}, no level {ex.get('no_level', 0)}, terminal slope not "
                   f"estimable {ex.get('no_terminal_slope', 0)})" if ex else "")
            out.append(f"<p>{_e(x.get('definition') or 'Total active-ATG AUC')} ({_e(x['unit'])}). "
                       f"{x['n']} patients with an AUC; {x['n_not_estimable']} excluded{why}, never imputed.</p>")
            for w in x.get("warnings") or []:
                out.append(f"<div class='failed' id='exposure-warning'><b>Warning:</b> {_e(w)}</div>")
            out.append(_table([[_num(x[k]) for k in ("min", "p10", "p25", "median", "p75", "p90", "max")]],
                              ["min", "10%", "25%", "median", "75%", "90%", "max"], set(range(7))))
            out.append(self.figure("exposure"))
        out.append("</section>")
        return "\n".join(out)

    def window(self, key: str = "window", prefix: str = "", title: str = "Window") -> str:
        w = self.r.section(key) if not prefix else (self.r.transport or {}).get("rederived")
        sid = "window" if not prefix else "transport-window"
        out = [f"<section id='{sid}'><h2>{_e(title)}</h2>" if not prefix else f"<div id='{sid}'><h3>{_e(title)}</h3>"]
        if not w:
            out.append(self.missing("Window search"))
        else:
            art = w["artefact"]
            unit = art["unit"]
            e = w.get("effect") or {}
            rows = [
                ("status", f"<b>{_e(w['status'])}</b>" + (" &mdash; no window: nothing to dose into, nothing registered"
                                                         if w["status"] == WindowStatus.NO_WINDOW else "")),
                ("endpoint", f"{_e(art['endpoint'])}, horizon day {_num(art['horizon_days'], 0)}"),
                ("patients / events", f"{w['n']} / {w['events']} ({w['n_excluded']} excluded: no AUC)"),
                (f"lower bound ({unit})", f"{_bound(w['lower'])} &nbsp; 95% CI {_ci(w['lower_ci'])}"),
                (f"upper bound ({unit})", f"{_bound(w['upper'])} &nbsp; 95% CI {_ci(w['upper_ci'])}"),
                (f"target ({unit})", _num(w["target"])),
                ("adjusted p-value", f"{_p(w['p_value'])} &mdash; {_e(art['p_value_method'])}"),
                ("naive p-value", f"{_p(w['naive_p_value'])} (the chosen window as if pre-specified; biased low, for contrast only)"),
                ("statistic", _num(w["statistic"], 2)),
                ("estimate", f"{_e(art['search'].get('estimate', ''))}; best-scoring window "
                             f"[{_bound(w['argmax_bounds'][0])}, {_bound(w['argmax_bounds'][1])})"),
                ("intervals", _e(art["ci_method"])),
                ("honest effect", (f"HR {_num(e.get('hr'), 2)} [{_num(e.get('ci_low'), 2)}, {_num(e.get('ci_high'), 2)}], "
                                   f"p = {_p(e.get('p_value'))}; {e.get('n_inside', '?')} inside / {e.get('n_outside', '?')} "
                                   f"outside &mdash; {_e(e.get('method', ''))}") if e.get("hr") is not None else "&ndash;"),
            ]
            out.append(_kv(rows))
            if prefix:
                out.append(self.sides(art))
            if not prefix:
                out.append("<div id='statistic-map'>" + self.figure("statistic_map") + "</div>")
                out.append("<div id='bootstrap'>" + self.figure("bootstrap") + "</div>")
            else:
                out.append(self.figure("transport_exposure"))
        out.append("</section>" if not prefix else "</div>")
        return "\n".join(out)

    def sides(self, art: dict) -> str:
        """Which outcome sets which bound (benefit-harm windows): one row per side."""
        if art.get("search_kind") != "benefit-harm":
            return ""
        unit = art["unit"]
        rows = []
        for side in ("floor", "ceiling"):
            b = art.get(side) or {}
            eff = b.get("effect") or {}
            hr = (f"{_num(eff.get('hr'), 2)} [{_num(eff.get('ci_low'), 2)}, {_num(eff.get('ci_high'), 2)}]"
                  if eff else "&ndash;")
            rows.append([_e(side), _e(" + ".join(b.get("endpoints", ()))), _num(b.get("horizon_days"), 0),
                         _bound(b.get("value")), _ci(b.get("ci")), _p(b.get("p_value")), str(b.get("events", "")),
                         hr, _e(b.get("reason", ""))])
        return ("<div id='sides'><h3>Which outcome sets which bound</h3>"
                f"<p>Finding: <b>{_e(art.get('finding', ''))}</b>.</p>"
                + _table(rows, ["side", "endpoints", "horizon (days)", f"bound ({unit})", "95% CI", "adjusted p",
                                "events", "cross-fitted HR (harmed vs protected)", "evidence"]) + "</div>")

    def _model_cell(self, side: str) -> str:
        fit = ((self.r.models or {}).get("fits") or {}).get(side)
        if not fit:
            return "&ndash;"
        out = []
        for key, name in (("xgb", "tuned XGBoost"), ("cox", "Cox spline")):
            c = (fit.get(key) or {}).get("harrell_c")
            if c:
                out.append(f"{name}: Harrell's C {_num(c['mean'], 3)} [{_num(c['ci_low'], 3)}, {_num(c['ci_high'], 3)}]")
        if fit.get("at_chance"):
            out.append("<span class='badge warn'>at chance</span>")
        return "<br>".join(out)

    def _shap_cell(self, side: str, unit: str) -> str:
        e = (((self.r.shap or {}).get("sides")) or {}).get(side)
        if not e or e.get("shap_bound") is None:
            return "&ndash;"
        word = "stops falling" if side == "floor" else "starts rising"
        val = "open (no " + ("fall" if side == "floor" else "rise") + " within the observed exposure)" if e["open"] \
            else f"{_num(e['shap_bound'])} {_e(unit)}"
        agree = {True: "<span class='badge ok'>inside the scan bound's 95% CI</span>",
                 False: "<span class='badge bad'>outside the scan bound's 95% CI</span>",
                 None: "<span class='badge warn'>not comparable</span>"}[e.get("agrees")]
        chance = " (model at chance: not evidence)" if e.get("at_chance") else ""
        return f"where exposure's contribution {word}: {val} &nbsp;{agree}{chance}"

    @staticmethod
    def _incidence_cell(incs: list[dict], group: str) -> str:
        i = next((i for i in incs if i["group"] == group), None)
        if i is None:
            return "&ndash;"
        return (f"{100 * i['incidence']:.1f}% [{100 * i['ci_low']:.1f}, {100 * i['ci_high']:.1f}]"
                f"<br><small>n={i['n']}, events={i['events']}</small>")

    def sides_section(self) -> str:
        """Which outcome sets which bound (benefit-harm windows): evidence, incidences, models, SHAP."""
        w = self.r.window or {}
        art = w.get("artefact") or {}
        if art.get("search_kind") != "benefit-harm":
            return ""
        unit = art["unit"]
        truth = self.r.truth if self.simulated else None
        si = self.r.side_incidences or {}
        out = ["<section id='sides'><h2>Floor and ceiling: which outcome sets which bound</h2>",
               f"<p>Finding: <b>{_e(art.get('finding', ''))}</b>. The floor is the lowest exposure that protects "
               "against the under-exposure harm; the ceiling the highest that does not yet raise the over-exposure "
               "harm. Each side is tested one-sided, on its own endpoint(s); the global permutation test and the "
               "closed test per side are in the window table above.</p>"]
        header = ["", "floor", "ceiling"]
        rows: dict[str, list[str]] = {}

        def add(label, fn):
            rows[label] = [fn(side, art.get(side) or {}) for side in ("floor", "ceiling")]

        add("outcome", lambda s, b: f"<b>{_e(_label(b.get('endpoints', ())))}</b>"
            f"<br><small class='mono'>{_e(' + '.join(b.get('endpoints', ())))}</small>")
        add("horizon", lambda s, b: f"day {_num(b.get('horizon_days'), 0)}")
        add(f"bound ({unit}), 95% CI", lambda s, b: f"<b>{_bound(b.get('value'))}</b> {_ci(b.get('ci'))}"
            + ("" if b.get("evidenced") else " <span class='badge warn'>not evidenced: the bound stays open</span>"))
        if truth:
            add("simulator's truth (SIMULATED)", lambda s, b: _num(truth.get(s)) if truth.get(s) is not None
                else "no effect on this side")
        add("adjusted p (closed test)", lambda s, b: _p(b.get("p_value")))
        add("events by the horizon", lambda s, b: str(b.get("events", "&ndash;")))
        add("effect (cross-fitted HR, harmed vs protected side)", lambda s, b: (
            f"{_num((b.get('effect') or {}).get('hr'), 2)} [{_num((b.get('effect') or {}).get('ci_low'), 2)}, "
            f"{_num((b.get('effect') or {}).get('ci_high'), 2)}]") if b.get("effect") else "&ndash;")
        for group, name in (("below", "below"), ("inside", "inside"), ("above", "above")):
            add(f"cumulative incidence at the horizon, {name}", lambda s, b, g=group: self._incidence_cell(
                (si.get(s) or {}).get("incidences") or [], g))
        add("the model's view (cross-validated, 95% CI)", lambda s, b: self._model_cell(s))
        add("SHAP bound vs the scan", lambda s, b: self._shap_cell(s, unit))
        add("why", lambda s, b: _e(b.get("reason", "")))
        out.append(_table([[f"<b>{_e(k)}</b>", *v] for k, v in rows.items()], header))
        groups = {s: (si.get(s) or {}) for s in ("floor", "ceiling")}
        if groups["floor"]:
            g = groups["floor"]
            out.append(f"<p class='sub'>Groups: below / inside / above [{_bound(g.get('lower'))}, "
                       f"{_bound(g.get('upper'))}) {_e(unit)}"
                       + ("" if art.get("finding") == "window" else
                          " (no window was found: the groups are the sides' own best cuts, for the record)")
                       + ". Incidences: Aalen-Johansen, death without the event competing; 95% log(-log) intervals."
                       "</p>")
        chance = [s for s in ("floor", "ceiling")
                  if (((self.r.models or {}).get("fits") or {}).get(s) or {}).get("at_chance")]
        if chance:
            out.append(self.chance_warning(chance))
        out.append(self.figure("side_profiles"))
        out.append("<div class='grid2'>" + self.figure("floor_incidence") + self.figure("ceiling_incidence") + "</div>")
        out.append("</section>")
        return "\n".join(out)

    def chance_warning(self, sides: list[str]) -> str:
        names = " and ".join(f"the {s} model" for s in sides)
        return (f"<div class='chance' id='chance-warning'><b>Warning: {names} "
                f"{'is' if len(sides) == 1 else 'are'} at chance.</b> The cross-validated Harrell's C interval covers "
                "0.5: the model ranks patients' risk no better than a coin. Its SHAP values may then describe "
                "noise: do not read its explanations (importance, dependence, SHAP bound) as evidence, even where "
                "the SHAP bound agrees with the scan. The window rests on the scan and its permutation test, not on "
                "the model. (A window effect on part of the cohort can be real and still discriminate poorly: the "
                "C-index measures ranking of all patients, not a step in risk.)</div>")

    def incidence_table(self, incidences: list[dict]) -> str:
        if not incidences:
            return ""
        by: dict[str, dict] = {}
        for i in incidences:
            by.setdefault(i["outcome"], {})[i["group"]] = i
        groups = ("below", "inside", "above", "outside")
        holm = _holm([i.get("p_value") for i in incidences])
        adj = {(i["outcome"], i["group"]): a for i, a in zip(incidences, holm)}
        rows = []
        for outcome, g in by.items():
            cells = [f"<b>{_e(outcome)}</b>"]
            for name in groups:
                i = g.get(name)
                cells.append("&ndash;" if i is None else
                             f"{100 * i['incidence']:.1f}% [{100 * i['ci_low']:.1f}, {100 * i['ci_high']:.1f}]"
                             f"<br><small>n={i['n']}, events={i['events']}"
                             + ("" if i.get("p_value") is None else
                                f", p={_p(i['p_value'])}, Holm {_p(adj[(outcome, name)])}") + "</small>")
            rows.append(cells)
        h = incidences[0]["horizon_days"]
        k = sum(p is not None for p in holm)
        return (f"<p>Cumulative incidence at day {h:g} (Aalen-Johansen, competing risks; 95% CI; p compares each "
                f"group with the patients inside the window, two-sided Wald test). These are {k} comparisons: the raw p "
                "is unadjusted and descriptive; <b>Holm</b> is adjusted for all of them (Holm 1979). The window's own "
                "evidence is the permutation-adjusted p above, not these.</p>"
                + _table(rows, ["outcome", *groups]))

    def incidence(self) -> str:
        out = ["<section id='incidence'><h2>Cumulative incidence by window group</h2>"]
        inc = self.r.incidences
        if not inc:
            out.append(self.missing("Incidences"))
        else:
            if (self.r.window or {}).get("status") == WindowStatus.NO_WINDOW:
                out.append("<p class='sub'>No significant window: the groups below are those of the best-scoring "
                           "window, for the record only.</p>")
            out.append(self.incidence_table(inc))
            out.append(self.figure("incidence_curves"))
        out.append("</section>")
        return "\n".join(out)

    def risk(self) -> str:
        out = ["<section id='risk'><h2>Risk versus exposure</h2>"]
        fig = self.figure("risk_curves")
        if not fig:
            out.append(self.missing("Risk curves"))
        else:
            out.append(fig)
            roles = (self.r.shap or {}).get("roles")
            if roles:
                out.append("<p>Which outcome sets which bound (band's lower edge above 0 outside the window):</p>")
                out.append(_table([[_e(r["endpoint"]), _num(r["max_log_hr_below"], 2), _num(r["max_log_hr_above"], 2),
                                    f"<b>{_e(r['sets'])}</b>"] for r in roles],
                                  ["outcome", "max log HR below", "max log HR above", "sets bound"], {1, 2}))
        out.append("</section>")
        return "\n".join(out)

    def _fits(self) -> dict:
        """Per endpoint (``floor``, ``ceiling`` or ``composite``) the models' summary; older run folders
        (one model, no ``fits``) read as one composite."""
        mm = self.r.models or {}
        if "fits" in mm:
            return mm["fits"]
        return {"composite": mm} if mm else {}

    def models(self) -> str:
        out = ["<section id='models'><h2>Models</h2>"]
        mm = self.r.models
        table = self.b.read_table("model_metrics")
        if not mm or table is None:
            out.append(self.missing("Model metrics"))
            out.append("</section>")
            return "\n".join(out)
        if "side" not in table:
            table = table.assign(side="composite")
        fits = self._fits()
        per_side = len(fits) > 1 or "composite" not in fits
        what = ("One tuned XGBoost survival model and one Cox spline reference per side, each fitted to that "
                "side&rsquo;s endpoint(s) at its horizon (death without the event censors)." if per_side else
                "A tuned XGBoost survival model and a Cox spline reference of the composite endpoint.")
        out.append(f"<p>{what} {mm['n']} patients. Repeated, event-stratified cross-validation ({mm['cv']['folds']} folds "
                   f"&times; {mm['cv']['repeats']} repeats). Shown: mean over repeats &plusmn; SD across repeats (the "
                   "choice of folds), and an approximate 95% CI (mean &plusmn; 1.96 &times; SD of the fold values / "
                   "&radic;folds; folds are not independent, so it is a guide, not an exact interval). The XGBoost "
                   "hyperparameters were tuned on the same patients (Optuna), so its scores are optimistic; the Cox "
                   "spline model is the transparent reference.</p>")
        names = {"harrell_c": "Harrell's C", "uno_c": "Uno's C", "mean_auc": "time-dependent AUC (mean)",
                 "ibs": "integrated Brier score (lower is better)", "calib_error": "calibration |obs - pred| (lower is better)",
                 "calib_oe": "observed / expected events"}
        chance = [s for s, f in fits.items() if f.get("at_chance")]
        if chance:
            out.append(self.chance_warning(chance))
        out.append("<div id='model-metrics'>")
        for side, fit in fits.items():
            t = table[table["side"] == side]
            if not len(t):
                continue
            title = ("Composite endpoint" if side == "composite" else side.capitalize()) + ": " + \
                _e(_label(fit.get("endpoint", ""))) + f", day {_num(fit.get('horizon_days'), 0)}"
            out.append(f"<div id='models-{_e(side)}'><h3>{title}</h3>")
            out.append(f"<p class='sub'>Endpoint <span class='mono'>{_e(fit.get('endpoint', ''))}</span>: "
                       f"{fit.get('events', '?')} events by the horizon."
                       + (" <span class='badge warn'>at chance</span>" if fit.get("at_chance") else "") + "</p>")
            models = list(dict.fromkeys(t["model"]))
            rows = []
            for metric in dict.fromkeys(t["metric"]):
                cells = [_e(names.get(metric, metric))]
                for mo in models:
                    r = t[(t["metric"] == metric) & (t["model"] == mo)].iloc[0]
                    ci = (f"<br><small>95% CI [{r['ci_low']:.3f}, {r['ci_high']:.3f}]</small>"
                          if "ci_low" in r and r["ci_low"] == r["ci_low"] else "")
                    cells.append(f"{r['mean']:.3f} &plusmn; {r['sd']:.3f}{ci}")
                rows.append(cells)
            out.append(_table(rows, ["metric", *models], set(range(1, len(models) + 1))))
            tu = fit.get("tuning") or {}
            if tu:
                out.append(f"<p>Optuna (seeded TPE, median pruning): {int(tu['tuning_n_trials'])} trials, "
                           f"{int(tu['tuning_n_complete'])} complete, {int(tu['tuning_n_pruned'])} pruned; best CV "
                           f"Harrell's C {tu['tuning_best_score']:.3f}. Best parameters: <span class='mono'>"
                           + ", ".join(f"{_e(k)}={_e(round(v, 4) if isinstance(v, float) else v)}"
                                       for k, v in (fit.get("best_params") or {}).items())
                           + "</span>. Each trial is a nested MLflow run.</p>")
            prefix = "" if side == "composite" else f"{side}_"
            out.append(self.figure(f"{prefix}calibration_xgb"))
            out.append("</div>")
        out.append("</div></section>")
        return "\n".join(out)

    def shap(self) -> str:
        out = ["<section id='shap'><h2>SHAP explanations</h2>"]
        s = self.r.shap
        if not s:
            out.append(self.missing("SHAP"))
            out.append("</section>")
            return "\n".join(out)
        w = self.r.window or {}
        art = w.get("artefact") or {}
        unit = art.get("unit", "")
        sides = s.get("sides") or {"composite": s}  # older run folders: one composite explanation
        out.append("<p>SHAP values of each tuned XGBoost model on its log-hazard scale. Only aggregate views are in "
                   "this shared report (mean SHAP values per exposure bin, mean |SHAP| per feature): per-patient "
                   "views (waterfall, beeswarm, patient points) would expose quasi-identifiers of a real cohort.</p>")
        out.append("<div id='shap-vs-scan'>")
        for side, e in sides.items():
            prefix = "" if side == "composite" else f"{side}_"
            title = "Composite endpoint" if side == "composite" else f"{side.capitalize()} model"
            out.append(f"<div id='shap-{_e(side)}'><h3>{title}: {_e(_label(e.get('endpoint', art.get('endpoint', ''))))}</h3>")
            if e.get("at_chance"):
                out.append(f"<div class='chance'><b>This model is at chance</b> (its Harrell's C interval covers 0.5). "
                           "Its SHAP values explain a model that ranks patients no better than a coin: the dependence "
                           "on exposure and the importance of features below may describe noise, and the SHAP "
                           f"{'bound' if side != 'composite' else 'window'} is no independent cross-check of the scan, "
                           "even where the two agree.</div>")
            if e.get("shap_bound") is not None:
                ci = e.get("scan_ci")
                agree = {True: "inside", False: "outside", None: "not comparable with"}[e.get("agrees")]
                out.append(_table([[f"SHAP {side}", "open" if e["open"] else _num(e["shap_bound"]),
                                    f"where exposure's contribution {'stops falling' if side == 'floor' else 'starts rising'}"
                                    f" (monotone fit crosses halfway, {e['tolerance']:.2f} log-hazard above its minimum; "
                                    f"total change {e['drop']:.2f})"],
                                   [f"scan {side}", _bound(e.get("scan_bound")), f"95% CI {_ci(ci)}"]],
                                  ["", f"bound ({_e(unit)})", "definition"], {1}))
                out.append(f"<p>The SHAP {side} lies <b>{agree}</b> the scan {side}'s 95% interval.</p>")
            elif e.get("shap_window_lower") is not None:
                scan_note = " (best-scoring, not significant)" if s.get("scan_status") == WindowStatus.NO_WINDOW else ""
                out.append(_table([
                    ["SHAP window", _num(e["shap_window_lower"]), _num(e["shap_window_upper"]),
                     f"contribution of exposure within {e['shap_window_tolerance']:.2f} log-hazard of its minimum"
                     + (" (reaches the lowest exposure)" if e["shap_window_open_lower"] else "")
                     + (" (reaches the highest exposure)" if e["shap_window_open_upper"] else "")],
                    ["scan window" + scan_note, _bound(s["scan_window"][0]), _bound(s["scan_window"][1]),
                     "two-cut score scan, permutation-adjusted"],
                ], ["", f"lower ({unit})", f"upper ({unit})", "definition"], {1, 2}))
            if e.get("partner"):
                out.append(f"<p>Strongest interaction with exposure: <b>{_e(e.get('partner'))}</b>.</p>")
            out.append("<div class='grid2'>" + self.figure(f"{prefix}shap_dependence")
                       + self.figure(f"{prefix}shap_importance") + "</div>")
            out.append("</div>")
        out.append("</div></section>")
        return "\n".join(out)

    def private_views(self) -> str:
        """The individual-level views of the run's private folder (only in a private report)."""
        if self.private is None:
            return ""
        out = ["<section id='private'><h2>Individual views (PRIVATE)</h2>",
               "<p>Per-patient SHAP views, drawn because the experiment set <span class='mono'>[models] "
               "private_views = true</span>. They come from the run's private folder "
               f"<span class='mono'>{_e(self.private.root.name)}</span>, which is never sent to MLflow.</p>"]
        out += [_figure_html(self.private, name, meta) for name, meta in self.private.figures("private").items()]
        out.append("</section>")
        return "\n".join(out)

    def transport(self) -> str:
        t = self.r.transport
        if not t:
            if "transport" in [s["name"] for s in self.m.get("steps", [])] or self.m.get("failed_step") == "transport":
                return "<section id='transport'><h2>Transportability</h2>" + self.missing("Transport") + "</section>"
            return ""
        w = self.r.window or {}
        rw = t["rederived"]
        ev = t["evaluation"]
        unit = w["artefact"]["unit"]
        src = w["artefact"]["population"]["donor_source"]
        tgt = t["cohort"]["donor_source"]
        out = ["<section id='transport'><h2>Transportability</h2>",
               f"<p>The window derived on the {_e(src)} cohort applied to the {_e(tgt)} cohort "
               f"(<b>{_e(t['cohort']['name'])}</b>, {t['cohort']['n']} patients"
               + (", <b>SIMULATED</b>" if t["cohort"]["simulated"] else "") + "), and the window re-derived there.</p>"]
        rows = [
            [f"{_e(src)} window (derived)", _bound(w["lower"]), _ci(w["lower_ci"]), _bound(w["upper"]), _ci(w["upper_ci"]),
             _p(w["p_value"]), _e(w["status"])],
            [f"{_e(tgt)} window (re-derived)", _bound(rw["lower"]), _ci(rw["lower_ci"]), _bound(rw["upper"]),
             _ci(rw["upper_ci"]), _p(rw["p_value"]), _e(rw["status"])],
        ]
        out.append("<div id='transport-side-by-side'>" + _table(
            rows, ["window", f"lower ({unit})", "95% CI", f"upper ({unit})", "95% CI", "adjusted p", "status"]) + "</div>")
        if "n_inside" in ev:
            out.append(f"<p>The {_e(src)} window on the {_e(tgt)} cohort (pre-specified, so no adjustment for a search): "
                       f"{ev['n_inside']} of {ev['n']} patients inside, statistic {_num(ev['statistic'], 2)}, permutation "
                       f"p = {_p(ev['p_value'])}; hazard ratio inside vs outside {_num(ev['hr'], 2)} "
                       f"[{_num(ev['hr_ci_low'], 2)}, {_num(ev['hr_ci_high'], 2)}].</p>")
        for side, sv in ((k, ev[k]) for k in ("floor", "ceiling") if k in ev):
            where = "below the floor" if side == "floor" else "at or above the ceiling"
            out.append(f"<p>{_e(side.capitalize())} of the {_e(src)} window on the {_e(tgt)} cohort (pre-specified): "
                       f"{sv['n_inside']} of {sv['n']} patients {where}, permutation p = {_p(sv['p_value'])}; hazard "
                       f"ratio of the {side} endpoints {where} vs the rest {_num(sv['hr'], 2)} "
                       f"[{_num(sv['hr_ci_low'], 2)}, {_num(sv['hr_ci_high'], 2)}].</p>")
        out.append(self.figure("transport"))
        out.append(f"<h3>Incidences in the {_e(tgt)} cohort around the {_e(src)} window</h3>")
        out.append(self.incidence_table(t.get("incidences") or []))
        out.append(self.window(prefix="transport_", title=f"{tgt} window, re-derived"))
        out.append(self.figure("transport_statistic_map"))
        out.append(self.figure("transport_side_profiles"))
        out.append(self.figure("transport_bootstrap"))
        out.append("<div class='grid2'>" + self.figure("transport_floor_incidence")
                   + self.figure("transport_ceiling_incidence") + "</div>")
        out.append(self.figure("transport_incidence_curves"))
        out.append("</section>")
        return "\n".join(out)

    def trial_design(self) -> str:
        """What the power analysis (``atgwin trial --out``) means for the registered design (SIMULATION)."""
        out = ["<section id='trial-design'><h2>What this means for the registered trial design (simulation)</h2>"]
        plan = self.plan
        if not plan or not plan.get("plan"):
            out.append("<p class='sub'>The power of the registered design (324 patients, levels of days -5/-4, doses "
                       "of days -3/-2 adjusted) is not part of this run: <code>atgwin trial --out plan</code> computes "
                       "it on virtual patients and <code>atgwin report RUN_ID --trial-plan plan.summary.json</code> "
                       "adds it here (docs/benchmarks.md, section \"Dosing: the trial stated for its planners\").</p>"
                       "</section>")
            return "\n".join(out)
        from ml.dosing._planning import _round_n, design_paragraph

        st = plan.get("settings", {})
        n_total, alpha = int(st.get("n", 324)), float(st.get("alpha", 0.05))
        rows = plan["plan"]
        out.append(f"<p id='trial-paragraph'>{_e(design_paragraph(rows, n_total, alpha))}</p>")
        body = []
        for r in rows:
            n80 = r.get("n_for_80")
            body.append([_e(r["group"]), _e(r["assumption"]),
                         f"{100 * r['attain_individualised']:.1f} % / {100 * r['attain_fixed']:.1f} %",
                         f"{100 * r['above_individualised']:.1f} % / {100 * r['above_fixed']:.1f} %",
                         f"{100 * r['cmv_individualised']:.1f} % / {100 * r['cmv_fixed']:.1f} %",
                         f"{100 * r['power']:.1f} %", _e(_round_n(n80))])
        out.append(_table(body, ["varied", "assumption / design", "in window: individualised / fixed",
                                 "above ceiling: individualised / fixed", "CMV d180: individualised / fixed",
                                 f"power at n = {n_total}", "n for 80 %"], {2, 3, 4, 5, 6}))
        out.append(f"<p class='sub'>SIMULATED: scenario {_e(st.get('scenario', '?'))}, {_e(st.get('population', '?'))} "
                   "virtual patients per line; power and n in closed form (two-proportion z-test, Fleiss, Levin &amp; "
                   "Paik 2003, eq. 4.14).</p></section>")
        return "\n".join(out)

    def provenance(self) -> str:
        m = self.m
        c = self.r.cohort or {}
        ds = m.get("dataset") or {}
        trk = m.get("tracking") or {}
        reg = m.get("registry") or {}
        pairs = [
            ("MLflow run id", f"<span class='mono' id='run-id'>{_e(m.get('run_id') or 'not tracked')}</span>"),
            ("run name", f"<span class='mono'>{_e(m.get('run_name', ''))}</span>"),
            ("tracking URI", f"<span class='mono'>{_e(trk.get('tracking_uri', ''))}</span>"),
            ("experiment", f"{_e(m.get('experiment', ''))} (<span class='mono'>{_e(m.get('experiment_file', ''))}</span>)"),
            ("cohort source", _e(m.get("cohort_source", ""))),
            ("dataset", f"{_e(ds.get('name', c.get('name', '')))}, digest <span class='mono' id='dataset-digest'>"
                        f"{_e(ds.get('digest', c.get('digest', '')))}</span>"),
            ("code version", f"<span class='mono' id='code-version'>{_e(m.get('code_version', ''))}</span>"),
            ("created", _e(m.get("created_at", ""))), ("finished", _e(m.get("finished_at", ""))),
            ("Python", _e(m.get("python", ""))),
            ("registry", (f"<span class='mono'>models:/{_e(reg['name'])}/{_e(reg['version'])}</span>, alias "
                          f"<b>{_e(reg.get('alias'))}</b>") if reg.get("version") else _e(reg.get("note", "not registered"))),
        ]
        steps = m.get("steps") or []
        out = ["<section id='provenance'><h2>Provenance</h2>", _kv(pairs)]
        if steps:
            out.append("<h3>Steps</h3>" + _table([[_e(s["name"]), f"{s['seconds']:.1f}", _e(s["status"])] for s in steps],
                                               ["step", "seconds", "status"], {1}))
        out.append("</section>")
        return "\n".join(out)

    def render(self) -> str:
        title = f"ATG window report: {self.m.get('run_name', '')}"
        parts = [self.header(), self.cohort(), self.poppk(), self.exposure(), self.window(), self.sides_section(),
                 self.incidence(), self.risk(),
                 self.models(), self.shap(), self.private_views(), self.transport(), self.trial_design(), self.provenance(), "</main>"]
        return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
                f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
                f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def render_report(bundle: RunBundle | str | Path, trial_plan: dict | str | Path | None = None, *,
                  private: bool = False) -> str:
    """The report of a run folder as one self-contained HTML string.

    Parameters
    ----------
    bundle : RunBundle or path-like
        The run folder (as written by ``atgwin run``, or downloaded from the run's artefacts).
    trial_plan : dict or path-like, optional
        The summary JSON of ``atgwin trial --out FILE`` (``FILE.summary.json``), or its content:
        the section "trial-design" then says what the power analysis means for the registered
        design (SIMULATION); without it the section says how to add it.
    private : bool, default False
        A local, private report: add the individual-level views of the run's private folder
        (:meth:`RunBundle.private`, drawn when the experiment sets ``[models] private_views =
        true``) under a PRIVATE banner. The default report shows aggregate views only.

    Returns
    -------
    str
        HTML with every figure embedded (base64 PNG); no external resource.
    """
    if not isinstance(bundle, RunBundle):
        bundle = RunBundle(bundle)
    if not bundle.exists(RunBundle.MANIFEST):
        raise FileNotFoundError(f"{bundle.root}: not a run folder (no {RunBundle.MANIFEST})")
    if trial_plan is not None and not isinstance(trial_plan, dict):
        import json

        trial_plan = json.loads(Path(trial_plan).read_text())
    return _Renderer(bundle, trial_plan, _private_bundle(bundle) if private else None).render()


def _private_bundle(bundle: RunBundle) -> RunBundle:
    """The run's private folder, or a clear error when the run has none."""
    private = bundle.private()
    if not private.figures("private"):
        raise FileNotFoundError(
            f"{bundle.root}: no individual-level views beside this run folder (expected {private.root}): they are "
            "drawn only when the experiment sets `[models] private_views = true`, and only in the local run folder "
            "(they are never sent to MLflow)")
    return private


def write_report(bundle: RunBundle | str | Path, out: str | Path, trial_plan: dict | str | Path | None = None, *,
                 private: bool = False) -> Path:
    """Render the report of ``bundle`` (``trial_plan`` and ``private``: see :func:`render_report`) and write it
    to ``out`` (HTML), whole or not at all."""
    return write_atomic(Path(out), render_report(bundle, trial_plan, private=private), encoding="utf-8")
