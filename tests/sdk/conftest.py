"""Session fixtures: the mock provider and a Switchyard gateway in front of it, as real
processes, plus the official `openai` and `anthropic` SDK clients pointed at the gateway.

The binaries come from `target/debug` (or `$CARGO_TARGET_DIR/debug`); `scripts/sdk-test`
builds them first.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import anthropic
import openai
import pytest

REPO = Path(__file__).resolve().parents[2]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
if not TARGET.is_absolute():
    TARGET = REPO / TARGET
GATEWAY_BIN = TARGET / "debug" / "switchyard"
MOCK_BIN = TARGET / "debug" / "switchyard-mock"

# Keep loopback traffic away from any proxy the environment names.
for _var in ("NO_PROXY", "no_proxy"):
    os.environ[_var] = ",".join(filter(None, [os.environ.get(_var), "127.0.0.1", "localhost"]))

# The body limit of the gateway under test; the 413 test sends more than this.
BODY_LIMIT = 65_536

# Upstream faults with a model per dialect: `gpt-fail-X` (OpenAI-format upstream) and
# `claude-fail-X` (Anthropic-format upstream).
FAULTS = ["400", "401", "429", "500", "503", "529", "reset", "cut", "malformed"]
# Mock options every fault model shares: `Retry-After: 7` on 429s, streams cut or broken
# after three content chunks.
FAULT_OPTIONS = "retry_after=7&cut_after=3&chunk_delay_ms=5"

# Gemini upstream faults, one `gemini-fail-X` model each. A Gemini model is part of the URL path
# (`models/{model}:generateContent`), so the mock options are spelled with `;` and `,` there
# instead of `?` and `&`: `echo;fail=429,retry_after=7,…`. `safety` is a candidate withheld
# (finish reason SAFETY), `blocked` a prompt refused (no candidates, `promptFeedback`).
GEMINI_FAULTS = ["429", "500", "safety", "blocked", "cut"]
GEMINI_FAULT_OPTIONS = PATH_FAULT_OPTIONS = FAULT_OPTIONS.replace("&", ",")

# Azure OpenAI upstream faults, one `azure-fail-X` model each. The mock options ride on the
# deployment name, which is part of the URL path: `echo;fail=429,retry_after=7,…` as for Gemini.
# `content_filter` is Azure's 400 refusal of a prompt by its content filter.
AZURE_FAULTS = ["429", "500", "content_filter", "cut"]
# AWS Bedrock upstream faults, one `bedrock-fail-X` model each (options on the model id, same
# spelling). `stream_exception` ends a stream after three deltas with Bedrock's
# `modelStreamErrorException` frame.
BEDROCK_FAULTS = ["429", "500", "cut", "stream_exception"]
# The Bedrock model id the echo answers as.
BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
# Google Vertex AI upstream faults, one `vertex-fail-X` model each (options on the model, which
# is part of the URL path: same spelling as Gemini's).
VERTEX_FAULTS = ["429", "500", "cut"]
# The test service account whose key the mock's token endpoint verifies.
VERTEX_CREDENTIALS = REPO / "crates" / "providers" / "tests" / "fixtures" / "vertex" / "service_account.json"

STARTUP_TIMEOUT = 30.0

# Where the session's process logs and gateway config are, shown when a test fails.
_LOG_DIRS: list[Path] = []


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if exitstatus != 0 and _LOG_DIRS:
        terminalreporter.write_line(
            f"switchyard logs and config: {_LOG_DIRS[0]} (gateway.log, mock.log, switchyard.yaml)"
        )


@dataclass(frozen=True)
class Servers:
    """The running processes' base URLs."""

    gateway: str  # http://127.0.0.1:PORT, no trailing slash
    mock: str


def _deployment(
    provider: str,
    model: str,
    api_base: str | None,
    timeout: float | None = None,
    api_key: str | None = "test-key",
    **extra: str,
) -> str:
    """One deployment entry; `api_base=None` and `api_key=None` leave the base and the key out,
    `extra` adds more settings (`api_version`, `auth`, `aws_region`, …), each written as a
    quoted string."""
    text = f"      - provider: {provider}\n        model: \"{model}\"\n"
    if api_base is not None:
        text += f'        api_base: "{api_base}"\n'
    if api_key is not None:
        text += f'        api_key: "{api_key}"\n'
    for key, value in extra.items():
        text += f'        {key}: "{value}"\n'
    if timeout is not None:
        text += f"        timeout_secs: {timeout}\n"
    return text


def _group(
    name: str,
    provider: str,
    model: str,
    api_base: str | None,
    timeout: float | None = None,
    **settings: str | None,
) -> str:
    # No retries: these tests check what one upstream answer looks like to an SDK.
    return f"  - name: {name}\n    retries: 0\n    deployments:\n" + _deployment(
        provider, model, api_base, timeout, **settings
    )


def path_model(options: str = "") -> str:
    """The mock's echo model with `options` (`fail=500,retry_after=7`), in the path-safe
    `echo;k=v,k=v` spelling of a model that is part of the URL path: a Gemini model, an Azure
    deployment name, a Bedrock model id, a Vertex AI model."""
    assert "?" not in options and "&" not in options, "use , between path-safe mock options"
    return f"echo;{options}" if options else "echo"


gemini_model = path_model


def gateway_config(listen: str, mock_v1: str) -> str:
    """The gateway config: the upstream formats the mock speaks (OpenAI, Anthropic, Gemini,
    Azure OpenAI, AWS Bedrock, Google Vertex AI), and one model per fault the tests use."""
    # Azure and Bedrock paths start at the root (`/openai/…`, `/model/…`), not at `/v1`.
    mock_root = mock_v1.removesuffix("/v1")
    groups = [
        _group("gpt", "openai_compatible", "echo", mock_v1),
        _group("claude", "anthropic", "echo", mock_v1),
        _group("gemini", "gemini", gemini_model(), mock_v1),
        _group("gpt-hang", "openai_compatible", "echo?fail=hang", mock_v1, timeout=0.5),
        _group("claude-hang", "anthropic", "echo?fail=hang", mock_v1, timeout=0.5),
        # Port 9 (discard) has nothing listening on loopback: connections are refused.
        _group("unreachable", "openai_compatible", "echo", "http://127.0.0.1:9/v1"),
        _group("claude-unreachable", "anthropic", "echo", "http://127.0.0.1:9/v1"),
    ]
    for fault in FAULTS:
        model = f"echo?fail={fault}&{FAULT_OPTIONS}"
        groups.append(_group(f"gpt-fail-{fault}", "openai_compatible", model, mock_v1))
        groups.append(_group(f"claude-fail-{fault}", "anthropic", model, mock_v1))
    for fault in GEMINI_FAULTS:
        model = gemini_model(f"fail={fault},{GEMINI_FAULT_OPTIONS}")
        groups.append(_group(f"gemini-fail-{fault}", "gemini", model, mock_v1))
    groups += [
        # Azure OpenAI: `api-key` auth and the dated API version by default; an Entra ID token
        # (bearer) with a chosen version; the v1 API (no deployment in the path).
        _group("azure", "azure", "echo", mock_root, api_key="azure-key"),
        _group(
            "azure-bearer", "azure", "echo", mock_root, api_key="entra-token",
            auth="bearer", api_version="2025-04-01-preview",
        ),
        _group("azure-v1", "azure", "echo", mock_root, api_key="azure-key", api_version="v1"),
        # A key Azure refuses (the mock refuses `invalid`).
        _group("azure-wrong-key", "azure", "echo", mock_root, api_key="invalid"),
        # Bedrock, signed with the mock's test credentials.
        _group("bedrock", "mock_bedrock", BEDROCK_MODEL, mock_root, api_key=None),
        # Bedrock signed with a secret the mock does not know: a bad signature.
        _group(
            "bedrock-wrong-key", "bedrock", BEDROCK_MODEL, mock_root, api_key=None,
            aws_region="us-east-1", aws_access_key_id="AKIDMOCK", aws_secret_access_key="wrong",
        ),
    ]
    for fault in AZURE_FAULTS:
        model = path_model(f"fail={fault},{PATH_FAULT_OPTIONS}")
        groups.append(_group(f"azure-fail-{fault}", "azure", model, mock_root, api_key="azure-key"))
    for fault in BEDROCK_FAULTS:
        model = path_model(f"fail={fault},{PATH_FAULT_OPTIONS}")
        groups.append(_group(f"bedrock-fail-{fault}", "mock_bedrock", model, mock_root, api_key=None))
    # Vertex AI: no key and no base. The gateway trades the service account's signed JWT for a
    # token at its own in-process mock's `/token` and derives the project path from the key file
    # (project `switchyard-test`) and the location (`us-central1` unless one is named).
    vertex = {"api_key": None, "credentials_file": str(VERTEX_CREDENTIALS)}
    groups.append(
        _group("vertex", "mock_vertex", path_model(), None, vertex_location="europe-west4", **vertex)
    )
    for fault in VERTEX_FAULTS:
        model = path_model(f"fail={fault},{PATH_FAULT_OPTIONS}")
        groups.append(_group(f"vertex-fail-{fault}", "mock_vertex", model, None, **vertex))
    # Guarded groups: the `strict` policy ends answers that hold a credential or the system
    # prompt, and refuses structured answers that miss their schema.
    groups.append(
        "  - name: guarded\n    guard_policy: strict\n    retries: 0\n    deployments:\n"
        + _deployment("openai_compatible", "echo", mock_v1)
    )
    groups.append(
        "  - name: guarded-claude\n    guard_policy: strict\n    retries: 0\n    deployments:\n"
        + _deployment("anthropic", "echo", mock_v1)
    )
    groups.append(
        "  - name: guarded-request-echo\n    guard_policy: strict\n    retries: 0\n"
        "    deployments:\n" + _deployment("openai_compatible", "echo?echo=request", mock_v1)
    )
    # Cached groups: a repeated call is answered from the gateway's cache.
    groups.append(
        "  - name: cached\n    cache: true\n    deployments:\n"
        + _deployment("openai_compatible", "echo", mock_v1)
    )
    groups.append(
        "  - name: cached-claude\n    cache: true\n    deployments:\n"
        + _deployment("anthropic", "echo", mock_v1)
    )
    return (
        "guards:\n"
        "  policies:\n"
        "    strict:\n"
        "      output:\n"
        "        secrets: block\n"
        "        system_prompt_leak: block\n"
        "        canary: true\n"
        "        json_schema: block\n"
        "server:\n"
        f"  listen: {listen}\n"
        f"  body_limit_bytes: {BODY_LIMIT}\n"
        "  shutdown_grace_secs: 1\n"
        # Faults must not take the fault models out of rotation between tests.
        "routing:\n"
        "  cooldown_secs: 0\n"
        "models:\n" + "".join(groups)
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen) -> None:
    """Terminates `process` (SIGTERM), killing it if it has not exited within 5 s."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def _read_mock_address(process: subprocess.Popen, log: Path) -> str:
    """The base URL from the mock's `switchyard-mock listening on http://ADDR` line."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    prefix = "switchyard-mock listening on "
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        if line.startswith(prefix):
            return line[len(prefix) :].strip().rstrip("/")
    raise RuntimeError(f"switchyard-mock did not report its address; log:\n{log.read_text()}")


def _wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"switchyard exited with {process.returncode}; log:\n{log.read_text()}"
            )
        try:
            with opener.open(f"{url}/health/readiness", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"switchyard not ready after {STARTUP_TIMEOUT}s; log:\n{log.read_text()}")


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory):
    for binary in (GATEWAY_BIN, MOCK_BIN):
        if not binary.exists():
            pytest.exit(
                f"{binary} is missing: run `cargo build -p switchyard-server -p switchyard-mock` "
                "(scripts/sdk-test does)",
                returncode=2,
            )
    work = tmp_path_factory.mktemp("switchyard")
    _LOG_DIRS.append(work)
    mock_log = work / "mock.log"
    gateway_log = work / "gateway.log"
    started: list[subprocess.Popen] = []
    try:
        with mock_log.open("w") as err:
            mock = subprocess.Popen(
                [str(MOCK_BIN), "--listen", "127.0.0.1:0"],
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        started.append(mock)
        mock_url = _read_mock_address(mock, mock_log)

        gateway_url = _spawn_gateway(
            work, "switchyard", lambda listen: gateway_config(listen, f"{mock_url}/v1"), started
        )
        yield Servers(gateway=gateway_url, mock=mock_url)
    finally:
        for process in reversed(started):
            _stop(process)


def _spawn_gateway(work: Path, name: str, config_of, started: list[subprocess.Popen]) -> str:
    """Starts a gateway on a free port with the config `config_of(listen)` written to
    `work/{name}.yaml`, logging to `work/{name}.log`; returns its URL once it is ready."""
    listen = f"127.0.0.1:{_free_port()}"
    config = work / f"{name}.yaml"
    config.write_text(config_of(listen))
    log = work / f"{name}.log"
    with log.open("w") as err:
        gateway = subprocess.Popen(
            [str(GATEWAY_BIN), "serve", "--config", str(config), "--listen", listen],
            stdout=err,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # The embedded store (`switchyard-data/`) is made in the working directory.
            cwd=work,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
    started.append(gateway)
    url = f"http://{listen}"
    _wait_ready(url, gateway, log)
    return url


# The master key of the gateway that requires keys.
MASTER_KEY = "sy-sdk-tests-master-key-0123456789"


@pytest.fixture(scope="session")
def keyed_gateway(servers: Servers, tmp_path_factory: pytest.TempPathFactory):
    """A second gateway in front of the same mock that requires keys (master key
    `MASTER_KEY`, store in a SQLite file of its own)."""
    work = tmp_path_factory.mktemp("switchyard-keys")
    _LOG_DIRS.append(work)
    started: list[subprocess.Popen] = []

    store = work / "store.db"

    def config(listen: str) -> str:
        return (
            gateway_config(listen, f"{servers.mock}/v1")
            + f"auth:\n  master_key: {MASTER_KEY}\n"
            + f'store:\n  url: "sqlite://{store}"\n'
        )

    try:
        yield _spawn_gateway(work, "keyed", config, started)
    finally:
        for process in started:
            _stop(process)


@pytest.fixture(scope="session")
def gateway_url(servers: Servers) -> str:
    return servers.gateway


@pytest.fixture(scope="session")
def oai(gateway_url: str) -> openai.OpenAI:
    """The OpenAI SDK, talking to the gateway."""
    client = openai.OpenAI(
        base_url=f"{gateway_url}/v1", api_key="sk-test", max_retries=0, timeout=10.0
    )
    yield client
    client.close()


@pytest.fixture(scope="session")
def claude(gateway_url: str) -> anthropic.Anthropic:
    """The Anthropic SDK, talking to the gateway."""
    client = anthropic.Anthropic(
        base_url=gateway_url, api_key="sk-test", max_retries=0, timeout=10.0
    )
    yield client
    client.close()
