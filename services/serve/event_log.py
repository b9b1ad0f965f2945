"""The serving host's event intake: routes append to the spool, a background flusher uploads to S3.

One mechanism for every stream (feedback, impressions, prediction logs): the stream is data. No S3 call
is ever made on the request path. A feedback request waits for its group's fsynced commit; predictions
and impressions are handed to the spool's writer thread and not waited for (spool.py says what each
survives).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from time import monotonic
from typing import Any

from services.core.events import batch_key, encode_jsonl, utc_now, watermark_key
from services.core.storage import ObjectStore
from services.serve.metrics import ServeMetrics
from services.serve.spool import Spool
from services.serve.uploads import upload_batch

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 600.0
WARN_EVERY_S = 60.0
FLUSHER_NICE = 10
WATERMARK_EVERY_S = 60.0  # an idle replica still says, once a minute, that S3 has everything it took


class EventsUnavailable(RuntimeError):
    """The server cannot take events now (spool full, or S3 unreachable for too long)."""

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class EventLog:
    """Append-only intake in front of a spool, and the thread that empties it into S3."""

    def __init__(
        self,
        spool: Spool,
        store: ObjectStore,
        metrics: ServeMetrics,
        *,
        flush_interval_s: float = 2.0,
        flush_rows: int = 5000,
        max_pending: int = 1_000_000,
        max_outage_s: float = 600.0,
        dedup_days: int = 7,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self.spool = spool
        self.store = store
        self.metrics = metrics
        self.flush_interval_s = flush_interval_s
        self.flush_rows = flush_rows
        self.max_pending = max_pending
        self.max_outage_s = max_outage_s
        self.dedup_days = dedup_days
        self.clock = clock
        self.outage_since: float | None = None  # first failed upload of the current outage
        self._stop = threading.Event()
        self._wake = threading.Event()
        # The thread and a shutdown flush never upload the same rows at once.
        self._flush_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_warning = -WARN_EVERY_S
        self._last_prune = clock()
        self._last_watermark = -WATERMARK_EVERY_S

    # --- lifecycle ----------------------------------------------------------------------------------
    def open(self) -> None:
        """Open the spool and upload what an earlier run left in it (S3 down: the thread retries later)."""
        self.spool.on_commit = self._committed
        self.spool.open()
        self.metrics.spool_pending.set(self.spool.pending)
        if self.spool.pending:
            log.info(
                "spool %s holds %d events from an earlier run: uploading",
                self.spool.directory,
                self.spool.pending,
            )
        self._flush_reporting()

    def start(self) -> None:
        """Start the background flusher."""
        self._thread = threading.Thread(target=self._run, name="event-flusher", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the flusher, try one last upload, close the spool (rows S3 did not take stay on disk)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._flush_reporting()
        if self.spool.pending:
            log.warning("%d events stay in the spool for the next start (S3 unreachable)", self.spool.pending)
        self.spool.close()

    # --- the request path ---------------------------------------------------------------------------
    async def append(self, stream: str, records: list[dict[str, Any]]) -> list[bool]:
        """Spool records and wait for their commit (fsynced for feedback); True for each new one.

        EventsUnavailable when they cannot be taken. The wait is for the writer thread's next group
        commit: the event loop goes on serving other requests meanwhile.
        """
        future = self._submit(stream, records, wait=True, loop=asyncio.get_running_loop())
        try:
            return await future
        except sqlite3.Error as exc:
            raise self._write_failed(stream, records, exc) from exc

    def append_wait(self, stream: str, records: list[dict[str, Any]]) -> list[bool]:
        """append() for a caller off the event loop (a worker thread, a test): blocks until committed."""
        future = self._submit(stream, records, wait=True)
        assert future is not None
        try:
            return future.result()
        except sqlite3.Error as exc:
            raise self._write_failed(stream, records, exc) from exc

    def record(self, stream: str, records: list[dict[str, Any]]) -> bool:
        """Queue records a response must not fail for (impressions, prediction logs); False if refused.

        Not waited for: the writer commits them within milliseconds (a killed process loses what is
        still queued).
        """
        if not records:
            return True
        try:
            self._submit(stream, records, wait=False)
            return True
        except EventsUnavailable as exc:
            self._warn(f"{stream} event not recorded: {exc}")
            return False

    def _submit(
        self, stream: str, records: list[dict[str, Any]], *, wait: bool,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Any:  # fmt: skip
        self._check_capacity(stream, len(records))
        try:
            return self.spool.submit(stream, records, wait=wait, loop=loop)
        except sqlite3.Error as exc:
            raise self._write_failed(stream, records, exc) from exc

    def _write_failed(self, stream: str, records: list[dict[str, Any]], exc: Exception) -> EventsUnavailable:
        log.error("writing %d %s events to the spool failed: %s", len(records), stream, exc)
        return EventsUnavailable(f"the event spool could not be written ({type(exc).__name__})", 30)

    def _committed(self, counts: dict[str, list[int]]) -> None:
        # On the writer thread, once per group commit: counters only, no I/O.
        for stream, (new, duplicates, failed) in counts.items():
            if new:
                self.metrics.events_accepted.labels(stream).inc(new)
            if duplicates:
                self.metrics.events_duplicates.labels(stream).inc(duplicates)
            if failed:
                self.metrics.events_refused.labels(stream, "spool_error").inc(failed)
        self.metrics.spool_pending.set(self.spool.pending)
        if self.spool.pending >= self.flush_rows:
            self._wake.set()

    def _check_capacity(self, stream: str, n: int) -> None:
        waiting = self.spool.waiting
        if waiting + n > self.max_pending:
            self.metrics.events_refused.labels(stream, "spool_full").inc(n)
            raise EventsUnavailable(
                f"the event spool is full ({waiting} events waiting for S3); try again later",
                retry_after_s=60,
            )
        if self.outage_since is not None and self.clock() - self.outage_since > self.max_outage_s:
            self.metrics.events_refused.labels(stream, "s3_outage").inc(n)
            down = int(self.clock() - self.outage_since)
            raise EventsUnavailable(
                f"S3 has been unreachable for {down} s, so events are not being taken; try again later",
                retry_after_s=30,
            )

    # --- the flusher --------------------------------------------------------------------------------
    def flush(self) -> int:
        """Upload every pending row now, batch by batch; returns rows uploaded. S3 errors propagate."""
        uploaded = 0
        with self._flush_lock:
            self.spool.commit_queued()  # rows still gathering in the writer's queue belong to "now" too
            # What is pending now, not what keeps arriving meanwhile: the next round takes the rest.
            rounds = self.spool.pending // self.flush_rows + 1
            for _ in range(rounds):
                batches = self.spool.take(self.flush_rows)
                if not batches:
                    break
                self.spool.sync_to_disk()  # a power cut can no longer take back rows S3 is about to hold
                for batch in batches:
                    key = batch_key(
                        batch.stream, batch.day, self.spool.replica_id, batch.first_seq, self.spool.epoch
                    )
                    upload_batch(self.store, key, encode_jsonl(batch.text))
                    self.metrics.events_uploaded.labels(batch.stream).inc(batch.size)
                    uploaded += batch.size
                # Only once S3 has confirmed every batch of the window: a crash before this line uploads
                # the same window (or a longer one) again under the same names: nothing lost or doubled.
                self.spool.mark_flushed(batches)
            if uploaded:
                self.spool.delete_flushed()
        self.metrics.spool_pending.set(self.spool.pending)
        return uploaded

    def _flush_reporting(self) -> None:
        """One flush attempt; an S3 failure starts (or continues) an outage instead of raising."""
        try:
            uploaded = self.flush()
        except Exception as exc:  # noqa: BLE001 - any S3 failure: keep the rows, report, retry later
            self.metrics.spool_flush_failures.inc()
            if self.outage_since is None:
                self.outage_since = self.clock()
            self._warn(
                f"uploading events to S3 failed ({type(exc).__name__}: {exc}); {self.spool.pending} kept in the spool"
            )
            return
        if self.outage_since is not None:
            log.info("S3 reachable again after %.0f s: events flushed", self.clock() - self.outage_since)
        self.outage_since = None
        if uploaded:
            log.debug("flushed %d events", uploaded)
        if uploaded or self.clock() - self._last_watermark >= WATERMARK_EVERY_S:
            self._write_watermark()

    def _write_watermark(self) -> None:
        # The training host reads these to say whether a day's batches may still be missing
        # (services/train/feedback/completeness.py): every event accepted before complete_before is in S3.
        now = utc_now()
        mark = {
            "replica_id": self.spool.replica_id,
            "updated_at": now,
            "complete_before": self.spool.oldest_pending_ts() or now,
        }
        try:
            self.store.put_json(watermark_key(self.spool.replica_id), mark)
            self._last_watermark = self.clock()
        except Exception as exc:  # noqa: BLE001 - a watermark is advisory; the next round writes it again
            self._warn(f"writing the flush watermark failed ({type(exc).__name__}: {exc})")

    def _run(self) -> None:
        _lower_priority()
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            self._flush_reporting()
            self._checkpoint()
            if self.clock() - self._last_prune > PRUNE_EVERY_S:
                self._prune()

    def _checkpoint(self) -> None:
        # Every round, uploads or not: the request path never checkpoints, so during an S3 outage this
        # is what keeps the WAL file from growing with every event.
        try:
            self.spool.checkpoint()
        except Exception:  # noqa: BLE001 - housekeeping; the next round tries again
            log.exception("checkpointing the spool failed")

    def _prune(self) -> None:
        self._last_prune = self.clock()
        cutoff = (datetime.now(UTC) - timedelta(days=self.dedup_days)).isoformat(timespec="milliseconds")
        try:
            removed = self.spool.prune(cutoff.replace("+00:00", "Z"))
        except Exception:  # noqa: BLE001 - pruning is housekeeping; the next round tries again
            log.exception("pruning the spool failed")
            return
        if removed:
            log.info("spool: forgot %d flushed events older than %d days", removed, self.dedup_days)

    def _warn(self, message: str) -> None:
        # An outage would log on every request and every flush: once a minute says the same.
        if self.clock() - self._last_warning >= WARN_EVERY_S:
            self._last_warning = self.clock()
            log.warning("%s", message)


def _lower_priority() -> None:
    """Run the calling thread at a low CPU priority: requests first, uploads with what is left."""
    # Linux schedules threads one by one, so this leaves the event loop's thread at its own priority.
    # Nice 10, not 19: at 19 a replica kept busy by /predict gave the flusher so little CPU that the
    # spool grew by ~1,000 rows/s without end (measured, 16 connections); at 10 it stays at a few
    # thousand rows and the flusher still yields to requests. SPOOL_MAX_PENDING caps it either way.
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), FLUSHER_NICE)
    except (AttributeError, OSError) as exc:  # not Linux, or not allowed: run at normal priority
        log.debug("flusher stays at normal priority: %s", exc)
