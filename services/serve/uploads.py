"""Uploading one spool batch: never over another batch, and a repeat of our own upload is recognised."""

from __future__ import annotations

import gzip
import logging
import secrets

from services.core.storage import ObjectNotFound, ObjectStore

log = logging.getLogger(__name__)
CONTENT_TYPE = "application/gzip"


def upload_batch(store: ObjectStore, key: str, data: bytes) -> None:
    """PUT a gzipped JSON-lines batch only where the name is free (If-None-Match: *), or is our own.

    The key holds the spool's epoch, so it is taken only after a crash between an upload and the
    watermark's move (the same rows again, or the same first rows and more), or by a copied spool
    folder (someone else's rows: both are kept).
    """
    if store.put_bytes_if_absent(key, data, CONTENT_TYPE):
        return
    try:
        existing = store.get_bytes(key)
    except ObjectNotFound:  # deleted meanwhile: nothing of ours is there, write it
        store.put_bytes(key, data, CONTENT_TYPE)
        return
    if existing == data:
        return  # this window was uploaded before a crash took the watermark's move: done
    if gzip.decompress(data).startswith(gzip.decompress(existing)):
        # The same window from the same first row, now longer: our own earlier upload, a prefix of this.
        store.put_bytes(key, data, CONTENT_TYPE)
        return
    # Not ours (a copied spool folder with the same epoch and replica id): keep both, never overwrite.
    other = f"{key.removesuffix('.jsonl.gz')}-{secrets.token_hex(4)}.jsonl.gz"
    log.error("batch %s already holds other events: uploading this one as %s", key, other)
    store.put_bytes(other, data, CONTENT_TYPE)
