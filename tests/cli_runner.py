"""``python -m lightning_review ...`` in a fresh process for every command, without paying the imports in each one.

Importing torch, Lightning, transformers and peft takes 5-15 s of CPU, most of a short command's time; the suite runs
dozens of commands. A zygote process per command kind (the Lightning subcommands, or one tool's module) imports what
``lightning_review.cli.main`` imports for that command (for ``evaluate``, also its default judge's
sentence-transformers), and nothing else, then forks one child per command. The child is what ``python -m lightning_review ARGS`` would be after those imports: the caller's working directory and
environment (exactly: os.environ replaced, plus what the imports themselves set), stdin on /dev/null, stdout and
stderr on files, fresh random seeds, ``lightning_review`` run as ``__main__`` by runpy, and the interpreter's exit
rules (a SystemExit message on stderr and status 1, an uncaught exception's traceback and status 1, atexit handlers,
non-daemon threads joined). Its exit status is the command's.

The imports see the command's own environment: zygotes are kept per environment, which may differ from the
command's only in RUNTIME_ENV, variables read when a command runs, never at import. A real ``subprocess.run`` is used
on a platform without fork, with ``fresh=True``, when a zygote dies, and for every command with
LIGHTNING_REVIEW_TEST_SUBPROCESS=1 (to check that the suite passes the same both ways).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# read when a command runs, never at import: they may differ between the zygote and a command (PYTEST_CURRENT_TEST:
# pytest's name of the running test, which changes with every test and which nothing imported reads)
RUNTIME_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENREVIEW_USERNAME", "OPENREVIEW_PASSWORD",
               "LIGHTNING_REVIEW_CACHE", "PYTEST_CURRENT_TEST")
MAX_ZYGOTES = 3  # each holds its imports in memory (a few hundred MB); the least recently used one is closed
START_TIMEOUT = 600

# Runs in the zygote (python -c): import, report ready, then fork one child per request line.
ZYGOTE = r'''
import atexit, importlib, json, os, random, runpy, signal, sys, threading, traceback

kind, request_fd, reply_fd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
start_env = dict(os.environ)
try:
    from lightning_review import cli
    if kind == "lightning":  # what cli.main imports before it builds ReviewCLI
        from lightning_review.data.datamodule import ReviewDataModule
        from lightning_review.training.module import LongQLoRAModule
        from lightning_review.trainer_cli import ReviewCLI
    else:  # a tool: jsonargparse, its module, and the exceptions main turns into one-line errors
        import jsonargparse
        importlib.import_module(kind, "lightning_review")
        cli._user_errors()
        if kind == ".evaluate.command":  # evaluate's default judge, imported when it is built
            from lightning_review.evaluate.embedding_judge import EmbeddingJudge
            import sentence_transformers
        if kind == ".openai_ft.commands":  # the openai client, imported when openai_ft.jobs.client() is first built
            import openai
except BaseException:  # the command itself will fail the same way and say why
    pass
set_by_imports = {k: v for k, v in os.environ.items() if start_env.get(k) != v}
requests = os.fdopen(request_fd, "rb")


def reply(**message):
    os.write(reply_fd, (json.dumps(message) + "\n").encode())


def exit_code(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        print(code, file=sys.stderr)
    except Exception:
        pass
    return 1


def child(request):
    requests.close()
    os.close(reply_fd)
    os.chdir(request["cwd"])
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(request["stdout"], os.O_WRONLY | os.O_TRUNC)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_TRUNC)
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ.update(set_by_imports)
    sys.path[0] = os.getcwd()  # python -m puts the working directory first
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    code = 0
    try:
        sys.argv = ["-m", *request["args"]]
        runpy.run_module("lightning_review", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exit_code(exc)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = -signal.SIGINT
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    try:
        threading._shutdown()
    except BaseException:
        pass
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    if code < 0:  # died of a signal, as the interpreter does on an uncaught KeyboardInterrupt
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


reply(ready=True)
for line in requests:
    request = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            child(request)
        finally:
            os._exit(70)
    reply(pid=pid)
    reply(status=os.waitpid(pid, 0)[1])
'''


class ZygoteGone(Exception):
    pass


class Zygote:
    def __init__(self, kind: str, env: dict[str, str]):
        self.kind, self.env = kind, env
        request_r, self.request_w = os.pipe()
        self.reply_r, reply_w = os.pipe()
        self.proc = subprocess.Popen([sys.executable, "-c", ZYGOTE, kind, str(request_r), str(reply_w)],
                                     pass_fds=(request_r, reply_w), env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(request_r)
        os.close(reply_w)
        self.buffer = b""
        try:
            self.read(START_TIMEOUT)  # {"ready": true}
        except BaseException:
            self.close()
            raise

    def read(self, timeout: float | None) -> dict:
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.reply_r], [], [], timeout)
            if not ready:
                raise TimeoutError
            chunk = os.read(self.reply_r, 65536)
            if not chunk:
                raise ZygoteGone(self.kind)
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def run(self, args: list[str], cwd, env: dict[str, str], timeout: float | None):
        with tempfile.TemporaryDirectory(prefix="lightning_review_cli_") as tmp:
            out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
            out.touch()
            err.touch()
            request = {"args": args, "cwd": str(Path(cwd).resolve()), "env": env, "stdout": str(out),
                       "stderr": str(err)}
            data = (json.dumps(request) + "\n").encode()
            try:
                while data:
                    data = data[os.write(self.request_w, data):]
            except OSError:  # the zygote is gone: the command was not taken
                raise ZygoteGone(self.kind) from None
            try:  # from here on the command may be running: never run it a second time
                pid = self.read(60)["pid"]
                try:
                    status = self.read(timeout)["status"]
                except TimeoutError:
                    os.kill(pid, signal.SIGKILL)
                    self.read(60)
                    raise subprocess.TimeoutExpired(command(args), timeout, output=read_text(out),
                                                    stderr=read_text(err)) from None
            except (ZygoteGone, TimeoutError):
                raise RuntimeError(f"the zygote of {self.kind!r} failed while running {args}") from None
            return subprocess.CompletedProcess(command(args), os.waitstatus_to_exitcode(status), read_text(out),
                                               read_text(err))

    def close(self):
        for fd in (self.request_w, self.reply_r):  # the zygote ends when its requests do
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def command(args) -> list[str]:
    return [sys.executable, "-m", "lightning_review", *args]


def read_text(path: Path) -> str:
    with open(path) as f:  # what subprocess.run(text=True) decodes: locale encoding, universal newlines
        return f.read()


_zygotes: OrderedDict[tuple, Zygote] = OrderedDict()
_lock = threading.Lock()


def command_kind(args) -> str:
    """The zygote a command runs from: the Lightning subcommands share one, a tool has its module's."""
    from lightning_review.cli import TOOLS

    return TOOLS[args[0]][0] if args and args[0] in TOOLS else "lightning"


def zygote_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in RUNTIME_ENV}


def run(args, cwd, env: dict[str, str], timeout: float | None, fresh: bool = False):
    """subprocess.run([python, -m, lightning_review, *args], cwd, env, capture_output, text, timeout), from a
    zygote where that gives the same process."""
    args = [str(a) for a in args]
    if not os.path.isdir(cwd):
        raise FileNotFoundError(f"no such directory: {cwd}")
    if fresh or not hasattr(os, "fork") or os.environ.get("LIGHTNING_REVIEW_TEST_SUBPROCESS") == "1":
        return subprocess.run(command(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    base = zygote_env(env)
    key = (command_kind(args), tuple(sorted(base.items())))
    with _lock:
        zygote = _zygotes.pop(key, None)
        if zygote is None:
            while len(_zygotes) >= MAX_ZYGOTES:
                _zygotes.popitem(last=False)[1].close()
            try:
                zygote = Zygote(key[0], base)
            except (ZygoteGone, OSError):  # it could not start: a real process runs the command
                return subprocess.run(command(args), cwd=cwd, env=env, capture_output=True, text=True,
                                      timeout=timeout)
        try:
            result = zygote.run(args, cwd, env, timeout)
        except subprocess.TimeoutExpired:
            _zygotes[key] = zygote
            raise
        except ZygoteGone:  # it died before taking the command: a real process runs it
            zygote.close()
            return subprocess.run(command(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        except BaseException:
            zygote.close()
            raise
        _zygotes[key] = zygote
        return result


@atexit.register
def close_all():
    while _zygotes:
        _zygotes.popitem()[1].close()
