"""Cold starts and sizes of keyrotor's Lambda binaries (run by scripts/cold-start.sh).

Sizes: each binary stripped (a stripped copy when a strip tool is given; the release profile
already strips) and zipped as ``bootstrap`` with deflate level 9, as the provided.al2023
runtime takes it.

Cold starts: each measurement spawns one binary under a minimal Lambda Runtime API served
here on 127.0.0.1 (one event per process): the first ``GET /2018-06-01/runtime/invocation/next``
gets the event, the POST of its response or error ends the measurement, and the process is
killed (it would be frozen in Lambda). Times are taken from just before the spawn:

* ``init_ms``: until the first GET .../invocation/next (process start, configuration,
  AWS SDK set-up: the Lambda Init phase);
* ``cold_ms``: until the POST of the response or error (Init plus the first invocation,
  including its AWS calls against the local emulator).

Every measurement runs in a fresh emulator account (``/_account/<12 digits>``) holding the
audit and state tables (``keyrotor init``) and one managed API key that is due (created 100
days ago, in a usage plan, its secret tagged ``keyrotor:type = apigw-api-key``), so the
plan lists it, the API key function starts its rotation and the rotation hook serves a real
``createSecret``. AWS calls are counted from the emulator's access log (``--emulator-log``).

``--tls`` puts a loopback TLS terminator in front of the emulator, so that the calls pay
TLS as against AWS; ``--env`` and ``--exec-prefix`` are for experiments. Without
``--endpoint`` only the sizes are reported. Python standard library only (``openssl`` for
``--tls``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import pathlib
import secrets
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FUNCTIONS = [
    "keyrotor-plan",
    "keyrotor-iam-keys",
    "keyrotor-certs",
    "keyrotor-migration",
    "keyrotor-api-key",
    "keyrotor-record-failure",
    "keyrotor-secret-rotation",
]
REGION = "us-east-1"
AUDIT_TABLE = "keyrotor-cold-start-audit"
STATE_TABLE = "keyrotor-cold-start-state"
NEXT = "/2018-06-01/runtime/invocation/next"
INVOCATION = "/2018-06-01/runtime/invocation/"
INIT_ERROR = "/2018-06-01/runtime/init/error"


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------
# sizes


def sizes(bin_dir: pathlib.Path, names: list[str], strip: str | None, out_dir: pathlib.Path) -> dict:
    """Stripped size and bootstrap.zip size (deflate -9) of each binary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = {}
    for name in names:
        binary = bin_dir / name
        if not binary.is_file():
            raise SystemExit(f"cold_start: {binary} is missing (build it first)")
        stripped = out_dir / name
        shutil.copyfile(binary, stripped)
        if strip:
            subprocess.run([strip, "--strip-all", str(stripped)], check=True)
        archive = out_dir / f"{name}.zip"
        info = zipfile.ZipInfo("bootstrap", date_time=(2026, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = (0o100755 << 16)  # a regular file, rwxr-xr-x
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
            with open(stripped, "rb") as fh:
                z.writestr(info, fh.read(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
        result[name] = {
            "binary_bytes": binary.stat().st_size,
            "stripped_bytes": stripped.stat().st_size,
            "zip_bytes": archive.stat().st_size,
            "zip": str(archive),
        }
    return result


# --------------------------------------------------------------------------------------
# the emulator account: plain HTTP requests, with an Authorization header moto only reads
# the service name from (it does not check signatures)


class Emulator:
    def __init__(self, base: str, account: str):
        self.base = base.rstrip("/")
        self.account = account
        self.endpoint = f"{self.base}/_account/{account}"

    def _request(self, method: str, url: str, service: str | None, body: dict | None,
                 headers: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        h = {"Content-Type": "application/json"}
        if service:
            day = time.strftime("%Y%m%d", time.gmtime())
            h["Authorization"] = (
                f"AWS4-HMAC-SHA256 Credential=test/{day}/{REGION}/{service}/aws4_request, "
                "SignedHeaders=host, Signature=0"
            )
        h.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read().decode()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            raise SystemExit(f"cold_start: {method} {url}: HTTP {exc.code}: {detail}") from exc
        return json.loads(text) if text.strip() else {}

    def clock(self, when: dt.datetime) -> None:
        self._request("POST", f"{self.base}/_keyrotor/clock", None,
                      {"account": self.account, "now": rfc3339(when)})

    def apigateway(self, method: str, path: str, body: dict | None = None) -> dict:
        return self._request(method, self.endpoint + path, "apigateway", body)

    def secretsmanager(self, action: str, body: dict) -> dict:
        return self._request("POST", self.endpoint + "/", "secretsmanager", body, {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"secretsmanager.{action}",
        })

    def seed_due_api_key(self, now: dt.datetime) -> dict:
        """One managed API key, 100 days old (past max_age_days = 90), in a usage plan."""
        self.clock(now - dt.timedelta(days=100))
        plan = self.apigateway("POST", "/usageplans", {"name": "cold-start-plan"})
        secret_name = "keyrotor/apikeys/cold-start"
        key = self.apigateway("POST", "/apikeys", {
            "name": "cold-start-partner",
            "enabled": True,
            "tags": {"keyrotor:secret": secret_name, "owner": "cold-start@example.com"},
        })
        self.apigateway("POST", f"/usageplans/{plan['id']}/keys", {"keyId": key["id"], "keyType": "API_KEY"})
        value = self.apigateway("GET", f"/apikeys/{key['id']}?includeValue=true")["value"]
        self.secretsmanager("CreateSecret", {
            "Name": secret_name,
            "SecretString": json.dumps({"apiKeyId": key["id"], "value": value}),
            "Tags": [{"Key": "keyrotor:type", "Value": "apigw-api-key"},
                     {"Key": "keyrotor:api-key", "Value": "cold-start-partner"},
                     {"Key": "owner", "Value": "cold-start@example.com"}],
        })
        self.clock(now)
        return {"key": key["id"], "secret": secret_name}

    def rotation_start(self, secret: str, token: str) -> None:
        """What RotateSecret does before it invokes the hook (moto_world control route)."""
        self._request("POST", f"{self.base}/_keyrotor/rotation-start", None,
                      {"account": self.account, "region": REGION, "secret": secret, "token": token})


def event_for(function: str, now: dt.datetime, seeded: dict, emulator: Emulator) -> dict:
    """The event each function gets in the deployed state machines (state-machine/*.asl.json)."""
    at = rfc3339(now)
    if function == "keyrotor-plan":
        return {}  # the EventBridge Scheduler's Input (infra/template.yaml)
    if function in ("keyrotor-iam-keys", "keyrotor-certs", "keyrotor-migration"):
        return {"at": at}  # Sweep: {"at.$": "$.plan.at"}
    if function == "keyrotor-api-key":
        return {"key": seeded["key"], "at": at}  # Advance: {"key.$", "at.$"}
    if function == "keyrotor-record-failure":
        return {"what": "plan", "kind": "plan", "resource": "sweep",  # PlanFailed
                "error": {"Error": "KeyRotor.Retryable", "Cause": "cold-start probe: throttled"}}
    if function == "keyrotor-secret-rotation":
        token = str(uuid.uuid4())
        emulator.rotation_start(seeded["secret"], token)
        return {"Step": "createSecret", "SecretId": seeded["secret"], "ClientRequestToken": token}
    raise SystemExit(f"cold_start: no event for {function}")


# --------------------------------------------------------------------------------------
# the Lambda Runtime API, one event per process


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # The killed process resets its idle keep-alive connection: expected, not an error.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class RuntimeApi:
    """Serves one event on 127.0.0.1 and records when the runtime asked and answered."""

    def __init__(self, event: dict, function_arn: str, timeout_s: float):
        self.event = json.dumps(event).encode()
        self.function_arn = function_arn
        self.timeout_s = timeout_s
        self.request_id = str(uuid.uuid4())
        self.times: dict[str, int] = {}
        self.outcome: dict = {}
        self.answered = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # quiet
                pass

            def _reply(self, code: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self):
                now = time.monotonic_ns()
                if self.path != NEXT:
                    return self._reply(404, b'{"errorMessage": "unknown path"}')
                with api.lock:
                    first = "next" not in api.times
                    if first:
                        api.times["next"] = now
                if not first:
                    # One event per process: hold the next poll until the process is killed.
                    api.stopping.wait(api.timeout_s)
                    self.close_connection = True
                    return
                deadline = int(time.time() * 1000) + int(api.timeout_s * 1000)
                self._reply(200, api.event, {
                    "Lambda-Runtime-Aws-Request-Id": api.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline),
                    "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Sampled=0",
                })

            def do_POST(self):
                body = self._body()
                now = time.monotonic_ns()
                if self.path == INIT_ERROR:
                    kind, status = "init_error", "init-error"
                elif self.path == f"{INVOCATION}{api.request_id}/response":
                    kind, status = "response", "ok"
                elif self.path == f"{INVOCATION}{api.request_id}/error":
                    kind, status = "error", "error"
                else:
                    return self._reply(404, b'{"errorMessage": "unknown path"}')
                try:
                    doc = json.loads(body or b"null")
                except ValueError:
                    doc = None
                with api.lock:
                    api.times.setdefault("answer", now)
                    api.outcome = {"status": status, "kind": kind, "body": doc}
                self._reply(202, b'{"status": "OK"}')
                api.answered.set()

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


class TlsFront:
    """A loopback TLS terminator in front of the emulator (--tls), so that the functions'
    AWS calls go over HTTPS as they do against AWS: a throw-away CA (openssl), trusted by
    the functions through SSL_CERT_FILE, signs a certificate for 127.0.0.1. The emulator
    closes every connection after its response, so every call pays a handshake here, where
    against AWS each service's connection is kept."""

    def __init__(self, upstream: str, work: pathlib.Path):
        host, port = upstream.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        self.upstream = (host, int(port))
        self.ca = work / "tls-ca.pem"
        key, cert, ca_key = work / "tls-key.pem", work / "tls-cert.pem", work / "tls-ca-key.pem"
        ext = work / "tls-ext.cnf"
        ext.write_text("subjectAltName = IP:127.0.0.1\nbasicConstraints = critical, CA:FALSE\n"
                       "extendedKeyUsage = serverAuth\n")
        quiet = {"check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "2", "-subj", "/CN=keyrotor cold-start CA",
                        "-keyout", str(ca_key), "-out", str(self.ca)], **quiet)
        subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(work / "tls.csr")], **quiet)
        subprocess.run(["openssl", "x509", "-req", "-in", str(work / "tls.csr"), "-CA", str(self.ca),
                        "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2", "-extfile", str(ext),
                        "-out", str(cert)], **quiet)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.context.set_alpn_protocols(["http/1.1"])
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
            up = socket.create_connection(self.upstream, timeout=60)
        except (OSError, ssl.SSLError):
            conn.close()
            return

        def pump(src, dst):
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        back = threading.Thread(target=pump, args=(up, tls), daemon=True)
        back.start()
        pump(tls, up)
        back.join(60)
        tls.close()
        up.close()


APIGATEWAY_PATHS = ("/apikeys", "/usageplans", "/restapis", "/tags", "/domainnames")


def count_calls(log: pathlib.Path | None, offset: int, account: str) -> tuple[int, int] | None:
    """AWS requests the emulator logged for this account since `offset` (werkzeug's access
    log line carries the original path, /_account/<id>/...), and how many of them were
    API Gateway's (REST paths; the other services are POSTs to /)."""
    if log is None or not log.exists():
        return None
    with open(log, "rb") as fh:
        fh.seek(offset)
        text = fh.read().decode(errors="replace")
    prefix = f"/_account/{account}/"
    paths = [line.split(prefix, 1)[1] for line in text.splitlines() if prefix in line and '" ' in line]
    return len(paths), sum(1 for p in paths if ("/" + p).startswith(APIGATEWAY_PATHS))


def one_cold_start(function: str, bin_dir: pathlib.Path, cli: pathlib.Path, base: str,
                   policy_text: str, policy_file: pathlib.Path, timeout_s: float,
                   log: pathlib.Path | None, work: pathlib.Path, prefix: list[str],
                   extra_env: dict[str, str], tls: TlsFront | None) -> dict:
    account = "7" + "".join(str(secrets.randbelow(10)) for _ in range(11))
    emulator = Emulator(base, account)
    aws_env = {
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KEYROTOR_"))}
    # Set-up, not measured: the tables, and the seeded API key.
    subprocess.run(
        [str(cli), "--endpoint-url", emulator.endpoint, "--config", str(policy_file),
         "--quiet", "--output", "json", "init"],
        env={**base_env, **aws_env}, check=True, stdout=subprocess.DEVNULL, timeout=timeout_s,
    )
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    seeded = emulator.seed_due_api_key(now)
    event = event_for(function, now, seeded, emulator)
    arn = f"arn:aws:lambda:{REGION}:{account}:function:{function}"
    api = RuntimeApi(event, arn, timeout_s)
    env = {
        **base_env,
        **aws_env,
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{api.port}",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"2026/01/01/[$LATEST]{uuid.uuid4().hex}",
        "AWS_ENDPOINT_URL": tls.url(f"/_account/{account}") if tls else emulator.endpoint,
        **({"SSL_CERT_FILE": str(tls.ca)} if tls else {}),
        "KEYROTOR_POLICY": policy_text,
        "KEYROTOR_AUDIT_TABLE": AUDIT_TABLE,
        "KEYROTOR_STATE_TABLE": STATE_TABLE,
        **extra_env,
    }
    offset = log.stat().st_size if log is not None and log.exists() else 0
    stderr_path = work / f"{function}.{account}.stderr"
    with open(stderr_path, "wb") as err, open(os.devnull, "wb") as out:
        t0 = time.monotonic_ns()
        proc = subprocess.Popen([*prefix, str(bin_dir / function)], env=env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, cwd=work)
        end = time.monotonic() + timeout_s
        exit_code = None
        while time.monotonic() < end:
            if api.answered.wait(0.005):
                break
            exit_code = proc.poll()
            if exit_code is not None:
                break
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    api.close()
    ms = lambda key: round((api.times[key] - t0) / 1e6, 1) if key in api.times else None  # noqa: E731
    body = api.outcome.get("body") or {}
    if api.outcome:
        status = api.outcome["status"]
        if status != "ok" and isinstance(body, dict):
            status = f"{status}: {body.get('errorType', '?')}"
    elif exit_code is not None:
        status = f"exited {exit_code} before answering"
    else:
        status = f"timeout after {timeout_s:g}s"
    calls = count_calls(log, offset, account)
    run = {
        "account": account,
        "init_ms": ms("next"),
        "cold_ms": ms("answer"),
        "status": status,
        "aws_calls": calls[0] if calls else None,
        "apigateway_calls": calls[1] if calls else None,
    }
    if api.outcome.get("kind") != "response":
        tail = stderr_path.read_text(errors="replace").strip().splitlines()[-3:]
        run["detail"] = (body.get("errorMessage") if isinstance(body, dict) else None) or " | ".join(tail)
    else:
        run["result"] = body
        stderr_path.unlink()
    return run


def summary(values: list[float | None]) -> dict | None:
    got = [v for v in values if v is not None]
    if not got:
        return None
    return {"median": round(statistics.median(got), 1), "max": round(max(got), 1), "n": len(got)}


EVENTS = {
    "keyrotor-plan": "`{}` (Scheduler input)",
    "keyrotor-iam-keys": "`{at}`",
    "keyrotor-certs": "`{at}`",
    "keyrotor-migration": "`{at}`",
    "keyrotor-api-key": "`{key, at}`, a due key",
    "keyrotor-record-failure": "PlanFailed `{what, kind, resource, error}`",
    "keyrotor-secret-rotation": "`createSecret` of an API key secret",
}


def markdown(report: dict) -> str:
    mb = lambda b: f"{b / 1_000_000:.1f}"  # noqa: E731
    if not report["cold_starts"]:
        lines = [f"| function | stripped MB ({report['arch']}) | zip MB ({report['arch']}) | zip bytes |",
                 "| --- | ---: | ---: | ---: |"]
        for f in report["functions"]:
            s = report["sizes"][f]
            lines.append(f"| {f} | {mb(s['stripped_bytes'])} | {mb(s['zip_bytes'])} | {s['zip_bytes']:,} |")
        return "\n".join(lines)
    lines = [
        "| function | event | stripped MB | zip MB | init ms (median / max) | cold start ms (median / max) | result | AWS calls |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for f in report["functions"]:
        s = report["sizes"].get(f, {})
        c = report["cold_starts"].get(f)
        if c is None:
            init = cold = result = calls = "not measured"
        else:
            init = "{median:.0f} / {max:.0f}".format(**c["init_ms"]) if c["init_ms"] else "-"
            cold = "{median:.0f} / {max:.0f}".format(**c["cold_ms"]) if c["cold_ms"] else "-"
            result = ", ".join(sorted(set(c["statuses"])))
            calls = "/".join(str(n) for n in sorted(set(c["aws_calls"]))) if c["aws_calls"] else "-"
            gw = sorted(set(c.get("apigateway_calls") or []))
            if gw and gw != [0]:
                calls += f" ({'/'.join(str(n) for n in gw)} API Gateway)"
        lines.append(f"| {f} | {EVENTS.get(f, '')} | {mb(s['stripped_bytes'])} | {mb(s['zip_bytes'])} "
                     f"| {init} | {cold} | {result} | {calls} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin-dir", default="target/release", type=pathlib.Path)
    parser.add_argument("--endpoint", help="the emulator's base URL (scripts/emulator.sh start); "
                        "without it only sizes are reported")
    parser.add_argument("--emulator-log", type=pathlib.Path, help="moto_world's log, to count AWS calls")
    parser.add_argument("--policy", type=pathlib.Path, default=pathlib.Path("examples/keyrotor.toml"),
                        help="policy TOML (mode is set to enforce, table names to the cold-start tables)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per cold start")
    parser.add_argument("--strip", default=shutil.which("strip"), help="strip tool ('' for none)")
    parser.add_argument("--functions", nargs="*", default=FUNCTIONS)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(".keyrotor/cold-start"))
    parser.add_argument("--arch", default="x86_64")
    parser.add_argument("--cli", type=pathlib.Path, help="the keyrotor CLI that creates the tables "
                        "[default: BIN_DIR/keyrotor]")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="one more variable for the functions (repeatable), for experiments")
    parser.add_argument("--tls", action="store_true", help="AWS calls over HTTPS through a loopback "
                        "TLS terminator (a handshake per call: the emulator closes each connection)")
    parser.add_argument("--exec-prefix", default="", help="run each function under this command "
                        "(e.g. qemu-aarch64 for a smoke test of arm64 binaries; its times are not cold starts)")
    args = parser.parse_args(argv)

    args.bin_dir = args.bin_dir.resolve()  # the functions run in a scratch directory
    args.cli = (args.cli or args.bin_dir / "keyrotor").resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "arch": args.arch,
        "bin_dir": str(args.bin_dir),
        "runs": args.runs,
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "functions": args.functions,
        "sizes": sizes(args.bin_dir, args.functions, args.strip or None, args.out / f"zip-{args.arch}"),
        "cold_starts": {},
    }
    if args.endpoint:
        text = args.policy.read_text()
        text = text.replace('mode = "plan"', 'mode = "enforce"', 1)
        text = text.replace('table = "keyrotor-audit"', f'table = "{AUDIT_TABLE}"', 1)
        text = text.replace('state_table = "keyrotor-state"', f'state_table = "{STATE_TABLE}"', 1)
        policy_file = args.out / "policy.toml"
        policy_file.write_text(text)
        extra_env = dict(kv.split("=", 1) for kv in args.env)
        report["extra_env"] = extra_env
        with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
            work = pathlib.Path(tmp)
            tls = TlsFront(args.endpoint, work) if args.tls else None
            report["tls"] = bool(tls)
            for function in args.functions:
                runs = []
                for i in range(args.runs):
                    run = one_cold_start(function, args.bin_dir, args.cli,
                                         args.endpoint, text, policy_file, args.timeout,
                                         args.emulator_log, work, args.exec_prefix.split(), extra_env, tls)
                    runs.append(run)
                    print(f"{function} #{i + 1}: init {run['init_ms']} ms, cold start {run['cold_ms']} ms, "
                          f"{run['status']}, {run['aws_calls']} AWS calls ({run['apigateway_calls']} API Gateway)"
                          + (f" ({run['detail']})" if run.get("detail") else ""), file=sys.stderr)
                report["cold_starts"][function] = {
                    "init_ms": summary([r["init_ms"] for r in runs]),
                    "cold_ms": summary([r["cold_ms"] for r in runs]),
                    "statuses": [r["status"] for r in runs],
                    "aws_calls": [r["aws_calls"] for r in runs if r["aws_calls"] is not None],
                    "apigateway_calls": [r["apigateway_calls"] for r in runs
                                         if r["apigateway_calls"] is not None],
                    "runs": runs,
                }
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    (args.out / f"report-{args.arch}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    print()
    print("```json")
    print(json.dumps({
        "arch": report["arch"],
        "tls": report.get("tls", False),
        "runs": report["runs"],
        "cpus": report["cpus"],
        "load_average": [report["load_average_before"], report["load_average_after"]],
        "functions": {
            f: {
                "stripped_bytes": report["sizes"][f]["stripped_bytes"],
                "zip_bytes": report["sizes"][f]["zip_bytes"],
                **({
                    "init_ms": report["cold_starts"][f]["init_ms"],
                    "cold_ms": report["cold_starts"][f]["cold_ms"],
                    "results": {r: report["cold_starts"][f]["statuses"].count(r)
                                for r in sorted(set(report["cold_starts"][f]["statuses"]))},
                    "aws_calls": sorted(set(report["cold_starts"][f]["aws_calls"])),
                    "apigateway_calls": sorted(set(report["cold_starts"][f]["apigateway_calls"])),
                } if f in report["cold_starts"] else {}),
            }
            for f in report["functions"]
        },
    }, indent=2))
    print("```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
