"""Seed a fresh moto_world account with keyrotor's sample world.

Run against a running ``moto_world.py`` emulator::

    seed_world.py --endpoint http://127.0.0.1:PORT --account 123456789012 \\
        --now 2026-11-25T00:00:00Z [--region us-east-1] [--scenario demo]

Every resource is created at its place in time: the account clock
(``POST <endpoint>/_keyrotor/clock``) is moved to the moment an event happened, events are
replayed oldest first, and the clock is set back to ``--now`` at the end. A key is marked
"used" by signing one STS ``GetCallerIdentity`` request with it (moto records the
account clock as its LastUsedDate).

stdout carries only a JSON manifest of what was created (never secret access keys or API
key values). Failures print one line on stderr: exit 1 for emulator/API errors, exit 2 for
bad arguments or an account that was already seeded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable

UTC = dt.timezone.utc
DUMMY_CREDENTIALS = ("test", "test")
SCENARIOS = ("demo",)


class SeedError(Exception):
    """An expected failure: reported as one line on stderr, exit code ``code``."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------------------
# time helpers


def parse_rfc3339(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an RFC 3339 timestamp: {text!r}") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"timestamp needs a UTC offset (e.g. 'Z'): {text!r}")
    return value.astimezone(UTC).replace(microsecond=0)


def rfc3339(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def account_id(text: str) -> str:
    if not re.fullmatch(r"\d{12}", text):
        raise argparse.ArgumentTypeError(f"account must be 12 digits, got {text!r}")
    return text


# --------------------------------------------------------------------------------------
# emulator access


class World:
    """Clients for one emulator account, plus its clock."""

    def __init__(self, endpoint: str, account: str, region: str):
        import boto3
        from botocore.config import Config

        self.base = endpoint.rstrip("/")
        self.account = account
        self.region = region
        self.account_endpoint = f"{self.base}/_account/{account}"
        self._config = Config(
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        self._session = boto3.session.Session(
            aws_access_key_id=DUMMY_CREDENTIALS[0],
            aws_secret_access_key=DUMMY_CREDENTIALS[1],
            region_name=region,
        )
        self.iam = self.client("iam")
        self.apigw = self.client("apigateway")
        self.secrets = self.client("secretsmanager")
        self.acm = self.client("acm")
        self.clock_moved = False

    def client(self, service: str, key_id: str | None = None, secret: str | None = None):
        kwargs: dict[str, Any] = {}
        if key_id is not None:
            kwargs = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
        return self._session.client(
            service, endpoint_url=self.account_endpoint, config=self._config, **kwargs
        )

    def set_clock(self, when: dt.datetime) -> None:
        body = json.dumps({"account": self.account, "now": rfc3339(when)}).encode()
        request = urllib.request.Request(
            f"{self.base}/_keyrotor/clock",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()
            raise SeedError(f"HTTP {exc.code} from {self.base}/_keyrotor/clock: {detail}") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ConnectionRefusedError):
                raise SeedError(self.not_running()) from exc
            raise SeedError(f"cannot reach {self.base}/_keyrotor/clock: {exc.reason}") from exc
        self.clock_moved = True

    def not_running(self) -> str:
        return f"the emulator isn't running at {self.base} (connection refused)"

    def use_key(self, key_id: str, secret: str) -> None:
        """Sign one request with the key; moto records it as used at the account clock."""
        self.client("sts", key_id, secret).get_caller_identity()


def _connection_refused(exc: BaseException) -> bool:
    """Whether a botocore connection error was caused by a refused TCP connection."""
    seen: set[int] = set()
    pending: list[Any] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or "connection refused" in str(current).lower():
            return True
        pending.extend([getattr(current, "kwargs", {}).get("error"), current.__cause__, current.__context__])
    return False


def run_step(world: World, step: str, action: Callable[[], Any]) -> Any:
    """Run one API step, turning any boto/HTTP failure into a one-line SeedError."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
    )

    try:
        return action()
    except SeedError as exc:
        raise SeedError(f"{step}: {exc}", exc.code) from exc
    except EndpointConnectionError as exc:
        if _connection_refused(exc):
            raise SeedError(f"{step}: {world.not_running()}") from exc
        raise SeedError(f"{step}: cannot reach {world.base}: {exc}") from exc
    except ConnectTimeoutError as exc:
        raise SeedError(f"{step}: timed out connecting to {world.base}") from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        message = " ".join(str(error.get("Message", "")).split())
        raise SeedError(f"{step}: {code}: {message}".rstrip(": ")) from exc
    except BotoCoreError as exc:
        raise SeedError(f"{step}: {' '.join(str(exc).split())}") from exc


# --------------------------------------------------------------------------------------
# certificates


def make_certificate(domain: str, not_before: dt.datetime, not_after: dt.datetime, key_type: str) -> tuple[bytes, bytes]:
    """A self-signed certificate for ``domain`` and its private key, both PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    if key_type == "RSA_2048":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif key_type == "EC_prime256v1":
        key = ec.generate_private_key(ec.SECP256R1())
    else:
        raise ValueError(f"unsupported key type {key_type}")
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, domain),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "keyrotor demo"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
    return cert_pem, key_pem


# --------------------------------------------------------------------------------------
# the demo scenario


@dataclass
class Event:
    days_ago: int
    step: str
    action: Callable[[], None]


@dataclass
class Seeded:
    users: list[str] = field(default_factory=list)  # names, in declaration order
    access_keys: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (id, secret)
    usage_plans: dict[str, str] = field(default_factory=dict)  # name -> id
    api_keys: dict[str, str] = field(default_factory=dict)  # name -> id
    secrets: list[str] = field(default_factory=list)  # ARNs
    certificates: list[str] = field(default_factory=list)  # ARNs


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def demo_events(world: World, now: dt.datetime, seeded: Seeded) -> list[Event]:
    account = world.account
    iam, apigw, secrets, acm = world.iam, world.apigw, world.secrets, world.acm
    events: list[Event] = []

    def at(days_ago: int, step: str, action: Callable[[], None]) -> None:
        events.append(Event(days_ago, step, action))

    # ---- IAM -------------------------------------------------------------------------

    def create_user(name: str, path: str, tags: dict[str, str]) -> Callable[[], None]:
        def action() -> None:
            kwargs: dict[str, Any] = {"UserName": name, "Path": path}
            if tags:
                kwargs["Tags"] = tag_list(tags)
            iam.create_user(**kwargs)

        return action

    def create_key(user: str, label: str) -> Callable[[], None]:
        def action() -> None:
            key = iam.create_access_key(UserName=user)["AccessKey"]
            seeded.access_keys[label] = (key["AccessKeyId"], key["SecretAccessKey"])

        return action

    def use_key(label: str) -> Callable[[], None]:
        return lambda: world.use_key(*seeded.access_keys[label])

    def deactivate_key(user: str, label: str) -> Callable[[], None]:
        return lambda: iam.update_access_key(
            UserName=user, AccessKeyId=seeded.access_keys[label][0], Status="Inactive"
        )

    def owner(user: str) -> dict[str, str]:
        return {"owner": f"{user}-team@example.com"}

    exempt_until = (now + dt.timedelta(days=60)).date().isoformat()
    exempt_expired = (now - dt.timedelta(days=10)).date().isoformat()

    # (name, path, tags, [(label, created_days_ago, used_days_ago or None)])
    users: list[tuple[str, str, dict[str, str], list[tuple[str, int, int | None]]]] = [
        ("alice", "/apps/", owner("alice"), [("alice", 10, 1)]),
        ("bob", "/apps/", owner("bob"), [("bob", 120, 2)]),
        ("carol", "/apps/", owner("carol"), [("carol", 200, 60)]),
        ("dave", "/apps/", owner("dave"), [("dave", 50, None)]),
        ("erin", "/apps/", {**owner("erin"), "keyrotor:exempt": exempt_until}, [("erin", 150, None)]),
        ("frank", "/apps/", {**owner("frank"), "keyrotor:exempt": exempt_expired}, [("frank", 100, 100)]),
        ("breakglass-admin", "/", {}, [("breakglass-admin", 300, None)]),
        ("grace", "/apps/", owner("grace"), [("grace-A", 100, 80), ("grace-B", 5, 1)]),
        (
            "heidi",
            "/apps/",
            {**owner("heidi"), "keyrotor:migrate-to": f"arn:aws:iam::{account}:role/ci-runner"},
            [("heidi", 30, 1)],
        ),
        ("ci-deployer", "/service/", owner("ci-deployer"), [("ci-deployer", 80, 1)]),
        ("no-keys", "/apps/", owner("no-keys"), []),
    ]
    seeded.users.extend(u[0] for u in users)  # manifest order: as declared
    for name, path, tags, keys in users:
        # A user appears when its first key is issued (no-keys: some weeks ago).
        created = max((k[1] for k in keys), default=45)
        at(created, f"create IAM user {name}", create_user(name, path, tags))
        for label, created_days, used_days in keys:
            at(created_days, f"create access key for {name} ({label})", create_key(name, label))
            if used_days is not None:
                at(used_days, f"use access key of {name} ({label})", use_key(label))
    # heidi's permissions, copied to her role when she is migrated.
    at(
        30,
        "give heidi her CI permissions",
        lambda: iam.put_user_policy(
            UserName="heidi",
            PolicyName="ci-artifacts",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": "arn:aws:s3:::ci-artifacts/*"}],
                }
            ),
        ),
    )
    # grace's old key A was retired right after its last use.
    at(80, "deactivate access key of grace (grace-A)", deactivate_key("grace", "grace-A"))

    def store_ci_deployer_secret() -> None:
        key_id, secret = seeded.access_keys["ci-deployer"]
        arn = secrets.create_secret(
            Name="keyrotor/iam/ci-deployer",
            SecretString=json.dumps(
                {"userName": "ci-deployer", "accessKeyId": key_id, "secretAccessKey": secret}
            ),
            Tags=tag_list({"keyrotor:type": "iam-access-key", **owner("ci-deployer")}),
        )["ARN"]
        seeded.secrets.append(arn)
        # The other half of the binding: the user names the secret that may hold its keys.
        iam.tag_user(UserName="ci-deployer", Tags=[{"Key": "keyrotor:secret", "Value": arn}])

    at(80, "create secret keyrotor/iam/ci-deployer", store_ci_deployer_secret)

    # ---- API Gateway -----------------------------------------------------------------

    plans = ("partner-gold", "partner-silver", "internal")

    def create_plans() -> None:
        for plan in plans:
            seeded.usage_plans[plan] = apigw.create_usage_plan(
                name=plan, description=f"keyrotor demo usage plan {plan}"
            )["id"]

    api_keys: list[tuple[str, int, dict[str, str], list[str], bool]] = [
        # (name, created_days_ago, tags, usage plans, store value in a secret)
        (
            "partner-acme",
            100,
            {"keyrotor:secret": "keyrotor/apikeys/partner-acme", "owner": "acme-integration@example.com"},
            ["partner-gold", "internal"],
            True,
        ),
        (
            "partner-globex",
            20,
            {"keyrotor:secret": "keyrotor/apikeys/partner-globex", "owner": "globex-integration@example.com"},
            ["partner-gold"],
            True,
        ),
        ("legacy-mobile", 400, {"owner": "mobile-team@example.com"}, ["partner-silver"], False),
        (
            "partner-initech",
            95,
            {"keyrotor:secret": "keyrotor/apikeys/partner-initech", "owner": "initech-integration@example.com"},
            ["partner-silver"],
            False,  # the referenced secret deliberately does not exist
        ),
    ]
    oldest = max([k[1] for k in api_keys] + [e.days_ago for e in events])
    at(oldest, "create API Gateway usage plans", create_plans)

    def create_api_key(name: str, tags: dict[str, str], in_plans: list[str], store: bool) -> Callable[[], None]:
        def action() -> None:
            key_id = apigw.create_api_key(name=name, enabled=True, tags=tags)["id"]
            seeded.api_keys[name] = key_id
            for plan in in_plans:
                apigw.create_usage_plan_key(usagePlanId=seeded.usage_plans[plan], keyId=key_id, keyType="API_KEY")
            if store:
                value = apigw.get_api_key(apiKey=key_id, includeValue=True)["value"]
                arn = secrets.create_secret(
                    Name=tags["keyrotor:secret"],
                    SecretString=json.dumps({"apiKeyId": key_id, "value": value}),
                    # keyrotor:api-key: the secret agrees to hold this key (the binding's
                    # other half; the key's keyrotor:secret names the secret).
                    Tags=tag_list(
                        {"keyrotor:type": "apigw-api-key", "keyrotor:api-key": name, "owner": tags["owner"]}
                    ),
                )["ARN"]
                seeded.secrets.append(arn)

        return action

    for name, *_ in api_keys:
        seeded.api_keys[name] = ""  # manifest order: as declared; id filled in on creation
    for name, days, tags, in_plans, store in api_keys:
        at(days, f"create API key {name}", create_api_key(name, tags, in_plans, store))

    # ---- ACM -------------------------------------------------------------------------

    # (domain, not_before days ago, not_after days from now (negative: past), key type)
    certificates = [
        ("api.example.com", 300, 3, "RSA_2048"),
        ("shop.example.com", 100, 20, "RSA_2048"),
        ("www.example.com", 165, 200, "EC_prime256v1"),
        ("old.example.com", 367, -2, "RSA_2048"),
    ]

    def import_cert(domain: str, not_before: dt.datetime, not_after: dt.datetime, key_type: str) -> Callable[[], None]:
        def action() -> None:
            cert_pem, key_pem = make_certificate(domain, not_before, not_after, key_type)
            arn = acm.import_certificate(
                Certificate=cert_pem,
                PrivateKey=key_pem,
                Tags=tag_list({"owner": "web-team@example.com"}),
            )["CertificateArn"]
            seeded.certificates.append(arn)

        return action

    for domain, before_days, after_days, key_type in certificates:
        not_before = now - dt.timedelta(days=before_days)
        not_after = now + dt.timedelta(days=after_days)
        # Imported a day after issue, while it was valid (ACM refuses expired certificates).
        at(before_days - 1, f"import certificate {domain}", import_cert(domain, not_before, not_after, key_type))

    return events


def replay(world: World, now: dt.datetime, events: list[Event]) -> None:
    # Oldest first; events on the same day keep their declared order. The clock is moved
    # once per day, so within a day later events never get earlier timestamps.
    ordered = sorted(enumerate(events), key=lambda pair: (-pair[1].days_ago, pair[0]))
    current: int | None = None
    for _, event in ordered:
        if event.days_ago != current:
            when = now - dt.timedelta(days=event.days_ago)
            run_step(world, f"set account clock to {rfc3339(when)}", lambda: world.set_clock(when))
            current = event.days_ago
        run_step(world, event.step, event.action)


# --------------------------------------------------------------------------------------
# manifest (read back from the emulator)


def tags_dict(tags: Any) -> dict[str, str]:
    if not tags:
        return {}
    if isinstance(tags, dict):
        return dict(sorted(tags.items()))
    return dict(sorted((t["Key"], t["Value"]) for t in tags))


def build_manifest(world: World, seeded: Seeded) -> dict[str, Any]:
    iam, apigw, secrets, acm = world.iam, world.apigw, world.secrets, world.acm

    users = []
    for name in seeded.users:
        user = run_step(world, f"read IAM user {name}", lambda: iam.get_user(UserName=name)["User"])
        tags = run_step(world, f"read tags of IAM user {name}", lambda: iam.list_user_tags(UserName=name)["Tags"])
        keys = run_step(
            world,
            f"list access keys of {name}",
            lambda: iam.list_access_keys(UserName=name)["AccessKeyMetadata"],
        )
        key_entries = []
        for key in sorted(keys, key=lambda k: k["CreateDate"]):
            key_id = key["AccessKeyId"]
            last = run_step(
                world,
                f"read last use of access key {key_id}",
                lambda: iam.get_access_key_last_used(AccessKeyId=key_id).get("AccessKeyLastUsed", {}),
            )
            key_entries.append(
                {
                    "access_key_id": key_id,
                    "status": key["Status"],
                    "created": rfc3339(key["CreateDate"]),
                    "last_used": rfc3339(last.get("LastUsedDate")),
                }
            )
        users.append(
            {"name": name, "path": user["Path"], "tags": tags_dict(tags), "keys": key_entries}
        )

    api_keys = []
    for name, key_id in seeded.api_keys.items():
        key = run_step(world, f"read API key {name}", lambda: apigw.get_api_key(apiKey=key_id, includeValue=False))
        plans = run_step(world, f"read usage plans of API key {name}", lambda: apigw.get_usage_plans(keyId=key_id)["items"])
        api_keys.append(
            {
                "id": key["id"],
                "name": key.get("name"),
                "enabled": key.get("enabled"),
                "created": rfc3339(key.get("createdDate")),
                "tags": tags_dict(key.get("tags")),
                "usage_plan_ids": sorted(p["id"] for p in plans),
            }
        )

    usage_plans = [{"id": plan_id, "name": name} for name, plan_id in seeded.usage_plans.items()]

    secret_entries = []
    for arn in seeded.secrets:
        secret = run_step(world, f"describe secret {arn}", lambda: secrets.describe_secret(SecretId=arn))
        secret_entries.append({"name": secret["Name"], "arn": secret["ARN"], "tags": tags_dict(secret.get("Tags"))})

    cert_entries = []
    for arn in seeded.certificates:
        cert = run_step(world, f"describe certificate {arn}", lambda: acm.describe_certificate(CertificateArn=arn)["Certificate"])
        cert_entries.append(
            {
                "arn": cert["CertificateArn"],
                "domain": cert["DomainName"],
                "not_after": rfc3339(cert.get("NotAfter")),
                "region": world.region,
            }
        )

    return {
        "users": users,
        "api_keys": api_keys,
        "usage_plans": usage_plans,
        "secrets": secret_entries,
        "certificates": cert_entries,
    }


# --------------------------------------------------------------------------------------


def ensure_fresh(world: World) -> None:
    from botocore.exceptions import ClientError

    def probe() -> bool:
        try:
            world.iam.get_user(UserName="alice")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return False
            raise
        return True

    if run_step(world, "check that the account is fresh", probe):
        raise SeedError(
            f"account {world.account} already has IAM user 'alice': it is already seeded; use a fresh account",
            code=2,
        )


def seed(args: argparse.Namespace) -> dict[str, Any]:
    world = World(args.endpoint, args.account, args.region)
    ensure_fresh(world)
    seeded = Seeded()
    try:
        replay(world, args.now, demo_events(world, args.now, seeded))
        run_step(world, f"set account clock back to {rfc3339(args.now)}", lambda: world.set_clock(args.now))
    except SeedError:
        if world.clock_moved:
            try:
                world.set_clock(args.now)
            except SeedError:
                pass
        raise
    return build_manifest(world, seeded)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="emulator base URL, e.g. http://127.0.0.1:4566")
    parser.add_argument("--account", required=True, type=account_id, help="12-digit account id")
    parser.add_argument("--now", required=True, type=parse_rfc3339, help="the world's present, RFC 3339")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--scenario", default="demo", choices=SCENARIOS)
    args = parser.parse_args(argv)
    if not re.match(r"^https?://", args.endpoint):
        parser.error(f"--endpoint must be an http(s) URL, got {args.endpoint!r}")

    try:
        manifest = seed(args)
    except SeedError as exc:
        print(f"seed_world: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("seed_world: interrupted", file=sys.stderr)
        return 130
    json.dump(manifest, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
