"""Seed a moto_world account with N IAM users for the scale harness (scripts/scale.sh).

Every user has one access key, every second user two. A share of the users (``--due``,
default 1%) get keys created 200 days ago and never used, so a plan has work to do for
exactly those users; the rest have keys created 10 days ago.

With ``--api-keys K --usage-plans P``: K API keys spread over P usage plans, the same share
of them 200 days old and tagged ``keyrotor:secret`` (so due for rotation), the rest 10 days
old. With ``--certs C``: C imported certificates (EC P-256) expiring 1 to 365 days from now,
spread evenly. Prints a JSON summary (counts only, no secret values) on stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import urllib.request

import boto3


def move_clock(base: str, account: str, when: dt.datetime) -> None:
    body = json.dumps({"account": account, "now": when.strftime("%Y-%m-%dT%H:%M:%SZ")}).encode()
    req = urllib.request.Request(f"{base}/_keyrotor/clock", data=body, method="POST")
    urllib.request.urlopen(req, timeout=10).read()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--account", required=True)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--due", type=float, default=0.01, help="share of users with a due key")
    parser.add_argument("--now", required=True)
    parser.add_argument("--api-keys", type=int, default=0)
    parser.add_argument("--usage-plans", type=int, default=50)
    parser.add_argument("--certs", type=int, default=0)
    args = parser.parse_args()

    now = dt.datetime.fromisoformat(args.now.replace("Z", "+00:00"))
    iam = boto3.client(
        "iam",
        endpoint_url=f"{args.endpoint}/_account/{args.account}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    due_every = max(1, round(1 / args.due)) if args.due > 0 else 0
    due_users = [i for i in range(args.users) if due_every and i % due_every == 0]
    keys = 0
    for phase, when in (("due", now - dt.timedelta(days=200)), ("fresh", now - dt.timedelta(days=10))):
        move_clock(args.endpoint, args.account, when)
        for i in range(args.users):
            if (i in due_users) != (phase == "due"):
                continue
            name = f"svc-{i:05d}"
            iam.create_user(UserName=name, Path="/scale/")
            for _ in range(2 if i % 2 else 1):
                iam.create_access_key(UserName=name)
                keys += 1
    client = lambda service: boto3.client(  # noqa: E731
        service,
        endpoint_url=f"{args.endpoint}/_account/{args.account}",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    due_api_keys = 0
    if args.api_keys:
        apigw = client("apigateway")
        secrets = client("secretsmanager")
        plans = [apigw.create_usage_plan(name=f"plan-{p:02d}")["id"] for p in range(args.usage_plans)]
        for phase, when in (("due", now - dt.timedelta(days=200)), ("fresh", now - dt.timedelta(days=10))):
            move_clock(args.endpoint, args.account, when)
            for i in range(args.api_keys):
                due = bool(due_every) and i % due_every == 0
                if due != (phase == "due"):
                    continue
                tags = {"keyrotor:secret": f"scale/api-key-{i:05d}"} if due else {}
                created = apigw.create_api_key(name=f"client-{i:05d}", enabled=True, tags=tags)
                key_id = created["id"]
                apigw.create_usage_plan_key(usagePlanId=plans[i % len(plans)], keyId=key_id, keyType="API_KEY")
                if due:
                    # The bound secret, so the planner plans the rotation.
                    secrets.create_secret(
                        Name=f"scale/api-key-{i:05d}",
                        SecretString=json.dumps(
                            {
                                "apiKeyId": key_id,
                                "value": created.get("value")
                                or apigw.get_api_key(apiKey=key_id, includeValue=True)["value"],
                            }
                        ),
                        Tags=[
                            {"Key": "keyrotor:type", "Value": "apigw-api-key"},
                            {"Key": "keyrotor:api-key", "Value": f"client-{i:05d}"},
                        ],
                    )
                due_api_keys += due
    move_clock(args.endpoint, args.account, now)
    if args.certs:
        sys.path.insert(0, __file__.rsplit("/", 1)[0])
        from seed_world import make_certificate

        acm = client("acm")
        for i in range(args.certs):
            not_after = now + dt.timedelta(days=1 + i * 364 // max(1, args.certs - 1))
            cert, key = make_certificate(f"svc-{i:04d}.example.com", now - dt.timedelta(days=300), not_after, "EC_prime256v1")
            acm.import_certificate(Certificate=cert, PrivateKey=key)
    json.dump(
        {
            "users": args.users,
            "keys": keys,
            "due_users": len(due_users),
            "api_keys": args.api_keys,
            "usage_plans": args.usage_plans if args.api_keys else 0,
            "due_api_keys": due_api_keys,
            "certificates": args.certs,
        },
        sys.stdout,
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
