# SPDX-License-Identifier: MIT
"""sutra: the Python API of Sutra storage (see python/README.md).

One store, shared by every process: reads come zero-copy from the mapped
storage.dat through libsutra-reader, writes go to the single writer (the
coordinator) over nng. In embedded mode (the default) the coordinator runs
inside this process; in server mode it is a separate sutra-coordinator.
"""

import atexit
import hashlib
import os
import weakref

from . import _sutra
from ._notices import Notice, Notices
from ._sutra import (
    MAX_K,
    MAX_PATH_DEPTH,
    MAX_PATHS,
    Corrupt,
    DimensionError,
    Error,
    InvalidArgument,
    NotFound,
    ProtocolError,
    Snapshot,
    StorageOSError,
    StoreLocked,
    Timeout,
    TooBig,
    Unavailable,
    Unsupported,
    VersionError,
)

__version__ = "0.1.0"


__all__ = [
    "ConcurrentStorage", "Batch", "Snapshot", "Notice", "Notices",
    "get_storage_backend", "concept_id", "normalize_id",
    "Error", "NotFound", "DimensionError", "InvalidArgument", "TooBig", "StoreLocked",
    "Corrupt", "VersionError", "ProtocolError", "Unavailable", "Timeout",
    "StorageOSError", "Unsupported",
    "MAX_K", "MAX_PATH_DEPTH", "MAX_PATHS",
]

ASSOC_SEMANTIC = 0
ASSOC_CAUSAL = 1
ASSOC_TEMPORAL = 2
ASSOC_HIERARCHICAL = 3
ASSOC_COMPOSITIONAL = 4

MODES = ("embedded", "server")


def normalize_id(id):
    """The canonical form of an id: 32 lowercase hex digits.

    Accepts a hex str of 1 to 32 digits (zero-padded on the left: "ab" is
    "000...0ab") or 16 bytes. Raises InvalidArgument or TypeError."""
    return _sutra.normalize_id(id)


def concept_id(content):
    """The id derived from content: the first 16 bytes (32 hex digits) of
    the SHA-256 of its UTF-8 bytes, so that every process and language
    derives the same id (`printf %s TEXT | sha256sum | cut -c1-32`)."""
    if isinstance(content, str):
        content = content.encode("utf-8")
    elif not isinstance(content, (bytes, bytearray)):
        raise TypeError("content must be str or bytes")
    return hashlib.sha256(content).hexdigest()[:32]


def _store_file(path, create):
    """storage.dat for path: a directory holds DIR/storage.dat; a path
    ending in .dat, or an existing file, is the store itself; anything else
    names a directory (created in embedded mode)."""
    p = os.fspath(path)
    if isinstance(p, bytes):
        p = os.fsdecode(p)
    if os.path.isdir(p):
        return os.path.join(p, "storage.dat")
    if os.path.exists(p) or p.endswith(".dat"):
        parent = os.path.dirname(p)
        if create and parent and not os.path.isdir(parent):
            os.makedirs(parent, exist_ok=True)
        return p
    if create:
        os.makedirs(p, exist_ok=True)
    return os.path.join(p, "storage.dat")


_live = weakref.WeakSet()


@atexit.register
def _close_all():
    # A clean stop of the embedded coordinator (it syncs and releases the
    # lock); what was acknowledged is durable whether or not this runs.
    for s in list(_live):
        try:
            s.close()
        except Exception:
            pass


def _env_int(name):
    v = os.environ.get(name)
    return int(v) if v else None


class Batch:
    """An atomic batch: every operation is applied in one epoch, or none.

    Use it as a context manager: the batch is committed when the block ends
    normally and discarded when it raises::

        with store.batch() as b:
            b.learn_concept(a, "first")
            b.learn_concept(c, "second")
            b.learn_association(a, c)
        print(b.epoch)

    Operations take the same arguments as the store's methods; an error in
    one (e.g. NotFound for an association to an unknown concept) fails the
    whole batch, with .index naming the operation.
    """

    def __init__(self, store):
        self._b = store._new_batch()
        self.epoch = None

    def learn_concept(self, id, content, embedding=None, strength=1.0, confidence=1.0,
                      metadata=None):
        self._b.learn_concept(id, content, embedding, strength, confidence, metadata)
        return self

    def learn_association(self, source_id, target_id, assoc_type=0, confidence=1.0,
                          weight=1.0):
        self._b.learn_association(source_id, target_id, assoc_type, confidence, weight)
        return self

    def delete_concept(self, id):
        self._b.delete_concept(id)
        return self

    def delete_association(self, source_id, target_id, assoc_type=0):
        self._b.delete_association(source_id, target_id, assoc_type)
        return self

    def __len__(self):
        return len(self._b)

    def commit(self):
        """Sends the batch; returns the epoch that holds all of it."""
        self.epoch = self._b.commit()
        return self.epoch

    def discard(self):
        self._b.clear()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            if len(self._b):
                self.commit()
        else:
            self.discard()
        return False


class ConcurrentStorage(_sutra.Store):
    """A Sutra store, shared with every other process that opens it.

    path: a directory (holding storage.dat) or the storage.dat file.
    vector_dimension: the dimension of a new store (embedded mode). An
    existing store keeps its own; asking for another non-default dimension
    raises DimensionError. reconcile_interval_ms and memory_threshold are
    accepted for compatibility with the old store and have no effect (the
    coordinator commits every write at once and builds index segments by
    size).

    Keyword-only: mode ("embedded" or "server"; default $SUTRA_STORAGE_MODE,
    else "embedded"), coordinator_url ($SUTRA_COORDINATOR_URL) and
    events_url ($SUTRA_EVENTS_URL) (default: ipc:// beside the store),
    durability ("sync" or "relaxed", embedded coordinator only; default
    $SUTRA_DURABILITY or "sync"), timeout_ms (per write, resends included;
    default $SUTRA_TIMEOUT_MS or 10000), segment_threshold_kib (embedded
    coordinator's --segment-threshold-kib).

    Nothing is opened before the first call (nng is not fork-safe): create
    the object anywhere, use it after forking.
    """

    def __init__(self, path, reconcile_interval_ms=10, memory_threshold=50000,
                 vector_dimension=768, *, mode=None, coordinator_url=None, events_url=None,
                 durability=None, timeout_ms=None, segment_threshold_kib=None):
        mode = mode or os.environ.get("SUTRA_STORAGE_MODE") or "embedded"
        if mode == "shared":
            mode = "server"
        if mode not in MODES:
            raise InvalidArgument(
                f"mode must be 'embedded' or 'server', not {mode!r} (SUTRA_STORAGE_MODE)")
        durability = durability or os.environ.get("SUTRA_DURABILITY") or "sync"
        if durability not in ("sync", "relaxed"):
            raise InvalidArgument(f"durability must be 'sync' or 'relaxed', not {durability!r}")
        if timeout_ms is None:
            timeout_ms = _env_int("SUTRA_TIMEOUT_MS") or 0
        coordinator_url = coordinator_url or os.environ.get("SUTRA_COORDINATOR_URL") or None
        events_url = events_url or os.environ.get("SUTRA_EVENTS_URL") or None
        self.mode = mode
        self.reconcile_interval_ms = reconcile_interval_ms
        self.memory_threshold = memory_threshold
        super().__init__(
            _store_file(path, create=mode == "embedded"),
            embedded=mode == "embedded",
            vector_dimension=vector_dimension,
            dimension_explicit=vector_dimension != 768,
            coordinator_url=coordinator_url,
            events_url=events_url,
            relaxed=durability == "relaxed",
            timeout_ms=int(timeout_ms),
            segment_kib=int(segment_threshold_kib or 0),
        )
        _live.add(self)

    # -- writes -----------------------------------------------------------
    def batch(self):
        """A new atomic Batch (a context manager)."""
        return Batch(self)

    # -- searches ---------------------------------------------------------
    def vector_search(self, query, k=10, ef_search=50, text=None, text_mode="all"):
        """The k concepts most similar to query (cosine), as [(id, similarity)]
        with similarity = 1 - cosine distance, most similar first. text:
        only among concepts whose content matches it."""
        with self.snapshot() as s:
            return s.vector_search(query, k=k, ef_search=ef_search, text=text,
                                   text_mode=text_mode)

    def text_search(self, text, mode="all", limit=10):
        """Concepts whose content holds the terms of text ("all": every term,
        "any": one at least), as [(id, matched_terms, strength)], best first."""
        with self.snapshot() as s:
            return s.text_search(text, mode=mode, limit=limit)

    # -- iteration and notices -------------------------------------------
    def iter_concepts(self):
        """Yields every live concept (dicts with copied embeddings) of one
        snapshot, taken when iteration starts."""
        with self.snapshot() as s:
            ids = s.ids()
            for i in ids:
                c = s.query_concept_copy(i)
                if c is not None:
                    yield c

    def __iter__(self):
        return iter(self.ids())

    def __contains__(self, id):
        return self.contains(id)

    def __len__(self):
        return self.stats()["concept_count"]

    def notices(self, resolve_ids=True):
        """An iterator of the coordinator's epoch notices (Notice objects
        with the changed ids), with fileno() and async iteration for
        asyncio. See sutra.Notices."""
        return Notices(self, resolve_ids=resolve_ids)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    def __repr__(self):
        i = self.info()
        return (f"<sutra.ConcurrentStorage {i['path']!r} mode={i['mode']} "
                f"role={i['role']}{' closed' if i['closed'] else ''}>")


def get_storage_backend(path, **kw):
    """A ConcurrentStorage for path in the mode $SUTRA_STORAGE_MODE names:
    "embedded" (the default: this process runs the coordinator, or writes
    through the process that does) or "server" (writes go to the
    coordinator at $SUTRA_COORDINATOR_URL). Keywords as for
    ConcurrentStorage; mode= overrides the variable."""
    kw.setdefault("mode", os.environ.get("SUTRA_STORAGE_MODE") or "embedded")
    return ConcurrentStorage(path, **kw)
