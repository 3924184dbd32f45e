//! How trailkey handles an AWS error code: the types of the table's rules
//! ([`super::rules`]) and the lookups in it.

/// The hint for an AWS error code the table gives no hint of its own.
pub const GENERIC_HINT: &str =
    "see the AWS message above; `trailkey plan` shows what trailkey would change";

/// How trailkey handles an AWS error code from one of its calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Handling {
    /// Retried, bounded (`--propagation-timeout`) and shown on stderr, only
    /// while this run's own earlier write propagates (its `CreateKey`,
    /// `PutKeyPolicy`, `EnableKey` or `CancelKeyDeletion`); the same error
    /// without such a write fails at once, with its hint.
    AfterOwnWrite,
    /// Retried, bounded (`--policy-retry-timeout` for a key policy,
    /// `--propagation-timeout` for the trail) and shown on stderr, whatever
    /// this run wrote: the service says to wait and try again.
    Wait,
    /// Retried by the SDK's standard retry strategy: throttling, or a
    /// transient error (a server error, HTTP 500, 502, 503 or 504; a
    /// timeout; a connection that failed). After the last attempt it fails
    /// with its hint.
    SdkRetry,
    /// Not a failure where trailkey makes the call: the code is the answer
    /// (no such key, alias, bucket or bucket configuration; another run
    /// created the alias first), and trailkey carries on, or stops with a
    /// message of its own. Elsewhere it fails at once, with its hint.
    Answer,
    /// Fails at once, with a hint specific to this error.
    Hint,
    /// Fails at once, with the generic hint ([`GENERIC_HINT`]).
    Generic,
}

/// What a rule does with its codes: the handling and, except for
/// [`Handling::Generic`], the hint shown when the error ends the run. The
/// hint travels with the handling, so that the two cannot disagree.
#[derive(Debug, Clone, Copy)]
pub(super) enum Treat {
    AfterOwnWrite(&'static str),
    Wait(&'static str),
    SdkRetry(&'static str),
    Answer(&'static str),
    Hint(&'static str),
    Generic,
}

impl Treat {
    pub(super) fn handling(self) -> Handling {
        match self {
            Treat::AfterOwnWrite(_) => Handling::AfterOwnWrite,
            Treat::Wait(_) => Handling::Wait,
            Treat::SdkRetry(_) => Handling::SdkRetry,
            Treat::Answer(_) => Handling::Answer,
            Treat::Hint(_) => Handling::Hint,
            Treat::Generic => Handling::Generic,
        }
    }

    pub(super) fn hint(self) -> Option<&'static str> {
        match self {
            Treat::AfterOwnWrite(h)
            | Treat::Wait(h)
            | Treat::SdkRetry(h)
            | Treat::Answer(h)
            | Treat::Hint(h) => Some(h),
            Treat::Generic => None,
        }
    }
}

/// Which operations a rule applies to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Ops {
    Any,
    Of(&'static [&'static str]),
}

/// Which messages a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Message {
    Any,
    /// KMS's policy lockout safety check ([`is_lockout`]).
    Lockout,
}

/// One row of the table: `codes` from `ops` (with `message`) are treated as
/// `treat` says.
#[derive(Debug)]
pub(super) struct Rule {
    pub(super) ops: Ops,
    pub(super) codes: &'static [&'static str],
    pub(super) message: Message,
    pub(super) treat: Treat,
}

impl Rule {
    pub(super) fn matches(&self, operation: &str, code: &str, message: &str) -> bool {
        let op = match self.ops {
            Ops::Any => true,
            Ops::Of(ops) => ops.contains(&operation),
        };
        op && self.codes.contains(&code) && (self.message == Message::Any || is_lockout(message))
    }
}

pub(super) const fn rule(ops: Ops, codes: &'static [&'static str], treat: Treat) -> Rule {
    Rule {
        ops,
        codes,
        message: Message::Any,
        treat,
    }
}

/// Whether a KMS `MalformedPolicyDocumentException` message is the policy
/// lockout safety check: the caller's own permissions would not let it
/// change the key policy afterwards. Waiting does not change that, unlike a
/// principal IAM does not know yet.
pub fn is_lockout(message: &str) -> bool {
    message.contains("will not allow you to update the key policy in the future")
}
