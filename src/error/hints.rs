//! The hints of the error table: what to do about each AWS error, in plain
//! language, shown on the `hint:` line.

/// What to do when the configured trail does not exist.
pub const TRAIL_NOT_FOUND_HINT: &str = "no trail with that name in this Region and account: check trail.name and region (the trail's home Region), and run trailkey with the management account's credentials";

/// The hint for an AWS error code the table gives no hint of its own.
pub const GENERIC_HINT: &str =
    "see the AWS message above; `trailkey plan` shows what trailkey would change";

pub(super) const INSUFFICIENT_ENCRYPTION_POLICY: &str = "the key policy does not let CloudTrail use the key (UpdateTrail checks the bucket policy too): run `trailkey plan` to see the key policy changes, and check that no foreign Deny statement blocks cloudtrail.amazonaws.com";
pub(super) const KMS_KEY_NOT_FOUND: &str = "CloudTrail could not find the key: the key must be in the trail's home Region and be named by its full key ARN, and the trail's bucket must be in that Region too";
pub(super) const KEY_DISABLED: &str =
    "the key is disabled: `trailkey apply` enables it, or enable it with `aws kms enable-key`";
pub(super) const KEY_DISABLED_OR_STATE: &str = "the key is disabled, or its state does not allow this call (e.g. pending deletion): run `trailkey apply` again, which enables the key and cancels its deletion; `aws kms describe-key` shows its state";
pub(super) const NOT_MANAGEMENT_ACCOUNT: &str = "organization trails can only be changed from the management account or a CloudTrail delegated administrator account (which must name the trail by its ARN); trailkey runs from the management account: run it with management-account credentials or set roles.management";
pub(super) const NOT_ALL_FEATURES: &str = "organization trails need AWS Organizations with all features enabled: enable all features in the Organizations console";
pub(super) const NOT_IN_ORGANIZATION: &str = "the caller's account is not in an organization: run trailkey with the management account's credentials";
pub(super) const ASSUME_ROLE_DENIED: &str = "could not assume the role named above: check roles.security_tooling (the role name) and that its trust policy allows the management account (or roles.management) to assume it; for the Log Archive account's role, roles.log_archive";
pub(super) const KMS_KEY_ACCESS_DENIED: &str = "KMS denied the call on the key: the key's policy must let the Security Tooling role in (a statement for the role, or for the account root, which delegates to IAM) and, through the root, the role's IAM policy must grant the call (policies/iam-security-tooling-role.json); AWS's message says which denied it: \"resource-based policy\" is the key policy";
pub(super) const ACCESS_DENIED: &str = "the caller lacks a permission for this call: policies/iam-management.json and policies/iam-security-tooling-role.json list what trailkey needs (docs/control-tower.md explains them)";
pub(super) const TRUSTED_ACCESS: &str = "CloudTrail's trusted access to AWS Organizations is not enabled: enable it from the management account, in the CloudTrail console or with `aws organizations enable-aws-service-access --service-principal cloudtrail.amazonaws.com`";
pub(super) const DEPENDENCY_ACCESS: &str = "the caller lacks an AWS Organizations permission CloudTrail checks for organization trails (organizations:ListAWSServiceAccessForOrganization): see policies/iam-management.json";
pub(super) const IAM_ACCESS: &str = "the caller lacks the IAM permissions to view or create CloudTrail's service-linked role (iam:GetRole, iam:CreateServiceLinkedRole): see policies/iam-management.json";
pub(super) const NO_SERVICE_LINKED_ROLE: &str = "CloudTrail's service-linked role AWSServiceRoleForCloudTrail is missing in the management account: create it there with `aws iam create-service-linked-role --aws-service-name cloudtrail.amazonaws.com`, then run again";
pub(super) const HOME_REGION: &str = "CloudTrail changes a trail only in its home Region (where it was created): set region to the trail's HomeRegion, which `aws cloudtrail describe-trails` shows";
pub(super) const KMS_EXCEPTION: &str = "CloudTrail could not use the key: it must be an enabled symmetric encryption key in the trail's home Region whose policy lets cloudtrail.amazonaws.com use it; `trailkey plan` shows what is missing";
pub(super) const INVALID_KMS_KEY_ID: &str = "CloudTrail rejected the key's ARN: trailkey names the key by its full ARN, which must be a key in the trail's home Region; check region and run `trailkey plan`";
pub(super) const CONFLICT: &str = "another change to the trail is still under way: wait a few minutes and run again, or wait longer with `trailkey apply --propagation-timeout 600`";
pub(super) const INVALID_TRAIL_NAME: &str = "CloudTrail rejected the trail name: trail.name is either the trail's ARN or 3 to 128 letters, digits, '.', '_' or '-', starting and ending with a letter or digit";
pub(super) const TRAIL_ARN_INVALID: &str = "CloudTrail rejected the trail ARN: in trail.name, an ARN looks like arn:aws:cloudtrail:REGION:ACCOUNT:trail/NAME";
pub(super) const TRAIL_RESOURCE_NOT_FOUND: &str = "CloudTrail found no trail with that ARN: it may have been deleted since trailkey read it; run `trailkey plan` again";
pub(super) const CLOUDTRAIL_UNSUPPORTED: &str = "CloudTrail does not support this call here: check that region is a Region where the account can use CloudTrail";
pub(super) const CLOUDTRAIL_NOT_PERMITTED: &str = "CloudTrail does not permit this call for this account or trail: run trailkey with the management account's credentials (member accounts can read an organization trail but not change it), and check trail.name";
pub(super) const NO_BUCKET: &str = "the trail's S3 bucket does not exist: CloudTrail cannot deliver logs; fix the trail's bucket first";
pub(super) const BUCKET_POLICY: &str = "the bucket policy does not let CloudTrail write to the trail's bucket: fix the Log Archive bucket policy (trailkey does not change it)";
pub(super) const SNS_TOPIC: &str = "CloudTrail rejected the trail's SNS topic (its policy, or an account that is suspended): fix the topic or the trail's SNS setting; trailkey does not change them";
pub(super) const CLOUDWATCH_LOGS: &str = "CloudTrail rejected the trail's CloudWatch Logs settings (log group, role, or delivery in this Region), which trailkey does not change: fix them with `aws cloudtrail update-trail`, then run again";
pub(super) const EVENT_DATA_STORE_GONE: &str =
    "the CloudTrail Lake event data store was deleted since trailkey listed it: run again";
pub(super) const KMS_NOT_FOUND: &str = "KMS found no such key or alias: it may have been deleted since trailkey read it; run `trailkey plan` again";
pub(super) const ALREADY_EXISTS: &str =
    "the alias already exists: another run may have just created it; run `trailkey plan` again";
pub(super) const INVALID_ARN: &str = "KMS rejected an ARN, in the request or in the key policy: check the account IDs and role ARNs in the config, and run `trailkey policy` to see the policy";
pub(super) const KMS_INVALID_STATE: &str = "the key's state does not allow this call (e.g. pending deletion): `aws kms describe-key` shows it; `trailkey plan` shows what trailkey would change";
pub(super) const INVALID_ALIAS: &str =
    "KMS rejected the alias name: check ct_key_alias (`trailkey validate` checks it)";
pub(super) const KMS_UNSUPPORTED: &str = "KMS does not support this on this key: trailkey needs a symmetric encryption key whose key material KMS generated (not imported, not in a custom key store)";
pub(super) const TAG: &str = "KMS rejected a tag: check [key.tags] in the config (keys up to 128 characters, values up to 256, no aws: prefix)";
pub(super) const KMS_QUOTA: &str = "a KMS quota was reached (keys per account and Region, or aliases or tags per key), or the key policy is over 32 KB: remove unused keys, aliases or policy statements, or ask for a quota increase (\"Quotas\" in the AWS KMS Developer Guide), then run again";
pub(super) const PRINCIPAL_NOT_YET: &str = "KMS rejected the key policy: a principal in it may not exist yet (new accounts take a few minutes); run `trailkey policy` to inspect it and run again, or wait longer with `trailkey apply --policy-retry-timeout 600`";
pub(super) const LOCKOUT: &str = "KMS's policy lockout safety check refused the key policy: the Security Tooling role could not change it afterwards. Its IAM permissions, an SCP or a permissions boundary do not allow kms:PutKeyPolicy on the key (check policies/iam-security-tooling-role.json), or a Deny statement kept in the key policy denies it to the role; trailkey never sets BypassPolicyLockoutSafetyCheck";
pub(super) const TRANSIENT: &str = "AWS had an internal error or a timeout, and the SDK's retries did not get past it: it is transient, run again";
pub(super) const THROTTLED: &str =
    "AWS kept throttling the requests after the retries: wait a minute and run again";
pub(super) const UNREACHABLE: &str =
    "could not reach AWS: check the network, proxy settings and AWS_ENDPOINT_URL";
pub(super) const REGION_DISABLED: &str = "STS is not active in this Region for the account of the role: activate it in that account's IAM console (Account settings, Security Token Service)";
pub(super) const CONCURRENT_MODIFICATION: &str =
    "the organization is being changed by another request: wait a minute and run again";
pub(super) const EXPIRED: &str =
    "the AWS credentials have expired: refresh them (e.g. `aws sso login`) and run again";
pub(super) const INVALID_CREDENTIALS: &str = "the AWS credentials are not valid: check AWS_PROFILE / AWS_ACCESS_KEY_ID and run `aws sts get-caller-identity`";
pub(super) const NO_CREDENTIALS: &str = "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws sso login`";
pub(super) const NO_BUCKET_POLICY: &str = "the bucket has no policy, which CloudTrail needs to write to it: fix the Log Archive bucket policy";
pub(super) const NO_ENCRYPTION_CONFIGURATION: &str =
    "the bucket has no default encryption configuration: S3 encrypts new objects with SSE-S3";
pub(super) const NO_REPLICATION_CONFIGURATION: &str =
    "the bucket has no replication configuration: no replica needs the key";
