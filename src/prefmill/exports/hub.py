"""Pushing an export folder to the Hugging Face Hub with the Hub's own client (``huggingface_hub``).

The token is found as the Hub client finds it (``hf auth login``'s token file, ``$HF_TOKEN``) and checked
with ``whoami`` *before* anything is written, so a bad token costs nothing. ``$HF_ENDPOINT`` points the
client at another Hub (a mirror, or a test server on loopback).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefmill.errors import ExportError


@dataclass
class HubTarget:
    """A checked destination: the client, the repo and who the token belongs to."""

    api: Any  # huggingface_hub.HfApi
    repo: str
    user: str
    private: bool


def _endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def check_hub(repo: str, token: str | None = None, *, private: bool = False) -> HubTarget:
    """A client for ``repo`` whose token the Hub accepts; an ``ExportError`` saying what to do if not."""
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError

    if repo.count("/") != 1 or not all(repo.split("/")):
        raise ExportError(f"--push-to-hub {repo!r}: give the dataset repo as NAMESPACE/NAME")
    token = token or get_token()
    if not token:
        raise ExportError(
            f"pushing to {repo} needs a Hugging Face token: run `hf auth login` or set $HF_TOKEN"
        )
    api = HfApi(endpoint=_endpoint(), token=token)
    try:
        me = api.whoami()
    except HfHubHTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise ExportError(
            f"the Hub at {api.endpoint} refused the token (HTTP {status}): "
            "run `hf auth login` or set $HF_TOKEN to a token with write access"
        ) from exc
    except Exception as exc:  # the client's transport errors: connection refused, DNS, timeouts
        if isinstance(exc, OSError) or type(exc).__module__.startswith(("httpx", "httpcore", "requests")):
            raise ExportError(f"cannot reach the Hub at {api.endpoint}: {exc}") from exc
        raise
    return HubTarget(api, repo, str(me.get("name", "?")), private)


def push_folder(target: HubTarget, folder: Path, *, message: str) -> str:
    """Create the dataset repo if needed and upload the export folder (not datasets' ``hf/`` copy) as
    one commit; the repo's URL."""
    api = target.api
    try:
        url = api.create_repo(target.repo, repo_type="dataset", private=target.private or None, exist_ok=True)
        api.upload_folder(
            repo_id=target.repo,
            repo_type="dataset",
            folder_path=str(folder),
            commit_message=message,
            ignore_patterns=["hf/*"],
        )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(
            f"push of {folder} to {target.repo} failed: {first}; the export folder is complete, "
            "rerun the export with --push-to-hub"
        ) from exc
    return str(url)
