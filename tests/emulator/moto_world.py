"""keyrotor's local AWS world: moto in server mode with per-account isolation and clocks.

moto has no clock control, and keyrotor's lifecycles need time to pass (a key 100 days old
that was used yesterday). This wrapper serves moto's own WSGI application and adds:

* **per-account isolation**: a request whose path starts with ``/_account/<12 digits>`` is
  served in that account (moto's ``x-moto-account-id`` header), with the prefix removed, so
  the AWS SDK reaches an isolated account through an ordinary endpoint URL such as
  ``http://127.0.0.1:PORT/_account/111122223333``. Tests running in parallel never see each
  other's resources.
* **per-account clocks**: ``POST /_keyrotor/clock`` with ``{"account": "...", "now":
  "RFC 3339"}`` moves that account's clock (it keeps ticking from there). moto's time
  sources (``utcnow`` and ``time.time`` in the service modules keyrotor uses) read the
  clock of the account the current request belongs to, so CreateDate, LastUsedDate (moto
  records a key as used when a request is signed with it) and the credential report follow.
* ``POST /_keyrotor/rotation-start`` with ``{"account", "region", "secret", "token"}`` does
  what Secrets Manager's RotateSecret does before it invokes a rotation function: it
  attaches AWSPENDING to a new, empty version ``token`` (moving the label from any other
  version) and marks rotation as enabled. moto's own RotateSecret would invoke the function
  through Docker, which keyrotor's tests do not use; they invoke the real hook binary
  themselves, step by step.
* **accounts follow temporary credentials**, as in AWS: a request signed with credentials
  from STS AssumeRole is served in the account of the role that was assumed, whatever
  account the path names, so keyrotor's Organizations fan-out reaches each member account
  through the one endpoint.
* **AssumeRole checks the role**, as AWS does and moto does not: a role that does not exist,
  or whose trust policy requires an ``sts:ExternalId`` the caller did not pass, is refused
  with AccessDenied.
* ``GET /_keyrotor/health`` for start-up probes.

The process exits when its parent dies (``--parent-pid``), so a test run never leaves an
emulator behind.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import os
import re
import sys
import threading
import time as _time

import moto.core.utils as _core_utils

DEFAULT_ACCOUNT = "123456789012"
_ACCOUNT_PREFIX = re.compile(r"^/_account/(\d{12})(/.*)?$")
_CREDENTIAL = re.compile(r"Credential=([A-Z0-9]+)/")

_local = threading.local()
_offsets: dict[str, _dt.timedelta] = {}
_offsets_lock = threading.Lock()
_real_utcnow = _core_utils.utcnow


def _offset() -> _dt.timedelta:
    account = getattr(_local, "account", DEFAULT_ACCOUNT)
    with _offsets_lock:
        return _offsets.get(account, _dt.timedelta(0))


def clocked_utcnow() -> _dt.datetime:
    """moto's naive-UTC ``utcnow``, shifted by the current account's clock."""
    return _real_utcnow() + _offset()


class _ClockedTime:
    """Stands in for the ``time`` module inside moto's service modules."""

    def __getattr__(self, name: str):
        return getattr(_time, name)

    def time(self) -> float:
        return _time.time() + _offset().total_seconds()


def _install_clocks() -> None:
    # Functions in moto.core.utils look the name up at call time, so this covers them.
    _core_utils.utcnow = clocked_utcnow
    import importlib

    for name in (
        "moto.iam.models",
        "moto.sts.models",
        "moto.apigateway.models",
        "moto.secretsmanager.models",
        "moto.acm.models",
        "moto.dynamodb.models",
    ):
        module = importlib.import_module(name)
        if getattr(module, "utcnow", None) is _real_utcnow:
            module.utcnow = clocked_utcnow
        if getattr(module, "time", None) is _time:
            module.time = _ClockedTime()


def _json_response(start_response, status: str, body: dict) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def _control(environ, start_response) -> list[bytes]:
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "GET")
    if path == "/_keyrotor/health":
        return _json_response(start_response, "200 OK", {"status": "ok"})
    if path == "/_keyrotor/clock" and method == "POST":
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            account = str(body.get("account", DEFAULT_ACCOUNT))
            if not re.fullmatch(r"\d{12}", account):
                raise ValueError(f"account must be 12 digits, got {account!r}")
            target = _dt.datetime.fromisoformat(str(body["now"]).replace("Z", "+00:00"))
            if target.tzinfo is None:
                raise ValueError("now must carry a UTC offset (RFC 3339)")
            target = target.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        except (KeyError, ValueError, json.JSONDecodeError) as exc:
            return _json_response(start_response, "400 Bad Request", {"error": str(exc)})
        with _offsets_lock:
            _offsets[account] = target - _real_utcnow()
        return _json_response(start_response, "200 OK", {"account": account, "now": target.isoformat() + "Z"})
    if path == "/_keyrotor/rotation-start" and method == "POST":
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            account = str(body["account"])
            region = str(body.get("region", "us-east-1"))
            secret_id = str(body["secret"])
            token = str(body["token"])
        except (KeyError, ValueError, json.JSONDecodeError) as exc:
            return _json_response(start_response, "400 Bad Request", {"error": str(exc)})
        from moto.secretsmanager.models import secretsmanager_backends

        secrets = secretsmanager_backends[account][region].secrets
        if secret_id not in secrets:
            return _json_response(start_response, "404 Not Found", {"error": f"no secret {secret_id}"})
        secret = secrets[secret_id]
        secret.remove_version_stages_from_old_versions(["AWSPENDING"])
        secret.versions[token] = {"createdate": int(_time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
        secret.rotation_enabled = True
        secret.rotation_requested = True
        secret.rotation_lambda_arn = f"arn:aws:lambda:{region}:{account}:function:keyrotor-secret-rotation"
        return _json_response(start_response, "200 OK", {"secret": secret.name, "token": token})
    return _json_response(start_response, "404 Not Found", {"error": f"no control route {method} {path}"})


def _temporary_credentials_account(environ) -> str | None:
    """The account of the role whose assumed credentials signed the request, if any."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match or not match.group(1).startswith("ASIA"):
        return None
    from moto.iam.models import iam_backends

    key = match.group(1)
    for account_id, account in list(iam_backends.items()):
        if key in account["aws"].access_keys:
            return account_id
    return None


def _external_ids(document: str) -> list[str]:
    """Every ``sts:ExternalId`` a trust policy requires (StringEquals)."""
    try:
        policy = json.loads(document)
    except (TypeError, ValueError):
        return []
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    wanted = []
    for st in statements:
        for op in ("StringEquals", "StringLike"):
            value = (st.get("Condition") or {}).get(op, {}).get("sts:ExternalId")
            if isinstance(value, str):
                wanted.append(value)
            elif isinstance(value, list):
                wanted.extend(str(v) for v in value)
    return wanted


def _refused_assume_role(environ, start_response):
    """AWS's AccessDenied for an AssumeRole of a missing role or without its external id;
    None when the call may go on. Leaves the request body readable."""
    if environ.get("REQUEST_METHOD") != "POST":
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    from urllib.parse import parse_qs

    form = parse_qs(body.decode("utf-8", "replace"))
    if form.get("Action", [""])[0] != "AssumeRole":
        return None
    arn = form.get("RoleArn", [""])[0]
    external_id = form.get("ExternalId", [None])[0]
    parts = arn.split(":")
    problem = None
    if len(parts) < 6 or not re.fullmatch(r"\d{12}", parts[4]):
        problem = "is not a role ARN"
    else:
        from moto.iam.models import iam_backends

        try:
            role = iam_backends[parts[4]]["aws"].get_role_by_arn(arn)
        except Exception:  # moto's NotFound: the role does not exist
            role = None
        if role is None:
            problem = "does not exist"
        else:
            wanted = _external_ids(role.assume_role_policy_document)
            if wanted and external_id not in wanted:
                problem = "requires an sts:ExternalId the caller did not pass"
    if problem is None:
        return None
    message = f"User is not authorized to perform: sts:AssumeRole on resource: {arn} (the role {problem})"
    payload = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
        f"<Message>{message}</Message></Error><RequestId>moto-world</RequestId></ErrorResponse>"
    ).encode()
    start_response("403 Forbidden", [("Content-Type", "text/xml"), ("Content-Length", str(len(payload)))])
    return [payload]


_API_KEY_TAGS = re.compile(r"^/tags/arn:[^:]+:apigateway:([^:]+)::/apikeys/([^/]+)$")


def _api_key_tags(environ, start_response):
    """API Gateway TagResource / UntagResource on an API key (moto tags only stages):
    `PUT /tags/{arn}` with {"tags": {...}}, `DELETE /tags/{arn}?tagKeys=k`. None when the
    request is something else."""
    match = _API_KEY_TAGS.match(environ.get("PATH_INFO", ""))
    method = environ.get("REQUEST_METHOD")
    if not match or method not in ("PUT", "DELETE"):
        return None
    from urllib.parse import parse_qs

    from moto.apigateway.models import apigateway_backends

    region, key_id = match.group(1), match.group(2)
    account = environ.get("HTTP_X_MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT)
    key = apigateway_backends[account][region].keys.get(key_id)
    if key is None:
        return _json_response(start_response, "404 Not Found", {"message": f"Invalid API Key identifier specified {key_id}"})
    if key.tags is None:
        key.tags = {}
    if method == "PUT":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}")
        key.tags.update({str(k): str(v) for k, v in (body.get("tags") or {}).items()})
    else:
        for name in parse_qs(environ.get("QUERY_STRING", "")).get("tagKeys", []):
            key.tags.pop(name, None)
    start_response("204 No Content", [("Content-Length", "0")])
    return [b""]


def make_app():
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    inner = DomainDispatcherApplication(create_backend_app)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_keyrotor/"):
            return _control(environ, start_response)
        match = _ACCOUNT_PREFIX.match(path)
        if match:
            environ["PATH_INFO"] = match.group(2) or "/"
            environ["HTTP_X_MOTO_ACCOUNT_ID"] = match.group(1)
            environ.pop("RAW_URI", None)
            environ.pop("REQUEST_URI", None)
        owner = _temporary_credentials_account(environ)
        if owner is not None:
            environ["HTTP_X_MOTO_ACCOUNT_ID"] = owner
        if "/sts/aws4_request" in environ.get("HTTP_AUTHORIZATION", ""):
            refused = _refused_assume_role(environ, start_response)
            if refused is not None:
                return refused
        _local.account = environ.get("HTTP_X_MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT)
        tagged = _api_key_tags(environ, start_response)
        if tagged is not None:
            return tagged
        return inner(environ, start_response)

    return app


def _watch_parent(parent_pid: int) -> None:
    while True:
        _time.sleep(0.5)
        try:
            os.kill(parent_pid, 0)
        except OSError:
            os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    args = parser.parse_args()

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("moto_world serves loopback only")

    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    _install_clocks()
    server = make_server(args.host, args.port, make_app(), threaded=True, request_handler=MotoRequestHandler)
    port = server.socket.getsockname()[1]
    os.environ.setdefault("MOTO_PORT", str(port))
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write(str(port))
        os.replace(tmp, args.port_file)
    print(f"moto_world listening on http://{args.host}:{port}", flush=True)
    if args.parent_pid:
        threading.Thread(target=_watch_parent, args=(args.parent_pid,), daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
