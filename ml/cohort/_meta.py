"""``cohort.toml``: rules on the metadata, and a small deterministic TOML writer.

The writer covers what a :class:`~ml.cohort.CohortMeta` holds (strings, booleans, integers,
floats including ``nan``/``inf``, arrays of those, nested tables under ``[truth]``), so the
package needs no TOML-writing dependency. Floats are written with ``repr`` (exact round trip).
"""

from __future__ import annotations

import math
import numbers
import re

from ml.cohort._model import DONOR_SOURCES, CohortMeta
from ml.cohort._schema import KNOWN_CONCENTRATION_UNITS
from ml.cohort._violation import Violation

T = "cohort.toml"
_KNOWN_KEYS = ("name", "donor_source", "concentration_unit", "simulated", "description", "truth")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_meta(doc: dict, violations: list[Violation], warnings: list[Violation]) -> None:
    """Append the violations and warnings of a parsed ``cohort.toml`` document."""

    def bad(key: str, rule: str) -> None:
        violations.append(Violation.at(T, key, rule))

    for key in ("name", "donor_source", "concentration_unit", "simulated"):
        if key not in doc:
            bad(key, "key missing")
    name = doc.get("name")
    if "name" in doc and not (isinstance(name, str) and name.strip()):
        bad("name", f"must be a non-empty string, got {name!r}")
    source = doc.get("donor_source")
    if "donor_source" in doc and source not in DONOR_SOURCES:
        bad("donor_source", f"must be one of {', '.join(DONOR_SOURCES)}, got {source!r}")
    if "concentration_unit" in doc:
        _check_unit(doc["concentration_unit"], bad)
    simulated = doc.get("simulated")
    if "simulated" in doc and not isinstance(simulated, bool):
        bad("simulated", f"must be true or false, got {simulated!r}")
    if "description" in doc and not isinstance(doc["description"], str):
        bad("description", f"must be a string, got {doc['description']!r}")
    if "truth" in doc:
        _check_truth(doc["truth"], simulated, bad)
    for key in doc:
        if key not in _KNOWN_KEYS:
            warnings.append(Violation.at(T, key, "unknown key, ignored"))


def _check_unit(unit, bad) -> None:
    if not (isinstance(unit, str) and unit.strip()):
        bad("concentration_unit", f"must be a non-empty string such as 'UE/mL', got {unit!r}")
    elif unit not in KNOWN_CONCENTRATION_UNITS:
        bad("concentration_unit",
            f"unknown unit {unit!r} (known: {', '.join(KNOWN_CONCENTRATION_UNITS)})")


def _check_truth(truth, simulated, bad) -> None:
    if not isinstance(truth, dict):
        bad("truth", f"must be a table, got {truth!r}")
        return
    if simulated is False:
        bad("truth", "only allowed when simulated = true")
    for key in ("lower", "upper"):
        if key in truth and not _is_number(truth[key]):
            bad(f"truth.{key}", f"must be a number, got {truth[key]!r}")
    if "scenario" in truth and not isinstance(truth["scenario"], str):
        bad("truth.scenario", f"must be a string, got {truth['scenario']!r}")
    lower, upper = truth.get("lower"), truth.get("upper")
    if (_is_number(lower) and _is_number(upper) and math.isfinite(lower)
            and math.isfinite(upper) and not lower < upper):
        bad("truth", f"lower < upper must hold, got lower={lower!r}, upper={upper!r}")


def meta_from_doc(doc: dict) -> CohortMeta:
    """Build the metadata from a ``cohort.toml`` document that passed :func:`check_meta`."""
    return CohortMeta(
        name=doc["name"], donor_source=doc["donor_source"],
        concentration_unit=doc["concentration_unit"], simulated=doc["simulated"],
        description=doc.get("description", ""), truth=doc.get("truth"))


def doc_from_meta(meta: CohortMeta) -> dict:
    """The ``cohort.toml`` document of ``meta`` (``description`` and ``truth`` only if set)."""
    doc = {"name": meta.name, "donor_source": meta.donor_source,
           "concentration_unit": meta.concentration_unit, "simulated": meta.simulated}
    if meta.description != "":
        doc["description"] = meta.description
    if meta.truth is not None:
        doc["truth"] = meta.truth
    return doc


# --- writer -------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}


def _key(key) -> str:
    if not isinstance(key, str):
        raise TypeError(f"TOML keys must be strings, got {key!r}")
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) to cohort.toml")


def _table(doc: dict, prefix: str, out: list[str]) -> None:
    for key, value in doc.items():
        if not isinstance(value, dict):
            out.append(f"{_key(key)} = {_value(value)}")
    for key, value in doc.items():
        if isinstance(value, dict):
            path = f"{prefix}.{_key(key)}" if prefix else _key(key)
            out.extend(["", f"[{path}]"])
            _table(value, path, out)


def toml_text(doc: dict) -> str:
    """Serialise a ``cohort.toml`` document: keys in insertion order, ``\\n`` line ends."""
    out: list[str] = []
    _table(doc, "", out)
    return "\n".join(out) + "\n"
