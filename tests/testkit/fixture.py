#!/usr/bin/env python3
"""Seed, inspect and tamper with a moto server for trailkey's tests and demo.

Run it with the project's venv, which has boto3 (it comes with moto):

    .venv/bin/python tests/testkit/fixture.py seed --write-config /tmp/x/trailkey.toml
    .venv/bin/python tests/testkit/fixture.py seed --security-tooling-name Audit \
        --extra-account Dev --closed-account Security
    .venv/bin/python tests/testkit/fixture.py control-tower --log-archive 210987654321
    .venv/bin/python tests/testkit/fixture.py state --security-tooling 123456789012 --trail org-trail
    .venv/bin/python tests/testkit/fixture.py drift rotation-off --security-tooling 123456789012
    .venv/bin/python tests/testkit/fixture.py drift policy-remove-statement --sid TrailkeyCloudTrailDecrypt \
        --security-tooling 123456789012
    .venv/bin/python tests/testkit/fixture.py make-key --security-tooling 123456789012 \
        --alias cloudtrail-org-key --kind multi-region
    .venv/bin/python tests/testkit/fixture.py assume --account 123456789012 --role AWSControlTowerExecution
    .venv/bin/python tests/testkit/fixture.py recording start
    .venv/bin/python tests/testkit/fixture.py calls --json \
        '[{"op": "kms:CreateKey"}, {"op": "kms:DescribeKey", "params": {"KeyId": "$KeyId"}, "until_ok": 5}]'
    .venv/bin/python tests/testkit/fixture.py recording show

Every subcommand takes --endpoint (default: $AWS_ENDPOINT_URL) and --region
(default: us-east-1), uses dummy credentials, prints exactly one JSON document on
stdout, and on failure prints a message on stderr and exits non-zero.
`fixture.py serve` runs such commands one after another, read from stdin (see
`serve`).

`drift KIND` does what another person or tool would do behind trailkey's back,
finding trailkey's key through the alias (--alias, default cloudtrail-org-key).
It prints {"drift": KIND, "done": true} plus facts such as "other_key_arn".
The trail-* kinds but trail-other-key and trail-key-id, and the selectors-* kinds, do not
need --security-tooling; the others do. The selectors-* kinds answer the trail's ARN as
"custom_event_selectors_trail".
  trail-unencrypt            UpdateTrail(KmsKeyId=""); --recreate: recreate the trail without a key
  trail-other-key            create another plain key, point the trail's KmsKeyId at its ARN
  trail-alias                trail KmsKeyId = "alias/<alias>"
  trail-key-id               trail KmsKeyId = the bare key ID of trailkey's key
  trail-validation-off       UpdateTrail(EnableLogFileValidation=False)
  trail-stop-logging         StopLogging
  selectors-exclude-kms      PutEventSelectors: all management events but kms.amazonaws.com
                             (ExcludeManagementEventSources)
  selectors-read-only        PutEventSelectors: read-only management events only
  selectors-no-management    PutEventSelectors: no management events (S3 data events only)
  selectors-advanced-no-kms  PutEventSelectors: an advanced selector of the management events
                             whose eventSource is not kms.amazonaws.com
  alias-delete               DeleteAlias
  alias-repoint              create another plain key, UpdateAlias the alias to it
  rotation-off               DisableKeyRotation
  rotation-period            EnableKeyRotation with RotationPeriodInDays=--days (moto drops it:
                             the answer's key_id and rotation_period_days tell the layer)
  key-disable                DisableKey
  key-pending-deletion       ScheduleKeyDeletion, PendingWindowInDays=7
  policy-remove-statement    remove the statement with Sid --sid (TrailkeyCloudTrailDescribeKey)
  policy-condition           in TrailkeyCloudTrailEncrypt: aws:SourceArn names trail/another-trail,
                             the StringLike encryption-context account becomes 999999999999
  policy-remove-log-archive  TrailkeyLogReadersDecrypt keeps only the management principal
  policy-remove-management   TrailkeyLogReadersDecrypt keeps only the Log Archive principal
  policy-default             replace the policy with KMS's default key policy
  policy-foreign             append a foreign Allow statement (Sid ThirdPartyAudit)
  policy-deny                append a foreign Deny (Sid DenyCloudTrailEncrypt) of
                             kms:GenerateDataKey* to cloudtrail.amazonaws.com
  policy-deny-not-cloudtrail append a foreign Deny (Sid DenyOthersEncrypt) of
                             kms:GenerateDataKey* to all but cloudtrail.amazonaws.com (NotPrincipal)
  policy-wildcard-deny       append a foreign Deny (Sid ManyWildcards) to CloudTrail of the
                             action kms:******************************q (30 wildcards)
  tags-remove                UntagResource ManagedBy and every repeated --tag-key

`make-key --kind KIND` creates a key in the Security Tooling account and points
the alias at it (CreateAlias, or UpdateAlias if it exists); prints {"key_id", "arn"}.
Symmetric kinds are created with KeySpec SYMMETRIC_DEFAULT, KeyUsage ENCRYPT_DECRYPT.
  plain            symmetric, no tags
  multi-region     symmetric, MultiRegion=True (key ID mrk-...)
  asymmetric       KeySpec RSA_2048, KeyUsage ENCRYPT_DECRYPT
  hmac             KeySpec HMAC_256, KeyUsage GENERATE_VERIFY_MAC
  external         Origin EXTERNAL; moto 5.2.5 reports it Enabled, not PendingImport
  trailkey-tagged  tags ManagedBy=trailkey, trailkey:alias=<alias> (as an older trailkey
                   created keys, without trailkey:created); no alias is created

`calls --json LIST` sends raw API calls in order from one process and prints
{"results": [...]}, one result per call: "op", "ok", then "response" (the
answer without ResponseMetadata) or "code", "message" and "status"; "attempts"
and "at" (seconds since the first call, when the result came). A failed call
is a result, not a failure of the command; boto3 does not retry. A call is
{"op": "service:Operation", "params": {...}}, plus "until_ok": SECONDS to send
it again every 20 ms until it succeeds or that long has passed. In params,
"$KeyId" and "$Arn" stand for the key of the last successful kms:CreateKey.
--account ID sends them with a role of that account (default: the dummy
credentials, i.e. moto's default account).

`assume --account ID [--role NAME]` assumes the role with the dummy credentials
and prints its credentials: {"access_key_id", "secret_access_key",
"session_token", "role_arn"} (for a program to run with that role's
credentials; send it through the proxy that program will use, so that the
proxy learns whose they are).

Accounts as moto sees them: the dummy credentials act as moto's default account
(123456789012), which seed makes the organization's management account. Any
AssumeRole into arn:aws:iam::<id>:role/<name> succeeds (the role need not exist)
and its credentials act as account <id>.

Request recording (`recording start|show`) uses moto's recorder. It needs no
environment variable (MOTO_ENABLE_RECORDING=true would only record from the
server's start), but the recorder writes to the file MOTO_RECORDER_FILEPATH,
by default ./moto_recording in the server's working directory: start each
moto_server with its own MOTO_RECORDER_FILEPATH so that servers running in
parallel do not share one recording. `recording show --answered JSON` adds
the calls a proxy in front of moto answered itself, which moto never saw.
`recording show` lists each request's
"service", "action" (S3 bucket reads by the IAM action they need, e.g.
GetEncryptionConfiguration), "method", "access_key" (the access key ID that
signed it), "principal" (who those credentials are, e.g.
arn:aws:sts::<id>:assumed-role/<role>/<session>) and, for sts:AssumeRole,
"role_arn". A request that the real-AWS layer in front of moto sent as the
management account, in place of a member account's (a CloudTrail delegated
administrator's, say), reaches moto signed by the management account's
credentials and names the client's access key ID in the header
X-Trailkey-Layer-Caller: "access_key" and "principal" are the client's, and
"layer_signed_as" is the access key ID moto got.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_REGION = "us-east-1"
DEFAULT_TRAIL = "org-trail"
DEFAULT_ROLE = "AWSControlTowerExecution"
DEFAULT_ALIAS = "cloudtrail-org-key"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

# Appended to the User-Agent of every request this script sends, so that
# `recording show` can leave the fixture's own requests out.
FIXTURE_USER_AGENT = "trailkey-fixture"

# What each `drift` kind does behind trailkey's back. All but trail-unencrypt
# and trail-alias need --security-tooling; trailkey's key is found by its alias.
DRIFT_KINDS = {
    "trail-unencrypt": 'UpdateTrail(KmsKeyId="") (or recreate the trail with --recreate)',
    "trail-other-key": "create another plain key and point the trail's KmsKeyId at its ARN",
    "trail-alias": "set the trail's KmsKeyId to the alias name (alias/<alias>)",
    "trail-key-id": "set the trail's KmsKeyId to the bare key ID of trailkey's key",
    "trail-validation-off": "turn the trail's log-file validation off",
    "trail-stop-logging": "StopLogging: the trail records nothing",
    "selectors-exclude-kms": "PutEventSelectors: ExcludeManagementEventSources kms.amazonaws.com",
    "selectors-read-only": "PutEventSelectors: ReadWriteType ReadOnly",
    "selectors-no-management": "PutEventSelectors: IncludeManagementEvents false, S3 data events",
    "selectors-advanced-no-kms": "PutEventSelectors: advanced, management events but eventSource kms",
    "alias-delete": "DeleteAlias",
    "alias-repoint": "create another plain key and UpdateAlias the alias to it",
    "rotation-off": "DisableKeyRotation",
    "rotation-period": "EnableKeyRotation with RotationPeriodInDays=--days",
    "key-disable": "DisableKey",
    "key-pending-deletion": "ScheduleKeyDeletion with a 7-day window",
    "policy-remove-statement": "remove the statement whose Sid is --sid",
    "policy-condition": "TrailkeyCloudTrailEncrypt: SourceArn trail/another-trail, context 999999999999",
    "policy-remove-log-archive": "drop the Log Archive principal from TrailkeyLogReadersDecrypt",
    "policy-remove-management": "drop the management principal from TrailkeyLogReadersDecrypt",
    "policy-default": "replace the whole policy with KMS's default key policy",
    "policy-foreign": "append a foreign Allow statement (Sid ThirdPartyAudit)",
    "policy-deny": "append a foreign explicit Deny of kms:GenerateDataKey* to CloudTrail",
    "policy-deny-not-cloudtrail": "append a foreign Deny of kms:GenerateDataKey* to all but CloudTrail",
    "policy-wildcard-deny": "append a foreign Deny to CloudTrail of kms: + 30 wildcards + q",
    "tags-remove": "UntagResource ManagedBy and every --tag-key",
}

# `make-key` kinds: what CreateKey is given (symmetric ones get SYMMETRIC_DEFAULT
# and ENCRYPT_DECRYPT).
KEY_KINDS = {
    "plain": "symmetric, no tags",
    "multi-region": "symmetric, MultiRegion=True",
    "asymmetric": "KeySpec RSA_2048, KeyUsage ENCRYPT_DECRYPT",
    "hmac": "KeySpec HMAC_256, KeyUsage GENERATE_VERIFY_MAC",
    "external": "symmetric, Origin EXTERNAL (no key material is imported)",
    "trailkey-tagged": "symmetric, tagged ManagedBy=trailkey and trailkey:alias=<alias>; no alias",
}

# Added by `drift policy-foreign`: a statement trailkey does not own.
FOREIGN_STATEMENT = {
    "Sid": "ThirdPartyAudit",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
    "Action": "kms:DescribeKey",
    "Resource": "*",
}

# Added by `drift policy-deny`: a foreign explicit Deny that breaks log delivery.
DENY_STATEMENT = {
    "Sid": "DenyCloudTrailEncrypt",
    "Effect": "Deny",
    "Principal": {"Service": "cloudtrail.amazonaws.com"},
    "Action": "kms:GenerateDataKey*",
    "Resource": "*",
}

# Added by `drift policy-deny-not-cloudtrail`: the same Deny for every
# principal except CloudTrail, which therefore may still encrypt.
DENY_OTHERS_STATEMENT = {
    "Sid": "DenyOthersEncrypt",
    "Effect": "Deny",
    "NotPrincipal": {"Service": "cloudtrail.amazonaws.com"},
    "Action": "kms:GenerateDataKey*",
    "Resource": "*",
}

# Added by `drift policy-wildcard-deny`: 30 wildcards before a letter no
# action ends with, which a backtracking wildcard matcher never finishes.
WILDCARD_DENY_STATEMENT = {
    "Sid": "ManyWildcards",
    "Effect": "Deny",
    "Principal": {"Service": "cloudtrail.amazonaws.com"},
    "Action": ["kms:" + "*" * 30 + "q"],
    "Resource": "*",
}

# Used by `drift policy-condition`.
ENCRYPTION_CONTEXT_KEY = "kms:EncryptionContext:aws:cloudtrail:arn"
OTHER_TRAIL = "another-trail"
STALE_ACCOUNT = "999999999999"


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


def cmd_create_trail(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    """Another organization trail, writing to the same bucket as an existing one."""
    cloudtrail = aws.client("cloudtrail")
    if args.bucket:
        bucket = args.bucket
    else:
        bucket = cloudtrail.get_trail(Name=args.like)["Trail"]["S3BucketName"]
    created: dict[str, str] = {}
    if args.bucket_region:
        # Owned by the Log Archive account (--bucket-owner), as in a landing
        # zone; by the caller's account without it.
        bucket = f"{args.name}-logs"
        owner = args.bucket_owner or aws.client("sts").get_caller_identity()["Account"]
        s3 = aws.client("s3", aws.assume(args.bucket_owner)) if args.bucket_owner else aws.client("s3")
        create_bucket(s3, bucket, args.bucket_region)
        created = {"bucket_owner": owner, "bucket_region": args.bucket_region}
    options: dict[str, Any] = {}
    if args.kms_key_id:
        options["KmsKeyId"] = args.kms_key_id
    trail = cloudtrail.create_trail(
        Name=args.name,
        S3BucketName=bucket,
        IsOrganizationTrail=not args.not_organization,
        IsMultiRegionTrail=not args.single_region,
        EnableLogFileValidation=True,
        **options,
    )
    cloudtrail.start_logging(Name=args.name)
    return {"trail_name": trail["Name"], "trail_arn": trail["TrailARN"], "bucket": bucket, **created}


def email_for(name: str, taken: set[str]) -> str:
    """A unique example.com address from an account name ("Log Archive" -> log-archive@...)."""
    slug = "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split()) or "account"
    email, n = f"{slug}@example.com", 2
    while email in taken:
        email, n = f"{slug}-{n}@example.com", n + 1
    taken.add(email)
    return email


def cmd_seed(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    org = aws.client("organizations")
    organization = org.create_organization(FeatureSet="ALL")["Organization"]
    management = organization["MasterAccountId"]
    emails: set[str] = set()
    security_tooling = create_account(org, args.security_tooling_name, email_for(args.security_tooling_name, emails))
    log_archive = create_account(org, args.log_archive_name, email_for(args.log_archive_name, emails))
    for name in args.extra_account or []:
        create_account(org, name, email_for(name, emails))
    for name in args.closed_account or []:
        org.close_account(AccountId=create_account(org, name, email_for(name, emails)))

    # The bucket belongs to Log Archive, as in a real landing zone. moto's
    # CreateTrail looks the bucket up from the trail owner's (management)
    # account and finds buckets of other accounts too, as long as the server
    # runs with MOTO_S3_ALLOW_CROSSACCOUNT_ACCESS unset or "true" (the default).
    bucket = args.bucket or f"org-trail-logs-{log_archive}"
    create_bucket(aws.client("s3", aws.assume(log_archive)), bucket, aws.region)

    cloudtrail = aws.client("cloudtrail")
    # As a landing zone sets it up (CIS AWS Foundations 3.2): log-file
    # validation on, unless --no-log-file-validation.
    trail = cloudtrail.create_trail(
        Name=args.trail_name,
        S3BucketName=bucket,
        IsOrganizationTrail=True,
        IsMultiRegionTrail=True,
        EnableLogFileValidation=not args.no_log_file_validation,
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
        "organization_id": organization["Id"],
        "accounts": [
            {"id": a["Id"], "name": a["Name"], "email": a["Email"], "status": a["Status"]}
            for page in org.get_paginator("list_accounts").paginate()
            for a in page["Accounts"]
        ],
        "management_account": management,
        "security_tooling_account": security_tooling,
        "log_archive_account": log_archive,
        "trail_name": args.trail_name,
        "trail_arn": trail["TrailARN"],
        "bucket": bucket,
        "bucket_owner": log_archive,
        "bucket_region": aws.region,
    }


# ------------------------------------------------------------ control tower

CONTROL_TOWER_TRAIL = "aws-controltower-BaselineCloudTrail"


def cmd_control_tower(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    """Control Tower's organization trail and log bucket, after `seed`.

    As a landing zone sets them up: the bucket aws-controltower-logs-<Log
    Archive ID>-<home Region>, owned by the Log Archive account, and the
    organization trail aws-controltower-BaselineCloudTrail of the management
    account, multi-Region, log-file validation on, writing under the
    organization ID as its S3 key prefix. moto has no Control Tower: the
    landing zone itself is the test kit's (`Moto::control_tower`)."""
    organization = aws.client("organizations").describe_organization()["Organization"]
    bucket = f"aws-controltower-logs-{args.log_archive}-{aws.region}"
    create_bucket(aws.client("s3", aws.assume(args.log_archive)), bucket, aws.region)
    cloudtrail = aws.client("cloudtrail")
    trail = cloudtrail.create_trail(
        Name=CONTROL_TOWER_TRAIL,
        S3BucketName=bucket,
        S3KeyPrefix=organization["Id"],
        IsOrganizationTrail=True,
        IsMultiRegionTrail=True,
        EnableLogFileValidation=True,
    )
    cloudtrail.start_logging(Name=CONTROL_TOWER_TRAIL)
    return {
        "region": aws.region,
        "organization_id": organization["Id"],
        "management_account": organization["MasterAccountId"],
        "trail_name": trail["Name"],
        "trail_arn": trail["TrailARN"],
        "bucket": bucket,
        "bucket_owner": args.log_archive,
        "bucket_region": aws.region,
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
        "log_file_validation": trail.get("LogFileValidationEnabled", False),
        "is_logging": cloudtrail.get_trail_status(Name=trail["TrailARN"])["IsLogging"],
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
    """The raw key ID behind an alias. moto's EnableKey/DisableKey/CancelKeyDeletion/
    ScheduleKeyDeletion fail with HTTP 500 when given a key ARN, and
    GetKeyRotationStatus and friends refuse alias names, so drift always works
    with the raw ID."""
    try:
        return kms.describe_key(KeyId=alias_name(alias))["KeyMetadata"]["KeyId"]
    except ClientError as err:
        if err.response["Error"]["Code"] == "NotFoundException":
            raise FixtureError(f"{alias_name(alias)} does not exist (run trailkey apply first?)") from err
        raise


def create_key(kms: Any, kind: str = "plain", alias_short: str = "", description: str = "") -> dict[str, Any]:
    """Creates a customer-managed key as someone else would; returns its KeyMetadata.

    KeySpec and KeyUsage are always passed: moto's DescribeKey leaves KeyUsage
    out unless CreateKey was given it, whereas real KMS always returns it."""
    options: dict[str, Any] = {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"}
    description = description or f"{kind} key made by fixture.py, not by trailkey"
    if kind == "multi-region":
        options["MultiRegion"] = True
    elif kind == "asymmetric":
        options.update(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")
    elif kind == "hmac":
        options.update(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
    elif kind == "external":
        options["Origin"] = "EXTERNAL"
    elif kind == "trailkey-tagged":
        description = "key tagged as trailkey's but made by fixture.py"
        options["Tags"] = [
            {"TagKey": "ManagedBy", "TagValue": "trailkey"},
            {"TagKey": "trailkey:alias", "TagValue": alias_short},
        ]
    elif kind != "plain":
        raise FixtureError(f"unknown key kind {kind!r}")
    return kms.create_key(Description=description, **options)["KeyMetadata"]


def point_alias(kms: Any, alias: str, key_id: str) -> None:
    """CreateAlias, or UpdateAlias when the alias already exists."""
    try:
        kms.create_alias(AliasName=alias_name(alias), TargetKeyId=key_id)
    except ClientError as err:
        if err.response["Error"]["Code"] != "AlreadyExistsException":
            raise
        kms.update_alias(AliasName=alias_name(alias), TargetKeyId=key_id)


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


def set_trail_key(aws: Aws, trail_name: str, kms_key_id: str) -> None:
    """UpdateTrail(KmsKeyId=...): moto stores the string as given, unvalidated."""
    aws.client("cloudtrail").update_trail(Name=trail_name, KmsKeyId=kms_key_id)


# ------------------------------------------------------------ policy drift


def get_policy(kms: Any, key_id: str) -> dict[str, Any]:
    return json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])


def put_policy(kms: Any, key_id: str, policy: dict[str, Any]) -> None:
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))


def find_statement(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    for statement in policy.get("Statement", []):
        if statement.get("Sid") == sid:
            return statement
    raise FixtureError(f"the key policy has no statement with Sid {sid!r}")


def append_statement(policy: dict[str, Any], statement: dict[str, Any]) -> None:
    """Appends a statement, replacing one with the same Sid (no duplicate Sids)."""
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != statement["Sid"]]
    policy["Statement"].append(statement)


def remove_statement(policy: dict[str, Any], sid: str) -> None:
    find_statement(policy, sid)  # a clear error if it is not there
    policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != sid]


def change_encrypt_conditions(policy: dict[str, Any]) -> dict[str, str]:
    """Points TrailkeyCloudTrailEncrypt's aws:SourceArn at another trail of the
    same account and its encryption-context pattern at a stale account."""
    conditions = find_statement(policy, "TrailkeyCloudTrailEncrypt").get("Condition", {})
    try:
        source_arn = conditions["StringEquals"]["aws:SourceArn"]
        context = conditions["StringLike"][ENCRYPTION_CONTEXT_KEY]
    except KeyError as err:
        raise FixtureError(f"TrailkeyCloudTrailEncrypt has no condition {err}") from err
    if not isinstance(source_arn, str) or ":trail/" not in source_arn:
        raise FixtureError(f"unexpected aws:SourceArn {source_arn!r}")
    if not isinstance(context, str) or len(context.split(":")) < 6:
        raise FixtureError(f"unexpected {ENCRYPTION_CONTEXT_KEY} {context!r}")
    new_source_arn = source_arn.rsplit(":trail/", 1)[0] + f":trail/{OTHER_TRAIL}"
    fields = context.split(":")
    fields[4] = STALE_ACCOUNT  # arn:<p>:cloudtrail:<region>:<account>:trail/*
    new_context = ":".join(fields)
    conditions["StringEquals"]["aws:SourceArn"] = new_source_arn
    conditions["StringLike"][ENCRYPTION_CONTEXT_KEY] = new_context
    return {"source_arn": new_source_arn, "encryption_context": new_context}


def remove_reader(policy: dict[str, Any], management: str, which: str) -> str:
    """Removes the Log Archive or the management principal from
    TrailkeyLogReadersDecrypt; the one left stays as a single string."""
    principal = find_statement(policy, "TrailkeyLogReadersDecrypt").get("Principal", {})
    principals = principal.get("AWS")
    if isinstance(principals, str):
        principals = [principals]
    if not isinstance(principals, list) or len(principals) < 2:
        raise FixtureError(f"TrailkeyLogReadersDecrypt does not have two AWS principals: {principals!r}")
    is_management = [p.split(":")[4] == management if p.count(":") >= 5 else False for p in principals]
    if which == "management":
        removed = [p for p, m in zip(principals, is_management) if m]
    else:  # the Log Archive one: every principal that is not the management account's
        removed = [p for p, m in zip(principals, is_management) if not m]
    kept = [p for p in principals if p not in removed]
    if not removed or not kept:
        raise FixtureError(f"cannot tell the {which} principal apart in {principals!r}")
    principal["AWS"] = kept[0] if len(kept) == 1 else kept
    return removed[0] if len(removed) == 1 else ", ".join(removed)


def default_key_policy(account_id: str) -> dict[str, Any]:
    """The policy KMS attaches when CreateKey is given none."""
    return {
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }


def drift_policy(aws: Aws, kms: Any, key_id: str, args: argparse.Namespace) -> dict[str, Any]:
    """Applies one policy-* drift kind to the key's policy; returns facts to print."""
    facts: dict[str, Any] = {}
    if args.kind == "policy-default":
        put_policy(kms, key_id, default_key_policy(args.security_tooling))
        return facts
    policy = get_policy(kms, key_id)
    if args.kind == "policy-foreign":
        append_statement(policy, FOREIGN_STATEMENT)
    elif args.kind == "policy-deny":
        append_statement(policy, DENY_STATEMENT)
    elif args.kind == "policy-deny-not-cloudtrail":
        append_statement(policy, DENY_OTHERS_STATEMENT)
    elif args.kind == "policy-wildcard-deny":
        append_statement(policy, WILDCARD_DENY_STATEMENT)
    elif args.kind == "policy-remove-statement":
        remove_statement(policy, args.sid)
        facts["removed_sid"] = args.sid
    elif args.kind == "policy-condition":
        facts.update(change_encrypt_conditions(policy))
    elif args.kind in ("policy-remove-log-archive", "policy-remove-management"):
        management = aws.client("organizations").describe_organization()["Organization"]["MasterAccountId"]
        which = "management" if args.kind == "policy-remove-management" else "log archive"
        facts["removed_principal"] = remove_reader(policy, management, which)
    else:  # argparse's choices make this unreachable
        raise FixtureError(f"unknown drift kind {args.kind!r}")
    put_policy(kms, key_id, policy)
    return facts


def put_selectors(cloudtrail: Any, trail: str, kind: str) -> str:
    """Gives the trail event selectors that leave KMS's write management events out; returns its ARN."""
    basic = {
        "selectors-exclude-kms": {
            "ReadWriteType": "All",
            "IncludeManagementEvents": True,
            "ExcludeManagementEventSources": ["kms.amazonaws.com"],
        },
        "selectors-read-only": {"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True},
        "selectors-no-management": {
            "ReadWriteType": "All",
            "IncludeManagementEvents": False,
            "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}],
        },
    }
    if kind in basic:
        answer = cloudtrail.put_event_selectors(TrailName=trail, EventSelectors=[basic[kind]])
    else:
        advanced = [
            {
                "Name": "Management events but KMS",
                "FieldSelectors": [
                    {"Field": "eventCategory", "Equals": ["Management"]},
                    {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com"]},
                ],
            }
        ]
        answer = cloudtrail.put_event_selectors(TrailName=trail, AdvancedEventSelectors=advanced)
    return answer["TrailARN"]


def cmd_drift(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    facts: dict[str, Any] = {}
    if args.kind == "trail-unencrypt":
        unencrypt_trail(aws, args.trail, args.recreate)
    elif args.kind == "trail-alias":
        facts["kms_key_id"] = alias_name(args.alias)
        set_trail_key(aws, args.trail, facts["kms_key_id"])
    elif args.kind == "trail-validation-off":
        aws.client("cloudtrail").update_trail(Name=args.trail, EnableLogFileValidation=False)
    elif args.kind == "trail-stop-logging":
        aws.client("cloudtrail").stop_logging(Name=args.trail)
    elif args.kind.startswith("selectors-"):
        facts["custom_event_selectors_trail"] = put_selectors(aws.client("cloudtrail"), args.trail, args.kind)
    else:
        if not args.security_tooling:
            raise FixtureError(f"drift {args.kind} needs --security-tooling ACCOUNT_ID")
        kms = aws.client("kms", aws.assume(args.security_tooling, args.role))
        # Every kind but trail-other-key works on trailkey's key: a clear error
        # if the alias is already gone.
        key_id = aliased_key_id(kms, args.alias) if args.kind != "trail-other-key" else None
        if args.kind in ("trail-other-key", "alias-repoint"):
            other = create_key(kms)
            facts.update(other_key_id=other["KeyId"], other_key_arn=other["Arn"])
            if args.kind == "trail-other-key":
                set_trail_key(aws, args.trail, other["Arn"])
            else:
                kms.update_alias(AliasName=alias_name(args.alias), TargetKeyId=other["KeyId"])
        elif args.kind == "trail-key-id":
            facts["kms_key_id"] = key_id
            set_trail_key(aws, args.trail, key_id)
        elif args.kind == "alias-delete":
            kms.delete_alias(AliasName=alias_name(args.alias))
        elif args.kind == "rotation-off":
            kms.disable_key_rotation(KeyId=key_id)
        elif args.kind == "rotation-period":
            kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=args.days)
            facts.update(key_id=key_id, rotation_period_days=args.days)
        elif args.kind == "key-disable":
            kms.disable_key(KeyId=key_id)
        elif args.kind == "key-pending-deletion":
            deletion = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)["DeletionDate"]
            facts["deletion_date"] = deletion.isoformat()
        elif args.kind == "tags-remove":
            tag_keys = list(dict.fromkeys(["ManagedBy", *(args.tag_key or [])]))
            kms.untag_resource(KeyId=key_id, TagKeys=tag_keys)
            facts["removed_tag_keys"] = tag_keys
        elif args.kind.startswith("policy-"):
            facts.update(drift_policy(aws, kms, key_id, args))
        else:  # argparse's choices make this unreachable
            raise FixtureError(f"unknown drift kind {args.kind!r}")
    return {"drift": args.kind, "done": True, **facts}


# ----------------------------------------------------------------- make-key


def cmd_make_key(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    kms = aws.client("kms", aws.assume(args.security_tooling, args.role))
    alias = alias_name(args.alias)
    meta = create_key(kms, args.kind, alias_short=alias.removeprefix("alias/"), description=args.description)
    if args.kind != "trailkey-tagged":  # that one stays unaliased, as after a lost alias
        point_alias(kms, alias, meta["KeyId"])
    return {"key_id": meta["KeyId"], "arn": meta["Arn"]}


# ------------------------------------------------------------------- assume


def cmd_assume(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    credentials = aws.assume(args.account, args.role)
    return {
        "access_key_id": credentials["aws_access_key_id"],
        "secret_access_key": credentials["aws_secret_access_key"],
        "session_token": credentials["aws_session_token"],
        "role_arn": f"arn:aws:iam::{args.account}:role/{args.role}",
    }


# -------------------------------------------------------------------- calls


def substitute(value: Any, facts: dict[str, str]) -> Any:
    """`value` with "$KeyId"/"$Arn" in its strings replaced by `facts`."""
    if isinstance(value, str):
        for name, fact in facts.items():
            value = value.replace(f"${name}", fact)
        return value
    if isinstance(value, list):
        return [substitute(v, facts) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, facts) for k, v in value.items()}
    return value


def send_call(client: Any, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    method = getattr(client, xform_name(operation))
    try:
        response = method(**params)
    except ClientError as err:
        return {
            "ok": False,
            "code": err.response.get("Error", {}).get("Code"),
            "message": err.response.get("Error", {}).get("Message"),
            "status": err.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
        }
    response.pop("ResponseMetadata", None)
    return {"ok": True, "response": json.loads(json.dumps(response, default=str))}


def cmd_calls(aws: Aws, args: argparse.Namespace) -> dict[str, Any]:
    calls = json.loads(args.json)
    credentials = aws.assume(args.account, args.role) if args.account else DUMMY_CREDENTIALS
    config = Config(user_agent_extra=FIXTURE_USER_AGENT, retries={"max_attempts": 1, "mode": "standard"})
    clients = {
        service: boto3.client(
            service, endpoint_url=aws.endpoint, region_name=aws.region, config=config, **credentials
        )
        for service in {call["op"].split(":", 1)[0] for call in calls}
    }
    facts: dict[str, str] = {}
    results = []
    start = time.monotonic()
    for call in calls:
        service, operation = call["op"].split(":", 1)
        params = substitute(call.get("params", {}), facts)
        deadline = time.monotonic() + float(call.get("until_ok", 0))
        attempts = 0
        while True:
            attempts += 1
            result = send_call(clients[service], operation, params)
            if result["ok"] or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        if operation == "CreateKey" and result["ok"]:
            meta = result["response"]["KeyMetadata"]
            facts.update(KeyId=meta["KeyId"], Arn=meta["Arn"])
        results.append(
            {"op": call["op"], **result, "attempts": attempts, "at": round(time.monotonic() - start, 3)}
        )
    return {"results": results}


# ---------------------------------------------------------------- recording

# Service names for the X-Amz-Target prefixes of the JSON protocols, used when
# a request carries no SigV4 credential scope to read the service from.
TARGET_PREFIX_SERVICES = {
    "TrentService": "kms",
    "AWSOrganizationsV20161128": "organizations",
    "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101": "cloudtrail",
}


# The S3 bucket reads trailkey makes (GET /<bucket>?<subresource>), by the
# IAM action each needs: GetBucketEncryption needs s3:GetEncryptionConfiguration.
S3_BUCKET_READS = {
    "location": "GetBucketLocation",
    "policy": "GetBucketPolicy",
    "encryption": "GetEncryptionConfiguration",
    "replication": "GetReplicationConfiguration",
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
    """service/action/method of one recorded request, the access key ID that
    signed it ("access_key": which credentials made the call, e.g. the
    caller's own or an assumed role's) and, for sts:AssumeRole, the role
    asked for ("role_arn")."""
    headers = entry.get("headers") or {}
    path = urllib.parse.urlsplit(entry.get("url", "")).path
    service = action = access_key = role_arn = None

    # SigV4: "... Credential=AKID/20240101/us-east-1/kms/aws4_request, ..."
    authorization = header(headers, "Authorization")
    if "Credential=" in authorization:
        scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        access_key = scope[0].strip() or None
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
        if "RoleArn" in form:
            role_arn = form["RoleArn"][0]
    if action is None and path not in ("", "/"):
        # REST protocols (S3): name the reads trailkey makes by the IAM action
        # each needs, anything else by method and path.
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(entry.get("url", "")).query, keep_blank_values=True)
        reads = [a for sub, a in S3_BUCKET_READS.items() if sub in query]
        if entry.get("method") == "GET" and len(reads) == 1:
            action = reads[0]
        elif entry.get("method") == "HEAD" and not query and path.strip("/").count("/") == 0:
            # HeadBucket: the IAM action it needs is s3:ListBucket.
            action = "ListBucket"
        else:
            action = f"{entry.get('method')} {path}"
    request = {"service": service, "action": action, "method": entry.get("method"), "access_key": access_key}
    # Sent by the real-AWS layer as the management account in place of the
    # client's request: report the client's credentials.
    caller = header(headers, LAYER_CALLER_HEADER)
    if caller:
        request["layer_signed_as"] = access_key
        request["access_key"] = caller
    if role_arn is not None:
        request["role_arn"] = role_arn
    return request


# The header of a request the real-AWS layer sent moto as the management
# account: the access key ID the client signed it with (rules/delegated.rs).
LAYER_CALLER_HEADER = "X-Trailkey-Layer-Caller"


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
    requests = [classify(e) for e in entries if not is_own_request(e)]
    # Calls a proxy in front of moto answered itself (operations moto does
    # not have), as the harness passes them: moto never recorded them.
    for answered in json.loads(args.answered or "[]"):
        requests.append(
            {
                "service": answered["service"],
                "action": answered["action"],
                "method": answered.get("method", "POST"),
                "access_key": answered["access_key"],
            }
        )
    principals: dict[str, str] = {}
    for request in requests:
        key = request["access_key"]
        if key is not None and key not in principals:
            principals[key] = principal_of(aws, key)
        request["principal"] = principals.get(key)
    return {"requests": requests}


def principal_of(aws: Aws, access_key: str) -> str:
    """The ARN moto gives the credentials with this access key ID: an
    assumed role's key answers arn:aws:sts::<account>:assumed-role/<role>/<session>.
    moto does not check signatures, so GetCallerIdentity signed with the
    key ID alone tells."""
    sts = aws.client("sts", {"aws_access_key_id": access_key, "aws_secret_access_key": "unchecked"})
    return sts.get_caller_identity()["Arn"]


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
    seed.add_argument(
        "--security-tooling-name",
        default="Security Tooling",
        metavar="NAME",
        help="name of the account that owns the key (Control Tower: Audit; default: %(default)s)",
    )
    seed.add_argument(
        "--log-archive-name",
        default="Log Archive",
        metavar="NAME",
        help="name of the account that owns the log bucket (default: %(default)s)",
    )
    seed.add_argument(
        "--extra-account", action="append", metavar="NAME", help="another ACTIVE member account (repeatable)"
    )
    seed.add_argument(
        "--closed-account",
        action="append",
        metavar="NAME",
        help="a member account created and then closed: SUSPENDED (repeatable)",
    )
    seed.add_argument("--bucket", help="default: org-trail-logs-<log archive id>")
    seed.add_argument("--write-config", metavar="PATH", help="also write a trailkey config here")
    seed.add_argument(
        "--no-log-file-validation", action="store_true", help="create the trail with log-file validation off"
    )
    seed.set_defaults(handler=cmd_seed)

    create_trail = commands.add_parser(
        "create-trail", parents=[common], help="another organization trail, on an existing trail's bucket"
    )
    create_trail.add_argument("--name", required=True)
    create_trail.add_argument(
        "--not-organization", action="store_true", help="an account trail, not an organization trail"
    )
    create_trail.add_argument(
        "--bucket-region", metavar="REGION", help="write to a new bucket <name>-logs in this Region"
    )
    create_trail.add_argument(
        "--bucket-owner", metavar="ACCOUNT", help="with --bucket-region: the account that creates the bucket"
    )
    create_trail.add_argument("--like", default=DEFAULT_TRAIL, metavar="TRAIL", help="take the bucket of this trail")
    create_trail.add_argument("--bucket", metavar="NAME", help="write to this existing bucket instead of --like's")
    create_trail.add_argument("--kms-key-id", metavar="KEY", help="encrypt the trail with this key (ARN, ID or alias)")
    create_trail.add_argument("--single-region", action="store_true", help="a single-Region trail")
    create_trail.set_defaults(handler=cmd_create_trail)

    control_tower = commands.add_parser(
        "control-tower",
        parents=[common],
        help="after seed: Control Tower's trail aws-controltower-BaselineCloudTrail and its log bucket",
    )
    control_tower.add_argument("--log-archive", required=True, metavar="ACCOUNT_ID", help="owner of the bucket")
    control_tower.set_defaults(handler=cmd_control_tower)

    state = commands.add_parser("state", parents=[common], help="KMS state and the trail, as JSON")
    state.add_argument("--security-tooling", required=True, metavar="ACCOUNT_ID")
    state.add_argument("--trail", metavar="NAME", help="also show this trail (by name or ARN)")
    state.add_argument("--role", default=DEFAULT_ROLE)
    state.set_defaults(handler=cmd_state)

    drift = commands.add_parser(
        "drift",
        parents=[common],
        help="change one thing behind trailkey's back",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="kinds:\n" + "\n".join(f"  {kind:26} {what}" for kind, what in DRIFT_KINDS.items()),
    )
    drift.add_argument("kind", choices=DRIFT_KINDS, metavar="KIND", help="see the list below")
    drift.add_argument(
        "--security-tooling",
        metavar="ACCOUNT_ID",
        help="needed by all but trail-unencrypt and trail-alias",
    )
    drift.add_argument("--trail", default=DEFAULT_TRAIL, metavar="NAME")
    drift.add_argument("--alias", default=DEFAULT_ALIAS, help="with or without the alias/ prefix")
    drift.add_argument("--role", default=DEFAULT_ROLE)
    drift.add_argument(
        "--recreate",
        action="store_true",
        help="trail-unencrypt: recreate the trail without a key (GetTrail then has no KmsKeyId) "
        'instead of UpdateTrail(KmsKeyId="") (GetTrail then has KmsKeyId "")',
    )
    drift.add_argument(
        "--sid",
        default="TrailkeyCloudTrailDescribeKey",
        help="policy-remove-statement: the statement to remove (default: %(default)s)",
    )
    drift.add_argument(
        "--tag-key",
        action="append",
        metavar="KEY",
        help="tags-remove: also remove this tag (repeatable; ManagedBy is always removed)",
    )
    drift.add_argument(
        "--days",
        type=int,
        default=730,
        help="rotation-period: the period in days (default: %(default)s)",
    )
    drift.set_defaults(handler=cmd_drift)

    make_key = commands.add_parser(
        "make-key",
        parents=[common],
        help="create a key of some kind and point the alias at it",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="kinds:\n" + "\n".join(f"  {kind:16} {what}" for kind, what in KEY_KINDS.items()),
    )
    make_key.add_argument("--security-tooling", required=True, metavar="ACCOUNT_ID")
    make_key.add_argument("--alias", required=True, help="with or without the alias/ prefix")
    make_key.add_argument(
        "--kind", required=True, choices=KEY_KINDS, metavar="KIND", help="see the list below"
    )
    make_key.add_argument("--description", default="", help="the key's description (default: names the kind)")
    make_key.add_argument("--role", default=DEFAULT_ROLE)
    make_key.set_defaults(handler=cmd_make_key)

    calls = commands.add_parser("calls", parents=[common], help="send raw API calls in order, report each result")
    calls.add_argument("--json", required=True, metavar="LIST", help='[{"op": "kms:DescribeKey", "params": {...}}, ...]')
    calls.add_argument("--account", metavar="ACCOUNT_ID", help="call as a role of this account")
    calls.add_argument("--role", default=DEFAULT_ROLE)
    calls.set_defaults(handler=cmd_calls)

    assume = commands.add_parser("assume", parents=[common], help="a role's credentials, as JSON")
    assume.add_argument("--account", required=True, metavar="ACCOUNT_ID")
    assume.add_argument("--role", default=DEFAULT_ROLE)
    assume.set_defaults(handler=cmd_assume)

    recording = commands.add_parser("recording", parents=[common], help="moto's request recorder")
    recording.add_argument("action", choices=("start", "show"))
    recording.add_argument(
        "--answered",
        metavar="JSON",
        help='show: also list these calls, which a proxy answered without moto: [{"service", "action", "access_key"}, ...]',
    )
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


def serve() -> int:
    """`fixture.py serve`: runs one command per line of stdin, each a JSON array
    of the arguments it would have on the command line, and answers each with
    one line on stdout, `{"status": <exit status>, "stdout": ..., "stderr": ...}`.
    The tests keep one such process per moto server, so that Python and boto3
    start once rather than for every command."""
    answers = sys.stdout
    for line in sys.stdin:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(json.loads(line))
            except SystemExit as exit:  # argparse's usage errors
                status = exit.code if isinstance(exit.code, int) else 1
            except Exception:  # noqa: BLE001 - reported to the test, which fails
                traceback.print_exc()
                status = 1
        answers.write(json.dumps({"status": status, "stdout": out.getvalue(), "stderr": err.getvalue()}))
        answers.write("\n")
        answers.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["serve"] else main(sys.argv[1:]))
