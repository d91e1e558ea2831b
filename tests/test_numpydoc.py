"""numpydoc validation of the public API: every class and function named in an ``ml`` subpackage's
``__all__`` (numpydoc's own validator, ``numpydoc.validate.validate``).

Checked (numpydoc's codes):

- GL08: there is a docstring.
- GL01, GL03, GL05-GL07, GL09, GL10: layout (blank lines, indentation, known sections in the
  standard order, deprecation and "versionadded" directives).
- SS01-SS04: a one-line summary, starting with a capital, ending with a period, no leading blank.
- PR02: no documented parameter that the signature lacks.
- PR04-PR06: every documented parameter has a type, in numpydoc's spelling.
- PR08-PR10: parameter descriptions start with a capital and end with a period; " : " separates.
- PR01, scoped: a docstring that has a Parameters section documents *every* parameter (a class
  may document its dataclass fields under Attributes instead). A one-line docstring of a small
  function whose summary says what it takes is allowed.
- RT04, RT05, YD01: the Returns section's text; a generator has Yields (a context manager's
  ``yield`` hands control to the block and is exempt).

Not checked, deliberately: SA01 / EX01 / ES01 (See Also, Examples, extended summary: the user
guides in docs/ carry the worked examples), RT01 / RT03 / PR07 (a Returns section and a
description for every parameter even when the one-line summary already says it), SS05 (the
house style writes summaries as noun phrases, "The window ..."), SS06 (long one-sentence
summaries wrap), GL02 (where the closing quotes sit), PR03 (keyword-only parameters are
documented grouped by meaning, not in signature order), RT02 (``lower, upper : numpy.ndarray``
documents two values of one type; numpydoc reads it as one named value).
"""

from __future__ import annotations

import ast
import enum
import importlib
import inspect
import pkgutil

import pytest
from numpydoc.docscrape import NumpyDocString
from numpydoc.validate import validate

import ml

CHECKED = frozenset({
    "GL01", "GL03", "GL05", "GL06", "GL07", "GL08", "GL09", "GL10",
    "SS01", "SS02", "SS03", "SS04",
    "PR02", "PR04", "PR05", "PR06", "PR08", "PR09", "PR10",
    "RT04", "RT05", "YD01",
})


def _public_objects() -> list[tuple[str, object]]:
    found = {}
    for info in pkgutil.iter_modules(ml.__path__, "ml."):
        if not info.ispkg:
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and obj.__module__.startswith("ml."):
                found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return sorted(found.items())


OBJECTS = _public_objects()


def _undocumented_parameters(obj, message: str) -> set[str]:
    """PR01's missing parameters, less those a class documents under Attributes."""
    missing = {p.lstrip("*") for p in ast.literal_eval(message.split("Parameters ", 1)[1].rsplit(" not", 1)[0])}
    doc = NumpyDocString(inspect.getdoc(obj) or "")
    if not doc["Parameters"] and not (inspect.isclass(obj) and doc["Attributes"]):
        return set()  # a one-line docstring: allowed (see the module docstring)
    if inspect.isclass(obj):
        missing -= {n.strip() for a in doc["Attributes"] for n in a.name.split(",")}
    return missing


def _problems(qualname: str, obj) -> list[str]:
    out = []
    context_manager = obj is not inspect.unwrap(obj) and inspect.isgeneratorfunction(inspect.unwrap(obj))
    for code, message in validate(qualname)["errors"]:
        if code == "YD01" and context_manager:
            continue
        if code in CHECKED:
            out.append(f"{code} {message}")
        elif code == "PR01" and not (inspect.isclass(obj) and issubclass(obj, enum.Enum)):
            missing = _undocumented_parameters(obj, message)
            if missing:
                out.append(f"PR01 parameters {sorted(missing)} not documented")
    return out


def test_the_public_api_is_found():
    names = {q.rsplit(".", 1)[1] for q, _ in OBJECTS}
    assert {"ExposureWindow", "WindowSearch", "DosingEngine", "PopPKFit", "load_cohort", "WindowStatus"} <= names
    assert len(OBJECTS) > 200


@pytest.mark.parametrize("qualname, obj", OBJECTS, ids=[q for q, _ in OBJECTS])
def test_docstring(qualname, obj):
    problems = _problems(qualname, obj)
    assert not problems, f"{qualname}:\n  " + "\n  ".join(problems)
