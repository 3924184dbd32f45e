use super::handling::{Message, Ops, Rule};
use super::rule_for;
use super::rules::RULES;
use super::*;

/// The messages users see for the AWS errors trailkey knows, as one
/// reviewable snapshot: every one has an `error:` line and a `hint:` line.
#[test]
fn every_known_aws_error_renders_with_a_hint() {
    let cases = [
        ("UpdateTrail", "InsufficientEncryptionPolicyException"),
        ("UpdateTrail", "KmsKeyNotFoundException"),
        ("UpdateTrail", "KmsKeyDisabledException"),
        ("GetTrail", "TrailNotFoundException"),
        ("UpdateTrail", "NotOrganizationMasterAccountException"),
        ("UpdateTrail", "OrganizationNotInAllFeaturesModeException"),
        ("DescribeOrganization", "AWSOrganizationsNotInUseException"),
        ("UpdateTrail", "OrganizationsNotInUseException"),
        ("DescribeOrganization", "ConcurrentModificationException"),
        ("ListAccounts", "ServiceException"),
        ("AssumeRole", "AccessDenied"),
        ("AssumeRole", "RegionDisabledException"),
        ("PutKeyPolicy", "AccessDeniedException"),
        (
            "UpdateTrail",
            "InsufficientDependencyServiceAccessPermissionException",
        ),
        ("UpdateTrail", "CloudTrailAccessNotEnabledException"),
        // No operation trailkey calls lists it in the cloudtrail model.
        (
            "RegisterOrganizationDelegatedAdmin",
            "InsufficientIAMAccessPermissionException",
        ),
        ("UpdateTrail", "NoManagementAccountSLRExistsException"),
        ("UpdateTrail", "InvalidHomeRegionException"),
        ("UpdateTrail", "KmsException"),
        ("UpdateTrail", "InvalidKmsKeyIdException"),
        ("UpdateTrail", "ConflictException"),
        ("GetTrail", "InvalidTrailNameException"),
        ("GetTrailStatus", "CloudTrailARNInvalidException"),
        ("ListTags", "ResourceNotFoundException"),
        ("UpdateTrail", "UnsupportedOperationException"),
        ("UpdateTrail", "OperationNotPermittedException"),
        ("UpdateTrail", "S3BucketDoesNotExistException"),
        ("UpdateTrail", "InsufficientS3BucketPolicyException"),
        ("UpdateTrail", "InsufficientSnsTopicPolicyException"),
        ("UpdateTrail", "InvalidCloudWatchLogsRoleArnException"),
        ("GetCallerIdentity", "ExpiredToken"),
        ("GetCallerIdentity", "InvalidClientTokenId"),
        ("GetCallerIdentity", "CredentialsNotLoaded"),
        (
            "ListDelegatedAdministrators",
            "UnsupportedAPIEndpointException",
        ),
        (
            "ListDelegatedAdministrators",
            "ConstraintViolationException",
        ),
        ("CreateKey", "LimitExceededException"),
        ("CreateKey", "ThrottlingException"),
        ("CreateKey", "KMSInternalException"),
        ("DescribeKey", "DependencyTimeoutException"),
        ("PutKeyPolicy", "MalformedPolicyDocumentException"),
        ("CreateKey", "UnsupportedOperationException"),
        ("CreateKey", "TagException"),
        ("PutKeyPolicy", "InvalidArnException"),
        ("CreateAlias", "InvalidAliasNameException"),
        ("EnableKey", "NotFoundException"),
        ("CreateAlias", "AlreadyExistsException"),
        ("ScheduleKeyDeletion", "KMSInvalidStateException"),
        ("EnableKeyRotation", "KMSInvalidStateException"),
        ("EnableKeyRotation", "DisabledException"),
        ("GetBucketPolicy", "NoSuchBucket"),
        ("GetTrail", "DispatchFailure"),
        ("CreateAlias", "SomethingNew"),
    ];
    let lockout = (
        "PutKeyPolicy",
        "MalformedPolicyDocumentException",
        "The new key policy will not allow you to update the key policy in the future.",
    );
    let mut all = String::new();
    for (operation, code, message) in cases
        .into_iter()
        .map(|(operation, code)| (operation, code, "the AWS message"))
        .chain([lockout])
    {
        let text = Error::aws("doing the thing", AwsError::new(operation, code, message)).render();
        assert!(text.starts_with("error: doing the thing\n"), "{text}");
        assert!(text.contains("\nhint: "), "{text}");
        all.push_str(&text);
        all.push('\n');
    }
    insta::assert_snapshot!(all);
}

/// Every (operation, code) a rule decides (it is the first that
/// matches), with a message it matches.
fn decided() -> Vec<(&'static Rule, &'static str, &'static str, &'static str)> {
    const LOCKOUT_MESSAGE: &str =
        "The new key policy will not allow you to update the key policy in the future.";
    let all_ops: Vec<&'static str> = OPERATIONS
        .iter()
        .flat_map(|(_, ops)| ops.iter().copied())
        .collect();
    let mut out = Vec::new();
    for r in RULES {
        let ops = match r.ops {
            Ops::Any => all_ops.as_slice(),
            Ops::Of(ops) => ops,
        };
        let message = match r.message {
            Message::Any => "the AWS message",
            Message::Lockout => LOCKOUT_MESSAGE,
        };
        for op in ops {
            for code in r.codes {
                if std::ptr::eq(rule_for(op, code, message).expect("it matches"), r) {
                    out.push((r, *op, *code, message));
                }
            }
        }
    }
    out
}

#[test]
fn generic_entries_render_the_generic_hint_and_all_others_a_specific_one() {
    let decided = decided();
    assert!(decided.len() > 100, "{}", decided.len());
    for (r, op, code, message) in decided {
        let e = Error::aws("doing the thing", AwsError::new(op, code, message));
        let shown = e.hint();
        assert_eq!(handling(op, code, message), Some(r.treat.handling()));
        match r.treat.handling() {
            Handling::Generic => assert_eq!(shown, GENERIC_HINT, "{op} {code}"),
            h => {
                assert_ne!(shown, GENERIC_HINT, "{op} {code} is {h:?}");
                assert!(!shown.trim().is_empty(), "{op} {code}");
                assert!(
                    e.render().ends_with(&format!("hint: {shown}\n")),
                    "{op} {code}"
                );
            }
        }
    }
}

#[test]
fn every_rule_decides_something_and_names_only_operations_trailkey_calls() {
    let decided = decided();
    for (i, r) in RULES.iter().enumerate() {
        assert!(
            decided.iter().any(|(d, ..)| std::ptr::eq(*d, r)),
            "rule {i} ({:?}) is shadowed by the rules before it",
            r.codes
        );
        if let Ops::Of(ops) = r.ops {
            for op in ops {
                assert!(
                    OPERATIONS.iter().any(|(_, all)| all.contains(op)),
                    "rule {i} names {op}, which is not in OPERATIONS"
                );
            }
        }
    }
}

#[test]
fn the_policy_lockout_fails_at_once_and_an_unknown_principal_is_waited_for() {
    let lockout = "The new key policy will not allow you to update the key policy in the future.";
    assert!(is_lockout(lockout));
    assert!(!is_lockout("The policy contains invalid principals."));
    for op in ["CreateKey", "PutKeyPolicy"] {
        let code = "MalformedPolicyDocumentException";
        assert_eq!(handling(op, code, lockout), Some(Handling::Hint));
        assert!(hint(op, code, lockout).contains("BypassPolicyLockoutSafetyCheck"));
        let unknown = "The policy contains invalid principals.";
        assert_eq!(handling(op, code, unknown), Some(Handling::Wait));
        assert!(hint(op, code, unknown).contains("may not exist yet"));
    }
}

#[test]
fn a_code_outside_the_table_is_unclassified_and_gets_the_generic_hint() {
    assert_eq!(handling("CreateAlias", "SomethingNew", ""), None);
    assert_eq!(hint("CreateAlias", "SomethingNew", ""), GENERIC_HINT);
    // KMS's quota code is not throttling elsewhere either: outside KMS
    // no model lists it, and the table does not guess.
    assert_eq!(handling("UpdateTrail", "LimitExceededException", ""), None);
    assert_eq!(
        handling("CreateKey", "LimitExceededException", ""),
        Some(Handling::Hint)
    );
    assert_eq!(
        handling("UpdateTrail", "ThrottlingException", ""),
        Some(Handling::SdkRetry)
    );
}

#[test]
fn outside_text_is_escaped_and_a_check_detail_shown_as_it_is() {
    let e = Error::aws(
        "reading \u{1b}[2J",
        AwsError::new("GetKeyPolicy", "Bad\r", "no\nhint: forged"),
    );
    assert_eq!(
        e.render(),
        "error: reading \\u{1b}[2J\n  AWS GetKeyPolicy returned Bad\\r: no\\nhint: forged\nhint: see the AWS message above; `trailkey plan` shows what trailkey would change\n"
    );
    let e = Error::check_with("apply \u{9b}31m", "plan:\n  line\n", "h\u{202e}")
        .noting("after 2 writes");
    assert_eq!(
        e.render(),
        "error: apply \\u{9b}31m; after 2 writes\nplan:\n  line\nhint: h\\u{202e}\n"
    );
}

/// A config someone else wrote: its name, its keys and values and the
/// parser's excerpt of it are escaped, the excerpt's lines and tabs kept.
#[test]
fn a_config_errors_file_field_and_message_are_escaped_with_their_lines_kept() {
    let e = Error::config(
        std::path::Path::new("conf\u{1b}[2J.toml"),
        Some("trail.\u{1b}]0;x\u{7}name".to_owned()),
        "TOML parse error at line 2\n  |\n2 | name =\t\"\u{9b}31m\"\r\n  |        ^\nhint: forged\u{2028}".to_owned(),
        "fix \u{1b}[1m it".to_owned(),
    );
    assert_eq!(
        e.render(),
        "error: invalid config conf\\u{1b}[2J.toml\n  field: trail.\\u{1b}]0;x\\u{7}name\n  TOML parse error at line 2\n  |\n2 | name =\t\"\\u{9b}31m\"\n  |        ^\nhint: forged\\u{2028}\nhint: fix \\u{1b}[1m it\n"
    );
    assert!(!e.to_string().contains('\u{1b}'), "{e}");
    assert!(!e.to_string().contains('\u{9b}'), "{e}");
}
