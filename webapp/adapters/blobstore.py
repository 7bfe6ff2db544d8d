"""A content-addressed blob store in a folder: equal bytes are stored once, under their SHA-256."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class BlobMissing(LookupError):
    """No blob with that hash is stored."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FolderBlobStore:
    """Blobs as files ``ab/abcd…`` under ``root`` (256 folders: one more level would cost a mkdir for
    nearly every blob); written to a temporary name, then linked into place."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("not a SHA-256 hex digest")
        return self.root / digest[:2] / digest

    def _old_path(self, digest: str) -> Path:
        # The first layout (ab/cd/abcd…), still read.
        return self.root / digest[:2] / digest[2:4] / digest

    def put(self, data: bytes, *, durable: bool = True) -> str:
        """Store ``data`` and return its hash. ``durable=False`` leaves the flush to :meth:`sync`, so a
        batch costs one flush; either way it must be durable before rows naming it are committed."""
        digest = sha256(data)
        target = self.path(digest)
        if target.exists():
            return digest
        if not target.parent.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                if durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            try:
                os.link(tmp, target)
            except FileExistsError:
                pass  # another process stored the same bytes first
        finally:
            os.unlink(tmp)
        return digest

    @staticmethod
    def sync() -> None:
        """Flush every blob written with ``durable=False`` to disk (one call per batch)."""
        os.sync()

    def get(self, digest: str) -> bytes:
        for path in (self.path(digest), self._old_path(digest)):
            try:
                return path.read_bytes()
            except FileNotFoundError:
                continue
        raise BlobMissing(digest)

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists() or self._old_path(digest).exists()
