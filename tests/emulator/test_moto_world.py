"""Tests of moto_world.py itself: the CloudTrail record and LookupEvents.

Run from the repository root::

    .venv/bin/python -m unittest discover -s tests/emulator -p 'test_*.py'

One wrapper is served in this process on a free loopback port, as ``main()`` serves it;
every test works in an account of its own.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import logging
import os
import sys
import threading
import unittest
import urllib.error
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moto_world  # noqa: E402

UTC = dt.timezone.utc
REGION = "us-east-1"
_accounts = itertools.count(1)
_server = None
_base = ""


def setUpModule() -> None:
    global _server, _base
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    moto_world._install_clocks()
    _server = make_server("127.0.0.1", 0, moto_world.make_app(), threaded=True, request_handler=MotoRequestHandler)
    _base = f"http://127.0.0.1:{_server.socket.getsockname()[1]}"
    threading.Thread(target=_server.serve_forever, daemon=True).start()


def tearDownModule() -> None:
    _server.shutdown()
    _server.server_close()


def new_account() -> str:
    return f"{900000000000 + os.getpid() % 1000 * 1000 + next(_accounts):012d}"


def client(service: str, account: str, key: str = "test", secret: str = "test", region: str = REGION, **config):
    return boto3.client(
        service,
        endpoint_url=f"{_base}/_account/{account}",
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, **config),
    )


def control(path: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{_base}/_keyrotor/{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def user_with_key(account: str, name: str = "alice") -> tuple[str, str]:
    iam = client("iam", account)
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def every_event(trail, **lookup) -> list[dict]:
    """Every page of a lookup, in the order served."""
    events, token = [], None
    while True:
        page = trail.lookup_events(**lookup, **({"NextToken": token} if token else {}))
        events.extend(page["Events"])
        token = page.get("NextToken")
        if not token:
            return events


def by_key(key: str) -> dict:
    return {"LookupAttributes": [{"AttributeKey": "AccessKeyId", "AttributeValue": key}]}


def rfc3339(value: dt.datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RecordTest(unittest.TestCase):
    def test_calls_signed_with_a_users_key_are_found_by_that_key(self):
        account = new_account()
        key, secret = user_with_key(account)

        def from_far_away(request, **_):
            request.headers["X-Forwarded-For"] = "203.0.113.9, 10.0.0.1"

        sts = client("sts", account, key, secret, user_agent_extra="leak-test/1")
        sts.meta.events.register("before-send.sts.GetCallerIdentity", from_far_away)
        sts.get_caller_identity()
        iam = client("iam", account, key, secret, region="us-east-1")
        with self.assertRaises(ClientError) as failed:
            iam.get_user(UserName="nobody")
        self.assertEqual(failed.exception.response["Error"]["Code"], "NoSuchEntity")
        apigateway = client("apigateway", account, key, secret)
        api_key = apigateway.create_api_key(name="k", enabled=True)["id"]
        apigateway.get_api_key(apiKey=api_key)

        events = every_event(client("cloudtrail", account, key, secret), **by_key(key))
        self.assertEqual(
            [(e["EventName"], e["EventSource"], e["ReadOnly"]) for e in events],
            [
                ("GetApiKey", "apigateway.amazonaws.com", "true"),
                ("CreateApiKey", "apigateway.amazonaws.com", "false"),
                ("GetUser", "iam.amazonaws.com", "true"),
                ("GetCallerIdentity", "sts.amazonaws.com", "true"),
            ],
        )
        for event in events:
            self.assertEqual(event["AccessKeyId"], key)
            self.assertEqual(event["Username"], "alice")
            self.assertEqual(event["Resources"], [])
        detail = {e["EventName"]: json.loads(e["CloudTrailEvent"]) for e in events}
        sts_call = detail["GetCallerIdentity"]
        self.assertEqual(sts_call["sourceIPAddress"], "203.0.113.9")
        self.assertIn("leak-test/1", sts_call["userAgent"])
        self.assertEqual(sts_call["awsRegion"], REGION)
        self.assertEqual(sts_call["eventType"], "AwsApiCall")
        self.assertIs(sts_call["readOnly"], True)
        self.assertEqual(sts_call["recipientAccountId"], account)
        self.assertEqual(
            sts_call["userIdentity"],
            {
                "type": "IAMUser",
                "accountId": account,
                "accessKeyId": key,
                "arn": f"arn:aws:iam::{account}:user/alice",
                "userName": "alice",
            },
        )
        self.assertNotIn("errorCode", sts_call)
        self.assertEqual(detail["GetUser"]["errorCode"], "NoSuchEntity")
        self.assertEqual(detail["GetUser"]["sourceIPAddress"], "127.0.0.1")
        self.assertEqual(detail["CreateApiKey"]["readOnly"], False)

    def test_assumed_role_calls_are_recorded_in_the_roles_account_with_the_session(self):
        caller, member = new_account(), new_account()
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{caller}:root"}, "Action": "sts:AssumeRole"}
            ],
        }
        role = client("iam", member).create_role(RoleName="auditor", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        issued = client("sts", caller).assume_role(RoleArn=role["Arn"], RoleSessionName="keyrotor-probe")["Credentials"]
        temporary = boto3.client(
            "iam",
            endpoint_url=f"{_base}/_account/{caller}",
            region_name=REGION,
            aws_access_key_id=issued["AccessKeyId"],
            aws_secret_access_key=issued["SecretAccessKey"],
            aws_session_token=issued["SessionToken"],
        )
        temporary.list_users()
        [event] = every_event(client("cloudtrail", member), **by_key(issued["AccessKeyId"]))
        self.assertEqual((event["EventName"], event["Username"]), ("ListUsers", "keyrotor-probe"))
        identity = json.loads(event["CloudTrailEvent"])["userIdentity"]
        self.assertEqual(identity["type"], "AssumedRole")
        self.assertEqual(identity["sessionContext"]["sessionIssuer"]["arn"], role["Arn"])
        self.assertEqual(every_event(client("cloudtrail", caller), **by_key(issued["AccessKeyId"])), [])

    def test_rest_calls_are_named_after_their_operation(self):
        account = new_account()
        apigateway = client("apigateway", account)
        api_key = apigateway.create_api_key(name="k", enabled=True)["id"]
        arn = f"arn:aws:apigateway:{REGION}::/apikeys/{api_key}"
        apigateway.tag_resource(resourceArn=arn, tags={"owner": "keyrotor"})
        disable = [{"op": "replace", "path": "/enabled", "value": "false"}]
        apigateway.update_api_key(apiKey=api_key, patchOperations=disable)
        apigateway.delete_api_key(apiKey=api_key)
        s3 = client("s3", account)
        s3.create_bucket(Bucket="keyrotor-records")
        s3.put_object(Bucket="keyrotor-records", Key="a/b.json", Body=b"{}")
        s3.copy_object(Bucket="keyrotor-records", Key="a/c.json", CopySource="keyrotor-records/a/b.json")
        with self.assertRaises(ClientError):
            s3.head_object(Bucket="keyrotor-records", Key="missing")
        events = list(reversed(every_event(client("cloudtrail", account))))
        self.assertEqual(
            [(e["EventName"], e["ReadOnly"], json.loads(e["CloudTrailEvent"]).get("errorCode")) for e in events],
            [
                ("CreateApiKey", "false", None),
                ("TagResource", "false", None),
                ("UpdateApiKey", "false", None),
                ("DeleteApiKey", "false", None),
                ("CreateBucket", "false", None),
                ("PutObject", "false", None),
                ("CopyObject", "false", None),
                ("HeadObject", "true", "NotFound"),
            ],
        )

    def test_events_are_kept_per_region_of_the_signature(self):
        account = new_account()
        key, secret = user_with_key(account)
        client("sts", account, key, secret, region="eu-west-1").get_caller_identity()
        west = every_event(client("cloudtrail", account, key, secret, region="eu-west-1"), **by_key(key))
        east = every_event(client("cloudtrail", account, key, secret), **by_key(key))
        self.assertEqual([e["EventName"] for e in west], ["GetCallerIdentity"])
        self.assertEqual(json.loads(west[0]["CloudTrailEvent"])["awsRegion"], "eu-west-1")
        self.assertEqual(east, [])

    def test_paging_returns_every_event_once_newest_first(self):
        account = new_account()
        key, secret = user_with_key(account)
        iam = client("iam", account, key, secret)
        calls = [
            iam.list_users,
            iam.list_roles,
            iam.list_groups,
            iam.list_policies,
            iam.get_account_summary,
            client("sts", account, key, secret).get_caller_identity,
            iam.list_access_keys,
        ]
        for call in calls:
            call()
        trail = client("cloudtrail", account, key, secret)
        pages, token = [], None
        while True:
            page = trail.lookup_events(MaxResults=2, **by_key(key), **({"NextToken": token} if token else {}))
            pages.append(page["Events"])
            token = page.get("NextToken")
            if not token:
                break
        self.assertEqual([len(p) for p in pages], [2, 2, 2, 1])
        events = [e for p in pages for e in p]
        self.assertEqual(len({e["EventId"] for e in events}), len(calls))
        self.assertEqual(
            [e["EventName"] for e in events],
            [
                "ListAccessKeys",
                "GetCallerIdentity",
                "GetAccountSummary",
                "ListPolicies",
                "ListGroups",
                "ListRoles",
                "ListUsers",
            ],
        )
        times = [e["EventTime"] for e in events]
        self.assertEqual(times, sorted(times, reverse=True))

    def test_concurrent_calls_are_each_recorded_once(self):
        account = new_account()
        key, secret = user_with_key(account)

        def calls():
            sts = client("sts", account, key, secret)
            for _ in range(40):
                sts.get_caller_identity()

        threads = [threading.Thread(target=calls) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        events = every_event(client("cloudtrail", account), **by_key(key))
        self.assertEqual(len(events), 200)
        self.assertEqual(len({e["EventId"] for e in events}), 200)

    def test_the_account_clock_sets_event_time(self):
        account = new_account()
        key, secret = user_with_key(account)
        moved = dt.datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
        self.assertEqual(control("clock", {"account": account, "now": rfc3339(moved)})[0], 200)
        client("sts", account, key, secret).get_caller_identity()
        [event] = every_event(client("cloudtrail", account, key, secret), **by_key(key))
        self.assertLess(abs((event["EventTime"] - moved).total_seconds()), 30)
        self.assertTrue(json.loads(event["CloudTrailEvent"])["eventTime"].startswith("2027-03-01T12:0"))

    def test_other_accounts_do_not_see_the_events(self):
        account, other = new_account(), new_account()
        key, secret = user_with_key(account)
        client("sts", account, key, secret).get_caller_identity()
        self.assertEqual(len(every_event(client("cloudtrail", account), **by_key(key))), 1)
        self.assertEqual(every_event(client("cloudtrail", other), **by_key(key)), [])
        self.assertEqual(every_event(client("cloudtrail", other)), [])

    def test_lookup_events_and_unsigned_requests_are_not_recorded(self):
        account = new_account()
        key, secret = user_with_key(account)
        trail = client("cloudtrail", account, key, secret)
        for _ in range(3):
            trail.lookup_events()
        unsigned = urllib.request.Request(
            f"{_base}/_account/{account}/",
            data=b"Action=GetCallerIdentity&Version=2011-06-15",
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            urllib.request.urlopen(unsigned).read()
        except urllib.error.HTTPError:
            pass
        names = [e["EventName"] for e in every_event(trail)]
        self.assertEqual(names, ["CreateAccessKey", "CreateUser"])  # the set-up, signed with "test"
        self.assertEqual(
            every_event(
                trail,
                LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "cloudtrail.amazonaws.com"}],
            ),
            [],
        )


class LookupTest(unittest.TestCase):
    def test_time_range_and_ninety_days(self):
        account = new_account()
        now = dt.datetime(2027, 6, 1, tzinfo=UTC)
        control("clock", {"account": account, "now": rfc3339(now)})
        key = "AKIAEXAMPLE000000001"
        status, seeded = control(
            "cloudtrail-events",
            {
                "account": account,
                "accessKeyId": key,
                "count": 10,
                "start": rfc3339(now - dt.timedelta(hours=10)),
                "spacingSeconds": 3600,
            },
        )
        self.assertEqual(status, 200, seeded)
        control(
            "cloudtrail-events",
            {"account": account, "accessKeyId": key, "count": 3, "start": rfc3339(now - dt.timedelta(days=100))},
        )
        trail = client("cloudtrail", account)
        self.assertEqual(len(every_event(trail, **by_key(key))), 10)  # not the ones 100 days old
        window = every_event(
            trail,
            StartTime=now - dt.timedelta(hours=8),
            EndTime=now - dt.timedelta(hours=5),
            **by_key(key),
        )
        self.assertEqual(
            [e["EventTime"] for e in window],
            [now - dt.timedelta(hours=h) for h in (5, 6, 7, 8)],
        )
        self.assertEqual(len(every_event(trail, StartTime=now - dt.timedelta(hours=3), **by_key(key))), 3)
        self.assertEqual(len(every_event(trail, EndTime=now - dt.timedelta(hours=9), **by_key(key))), 2)

    def test_seeding_adds_events(self):
        account = new_account()
        key, _ = user_with_key(account, "bob")
        status, seeded = control(
            "cloudtrail-events",
            {
                "account": account,
                "region": "eu-central-1",
                "accessKeyId": key,
                "count": 120,
                "eventName": "ListBuckets",
                "eventSource": "s3.amazonaws.com",
                "spacingSeconds": 30,
                "sourceIp": "198.51.100.4",
                "userAgent": "curl/8",
            },
        )
        self.assertEqual(status, 200, seeded)
        self.assertEqual(seeded["added"], 120)
        events = every_event(client("cloudtrail", account, region="eu-central-1"), **by_key(key))
        self.assertEqual(len(events), 120)
        self.assertEqual({e["EventName"] for e in events}, {"ListBuckets"})
        self.assertEqual({e["Username"] for e in events}, {"bob"})
        detail = json.loads(events[0]["CloudTrailEvent"])
        self.assertEqual(
            (detail["sourceIPAddress"], detail["userAgent"], detail["readOnly"]), ("198.51.100.4", "curl/8", True)
        )
        self.assertEqual(events[0]["EventTime"] - events[1]["EventTime"], dt.timedelta(seconds=30))

    def test_seeding_validates_like_the_clock_route(self):
        good = {"account": new_account(), "accessKeyId": "AKIAEXAMPLE000000002", "count": 1}
        for field, value in (
            ("account", "12"),
            ("accessKeyId", "not a key"),
            ("count", 0),
            ("count", "5"),
            ("start", "yesterday"),
            ("start", "2027-01-01T00:00:00"),
            ("spacingSeconds", -1),
            ("region", "mars"),
            ("eventName", ""),
        ):
            status, body = control("cloudtrail-events", {**good, field: value})
            self.assertEqual(status, 400, (field, value))
            self.assertIn(field, body["error"])
        status, body = control("cloudtrail-events", {k: v for k, v in good.items() if k != "count"})
        self.assertEqual(status, 400)
        self.assertIn("count", body["error"])

    def test_the_aws_errors(self):
        account = new_account()
        key = "AKIAEXAMPLE000000003"
        control("cloudtrail-events", {"account": account, "accessKeyId": key, "count": 5})
        trail = client("cloudtrail", account, parameter_validation=False)

        def code(**lookup) -> str:
            with self.assertRaises(ClientError) as failed:
                trail.lookup_events(**lookup)
            self.assertEqual(failed.exception.response["ResponseMetadata"]["HTTPStatusCode"], 400)
            return failed.exception.response["Error"]["Code"]

        self.assertEqual(code(MaxResults=0), "InvalidMaxResultsException")
        self.assertEqual(code(MaxResults=51), "InvalidMaxResultsException")
        self.assertEqual(code(NextToken="not-a-token"), "InvalidNextTokenException")
        page = trail.lookup_events(MaxResults=2, **by_key(key))
        self.assertEqual(code(NextToken=page["NextToken"]), "InvalidNextTokenException")  # other parameters
        self.assertEqual(len(trail.lookup_events(NextToken=page["NextToken"], **by_key(key))["Events"]), 3)
        self.assertEqual(
            code(
                LookupAttributes=[
                    {"AttributeKey": "AccessKeyId", "AttributeValue": key},
                    {"AttributeKey": "EventName", "AttributeValue": "GetCallerIdentity"},
                ]
            ),
            "InvalidLookupAttributesException",
        )
        self.assertEqual(
            code(LookupAttributes=[{"AttributeKey": "Colour", "AttributeValue": "x"}]), "InvalidLookupAttributesException"
        )
        later = dt.datetime(2027, 1, 2, tzinfo=UTC)
        self.assertEqual(code(StartTime=later, EndTime=later - dt.timedelta(days=1)), "InvalidTimeRangeException")

    def test_every_lookup_attribute(self):
        account = new_account()
        key, secret = user_with_key(account, "carol")
        client("sts", account, key, secret).get_caller_identity()
        client("iam", account, key, secret).create_group(GroupName="g")
        trail = client("cloudtrail", account)
        [mine] = every_event(trail, LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateGroup"}])
        for attribute, value, names in (
            ("Username", "carol", ["CreateGroup", "GetCallerIdentity"]),
            ("EventSource", "sts.amazonaws.com", ["GetCallerIdentity"]),
            ("ReadOnly", "false", ["CreateGroup", "CreateAccessKey", "CreateUser"]),
            ("EventId", mine["EventId"], ["CreateGroup"]),
            ("ResourceName", "g", []),
        ):
            found = every_event(trail, LookupAttributes=[{"AttributeKey": attribute, "AttributeValue": value}])
            self.assertEqual([e["EventName"] for e in found], names, attribute)


if __name__ == "__main__":
    unittest.main()


class RegionsTest(unittest.TestCase):
    def test_list_regions_answers_the_enabled_regions_and_filters(self):
        account = new_account()
        regions = client("account", account).list_regions(
            RegionOptStatusContains=["ENABLED", "ENABLED_BY_DEFAULT"]
        )["Regions"]
        names = sorted(r["RegionName"] for r in regions)
        self.assertEqual(names, ["eu-west-1", "us-east-1", "us-west-2"])
        everything = client("account", account).list_regions()["Regions"]
        self.assertIn("ap-east-1", [r["RegionName"] for r in everything])
