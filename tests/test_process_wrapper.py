"""The process wrapper, run as actions run it: by its shebang, with the fixed PATH the rules give actions."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from action_graph.action import Action
from action_graph.runner import ActionFailed, LocalRunner
from pybuild.launchers import in_process_launchers
from toolchains import local_rust

WRAPPER = Path(__file__).resolve().parent.parent / "rules/util/process_wrapper/process_wrapper.py"
ACTION_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin"}


def _wrap(cwd: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WRAPPER), *argv], cwd=cwd, env={**ACTION_ENV, **(env or {})}, capture_output=True, text=True, timeout=60
    )


def test_without_switches_the_wrapper_becomes_the_command_with_pwd_replaced(tmp_path: Path) -> None:
    (tmp_path / "args").write_text("--from-file=${pwd}/x\n", encoding="utf-8")
    (tmp_path / "env").write_text("FROM_FILE=${pwd}/y\n", encoding="utf-8")
    script = 'echo "$@"; echo "$OWN $FROM_FILE"; echo "$$"'
    process = subprocess.Popen(
        [str(WRAPPER), "--arg-file", "args", "--env-file", "env", "--", "/bin/sh", "-c", script, "sh", "${pwd}/a"],
        cwd=tmp_path,
        env={**ACTION_ENV, "OWN": "${pwd}/z"},
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    # The shell's own pid is the one started: the wrapper replaced itself instead of waiting as a parent.
    assert out.split("\n") == [
        f"{tmp_path}/a --from-file={tmp_path}/x",
        f"{tmp_path}/z {tmp_path}/y",
        str(process.pid),
        "",
    ]


def test_rendered_diagnostics_are_printed_and_the_exit_code_passed_on(tmp_path: Path) -> None:
    messages = [{"rendered": "warning: unused\n"}, {"artifact": "lib.rmeta", "emit": "metadata"}, "not json"]
    lines = "".join(f"{json.dumps(m) if isinstance(m, dict) else m}\n" for m in messages)
    (tmp_path / "messages").write_text(lines, encoding="utf-8")
    result = _wrap(tmp_path, "--render-json-diagnostics", "--", "/bin/sh", "-c", "cat messages >&2; exit 3")
    assert result.returncode == 3
    assert result.stderr == "warning: unused\nnot json\n"


def test_quit_on_rmeta_stops_the_command_once_the_metadata_is_announced(tmp_path: Path) -> None:
    artifact = '{"$message_type":"artifact","artifact":"lib.rmeta","emit":"metadata"}'  # rustc's own spelling
    script = f"echo '{artifact}' >&2; sleep 30; exit 1"
    result = _wrap(tmp_path, "--rustc-quit-on-rmeta", "--render-json-diagnostics", "--", "/bin/sh", "-c", script)
    assert result.returncode == 0


def test_a_bad_flag_is_a_usage_error(tmp_path: Path) -> None:
    result = _wrap(tmp_path, "--frobnicate", "--", "/bin/true")
    assert result.returncode == 1
    assert "bad flag --frobnicate" in result.stderr


def test_a_command_that_cannot_start_is_named(tmp_path: Path) -> None:
    result = _wrap(tmp_path, "--render-json-diagnostics", "--", "${pwd}/no-such-rustc")
    assert result.returncode == 1
    assert f"cannot run {tmp_path}/no-such-rustc" in result.stderr


def _rustc_json(tmp_path: Path, source: str, *switches: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "lib.rs").write_text(source, encoding="utf-8")
    rustc = ["--", str(local_rust.find_rustc()), "lib.rs", "--crate-type=rlib", "--crate-name=w", "--out-dir=out"]
    return _wrap(tmp_path, *switches, *rustc, "--error-format=json", "--json=artifacts", "--emit=metadata,link")


def test_real_rustc_warnings_are_rendered_and_the_run_stops_at_the_rmeta(tmp_path: Path) -> None:
    result = _rustc_json(tmp_path, "pub fn f() -> u32 { let unused = 1; 2 }\n", "--rustc-quit-on-rmeta")
    assert result.returncode == 0, result.stderr
    assert "warning: unused variable: `unused`" in result.stderr
    assert '"$message_type"' not in result.stderr  # no JSON reaches a person
    assert (tmp_path / "out/libw.rmeta").is_file()


def test_real_rustc_errors_are_rendered_and_fail_the_action(tmp_path: Path) -> None:
    result = _rustc_json(tmp_path, 'pub fn f() -> u32 { "text" }\n', "--render-json-diagnostics")
    assert result.returncode == 1
    assert "error[E0308]: mismatched types" in result.stderr
    assert '"$message_type"' not in result.stderr


# In-process: what pybuild's local runner does instead of starting the wrapper.

IN_PROCESS = in_process_launchers()[os.path.realpath(WRAPPER)]


def test_in_process_the_wrapper_gives_the_command_it_would_replace_itself_with(tmp_path: Path) -> None:
    (tmp_path / "args").write_text("--from-file=${pwd}/x\n", encoding="utf-8")
    (tmp_path / "env").write_text("FROM_FILE=${pwd}/y\n", encoding="utf-8")
    argv = ["--arg-file", "args", "--env-file", "env", "--", "rustc", "${pwd}/a"]
    # The files are read where the action runs, not where pybuild runs.
    command, env, render = IN_PROCESS(argv, str(tmp_path), {"OWN": "${pwd}/z", "PATH": "/bin"})
    assert command == ["rustc", f"{tmp_path}/a", f"--from-file={tmp_path}/x"]
    assert env == {"OWN": f"{tmp_path}/z", "PATH": "/bin", "FROM_FILE": f"{tmp_path}/y"}
    assert render is None


def test_in_process_rendering_prints_what_the_wrapper_prints(tmp_path: Path) -> None:
    artifact = '{"$message_type":"artifact","artifact":"lib.rmeta","emit":"metadata"}'
    messages = [json.dumps({"rendered": "warning: unused\n"}), artifact, "null", "not json\r still one line"]
    (tmp_path / "messages").write_text("".join(f"{line}\n" for line in messages) + "last", encoding="utf-8")
    argv = [str(WRAPPER), "--render-json-diagnostics", "--", "/bin/sh", "-c", "cat messages >&2"]
    wrapped = subprocess.run(argv, cwd=tmp_path, env=ACTION_ENV, capture_output=True, timeout=60, check=True)
    _, _, render = IN_PROCESS(["--render-json-diagnostics", "--", "rustc"], "/w", {})
    output = (tmp_path / "messages").read_bytes().decode()  # read_text would turn the lone \r into \n
    assert render(output) == wrapped.stderr.decode() == "warning: unused\nnot json\r still one line\nlast"


def test_quitting_on_rmeta_needs_the_wrapper_itself() -> None:
    assert IN_PROCESS(["--rustc-quit-on-rmeta", "--render-json-diagnostics", "--", "rustc"], "/w", {}) is None


def _wrapped_action(tool: Path, *wrapper_argv: str) -> Action:
    return Action(
        mnemonic="Rustc",
        owner="//t:t",
        argv=(str(tool), *wrapper_argv),
        outputs=("out/seen.txt",),
        inputs=(),
        env=(("PATH", "/usr/bin:/bin"), ("WHERE", "${pwd}")),
    )


def test_the_local_runner_starts_the_wrapped_command_without_starting_the_wrapper(tmp_path: Path) -> None:
    # A copy that cannot be executed: the action succeeds only if the wrapper is never started.
    tool = tmp_path / "process_wrapper.py"
    shutil.copy(WRAPPER, tool)
    tool.chmod(0o644)
    runner = LocalRunner(tmp_path, tmp_path / "sandbox", sandboxed=True, launchers={str(tool): IN_PROCESS})
    action = _wrapped_action(tool, "--", "/bin/sh", "-c", 'echo "${pwd} $WHERE" > out/seen.txt')
    result = runner.run(action, 1)
    assert result.exit_code == 0, result.output
    sandbox = os.path.realpath(tmp_path / "sandbox" / "1")
    assert (tmp_path / "out/seen.txt").read_text(encoding="utf-8") == f"{sandbox} {sandbox}\n"
    # Without the launcher the same action starts the copy, which is not executable.
    with pytest.raises(ActionFailed, match="cannot start"):
        LocalRunner(tmp_path, tmp_path / "sandbox", sandboxed=True).run(action, 1)


def test_the_local_runner_renders_the_diagnostics_of_the_command_it_started(tmp_path: Path) -> None:
    script = 'printf "%s\\n" \'{"rendered":"warning: unused\\n"}\' >&2; echo "$1" > out/seen.txt'
    action = _wrapped_action(WRAPPER, "--render-json-diagnostics", "--", "/bin/sh", "-c", script, "sh", "${pwd}")
    runner = LocalRunner(tmp_path, tmp_path / "sandbox", sandboxed=True, launchers={str(WRAPPER): IN_PROCESS})
    result = runner.run(action, 1)
    assert (result.exit_code, result.output) == (0, "warning: unused\n")
    assert (tmp_path / "out/seen.txt").read_text(encoding="utf-8") == os.path.realpath(tmp_path / "sandbox/1") + "\n"


def test_bad_wrapper_flags_fail_the_action_in_process_too(tmp_path: Path) -> None:
    runner = LocalRunner(tmp_path, tmp_path / "sandbox", sandboxed=True, launchers={str(WRAPPER): IN_PROCESS})
    with pytest.raises(ActionFailed, match=r"//t:t.*bad flag --frobnicate"):
        runner.run(_wrapped_action(WRAPPER, "--frobnicate", "--", "/bin/true"), 1)
