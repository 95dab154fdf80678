"""The program the code sandbox runs as ``python -I sandbox_harness.py MODE TOKEN_FD LIMITS`` in the
test folder.

It is copied into each test folder and run there; it imports nothing from prefmill. It reads a one-time
token from an inherited pipe, opens its result file, sets the resource limits (``LIMITS`` is
``CPU=5,AS=...``: soft = hard, so they cannot be raised again without privileges, and the audit hook
refuses ``resource.setrlimit``; only CPU's hard limit is one second above, so SIGXCPU comes first),
installs an audit hook (no network, no new processes, no ctypes, no
writes outside the folder), runs ``solution.py`` (then ``tests.py`` in mode
``tests``) and writes ``<token>\\n<status>`` to ``_result``: ``ok`` or the exception that stopped it. A
candidate that exits early (``os._exit(0)``) never writes the token, so it cannot pass by exiting.
"""

import os
import sys

_PROTECTED = ("_result", "sandbox_harness.py", "tests.py")
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_PATH_EVENTS = {
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.link": (0, 1),
    "os.symlink": (1,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.truncate": (0,),
    "os.utime": (0,),
    "shutil.rmtree": (0,),
    "shutil.copyfile": (1,),
    "shutil.move": (1,),
}
_PROCESS_EVENTS = {
    "os.fork",
    "os.forkpty",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.kill",
    "os.killpg",
    "subprocess.Popen",
    "pty.spawn",
}


def _install_hook(root: str) -> None:
    realpath, fsdecode, sep, basename = os.path.realpath, os.fsdecode, os.sep, os.path.basename
    root = realpath(root) + sep

    def inside(path: object) -> bool:
        if isinstance(path, int):
            return True  # a descriptor the process already holds
        try:
            p = realpath(fsdecode(path))  # type: ignore[arg-type]
        except Exception:
            return False
        return (p + sep).startswith(root) and basename(p) not in _PROTECTED

    def hook(event: str, args: tuple) -> None:
        if event.startswith("socket."):
            raise PermissionError("network access is blocked in the sandbox")
        if event == "open":
            path, mode, flags = args
            writing = bool(mode and any(c in mode for c in "wax+")) or bool((flags or 0) & _WRITE)
            if path is not None and writing and not inside(path):
                raise PermissionError(f"writing outside the sandbox folder is blocked: {path}")
        elif event in _PATH_EVENTS:
            for i in _PATH_EVENTS[event]:
                if i < len(args) and not inside(args[i]):
                    raise PermissionError(f"changing files outside the sandbox folder is blocked: {args[i]}")
        elif event in _PROCESS_EVENTS:
            raise PermissionError(f"starting or signalling processes is blocked in the sandbox ({event})")
        elif event.startswith("ctypes."):
            raise PermissionError("ctypes is blocked in the sandbox")
        elif event in ("resource.setrlimit", "resource.prlimit"):
            raise PermissionError("changing resource limits is blocked in the sandbox")

    sys.addaudithook(hook)


def _where(exc: BaseException) -> str:
    """`` at tests.py line 3: assert add(2, 3) == 5`` for the innermost frame in the test folder."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in ("solution.py", "tests.py")]
    if not frames:
        return ""
    f = frames[-1]
    source = (solution_text if f.filename == "solution.py" else tests_text).splitlines()
    line = source[f.lineno - 1].strip() if f.lineno and f.lineno <= len(source) else ""
    return f" at {f.filename} line {f.lineno}" + (f": {line[:120]}" if line else "")


solution_text = tests_text = ""


def _main() -> None:
    global solution_text, tests_text
    mode, token_fd, limits = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    token = os.read(token_fd, 256).decode()
    os.close(token_fd)
    result = os.open("_result", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    sys.dont_write_bytecode = True
    with open("solution.py", encoding="utf-8") as f:
        solution = f.read()
    tests = ""
    if mode == "tests":
        with open("tests.py", encoding="utf-8") as f:
            tests = f.read()
    solution_text, tests_text = solution, tests
    import resource
    import signal

    # SIGXCPU must reach the candidate even if the parent left it ignored or blocked (both survive exec)
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGXCPU})
    for item in limits.split(","):
        name, value = item.split("=")
        # CPU: hard = soft + 1, else the kernel sends SIGKILL (hard limit) instead of SIGXCPU (soft)
        hard = int(value) + 1 if name == "CPU" else int(value)
        resource.setrlimit(getattr(resource, "RLIMIT_" + name), (int(value), hard))
    _install_hook(os.getcwd())
    status = "ok"
    namespace = {"__name__": "__main__" if mode == "io" else "solution", "__builtins__": __builtins__}
    try:
        exec(compile(solution, "solution.py", "exec"), namespace)
        if mode == "tests":
            exec(compile(tests, "tests.py", "exec"), namespace)
    except SystemExit as exc:
        if mode == "tests" or exc.code not in (None, 0):
            status = f"SystemExit: exit({exc.code!r}) before the tests finished"
    except BaseException as exc:
        status = f"{type(exc).__name__}: {exc}".rstrip(": ") + _where(exc)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os.write(result, (token + "\n" + status[:2000]).encode("utf-8", "replace"))
    os.close(result)
    os._exit(0)


if __name__ == "__main__":
    _main()
