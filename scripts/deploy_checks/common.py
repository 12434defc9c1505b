"""Helpers shared by the deployment checks (scripts/deploy_checks/*.py, scripts/check-openapi.py).

Loopback only. Every process started here is stopped by its own pid: SIGTERM, then SIGKILL.

- free_port(): a free port, never handed out twice in one run;
- Process: a subprocess whose output goes to a log file, with log_tail() and stop();
- Gateway: a switchboard process (fresh loopback ports on its command line, or wherever its
  environment says) and wait_ready(url); gateway_env() builds its environment;
- Redis: a private redis-server on a free loopback port, without persistence;
- http(), http_get(), wait_until(): small HTTP and polling helpers (no proxies);
- Report: one PASS/FAIL line per check; CheckError: a failed check.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence


class CheckError(Exception):
    """A check failed; the message says why."""


# ---------------------------------------------------------------------------------------
# Reporting


class Report:
    """Prints one PASS/FAIL line per check as soon as it is decided. Each script prints its
    own summary line from `passed`, `failed` (check names) and `elapsed()`.

    expected: exceptions whose message is the whole FAIL detail. Any other exception is a
      broken check, still one FAIL line: `crash(err)` (default `TypeName: message`), called
      inside the `except`, so it may format the traceback.
    one_line: how a FAIL detail is put on one line (None: printed as it is).
    """

    def __init__(self, *, expected: tuple[type[BaseException], ...] = (CheckError,),
                 one_line: Callable[[str], str] | None = None,
                 crash: Callable[[Exception], str] | None = None) -> None:
        self.passed: list[str] = []
        self.failed: list[str] = []
        self.started = time.monotonic()
        self.expected = expected
        self.one_line = one_line
        self.crash = crash or (lambda err: f"{type(err).__name__}: {err}")

    @property
    def count(self) -> int:
        return len(self.passed) + len(self.failed)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if not ok and self.one_line is not None:
            detail = self.one_line(detail)
        print(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
        (self.passed if ok else self.failed).append(name)
        return ok

    def fail(self, name: str, detail: str = "") -> None:
        self.check(name, False, detail)

    def run(self, name: str, fn: Callable[[], str | None]) -> bool:
        """Runs fn: it returns an optional detail for PASS, or raises for FAIL."""
        try:
            detail = fn()
        except self.expected as err:
            return self.check(name, False, str(err))
        except Exception as err:  # a broken check is a failed check, not a traceback
            return self.check(name, False, self.crash(err))
        return self.check(name, True, detail or "")

    def info(self, text: str) -> None:
        print(f"     {text}", flush=True)


# ---------------------------------------------------------------------------------------
# Ports, HTTP, polling


_ports_lock = threading.Lock()
_ports_given: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` right now, never one this process was already given (two
    listeners asked for in a row could otherwise get the same number). Thread-safe."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        with _ports_lock:
            if port not in _ports_given:
                _ports_given.add(port)
                return port


# No proxies from the environment: everything here is on loopback.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 3.0) -> tuple[int, dict, bytes]:
    """(status, headers, body); HTTP error statuses are returned, not raised.
    Connection-level failures raise OSError."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()
    except urllib.error.URLError as err:
        raise OSError(str(err.reason)) from err


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    """(status, body as text) of a GET; like http(), connection failures raise OSError."""
    status, _, body = http("GET", url, timeout=timeout)
    return status, body.decode("utf-8", "replace")


def wait_until(what: str, pred: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Polls pred() until truthy; returns its value, or None on timeout. OSError counts as
    not yet; any other exception ends the wait. `what` names the wait for a reader."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            val = pred()
            if val:
                return val
        except OSError:
            pass
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


# ---------------------------------------------------------------------------------------
# Processes


class Process(subprocess.Popen):
    """A process with stdout and stderr appended to `log_path` and no stdin."""

    def __init__(self, argv: Sequence[Any], log_path: Path, *, env: dict | None = None,
                 cwd: Path | None = None, new_session: bool = False, name: str | None = None) -> None:
        self.name = name or Path(str(argv[0])).name
        self.log_path = Path(log_path)
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            super().__init__([str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                             start_new_session=new_session)

    def log_tail(self, lines: int = 10, sep: str = " | ") -> str:
        """The last `lines` lines of the log, colour codes removed."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return sep.join(re.sub(r"\x1b\[[0-9;]*m", "", line) for line in text.splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> None:
        stop_processes([self], grace)


def stop_processes(procs: Iterable[subprocess.Popen], grace: float = 3.0) -> None:
    """SIGTERM to each one still running, SIGKILL to any still running `grace` seconds later
    (grace 0: SIGKILL at once). Only these pids are signalled."""
    live = [p for p in procs if p.poll() is None]
    if grace > 0:
        for p in live:
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for p in live:
            try:
                p.wait(timeout=max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
    for p in live:
        if p.poll() is None:
            try:
                p.kill()
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                print(f"     warning: {getattr(p, 'name', p.args)} (pid {p.pid}) did not die", flush=True)


def gateway_env(extra: dict[str, str] | None = None, *, inherit: bool = True) -> dict[str, str]:
    """A gateway's environment: this one without any SWITCHBOARD_* (a developer's exports
    must not leak in), plus `extra`; with inherit=False only PATH, plus `extra`."""
    if inherit:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    else:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update(extra or {})
    return env


class Gateway(Process):
    """A switchboard process. With listen=True it gets fresh loopback ports on its command
    line (`--listen`, and `--admin-listen` with admin=True); with listen=False its own
    arguments or environment say where it listens. Not waited for: see wait_ready()."""

    def __init__(self, binary: Path, log_path: Path, args: Sequence[str] = (),
                 env: dict | None = None, *, listen: bool = True, admin: bool = False,
                 name: str = "gateway", **kw: Any) -> None:
        self.port = free_port() if listen else None
        self.admin_port = free_port() if listen and admin else None
        argv = [str(binary), *args]
        if self.port is not None:
            argv += ["--listen", f"127.0.0.1:{self.port}"]
        if self.admin_port is not None:
            argv += ["--admin-listen", f"127.0.0.1:{self.admin_port}"]
        super().__init__(argv, log_path, env=env, name=name, **kw)

    @property
    def public(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def wait_ready(self, url: str, timeout: float = 15.0, interval: float = 0.05) -> None:
        """Polls `url` until it answers 200. CheckError with the log's tail if the process
        exits first or `timeout` seconds pass (it is asked at least once)."""
        deadline = time.monotonic() + timeout
        path = urllib.parse.urlsplit(url).path
        last = "no answer"
        while True:
            if self.poll() is not None:
                raise CheckError(f"{self.name} exited with {self.returncode}: {self.log_tail()}")
            try:
                status, body = http_get(url, timeout=1)
                if status == 200:
                    return
                last = f"{status} {body.strip()[:80]!r}"
            except OSError as err:
                last = str(err)
            if time.monotonic() >= deadline:
                raise CheckError(f"{self.name} not ready within {timeout:g} s ({path}: {last}): "
                                 f"{self.log_tail()}")
            time.sleep(interval)


class Redis(Process):
    """A private redis-server on a free loopback port, no persistence, files in `workdir`."""

    def __init__(self, workdir: Path, **kw: Any) -> None:
        exe = shutil.which("redis-server")
        if not exe:
            raise CheckError("redis-server not on PATH (scripts/check-deploy.sh installs it)")
        self.port = free_port()
        kw.setdefault("name", "redis")
        super().__init__([exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(workdir)],
                         Path(workdir) / f"{kw['name']}.log", **kw)

    def ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Waits for PONG; CheckError if it does not come (the server is then stopped)."""
        def pong() -> bool:
            if self.poll() is not None:
                raise CheckError("exited")  # ends the wait
            return self.ping()
        try:
            if wait_until("redis PONG", pong, timeout, 0.05):
                return
        except CheckError:
            pass
        self.stop()
        raise CheckError(f"private redis-server on 127.0.0.1:{self.port} did not start: {self.log_tail()}")
