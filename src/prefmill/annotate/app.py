"""The annotation web app (Starlette, served by uvicorn): sign in, label items, sign out.

Security: every page is rendered on the server from the build in memory (no route reads a file named
by a request); every value is escaped and a Content-Security-Policy allows only the page's own inline
script and style (by nonce); sign-in needs the annotator's token; the session cookie is HMAC-signed
(HttpOnly, SameSite=Strict) and every form carries a CSRF token derived from it; bodies are capped."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from prefmill.annotate.items import Build, Item, next_item, order_for
from prefmill.annotate.pages import done_page, item_page, login_page
from prefmill.annotate.store import NAME, AnnotationStore, _digest

COOKIE = "pm_session"
PRE_COOKIE = "pm_pre"
MAX_BODY = 64 * 1024
MAX_RATIONALE = 10_000


@dataclass(frozen=True)
class Settings:
    per_item: int = 1
    show_judges: bool = False  # show judges' scores and others' verdicts before answering


class Annotator:
    """The verdicts in memory (loaded from the log at start, appended with it) and the queue."""

    def __init__(self, build: Build, items: list[Item], store: AnnotationStore, settings: Settings) -> None:
        self.build, self.items, self.store, self.settings = build, items, store, settings
        self.by_id = {i.item_id: i for i in items}
        self._lock = threading.Lock()
        self.verdicts = store.verdicts()

    def record(self, verdict: dict[str, Any]) -> bool:
        """Append ``verdict`` durably unless its annotator already answered the item."""
        with self._lock:
            if any(
                v.get("annotator") == verdict["annotator"] and v.get("item_id") == verdict["item_id"]
                for v in self.verdicts
            ):
                return False
            self.store.append(verdict)
            self.verdicts.append(verdict)
            return True


def _headers(nonce: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def _html(text: str, nonce: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=_headers(nonce))


async def _form(request: Request) -> dict[str, str] | None:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=200)
    return {k: v[0] for k, v in parsed.items()}


def create_app(state: Annotator) -> Starlette:
    store = state.store

    def session_of(request: Request) -> str | None:
        """The signed-in annotator, or None (bad signature, unknown or renewed token)."""
        value = request.cookies.get(COOKIE, "")
        name, issued, sig = [*value.split(":"), "", "", ""][:3]
        token_hash = store.annotators().get(name)
        if not NAME.match(name) or token_hash is None:
            return None
        return name if store.verify(f"session|{name}|{issued}|{token_hash}", sig) else None

    def csrf_of(request: Request) -> str:
        return store.sign("csrf|" + request.cookies.get(COOKIE, ""))

    def show_login(request: Request, error: str | None = None, status: int = 200) -> Response:
        pre = request.cookies.get(PRE_COOKIE) or secrets.token_hex(16)
        nonce = secrets.token_hex(8)
        resp = _html(login_page(store.sign("login|" + pre), nonce, error), nonce, status)
        resp.set_cookie(PRE_COOKIE, pre, httponly=True, samesite="strict")
        return resp

    async def index(request: Request) -> Response:
        name = session_of(request)
        if name is None:
            return show_login(request)
        nonce = secrets.token_hex(8)
        item, progress = next_item(state.items, state.verdicts, name, state.settings.per_item)
        csrf = csrf_of(request)
        if item is None:
            return _html(done_page(progress, name, csrf, nonce), nonce)
        others = [
            v for v in state.verdicts if v.get("item_id") == item.item_id and v.get("annotator") != name
        ]
        text = item_page(
            state.build,
            item,
            order_for(name, item),
            progress,
            name,
            csrf,
            time.time(),
            nonce,
            show_judges=state.settings.show_judges,
            others=others,
        )
        return _html(text, nonce)

    async def login(request: Request) -> Response:
        form = await _form(request)
        pre = request.cookies.get(PRE_COOKIE, "")
        if form is None or not pre or not store.verify("login|" + pre, form.get("csrf", "")):
            return show_login(request, "The form expired; sign in again.", 403)
        name, token = form.get("name", "").strip(), form.get("token", "").strip()
        if not NAME.match(name) or not store.check_token(name, token):
            return show_login(request, "Unknown name or wrong token.", 403)
        issued = str(int(time.time()))
        sig = store.sign(f"session|{name}|{issued}|{_digest(token)}")
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, f"{name}:{issued}:{sig}", httponly=True, samesite="strict")
        return resp

    async def logout(request: Request) -> Response:
        form = await _form(request)
        if form is None or not secrets.compare_digest(form.get("csrf", ""), csrf_of(request)):
            return Response("bad CSRF token", status_code=403)
        resp = RedirectResponse("/", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    async def answer(request: Request) -> Response:
        name = session_of(request)
        if name is None:
            return Response("sign in first", status_code=401)
        form = await _form(request)
        if form is None:
            return Response("request too large", status_code=413)
        if not secrets.compare_digest(form.get("csrf", ""), csrf_of(request)):
            return Response("bad CSRF token", status_code=403)
        item = state.by_id.get(form.get("item_id", ""))
        if item is None:
            return Response("unknown item", status_code=400)
        verdict = make_verdict(state, item, name, form)
        if isinstance(verdict, str):
            return Response(verdict, status_code=400)
        state.record(verdict)
        return RedirectResponse("/", status_code=303)

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/answer", answer, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def make_verdict(state: Annotator, item: Item, name: str, form: dict[str, str]) -> dict[str, Any] | str:
    """The verdict a submitted form records, or the reason it is refused."""
    order = order_for(name, item)
    if form.get("order", order) != order:
        return "the item was shown in another order"
    choice = form.get("choice", "")
    try:
        shown = float(form.get("shown_at", ""))
        seconds: float | None = round(max(0.0, min(time.time() - shown, 86_400.0)), 3)
    except ValueError:
        seconds = None
    verdict: dict[str, Any] = {
        "annotator": name,
        "item_id": item.item_id,
        "kind": item.kind,
        "prompt_id": item.prompt_id,
        "candidate_id": item.candidates[0],
        "other_candidate_id": item.candidates[1] if item.kind == "pair" else None,
        "order": order if item.kind == "pair" else None,
        "choice": choice,
        "prefers_first": None,
        "scores": None,
        "scale": list(state.build.scale),
        "rationale": (form.get("rationale") or "").strip()[:MAX_RATIONALE] or None,
        "seconds": seconds,
        "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "versions": {t: m.version for t, m in state.build.manifests.items()},
    }
    if choice == "skip":
        return verdict
    if item.kind == "pair":
        shown_first_is_a = order == "ab"
        if choice not in ("1", "2", "tie"):
            return "choice must be 1, 2, tie or skip"
        p = 0.5 if choice == "tie" else 1.0 if (choice == "1") == shown_first_is_a else 0.0
        verdict["prefers_first"] = p  # P(candidate_id, i.e. a, is the better one)
        return verdict
    lo, hi = state.build.scale
    scores = {}
    for crit in item.criteria:
        raw = form.get(f"score:{crit}", "")
        if not raw.lstrip("-").isdigit() or not lo <= int(raw) <= hi:
            return f"give a score from {lo} to {hi} for '{crit}'"
        scores[crit] = int(raw)
    verdict["scores"] = scores
    return verdict
