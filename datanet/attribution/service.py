"""``datanet serve``: an HTTP attribution service (aiohttp) for an inference gateway.

Endpoints:

* ``GET /health`` → ``{"status": "ok", "datanet", "snapshot": {...}, "recorded_pending"}``;
* ``POST /attribute`` with one output ``{"id", "text", "model"?}`` → its result (the JSON
  object of ``datanet attribute --format json``), or ``{"outputs": [...], "min_span"?,
  "as_of"?}`` → ``{"results": [...]}`` in input order. A bad request gets a 4xx with
  ``{"error": reason}`` (400 malformed, 413 too large, 422 a value out of range), never a crash.

The index follows the datanet: every ``reload_interval`` seconds the service lists
``batches/`` and, when a batch was committed, opens the new snapshot (in a worker thread) and
swaps it in; requests in flight finish on the old one. With ``record`` on, every result is
kept and committed as one receipts batch every ``record_interval`` seconds (and at shutdown),
then anchored when ``anchor`` is on: receipts are the same as ``datanet attribute --record``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from datanet.attribution.match import AttributionIndex, AttributionResult
from datanet.errors import DatanetError, SpecError, StoreError

__all__ = ["ServeConfig", "AttributionService", "make_app", "serve"]

log = logging.getLogger(__name__)
_MAX_OUTPUTS = 256


@dataclass(frozen=True)
class ServeConfig:
    """Service knobs."""

    host: str = "127.0.0.1"
    port: int = 8000
    #: seconds between looks at ``batches/`` for a newly committed batch
    reload_interval: float = 1.0
    record: bool = False
    #: seconds between receipt commits when recording
    record_interval: float = 10.0
    anchor: bool = True
    #: request body limit (bytes): a 200-token output is ~1.5 KB
    max_body: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        from datanet.schemas.config import check_range

        check_range("serve.port", self.port, 0, 65535)
        check_range("serve.reload_interval", self.reload_interval, 0.01, 3600)
        check_range("serve.record_interval", self.record_interval, 0.01, 86400)
        check_range("serve.max_body", self.max_body, 1024, 1 << 30)


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class AttributionService:
    """The state behind the app: the current index, older snapshots, pending receipts."""

    def __init__(self, path: str | Path, config: ServeConfig | None = None):
        from datanet.store.layout import DatanetStore

        self.store = DatanetStore(path)
        self.config = config or ServeConfig()
        self.index = AttributionIndex(self.store)
        self._listing = self._batches_listing()
        self._as_of: OrderedDict[int, AttributionIndex] = OrderedDict()
        self.pending: list[AttributionResult] = []
        self._pending_lock = threading.Lock()
        self.reloads = 0

    def _batches_listing(self) -> tuple[str, ...]:
        d = self.store.root / "batches"
        return tuple(sorted(p.name for p in d.glob("*.json"))) if d.exists() else ()

    def maybe_reload(self) -> bool:
        """Open the new snapshot if a batch was committed since the last look (blocking)."""
        listing = self._batches_listing()
        if listing == self._listing:
            return False
        index = AttributionIndex(self.store)
        self.index, self._listing = index, listing
        self._as_of.clear()
        self.reloads += 1
        log.info("attribution index reloaded at batch %s", index.snapshot_base[0])
        return True

    def _index_for(self, as_of: Any) -> AttributionIndex:
        if as_of is None:
            return self.index
        if not isinstance(as_of, int) or isinstance(as_of, bool) or as_of < 0:
            raise _BadRequest(422, f"as_of={as_of!r} must be a batch sequence number >= 0")
        if as_of not in self._as_of:
            try:
                self._as_of[as_of] = AttributionIndex(self.store, as_of=as_of)
            except StoreError as exc:
                raise _BadRequest(422, str(exc)) from None
            while len(self._as_of) > 4:
                self._as_of.popitem(last=False)
        return self._as_of[as_of]

    def handle(self, body: Any) -> Any:
        """The response body of ``POST /attribute`` for a parsed JSON ``body``."""
        if not isinstance(body, dict):
            raise _BadRequest(400, "the body must be a JSON object: {\"id\", \"text\"} or "
                                   "{\"outputs\": [...]}")
        single = "outputs" not in body
        items = [body] if single else body["outputs"]
        if not isinstance(items, list) or not items:
            raise _BadRequest(400, "outputs must be a non-empty list of {\"id\", \"text\"}")
        if len(items) > _MAX_OUTPUTS:
            raise _BadRequest(413, f"{len(items)} outputs in one request; at most "
                                   f"{_MAX_OUTPUTS}")
        min_span = body.get("min_span")
        if min_span is not None and (not isinstance(min_span, int) or isinstance(min_span, bool)):
            raise _BadRequest(422, f"min_span={min_span!r} must be an integer")
        outputs = []
        for n, it in enumerate(items):
            if not isinstance(it, dict) or not isinstance(it.get("text"), str):
                raise _BadRequest(400, f"outputs[{n}]: expected {{\"id\": str, \"text\": str, "
                                       "\"model\": str (optional)}")
            if not _is_unicode(it["text"]):
                raise _BadRequest(400, f"outputs[{n}].text is not valid Unicode (lone "
                                       "surrogate)")
            model = it.get("model")
            if model is not None and not isinstance(model, str):
                raise _BadRequest(400, f"outputs[{n}].model must be a string")
            outputs.append({"id": str(it.get("id", n)), "text": it["text"], "model": model})
        index = self._index_for(body.get("as_of"))
        try:
            results = index.attribute_many(outputs, min_span=min_span)
        except SpecError as exc:
            raise _BadRequest(422, str(exc)) from None
        if self.config.record:
            with self._pending_lock:
                self.pending.extend(results)
        lines = [r.to_json() for r in results]
        return lines[0] if single else {"results": lines}

    def flush_receipts(self) -> str | None:
        """Commit (and anchor) the pending results as one receipts batch (blocking)."""
        from datanet.attribution.receipts import anchor_receipts, record_receipts

        with self._pending_lock:
            batch, self.pending = self.pending, []
        if not batch:
            return None
        done = record_receipts(self.store, batch)
        if self.config.anchor and done.committed:
            try:
                anchor_receipts(self.store)
            except DatanetError as exc:  # the receipts are committed; anchoring resumes later
                log.warning("anchoring receipts failed (resumable): %s", exc)
        return done.message


def make_app(service: AttributionService) -> web.Application:
    """The aiohttp application of ``service`` (with its reload / record background tasks)."""
    app = web.Application(client_max_size=service.config.max_body)

    async def health(_: web.Request) -> web.Response:
        return web.json_response({
            "status": "ok", "datanet": service.store.spec.id,
            "snapshot": service.index.snapshot(service.index.config.min_span).to_json(),
            "recorded_pending": len(service.pending), "reloads": service.reloads})

    async def attribute(request: web.Request) -> web.Response:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"error": "request body too large"}, status=413)
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            return web.json_response({"error": f"the body is not JSON: {exc}"}, status=400)
        try:
            return web.json_response(service.handle(body))
        except _BadRequest as exc:
            return web.json_response({"error": exc.reason}, status=exc.status)

    async def reloader() -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(service.config.reload_interval)
            try:
                await loop.run_in_executor(None, service.maybe_reload)
            except DatanetError as exc:
                log.warning("reload failed, still serving the previous snapshot: %s", exc)

    async def recorder() -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(service.config.record_interval)
            try:
                await loop.run_in_executor(None, service.flush_receipts)
            except DatanetError as exc:
                log.warning("recording receipts failed: %s", exc)

    async def background(app: web.Application) -> Any:
        tasks = [asyncio.create_task(reloader())]
        if service.config.record:
            tasks.append(asyncio.create_task(recorder()))
        yield
        for t in tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if service.config.record:
            await asyncio.get_running_loop().run_in_executor(None, service.flush_receipts)

    app.router.add_get("/health", health)
    app.router.add_post("/attribute", attribute)
    app.cleanup_ctx.append(background)
    return app


def serve(path: str | Path, config: ServeConfig) -> None:
    """Run the service until interrupted."""
    service = AttributionService(path, config)
    web.run_app(make_app(service), host=config.host, port=config.port, print=None,
                access_log=None)
