"""Integrity of a window artefact: a content digest per field, signed with the centre's key.

A validated window is what the dosing engine doses into, so a hand edit of its JSON (status,
bounds, p-value, events, ``simulated``) must not go unnoticed. At promotion the window gets an
``integrity`` record:

``digest``
    SHA-256 of the canonical JSON of the whole content (every key but ``integrity``).
``fields``
    SHA-256 (first 16 hex digits) of each field, nested objects flattened to dotted names
    (``population.events``), so that a failed check names what changed.
``key_id``
    First 12 hex digits of SHA-256 of the key (which key signed, never the key itself).
``signature``
    HMAC-SHA256 (:mod:`hmac`, RFC 2104) with the centre's key over ``digest``, ``fields`` and
    ``key_id``.

The key is set by the centre: the environment variable ``ATGWIN_SIGNING_KEY`` (the key as text) or
``ATGWIN_SIGNING_KEY_FILE`` (a file holding it); :meth:`SigningKey.from_env` reads them.
:func:`verify_window` says whether a window is ``signed`` (signature and content check out),
``unsigned`` (no record, or no key here to check it with) or refuses it (:class:`IntegrityError`,
naming the fields that changed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["IntegrityError", "SigningKey", "changed_fields", "check_registered", "content_digest", "field_digests",
           "sign_window", "verify_window", "KEY_ENV", "KEY_FILE_ENV"]

#: Environment variable holding the signing key as text.
KEY_ENV = "ATGWIN_SIGNING_KEY"
#: Environment variable naming a file that holds the signing key.
KEY_FILE_ENV = "ATGWIN_SIGNING_KEY_FILE"
_ALGORITHM = "hmac-sha256"
_MIN_KEY_BYTES = 16


class IntegrityError(ValueError):
    """A window failed its integrity check; ``changed`` names the fields that differ."""

    def __init__(self, message: str, changed: tuple[str, ...] = ()):
        self.changed = tuple(changed)
        super().__init__(message)


@dataclass(frozen=True, repr=False)
class SigningKey:
    """The centre's secret key for signing validated windows (never printed: ``repr`` hides it).

    Attributes
    ----------
    secret : bytes
        At least 16 bytes.
    origin : str
        Where it was read from (for messages), e.g. ``"$ATGWIN_SIGNING_KEY"``.
    """

    secret: bytes
    origin: str = "given"

    def __post_init__(self) -> None:
        if not isinstance(self.secret, bytes) or len(self.secret) < _MIN_KEY_BYTES:
            raise ValueError(f"a signing key must be at least {_MIN_KEY_BYTES} bytes ({self.origin})")

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r}, origin={self.origin!r})"

    @property
    def key_id(self) -> str:
        """First 12 hex digits of SHA-256 of the key: names the key without revealing it."""
        return hashlib.sha256(self.secret).hexdigest()[:12]

    def mac(self, payload: bytes) -> str:
        """HMAC-SHA256 of ``payload``, hex."""
        return hmac.new(self.secret, payload, hashlib.sha256).hexdigest()

    @classmethod
    def from_env(cls, environ=None) -> SigningKey | None:
        """The key from ``ATGWIN_SIGNING_KEY`` or the file named by ``ATGWIN_SIGNING_KEY_FILE``.

        Returns
        -------
        SigningKey or None
            None when neither is set.

        Raises
        ------
        ValueError
            The key file cannot be read, or the key is shorter than 16 bytes.
        """
        env = os.environ if environ is None else environ
        text = env.get(KEY_ENV)
        if text:
            return cls(text.strip().encode(), f"${KEY_ENV}")
        path = env.get(KEY_FILE_ENV)
        if path:
            try:
                data = Path(path).read_bytes().strip()
            except OSError as exc:
                raise ValueError(f"cannot read the signing key file ${KEY_FILE_ENV}={path}: "
                                 f"{exc.strerror or exc}") from None
            return cls(data, f"${KEY_FILE_ENV} ({path})")
        return None


def _canonical(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _content(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "integrity"}


def _flatten(value, prefix: str, out: dict) -> None:
    if isinstance(value, dict) and value:
        for k in sorted(value):
            _flatten(value[k], f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = value


def content_digest(data: dict) -> str:
    """SHA-256 (``sha256:<hex>``) of the canonical JSON of a window dict, ``integrity`` left out."""
    return "sha256:" + hashlib.sha256(_canonical(_content(data))).hexdigest()


def field_digests(data: dict) -> dict[str, str]:
    """SHA-256 (16 hex digits) of each field of a window dict, nested objects as dotted names."""
    flat: dict = {}
    _flatten(_content(data), "", flat)
    return {k: hashlib.sha256(_canonical(v)).hexdigest()[:16] for k, v in flat.items()}


def _signed_part(record: dict) -> bytes:
    return _canonical({k: record.get(k) for k in ("algorithm", "digest", "fields", "key_id")})


def sign_window(data: dict, key: SigningKey) -> dict:
    """The ``integrity`` record of a window dict (``ExposureWindow.to_dict()``), signed with ``key``."""
    record = {"algorithm": _ALGORITHM, "digest": content_digest(data), "fields": field_digests(data),
              "key_id": key.key_id}
    record["signature"] = key.mac(_signed_part(record))
    return record


def verify_window(data: dict, key: SigningKey | None) -> str:
    """Check the ``integrity`` record of a window dict.

    Parameters
    ----------
    data : dict
        The window as read (``ExposureWindow`` JSON).
    key : SigningKey or None
        The centre's key; None when none is configured here.

    Returns
    -------
    str
        ``"signed"`` when the signature and the content check out; ``"unsigned"`` when the window
        has no record, or when no key is configured to check it with.

    Raises
    ------
    IntegrityError
        The record was edited or signed with another key, or the content changed since signing
        (the message and ``changed`` name the fields).
    """
    record = data.get("integrity")
    if record is None:
        return "unsigned"
    if not (isinstance(record, dict) and record.get("algorithm") == _ALGORITHM
            and isinstance(record.get("fields"), dict) and isinstance(record.get("signature"), str)):
        raise IntegrityError(f"the integrity record is malformed (expected a {_ALGORITHM} record with digest, "
                             "fields, key_id and signature)", ("integrity",))
    if key is None:
        return "unsigned"
    if record.get("key_id") != key.key_id:
        raise IntegrityError(f"signed with another key (key id {record.get('key_id')!r}; this centre's key "
                             f"{key.origin} has id {key.key_id!r})", ("integrity.key_id",))
    if not hmac.compare_digest(record["signature"], key.mac(_signed_part(record))):
        raise IntegrityError("the integrity record was edited (its signature does not match)", ("integrity",))
    changed = changed_fields(data, record)
    if changed or record.get("digest") != content_digest(data):
        raise IntegrityError(f"content changed since it was signed: {', '.join(changed) or 'field order'}",
                             changed)
    return "signed"


def changed_fields(data: dict, record: dict | None) -> tuple[str, ...]:
    """Fields (dotted names) whose digest differs from the one in an ``integrity`` record (sorted)."""
    then = record.get("fields") if isinstance(record, dict) else None
    if not isinstance(then, dict):
        return ()
    now = field_digests(data)
    return tuple(sorted(k for k in set(now) | set(then) if now.get(k) != then.get(k)))


def check_registered(data: dict, registered_digest: str | None, where: str) -> None:
    """Refuse a window whose content is not the content registered (the registry as source of truth).

    Parameters
    ----------
    data : dict
        The window as downloaded.
    registered_digest : str or None
        :func:`content_digest` recorded when the version was registered (None: not recorded, no check).
    where : str
        The version, for the message (``models:/NAME/VERSION``).

    Raises
    ------
    IntegrityError
        The digests differ; the message names the fields changed when the window carries a
        signed record to compare with.
    """
    if not registered_digest:
        return
    found = content_digest(data)
    if found == registered_digest:
        return
    changed = changed_fields(data, data.get("integrity"))
    raise IntegrityError(
        f"{where}: the window artefact in the store is not the one registered (digest {found[7:19]}, registered "
        f"{registered_digest[7:19]}): it was changed after registration"
        + (f" (changed: {', '.join(changed)})" if changed else ""), changed)
