"""Remote execution and caching against a real REAPI server: BuildGrid with two pybuild workers.

One cluster (PostgreSQL + BuildGrid + 2 workers, all on 127.0.0.1) serves the whole module; it is
started and stopped by `python -m action_graph.remote.local_cluster`, the command the README documents.
Tests skip only when PostgreSQL is missing and cannot be installed. The examples are built in
hollow-rlib mode without crates_demo (third-party crates would triple the time).
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rust_workspaces import Result, copy_examples, ok, pybuild

REPO_ROOT = Path(__file__).resolve().parent.parent
HOLLOW = "--incompatible_use_unstable_no_codegen_for_pipelining"
TARGETS = ("//app", "//lib/...", "//diamond/...", "//macros/...", "//tests/...")
_BUILD_LINE = re.compile(r"^Build (OK|FAILED): (?:(\d+) failed, )?(\d+) executed, (\d+) cached, (\d+) total actions")
_MISSING_POSTGRES = 3  # local_cluster's exit code


@dataclass(frozen=True)
class Cluster:
    address: str
    directory: Path

    def worker_log(self, index: int) -> str:
        return (self.directory / "logs" / f"worker-{index}.log").read_text(encoding="utf-8", errors="replace")

    def worker_pid(self, index: int) -> int:
        import json

        return json.loads((self.directory / "cluster.json").read_text(encoding="utf-8"))["workers"][index]

    def leases_run(self) -> int:
        return sum(self.worker_log(i).count(": started") for i in range(2))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}


def _cluster_command(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "action_graph.remote.local_cluster", *args]
    return subprocess.run(argv, env=_env(), capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("cluster")
    started = _cluster_command("start", "--dir", str(directory), "--workers", "2", "--slots", "2", timeout=600)
    if started.returncode == _MISSING_POSTGRES:
        pytest.skip(f"PostgreSQL is unavailable: {started.stderr.strip()}")
    assert started.returncode == 0, f"local_cluster start failed:\n{started.stderr}"
    address = started.stdout.strip().splitlines()[-1]
    assert address.startswith("grpc://127.0.0.1:"), address
    try:
        yield Cluster(address, directory)
    finally:
        stopped = _cluster_command("stop", "--dir", str(directory), timeout=120)
        assert stopped.returncode == 0, stopped.stderr


# Helpers ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    executed: int
    cached: int
    total: int


def counts(run: Result) -> Counts:
    matches = [m for m in map(_BUILD_LINE.match, run.err.splitlines()) if m]
    assert matches, f"no 'Build ...' line:\n{run.describe()}"
    _, _, executed, cached, total = matches[-1].groups()
    return Counts(int(executed), int(cached), int(total))


def output_digests(root: Path) -> dict[str, str]:
    """SHA-256 of every file under pybuild-out/<config>/bin, by path."""
    bins = list((root / "pybuild-out").glob("*/bin"))
    assert len(bins) == 1, bins
    return {
        str(path.relative_to(bins[0])): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(bins[0].rglob("*"))
        if path.is_file() and ".runfiles" not in path.parts
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def remote(cluster: Cluster, *extra: str) -> tuple[str, ...]:
    return (f"--remote_executor={cluster.address}", "-j4", HOLLOW, *extra)


# 1. The examples build on the workers and behave as a local build ---------------------------------------


def test_examples_build_remotely_and_match_a_local_build(tmp_path: Path, cluster: Cluster) -> None:
    remote_root = copy_examples(tmp_path / "remote")
    built = ok(pybuild(remote_root, "build", *remote(cluster), *TARGETS))
    stats = counts(built)
    assert stats.total >= 20 and stats.executed + stats.cached == stats.total, built.err
    assert cluster.leases_run() > 0, "the workers ran nothing"

    local_root = copy_examples(tmp_path / "local")
    ok(pybuild(local_root, "build", HOLLOW, "-j2", *TARGETS))
    # Same bytes: nothing of the worker's directory (nor of this machine's) entered an output.
    assert output_digests(remote_root) == output_digests(local_root)

    remote_run = ok(pybuild(remote_root, "run", *remote(cluster), "//app", "--", "--count", "4"))
    local_run = ok(pybuild(local_root, "run", HOLLOW, "//app", "--", "--count", "4"))
    assert remote_run.out == local_run.out
    assert "chain: chain_a -> chain_b -> chain_c" in remote_run.out
    assert counts(remote_run).executed == 0


def test_failed_remote_action_shows_its_diagnostics(tmp_path: Path, cluster: Cluster) -> None:
    root = copy_examples(tmp_path / "broken")
    with open(root / "diamond" / "base.rs", "a", encoding="utf-8") as source:
        source.write('\npub fn broken() -> u32 { "not a number" }\n')
    failed = pybuild(root, "build", *remote(cluster), "//diamond:base")
    assert failed.code == 1, failed.describe()
    assert "error[E0308]: mismatched types" in failed.err
    assert "--> diamond/base.rs:" in failed.err  # a path relative to the input root, as locally
    assert "ERROR: //diamond:base: Rustc failed: exit code 1" in failed.err


# 2. After clean, everything comes from the remote action cache ------------------------------------------


def test_remote_build_after_clean_is_all_cache_hits(tmp_path: Path, cluster: Cluster) -> None:
    root = copy_examples(tmp_path / "examples")
    ok(pybuild(root, "build", *remote(cluster), *TARGETS))
    ok(pybuild(root, "clean"))
    leases_before = cluster.leases_run()
    again = counts(ok(pybuild(root, "build", *remote(cluster), *TARGETS)))
    assert again.executed == 0 and again.cached == again.total > 0
    assert cluster.leases_run() == leases_before
    assert "chain: chain_a -> chain_b -> chain_c" in ok(pybuild(root, "run", *remote(cluster), "//app")).out


# 3. Workers that stop: SIGTERM finishes the lease, SIGKILL loses it to another worker ---------------------


def test_sigterm_lets_a_worker_finish_its_lease_and_leave(tmp_path: Path, cluster: Cluster) -> None:
    log_path = tmp_path / "extra-worker.log"
    argv = [sys.executable, "-m", "pybuild", "worker", "--server", cluster.address, "--slots", "4"]
    argv += ["--work_dir", str(cluster.directory / "worker")]  # the cluster's blob cache: no toolchain fetch
    with open(log_path, "wb") as log:  # 4 free slots: BuildGrid prefers it over the cluster's workers
        worker = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
    build = None
    try:
        _wait_for(lambda: " session " in log_path.read_text(encoding="utf-8"), worker, "the worker to register")
        root = copy_examples(tmp_path / "examples")
        command = [sys.executable, "-m", "pybuild", "build", *remote(cluster, "--noremote_accept_cached"), *TARGETS]
        build = subprocess.Popen(
            command, cwd=root, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        _wait_for(lambda: _running_a_lease(log_path.read_text(encoding="utf-8")), build, "the worker to start a lease")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
        out, err = build.communicate(timeout=180)
        stats = counts(ok(Result(build.returncode, out, err)))
        assert stats.executed == stats.total
    finally:
        for process in (worker, build):
            if process is not None and process.poll() is None:
                process.kill()
    text = log_path.read_text(encoding="utf-8")
    assert "SIGTERM, finishing running actions" in text and text.rstrip().endswith("stopped")
    assert not _running_a_lease(text), text  # every lease it took was finished (or handed back)


def _wait_for(condition, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert process.poll() is None, f"gave up waiting for {what}: the process ended"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def test_build_survives_a_worker_killed_mid_action(tmp_path: Path, cluster: Cluster) -> None:
    root = copy_examples(tmp_path / "examples")
    # --noremote_accept_cached: every action runs on a worker again, so there is work to interrupt.
    argv = [sys.executable, "-m", "pybuild", "build", *remote(cluster, "--noremote_accept_cached"), *TARGETS]
    build = subprocess.Popen(argv, cwd=root, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        busy: list[int] = []
        while not busy:
            assert build.poll() is None, "the build ended before a worker ran anything"
            assert time.monotonic() < deadline, "no worker ever started a lease"
            busy = [i for i in range(2) if _running_a_lease(cluster.worker_log(i))]
            time.sleep(0.05)
        os.kill(cluster.worker_pid(busy[0]), signal.SIGKILL)
        out, err = build.communicate(timeout=180)
    finally:
        if build.poll() is None:
            build.kill()
    run = ok(Result(build.returncode, out, err))
    stats = counts(run)
    assert stats.executed == stats.total, run.err
    assert "chain: chain_a -> chain_b -> chain_c" in ok(pybuild(root, "run", *remote(cluster), "//app")).out


def _running_a_lease(log: str) -> bool:
    started = set(re.findall(r"lease (\S+): started", log))
    finished = set(re.findall(r"lease (\S+): (?!started)", log))
    return bool(started - finished)


# 4. A server that is down -------------------------------------------------------------------------------


def test_server_down_fails_clearly_within_the_timeout_or_falls_back(tmp_path: Path) -> None:
    root = copy_examples(tmp_path / "examples")
    address = f"grpc://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    down = pybuild(root, "build", f"--remote_executor={address}", "--remote_timeout=2", "//diamond/...")
    assert down.code == 34, down.describe()
    assert address in down.err and "Traceback" not in down.err
    assert time.monotonic() - started < 30  # analysis plus the 2 s timeout, nothing like a hang

    fallback = pybuild(
        root, "build", f"--remote_executor={address}", "--remote_timeout=2", "--remote_local_fallback", "//diamond/..."
    )
    stats = counts(ok(fallback))
    assert stats.executed == stats.total > 0
    assert "WARNING" in fallback.err and address in fallback.err


def test_malformed_address_is_a_usage_error(tmp_path: Path) -> None:
    root = copy_examples(tmp_path / "examples")
    bad = pybuild(root, "build", "--remote_executor=grpcs://127.0.0.1:1", "//diamond:base")
    assert bad.code == 2 and "TLS is not supported" in bad.err, bad.describe()


# 5. --remote_cache: local runs, uploaded; after clean all hits ------------------------------------------


def test_remote_cache_mode_runs_locally_then_serves_hits(tmp_path: Path, cluster: Cluster) -> None:
    root = copy_examples(tmp_path / "examples")
    flags = (f"--remote_cache={cluster.address}", "-j2")  # the rmeta mode: actions test 1 did not cache
    leases_before = cluster.leases_run()
    first = counts(ok(pybuild(root, "build", *flags, *TARGETS)))
    assert first.executed + first.cached == first.total
    assert cluster.leases_run() == leases_before, "--remote_cache must not execute remotely"
    ok(pybuild(root, "clean"))
    again = counts(ok(pybuild(root, "build", *flags, *TARGETS)))
    assert again.executed == 0 and again.cached == again.total
    assert cluster.leases_run() == leases_before

    ok(pybuild(root, "clean"))
    no_upload = copy_examples(tmp_path / "no_upload")
    (no_upload / "diamond" / "base.rs").write_text(
        (no_upload / "diamond" / "base.rs").read_text(encoding="utf-8") + "\n// a change: new action keys\n",
        encoding="utf-8",
    )
    ok(pybuild(no_upload, "build", *flags, "--noremote_upload_local_results", "//diamond:base"))
    ok(pybuild(no_upload, "clean"))
    assert counts(ok(pybuild(no_upload, "build", *flags, "//diamond:base"))).executed > 0


# Reads the jobserver the worker hands its process and takes and gives back a token through it.
_JOBSERVER_PROBE = """
import os, re
fds = re.search(r"--jobserver-auth=(\\d+),(\\d+)", os.environ["CARGO_MAKEFLAGS"])
read, write = int(fds[1]), int(fds[2])
os.write(write, os.read(read, 1))
open("out/probe.txt", "w").write("token")
"""


def test_a_worker_hands_its_processes_a_jobserver(tmp_path: Path, cluster: Cluster) -> None:
    """Its slots share `--slots` tokens with the processes' threads; a token went through the probe."""
    from action_graph.action import Action
    from action_graph.digests import FileDigests
    from action_graph.remote.client import RemoteClient, RemoteOptions
    from action_graph.remote.worker import default_platform

    root = tmp_path / "ws"
    root.mkdir()
    (root / "probe.py").write_text(_JOBSERVER_PROBE, encoding="utf-8")
    options = RemoteOptions(executor=cluster.address, cache=None, platform=default_platform(), accept_cached=False)
    client = RemoteClient(options, root, FileDigests(str(root)))
    client.connect()
    try:
        action = Action("Probe", "//:probe", (sys.executable, "-S", "probe.py"), ("out/probe.txt",), ("probe.py",))
        result, _ = client.execute(client.prepare(action))
        assert result.exit_code == 0, client.logs(result)
        client.download_outputs(action, result)
    finally:
        client.close()
    assert (root / "out" / "probe.txt").read_text(encoding="utf-8") == "token"


# The client without a server: what it sends, and a dropped Execute stream -------------------------------


def _client(root: Path):
    from action_graph.digests import FileDigests
    from action_graph.remote.client import RemoteClient, RemoteOptions

    platform = (("TargetTriple", "x86_64-unknown-linux-gnu"), ("OSFamily", "Linux"))
    options = RemoteOptions(executor="grpc://127.0.0.1:1", cache=None, platform=platform)
    return RemoteClient(options, root, FileDigests(str(root)))


def _small_action(tmp_path: Path):
    from action_graph.action import Action

    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "lib.rs").write_text("pub fn f() {}\n", encoding="utf-8")
    toolchain = tmp_path / "real_toolchain" / "bin"  # outside the workspace, reached through a symlink
    toolchain.mkdir(parents=True)
    (toolchain / "rustc").write_text("#!/bin/sh\n", encoding="utf-8")
    (toolchain / "rustc").chmod(0o755)
    (root / "ext").symlink_to(toolchain.parent)
    action = Action(
        mnemonic="Rustc",
        owner="//src:lib",
        argv=("ext/bin/rustc", "src/lib.rs"),
        outputs=("out/libz.rlib", "out/liba.rlib"),
        inputs=("src/lib.rs", "ext/bin/rustc"),
        env=(("ZED", "1"), ("ALPHA", "2")),
    )
    return root, action


def test_command_and_input_root_hold_only_relative_sorted_data(tmp_path: Path) -> None:
    from dataclasses import replace

    from action_graph.remote.connection import RemoteError
    from action_graph.remote.protos import re_pb2

    root, action = _small_action(tmp_path)
    prepared = _client(root).prepare(action)
    blobs = {b.digest.hash: b for b in prepared.blobs}
    message = re_pb2.Action.FromString(prepared.blobs[0].data)
    command = re_pb2.Command.FromString(blobs[message.command_digest.hash].data)
    assert list(command.arguments) == ["ext/bin/rustc", "src/lib.rs"]
    assert [(v.name, v.value) for v in command.environment_variables] == [("ALPHA", "2"), ("ZED", "1")]
    assert list(command.output_paths) == ["out/liba.rlib", "out/libz.rlib"]
    assert [(p.name, p.value) for p in command.platform.properties] == [
        ("OSFamily", "Linux"),
        ("TargetTriple", "x86_64-unknown-linux-gnu"),
    ]
    assert message.platform == command.platform
    top = re_pb2.Directory.FromString(blobs[message.input_root_digest.hash].data)
    assert [d.name for d in top.directories] == ["ext", "src"] and not top.files
    ext = re_pb2.Directory.FromString(blobs[top.directories[0].digest.hash].data)
    bin_dir = re_pb2.Directory.FromString(blobs[ext.directories[0].digest.hash].data)
    assert [(f.name, f.is_executable) for f in bin_dir.files] == [("rustc", True)]  # the symlink's target
    assert str(tmp_path) not in b"".join(b.data or b"" for b in prepared.blobs).decode("utf-8", "replace")
    assert _client(root).prepare(action).digest == prepared.digest  # deterministic across clients

    leaky = replace(action, argv=("ext/bin/rustc", str(root / "src" / "lib.rs")))
    with pytest.raises(RemoteError, match="local path"):
        _client(root).prepare(leaky)


def test_dropped_execute_stream_is_resumed_with_wait_execution(tmp_path: Path) -> None:
    import grpc

    from action_graph.remote.protos import operations_pb2, re_pb2

    root, action = _small_action(tmp_path)
    client = _client(root)
    prepared = client.prepare(action)
    finished = operations_pb2.Operation(name="operations/7", done=True)
    finished.response.Pack(re_pb2.ExecuteResponse(result=re_pb2.ActionResult(exit_code=3)))
    waited: list[str] = []

    class Dropped(grpc.RpcError, grpc.Call):
        def code(self):
            return grpc.StatusCode.UNAVAILABLE

        def details(self):
            return "connection reset"

        def initial_metadata(self):
            return ()

        def trailing_metadata(self):
            return ()

        def is_active(self):
            return False

        def time_remaining(self):
            return None

        def cancel(self):
            return False

        def add_callback(self, callback):
            return False

    class Execution:
        def Execute(self, request):
            yield operations_pb2.Operation(name="operations/7")
            raise Dropped()

        def WaitExecution(self, request):
            waited.append(request.name)
            return iter([finished])

    client._execution = Execution()
    response = client._execute_once(prepared)
    assert response.result.exit_code == 3
    assert waited == ["operations/7"]
