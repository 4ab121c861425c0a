#!/usr/bin/env python3
"""A real Keycloak on this machine, for development and the tests.

    python3 scripts/keycloak.py start     fetch (Maven), unpack, import the realm, start, wait for it
    python3 scripts/keycloak.py stop      stop the Keycloak this checkout started
    python3 scripts/keycloak.py status    is it up? (exit 0 if the realm answers, 3 if not)
    python3 scripts/keycloak.py wait      wait until the realm's discovery document answers
    python3 scripts/keycloak.py env       the NBP_* settings that point a service at it (--export, --json)
    python3 scripts/keycloak.py reset     stop, and forget the database: the next start imports afresh
    python3 scripts/keycloak.py logs      the last lines of its log

What it runs: the official server distribution (Maven artifact ``org.keycloak:keycloak-quarkus-dist``, a
pinned version, checked against a pinned SHA-256), unpacked under ``.nbp/keycloak/`` and started in
development mode (``start-dev``, an H2 database in the same folder) on 127.0.0.1 only, on a Java 21+ it
finds (``JAVA_HOME``, ``PATH``, ``/usr/lib/jvm``) or installs with apt-get when it can.

The realm: ``keycloak-realm/realm.json`` (what the chart imports too) merged with the development
additions ``keycloak-realm/dev/*.json`` (dev users, test-only clients) into one file in Keycloak's import
folder; ``--import-realm`` imports it when the realm does not exist yet. The secrets the realm refers to as
``${NBP_...}`` placeholders are generated once per checkout into ``.nbp/keycloak/secrets.env`` (mode 600)
and given to Keycloak in its environment. When the merged realm or those values change, the next start
drops the local database so that the realm is imported again: the realm on disk is the source of truth.

Only the standard library: this runs before any virtualenv exists.
Environment: NBP_KEYCLOAK_PORT (8180), NBP_STATE_DIR (.nbp), NBP_KEYCLOAK_VERSION,
NBP_KEYCLOAK_START_TIMEOUT (seconds, 300),
NBP_KEYCLOAK_DEV_REALM (1; 0 imports realm.json without the development file), NBP_DOMAIN,
NBP_PUBLIC_SCHEME, KC_BOOTSTRAP_ADMIN_USERNAME / KC_BOOTSTRAP_ADMIN_PASSWORD, NBP_DEV_USER_PASSWORD.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REALM = "notebook-platform"
HOST = "127.0.0.1"

DEFAULT_VERSION = "26.7.3"
# SHA-256 of keycloak-quarkus-dist-<version>.tar.gz, so that a swapped download is refused.
KNOWN_SHA256 = {
    "26.7.3": "77657f30b7e90d70f727712ce1c967f430fd6a5e9f458d32d8c6df0635345f47",
}
MIN_JAVA = 21
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

VERSION = os.environ.get("NBP_KEYCLOAK_VERSION", DEFAULT_VERSION)
DEFAULT_PORT = 8180
PORT = int(os.environ.get("NBP_KEYCLOAK_PORT", str(DEFAULT_PORT)))
START_TIMEOUT = float(os.environ.get("NBP_KEYCLOAK_START_TIMEOUT", "300"))
WITH_DEV_REALM = os.environ.get("NBP_KEYCLOAK_DEV_REALM", "1") != "0"

CACHE = REPO / ".cache" / "keycloak"
# The checkout's state folder (.nbp/, moved by NBP_STATE_DIR as `make dev` moves it): this Keycloak's
# server, database, secrets and pid live in its keycloak/ (resolved: the pid check compares real paths).
RUN = (Path(os.environ.get("NBP_STATE_DIR") or REPO / ".nbp") / "keycloak").resolve()
HOME = RUN / f"keycloak-{VERSION}"
PID_FILE = RUN / "keycloak.pid"
LOG_FILE = RUN / "keycloak.log"
SECRETS_FILE = RUN / "secrets.env"
IMPORTED_FILE = RUN / "imported.sha256"
LOCK_FILE = RUN / "lock"
REALM_FILE = REPO / "keycloak-realm" / "realm.json"
DEV_DIR = REPO / "keycloak-realm" / "dev"

BASE_URL = f"http://{HOST}:{PORT}"
ISSUER = f"{BASE_URL}/realms/{REALM}"
DISCOVERY_URL = f"{ISSUER}/.well-known/openid-configuration"

# Values the realm's ${...} placeholders resolve to at import. Secrets are generated once per checkout.
GENERATED_SECRETS = (
    "NBP_JUPYTERHUB_CLIENT_SECRET",
    "NBP_SUPERSET_CLIENT_SECRET",
    "NBP_EXECUTOR_CLIENT_SECRET",
    "KC_BOOTSTRAP_ADMIN_PASSWORD",
)
DEV_DEFAULTS = {
    # *.localhost resolves to the loopback interface in browsers; nothing answers there unless you run it.
    "NBP_DOMAIN": "nbp.localhost",
    "NBP_PUBLIC_SCHEME": "http",
    "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
    # The development users' password (keycloak-realm/dev/): a development value, for this script only.
    "NBP_DEV_USER_PASSWORD": "nbp-dev-password",
}


class Failure(Exception):
    """A prerequisite is missing or Keycloak did not come up; the message says what to do."""


def say(message: str) -> None:
    print(f"keycloak: {message}", file=sys.stderr, flush=True)


# --- Java ------------------------------------------------------------------------------------------


def java_major(java: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(java), "-XshowSettings:properties", "-version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"java\.specification\.version = (\d+)(?:\.(\d+))?", out.stderr)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def java_candidates() -> Iterator[Path]:
    if os.environ.get("JAVA_HOME"):
        yield Path(os.environ["JAVA_HOME"]) / "bin" / "java"
    on_path = shutil.which("java")
    if on_path:
        yield Path(on_path).resolve()
    for root in (
        "/usr/lib/jvm",
        "/opt/java",
        "/usr/local/lib/jvm",
        str(Path.home() / ".sdkman/candidates/java"),
    ):
        # Newest first, so that a machine with 17 and 25 picks 25.
        found = sorted(
            Path(root).glob("*/bin/java"), key=lambda p: _natural(p.parent.parent.name), reverse=True
        )
        yield from found


def _natural(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def find_java() -> tuple[Path, int] | None:
    seen: set[Path] = set()
    for java in java_candidates():
        java = java.resolve() if java.exists() else java
        if java in seen or not java.is_file():
            continue
        seen.add(java)
        major = java_major(java)
        if major is not None and major >= MIN_JAVA:
            return java, major
    return None


JAVA_HELP = (
    f"Keycloak {VERSION} needs Java {MIN_JAVA} or newer and none was found (JAVA_HOME, PATH, /usr/lib/jvm). "
    "Install one and run again, or point JAVA_HOME at it: e.g. `apt-get install openjdk-21-jre-headless` "
    "(Debian 13, Ubuntu 24.04), Eclipse Temurin 21 or 25 from the Adoptium packages, "
    "or `sdk install java 21-tem` with SDKMAN."
)


def install_java() -> None:
    """Install a Java >= 21 with apt-get when this process may (root, or sudo without a password)."""
    if not shutil.which("apt-get"):
        raise Failure(JAVA_HELP)
    sudo: list[str] = []
    if os.geteuid() != 0:
        if not shutil.which("sudo") or subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode:
            raise Failure(JAVA_HELP)
        sudo = ["sudo", "-n"]
    say(f"no Java >= {MIN_JAVA} found; looking for one with apt-get")
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=False, stdout=subprocess.DEVNULL)
    for package in (
        "openjdk-25-jre-headless",
        "openjdk-21-jre-headless",
        "temurin-25-jre",
        "temurin-21-jre",
        "temurin-25-jdk",
        "temurin-21-jdk",
    ):
        policy = subprocess.run(["apt-cache", "policy", package], capture_output=True, text=True, check=False)
        candidate = re.search(r"Candidate:\s*(\S+)", policy.stdout)
        if candidate and candidate.group(1) != "(none)":
            say(f"installing {package} {candidate.group(1)}")
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            done = subprocess.run(
                [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", package], env=env
            )
            if done.returncode == 0:
                return
    raise Failure(JAVA_HELP + " (apt-get has no package for it here.)")


def ensure_java() -> tuple[Path, int]:
    found = find_java()
    if found is None:
        install_java()
        found = find_java()
    if found is None:
        raise Failure(JAVA_HELP)
    return found


# --- the distribution ----------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch() -> Path:
    """The distribution tarball in .cache/keycloak/, fetched through Maven (which keeps it in ~/.m2 too)."""
    name = f"keycloak-quarkus-dist-{VERSION}.tar.gz"
    tarball = CACHE / name
    if not tarball.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        local = Path.home() / ".m2/repository/org/keycloak/keycloak-quarkus-dist" / VERSION / name
        if local.exists():
            shutil.copyfile(local, tarball.with_suffix(".part"))
        else:
            if not shutil.which("mvn"):
                raise Failure(
                    "Maven (`mvn`) is needed to fetch Keycloak's server distribution "
                    f"(org.keycloak:keycloak-quarkus-dist:{VERSION}); install it, "
                    "e.g. `apt-get install maven`, "
                    f"or put {name} into {CACHE}/ yourself."
                )
            say(f"fetching org.keycloak:keycloak-quarkus-dist:{VERSION} with Maven (about 170 MB, once)")
            staging = Path(tempfile.mkdtemp(dir=CACHE))
            try:
                done = subprocess.run(
                    [
                        "mvn",
                        "-B",  # one line per download: the first start's progress
                        f"{MAVEN_DEPENDENCY_PLUGIN}:copy",
                        f"-Dartifact=org.keycloak:keycloak-quarkus-dist:{VERSION}:tar.gz",
                        f"-DoutputDirectory={staging}",
                    ],
                    cwd=staging,
                    check=False,
                )
                if done.returncode != 0 or not (staging / name).exists():
                    raise Failure(
                        f"Maven could not fetch org.keycloak:keycloak-quarkus-dist:{VERSION}:tar.gz "
                        "(see its output above); check the network and Maven's settings (~/.m2/settings.xml)."
                    )
                (staging / name).rename(tarball.with_suffix(".part"))
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        part = tarball.with_suffix(".part")
        expected = KNOWN_SHA256.get(VERSION)
        actual = sha256_of(part)
        if expected and actual != expected:
            part.unlink()
            raise Failure(f"{name} has SHA-256 {actual}, expected {expected}; refusing to run it.")
        if not expected:
            say(f"warning: no pinned SHA-256 for Keycloak {VERSION}; downloaded file has {actual}")
        part.rename(tarball)
    return tarball


def unpack(tarball: Path) -> None:
    if (HOME / "bin" / "kc.sh").exists():
        return
    RUN.mkdir(parents=True, exist_ok=True)
    say(f"unpacking {tarball.name} into {RUN}")
    staging = Path(tempfile.mkdtemp(dir=RUN))
    try:
        with tarfile.open(tarball) as archive:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: no links or paths out of the folder
                archive.extractall(staging, filter="data")
            else:
                archive.extractall(staging)  # a pinned, checksummed archive
        (staging / f"keycloak-{VERSION}").rename(HOME)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --- the realm to import ---------------------------------------------------------------------------


def merge(base: Any, extra: Any) -> Any:
    """Development additions onto the realm: lists are extended, objects merged, scalars replaced; a
    client (an object with a ``clientId``) the realm already has is merged into that client, so that a
    development file can add, say, a loopback redirect URI to the realm's own ``jupyterhub`` client."""
    if isinstance(base, dict) and isinstance(extra, dict):
        out = dict(base)
        for key, value in extra.items():
            if key.startswith("_"):  # "_comment" keys document the dev file; Keycloak would refuse them
                continue
            out[key] = merge(base[key], value) if key in base else value
        return out
    if isinstance(base, list) and isinstance(extra, list):
        by_id = {item["clientId"]: index for index, item in enumerate(base) if _client_id(item)}
        merged = list(base)
        for item in extra:
            if _client_id(item) in by_id:
                merged[by_id[item["clientId"]]] = merge(merged[by_id[item["clientId"]]], item)
            else:
                merged.append(item)
        return merged
    return extra


def _client_id(item: Any) -> str | None:
    return item.get("clientId") if isinstance(item, dict) else None


def realm_to_import() -> dict[str, Any]:
    realm: dict[str, Any] = json.loads(REALM_FILE.read_text())
    if WITH_DEV_REALM:
        for dev_file in sorted(DEV_DIR.glob("*.json")):
            realm = merge(realm, json.loads(dev_file.read_text()))
    return realm


def settings() -> dict[str, str]:
    """The values the realm's placeholders and Keycloak's bootstrap admin take (env wins, then the file)."""
    RUN.mkdir(parents=True, exist_ok=True)
    stored: dict[str, str] = {}
    if SECRETS_FILE.exists():
        for line in SECRETS_FILE.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                stored[key.strip()] = value.strip()
    missing = [key for key in GENERATED_SECRETS if key not in stored]
    if missing:
        for key in missing:
            stored[key] = secrets.token_urlsafe(32)
        fd = os.open(SECRETS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(
                "# Generated by scripts/keycloak.py for this checkout's local Keycloak; development only.\n"
            )
            out.writelines(f"{key}={stored[key]}\n" for key in GENERATED_SECRETS)
    values = {**DEV_DEFAULTS, **stored}
    for key in values:
        if os.environ.get(key):
            values[key] = os.environ[key]
    return values


def fingerprint_of(text: str, values: dict[str, str]) -> str:
    """What the database was imported from: the merged realm, the placeholder values, the version."""
    material = text + json.dumps(values, sort_keys=True) + VERSION + str(WITH_DEV_REALM)
    return hashlib.sha256(material.encode()).hexdigest()


def imported_fingerprint() -> str:
    return IMPORTED_FILE.read_text().strip() if IMPORTED_FILE.exists() else ""


def prepare_import(values: dict[str, str]) -> str:
    """Write the merged realm into the import folder; drop the database if it was imported differently."""
    text = json.dumps(realm_to_import(), indent=2, sort_keys=True)
    fingerprint = fingerprint_of(text, values)
    if imported_fingerprint() != fingerprint:
        shutil.rmtree(HOME / "data" / "h2", ignore_errors=True)
        IMPORTED_FILE.unlink(missing_ok=True)
    import_dir = HOME / "data" / "import"
    shutil.rmtree(import_dir, ignore_errors=True)
    import_dir.mkdir(parents=True)
    (import_dir / f"{REALM}-realm.json").write_text(text + "\n")
    return fingerprint


# --- the process -----------------------------------------------------------------------------------


def read_state() -> tuple[int, int] | None:
    """The pid and port of this checkout's Keycloak, if it runs."""
    try:
        pid_text, _, port_text = PID_FILE.read_text().strip().partition(" ")
        pid, port = int(pid_text), int(port_text or DEFAULT_PORT)
    except (OSError, ValueError):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    # Only a process running this checkout's Keycloak counts: a pid may have been reused since.
    return (pid, port) if str(HOME) in cmdline else None


def read_pid() -> int | None:
    state = read_state()
    return state[0] if state else None


def answers(timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(DISCOVERY_URL, timeout=timeout) as response:
            return bool(response.status == 200 and json.load(response).get("issuer") == ISSUER)
    except (OSError, ValueError, http.client.HTTPException):  # whatever else answers there is not it
        return False


def port_taken() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        return probe.connect_ex((HOST, PORT)) == 0


def log_tail(lines: int = 40) -> str:
    try:
        return "\n".join(LOG_FILE.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait(timeout: float = START_TIMEOUT, process: subprocess.Popen[bytes] | None = None) -> None:
    began = time.monotonic()
    deadline = began + timeout
    noted = began
    while time.monotonic() < deadline:
        if answers():
            return
        if time.monotonic() - noted >= 30:
            noted = time.monotonic()
            say(f"still starting ({noted - began:.0f} s; a first start imports the realm); log: {LOG_FILE}")
        # The process we just started (its command line is not Keycloak's until it has exec'd java),
        # or the one the pid file names.
        exited = (
            process.poll() is not None if process is not None else PID_FILE.exists() and read_pid() is None
        )
        if exited:
            raise Failure(f"Keycloak exited during start; the end of {LOG_FILE}:\n{log_tail()}")
        time.sleep(1)
    raise Failure(f"Keycloak did not answer {DISCOVERY_URL} within {timeout:.0f} s; see {LOG_FILE}")


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One start or stop at a time per checkout (two test sessions starting together share one Keycloak)."""
    RUN.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def start() -> None:
    with locked():
        state = read_state()
        if state is not None and state[1] != PORT:
            raise Failure(
                f"this checkout's Keycloak already runs on port {state[1]}; "
                f"use NBP_KEYCLOAK_PORT={state[1]}, or `python3 scripts/keycloak.py stop` it first"
            )
        if state is not None:
            wait()
            say(f"already running at {ISSUER}")
            current = fingerprint_of(json.dumps(realm_to_import(), indent=2, sort_keys=True), settings())
            if current != imported_fingerprint():
                say(
                    "warning: the realm files or their settings changed since this Keycloak imported them; "
                    "`python3 scripts/keycloak.py stop` then `start` imports them again"
                )
            return
        if port_taken():
            raise Failure(
                f"{HOST}:{PORT} is taken by another process (another checkout's Keycloak?); "
                "stop it, or choose another port with NBP_KEYCLOAK_PORT."
            )
        java, major = ensure_java()
        unpack(fetch())
        values = settings()
        fingerprint = prepare_import(values)
        env = {
            **os.environ,
            **values,
            "JAVA_HOME": str(java.parent.parent),
            "PATH": f"{java.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        command = [
            str(HOME / "bin" / "kc.sh"),
            "start-dev",
            f"--http-host={HOST}",
            f"--http-port={PORT}",
            "--import-realm",
        ]
        say(f"starting Keycloak {VERSION} on Java {major} ({java}); log: {LOG_FILE}")
        began = time.monotonic()
        with LOG_FILE.open("ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                cwd=HOME,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives this script; `stop` ends it by its pid
            )
        PID_FILE.write_text(f"{process.pid} {PORT}\n")
        try:
            wait(process=process)
        except Failure:
            end(process.pid)
            PID_FILE.unlink(missing_ok=True)
            raise
        IMPORTED_FILE.write_text(fingerprint + "\n")
        say(f"up at {ISSUER} after {time.monotonic() - began:.0f} s")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by this process) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return True


def end(pid: int) -> None:
    """Stop the Keycloak this script started as ``pid``: its own process group (kc.sh and its java)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)  # kc.sh forwards it to java, which shuts down cleanly
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.3)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # whatever is left of the group


def stop_process() -> bool:
    pid = read_pid()
    if pid is None:
        PID_FILE.unlink(missing_ok=True)
        return False
    end(pid)
    PID_FILE.unlink(missing_ok=True)
    return True


def stop() -> None:
    with locked():
        say("stopped" if stop_process() else "not running")


def reset() -> None:
    with locked():
        stop_process()
        shutil.rmtree(HOME / "data", ignore_errors=True)
        IMPORTED_FILE.unlink(missing_ok=True)
        say("database dropped; the next start imports the realm afresh")


def env_settings() -> dict[str, str]:
    values = settings()
    return {
        "NBP_AUTH": "keycloak",
        "NBP_OIDC_ISSUER": ISSUER,
        "NBP_OIDC_AUDIENCE": "nbp-api",
        "NBP_OIDC_TOKEN_URL": f"{ISSUER}/protocol/openid-connect/token",
        "NBP_SERVICE_CLIENT_ID": "nbp-executor",
        "NBP_SERVICE_CLIENT_SECRET": values["NBP_EXECUTOR_CLIENT_SECRET"],
        "NBP_KEYCLOAK_URL": BASE_URL,
        "NBP_KEYCLOAK_REALM": REALM,
        "NBP_KEYCLOAK_ADMIN_USERNAME": values["KC_BOOTSTRAP_ADMIN_USERNAME"],
        "NBP_KEYCLOAK_ADMIN_PASSWORD": values["KC_BOOTSTRAP_ADMIN_PASSWORD"],
        "NBP_DEV_USER_PASSWORD": values["NBP_DEV_USER_PASSWORD"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command", choices=["start", "stop", "status", "wait", "env", "reset", "logs", "fetch"]
    )
    parser.add_argument("--json", action="store_true", help="env: one JSON object")
    parser.add_argument("--export", action="store_true", help="env: `export` lines for a shell's eval")
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            start()
        elif args.command == "stop":
            stop()
        elif args.command == "reset":
            reset()
        elif args.command == "wait":
            wait()
        elif args.command == "fetch":
            ensure_java()
            unpack(fetch())
        elif args.command == "status":
            running = read_pid()
            up = answers()
            print(f"{'up' if up else 'down'}: {ISSUER} (pid {running or '-'})")
            return 0 if up else 3
        elif args.command == "logs":
            print(log_tail(200))
        elif args.command == "env":
            values = env_settings()
            if args.json:
                print(json.dumps(values, indent=2))
            else:
                prefix = "export " if args.export else ""
                for key, value in values.items():
                    print(f"{prefix}{key}={shlex.quote(value)}")
    except Failure as failure:
        say(f"error: {failure}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
