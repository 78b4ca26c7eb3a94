"""Signed messages, and reading pickles from the record without running code.

Huey's messages and results are pickles: unpickling bytes that someone else
wrote runs their code. With a key ([taskctl] signing_key_env or
signing_key_file), every message and result carries an HMAC (Huey's
SignedSerializer), and a consumer refuses bytes that do not carry this key's.
Without one, the commands that need a job's pickle (`retry`, `enqueue --wait`)
load it with an unpickler that builds plain data only (no class or function
outside a short list), so forged bytes cannot run code there either.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import secrets
import stat
from pathlib import Path
from typing import Any

from huey.serializer import Serializer, SignedSerializer

from taskctl.config import Settings
from taskctl.errors import BadSignature, ConfigError, NotPlainData
from taskctl.private_files import create_file

SALT = "taskctl"
_SIGNED = re.compile(rb":[0-9a-f]{40}\Z")


class TaskctlSigner(SignedSerializer):
    "Huey's SignedSerializer, whose refusals say why, under one error type."

    def _unsign(self, signed: bytes) -> bytes:
        if not _SIGNED.search(signed):
            raise BadSignature("the message is not signed; this consumer runs signed messages only")
        try:
            return super()._unsign(signed)
        except ValueError:
            raise BadSignature("the signature does not match this key: forged, or signed with another key") from None


def serializer(settings: Settings) -> Serializer:
    "The serializer of messages and results: signed when the config names a key."
    key = signing_key(settings)
    return TaskctlSigner(secret=key, salt=SALT) if key is not None else Serializer()


def signing_key(settings: Settings) -> str | None:
    "The key from the variable, or the file, that the config names; None without signing."
    if settings.signing_key_env:
        key = os.environ.get(settings.signing_key_env)
        if not key:
            raise ConfigError(
                f"[taskctl] signing_key_env names ${settings.signing_key_env}, which is not set; "
                "export it (a service reads it from its environment file)"
            )
        return key
    path = settings.signing_key_file
    if path is None:
        return None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(f"signing key file {path} does not exist; create it with `taskctl key create`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read signing key file {path}: {exc}") from None
    if mode & 0o077:
        raise ConfigError(f"signing key file {path} can be read by others (mode {mode:04o}); chmod 600 it")
    if len(key) < 32:
        raise ConfigError(f"signing key file {path} holds a key shorter than 32 characters; make a new one")
    return key


def create_key(path: Path) -> None:
    "A new random key in a file only its owner can read; an existing file is kept."
    path.parent.mkdir(parents=True, exist_ok=True)
    if not create_file(path, content=(secrets.token_urlsafe(48) + "\n").encode()):
        raise ConfigError(f"{path} exists already; delete it first to replace the key (queued jobs need the old one)")


def load_trusted(serializer: Serializer, data: bytes) -> Any:
    """Bytes from the record, for a command: checked against the key when signing;
    else loaded as plain data only (NotPlainData for anything more)."""
    if isinstance(serializer, SignedSerializer):
        return serializer.deserialize(data)
    raw = Serializer(compression=serializer.comp, use_zlib=serializer.use_zlib)
    raw._deserialize = _plain_loads  # type: ignore[method-assign]
    return raw.deserialize(data)


# What a message or result holds when its values are plain data: building these
# runs no code of the pickle's choosing.
_PLAIN = {
    "builtins": {"list", "dict", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float"}
    | {"complex", "bool", "slice", "range"},
    "collections": {"OrderedDict", "deque"},
    "datetime": {"datetime", "date", "time", "timedelta", "timezone"},
    "decimal": {"Decimal"},
    "fractions": {"Fraction"},
    "uuid": {"UUID"},
    "huey.registry": {"Message"},
    "huey.utils": {"Error"},
}


# Builders of a sequence from an argument: given a size (bytes(10**12)) or a range
# (list(range(10**10))), a pickle of a few bytes would make gigabytes. Their data
# comes in the pickle itself, which bounds it.
_SIZED = {("builtins", n) for n in ("list", "tuple", "set", "frozenset", "bytes", "bytearray")} | {
    ("collections", "deque")
}


def _bounded(build: Any) -> Any:
    def plain(*args: Any) -> Any:
        if args and isinstance(args[0], int | range):
            raise NotPlainData(f"it builds a {build.__name__} from a size or a range, which plain data never does")
        return build(*args)

    return plain


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if name in _PLAIN.get(module, ()):
            found = super().find_class(module, name)
            return _bounded(found) if (module, name) in _SIZED else found
        raise NotPlainData(
            f"it holds {module}.{name}, which taskctl loads from signed messages only "
            "(set [taskctl] signing_key_file; see the README's Signing)"
        )


def _plain_loads(data: bytes) -> Any:
    return _PlainUnpickler(io.BytesIO(data)).load()
