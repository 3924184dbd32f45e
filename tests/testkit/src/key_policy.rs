//! An evaluator of KMS key policies: whether a key policy allows a request
//! to the key, explicitly denies it (and by which statement), or does not
//! allow it. The real-AWS layer (`tests/testkit/src/rules/`) and the
//! in-memory fake (`src/aws/fake.rs`) apply it. It depends on std and serde_json only and shares no
//! code with trailkey's own policy handling, so that it checks trailkey
//! rather than agreeing with it.
//!
//! It answers for the key policy only. A key policy statement that names an
//! account (`arn:<partition>:iam::<account>:root`, or the bare account ID)
//! covers every principal of that account, but what it grants is delegated
//! to that account's IAM: a request it allows here is allowed in AWS only if
//! the caller's IAM policies (identity policies, permissions boundaries,
//! SCPs, session policies) allow it too, and any of those can deny it
//! ("Default key policy" and "Determining access to AWS KMS keys", AWS KMS
//! Developer Guide, <https://docs.aws.amazon.com/kms/latest/developerguide/determining-access-key-policy.html>).
//! Grants are not evaluated either.
//!
//! Evaluation follows "Policy evaluation logic" and "The difference between
//! explicit and implicit denies" (IAM User Guide,
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>,
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_AccessPolicyLanguage_Interplay.html>):
//! a `Deny` statement that applies to the request denies it explicitly,
//! whatever allows it; otherwise an `Allow` statement that applies allows
//! it; otherwise it is implicitly denied ([`Decision::NotAllowed`]).
//!
//! A statement applies when its principal, action and conditions all match:
//!
//! * **Principal.** `"*"` and `{"AWS": "*"}` are everyone. For an AWS
//!   principal ([`Caller::Aws`]): an account (`arn:<p>:iam::<account>:root`
//!   or the 12-digit account ID) is any principal of that account; a role
//!   ARN is that role (any of its sessions: `aws:PrincipalArn` of a role
//!   session is the role's ARN, path included); a user ARN is that user. An
//!   `arn:<p>:sts::<account>:assumed-role/<role>/<session>` ARN is one
//!   session, which [`Caller`] does not carry: for a session of that role it
//!   is not understood, for any other caller it does not match.
//!   `{"Service": ...}` names only that service principal
//!   ([`Caller::Service`]), compared case-insensitively. `NotPrincipal` is
//!   understood only with `Deny` ("IAM JSON policy elements: NotPrincipal"):
//!   it applies to a service not listed; to an AWS principal, it applies
//!   when nothing listed could name the caller, and is not understood
//!   otherwise (excluding a principal takes each of its identities: the
//!   session, the role, the account).
//! * **Action** (or `NotAction`): names compare case-insensitively, with
//!   `*` and `?`.
//! * **Condition**, per "IAM JSON policy elements: Condition operators"
//!   (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html>)
//!   and "Conditions with multiple context keys or values"
//!   (<https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_multi-value-conditions.html>):
//!   operators and keys are ANDed, the values of one key ORed (NORed for a
//!   negated operator); condition key names compare case-insensitively,
//!   values case-sensitively (but `...IgnoreCase`); a key missing from the
//!   request makes a positive operator false and a negated one true, except
//!   `...IfExists` (true) and `Null`. Operators: `StringEquals`,
//!   `StringNotEquals`, `StringEqualsIgnoreCase`, `StringNotEqualsIgnoreCase`,
//!   `StringLike`, `StringNotLike`, `ArnEquals`, `ArnLike`, `ArnNotEquals`,
//!   `ArnNotLike` (each of the six ARN parts matched on its own), `Bool`
//!   (`true` and `false` in any case), `NumericEquals`, `NumericNotEquals`,
//!   `NumericLessThan(Equals)`, `NumericGreaterThan(Equals)`, their
//!   `...IfExists` forms, and `Null`.
//!
//! Condition keys ("AWS global condition context keys",
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html>):
//! `aws:PrincipalArn` and `aws:PrincipalAccount` come from an AWS
//! principal caller (for a role session, the role's ARN, "not the ARN of
//! the user that assumed the role"); for a service principal they are not
//! understood. Any key the [`Request`] carries has its value; of the others,
//! `aws:SourceArn`, `aws:SourceAccount` (present only on a service
//! principal's calls), `kms:EncryptionContext:aws:cloudtrail:arn` and
//! `kms:RotationPeriodInDays` (present only on an `EnableKeyRotation` that
//! sets a period) are absent, and every other key is not understood.
//!
//! `Resource` is not evaluated: in a key policy it can only stand for the
//! key itself.
//!
//! Where the evaluator does not understand a statement (a condition
//! operator or key it does not know, a policy variable `${...}` in a
//! condition value, `NotResource`, a principal it cannot place), it is
//! conservative: such a statement never allows, and a `Deny` of that kind
//! counts as matching. A request this refuses may be one AWS allows, and a
//! `Deny` this applies may be one AWS does not, never the other way round.
//!
//! Time is linear in the size of the policy times the size of the request:
//! statements are read once, wildcards matched in O(pattern × text)
//! ([`wildcard_match`]).

use serde_json::Value;

/// Who makes a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    /// An AWS principal: `arn` as `aws:PrincipalArn` shows it (the role's
    /// ARN for a role session, a user's ARN, or
    /// `arn:<partition>:iam::<account>:root`), and its `account`.
    Aws { arn: &'a str, account: &'a str },
    /// An AWS service principal, e.g. `cloudtrail.amazonaws.com`.
    Service(&'a str),
}

impl<'a> Caller<'a> {
    /// The AWS principal `arn`, in the account its ARN names.
    pub fn aws(arn: &'a str) -> Caller<'a> {
        Caller::Aws {
            arn,
            account: arn.split(':').nth(4).unwrap_or_default(),
        }
    }
}

/// A request to the key.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub caller: Caller<'a>,
    /// The action, e.g. `kms:Decrypt`.
    pub action: &'a str,
    /// Condition keys (in any case) the request carries, with their values,
    /// e.g. `("kms:EncryptionContext:aws:cloudtrail:arn", <trail ARN>)`.
    /// `aws:PrincipalArn` and `aws:PrincipalAccount` come from `caller`.
    pub context: Vec<(&'a str, &'a str)>,
}

/// What the key policy says to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// An `Allow` statement applies and no `Deny` does.
    Allowed,
    /// A `Deny` statement applies (or may: see the module's notes), named
    /// as `statement "<Sid>"` or `statement #<n>` (from 1).
    ExplicitlyDenied { statement: String },
    /// Nothing allows it: an implicit deny.
    NotAllowed,
}

/// What `policy` (a key policy document) says to `request`. A policy
/// without a `Statement` allows nothing.
pub fn evaluate(policy: &Value, request: &Request<'_>) -> Decision {
    decide(&statements_of(policy), |s| matches(s, request))
}

/// The statements of a policy document: its `Statement` list, or the one
/// statement it holds; none without one.
pub(crate) fn statements_of(policy: &Value) -> Vec<&Value> {
    match policy.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    }
}

/// What `statements` say to a request, `matches` telling whether a
/// statement applies to it (Effect aside): a `Deny` that applies or may
/// apply denies it explicitly; otherwise an `Allow` that applies allows
/// it; otherwise it is not allowed.
pub(crate) fn decide(statements: &[&Value], matches: impl Fn(&Value) -> Match) -> Decision {
    if let Some((index, deny)) = statements
        .iter()
        .enumerate()
        .find(|(_, s)| effect(s) == Some(Effect::Deny) && matches(s) != Match::No)
    {
        return Decision::ExplicitlyDenied {
            statement: name(index, deny),
        };
    }
    let allowed = statements
        .iter()
        .any(|s| effect(s) == Some(Effect::Allow) && matches(s) == Match::Yes);
    if allowed {
        Decision::Allowed
    } else {
        Decision::NotAllowed
    }
}

/// The condition keys the evaluator knows, in lower case, besides those of
/// the caller: absent when the request does not carry them.
const KNOWN_KEYS: &[&str] = &[
    "aws:sourcearn",
    "aws:sourceaccount",
    "kms:encryptioncontext:aws:cloudtrail:arn",
    "kms:rotationperiodindays",
];

/// A condition key's value in a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lookup<'a> {
    Present(&'a str),
    Absent,
    Unknown,
}

impl<'a> Request<'a> {
    /// The value of `key` (lower case).
    fn lookup(&self, key: &str) -> Lookup<'a> {
        match (key, self.caller) {
            ("aws:principalarn", Caller::Aws { arn, .. }) => return Lookup::Present(arn),
            ("aws:principalaccount", Caller::Aws { account, .. }) => {
                return Lookup::Present(account);
            }
            ("aws:principalarn" | "aws:principalaccount", Caller::Service(_)) => {
                return Lookup::Unknown;
            }
            _ => {}
        }
        if let Some((_, v)) = self
            .context
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
        {
            return Lookup::Present(v);
        }
        if KNOWN_KEYS.contains(&key) {
            Lookup::Absent
        } else {
            Lookup::Unknown
        }
    }
}

/// Three-valued: a statement or one of its parts matches, does not, or the
/// evaluator cannot tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    Yes,
    No,
    Unknown,
}

impl Match {
    pub(crate) fn from_bool(b: bool) -> Match {
        if b { Match::Yes } else { Match::No }
    }

    /// Both: `No` if either is `No`, else `Unknown` if either is.
    pub(crate) fn and(self, other: Match) -> Match {
        match (self, other) {
            (Match::No, _) | (_, Match::No) => Match::No,
            (Match::Unknown, _) | (_, Match::Unknown) => Match::Unknown,
            _ => Match::Yes,
        }
    }

    /// Either: `Yes` if either is `Yes`, else `Unknown` if either is.
    pub(crate) fn or(self, other: Match) -> Match {
        match (self, other) {
            (Match::Yes, _) | (_, Match::Yes) => Match::Yes,
            (Match::Unknown, _) | (_, Match::Unknown) => Match::Unknown,
            _ => Match::No,
        }
    }

    fn not(self) -> Match {
        match self {
            Match::Yes => Match::No,
            Match::No => Match::Yes,
            Match::Unknown => Match::Unknown,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

pub(crate) fn effect(statement: &Value) -> Option<Effect> {
    match statement.get("Effect")?.as_str()? {
        "Allow" => Some(Effect::Allow),
        "Deny" => Some(Effect::Deny),
        _ => None,
    }
}

/// `statement "Sid"` or `statement #n` for messages.
pub(crate) fn name(index: usize, statement: &Value) -> String {
    match statement.get("Sid").and_then(Value::as_str) {
        Some(sid) if !sid.is_empty() => format!("statement {sid:?}"),
        _ => format!("statement #{}", index + 1),
    }
}

/// Whether `statement` applies to `request`, Effect aside.
fn matches(statement: &Value, request: &Request<'_>) -> Match {
    if statement.get("NotResource").is_some() {
        return Match::Unknown;
    }
    principal(statement, request.caller)
        .and(action(statement, request.action))
        .and(conditions(statement, request))
}

/// Whether the statement's `Principal` (or, in a `Deny`, `NotPrincipal`)
/// covers `caller`.
fn principal(statement: &Value, caller: Caller<'_>) -> Match {
    let deny = effect(statement) == Some(Effect::Deny);
    match (statement.get("Principal"), statement.get("NotPrincipal")) {
        (Some(p), None) => names(p, caller),
        // AWS supports NotPrincipal only with Deny: in an Allow it grants
        // nothing this evaluator will vouch for.
        (None, Some(p)) if deny => match (names(p, caller), caller) {
            // Excluding an AWS principal takes each of its identities
            // (session, role, account), which `Caller` does not all carry.
            (Match::Yes, Caller::Aws { .. }) => Match::Unknown,
            (m, _) => m.not(),
        },
        _ => Match::Unknown,
    }
}

/// Whether the principal element `p` names `caller`.
fn names(p: &Value, caller: Caller<'_>) -> Match {
    match p {
        Value::String(s) if s == "*" => Match::Yes,
        Value::Object(by_kind) => by_kind.iter().fold(Match::No, |m, (kind, who)| {
            let listed = strings(who);
            m.or(match (kind.as_str(), caller) {
                ("AWS", Caller::Aws { arn, account }) => listed
                    .iter()
                    .fold(Match::No, |m, entry| m.or(names_aws(entry, arn, account))),
                ("AWS", Caller::Service(_)) => Match::from_bool(listed.iter().any(|s| s == "*")),
                ("Service", Caller::Service(service)) => {
                    Match::from_bool(listed.iter().any(|s| s.eq_ignore_ascii_case(service)))
                }
                ("Service" | "Federated" | "CanonicalUser", _) => Match::No,
                (_, Caller::Aws { .. }) => Match::Unknown,
                (_, Caller::Service(_)) => Match::No,
            })
        }),
        // Only "*" stands alone; a service is never named otherwise.
        _ => match caller {
            Caller::Aws { .. } => Match::Unknown,
            Caller::Service(_) => Match::No,
        },
    }
}

/// Whether one `{"AWS": ...}` entry names the AWS principal `arn` of
/// `account`.
fn names_aws(entry: &str, arn: &str, account: &str) -> Match {
    if entry == "*" {
        return Match::Yes;
    }
    if is_account(entry) {
        return Match::from_bool(entry == account);
    }
    let parts: Vec<&str> = entry.splitn(6, ':').collect();
    let [prefix, partition, service, "", owner, resource] = parts[..] else {
        // A unique ID (AROA..., AIDA...) or something else.
        return Match::Unknown;
    };
    if prefix != "arn" || !is_account(owner) || entry.contains(['*', '?']) {
        return Match::Unknown;
    }
    // A principal ARN names a principal of its own account only.
    if owner != account || arn.split(':').nth(1) != Some(partition) {
        return Match::No;
    }
    match (service, resource) {
        ("iam", "root") => Match::Yes,
        ("iam", r) if r.starts_with("role/") || r.starts_with("user/") => {
            if entry == arn {
                Match::Yes
            } else if entry.eq_ignore_ascii_case(arn) {
                // IAM names are unique case-insensitively; whether AWS
                // resolves this spelling is not checked here.
                Match::Unknown
            } else {
                Match::No
            }
        }
        ("sts", r) if r.starts_with("assumed-role/") => {
            // One session of a role: this caller's, perhaps, if it is a
            // session of that role (an assumed-role ARN has no path).
            let role = r.split('/').nth(1).unwrap_or_default();
            let caller_role = arn
                .split(':')
                .nth(5)
                .and_then(|r| r.strip_prefix("role/"))
                .and_then(|r| r.rsplit('/').next());
            if caller_role == Some(role) {
                Match::Unknown
            } else {
                Match::No
            }
        }
        _ => Match::Unknown,
    }
}

/// Whether the statement's `Action` (or `NotAction`) covers `wanted`;
/// action names compare case-insensitively, with IAM's `*` and `?`.
pub(crate) fn action(statement: &Value, wanted: &str) -> Match {
    let wanted = wanted.to_ascii_lowercase();
    let any_of = |v: &Value| {
        strings(v)
            .iter()
            .any(|p| wildcard_match(&p.to_ascii_lowercase(), &wanted))
    };
    match (statement.get("Action"), statement.get("NotAction")) {
        (Some(a), None) => Match::from_bool(any_of(a)),
        (None, Some(a)) => Match::from_bool(!any_of(a)),
        _ => Match::Unknown,
    }
}

/// The statement's `Condition` block against the request.
fn conditions(statement: &Value, request: &Request<'_>) -> Match {
    conditions_with(statement, &|key| request.lookup(key))
}

/// The statement's `Condition` block against the condition keys `lookup`
/// gives (it takes a key name in lower case).
pub(crate) fn conditions_with<'a>(statement: &Value, lookup: &dyn Fn(&str) -> Lookup<'a>) -> Match {
    let Some(block) = statement.get("Condition") else {
        return Match::Yes;
    };
    let Some(block) = block.as_object() else {
        return Match::Unknown;
    };
    let mut result = Match::Yes;
    for (operator, keys) in block {
        let Some(keys) = keys.as_object() else {
            return Match::Unknown;
        };
        for (key, values) in keys {
            result = result.and(condition(operator, key, values, lookup));
        }
    }
    result
}

/// One operator, one key, its values.
fn condition<'a>(
    operator: &str,
    key: &str,
    values: &Value,
    lookup: &dyn Fn(&str) -> Lookup<'a>,
) -> Match {
    let present = match lookup(&key.to_ascii_lowercase()) {
        Lookup::Unknown => return Match::Unknown,
        Lookup::Absent => None,
        Lookup::Present(v) => Some(v),
    };
    let values = strings(values);
    if operator == "Null" {
        let mut result = Match::No;
        for v in &values {
            let wants_absent = match v.as_str() {
                "true" => true,
                "false" => false,
                _ => return Match::Unknown,
            };
            if wants_absent == present.is_none() {
                result = Match::Yes;
            }
        }
        return result;
    }
    // A policy variable stands for a value of the request context that
    // this evaluator does not substitute.
    if values.iter().any(|v| v.contains("${")) {
        return Match::Unknown;
    }
    let (base, if_exists) = match operator.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (operator, false),
    };
    let (negated, compare): (bool, fn(&str, &str) -> bool) = match base {
        "StringEquals" => (false, |p, v| p == v),
        "StringNotEquals" => (true, |p, v| p == v),
        "StringEqualsIgnoreCase" => (false, |p, v| p.to_lowercase() == v.to_lowercase()),
        "StringNotEqualsIgnoreCase" => (true, |p, v| p.to_lowercase() == v.to_lowercase()),
        "StringLike" => (false, wildcard_match),
        "StringNotLike" => (true, wildcard_match),
        "ArnEquals" | "ArnLike" => (false, arn_like),
        "ArnNotEquals" | "ArnNotLike" => (true, arn_like),
        "Bool" => (false, |p, v| p.eq_ignore_ascii_case(v)),
        numeric if numeric.starts_with("Numeric") => {
            return numeric_condition(numeric, if_exists, &values, present);
        }
        _ => return Match::Unknown,
    };
    let Some(value) = present else {
        return Match::from_bool(if_exists || negated);
    };
    let any = values.iter().any(|p| compare(p, value));
    Match::from_bool(any != negated)
}

/// A `Numeric...` operator (`NumericEquals`, `NumericNotEquals`,
/// `NumericLessThan`, `NumericLessThanEquals`, `NumericGreaterThan`,
/// `NumericGreaterThanEquals`): the request's value against the policy's,
/// as numbers. A value that is no number is not understood.
fn numeric_condition(
    base: &str,
    if_exists: bool,
    values: &[String],
    present: Option<&str>,
) -> Match {
    let (negated, compare): (bool, fn(f64, f64) -> bool) = match base {
        "NumericEquals" => (false, |r, p| r == p),
        "NumericNotEquals" => (true, |r, p| r == p),
        "NumericLessThan" => (false, |r, p| r < p),
        "NumericLessThanEquals" => (false, |r, p| r <= p),
        "NumericGreaterThan" => (false, |r, p| r > p),
        "NumericGreaterThanEquals" => (false, |r, p| r >= p),
        _ => return Match::Unknown,
    };
    let Some(policy) = values
        .iter()
        .map(|v| number(v))
        .collect::<Option<Vec<f64>>>()
    else {
        return Match::Unknown;
    };
    let Some(value) = present else {
        return Match::from_bool(if_exists || negated);
    };
    let Some(value) = number(value) else {
        return Match::Unknown;
    };
    let any = policy.iter().any(|p| compare(value, *p));
    Match::from_bool(any != negated)
}

/// A plain decimal (`180`, `-1`, `180.5`) as a number; anything else
/// (`inf`, `NaN`, `1e2`, `+180`, blanks) is not understood.
fn number(text: &str) -> Option<f64> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (plain(whole) && plain(fraction))
        .then(|| text.parse().ok())
        .flatten()
}

/// `ArnLike`/`ArnEquals`: each of the six colon-separated parts matched on
/// its own, with `*` and `?`; the last part takes the rest of the ARN.
pub fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| wildcard_match(p, a))
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A string or a list of strings as a list; numbers and booleans as text.
pub(crate) fn strings(v: &Value) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match v {
        Value::Array(list) => list.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of
/// characters and `?` any one character. Case-sensitive. At most
/// O(len(pattern) · len(text)) steps: on a mismatch it returns to the last
/// `*` only, which then takes one more character.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TRAIL: &str = "arn:aws:cloudtrail:us-east-1:333333333333:trail/org-trail";
    const CONTEXT_KEY: &str = "kms:EncryptionContext:aws:cloudtrail:arn";
    const SIEM: &str = "arn:aws:iam::777788889999:role/SIEM";

    /// trailkey's key policy statements for declared readers and key
    /// protection, with the usual root administration.
    fn trailkey_policy() -> Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "TrailkeyRootAdministration",
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "TrailkeyDeclaredReadersDecrypt",
                    "Effect": "Allow",
                    "Principal": {"AWS": [
                        "arn:aws:iam::444455556666:root",
                        "arn:aws:iam::777788889999:role/SIEM",
                    ]},
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                    "Condition": {
                        "Null": {CONTEXT_KEY: "false"},
                        "StringLike": {CONTEXT_KEY: "arn:aws:cloudtrail:*:333333333333:trail/*"},
                    },
                },
                {
                    "Sid": "TrailkeyProtectKey",
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": ["kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:DisableKeyRotation"],
                    "Resource": "*",
                    "Condition": {"ArnNotLike": {"aws:PrincipalArn": [
                        "arn:aws:iam::111111111111:role/AWSControlTowerExecution",
                        "arn:aws:iam::111111111111:role/*/AWSControlTowerExecution",
                        "arn:aws:iam::111111111111:role/BreakGlass",
                    ]}},
                },
            ],
        })
    }

    fn as_principal<'a>(arn: &'a str, action: &'a str) -> Request<'a> {
        Request {
            caller: Caller::aws(arn),
            action,
            context: Vec::new(),
        }
    }

    fn decrypt<'a>(arn: &'a str, context: Vec<(&'a str, &'a str)>) -> Request<'a> {
        Request {
            caller: Caller::aws(arn),
            action: "kms:Decrypt",
            context,
        }
    }

    fn denied_by(sid: &str) -> Decision {
        Decision::ExplicitlyDenied {
            statement: format!("statement {sid:?}"),
        }
    }

    fn policy(statements: Vec<Value>) -> Value {
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    #[test]
    fn declared_readers_decrypt_only_cloudtrail_logs() {
        let p = trailkey_policy();
        let with_context = vec![(CONTEXT_KEY, TRAIL)];
        assert_eq!(
            evaluate(&p, &decrypt(SIEM, with_context.clone())),
            Decision::Allowed
        );
        assert_eq!(
            evaluate(&p, &decrypt(SIEM, Vec::new())),
            Decision::NotAllowed,
            "no encryption context"
        );
        let other_trail_account = "arn:aws:cloudtrail:us-east-1:999999999999:trail/org-trail";
        assert_eq!(
            evaluate(&p, &decrypt(SIEM, vec![(CONTEXT_KEY, other_trail_account)])),
            Decision::NotAllowed
        );
        assert_eq!(
            evaluate(
                &p,
                &decrypt("arn:aws:iam::777788889999:role/Other", with_context.clone())
            ),
            Decision::NotAllowed,
            "only the SIEM role of its account"
        );
        for anyone in [
            "arn:aws:iam::444455556666:role/Analyst",
            "arn:aws:iam::444455556666:role/team/Reader",
            "arn:aws:iam::444455556666:user/alice",
            "arn:aws:iam::444455556666:root",
        ] {
            assert_eq!(
                evaluate(&p, &decrypt(anyone, with_context.clone())),
                Decision::Allowed,
                "{anyone}: the account's root is listed"
            );
        }
        // The key's own account administers it through IAM.
        assert_eq!(
            evaluate(
                &p,
                &decrypt("arn:aws:iam::111111111111:role/Anyone", Vec::new())
            ),
            Decision::Allowed
        );
    }

    #[test]
    fn the_protect_statement_denies_all_but_the_exempt_roles() {
        let p = trailkey_policy();
        let protected = [
            "kms:DisableKey",
            "kms:ScheduleKeyDeletion",
            "kms:DisableKeyRotation",
        ];
        for action in protected {
            assert_eq!(
                evaluate(
                    &p,
                    &as_principal("arn:aws:iam::111111111111:role/SomeoneElse", action)
                ),
                denied_by("TrailkeyProtectKey"),
                "{action}"
            );
            for exempt in [
                "arn:aws:iam::111111111111:role/BreakGlass",
                "arn:aws:iam::111111111111:role/AWSControlTowerExecution",
                "arn:aws:iam::111111111111:role/cross/path/AWSControlTowerExecution",
            ] {
                assert_eq!(
                    evaluate(&p, &as_principal(exempt, action)),
                    Decision::Allowed,
                    "{exempt} {action}"
                );
            }
            // The same role names in another account are not exempt.
            assert_eq!(
                evaluate(
                    &p,
                    &as_principal("arn:aws:iam::444455556666:role/BreakGlass", action)
                ),
                denied_by("TrailkeyProtectKey")
            );
        }
        for who in [
            "arn:aws:iam::111111111111:role/SomeoneElse",
            "arn:aws:iam::111111111111:role/BreakGlass",
            "arn:aws:iam::111111111111:role/AWSControlTowerExecution",
            "arn:aws:iam::444455556666:role/Analyst",
        ] {
            let put = evaluate(&p, &as_principal(who, "kms:PutKeyPolicy"));
            assert!(
                !matches!(put, Decision::ExplicitlyDenied { .. }),
                "{who}: {put:?}"
            );
        }
        assert_eq!(
            evaluate(
                &p,
                &as_principal(
                    "arn:aws:iam::111111111111:role/SomeoneElse",
                    "kms:PutKeyPolicy"
                )
            ),
            Decision::Allowed
        );
        // A service principal has no aws:PrincipalArn the evaluator knows:
        // the Deny counts for it.
        let cloudtrail = Request {
            caller: Caller::Service("cloudtrail.amazonaws.com"),
            action: "kms:DisableKey",
            context: Vec::new(),
        };
        assert_eq!(evaluate(&p, &cloudtrail), denied_by("TrailkeyProtectKey"));
    }

    /// Numeric operators compare numbers, their `...IfExists` forms take a
    /// missing key as a match, and `kms:RotationPeriodInDays` is absent
    /// from a request that does not carry it: the period protection denies
    /// another period and none, and allows the configured one and the
    /// exempt.
    #[test]
    fn numeric_conditions_and_the_rotation_period_protection() {
        let p = json!({
            "Statement": [
                {"Sid": "Root", "Effect": "Allow",
                 "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                 "Action": "kms:*", "Resource": "*"},
                {"Sid": "TrailkeyProtectRotationPeriod", "Effect": "Deny",
                 "Principal": {"AWS": "*"}, "Action": "kms:EnableKeyRotation",
                 "Resource": "*",
                 "Condition": {
                     "ArnNotLike": {"aws:PrincipalArn": ["arn:aws:iam::111111111111:role/Admin"]},
                     "NumericNotEqualsIfExists": {"kms:RotationPeriodInDays": "180"}}}
            ]
        });
        let rotate = |who: &str, days: Option<&'static str>| {
            let mut r = as_principal(who, "kms:EnableKeyRotation");
            r.context
                .extend(days.map(|d| ("kms:RotationPeriodInDays", d)));
            evaluate(&p, &r)
        };
        let other = "arn:aws:iam::111111111111:role/Other";
        let denied = denied_by("TrailkeyProtectRotationPeriod");
        assert_eq!(rotate(other, Some("2560")), denied);
        assert_eq!(rotate(other, None), denied);
        assert_eq!(rotate(other, Some("180")), Decision::Allowed);
        assert_eq!(rotate(other, Some("180.0")), Decision::Allowed);
        assert_eq!(
            rotate("arn:aws:iam::111111111111:role/Admin", Some("2560")),
            Decision::Allowed
        );
        assert_eq!(
            evaluate(&p, &as_principal(other, "kms:DisableKey")),
            Decision::Allowed
        );
        // Each operator, and a value that is no number.
        let cond = |op: &str, policy: &str, value: Option<&'static str>| {
            let statement = json!({"Condition": {op: {"kms:RotationPeriodInDays": policy}}});
            conditions_with(&statement, &|k| match (k, value) {
                ("kms:rotationperiodindays", Some(v)) => Lookup::Present(v),
                _ => Lookup::Absent,
            })
        };
        assert_eq!(cond("NumericEquals", "90", Some("90")), Match::Yes);
        assert_eq!(cond("NumericEquals", "90", Some("91")), Match::No);
        assert_eq!(cond("NumericNotEquals", "90", Some("91")), Match::Yes);
        assert_eq!(cond("NumericLessThan", "90", Some("89")), Match::Yes);
        assert_eq!(cond("NumericLessThanEquals", "90", Some("90")), Match::Yes);
        assert_eq!(cond("NumericGreaterThan", "90", Some("90")), Match::No);
        assert_eq!(
            cond("NumericGreaterThanEquals", "90", Some("90")),
            Match::Yes
        );
        assert_eq!(cond("NumericEquals", "90", None), Match::No);
        assert_eq!(cond("NumericEqualsIfExists", "90", None), Match::Yes);
        assert_eq!(cond("NumericNotEquals", "90", None), Match::Yes);
        assert_eq!(cond("NumericEquals", "ninety", Some("90")), Match::Unknown);
        assert_eq!(cond("NumericEquals", "90", Some("x")), Match::Unknown);
        for odd in ["NaN", "inf", "1e2", "+90", " 90", "90.", ".5", ""] {
            assert_eq!(
                cond("NumericNotEquals", odd, Some("90")),
                Match::Unknown,
                "{odd}"
            );
            assert_eq!(
                cond("NumericNotEquals", "90", Some(odd)),
                Match::Unknown,
                "{odd}"
            );
        }
    }

    #[test]
    fn account_principals_as_root_arn_or_bare_id() {
        for principal in [
            json!({"AWS": "arn:aws:iam::444455556666:root"}),
            json!({"AWS": "444455556666"}),
            json!({"AWS": ["arn:aws:iam::555555555555:root", "444455556666"]}),
            json!({"AWS": "*"}),
            json!("*"),
        ] {
            let p = policy(vec![json!({
                "Effect": "Allow", "Principal": principal, "Action": "kms:DescribeKey", "Resource": "*",
            })]);
            assert_eq!(
                evaluate(
                    &p,
                    &as_principal("arn:aws:iam::444455556666:role/R", "kms:DescribeKey")
                ),
                Decision::Allowed,
                "{principal}"
            );
            assert_eq!(
                evaluate(
                    &p,
                    &as_principal("arn:aws:iam::444455556666:role/R", "kms:Decrypt")
                ),
                Decision::NotAllowed,
                "{principal}"
            );
        }
        let other = policy(vec![json!({
            "Effect": "Allow",
            "Principal": {"AWS": ["arn:aws:iam::555555555555:root", "arn:aws-cn:iam::444455556666:root"]},
            "Action": "kms:*", "Resource": "*",
        })]);
        assert_eq!(
            evaluate(
                &other,
                &as_principal("arn:aws:iam::444455556666:role/R", "kms:Decrypt")
            ),
            Decision::NotAllowed,
            "another account, another partition"
        );
        let service = policy(vec![json!({
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:*", "Resource": "*",
        })]);
        assert_eq!(
            evaluate(
                &service,
                &as_principal("arn:aws:iam::444455556666:role/R", "kms:Decrypt")
            ),
            Decision::NotAllowed
        );
    }

    #[test]
    fn principals_the_evaluator_cannot_place_never_allow_and_always_deny() {
        let caller = "arn:aws:iam::111111111111:role/Admin";
        for principal in [
            json!({"AWS": "arn:aws:iam::111111111111:role/admin"}),
            json!({"AWS": "AROAEXAMPLEUNIQUEID"}),
            json!({"AWS": "arn:aws:iam::111111111111:role/*"}),
            json!({"AWS": "arn:aws:sts::111111111111:assumed-role/Admin/session"}),
            json!({"Unheard": "of"}),
            json!("arn:aws:iam::111111111111:root"),
        ] {
            let allow = policy(vec![json!({
                "Effect": "Allow", "Principal": principal, "Action": "kms:*", "Resource": "*",
            })]);
            assert_eq!(
                evaluate(&allow, &as_principal(caller, "kms:Decrypt")),
                Decision::NotAllowed,
                "{principal}"
            );
            let deny = policy(vec![json!({
                "Sid": "Unclear", "Effect": "Deny", "Principal": principal, "Action": "kms:*", "Resource": "*",
            })]);
            assert_eq!(
                evaluate(&deny, &as_principal(caller, "kms:Decrypt")),
                denied_by("Unclear"),
                "{principal}"
            );
        }
        // A session of another role, or a principal of another account, is
        // certainly not this caller.
        for principal in [
            json!({"AWS": "arn:aws:sts::111111111111:assumed-role/Other/session"}),
            json!({"AWS": "arn:aws:iam::222222222222:role/Admin"}),
            json!({"AWS": "arn:aws:iam::111111111111:user/Admin"}),
        ] {
            let deny = policy(vec![json!({
                "Effect": "Deny", "Principal": principal, "Action": "kms:*", "Resource": "*",
            })]);
            assert_eq!(
                evaluate(&deny, &as_principal(caller, "kms:Decrypt")),
                Decision::NotAllowed,
                "{principal}"
            );
        }
    }

    #[test]
    fn not_principal_in_a_deny() {
        let deny = |listed: Value| {
            policy(vec![
                json!({"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}),
                json!({
                    "Sid": "AllBut", "Effect": "Deny", "NotPrincipal": listed,
                    "Action": "kms:DisableKey", "Resource": "*",
                }),
            ])
        };
        let caller = "arn:aws:iam::111111111111:role/Admin";
        let other = deny(json!({"AWS": "arn:aws:iam::111111111111:role/Other"}));
        assert_eq!(
            evaluate(&other, &as_principal(caller, "kms:DisableKey")),
            denied_by("AllBut")
        );
        // Listing the caller may or may not exclude it: it still counts.
        let listed = deny(json!({"AWS": [caller, "arn:aws:iam::111111111111:root"]}));
        assert_eq!(
            evaluate(&listed, &as_principal(caller, "kms:DisableKey")),
            denied_by("AllBut")
        );
        assert_eq!(
            evaluate(&listed, &as_principal(caller, "kms:Decrypt")),
            Decision::Allowed
        );
        let services = deny(json!({"Service": "cloudtrail.amazonaws.com"}));
        let cloudtrail = Request {
            caller: Caller::Service("cloudtrail.amazonaws.com"),
            action: "kms:DisableKey",
            context: Vec::new(),
        };
        assert_eq!(evaluate(&services, &cloudtrail), Decision::Allowed);
        let allow_not_principal = policy(vec![json!({
            "Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::222222222222:root"},
            "Action": "kms:*", "Resource": "*",
        })]);
        assert_eq!(
            evaluate(&allow_not_principal, &as_principal(caller, "kms:Decrypt")),
            Decision::NotAllowed
        );
    }

    #[test]
    fn principal_keys_conditions_and_policy_variables() {
        let statement = |condition: Value| {
            policy(vec![json!({
                "Sid": "S", "Effect": "Deny", "Principal": "*", "Action": "kms:*", "Resource": "*",
                "Condition": condition,
            })])
        };
        let caller = "arn:aws:iam::111111111111:role/Admin";
        let request = as_principal(caller, "kms:Decrypt");
        for (condition, denied) in [
            (
                json!({"StringNotEquals": {"aws:PrincipalAccount": "111111111111"}}),
                false,
            ),
            (
                json!({"StringEquals": {"AWS:PRINCIPALACCOUNT": ["2", "111111111111"]}}),
                true,
            ),
            (
                json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/Ad?in"}}),
                true,
            ),
            (
                json!({"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/admin"}}),
                false,
            ),
            // Only services set aws:SourceArn: absent for a role.
            (
                json!({"StringLikeIfExists": {"aws:SourceArn": "arn:aws:cloudtrail:*"}}),
                true,
            ),
            (json!({"Null": {"aws:SourceAccount": "true"}}), true),
            (
                json!({"StringEquals": {"aws:SourceAccount": "111111111111"}}),
                false,
            ),
            // Not understood: counts.
            (
                json!({"StringEquals": {"aws:PrincipalArn": "${aws:username}"}}),
                true,
            ),
            (
                json!({"StringEquals": {"aws:PrincipalOrgID": "o-123"}}),
                true,
            ),
            (json!({"Bool": {"aws:SecureTransport": "false"}}), true),
            (
                json!({"ForAnyValue:StringEquals": {"aws:PrincipalAccount": "1"}}),
                true,
            ),
        ] {
            let expected = if denied {
                denied_by("S")
            } else {
                Decision::NotAllowed
            };
            assert_eq!(
                evaluate(&statement(condition.clone()), &request),
                expected,
                "{condition}"
            );
        }
        // A key the request carries is understood.
        let tagged = Request {
            context: vec![("aws:PrincipalOrgID", "o-123")],
            ..request.clone()
        };
        assert_eq!(
            evaluate(
                &statement(json!({"StringNotEquals": {"aws:PrincipalOrgID": "o-123"}})),
                &tagged
            ),
            Decision::NotAllowed
        );
    }

    #[test]
    fn a_policy_without_statements_allows_nothing() {
        let request = as_principal("arn:aws:iam::111111111111:root", "kms:DescribeKey");
        for p in [json!({}), json!({"Statement": "x"}), json!(null)] {
            assert_eq!(evaluate(&p, &request), Decision::NotAllowed, "{p}");
        }
        let unnamed = policy(vec![
            json!({"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}),
            json!({"Effect": "Deny", "Principal": "*", "Action": "kms:Describe*", "Resource": "*"}),
        ]);
        assert_eq!(
            evaluate(&unnamed, &request),
            Decision::ExplicitlyDenied {
                statement: "statement #2".to_owned()
            }
        );
        let not_resource = policy(vec![json!({
            "Effect": "Allow", "Principal": "*", "Action": "kms:*", "NotResource": "x",
        })]);
        assert_eq!(evaluate(&not_resource, &request), Decision::NotAllowed);
    }

    /// A policy of the size KMS allows (32 KiB), made of the worst patterns
    /// for the wildcard matcher, against request values as long as the
    /// longest ARNs: each pattern costs len(pattern) · len(text) steps.
    #[test]
    fn hostile_policies_finish_at_once() {
        // The matcher retries the run of `a`s from every position of the
        // text: a pattern half as long as the text is the worst.
        let pattern = format!("*{}b", "a".repeat(510));
        let text = "a".repeat(1024);
        let statements: Vec<Value> = (0..28)
            .map(|i| {
                json!({
                    "Sid": format!("S{i}"),
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": pattern,
                    "Resource": "*",
                    "Condition": {"StringNotLike": {"aws:SourceArn": pattern}},
                })
            })
            .collect();
        let p = policy(statements);
        let request = Request {
            caller: Caller::aws("arn:aws:iam::111111111111:role/R"),
            action: &text,
            context: vec![("aws:SourceArn", &text)],
        };
        let start = std::time::Instant::now();
        assert_eq!(evaluate(&p, &request), Decision::NotAllowed);
        let took = start.elapsed();
        eprintln!(
            "a {} KiB hostile policy against {} KiB values: {took:?}",
            p.to_string().len() / 1024,
            text.len() / 1024
        );
        assert!(took < std::time::Duration::from_secs(2), "{took:?}");
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("a*b", "a"));
        assert!(arn_like(
            "arn:aws:iam::111111111111:role/*/AWSControlTowerExecution",
            "arn:aws:iam::111111111111:role/cross/path/AWSControlTowerExecution"
        ));
        assert!(!arn_like(
            "arn:aws:iam::111111111111:role/*/AWSControlTowerExecution",
            "arn:aws:iam::111111111111:role/AWSControlTowerExecution"
        ));
        assert!(!arn_like("arn:aws:iam::*", "arn:aws:iam::1:role/x"));
        assert!(wildcard_match(
            "*a*a*a*a*b",
            &"a".repeat(5000).replace("aaaa", "aaab")
        ));
        assert!(!wildcard_match(&"*a".repeat(200), &"a".repeat(199)));
        let trail = "arn:aws:cloudtrail:us-east-1:111111111111:trail/org-trail";
        assert!(arn_like("arn:aws:cloudtrail:*:111111111111:trail/*", trail));
        assert!(!arn_like("arn:aws:cloudtrail:*", trail), "six parts");
    }
}
