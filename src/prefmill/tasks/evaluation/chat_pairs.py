"""Preference records whose responses are conversations: TRL's conversational preference format
and Anthropic HH-style full conversations, as (prompt chat, chosen text, rejected text).

Three layouts are read (``chosen`` / ``rejected`` as message lists, or as HH text):

* explicit prompt: ``prompt`` (or ``messages``) a list of ``{role, content}`` messages (or text),
  ``chosen`` / ``rejected`` lists whose last message is the assistant's reply (TRL's conversational
  preference format: usually ``[{"role": "assistant", "content": ...}]``);
* implicit prompt: no ``prompt``; ``chosen`` and ``rejected`` are whole conversations that share
  every turn but the last assistant reply (TRL's implicit-prompt format, HH-RLHF as chats): the
  shared turns become the prompt;
* HH text: ``chosen`` / ``rejected`` strings of ``\\n\\nHuman: ...\\n\\nAssistant: ...`` turns,
  split into messages, then as above.

Turns that ``chosen`` and ``rejected`` share beyond an explicit prompt are appended to it. The prompt
must end with the user's turn (``prefmill.tasks.prompts.loaders.check_messages``); each side must
then hold exactly one assistant reply. Anything else is an ``InputError`` naming the record.
"""

from __future__ import annotations

import json
import re
from typing import Any

from prefmill.errors import InputError
from prefmill.tasks.prompts.loaders import ROLES, check_messages

Chat = list[dict[str, str]]
#: The speaker markers of HH-RLHF's text form.
_HH_TURN = re.compile(r"(?:\A\s*|\n\n)(Human|Assistant):[ ]?")
_HH_ROLES = {"Human": "user", "Assistant": "assistant"}


def is_hh_text(value: Any) -> bool:
    return isinstance(value, str) and re.match(r"\s*Human:", value) is not None


def hh_messages(text: str) -> Chat:
    """``"\\n\\nHuman: q\\n\\nAssistant: a"`` as ``[{user, q}, {assistant, a}]``."""
    parts = _HH_TURN.split(text)
    # parts: ["", "Human", "q", "Assistant", "a", ...]
    return [
        {"role": _HH_ROLES[parts[i]], "content": parts[i + 1].strip()} for i in range(1, len(parts) - 1, 2)
    ]


def is_conversational(item: dict[str, Any]) -> bool:
    """Whether a record's responses are conversations (lists of messages, or HH text without prompt)."""
    sides = [item.get("chosen"), item.get("rejected")]
    if any(isinstance(v, list) for v in sides):
        return True
    if any(isinstance(v, str) and v.lstrip().startswith("[{") for v in sides):
        return True  # a CSV cell holding the list as JSON
    has_prompt = item.get("prompt") not in (None, "") or item.get("messages") not in (None, "")
    return not has_prompt and all(is_hh_text(v) for v in sides)


def _chat(value: Any, field: str, where: str) -> Chat:
    if is_hh_text(value):
        return hh_messages(value)
    if isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise InputError(f"{where}: '{field}' is not a JSON list of messages; fix its JSON") from None
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: '{field}' must be a non-empty list of {{role, content}} messages")
    out: Chat = []
    for i, m in enumerate(value):
        if not (isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)):
            raise InputError(
                f"{where}: '{field}' message {i} must be {{role, content}} with role system, user or "
                "assistant and text content"
            )
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _prompt(item: dict[str, Any], where: str) -> Chat:
    for field in ("prompt", "messages"):
        value = item.get(field)
        if value in (None, ""):
            continue
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [{"role": "user", "content": value}]
        return _chat(value, field, where)
    return []


def chat_pair(item: dict[str, Any], where: str) -> tuple[Chat, str, str]:
    """(the prompt chat, the chosen reply, the rejected reply) of a conversational record."""
    prompt = _prompt(item, where)
    if "chosen" not in item or "rejected" not in item:
        raise InputError(f"{where}: a conversational pair needs both 'chosen' and 'rejected'")
    chosen, rejected = _chat(item["chosen"], "chosen", where), _chat(item["rejected"], "rejected", where)
    shared = 0
    while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
        shared += 1
    tail_c, tail_r = chosen[shared:], rejected[shared:]
    if len(tail_c) != 1 or len(tail_r) != 1:
        raise InputError(
            f"{where}: 'chosen' and 'rejected' differ from message {shared} on but must share every turn "
            "before one final assistant reply each; put the shared turns in 'prompt' or fix the record"
        )
    for field, tail in (("chosen", tail_c[0]), ("rejected", tail_r[0])):
        if tail["role"] != "assistant":
            raise InputError(
                f"{where}: the last message of '{field}' is from '{tail['role']}'; it must be the "
                "assistant's reply"
            )
        if not tail["content"].strip():
            raise InputError(f"{where}: the assistant's reply in '{field}' is empty")
    messages = prompt + chosen[:shared]
    if not messages:
        raise InputError(
            f"{where}: no prompt: give 'prompt' (text or messages) or conversations that share their turns "
            "up to the final reply"
        )
    if (problem := check_messages(messages)) is not None:
        raise InputError(f"{where}: the prompt (with the turns both sides share) is not usable: {problem}")
    return messages, tail_c[0]["content"], tail_r[0]["content"]
