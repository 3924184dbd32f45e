//! The one error type of trailkey. Every variant carries what the user needs
//! to act: where (file and field, or AWS operation), what, and a hint. It is
//! rendered in one place ([`Error::render`]) and mapped to exit status 1 in
//! `main.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anstyle::{AnsiColor, Style};

use crate::aws::AwsError;

const RED_BOLD: Style = AnsiColor::Red.on_default().bold();
const CYAN_BOLD: Style = AnsiColor::Cyan.on_default().bold();
/// `error:` in bold red (stripped where colour is off).
const ERROR: Painted = Painted(RED_BOLD, "error:");
const HINT: Painted = Painted(CYAN_BOLD, "hint:");

/// A label in a style, for messages (`error:`, `hint:`, init's `warning:`).
pub(crate) struct Painted(pub(crate) Style, pub(crate) &'static str);

impl std::fmt::Display for Painted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{:#}", self.0, self.1, self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file is unreadable or invalid. No AWS call has been made.
    #[error("{}: {message}", file.display())]
    Config {
        file: PathBuf,
        field: Option<String>,
        message: String,
        hint: String,
    },
    /// An AWS call failed.
    #[error("{context}: {source}")]
    Aws {
        context: String,
        source: AwsError,
        hint: String,
    },
    /// What AWS reports contradicts the config or makes the change unsafe
    /// (wrong account, trail in another Region, unusable key, a key
    /// `--delete-key` must not delete, ...). Found before any write, except
    /// by the verification after apply or destroy and by the deletion check
    /// made again right before `ScheduleKeyDeletion`.
    #[error("{message}")]
    Check { message: String, hint: String },
    /// The command cannot run as asked (e.g. apply without a terminal).
    #[error("{message}")]
    Usage { message: String, hint: String },
    /// A concurrent trailkey run won a race; this run stopped safely.
    #[error("{message}")]
    Conflict { message: String, hint: String },
}

impl Error {
    pub fn config(file: &Path, field: Option<String>, message: String, hint: String) -> Self {
        Error::Config {
            file: file.to_owned(),
            field,
            message,
            hint,
        }
    }

    pub fn check(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Check {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn conflict(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Conflict {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn usage(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// An AWS failure while doing `context`, with a plain-language hint chosen
    /// from the error code.
    pub fn aws(context: impl Into<String>, source: AwsError) -> Self {
        let hint = aws_hint(&source);
        Error::Aws {
            context: context.into(),
            source,
            hint,
        }
    }

    /// The same error, with `note` added to what it says (e.g. what an
    /// apply had done when it stopped).
    pub fn noting(self, note: &str) -> Self {
        match self {
            Error::Aws {
                context,
                source,
                hint,
            } => Error::Aws {
                context: format!("{context}; {note}"),
                source,
                hint,
            },
            Error::Check { message, hint } => Error::check(format!("{message}; {note}"), hint),
            Error::Usage { message, hint } => Error::usage(format!("{message}; {note}"), hint),
            Error::Conflict { message, hint } => {
                Error::conflict(format!("{message}; {note}"), hint)
            }
            Error::Config { .. } => self,
        }
    }

    /// The AWS error code, for an [`Error::Aws`].
    pub fn aws_code(&self) -> Option<&str> {
        match self {
            Error::Aws { source, .. } => Some(&source.code),
            _ => None,
        }
    }

    pub fn hint(&self) -> &str {
        match self {
            Error::Config { hint, .. }
            | Error::Aws { hint, .. }
            | Error::Check { hint, .. }
            | Error::Usage { hint, .. }
            | Error::Conflict { hint, .. } => hint,
        }
    }

    /// The message as plain text: an `error:` line, where it applies, and a `hint:` line.
    pub fn render(&self) -> String {
        anstream::adapter::strip_str(&self.render_styled()).to_string()
    }

    /// The same with ANSI colours, for `output::err` (which strips them where colour is off).
    pub fn render_styled(&self) -> String {
        let mut out = String::new();
        match self {
            Error::Config {
                file,
                field,
                message,
                ..
            } => {
                let _ = writeln!(out, "{ERROR} invalid config {}", file.display());
                if let Some(field) = field {
                    let _ = writeln!(out, "  field: {field}");
                }
                let _ = writeln!(out, "  {message}");
            }
            Error::Aws {
                context, source, ..
            } => {
                let _ = writeln!(out, "{ERROR} {context}");
                let _ = writeln!(
                    out,
                    "  AWS {} returned {}: {}",
                    source.operation, source.code, source.message
                );
            }
            Error::Check { message, .. }
            | Error::Usage { message, .. }
            | Error::Conflict { message, .. } => {
                let _ = writeln!(out, "{ERROR} {message}");
            }
        }
        let _ = writeln!(out, "{HINT} {}", self.hint());
        out
    }
}

/// What to do when the configured trail does not exist.
pub const TRAIL_NOT_FOUND_HINT: &str = "no trail with that name in this Region and account: check trail.name and region (the trail's home Region), and run trailkey with the management account's credentials";

/// Plain-language cause and fix for the AWS error codes trailkey meets.
pub fn aws_hint(e: &AwsError) -> String {
    let s = match e.code.as_str() {
        "InsufficientEncryptionPolicyException" => {
            "the key policy does not let CloudTrail use the key: run `trailkey plan` to see the key policy changes, and check that no foreign Deny statement blocks cloudtrail.amazonaws.com"
        }
        "KmsKeyNotFoundException" => {
            "CloudTrail could not find the key: the key must be in the trail's home Region and be named by its full key ARN"
        }
        "KmsKeyDisabledException" => {
            "the key is disabled: `trailkey apply` enables it, or enable it with `aws kms enable-key`"
        }
        "TrailNotFoundException" => TRAIL_NOT_FOUND_HINT,
        "NotOrganizationMasterAccountException" => {
            "organization trails can only be changed from the management account: run trailkey with management-account credentials or set roles.management"
        }
        "OrganizationNotInAllFeaturesModeException" => {
            "organization trails need AWS Organizations with all features enabled: enable all features in the Organizations console"
        }
        "AWSOrganizationsNotInUseException" => {
            "the caller's account is not in an organization: run trailkey with the management account's credentials"
        }
        "AccessDenied" | "AccessDeniedException" if e.operation == "AssumeRole" => {
            "could not assume the role in the Security Tooling account: check roles.security_tooling (the role name) and that its trust policy allows the management account (or roles.management) to assume it"
        }
        "AccessDenied" | "AccessDeniedException" => {
            "the caller lacks a permission for this call: policies/iam-management.json and policies/iam-security-tooling-role.json list what trailkey needs (docs/control-tower.md explains them)"
        }
        "InsufficientDependencyServiceAccessPermissionException"
        | "CloudTrailAccessNotEnabledException" => {
            "CloudTrail's trusted access to AWS Organizations is not enabled, or the caller cannot check it: enable it in the Organizations console (Services, CloudTrail) or with `aws organizations enable-aws-service-access --service-principal cloudtrail.amazonaws.com`"
        }
        "InsufficientIAMAccessPermissionException" => {
            "the caller lacks the IAM permissions CloudTrail checks for organization trails (e.g. iam:GetRole): see policies/iam-management.json"
        }
        "ExpiredToken" | "ExpiredTokenException" | "RequestExpired" => {
            "the AWS credentials have expired: refresh them (e.g. `aws sso login`) and run again"
        }
        "InvalidClientTokenId" | "UnrecognizedClientException" | "SignatureDoesNotMatch" => {
            "the AWS credentials are not valid: check AWS_PROFILE / AWS_ACCESS_KEY_ID and run `aws sts get-caller-identity`"
        }
        "CredentialsNotLoaded" => {
            "no AWS credentials found: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run `aws sso login`"
        }
        "LimitExceededException" => {
            "a KMS quota was reached (keys or aliases per account and Region, or a request rate): remove unused keys or ask for a quota increase, then run again"
        }
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" => {
            "AWS kept throttling the requests after the retries: wait a minute and run again"
        }
        "MalformedPolicyDocumentException" => {
            "KMS rejected the key policy: a principal in it may not exist yet (new accounts take a few minutes); run `trailkey policy` to inspect it and run again"
        }
        "DispatchFailure" | "Timeout" => {
            "could not reach AWS: check the network, proxy settings and AWS_ENDPOINT_URL"
        }
        _ => "see the AWS message above; `trailkey plan` shows what trailkey would change",
    };
    s.to_owned()
}

#[cfg(test)]
mod tests {
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
            ("AssumeRole", "AccessDenied"),
            ("PutKeyPolicy", "AccessDeniedException"),
            (
                "UpdateTrail",
                "InsufficientDependencyServiceAccessPermissionException",
            ),
            ("UpdateTrail", "CloudTrailAccessNotEnabledException"),
            ("UpdateTrail", "InsufficientIAMAccessPermissionException"),
            ("GetCallerIdentity", "ExpiredToken"),
            ("GetCallerIdentity", "InvalidClientTokenId"),
            ("GetCallerIdentity", "CredentialsNotLoaded"),
            ("CreateKey", "LimitExceededException"),
            ("CreateKey", "ThrottlingException"),
            ("PutKeyPolicy", "MalformedPolicyDocumentException"),
            ("GetTrail", "DispatchFailure"),
            ("CreateAlias", "SomethingNew"),
        ];
        let mut all = String::new();
        for (operation, code) in cases {
            let text = Error::aws(
                "doing the thing",
                AwsError::new(operation, code, "the AWS message"),
            )
            .render();
            assert!(text.starts_with("error: doing the thing\n"), "{text}");
            assert!(text.contains("\nhint: "), "{text}");
            all.push_str(&text);
            all.push('\n');
        }
        insta::assert_snapshot!(all);
    }
}
