"""Seed a moto_world account with N IAM users for the scale harness (scripts/scale.sh).

Every user has one access key, every second user two. A share of the users (``--due``,
default 1%) get keys created 200 days ago and never used, so a plan has work to do for
exactly those users; the rest have keys created 10 days ago. Prints a JSON summary (counts
only, no secret values) on stdout.
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
    move_clock(args.endpoint, args.account, now)
    json.dump({"users": args.users, "keys": keys, "due_users": len(due_users)}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
