#!/usr/bin/env python3
"""Seed, inspect and tamper with a moto server for trailkey's tests and demo.

Run it with the project's venv, which has boto3 (it comes with moto):

    .venv/bin/python tests/support/fixture.py seed --write-config /tmp/x/trailkey.toml
    .venv/bin/python tests/support/fixture.py state --security-tooling 123456789012 --trail org-trail
    .venv/bin/python tests/support/fixture.py drift rotation-off --security-tooling 123456789012
    .venv/bin/python tests/support/fixture.py recording start
    .venv/bin/python tests/support/fixture.py recording show

Every subcommand takes --endpoint (default: $AWS_ENDPOINT_URL) and --region
(default: us-east-1), uses dummy credentials, prints exactly one JSON document on
stdout, and on failure prints a message on stderr and exits non-zero.

Accounts as moto sees them: the dummy credentials act as moto's default account
(123456789012), which seed makes the organization's management account. Any
AssumeRole into arn:aws:iam::<id>:role/<name> succeeds (the role need not exist)
and its credentials act as account <id>.

Request recording (`recording start|show`) uses moto's recorder. It needs no
environment variable (MOTO_ENABLE_RECORDING=true would only record from the
server's start), but the recorder writes to the file MOTO_RECORDER_FILEPATH,
by default ./moto_recording in the server's working directory: start each
moto_server with its own MOTO_RECORDER_FILEPATH so that servers running in
parallel do not share one recording.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_REGION = "us-east-1"
DEFAULT_TRAIL = "org-trail"
DEFAULT_ROLE = "AWSControlTowerExecution"
DEFAULT_ALIAS = "cloudtrail-org-key"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

# Appended to the User-Agent of every request this script sends, so that
# `recording show` can leave the fixture's own requests out.
FIXTURE_USER_AGENT = "trailkey-fixture"

DRIFT_KINDS = ("trail-unencrypt", "rotation-off", "alias-delete", "key-disable", "policy-foreign")

# Added by `drift policy-foreign`: a statement trailkey does not own.
FOREIGN_STATEMENT = {
    "Sid": "ThirdPartyAudit",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
    "Action": "kms:DescribeKey",
    "Resource": "*",
}


class FixtureError(Exception):
    """A failure with a message meant for the person running the tests."""


@dataclass(frozen=True)
class Aws:
    """Makes boto3 clients for one moto endpoint and region."""

    endpoint: str
    region: str

    def client(self, service: str, credentials: dict[str, str] | None = None) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            config=Config(user_agent_extra=FIXTURE_USER_AGENT),
            **(credentials or DUMMY_CREDENTIALS),
        )

    def assume(self, account_id: str, role: str = DEFAULT_ROLE) -> dict[str, str]:
        """Credentials that act as `account_id` (moto: the role need not exist)."""
        response = self.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/{role}",
            RoleSessionName="trailkey-fixture",
        )
        creds = response["Credentials"]
        return {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }

    def moto_api(self, path: str) -> str:
        """Calls one of moto's own /moto-api/ endpoints and returns the body."""
        url = self.endpoint.rstrip("/") + path
        request = urllib.request.Request(url, method="POST", data=b"")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.read().decode("utf-8")
        except urllib.error.HTTPError as err:
            raise FixtureError(f"{url} answered HTTP {err.code}") from err
        except urllib.error.URLError as err:
            raise FixtureError(f"cannot reach {url}: {err.reason}") from err


# --------------------------------------------------------------------- seed


def create_account(org: Any, name: str, email: str) -> str:
    """Creates a member account and waits until it exists; returns its ID."""
    status = org.create_account(AccountName=name, Email=email)["CreateAccountStatus"]
    deadline = time.monotonic() + 30
    while status["State"] == "IN_PROGRESS":
        if time.monotonic() > deadline:
            raise FixtureError(f"account {name!r} still IN_PROGRESS after 30 s")
        time.sleep(0.2)
        status = org.describe_create_account_status(CreateAccountRequestId=status["Id"])[
            "CreateAccountStatus"
        ]
    if status["State"] != "SUCCEEDED":
        raise FixtureError(f"creating account {name!r}: {status.get('FailureReason', status['State'])}")
    return status["AccountId"]


def create_bucket(s3: Any, bucket: str, region: str) -> None:
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def render_config(region: str, accounts: dict[str, str], trail_name: str) -> str:
    return (
        f'region = "{region}"\n'
        f'ct_key_alias = "{DEFAULT_ALIAS}"\n'
        "\n"
        "[accounts]\n"
        f'security_tooling = "{accounts["security_tooling"]}"\n'
        f'log_archive = "{accounts["log_archive"]}"\n'
        f'management = "{accounts["management"]}"\n'
        "\n"
        "[trail]\n"
        f'name = "{trail_name}"\n'
    )


def cmd_seed(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    org = aws.client("organizations")
    organization = org.create_organization(FeatureSet="ALL")["Organization"]
    management = organization["MasterAccountId"]
    security_tooling = create_account(org, "Security Tooling", "security-tooling@example.com")
    log_archive = create_account(org, "Log Archive", "log-archive@example.com")

    # The bucket belongs to Log Archive, as in a real landing zone. moto's
    # CreateTrail looks the bucket up from the trail owner's (management)
    # account and finds buckets of other accounts too, as long as the server
    # runs with MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS unset or "true" (the default).
    bucket = args.bucket or f"org-trail-logs-{log_archive}"
    create_bucket(aws.client("s3", aws.assume(log_archive)), bucket, aws.region)

    cloudtrail = aws.client("cloudtrail")
    trail = cloudtrail.create_trail(
        Name=args.trail_name,
        S3BucketName=bucket,
        IsOrganizationTrail=True,
        IsMultiRegionTrail=True,
    )
    cloudtrail.start_logging(Name=args.trail_name)

    accounts = {
        "management": management,
        "security_tooling": security_tooling,
        "log_archive": log_archive,
    }
    if args.write_config:
        with open(args.write_config, "w", encoding="utf-8") as config:
            config.write(render_config(aws.region, accounts, args.trail_name))

    return {
        "region": aws.region,
        "management_account": management,
        "security_tooling_account": security_tooling,
        "log_archive_account": log_archive,
        "trail_name": args.trail_name,
        "trail_arn": trail["TrailARN"],
        "bucket": bucket,
    }


# -------------------------------------------------------------------- state


def describe_customer_keys(kms: Any) -> list[dict[str, Any]]:
    """Every customer-managed key of the account, in moto's (creation) order."""
    keys = []
    for page in kms.get_paginator("list_keys").paginate():
        for entry in page["Keys"]:
            meta = kms.describe_key(KeyId=entry["KeyId"])["KeyMetadata"]
            if meta.get("KeyManager") != "CUSTOMER":
                continue
            key_id = meta["KeyId"]
            tags = {}
            for tag_page in kms.get_paginator("list_resource_tags").paginate(KeyId=key_id):
                tags.update({t["TagKey"]: t["TagValue"] for t in tag_page["Tags"]})
            policy_text = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
            try:
                policy: Any = json.loads(policy_text)
            except ValueError:
                policy = policy_text  # not JSON: show it as stored
            keys.append(
                {
                    "key_id": key_id,
                    "arn": meta["Arn"],
                    "key_state": meta["KeyState"],
                    "key_spec": meta.get("KeySpec"),
                    "key_usage": meta.get("KeyUsage"),  # moto: absent unless given to CreateKey
                    "origin": meta.get("Origin"),
                    "multi_region": meta.get("MultiRegion", False),
                    "description": meta.get("Description", ""),
                    "tags": tags,
                    "rotation_enabled": kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"],
                    "policy": policy,
                }
            )
    return keys


def customer_aliases(kms: Any) -> list[dict[str, Any]]:
    aliases = []
    for page in kms.get_paginator("list_aliases").paginate():
        for alias in page["Aliases"]:
            if alias["AliasName"].startswith("alias/aws/"):
                continue
            aliases.append({"name": alias["AliasName"], "target_key_id": alias.get("TargetKeyId")})
    return sorted(aliases, key=lambda a: a["name"])


def describe_trail(cloudtrail: Any, name: str) -> dict[str, Any] | None:
    """The trail as GetTrail (management account) shows it, or None if unknown."""
    try:
        trail = cloudtrail.get_trail(Name=name)["Trail"]
    except ClientError as err:
        if err.response["Error"]["Code"] == "TrailNotFoundException":
            return None
        raise
    return {
        "name": trail["Name"],
        "arn": trail["TrailARN"],
        # Absent (null) when never set; moto keeps "" after UpdateTrail(KmsKeyId="").
        "kms_key_id": trail.get("KmsKeyId"),
        # moto's GetTrail omits HomeRegion (DescribeTrails has it): fall back to the ARN.
        "home_region": trail.get("HomeRegion") or trail["TrailARN"].split(":")[3],
        "is_organization_trail": trail.get("IsOrganizationTrail", False),
        "is_multi_region_trail": trail.get("IsMultiRegionTrail", False),
        "s3_bucket": trail.get("S3BucketName"),
    }


def cmd_state(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    kms = aws.client("kms", aws.assume(args.security_tooling, args.role))
    trail = describe_trail(aws.client("cloudtrail"), args.trail) if args.trail else None
    return {
        "keys": describe_customer_keys(kms),
        "aliases": customer_aliases(kms),
        "trail": trail,
    }


# -------------------------------------------------------------------- drift


def alias_name(alias: str) -> str:
    return alias if alias.startswith("alias/") else f"alias/{alias}"


def aliased_key_id(kms: Any, alias: str) -> str:
    """The raw key ID behind an alias. moto's EnableKey/DisableKey/CancelKeyDeletion
    fail with HTTP 500 when given a key ARN, and GetKeyRotationStatus and friends
    refuse alias names, so drift always works with the raw ID."""
    try:
        return kms.describe_key(KeyId=alias_name(alias))["KeyMetadata"]["KeyId"]
    except ClientError as err:
        if err.response["Error"]["Code"] == "NotFoundException":
            raise FixtureError(f"{alias_name(alias)} does not exist (run trailkey apply first?)") from err
        raise


def unencrypt_trail(aws: Aws, trail_name: str, recreate: bool) -> None:
    cloudtrail = aws.client("cloudtrail")
    if not recreate:
        # moto clears the key this way, but GetTrail then returns KmsKeyId ""
        # (real CloudTrail omits the field).
        cloudtrail.update_trail(Name=trail_name, KmsKeyId="")
        return
    # Recreate the trail with the same settings and no key: moto's CreateTrail
    # replaces a trail of the same name, and GetTrail then has no KmsKeyId at all.
    trail = cloudtrail.get_trail(Name=trail_name)["Trail"]
    was_logging = cloudtrail.get_trail_status(Name=trail_name)["IsLogging"]
    settings = {
        "Name": trail["Name"],
        "S3BucketName": trail["S3BucketName"],
        "IncludeGlobalServiceEvents": trail.get("IncludeGlobalServiceEvents", True),
        "IsMultiRegionTrail": trail.get("IsMultiRegionTrail", False),
        "EnableLogFileValidation": trail.get("LogFileValidationEnabled", False),
        "IsOrganizationTrail": trail.get("IsOrganizationTrail", False),
    }
    for optional in ("S3KeyPrefix", "SnsTopicName", "CloudWatchLogsLogGroupArn", "CloudWatchLogsRoleArn"):
        if trail.get(optional):
            settings[optional] = trail[optional]
    cloudtrail.create_trail(**settings)
    if was_logging:
        cloudtrail.start_logging(Name=trail_name)


def add_foreign_statement(kms: Any, key_id: str) -> None:
    """As another team would: add their own statement and, by mistake, drop
    the Log Archive principal from trailkey's readers statement."""
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    for statement in policy["Statement"]:
        if statement.get("Sid") == "TrailkeyLogReadersDecrypt":
            principals = statement["Principal"]["AWS"]
            statement["Principal"]["AWS"] = principals[-1] if isinstance(principals, list) else principals
    policy["Statement"].append(FOREIGN_STATEMENT)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))


def cmd_drift(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    if args.kind == "trail-unencrypt":
        unencrypt_trail(aws, args.trail, args.recreate)
    else:
        if not args.security_tooling:
            raise FixtureError(f"drift {args.kind} needs --security-tooling ACCOUNT_ID")
        kms = aws.client("kms", aws.assume(args.security_tooling, args.role))
        if args.kind == "alias-delete":
            aliased_key_id(kms, args.alias)  # a clear error if it is already gone
            kms.delete_alias(AliasName=alias_name(args.alias))
        elif args.kind == "rotation-off":
            kms.disable_key_rotation(KeyId=aliased_key_id(kms, args.alias))
        elif args.kind == "key-disable":
            kms.disable_key(KeyId=aliased_key_id(kms, args.alias))
        elif args.kind == "policy-foreign":
            add_foreign_statement(kms, aliased_key_id(kms, args.alias))
        else:  # argparse's choices make this unreachable
            raise FixtureError(f"unknown drift kind {args.kind!r}")
    return {"drift": args.kind, "done": True}


# ---------------------------------------------------------------- recording

# Service names for the X-Amz-Target prefixes of the JSON protocols, used when
# a request carries no SigV4 credential scope to read the service from.
TARGET_PREFIX_SERVICES = {
    "TrentService": "kms",
    "AWSOrganizationsV20161128": "organizations",
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101": "cloudtrail",
}


def header(headers: dict[str, str], name: str) -> str:
    """A header's value, looked up case-insensitively ("" when absent)."""
    for key, value in headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def recorded_body(entry: dict[str, Any]) -> str:
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        return base64.b64decode(body).decode("utf-8", errors="replace")
    return body


def classify(entry: dict[str, Any]) -> dict[str, Any]:
    """service/action/method of one recorded request."""
    headers = entry.get("headers") or {}
    path = urllib.parse.urlsplit(entry.get("url", "")).path
    service = action = None

    # SigV4: "... Credential=AKID/20240101/us-east-1/kms/aws4_request, ..."
    authorization = header(headers, "Authorization")
    if "Credential=" in authorization:
        scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 5:
            service = scope[3]

    target = header(headers, "X-Amz-Target")
    if target:  # JSON protocols: "TrentService.CreateKey"
        prefix, _, action = target.rpartition(".")
        service = service or TARGET_PREFIX_SERVICES.get(prefix, prefix)
    elif path.startswith("/service/") and "/operation/" in path:
        # Smithy RPC v2 CBOR: /service/<Service>/operation/<Operation>
        action = path.rsplit("/operation/", 1)[1]
    else:  # query protocol (STS): form body "Action=AssumeRole&Version=..."
        form = urllib.parse.parse_qs(recorded_body(entry))
        if "Action" in form:
            action = form["Action"][0]
    if action is None and path not in ("", "/"):
        action = path  # REST protocols (S3): the path is the best we have
    return {"service": service, "action": action, "method": entry.get("method")}


def is_own_request(entry: dict[str, Any]) -> bool:
    """moto-api calls and everything this fixture sent."""
    headers = entry.get("headers") or {}
    path = urllib.parse.urlsplit(entry.get("url", "")).path
    user_agent = header(headers, "User-Agent") + " " + header(headers, "X-Amz-User-Agent")
    return path.startswith("/moto-api/") or FIXTURE_USER_AGENT in user_agent


def cmd_recording(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    if args.action == "start":
        aws.moto_api("/moto-api/recorder/reset-recording")
        aws.moto_api("/moto-api/recorder/start-recording")
        return {"recording": True}

    try:
        text = aws.moto_api("/moto-api/recorder/download-recording")
    except FixtureError as err:
        raise FixtureError(f"{err} (was `recording start` run against this server?)") from err
    entries = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {"requests": [classify(e) for e in entries if not is_own_request(e)]}


# --------------------------------------------------------------------- main


def parse_args(argv: list[str]) -> argparse.Namespace:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--endpoint",
        default=os.environ.get("AWS_ENDPOINT_URL"),
        help="moto server URL (default: $AWS_ENDPOINT_URL)",
    )
    common.add_argument("--region", default=DEFAULT_REGION, help=f"default: {DEFAULT_REGION}")

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    seed = commands.add_parser(
        "seed", parents=[common], help="organization, accounts, bucket and an organization trail"
    )
    seed.add_argument("--trail-name", default=DEFAULT_TRAIL)
    seed.add_argument("--bucket", help="default: org-trail-logs-<log archive id>")
    seed.add_argument("--write-config", metavar="PATH", help="also write a trailkey config here")
    seed.set_defaults(handler=cmd_seed)

    state = commands.add_parser("state", parents=[common], help="KMS state and the trail, as JSON")
    state.add_argument("--security-tooling", required=True, metavar="ACCOUNT_ID")
    state.add_argument("--trail", metavar="NAME", help="also show this trail (by name or ARN)")
    state.add_argument("--role", default=DEFAULT_ROLE)
    state.set_defaults(handler=cmd_state)

    drift = commands.add_parser("drift", parents=[common], help="change one thing behind trailkey's back")
    drift.add_argument("kind", choices=DRIFT_KINDS)
    drift.add_argument("--security-tooling", metavar="ACCOUNT_ID", help="needed by all but trail-unencrypt")
    drift.add_argument("--trail", default=DEFAULT_TRAIL, metavar="NAME")
    drift.add_argument("--alias", default=DEFAULT_ALIAS, help="with or without the alias/ prefix")
    drift.add_argument("--role", default=DEFAULT_ROLE)
    drift.add_argument(
        "--recreate",
        action="store_true",
        help="trail-unencrypt: recreate the trail without a key (GetTrail then has no KmsKeyId) "
        'instead of UpdateTrail(KmsKeyId="") (GetTrail then has KmsKeyId "")',
    )
    drift.set_defaults(handler=cmd_drift)

    recording = commands.add_parser("recording", parents=[common], help="moto's request recorder")
    recording.add_argument("action", choices=("start", "show"))
    recording.set_defaults(handler=cmd_recording)

    args = parser.parse_args(argv)
    if not args.endpoint:
        parser.error("no endpoint: pass --endpoint URL or set AWS_ENDPOINT_URL")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    aws = Aws(endpoint=args.endpoint, region=args.region)
    try:
        result = args.handler(aws, args)
    except FixtureError as err:
        print(f"fixture.py {args.command}: {err}", file=sys.stderr)
        return 1
    except ClientError as err:
        error = err.response.get("Error", {})
        print(
            f"fixture.py {args.command}: {err.operation_name} failed: "
            f"{error.get('Code')}: {error.get('Message')}",
            file=sys.stderr,
        )
        return 1
    except BotoCoreError as err:
        print(f"fixture.py {args.command}: {err}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
