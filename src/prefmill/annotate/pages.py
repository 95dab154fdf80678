"""The annotation pages: server-rendered HTML, every value from the data escaped (``esc``), one small
inline script (keyboard shortcuts) allowed by a per-response CSP nonce. Nothing is loaded from
elsewhere, so the pages work offline."""

from __future__ import annotations

import html
from typing import Any

from prefmill.annotate.items import Build, Item, Progress

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;color:#222}
progress{width:100%;height:14px}
.cols{display:flex;gap:1em}.cols>section{flex:1;border:1px solid #ccc;border-radius:6px;padding:.6em}
pre{white-space:pre-wrap;word-wrap:break-word;background:#f7f7f7;padding:.6em;border-radius:4px}
button{font-size:1em;margin:.2em;padding:.4em 1em}.muted{color:#777}.err{color:#b00}
textarea{width:100%;box-sizing:border-box;min-height:3em}
kbd{border:1px solid #aaa;border-radius:3px;padding:0 .3em}
"""

KEYS_JS = """
document.addEventListener('keydown', function (e) {
  var t = e.target; if (t && (t.tagName === 'TEXTAREA' || t.tagName === 'INPUT')) return;
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  var b = document.querySelector('button[data-key="' + e.key.toLowerCase() + '"]');
  if (b) { e.preventDefault(); b.click(); }
});
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def page(title: str, body: str, nonce: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(title)}</title><style nonce='{esc(nonce)}'>{STYLE}</style></head>"
        f"<body>{body}<script nonce='{esc(nonce)}'>{KEYS_JS}</script></body></html>"
    )


def login_page(csrf: str, nonce: str, error: str | None = None) -> str:
    err = f"<p class='err' id='error'>{esc(error)}</p>" if error else ""
    body = f"""<h1>prefmill annotate</h1>{err}
<form method='post' action='/login' id='login'>
<input type='hidden' name='csrf' value='{esc(csrf)}'>
<p><label>Name <input name='name' id='name' autocomplete='username'></label></p>
<p><label>Token <input name='token' id='token' type='password' autocomplete='current-password'></label></p>
<p><button type='submit' id='signin'>Sign in</button></p></form>"""
    return page("sign in", body, nonce)


def _progress(p: Progress, annotator: str) -> str:
    return (
        f"<p>Signed in as <b id='annotator'>{esc(annotator)}</b> · "
        f"<span id='progress'>{p.done} / {p.total}</span> done</p>"
        f"<progress id='bar' value='{p.done}' max='{max(p.total, 1)}'></progress>"
    )


def _prompt(build: Build, item: Item) -> str:
    p = build.prompts.get(item.prompt_id, {})
    out = f"<h2>Prompt</h2><pre id='prompt'>{esc(p.get('text'))}</pre>"
    if p.get("reference"):
        ref = esc(p["reference"])
        out += f"<details open><summary>Reference</summary><pre id='reference'>{ref}</pre></details>"
    if p.get("rubric"):
        out += f"<details open><summary>Rubric</summary><pre id='rubric'>{esc(p['rubric'])}</pre></details>"
    return out


def _judges(build: Build, item: Item, others: list[dict[str, Any]]) -> str:
    """What the judges and the other annotators said (shown only with --show-judges)."""
    j = build.judgments
    rows = j.filter(j["candidate_id"].is_in(list(item.candidates)) & (j["kind"] != "human"))
    lines = [
        f"{esc(r['judge'])} [{esc(r['mode'])}] {esc(r['candidate_id'])}: "
        f"score={esc(r['score'])} prefers_first={esc(r['prefers_first'])}"
        for r in rows.select("judge", "mode", "candidate_id", "score", "prefers_first").iter_rows(named=True)
    ]
    lines += [f"human:{esc(v.get('annotator'))}: {esc(v.get('choice'))}" for v in others]
    return (
        "<details><summary>Judges and annotators</summary><pre id='judges'>"
        + "\n".join(lines)
        + "</pre></details>"
    )


def item_page(
    build: Build,
    item: Item,
    order: str,
    progress: Progress,
    annotator: str,
    csrf: str,
    shown_at: float,
    nonce: str,
    show_judges: bool = False,
    others: list[dict[str, Any]] | None = None,
) -> str:
    hidden = (
        f"<input type='hidden' name='csrf' value='{esc(csrf)}'>"
        f"<input type='hidden' name='item_id' value='{esc(item.item_id)}'>"
        f"<input type='hidden' name='order' value='{esc(order)}'>"
        f"<input type='hidden' name='shown_at' value='{shown_at:.3f}'>"
    )
    explain = (
        "<p><label>Explain (optional)<br><textarea name='rationale' id='explain'></textarea></label></p>"
    )
    skip = "<button name='choice' value='skip' data-key='s' id='skip'><kbd>s</kbd> skip</button>"
    if item.kind == "pair":
        first, second = item.candidates if order == "ab" else item.candidates[::-1]
        one, two = esc(build.responses.get(first)), esc(build.responses.get(second))
        body = (
            "<div class='cols'>"
            f"<section><h3>Response 1</h3><pre id='response-1'>{one}</pre></section>"
            f"<section><h3>Response 2</h3><pre id='response-2'>{two}</pre></section>"
            "</div>"
        )
        buttons = (
            "<button name='choice' value='1' data-key='1' id='choose-1'><kbd>1</kbd> "
            "Response 1 is better</button>"
            "<button name='choice' value='2' data-key='2' id='choose-2'><kbd>2</kbd> "
            "Response 2 is better</button>"
            "<button name='choice' value='tie' data-key='t' id='tie'><kbd>t</kbd> tie</button>" + skip
        )
        form = f"<form method='post' action='/answer' id='answer'>{hidden}{explain}<p>{buttons}</p></form>"
    else:
        lo, hi = build.scale
        one = esc(build.responses.get(item.candidates[0]))
        body = f"<section><h3>Response</h3><pre id='response-1'>{one}</pre></section>"
        fields = []
        for n, crit in enumerate(item.criteria):
            opts = "".join(
                f"<label><input type='radio' name='score:{esc(crit)}' value='{s}' required> {s}</label> "
                for s in range(lo, hi + 1)
            )
            fields.append(f"<p id='criterion-{n}'><b>{esc(crit)}</b> ({lo}-{hi}): {opts}</p>")
        buttons = "<button name='choice' value='score' id='submit'>Submit</button>"
        form = (
            f"<form method='post' action='/answer' id='answer'>{hidden}{''.join(fields)}{explain}"
            f"<p>{buttons}</p></form>"
            f"<form method='post' action='/answer'>{hidden}<input type='hidden' name='choice' value='skip'>"
            "<button data-key='s' id='skip'><kbd>s</kbd> skip</button></form>"
        )
    judges = _judges(build, item, others or []) if show_judges else ""
    keys = "Keys: <kbd>1</kbd> <kbd>2</kbd> <kbd>t</kbd>ie <kbd>s</kbd>kip" if item.kind == "pair" else ""
    logout = (
        f"<form method='post' action='/logout'><input type='hidden' name='csrf' value='{esc(csrf)}'>"
        "<button id='logout'>Sign out</button></form>"
    )
    content = (
        _progress(progress, annotator)
        + _prompt(build, item)
        + body
        + judges
        + form
        + f"<p class='muted'>{keys}</p>"
        + logout
    )
    return page(f"annotate {progress.done + 1}/{progress.total}", content, nonce)


def done_page(progress: Progress, annotator: str, csrf: str, nonce: str) -> str:
    body = (
        _progress(progress, annotator)
        + "<h2 id='done'>Nothing left to label. Thank you!</h2>"
        + f"<form method='post' action='/logout'><input type='hidden' name='csrf' value='{esc(csrf)}'>"
        "<button id='logout'>Sign out</button></form>"
    )
    return page("done", body, nonce)
