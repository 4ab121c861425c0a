"""The sandbox builder with real bubblewrap: a probe run as one user tries to reach what it must not,
and the limits stop it; what it may do works."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from nbp_common.sandbox import (
    Limits,
    Sandbox,
    SandboxKind,
    env_allowed,
    prepare,
    sandbox_env,
    spawn,
    sweep_cgroups,
)

pytestmark = pytest.mark.timeout(120)

CANARY = "canary-4f1c9b-sandbox-test"

PROBE = r"""
import glob, json, os, sys
found = {}
def attempt(name, action):
    try:
        found[name] = repr(action())[:200]
    except Exception as exc:
        found[name] = "refused: " + type(exc).__name__
args = json.loads(sys.argv[1])
attempt("other_relative", lambda: open("../bob/private.txt").read())
attempt("other_absolute", lambda: open(args["bob"] + "/private.txt").read())
attempt("other_home", lambda: os.listdir("/home/bob"))
attempt("other_symlink", lambda: open("link-to-bob/private.txt").read())
attempt("write_other", lambda: open(args["bob"] + "/owned.txt", "w").write("x"))
attempt("workspace_root", lambda: os.listdir(args["workspace"]))
attempt("checkout", lambda: open(args["checkout"] + "/pyproject.toml").read())
attempt("checkout_services", lambda: os.listdir(args["checkout"] + "/services/executor"))
attempt("checkout_cache", lambda: os.listdir(args["checkout"] + "/.cache"))
attempt("checkout_nbp", lambda: os.listdir(args["checkout"] + "/.nbp"))
found["checkout_listing"] = sorted(os.listdir(args["checkout"]))
attempt("shadow", lambda: open("/etc/shadow").read())
attempt("host_var_lib", lambda: os.listdir("/var/lib"))
leaks = []
for path in glob.glob("/proc/*/environ") + glob.glob("/proc/*/cmdline"):
    try:
        if args["canary"][::-1].encode() in open(path, "rb").read():
            leaks.append(path)
    except OSError:
        pass
found["canary_in_proc"] = leaks
attempt("signal_parent", lambda: os.kill(args["parent"], 0))
found["own_write"] = open("mine.txt", "w").write("mine")
found["own_read"] = open("mine.txt").read()
found["home"] = os.environ["HOME"]
found["cwd"] = os.getcwd()
found["env"] = sorted(os.environ)
print(json.dumps(found))
"""


def run(sandbox: Sandbox, argv: list[str]) -> subprocess.CompletedProcess[str]:
    async def go() -> tuple[int, str, str]:
        prepared = prepare(sandbox, argv)
        process = await spawn(prepared, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await process.communicate()
        prepared.close()
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    code, out, err = asyncio.run(go())
    return subprocess.CompletedProcess(argv, code, out, err)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    (root / "alice").mkdir(parents=True)
    (root / "bob").mkdir()
    (root / "bob" / "private.txt").write_text("bob's secret")
    (root / "alice" / "link-to-bob").symlink_to(root / "bob")
    return root


def test_a_probe_reaches_its_own_folder_and_nothing_else(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NBP_SERVICE_CLIENT_SECRET", CANARY)
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    args = {
        "bob": str(workspace / "bob"),
        "workspace": str(workspace),
        "checkout": str(Path(__file__).resolve().parents[3]),
        "canary": CANARY[::-1],  # reversed: the probe's own command line must not hold it
        "parent": os.getpid(),
    }
    sandbox = Sandbox(
        "alice",
        workspace / "alice",
        env={"NBP_SERVICE_CLIENT_SECRET": CANARY, "DB_PASSWORD": CANARY, "LANG": "C.UTF-8"},
        read_only={"/run/probe.py": script},
    )
    done = run(sandbox, [sys.executable, "/run/probe.py", json.dumps(args)])
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    for escape in (
        "other_relative",
        "other_absolute",
        "other_home",
        "other_symlink",
        "write_other",
        "workspace_root",
        "checkout",
        "checkout_services",
        "checkout_cache",
        "checkout_nbp",
        "shadow",
        "host_var_lib",
        "signal_parent",
    ):
        assert found[escape].startswith("refused"), (escape, found[escape])
    assert found["canary_in_proc"] == []
    assert found["checkout_listing"] == [".venv"]  # the runtime, read-only: nothing else of it
    assert not (workspace / "bob" / "owned.txt").exists()
    assert found["own_read"] == "mine"
    assert (workspace / "alice" / "mine.txt").read_text() == "mine"
    assert found["home"] == "/home/alice"
    assert found["cwd"] == "/home/alice"
    assert not [name for name in found["env"] if name.startswith("NBP_") or "PASSWORD" in name]
    assert CANARY not in done.stdout


@pytest.mark.parametrize("kind", list(SandboxKind))
def test_the_environment_is_an_allow_list(kind: SandboxKind) -> None:
    assert not env_allowed("NBP_DB_PASSWORD", kind)
    assert not env_allowed("NBP_WORKSPACE", kind)
    assert not env_allowed("AWS_SECRET_ACCESS_KEY", kind)
    assert not env_allowed("PATH", kind)  # set by the sandbox itself, never passed through
    assert env_allowed("JPY_PARENT_PID", kind)
    assert env_allowed("LANG", kind)
    # The API's address is the one platform variable let in: the nbp client inside finds the API by it.
    assert env_allowed("NBP_URL", kind)
    env = sandbox_env(
        Sandbox("alice", Path("/nonexistent"), env={"HOME": "/root", "NBP_X": "1", "NBP_URL": "http://api"})
    )
    assert env["HOME"] == "/home/alice"
    assert "NBP_X" not in env
    assert env["NBP_URL"] == "http://api"


HUB_ENV = {
    "JUPYTERHUB_API_TOKEN": CANARY,
    "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api",
    "JUPYTERHUB_USER": "alice",
    "JPY_SESSION_NAME": "report.ipynb",
}


def environment_inside(workspace: Path, kind: SandboxKind) -> dict[str, str]:
    """The environment a process sees in a sandbox of ``kind`` given HUB_ENV."""
    done = run(
        Sandbox("alice", workspace / "alice", kind=kind, env=HUB_ENV),
        [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
    )
    assert done.returncode == 0, done.stderr
    inside: dict[str, str] = json.loads(done.stdout)
    return inside


def test_a_run_gets_no_hub_variable_and_no_hub_token(workspace: Path) -> None:
    """An executor started with JupyterHub's variables (its own hub token) must not hand them to runs."""
    inside = environment_inside(workspace, SandboxKind.RUN)
    assert [name for name in inside if name.startswith("JUPYTERHUB_")] == []
    assert not [value for value in inside.values() if CANARY in value]
    assert inside["JPY_SESSION_NAME"] == "report.ipynb"  # Jupyter's own variables still pass


def test_a_users_server_gets_its_hub_variables_and_its_own_token(workspace: Path) -> None:
    inside = environment_inside(workspace, SandboxKind.SERVER)
    assert {name: inside.get(name) for name in HUB_ENV} == HUB_ENV


def test_a_fork_bomb_stops_at_the_process_limit(workspace: Path) -> None:
    bomb = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except BlockingIOError:\n"
        "    print('stopped after', n)\n"
    )
    sandbox = Sandbox("alice", workspace / "alice", limits=Limits(processes=40))
    done = run(sandbox, [sys.executable, "-c", bomb])
    assert done.returncode == 0, done.stderr
    count = int(done.stdout.split()[-1])
    assert 20 < count < 40  # bounded by the limit (the interpreter and bubblewrap count too)


def test_memory_past_the_limit_fails_in_the_sandbox_only(workspace: Path) -> None:
    hog = "try:\n    b = bytearray(600 << 20)\nexcept MemoryError:\n    print('refused')\n"
    sandbox = Sandbox("alice", workspace / "alice", limits=Limits(memory_bytes=512 << 20))
    done = run(sandbox, [sys.executable, "-c", hog])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "refused"


def test_cpu_time_past_the_limit_kills_the_process(workspace: Path) -> None:
    sandbox = Sandbox("alice", workspace / "alice", limits=Limits(cpu_seconds=1))
    done = run(sandbox, [sys.executable, "-c", "while True: pass"])
    assert done.returncode != 0


KILLED_CREATOR = r"""
import subprocess, sys, time
from pathlib import Path
from nbp_common.sandbox import Limits, Sandbox, prepare
prepared = prepare(Sandbox("alice", Path(sys.argv[1]), limits=Limits(processes=40)), ["sleep", "600"])
process = subprocess.Popen(prepared.argv, pass_fds=prepared.pass_fds, preexec_fn=prepared.preexec_fn)
prepared.started()
print(prepared.cgroup, flush=True)
time.sleep(600)
"""


def _root_made_cgroup(prepared_cgroup: Path | None) -> Path:
    assert os.geteuid() == 0, "run the tests as root (as CI does): only a root executor gets a pids cgroup"
    assert prepared_cgroup is not None, "a root executor's sandbox has a pids cgroup"
    return prepared_cgroup


def _gone_after_a_sweep(group: Path) -> bool:
    for _ in range(100):  # a killed sandbox's processes take a moment to leave the group
        sweep_cgroups(group.parent)
        if not group.exists():
            return True
        time.sleep(0.05)
    return False


def test_a_killed_executors_cgroup_is_swept_by_the_next_sandbox(workspace: Path) -> None:
    creator = subprocess.Popen(
        [sys.executable, "-c", KILLED_CREATOR, str(workspace / "alice")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert creator.stdout is not None
        group = _root_made_cgroup(Path(creator.stdout.readline().strip()))
        assert (group / "cgroup.procs").read_text().split()  # the sandbox is in it
    finally:
        creator.kill()  # SIGKILL: nothing of it runs again (bubblewrap dies with it)
        creator.wait()
    assert group.exists()  # left over
    assert _gone_after_a_sweep(group)  # what every new sandbox does before making its own
    prepared = prepare(Sandbox("alice", workspace / "alice", limits=Limits(processes=40)), ["true"])
    prepared.close()


def test_a_sandbox_killed_with_sigkill_leaves_no_cgroup(workspace: Path) -> None:
    async def go() -> Path:
        sandbox = Sandbox("alice", workspace / "alice", limits=Limits(processes=40))
        prepared = prepare(sandbox, ["sleep", "600"])
        group = _root_made_cgroup(prepared.cgroup)
        process = await spawn(prepared)
        process.kill()
        await process.wait()
        prepared.close()
        return group

    group = asyncio.run(go())
    assert _gone_after_a_sweep(group)
