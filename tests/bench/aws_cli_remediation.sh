#!/usr/bin/env bash
# The job trailkey does, done by hand with the AWS CLI: the benchmark's
# baseline (`make bench`, docs/performance.md).
#
#   aws_cli_remediation.sh check|remediate --security-tooling ID --trail NAME \
#       --policy FILE [--alias NAME] [--role NAME] [--region REGION]
#
# It runs what a careful operator runs, one `aws` command at a time: the seeds'
# remediation (`aws cloudtrail update-trail --kms-key-id`, `aws kms
# put-key-policy`) plus the reads needed to know whether to run them, and on a
# first run the steps that create the key properly.
#
#   reads   sts assume-role into Security Tooling, cloudtrail get-trail,
#           kms describe-key alias/<alias>, and if the key exists
#           kms get-key-policy, get-key-rotation-status, list-resource-tags
#   writes  (remediate only, each only when needed)
#           no key:   kms create-key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT, AWS_KMS,
#                     single-Region, with the policy and the ManagedBy and
#                     trailkey:alias tags), kms create-alias, kms enable-key-rotation
#           key:      kms put-key-policy, kms enable-key-rotation, kms tag-resource
#           trail:    cloudtrail update-trail --kms-key-id <key ARN>
#
# --policy is the key policy to attach, the one trailkey renders
# (`trailkey policy --offline`), so both do the same work. Policies are
# compared as JSON (key order and whitespace do not count).
#
# `check` changes nothing and exits 2 when something would change, 0 when
# nothing would (like `trailkey plan --detailed-exitcode`); `remediate` exits
# 0 when done. Any AWS error exits 1. Every `aws` call is printed on stderr.
#
# Environment: AWS (default: aws), PYTHON (default: python3), and the usual
# AWS variables: the caller's credentials (management account) and, for the
# benchmark, AWS_ENDPOINT_URL pointing at a local moto server.
set -euo pipefail

usage() { sed -n '5,7p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; }

MODE="${1:-}"
[[ "$MODE" == check || "$MODE" == remediate ]] || usage
shift
ST="" TRAIL="" POLICY="" ALIAS="cloudtrail-org-key" ROLE="AWSControlTowerExecution"
REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --security-tooling) ST="$2" ;;
        --trail) TRAIL="$2" ;;
        --policy) POLICY="$2" ;;
        --alias) ALIAS="${2#alias/}" ;;
        --role) ROLE="$2" ;;
        --region) REGION="$2" ;;
        *) usage ;;
    esac
    shift 2
done
[[ -n "$ST" && -n "$TRAIL" && -f "$POLICY" ]] || usage
AWS="${AWS:-aws}"
PYTHON="${PYTHON:-python3}"

case "$REGION" in
    cn-*) PARTITION=aws-cn ;;
    us-gov-*) PARTITION=aws-us-gov ;;
    *) PARTITION=aws ;;
esac
CHANGES=0
ERR="$(mktemp "${TMPDIR:-/tmp}/cli-remediation.XXXXXX")"
trap 'rm -f "$ERR"' EXIT

# aws ARGS...: one AWS CLI call with the caller's (management) credentials.
mgmt() {
    echo "+ aws $*" >&2
    "$AWS" --region "$REGION" "$@"
}
# st ARGS...: one AWS CLI call as the assumed Security Tooling role.
st() {
    echo "+ aws $* (as $ROLE in $ST)" >&2
    AWS_ACCESS_KEY_ID="$ST_KEY" AWS_SECRET_ACCESS_KEY="$ST_SECRET" AWS_SESSION_TOKEN="$ST_TOKEN" \
        "$AWS" --region "$REGION" "$@"
}
change() {
    CHANGES=$((CHANGES + 1))
    echo "~ $*" >&2
}

# 1. Credentials in Security Tooling.
CREDS="$(mgmt sts assume-role \
    --role-arn "arn:$PARTITION:iam::$ST:role/$ROLE" --role-session-name cli-remediation \
    --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)"
read -r ST_KEY ST_SECRET ST_TOKEN <<<"$CREDS"
[[ -n "$ST_TOKEN" ]] || { echo "assume-role returned no credentials" >&2; exit 1; }

# 2. The trail and the key it uses now.
TRAIL_INFO="$(mgmt cloudtrail get-trail --name "$TRAIL" --query 'Trail.[TrailARN,KmsKeyId]' --output text)"
read -r TRAIL_ARN TRAIL_KEY <<<"$TRAIL_INFO"
[[ "$TRAIL_KEY" != None ]] || TRAIL_KEY=""

# 3. The key behind the alias, if any, and whether it can encrypt a trail.
KEY_ARN="" KEY_ID=""
if DESCRIBE="$(st kms describe-key --key-id "alias/$ALIAS" \
    --query 'KeyMetadata.[Arn,KeyId,KeyState,KeySpec,KeyUsage,Origin,MultiRegion,KeyManager]' \
    --output text 2>"$ERR")"; then
    read -r KEY_ARN KEY_ID STATE SPEC USAGE ORIGIN MULTI MANAGER <<<"$DESCRIBE"
    if [[ "$STATE/$SPEC/$USAGE/$ORIGIN/$MULTI/$MANAGER" != "Enabled/SYMMETRIC_DEFAULT/ENCRYPT_DECRYPT/AWS_KMS/False/CUSTOMER" ]]; then
        echo "alias/$ALIAS names a key that cannot encrypt the trail: $DESCRIBE" >&2
        exit 1
    fi
elif grep -q NotFoundException "$ERR"; then
    change "no key behind alias/$ALIAS: create one"
else
    cat "$ERR" >&2
    exit 1
fi

same_policy() { # same_policy JSON FILE: equal as JSON documents?
    "$PYTHON" -c 'import json, sys; sys.exit(json.loads(sys.argv[1]) != json.load(open(sys.argv[2])))' "$1" "$2"
}

if [[ -n "$KEY_ID" ]]; then
    # 4. Its policy, rotation and tags.
    CURRENT_POLICY="$(st kms get-key-policy --key-id "$KEY_ID" --policy-name default --query Policy --output text)"
    ROTATION="$(st kms get-key-rotation-status --key-id "$KEY_ID" --query KeyRotationEnabled --output text)"
    TAGS="$(st kms list-resource-tags --key-id "$KEY_ID" \
        --query "[Tags[?TagKey=='ManagedBy'].TagValue | [0], Tags[?TagKey=='trailkey:alias'].TagValue | [0]]" \
        --output text)"
    POLICY_OK=true ROTATION_OK=true TAGS_OK=true
    same_policy "$CURRENT_POLICY" "$POLICY" || { POLICY_OK=false; change "key policy differs"; }
    [[ "$ROTATION" == True ]] || { ROTATION_OK=false; change "rotation is off"; }
    [[ "$TAGS" == "trailkey	$ALIAS" ]] || { TAGS_OK=false; change "tags missing"; }
fi
[[ -n "$KEY_ARN" && "$TRAIL_KEY" == "$KEY_ARN" ]] || change "trail $TRAIL_ARN uses ${TRAIL_KEY:-no key}, not the key"

if [[ "$MODE" == check ]]; then
    echo "aws-cli check: $CHANGES changes" >&2
    [[ "$CHANGES" -eq 0 ]] && exit 0 || exit 2
fi

# 5. Remediate.
if [[ -z "$KEY_ID" ]]; then
    CREATED="$(st kms create-key \
        --description "CloudTrail organization trail key (alias/$ALIAS)" \
        --key-spec SYMMETRIC_DEFAULT --key-usage ENCRYPT_DECRYPT --origin AWS_KMS --no-multi-region \
        --policy "file://$POLICY" \
        --tags "TagKey=ManagedBy,TagValue=trailkey" "TagKey=trailkey:alias,TagValue=$ALIAS" \
        --query 'KeyMetadata.[Arn,KeyId]' --output text)"
    read -r KEY_ARN KEY_ID <<<"$CREATED"
    st kms create-alias --alias-name "alias/$ALIAS" --target-key-id "$KEY_ID"
    st kms enable-key-rotation --key-id "$KEY_ID"
else
    $POLICY_OK || st kms put-key-policy --key-id "$KEY_ID" --policy-name default --policy "file://$POLICY"
    $ROTATION_OK || st kms enable-key-rotation --key-id "$KEY_ID"
    $TAGS_OK || st kms tag-resource --key-id "$KEY_ID" \
        --tags "TagKey=ManagedBy,TagValue=trailkey" "TagKey=trailkey:alias,TagValue=$ALIAS"
fi
if [[ "$TRAIL_KEY" != "$KEY_ARN" ]]; then
    mgmt cloudtrail update-trail --name "$TRAIL" --kms-key-id "$KEY_ARN" --query TrailARN --output text >/dev/null
fi
echo "aws-cli remediate: $CHANGES changes made" >&2
