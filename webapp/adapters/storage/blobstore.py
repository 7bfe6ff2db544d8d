"""A content-addressed blob store in a folder: equal bytes are stored once, under their SHA-256."""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from pathlib import Path

_names = itertools.count()


class BlobMissing(LookupError):
    """No blob with that hash is stored."""


def sha256(data: bytes) -> str:
    """The SHA-256 of ``data`` as 64 lower-case hex digits: the name a blob is stored under."""
    return hashlib.sha256(data).hexdigest()


class FolderBlobStore:
    """Blobs as files ``ab/abcd…`` under ``root`` (256 folders: one more level would cost a mkdir for
    nearly every blob); written to a temporary name, then linked into place."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        """The file of blob ``digest``; ValueError unless it is a SHA-256 hex digest (so never a path)."""
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError("not a SHA-256 hex digest")
        return Path(self._file(digest))

    def _file(self, digest: str) -> str:
        # The layout, as a plain string: put() runs thousands of times a second and needs no pathlib.
        return f"{self.root}/{digest[:2]}/{digest}"

    def put(self, data: bytes, *, durable: bool = True) -> str:
        """Store ``data`` and return its hash. ``durable=False`` leaves the flush to :meth:`sync`, so a
        batch costs one flush; either way it must be durable before rows naming it are committed."""
        digest = sha256(data)
        target = self._file(digest)  # our own hash: no need to check it
        try:
            # Already stored: mark it as just used, so a garbage collection running now spares it until the
            # rows naming it are committed (see collect). Gone meanwhile: write it again.
            os.utime(target)
            return digest
        except FileNotFoundError:
            pass
        # Plain os calls on a name of our own: a fetch stores thousands of blobs a second, and mkstemp's
        # random names and pathlib cost more than the writing.
        tmp = f"{os.path.dirname(target)}/.tmp-{os.getpid()}-{threading.get_ident()}-{next(_names)}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, target)
            except FileExistsError:
                pass  # another process stored the same bytes first
        finally:
            os.unlink(tmp)
        return digest

    def sync(self) -> None:
        """Flush the blobs written with ``durable=False`` to disk (one call per batch): the filesystem that
        holds the blob folder (syncfs), not the whole machine; fsyncing each file would cost a journal
        commit per blob."""
        if not _syncfs(str(self.root)):
            os.sync()

    def get(self, digest: str) -> bytes:
        """The bytes of blob ``digest``; BlobMissing when it is not stored."""
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobMissing(digest) from None

    def exists(self, digest: str) -> bool:
        """Is blob ``digest`` stored?"""
        return self.path(digest).exists()

    def collect(self, referenced: set[str], older_than: float, *, dry_run: bool = False) -> tuple[int, int]:
        """Remove the blobs not in ``referenced`` whose last use (mtime) is before ``older_than`` (epoch
        seconds), and leftover temporary files; return (how many, bytes).

        A blob is first renamed aside and its last use checked again there: a fetch that used it after the
        first look (``put`` touches it, or writes it anew) gets it back, so no committed row loses its bytes.
        """
        count = size = 0
        if not self.root.is_dir():
            return 0, 0
        for folder in sorted(self.root.iterdir()):
            if not folder.is_dir() or len(folder.name) != 2:
                continue
            # Closed even when the collection is interrupted: an open listing holds a file descriptor.
            with os.scandir(folder) as entries:
                for entry in entries:
                    removed = self._collect_entry(entry, referenced, older_than, dry_run)
                    if removed is not None:
                        count, size = count + 1, size + removed
        return count, size

    @staticmethod
    def _collect_entry(entry: os.DirEntry[str], referenced: set[str], older_than: float, dry_run: bool) -> int | None:
        """Remove one unreferenced, unused blob (see collect); its size, or None when it stays."""
        try:
            stat = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # a writer's temporary file, renamed into place since the listing
            return None
        if stat.st_mtime >= older_than:
            return None
        if entry.name.startswith(".tmp-"):
            if not dry_run:
                _unlink(entry.path)
            return None
        if len(entry.name) != 64 or entry.name in referenced:
            return None
        if dry_run:
            return stat.st_size
        aside = f"{entry.path}.gc-{os.getpid()}"
        try:
            os.rename(entry.path, aside)
        except FileNotFoundError:
            return None
        if os.stat(aside).st_mtime >= older_than:  # used again just now: put it back
            try:
                os.link(aside, entry.path)
            except FileExistsError:
                pass  # written anew meanwhile: the same bytes
            _unlink(aside)
            return None
        _unlink(aside)
        return stat.st_size


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _syncfs(folder: str) -> bool:
    """syncfs(2) on the filesystem holding ``folder`` (Linux); False where it is not available."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except (OSError, AttributeError):
        return False
    try:
        return bool(libc.syncfs(fd) == 0)
    except AttributeError:
        return False
    finally:
        os.close(fd)
