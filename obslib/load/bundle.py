"""Evidence bundles: the exact rows every loader call of a report's run returned, kept beside
the report, and the same calls answered from them when the report is re-run.

One hook, here: ``obslib.load`` exports each loader wrapped by ``hooked``. Off (the
default), a wrapped loader is the loader plus one test of a global. A run's kernel turns it
on with one line the runner appends to the notebook's ``parameters`` cell for the run and
takes out of the executed notebook afterwards (``record(folder)`` or ``replay(folder)``:
an environment variable would not do, because triage starts its kernels before it knows
which incident they will draft).

- Recording: each call runs as it would, and its result is written to ``calls/``: the
  call's identity and result in ``NNN-function.json``, each DataFrame of the result in a
  Parquet file of its own (``_bundle_codec``).
- Replaying: each call is answered from the bundle and the loader is never called; the
  k-th call with an identity gets what the k-th such call returned. A call the recorded
  run did not make fails, naming it: it never reaches a database.

A call's identity is the function's name and its bound arguments (defaults applied) as
canonical JSON, without the connection arguments (``url``): a bundle never holds a URL.
Nested calls (a loader calling another exported one) are the outer call's business.
"""

from __future__ import annotations

import functools
import inspect
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from obslib.load._bundle_codec import (
    CONNECTION_ARGUMENTS,
    BundleError,
    canonical,
    decode,
    encode,
    file_sha256,
    frame_bytes,
    read_frame,
    sha256,
)

__all__ = [
    "MANIFEST",
    "BundleError",
    "MissingCall",
    "call_identity",
    "hooked",
    "read_manifest",
    "record",
    "replay",
    "stop",
    "verify",
]

MANIFEST = "manifest.json"
CALLS = "calls"
FORMAT = "obslib-bundle/1"

F = TypeVar("F", bound=Callable[..., Any])


class MissingCall(BundleError):
    """A re-run made a loader call the recorded run did not (or made it more often)."""


class _State(threading.local):
    inside = False  # in a hooked call of this thread: nested calls pass through


_session: _Recorder | _Replayer | None = None
_state = _State()


def hooked(loader: F) -> F:
    """``loader``, recorded or answered from a bundle while a session is on."""
    signature = inspect.signature(loader)
    name = loader.__name__

    @functools.wraps(loader)
    def call(*args: Any, **kwargs: Any) -> Any:
        session = _session
        if session is None or _state.inside:
            return loader(*args, **kwargs)
        _state.inside = True
        try:
            return session.call(name, signature, loader, args, kwargs)
        finally:
            _state.inside = False

    return call  # type: ignore[return-value]


def call_identity(
    name: str, signature: inspect.Signature, args: tuple, kwargs: dict
) -> tuple[str, dict[str, object], inspect.BoundArguments]:
    """(identity, the arguments as written to the bundle, the bound arguments to call with).

    One-shot iterables (a generator of windows) are taken into lists first, so the loader
    and the identity see the same values."""
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    for key, value in bound.arguments.items():
        if isinstance(value, Iterator) or (
            isinstance(value, Iterable)
            and not isinstance(value, str | bytes | list | tuple | set | frozenset | Mapping)
            and not isinstance(value, pd.DataFrame | pd.Series | pd.Index)
        ):
            bound.arguments[key] = list(value)
    shown = {
        key: canonical(value, f"{name}({key}=...)")
        for key, value in bound.arguments.items()
        if key not in CONNECTION_ARGUMENTS
    }
    identity = json.dumps({"function": name, "arguments": shown}, sort_keys=True)
    return identity, shown, bound


def describe(name: str, arguments: Mapping[str, object], width: int = 200) -> str:
    """``spans(start=..., end=...)`` on one line, cut at ``width`` characters."""
    text = ", ".join(f"{k}={json.dumps(v, sort_keys=True)}" for k, v in arguments.items())
    shown = f"{name}({text})"
    return shown if len(shown) <= width else shown[: width - 4] + "...)"


# -- recording ---------------------------------------------------------------------------------


class _Recorder:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        (self.folder / CALLS).mkdir(parents=True, exist_ok=True)
        self.count = 0
        self.frames: dict[str, str] = {}  # Parquet bytes' SHA-256 -> the file holding them
        self.lock = threading.Lock()

    def call(
        self, name: str, signature: inspect.Signature, loader: Callable, args: tuple, kwargs: dict
    ) -> Any:
        _, shown, bound = call_identity(name, signature, args, kwargs)
        result = loader(*bound.args, **bound.kwargs)
        with self.lock:
            self.count += 1
            stem = f"{self.count:03d}-{name}"
            frames: dict[str, dict[str, str]] = {}

            def put_frame(frame: pd.DataFrame) -> str:
                data, json_columns = frame_bytes(frame, f"{name} (call {self.count})")
                digest = sha256(data)
                if digest not in self.frames:  # the same rows twice are stored once
                    suffix = "" if not frames else f".{len(frames)}"
                    file = f"{CALLS}/{stem}{suffix}.parquet"
                    (self.folder / file).write_bytes(data)
                    self.frames[digest] = file
                file = self.frames[digest]
                frames[file] = json_columns
                return file

            shape = encode(result, put_frame, name)
            entry = {"function": name, "arguments": shown, "result": shape, "frames": frames}
            (self.folder / f"{CALLS}/{stem}.json").write_text(
                json.dumps(entry, indent=1, sort_keys=True), encoding="utf-8"
            )
        return result


# -- replaying ---------------------------------------------------------------------------------


class _Replayer:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        self.hashes: dict[str, str] = self.manifest["files"]
        self.queues: dict[str, deque[dict]] = {}
        self.made: dict[str, int] = {}
        self.lock = threading.Lock()
        for file in self.manifest["calls"]:
            entry = json.loads(self._read(file))
            identity = json.dumps(
                {"function": entry["function"], "arguments": entry["arguments"]}, sort_keys=True
            )
            self.queues.setdefault(identity, deque()).append(entry)

    def _read(self, file: str) -> bytes:
        """A file of the bundle, refused unless its bytes have the manifest's SHA-256."""
        expected = self.hashes.get(file)
        if expected is None:
            raise BundleError(f"{self.folder.name}/{file}: not in the bundle's manifest")
        try:
            data = (self.folder / file).read_bytes()
        except OSError as err:
            raise BundleError(f"{self.folder.name}/{file}: unreadable: {err.strerror}") from None
        if sha256(data) != expected:
            raise BundleError(f"{self.folder.name}/{file}: its SHA-256 does not match the manifest")
        return data

    def call(
        self, name: str, signature: inspect.Signature, loader: Callable, args: tuple, kwargs: dict
    ) -> Any:
        identity, shown, _ = call_identity(name, signature, args, kwargs)
        with self.lock:
            queue = self.queues.get(identity)
            made = self.made.get(identity, 0)
            if not queue:
                what = f"only {made} time{'s' if made != 1 else ''}" if made else "no such call"
                raise MissingCall(
                    f"{describe(name, shown)} is not in the bundle {self.folder.name}"
                    f" (the run that wrote it made {what}); nothing reached a database"
                )
            entry = queue.popleft()
            self.made[identity] = made + 1
        frames = entry["frames"]
        return decode(entry["result"], lambda file: read_frame(self._read(file), frames[file]))


def record(folder: str | Path) -> None:
    """From now on in this process, record every loader call into bundle ``folder``."""
    global _session
    _session = _Recorder(Path(folder))


def replay(folder: str | Path) -> None:
    """From now on in this process, answer every loader call from bundle ``folder``."""
    global _session
    _session = _Replayer(Path(folder))


def stop() -> None:
    """Loaders call the database again."""
    global _session
    _session = None


# -- the manifest ------------------------------------------------------------------------------


def read_manifest(folder: Path) -> dict:
    """The bundle's manifest; BundleError (one line, exit 2) if there is none or it is not
    one obslib wrote."""
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{folder}: not a bundle (no {MANIFEST})") from None
    except (OSError, ValueError) as err:
        raise BundleError(f"{path}: cannot read it ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: not a manifest of format {FORMAT}")
    for key in ("files", "calls", "parameters"):
        if not isinstance(manifest.get(key), dict | list):
            raise BundleError(f"{path}: has no {key!r}")
    return manifest


def verify(folder: str | Path) -> list[str]:
    """Every problem with bundle ``folder``, one line each (empty: every file is there
    and has the manifest's SHA-256, and nothing else is): a changed, missing or extra
    file. A file name outside the bundle is refused too."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    problems = []
    root = folder.resolve()
    for file, expected in sorted(manifest["files"].items()):
        path = (folder / file).resolve()
        if root not in path.parents:
            problems.append(f"{file}: outside the bundle")
        elif not path.is_file():
            problems.append(f"{file}: missing")
        elif file_sha256(path) != expected:
            problems.append(f"{file}: SHA-256 does not match the manifest")
    listed = {*manifest["files"], MANIFEST}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if name not in listed:
            problems.append(f"{name}: not in the manifest")
    return problems
