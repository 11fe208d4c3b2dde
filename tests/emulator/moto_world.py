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
* **a CloudTrail event history** (moto's LookupEvents finds nothing): every signed request
  the wrapper serves (not ``/_keyrotor/`` routes, not unsigned ones, not CloudTrail's own)
  is recorded in the account that served it (after the path prefix and temporary
  credentials are resolved) and the region of its SigV4 credential scope, at that
  account's clock (whole seconds, as CloudTrail). The event's source is
  ``<service>.amazonaws.com`` of the scope, its access key the scope's, its user the IAM
  user owning that key in the account (for STS credentials, the role session). Its name is
  the query protocols' ``Action``, the JSON protocols' ``X-Amz-Target`` operation, and for
  REST protocols (API Gateway, S3, ...) the operation of botocore's service model whose
  method and URI template match the request, else ``METHOD /path`` with every second path
  segment (the ids) written ``{}``. A response with status 400 or more records its error
  code (``<Code>`` of an XML body, ``__type`` or ``code`` of a JSON one, else
  ``x-amzn-ErrorType``, else the HTTP reason). ``sourceIPAddress`` is the first address of
  ``X-Forwarded-For`` when the request has one, else the peer: tests play a caller far
  away by sending that header. ``LookupEvents`` (JSON 1.1, as AWS) answers from the
  record of the account and region of the request: one lookup attribute at most,
  StartTime/EndTime, MaxResults 1-50 (default 50), an opaque NextToken tied to the
  lookup's parameters, newest first, the last 90 days of the account's clock, AWS's
  ``Invalid...Exception`` errors.
* ``POST /_keyrotor/cloudtrail-events`` with ``{"account", "region", "accessKeyId",
  "count", "eventName", "eventSource", "start", "spacingSeconds", "sourceIp",
  "userAgent", "username"}`` appends ``count`` synthetic events to that history (a key
  with 5,000 events behind it, for benchmarks): the first at ``start`` (RFC 3339; default
  ``count`` spacings before the account's clock), one every ``spacingSeconds`` (default
  60); name ``GetCallerIdentity`` and source ``sts.amazonaws.com`` unless given; the user
  owning the key unless ``username`` is given.
* **the Account API's ListRegions** (moto has none): ``us-east-1``, ``us-west-2`` and
  ``eu-west-1`` enabled by default, ``ap-east-1`` not enabled, filtered by
  ``RegionOptStatusContains`` — the regions a leaked key's investigation searches.
* ``GET /_keyrotor/health`` for start-up probes.

The process exits when its parent dies (``--parent-pid``), so a test run never leaves an
emulator behind.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import datetime as _dt
import hashlib
import io
import itertools
import json
import os
import re
import sys
import threading
import time as _time
import uuid

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
    if path == "/_keyrotor/cloudtrail-events" and method == "POST":
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            seeded = _seed_events(body)
        except (ValueError, json.JSONDecodeError) as exc:
            return _json_response(start_response, "400 Bad Request", {"error": str(exc)})
        return _json_response(start_response, "200 OK", seeded)
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


# --------------------------------------------------------------------------------------
# CloudTrail: every signed request recorded, LookupEvents answered from the record

_SCOPE = re.compile(r"Credential=([^/\s,]+)/\d{8}/([^/\s,]+)/([^/\s,]+)/aws4_request")
# AWS accepts the target with or without its namespace: botocore sends
# ``com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents``, the AWS SDK for
# Rust ``CloudTrail_20131101.LookupEvents``.
_LOOKUP_EVENTS = ("CloudTrail_20131101.LookupEvents", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents")
_READ_ONLY_PREFIXES = ("Get", "List", "Describe", "Head", "Lookup", "BatchGet", "Query", "Scan")
_ACTION_IN_QUERY = re.compile(r"(?:^|&)Action=([^&]*)")
_ACTION_IN_FORM = re.compile(rb"(?:^|&)Action=([^&]*)")
_XML_CODE = re.compile(rb"<Code>\s*([^<\s]+)\s*</Code>")
_RETENTION = _dt.timedelta(days=90)
_EPOCH = _dt.datetime(1970, 1, 1)
_MAX_RESULTS = 50
_SEED_MAX = 200_000
_ATTRIBUTE_KEYS = (
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
)



class _Event:
    """One recorded call. Slots keep a long test run's record small."""

    __slots__ = (
        "seq", "id", "time", "name", "source", "region", "account", "key", "principal", "ip", "agent", "error",
        "read_only",
    )

    def __init__(self, *, time, name, source, region, account, key, principal, ip, agent, error, read_only):
        self.seq = 0  # the global order of recording, set when stored
        self.id = str(uuid.uuid4())
        self.time = time  # naive UTC, whole seconds (as CloudTrail's eventTime)
        self.name = sys.intern(name)
        self.source = sys.intern(source)
        self.region = sys.intern(region)
        self.account = sys.intern(account)
        self.key = sys.intern(key)
        self.principal = principal  # None, or {"type", "userName", "arn"[, "roleArn"]}
        self.ip = sys.intern(ip)
        self.agent = sys.intern(agent)
        self.error = error  # None, or the error code
        self.read_only = read_only


# (account, region) -> events in the order they were recorded.
_events: dict[tuple[str, str], list[_Event]] = {}
_events_lock = threading.Lock()
_event_seq = itertools.count(1)
_sessions: dict[str, dict] = {}  # ASIA key id -> its principal (temporary keys never change hands)
_rest_routes_cache: dict[str, list | None] = {}
_rest_lock = threading.Lock()


def _clock_of(account: str) -> _dt.datetime:
    """The account's clock, naive UTC (what ``clocked_utcnow`` reads for that account)."""
    with _offsets_lock:
        offset = _offsets.get(account, _dt.timedelta(0))
    return _real_utcnow() + offset


def _served_account(environ, scope: re.Match | None) -> str:
    """The account moto serves the request in: the one the path or temporary credentials
    named, else (as moto does) the account whose IAM holds the signing key."""
    if "HTTP_X_MOTO_ACCOUNT_ID" in environ:
        return environ["HTTP_X_MOTO_ACCOUNT_ID"]
    if scope is None:
        return DEFAULT_ACCOUNT
    from moto.iam.models import get_account_id_from

    return get_account_id_from(scope.group(1))


def _is_read_only(name: str) -> bool:
    return name.startswith(_READ_ONLY_PREFIXES)


def _record(event: _Event) -> None:
    with _events_lock:
        event.seq = next(_event_seq)
        _events.setdefault((event.account, event.region), []).append(event)


def _principal(account: str, key: str) -> dict | None:
    """Who owns access key ``key`` in ``account``: the IAM user, or for STS credentials the
    role session; None when moto knows no such key there."""
    if key.startswith("ASIA"):
        cached = _sessions.get(key)
        if cached is not None:
            return cached
        from moto.sts.models import sts_backends

        try:
            role = sts_backends[account]["aws"].get_assumed_role_from_access_key(key)
        except Exception:  # an account moto has no STS backend for
            role = None
        if role is None:
            return None
        found = {
            "type": "AssumedRole",
            "userName": role.session_name,
            "arn": role.arn,
            "roleArn": role.role_arn,
        }
        _sessions[key] = found
        return found
    from moto.iam.models import iam_backends

    try:
        backend = iam_backends[account]["aws"]
    except Exception:
        return None
    access_key = backend.access_keys.get(key)
    if access_key is None or access_key.user_name is None:
        return None

    def owns(user) -> bool:
        return any(k.access_key_id == key for k in user.access_keys)

    user = backend.users.get(access_key.user_name)
    if user is None or not owns(user):  # renamed since the key was made (moto keeps the old name on the key)
        user = next((u for u in list(backend.users.values()) if owns(u)), None)
    if user is None:
        return None
    arn = getattr(user, "arn", None) or f"arn:aws:iam::{account}:user{getattr(user, 'path', '/')}{user.name}"
    return {"type": "IAMUser", "userName": user.name, "arn": arn}


def _peek_body(environ) -> bytes:
    """The request body, leaving it readable for whoever serves the request."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _rest_routes(service: str) -> list | None:
    """Every operation of botocore's model of a REST service as (method, path regex, path
    regex letting labels hold '/', query requirements, header requirements, score, name);
    None when botocore has no REST model under that signing name."""
    with _rest_lock:
        if service in _rest_routes_cache:
            return _rest_routes_cache[service]
    routes = None
    try:
        from botocore.loaders import Loader

        model = Loader().load_service_model(service, "service-2")
    except Exception:  # no model under that signing name
        model = None
    if model and model.get("metadata", {}).get("protocol") in ("rest-json", "rest-xml"):
        routes = []
        for operation, spec in model.get("operations", {}).items():
            http = spec.get("http") or {}
            path, _, query = http.get("requestUri", "/").partition("?")
            strict, lenient, literal, greedy, last = [], [], 0, 0, 0
            for label in re.finditer(r"\{([^}]+)\}", path):
                text = re.escape(path[last : label.start()])
                strict.append(text)
                lenient.append(text)
                literal += label.start() - last
                greedy += label.group(1).endswith("+")
                strict.append("(.+)" if label.group(1).endswith("+") else "([^/]+)")
                lenient.append("(.+)")
                last = label.end()
            strict.append(re.escape(path[last:]))
            lenient.append(re.escape(path[last:]))
            literal += len(path) - last
            in_query = []
            for part in filter(None, query.split("&")):
                name, has_value, value = part.partition("=")
                in_query.append((name, value if has_value else None))
            # Operations sharing a method and URI (S3's PutObject, CopyObject, UploadPart)
            # differ by the headers and query parameters they require.
            in_headers = []
            shape = model.get("shapes", {}).get((spec.get("input") or {}).get("shape", ""), {})
            for member in shape.get("required", []):
                where = shape.get("members", {}).get(member, {})
                if where.get("location") == "header":
                    in_headers.append("HTTP_" + where.get("locationName", member).upper().replace("-", "_"))
                elif where.get("location") == "querystring":
                    in_query.append((where.get("locationName", member), None))
            score = (len(in_query) + len(in_headers), literal, -greedy)
            routes.append(
                (
                    http.get("method", "GET"),
                    re.compile("".join(strict)),
                    re.compile("".join(lenient)),
                    in_query,
                    in_headers,
                    score,
                    operation,
                )
            )
    with _rest_lock:
        _rest_routes_cache[service] = routes
    return routes


def _rest_event_name(service: str, environ) -> tuple[str, bool]:
    """The operation a REST request calls, and whether it only reads."""
    method = environ.get("REQUEST_METHOD", "GET")
    path = environ.get("PATH_INFO", "/")
    routes = _rest_routes(service)
    if routes:
        from urllib.parse import parse_qs

        params = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        candidates = [path, path.rstrip("/") or "/"]
        for lenient in (False, True):  # labels holding '/' (an ARN in the path) only if nothing else fits
            best = None
            for route_method, strict_re, lenient_re, in_query, in_headers, score, operation in routes:
                regex = lenient_re if lenient else strict_re
                if route_method != method or not any(regex.fullmatch(c) for c in candidates):
                    continue
                if any(n not in params or (v is not None and v not in params[n]) for n, v in in_query):
                    continue
                if any(h not in environ for h in in_headers):
                    continue
                if best is None or score > best[0]:
                    best = (score, operation)
            if best is not None:
                return best[1], _is_read_only(best[1])
    segments = path.strip("/").split("/") if path.strip("/") else []
    template = "/" + "/".join("{}" if i % 2 else s for i, s in enumerate(segments))
    return f"{method} {template}", method in ("GET", "HEAD")


def _event_name(environ, service: str) -> tuple[str, bool]:
    """EventName and readOnly of a request: the JSON protocols' X-Amz-Target operation, the
    query protocols' Action, else the REST operation."""
    from urllib.parse import unquote_plus

    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        name = target.rsplit(".", 1)[-1]
        return name, _is_read_only(name)
    query = environ.get("QUERY_STRING", "")
    match = _ACTION_IN_QUERY.search(query)
    if match:
        name = unquote_plus(match.group(1))
        return name, _is_read_only(name)
    method = environ.get("REQUEST_METHOD", "GET")
    if method == "POST" and environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        found = _ACTION_IN_FORM.search(_peek_body(environ))
        if found:
            name = unquote_plus(found.group(1).decode("utf-8", "replace"))
            return name, _is_read_only(name)
    return _rest_event_name(service, environ)


def _error_code(status: str, headers, body: bytes) -> str:
    """The AWS error code of an error response."""
    match = _XML_CODE.search(body)
    if match:
        return match.group(1).decode("utf-8", "replace")
    try:
        document = json.loads(body) if body.strip().startswith(b"{") else None
    except ValueError:
        document = None
    if isinstance(document, dict):
        error = document.get("Error") if isinstance(document.get("Error"), dict) else {}
        code = document.get("__type") or document.get("code") or document.get("Code") or error.get("Code")
        if isinstance(code, str) and code:
            return code.rsplit("#", 1)[-1].split(":", 1)[0]
    for name, value in headers or []:
        if name.lower() == "x-amzn-errortype" and value:
            return value.split(":", 1)[0]
    reason = status[3:].strip()
    return "".join(word[:1].upper() + word[1:].lower() for word in reason.split()) or status[:3]


def _source_ip(environ) -> str:
    forwarded = environ.get("HTTP_X_FORWARDED_FOR", "")
    first = forwarded.split(",", 1)[0].strip()
    return first or environ.get("REMOTE_ADDR", "")


def _drained(result) -> list[bytes]:
    try:
        return [b"".join(result)]
    finally:
        if hasattr(result, "close"):
            result.close()


def _served_and_recorded(serve, environ, start_response, account: str, scope: re.Match) -> list[bytes]:
    """Serves the request with ``serve`` and records it as a CloudTrail event."""
    key, region, service = scope.groups()
    when = _clock_of(account).replace(microsecond=0)
    name, read_only = _event_name(environ, service)
    principal = _principal(account, key)  # before serving: the call may delete the key
    seen: dict = {}

    def recording_start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, headers
        return start_response(status, headers, exc_info)

    result = serve(environ, recording_start_response)
    drained = False
    if "status" not in seen:  # an application that starts responding only when iterated
        result, drained = _drained(result), True
    error = None
    status = seen.get("status", "500 Internal Server Error")
    if status[:3].isdigit() and int(status[:3]) >= 400:
        if not drained:
            result = _drained(result)
        error = _error_code(status, seen.get("headers"), result[0] if result else b"")
    _record(
        _Event(
            time=when,
            name=name,
            source=f"{service}.amazonaws.com",
            region=region,
            account=account,
            key=key,
            principal=principal,
            ip=_source_ip(environ),
            agent=environ.get("HTTP_USER_AGENT", ""),
            error=error,
            read_only=read_only,
        )
    )
    return result


class _CloudTrailError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _aws_json(start_response, status: str, body: dict) -> list[bytes]:
    payload = json.dumps(body).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(payload))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [payload]


def _rfc3339(value: _dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(value: _dt.datetime) -> float:
    return (value - _EPOCH).total_seconds()


def _lookup_time(request: dict, field: str) -> _dt.datetime | None:
    """StartTime / EndTime of a request: epoch seconds (as the SDKs send them) or RFC 3339."""
    value = request.get(field)
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, (int, float)):
            return _EPOCH + _dt.timedelta(seconds=value)
        parsed = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return parsed
    except (ValueError, OverflowError):
        raise _CloudTrailError("InvalidTimeRangeException", f"{field} is not a valid timestamp: {value!r}") from None


def _attribute_value(event: _Event, key: str) -> str | None:
    if key == "EventId":
        return event.id
    if key == "EventName":
        return event.name
    if key == "EventSource":
        return event.source
    if key == "AccessKeyId":
        return event.key
    if key == "Username":
        return (event.principal or {}).get("userName")
    if key == "ReadOnly":
        return "true" if event.read_only else "false"
    return None  # ResourceType, ResourceName: the record names no resources


def _cloudtrail_event(event: _Event) -> dict:
    """An event as LookupEvents returns it."""
    principal = event.principal or {}
    identity = {
        "type": principal.get("type", "Unknown"),
        "accountId": event.account,
        "accessKeyId": event.key,
    }
    if principal.get("arn"):
        identity["arn"] = principal["arn"]
    if principal.get("type") == "IAMUser":
        identity["userName"] = principal["userName"]
    elif principal.get("type") == "AssumedRole":
        role_arn = principal.get("roleArn", "")
        issuer = {"type": "Role", "arn": role_arn, "accountId": event.account, "userName": role_arn.rsplit("/", 1)[-1]}
        identity["sessionContext"] = {"sessionIssuer": issuer}
    detail = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": _rfc3339(event.time),
        "eventSource": event.source,
        "eventName": event.name,
        "awsRegion": event.region,
        "sourceIPAddress": event.ip,
        "userAgent": event.agent,
    }
    if event.error:
        detail["errorCode"] = event.error
    detail.update(
        {
            "requestParameters": None,
            "responseElements": None,
            "eventID": event.id,
            "readOnly": event.read_only,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": event.account,
            "eventCategory": "Management",
        }
    )
    out = {
        "EventId": event.id,
        "EventName": event.name,
        "ReadOnly": "true" if event.read_only else "false",
        "AccessKeyId": event.key,
        "EventTime": int(_epoch(event.time)),
        "EventSource": event.source,
    }
    if principal.get("userName"):
        out["Username"] = principal["userName"]
    out["Resources"] = []
    out["CloudTrailEvent"] = json.dumps(detail)
    return out


def _page_token(event: _Event, digest: str) -> str:
    raw = json.dumps({"t": _epoch(event.time), "s": event.seq, "q": digest}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _page_cursor(token, digest: str) -> tuple[float, int]:
    try:
        if not isinstance(token, str) or not token:
            raise ValueError
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
        cursor = (float(decoded["t"]), int(decoded["s"]))
        if decoded["q"] != digest:
            raise ValueError
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise _CloudTrailError(
            "InvalidNextTokenException",
            "Invalid NextToken, or a NextToken from a lookup with other parameters.",
        ) from None
    return cursor


def _lookup(request: dict, account: str, region: str) -> dict:
    attributes = request.get("LookupAttributes") or []
    if not isinstance(attributes, list):
        raise _CloudTrailError("InvalidLookupAttributesException", "LookupAttributes must be a list.")
    if len(attributes) > 1:
        raise _CloudTrailError(
            "InvalidLookupAttributesException", "You cannot specify more than one lookup attribute."
        )
    wanted = None
    for attribute in attributes:
        key = attribute.get("AttributeKey") if isinstance(attribute, dict) else None
        value = attribute.get("AttributeValue") if isinstance(attribute, dict) else None
        if key not in _ATTRIBUTE_KEYS:
            raise _CloudTrailError(
                "InvalidLookupAttributesException",
                f"Invalid AttributeKey {key!r}: one of {', '.join(_ATTRIBUTE_KEYS)}.",
            )
        if not isinstance(value, str) or not value:
            raise _CloudTrailError("InvalidLookupAttributesException", f"The AttributeValue of {key} is missing.")
        wanted = (key, value.lower() if key == "ReadOnly" else value)
    category = request.get("EventCategory")
    if category is not None and category != "insight":
        raise _CloudTrailError("InvalidEventCategoryException", f"Invalid EventCategory {category!r}.")
    limit = request.get("MaxResults", _MAX_RESULTS)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= _MAX_RESULTS:
        raise _CloudTrailError(
            "InvalidMaxResultsException", f"MaxResults must be between 1 and {_MAX_RESULTS}, got {limit!r}."
        )
    start, end = _lookup_time(request, "StartTime"), _lookup_time(request, "EndTime")
    if start is not None and end is not None and start > end:
        raise _CloudTrailError("InvalidTimeRangeException", "StartTime is after EndTime.")
    digest = hashlib.sha256(
        json.dumps([wanted, request.get("StartTime"), request.get("EndTime"), category]).encode()
    ).hexdigest()[:16]
    cursor = _page_cursor(request["NextToken"], digest) if request.get("NextToken") is not None else None
    if category == "insight":  # the record holds management events only
        return {"Events": []}

    floor = _clock_of(account) - _RETENTION
    if start is not None and start > floor:
        floor = start
    with _events_lock:
        recorded = list(_events.get((account, region), ()))
    matching = []
    for event in recorded:
        if event.time < floor or (end is not None and event.time > end):
            continue
        if wanted is not None:
            value = _attribute_value(event, wanted[0])
            if value is None or value != wanted[1]:
                continue
        order = (_epoch(event.time), event.seq)
        if cursor is not None and order >= cursor:
            continue
        matching.append((order, event))
    matching.sort(key=lambda pair: pair[0], reverse=True)
    page = [event for _, event in matching[:limit]]
    response: dict = {"Events": [_cloudtrail_event(event) for event in page]}
    if len(matching) > limit:
        response["NextToken"] = _page_token(page[-1], digest)
    return response


def _lookup_events(environ, start_response, account: str, region: str) -> list[bytes]:
    """CloudTrail LookupEvents (JSON 1.1) from the record of ``account`` in ``region``."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        if not isinstance(request, dict):
            raise ValueError("the request body is not a JSON object")
    except (ValueError, UnicodeDecodeError) as exc:
        return _aws_json(start_response, "400 Bad Request", {"__type": "SerializationException", "message": str(exc)})
    try:
        return _aws_json(start_response, "200 OK", _lookup(request, account, region))
    except _CloudTrailError as exc:
        return _aws_json(start_response, "400 Bad Request", {"__type": exc.code, "message": str(exc)})


def _seed_events(body: dict) -> dict:
    """``POST /_keyrotor/cloudtrail-events``: ``count`` synthetic events of one key."""
    account = str(body.get("account", DEFAULT_ACCOUNT))
    if not re.fullmatch(r"\d{12}", account):
        raise ValueError(f"account must be 12 digits, got {account!r}")
    region = body.get("region", "us-east-1")
    if not isinstance(region, str) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", region):
        raise ValueError(f"region must be a region name such as us-east-1, got {region!r}")
    key = body.get("accessKeyId")
    if not isinstance(key, str) or not re.fullmatch(r"[A-Z0-9]{16,128}", key):
        raise ValueError(f"accessKeyId must be an access key id (16 or more of A-Z, 0-9), got {key!r}")
    count = body.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= _SEED_MAX:
        raise ValueError(f"count must be an integer from 1 to {_SEED_MAX}, got {count!r}")
    spacing = body.get("spacingSeconds", 60)
    if isinstance(spacing, bool) or not isinstance(spacing, (int, float)) or not 0 <= spacing <= 86400 * 90:
        raise ValueError(f"spacingSeconds must be a number of seconds from 0 to 7776000, got {spacing!r}")
    texts = {}
    for field, default in (
        ("eventName", "GetCallerIdentity"),
        ("eventSource", "sts.amazonaws.com"),
        ("sourceIp", "127.0.0.1"),
        ("userAgent", "keyrotor-seed"),
    ):
        value = body.get(field, default)
        if not isinstance(value, str) or not value:
            raise ValueError(f"{field} must be a non-empty string, got {value!r}")
        texts[field] = value
    if "start" in body:
        try:
            start = _dt.datetime.fromisoformat(str(body["start"]).replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"start must be an RFC 3339 timestamp, got {body['start']!r}") from None
        if start.tzinfo is None:
            raise ValueError("start must carry a UTC offset (RFC 3339)")
        start = start.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    else:
        start = _clock_of(account) - _dt.timedelta(seconds=spacing * count)
    username = body.get("username")
    if username is not None and (not isinstance(username, str) or not username):
        raise ValueError(f"username must be a non-empty string, got {username!r}")
    if username is not None:
        principal = {"type": "IAMUser", "userName": username, "arn": f"arn:aws:iam::{account}:user/{username}"}
    else:
        principal = _principal(account, key)
    name = texts["eventName"]
    read_only = _is_read_only(name)
    times = [(start + _dt.timedelta(seconds=spacing * i)).replace(microsecond=0) for i in range(count)]
    events = [
        _Event(
            time=when,
            name=name,
            source=texts["eventSource"],
            region=region,
            account=account,
            key=key,
            principal=principal,
            ip=texts["sourceIp"],
            agent=texts["userAgent"],
            error=None,
            read_only=read_only,
        )
        for when in times
    ]
    with _events_lock:
        stored = _events.setdefault((account, region), [])
        for event in events:
            event.seq = next(_event_seq)
            stored.append(event)
    return {
        "account": account,
        "region": region,
        "accessKeyId": key,
        "added": count,
        "first": _rfc3339(times[0]),
        "last": _rfc3339(times[-1]),
    }


# The regions the emulated accounts have: three enabled, one opt-in region not enabled.
_REGIONS = (
    ("us-east-1", "ENABLED_BY_DEFAULT"),
    ("us-west-2", "ENABLED_BY_DEFAULT"),
    ("eu-west-1", "ENABLED_BY_DEFAULT"),
    ("ap-east-1", "DISABLED"),
)


def _list_regions(environ, start_response):
    """The Account API's ListRegions (moto has no such route): ``POST /listRegions`` signed
    for the ``account`` service, answered from ``_REGIONS`` with its ``RegionOptStatusContains``
    filter; one page. None when the request is something else."""
    if environ.get("PATH_INFO") != "/listRegions" or environ.get("REQUEST_METHOD") != "POST":
        return None
    if "/account/aws4_request" not in environ.get("HTTP_AUTHORIZATION", ""):
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        body = json.loads(raw or b"{}")
        wanted = body.get("RegionOptStatusContains") or [status for _, status in _REGIONS]
        if not isinstance(wanted, list):
            raise ValueError("RegionOptStatusContains must be a list")
    except (ValueError, AttributeError) as exc:
        return _json_response(start_response, "400 Bad Request", {"__type": "ValidationException", "message": str(exc)})
    regions = [{"RegionName": name, "RegionOptStatus": status} for name, status in _REGIONS if status in wanted]
    return _json_response(start_response, "200 OK", {"Regions": regions})


def make_app():
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    inner = DomainDispatcherApplication(create_backend_app)

    def serve(environ, start_response):
        if "/sts/aws4_request" in environ.get("HTTP_AUTHORIZATION", ""):
            refused = _refused_assume_role(environ, start_response)
            if refused is not None:
                return refused
        tagged = _api_key_tags(environ, start_response)
        if tagged is not None:
            return tagged
        regions = _list_regions(environ, start_response)
        if regions is not None:
            return regions
        return inner(environ, start_response)

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
        _local.account = environ.get("HTTP_X_MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT)
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        account = _served_account(environ, scope)
        if environ.get("HTTP_X_AMZ_TARGET") in _LOOKUP_EVENTS:
            return _lookup_events(environ, start_response, account, scope.group(2) if scope else "us-east-1")
        if scope is None or scope.group(3) == "cloudtrail":  # unsigned, or CloudTrail's own calls
            return serve(environ, start_response)
        return _served_and_recorded(serve, environ, start_response, account, scope)

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
