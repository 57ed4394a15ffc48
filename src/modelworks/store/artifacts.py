"""The artifact store: content-addressed bytes over any fsspec file system.

Objects live at ``<root>/objects/<sha[:2]>/<sha[2:]>``. On a local file system a write goes to
a temporary name and is renamed into place (atomic); on an object store one complete PUT (or
a completed multipart upload) makes the object appear whole. Either way a crash never leaves
a half object under a real name. Every read is verified against its hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem
from pydantic import BaseModel, ConfigDict

from ..errors import IntegrityError, InvalidInput, NotFound, StoreUnavailable

__all__ = ["ArtifactRef", "ArtifactStore", "safe_relpath", "sha256_file"]

_CHUNK = 1 << 20
_FSYNC_THREADS = 8


class ArtifactRef(BaseModel):
    """Where stored bytes are: their sha256 and size."""

    model_config = ConfigDict(frozen=True)

    sha256: str
    size: int


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def safe_relpath(name: str, *, field: str = "artifact_path") -> str:
    """A relative POSIX path that stays under its root; refuse anything that escapes it."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{field} must be a non-empty relative path", field=field)
    if "\x00" in name or "\\" in name:
        raise InvalidInput(f"{field} {name!r} contains a NUL or backslash", field=field)
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith("~") or ":" in path.parts[0]:
        raise InvalidInput(f"{field} {name!r} must be relative, not absolute", field=field)
    if any(part == ".." for part in path.parts):
        raise InvalidInput(f"{field} {name!r} escapes its root ('..' is not allowed)", field=field)
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise InvalidInput(f"{field} {name!r} names no file", field=field)
    return "/".join(parts)


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_sha(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise InvalidInput(f"not a sha256 hex digest: {sha256!r}", field="sha256")
    return sha256


class ArtifactStore:
    """Content-addressed blobs under one fsspec root (a folder, s3://, gs://, abfs://...)."""

    def __init__(self, url: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = url
        self.storage_options = dict(storage_options or {})
        try:
            fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        except (ImportError, ValueError) as exc:
            raise InvalidInput(f"artifact store {url!r}: {exc}", field="artifacts") from exc
        self.fs = fs
        self.root = root.rstrip("/")
        self.is_local = isinstance(fs, LocalFileSystem)
        if self.is_local:
            Path(self.root, "objects").mkdir(parents=True, exist_ok=True)
            Path(self.root, "tmp").mkdir(parents=True, exist_ok=True)

    def _path(self, sha256: str) -> str:
        return f"{self.root}/objects/{sha256[:2]}/{sha256[2:]}"

    def exists(self, sha256: str) -> bool:
        try:
            return bool(self.fs.exists(self._path(_check_sha(sha256))))
        except OSError as exc:
            raise StoreUnavailable(f"artifact store {self.url} is unavailable: {exc}") from exc

    # -- writing ------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> ArtifactRef:
        return self.put_many([data])[0]

    def put_many(self, blobs: Sequence[bytes]) -> list[ArtifactRef]:
        """Store several blobs; each is whole and durable when this returns.

        Locally the files are written first and flushed to disk side by side (fsync
        releases the GIL, and the file system commits concurrent flushes together): for
        ``train_many``'s thousands of small models one fsync at a time cost more than
        serialising them. On an object store the writes go out as one batch.
        """
        refs = [ArtifactRef(sha256=hashlib.sha256(d).hexdigest(), size=len(d)) for d in blobs]
        todo: dict[str, bytes] = {}
        for ref, data in zip(refs, blobs, strict=True):
            if ref.sha256 not in todo and not self.exists(ref.sha256):  # stored once
                todo[ref.sha256] = data
        if not todo:
            return refs
        if not self.is_local:
            self._remote(lambda: self.fs.pipe({self._path(sha): d for sha, d in todo.items()}))
            return refs
        tmps = {sha: self._local_tmp() for sha in todo}
        try:
            for sha, data in todo.items():
                with open(tmps[sha], "wb") as fh:
                    fh.write(data)
            if len(tmps) == 1:
                _fsync(next(iter(tmps.values())))
            else:
                with ThreadPoolExecutor(min(_FSYNC_THREADS, len(tmps))) as pool:
                    list(pool.map(_fsync, tmps.values()))
        except OSError as exc:  # a full disk, say: no temporary file is left behind
            for tmp in tmps.values():
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            raise StoreUnavailable(f"artifact store {self.url} could not be written: {exc}"
                                   ) from exc
        for sha, tmp in tmps.items():
            self._local_move(tmp, self._path(sha))
        return refs

    def put_file(self, path: str | os.PathLike[str]) -> ArtifactRef:
        src = Path(path)
        if not src.is_file():
            raise NotFound(f"no file at {str(src)!r}")
        if self.is_local:
            # Copy first, hash the copy: the bytes we keep are the bytes we hashed, even if
            # the source changes meanwhile.
            tmp = self._local_tmp()
            digest = hashlib.sha256()
            size = 0
            with open(src, "rb") as fin, open(tmp, "wb") as fout:
                while chunk := fin.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    fout.write(chunk)
                fout.flush()
                os.fsync(fout.fileno())
            sha = digest.hexdigest()
            if self.exists(sha):
                os.unlink(tmp)
            else:
                self._local_move(tmp, self._path(sha))
            return ArtifactRef(sha256=sha, size=size)
        sha = sha256_file(src)
        size = src.stat().st_size
        if not self.exists(sha):
            self._remote(lambda: self.fs.put_file(str(src), self._path(sha)))
        return ArtifactRef(sha256=sha, size=size)

    def _local_tmp(self) -> str:
        return f"{self.root}/tmp/{uuid.uuid4().hex}"

    def _local_move(self, tmp: str, target: str) -> None:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(tmp, target)  # atomic on one file system

    def _remote(self, action: Any) -> None:
        try:
            action()
        except OSError as exc:
            raise StoreUnavailable(f"artifact store {self.url} is unavailable: {exc}") from exc

    # -- reading ------------------------------------------------------------------------

    def get_bytes(self, sha256: str) -> bytes:
        """The stored bytes, verified: a mismatch raises IntegrityError."""
        path = self._path(_check_sha(sha256))
        try:
            data = self.fs.cat_file(path)
        except FileNotFoundError as exc:
            raise NotFound(f"no artifact with sha256 {sha256}") from exc
        except OSError as exc:
            raise StoreUnavailable(f"artifact store {self.url} is unavailable: {exc}") from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise IntegrityError(
                f"artifact {sha256} is corrupt: its content hashes to {actual}"
            )
        return bytes(data)

    def get_file(self, sha256: str, dest: str | os.PathLike[str]) -> Path:
        """Copy the object to ``dest`` (verified; nothing is left at ``dest`` on mismatch)."""
        path = self._path(_check_sha(sha256))
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".mw-")
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as fout, self.fs.open(path, "rb") as fin:
                while chunk := fin.read(_CHUNK):
                    digest.update(chunk)
                    fout.write(chunk)
            if digest.hexdigest() != sha256:
                raise IntegrityError(
                    f"artifact {sha256} is corrupt: its content hashes to {digest.hexdigest()}"
                )
            os.replace(tmp, dest)
        except FileNotFoundError as exc:
            raise NotFound(f"no artifact with sha256 {sha256}") from exc
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return dest

    def iter_objects(self) -> Iterator[str]:
        """Every stored object's sha256 (for verification sweeps)."""
        base = f"{self.root}/objects"
        for path in self.fs.find(base):
            rel = path[len(base) + 1 :] if path.startswith(base) else path.split("objects/")[-1]
            yield rel.replace("/", "")


