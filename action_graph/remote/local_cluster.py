"""A remote execution cluster on this machine, on 127.0.0.1 only: PostgreSQL, BuildGrid, pybuild workers.

    python -m action_graph.remote.local_cluster start --dir DIR [--workers 2] [--slots 2]
    python -m action_graph.remote.local_cluster stop --dir DIR

`start` prints the executor address (grpc://127.0.0.1:PORT) as its only line on stdout and leaves the
processes running in the background (logs in DIR/logs); `stop` ends them and deletes the database.
Every start initializes a new PostgreSQL cluster: a bot that died leaves its session in the database,
so state is never reused. Exit codes: 0 ok, 1 failure, 3 PostgreSQL is missing and cannot be installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from action_graph.remote.connection import RemoteError, open_channel
from action_graph.remote.protos import re_grpc, re_pb2

HOST = "127.0.0.1"
_TEMPLATE = Path(__file__).with_name("buildgrid.yml")
_REPO_ROOT = Path(__file__).resolve().parent.parent.parent
_STATE = "cluster.json"
_MISSING_POSTGRES = 3


class ClusterError(Exception):
    exit_code = 1


class PostgresMissing(ClusterError):
    exit_code = _MISSING_POSTGRES


# PostgreSQL ---------------------------------------------------------------------------------------------


def postgres_bin() -> Path:
    """The bin directory of the newest PostgreSQL; installs Debian's package when root can."""
    found = _find_postgres()
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        _log("PostgreSQL not found: installing Debian's postgresql package")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]):
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise PostgresMissing(f"'{' '.join(argv)}' failed: {done.stderr.strip()[-500:]}")
        found = _find_postgres()
    if found is None:
        raise PostgresMissing(
            "PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on PATH) and this user cannot "
            "install it; install Debian's 'postgresql' package (apt-get install postgresql) and try again"
        )
    return found


def _find_postgres() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if candidates:
        return candidates[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_postgres_user() -> Callable[[], None] | None:
    """PostgreSQL refuses to run as root: then its programs run as the `postgres` user."""
    if os.geteuid() != 0:
        return None
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        raise ClusterError("running as root needs a 'postgres' user to run PostgreSQL as") from None

    def demote() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return demote


def start_postgres(bin_dir: Path, base: Path, port: int) -> None:
    """A new cluster in base/data with user bgd (trust auth), listening on 127.0.0.1:port only."""
    demote = _as_postgres_user()
    if demote is not None:
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
    data = base / "data"
    _run([str(bin_dir / "initdb"), "-D", str(data), "-U", "bgd", "--auth=trust", "-E", "UTF8", "--no-sync"], demote)
    # A throw-away database: durability settings off, for speed.
    options = f"-p {port} -k {base} -c listen_addresses={HOST} -c fsync=off -c synchronous_commit=off"
    log = base / "postgres.log"
    _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"], demote)
    _run([str(bin_dir / "createdb"), "-h", HOST, "-p", str(port), "-U", "bgd", "bgd"], None)


def stop_postgres(bin_dir: str, base: str) -> None:
    data = Path(base, "data")
    if data.is_dir():
        with contextlib.suppress(ClusterError):
            _run([str(Path(bin_dir, "pg_ctl")), "-D", str(data), "-m", "immediate", "-w", "stop"], _as_postgres_user())
    shutil.rmtree(base, ignore_errors=True)


# BuildGrid and the workers ------------------------------------------------------------------------------


def _bgd() -> str:
    sibling = Path(sys.executable).with_name("bgd")
    found = str(sibling) if sibling.exists() else shutil.which("bgd")
    if not found:
        raise ClusterError(
            "BuildGrid is not installed: pip install 'buildgrid[database]==0.4.4' (pybuild's test extra)"
        )
    return found


def write_config(path: Path, port: int, pg_port: int, instance_name: str, keepalive: int) -> None:
    template = string.Template(_TEMPLATE.read_text(encoding="utf-8"))
    path.write_text(
        template.substitute(
            address=f"{HOST}:{port}",
            sql_url=f"postgresql+psycopg2://bgd@{HOST}:{pg_port}/bgd",
            storage_size="2G",
            keepalive_seconds=str(keepalive),
            instance_name=instance_name,
        ),
        encoding="utf-8",
    )


def start_buildgrid(directory: Path, pg_port: int, port: int, instance_name: str, keepalive: int) -> int:
    sql_url = f"postgresql+psycopg2://bgd@{HOST}:{pg_port}/bgd"
    _run([_bgd(), "migrate", "apply", sql_url], None)
    config = directory / "buildgrid.yml"
    write_config(config, port, pg_port, instance_name, keepalive)
    process = _spawn([_bgd(), "server", "start", str(config)], directory / "logs" / "buildgrid.log")
    _wait_for_server(f"grpc://{HOST}:{port}", instance_name, process, directory / "logs" / "buildgrid.log")
    return process.pid


def _wait_for_server(url: str, instance_name: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ClusterError(f"BuildGrid exited with code {process.returncode}:\n{_tail(log)}")
        try:
            channel = open_channel(url, 2.0)
            request = re_pb2.GetCapabilitiesRequest(instance_name=instance_name)
            re_grpc.CapabilitiesStub(channel).GetCapabilities(request, timeout=5)
            channel.close()
            return
        except (RemoteError, Exception):  # not listening yet
            time.sleep(0.3)
    raise ClusterError(f"BuildGrid did not answer on {url} within 90s:\n{_tail(log)}")


def start_worker(directory: Path, index: int, url: str, slots: int, instance_name: str) -> int:
    log = directory / "logs" / f"worker-{index}.log"
    argv = [sys.executable, "-m", "pybuild", "worker", "--server", url, "--slots", str(slots)]
    argv += ["--instance_name", instance_name, "--work_dir", str(directory / "worker")]
    return _spawn(argv, log).pid


def _wait_for_workers(directory: Path, pids: list[int]) -> None:
    """Each worker logs its session once the server has registered it."""
    deadline = time.monotonic() + 60
    for index, pid in enumerate(pids):
        log = directory / "logs" / f"worker-{index}.log"
        while " session " not in log.read_text(encoding="utf-8", errors="replace"):
            if not _alive(pid):
                raise ClusterError(f"worker {index} exited:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise ClusterError(f"worker {index} did not register within 60s:\n{_tail(log)}")
            time.sleep(0.1)


# Commands -----------------------------------------------------------------------------------------------


def start(directory: Path, workers: int, slots: int, instance_name: str, keepalive: int) -> str:
    """Start everything; returns the executor address. On failure, whatever started is stopped."""
    directory.mkdir(parents=True, exist_ok=True)
    if (directory / _STATE).exists():
        raise ClusterError(f"a cluster already runs from {directory}; stop it first")
    (directory / "logs").mkdir(exist_ok=True)
    bin_dir = postgres_bin()
    # The postgres user must reach its data directory: under root, one of its own in /tmp.
    base = Path(tempfile.mkdtemp(prefix="pybuild-pg-")) if os.geteuid() == 0 else directory / "postgres"
    base.mkdir(parents=True, exist_ok=True)
    state: dict = {"postgres_bin": str(bin_dir), "postgres_dir": str(base), "workers": []}
    _save(directory, state)
    try:
        pg_port = free_port()
        start_postgres(bin_dir, base, pg_port)
        port = free_port()
        state["server"] = start_buildgrid(directory, pg_port, port, instance_name, keepalive)
        state["address"] = f"grpc://{HOST}:{port}"
        _save(directory, state)
        state["workers"] = [start_worker(directory, i, state["address"], slots, instance_name) for i in range(workers)]
        _save(directory, state)
        _wait_for_workers(directory, state["workers"])
    except BaseException:
        stop(directory)
        raise
    return state["address"]


def stop(directory: Path) -> None:
    """Workers first (they finish or hand back their leases), then BuildGrid, then PostgreSQL."""
    try:
        state = json.loads((directory / _STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    _terminate(state.get("workers", []), grace=40)
    if state.get("server"):
        _terminate([state["server"]], grace=10)
    stop_postgres(state["postgres_bin"], state["postgres_dir"])
    (directory / _STATE).unlink(missing_ok=True)


def _terminate(pids: Sequence[int], grace: float) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


# Helpers ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _run(argv: list[str], demote: Callable[[], None] | None) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, preexec_fn=demote, check=False, cwd="/")
    if done.returncode != 0:
        raise ClusterError(f"'{' '.join(argv)}' failed with exit code {done.returncode}:\n{done.stderr.strip()}")


def _spawn(argv: list[str], log: Path) -> subprocess.Popen:
    """A background process in its own session (it outlives this script), output to `log`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
    with open(log, "ab") as handle:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reaps our own children that have exited
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _save(directory: Path, state: dict) -> None:
    temp = directory / f".{_STATE}.tmp"
    temp.write_text(json.dumps(state, indent=1), encoding="utf-8")
    os.replace(temp, directory / _STATE)


def _log(message: str) -> None:
    print(f"local_cluster: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m action_graph.remote.local_cluster", description=__doc__.split("\n")[0]
    )
    actions = parser.add_subparsers(dest="action", required=True)
    start_parser = actions.add_parser("start", help="start PostgreSQL, BuildGrid and workers; print the address")
    start_parser.add_argument("--dir", required=True, type=Path, help="state, logs and worker caches go here")
    start_parser.add_argument("--workers", type=int, default=2)
    start_parser.add_argument("--slots", type=int, default=2, help="actions each worker runs at once")
    start_parser.add_argument("--instance_name", default="")
    start_parser.add_argument("--keepalive", type=int, default=10, help="seconds until a silent worker is dead")
    stop_parser = actions.add_parser("stop", help="stop everything started from --dir")
    stop_parser.add_argument("--dir", required=True, type=Path)
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            print(start(args.dir.resolve(), args.workers, args.slots, args.instance_name, args.keepalive), flush=True)
        else:
            stop(args.dir.resolve())
    except ClusterError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
