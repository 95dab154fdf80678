"""A tiny Hugging Face Hub on loopback: the endpoints ``huggingface_hub`` calls to check a token, create
a dataset repo and commit a folder of regular (non-LFS) files. Not a mock of our code: the real client
talks real HTTP to it."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeHub:
    def __init__(self, token: str = "hf_good") -> None:
        self.token = token
        self.repos: dict[str, dict[str, Any]] = {}  # repo id -> {"private": bool, "files": {path: bytes}}
        self.requests: list[tuple[str, str]] = []
        self.validated: list[str] = []  # README texts sent to /api/validate-yaml
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") == f"Bearer {hub.token}":
                    return True
                self._send(401, {"error": "Invalid credentials in Authorization header"})
                return False

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self) -> None:
                hub.requests.append(("GET", self.path))
                if not self._authorised():
                    return
                if self.path.startswith("/api/whoami-v2"):
                    self._send(200, {"type": "user", "name": "tester", "auth": {"type": "access_token"}})
                else:
                    self._send(404, {"error": f"no route {self.path}"})

            def do_POST(self) -> None:
                hub.requests.append(("POST", self.path))
                if not self._authorised():
                    return
                body = self._body()
                parts = self.path.split("?")[0].strip("/").split("/")
                if self.path.startswith("/api/validate-yaml"):  # the Hub checks a README's header
                    hub.validated.append(json.loads(body)["content"])
                    self._send(200, {"errors": [], "warnings": []})
                elif self.path.startswith("/api/repos/create"):
                    req = json.loads(body)
                    repo = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
                    private = bool(req.get("private")) or req.get("visibility") == "private"
                    hub.repos.setdefault(repo, {"private": private, "files": {}})
                    self._send(200, {"url": f"{hub.url}/datasets/{repo}", "name": repo})
                elif len(parts) == 6 and parts[:2] == ["api", "datasets"] and parts[4] == "preupload":
                    files = json.loads(body)["files"]
                    self._send(
                        200,
                        {
                            "files": [
                                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                for f in files
                            ]
                        },
                    )
                elif len(parts) == 6 and parts[:2] == ["api", "datasets"] and parts[4] == "commit":
                    repo = f"{parts[2]}/{parts[3]}"
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            value = item["value"]
                            hub.repos[repo]["files"][value["path"]] = base64.b64decode(value["content"])
                    self._send(
                        200, {"commitUrl": f"{hub.url}/datasets/{repo}/commit/1", "commitOid": "1" * 40}
                    )
                else:
                    self._send(404, {"error": f"no route {self.path}"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
