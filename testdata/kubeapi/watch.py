"""Watch streams of the test API server.

Why: controller mode lists and watches its resources, resumes from the last resourceVersion it
saw, relists when the server says that version is too old (410), and uses bookmarks to keep its
resume point fresh. This module produces those streams the way kube-apiserver's watch cache
does.

Design: `run(state, spec, send, closed)` runs in the request's thread. With no resourceVersion
(or "0", or sendInitialEvents=true) it first sends a synthetic ADDED for every matching object;
with a resourceVersion it replays the retained history after it, or reports "too old resource
version" when that history was dropped (`watch_window`): as an ERROR event carrying a 410
Expired Status on a 200 stream (what a real server does), or, with the `watchExpiredMode`
setting "http", as a plain 410 response. Then it waits on the store's condition variable and
sends each new event that matches the resource, namespace and selectors. Selector semantics
follow the watch cache: an object that stops matching is sent as DELETED, one that starts
matching as ADDED. BOOKMARK events (allowWatchBookmarks=true) carry only the current
resourceVersion and are sent every `bookmark_interval_ms` and on demand (control endpoint).
The stream ends after timeoutSeconds, when the client goes away, or when a test asks every watch
to close.
"""
import time

import api
import apierrors as E
import kinds as K
from storage import match_fields, match_labels


class Expired(Exception):
    def __init__(self, status):
        super().__init__(status["message"])
        self.status = status


def _expired_status(rv, floor):
    return E.expired("too old resource version: %s (%s)" % (rv, floor)).status()


def _matches(spec, obj):
    return obj is not None and match_labels(spec.labels, obj["metadata"].get("labels")) and match_fields(spec.fields, obj)


def _event_for(spec, ev):
    g, p, ns, _ = ev.key
    if (g, p) != spec.res.gr or (spec.ns and ns != spec.ns):
        return None
    if ev.type == "ADDED":
        return ("ADDED", ev.obj) if _matches(spec, ev.obj) else None
    if ev.type == "DELETED":
        return ("DELETED", ev.obj) if _matches(spec, ev.prev or ev.obj) else None
    now, before = _matches(spec, ev.obj), _matches(spec, ev.prev)
    if now and before:
        return ("MODIFIED", ev.obj)
    if now:
        return ("ADDED", ev.obj)
    if before:
        return ("DELETED", ev.obj)
    return None


def _render(spec, obj):
    o = api.view(spec.res, obj)
    mode, av, include = spec.render
    if mode == "table":
        return K.table(spec.res, [o], include, av)
    if mode == "partial":
        return K.partial(o)
    return o


def _bookmark(spec, rv, initial_end=False):
    md = {"resourceVersion": str(rv)}
    if initial_end:
        md["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"type": "BOOKMARK", "object": {"kind": spec.res.kind, "apiVersion": spec.res.api_version, "metadata": md}}


def check(state, spec):
    """Raise the HTTP-level 410 before the stream starts, when that mode is configured."""
    if state.settings.watch_expired_mode != "http" or not isinstance(spec.rv, int) or spec.initial_events:
        return
    with state.store.lock:
        if spec.rv < state.store.floor:
            st = _expired_status(spec.rv, state.store.floor)
            raise E.StatusError(410, st["reason"], st["message"])


def run(state, spec, send, closed):
    store = state.store
    deadline = time.monotonic() + spec.timeout if spec.timeout else None
    with store.lock:
        epoch, bm_seq = store.epoch, store.bookmark_now
        first = []
        if spec.rv in ("", "0") or spec.initial_events:
            for key, obj in store.items(spec.res.group, spec.res.plural, spec.ns or None):
                if _matches(spec, obj):
                    first.append(("ADDED", obj))
            cursor = store.rv
        else:
            evs = store.events_after(spec.rv)
            if evs is None:
                send({"type": "ERROR", "object": _expired_status(spec.rv, store.floor)})
                return
            first = [x for x in (_event_for(spec, e) for e in evs) if x]
            cursor = store.rv
    for etype, obj in first:
        send({"type": etype, "object": _render(spec, obj)})
    if spec.initial_events and spec.bookmarks:
        send(_bookmark(spec, cursor, True))
    interval = max(state.settings.bookmark_interval_ms, 10) / 1000.0
    next_bm = time.monotonic() + interval
    while True:
        now = time.monotonic()
        wait = min(next_bm - now if spec.bookmarks else 0.5, 0.5)
        if deadline is not None:
            wait = min(wait, deadline - now)
        out = []
        with store.lock:
            if wait > 0 and store.rv == cursor and store.epoch == epoch and store.bookmark_now == bm_seq:
                store.cond.wait(wait)
            if store.epoch != epoch:
                return
            evs = store.events_after(cursor)
            if evs is None:
                out.append({"type": "ERROR", "object": _expired_status(cursor, store.floor)})
            else:
                for e in evs:
                    x = _event_for(spec, e)
                    if x:
                        out.append({"type": x[0], "object": _render(spec, x[1])})
                cursor = store.rv
            forced = store.bookmark_now != bm_seq
            bm_seq = store.bookmark_now
        for ev in out:
            send(ev)
            if ev["type"] == "ERROR":
                return
        now = time.monotonic()
        if spec.bookmarks and (forced or now >= next_bm):
            send(_bookmark(spec, cursor))
            next_bm = now + interval
        if deadline is not None and now >= deadline:
            return
        if closed():
            return
