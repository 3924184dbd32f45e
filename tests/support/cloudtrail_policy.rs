//! CloudTrail's check of a KMS key policy on `UpdateTrail`, as the real-AWS
//! layer (`aws_rules.rs`) and the in-memory fake (`src/aws/fake.rs`) apply
//! it. It depends on std and serde_json only and shares no code with
//! trailkey's own policy handling, so that it checks trailkey rather than
//! agreeing with it.
//!
//! What CloudTrail needs ("Configure AWS KMS key policies for CloudTrail",
//! <https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html>,
//! "Required KMS key policy sections for use with CloudTrail"): the key
//! policy must let `cloudtrail.amazonaws.com` encrypt with the key
//! (`kms:GenerateDataKey*`, under the encryption context
//! `aws:cloudtrail:arn` = the trail's ARN, `aws:SourceArn` = the trail's ARN)
//! and describe it (`kms:DescribeKey`); otherwise `UpdateTrail` fails with
//! `InsufficientEncryptionPolicyException`
//! (<https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_UpdateTrail.html>).
//!
//! Statements are evaluated as IAM does ("Policy evaluation logic", IAM User
//! Guide): a request is allowed when an `Allow` statement matches it and no
//! `Deny` statement does; an explicit `Deny` wins. Conditions follow "IAM
//! JSON policy elements: Condition operators" and "Conditions with multiple
//! context keys or values": operators and keys are ANDed, the values of one
//! key ORed (NORed for a negated operator), condition key names compare
//! case-insensitively, a key missing from the request makes a positive
//! operator false and a negated one true, except `...IfExists` (true) and
//! `Null`.
//!
//! Where the evaluator does not understand a statement (a condition
//! operator or key it does not know, `NotResource`, no principal), it is
//! conservative: such a statement never allows, and a `Deny` of that kind
//! counts as matching. A policy this refuses may be one AWS accepts, never
//! the other way round.
//!
//! `Resource` is not evaluated: in a key policy it can only stand for the
//! key itself.

use serde_json::Value;

/// The principal CloudTrail acts as.
const CLOUDTRAIL: &str = "cloudtrail.amazonaws.com";

/// Whether CloudTrail accepts `policy` (a key policy document) for the
/// trail `trail_arn` of the organization whose management account is
/// `management_account`, in `partition`; otherwise why not.
pub fn cloudtrail_accepts(
    policy: &Value,
    trail_arn: &str,
    management_account: &str,
    partition: &str,
) -> Result<(), String> {
    let expected_prefix = format!("arn:{partition}:cloudtrail:");
    let owner = trail_arn.split(':').nth(4).unwrap_or_default();
    if !trail_arn.starts_with(&expected_prefix) || owner != management_account {
        return Err(format!(
            "{trail_arn} is not a trail of account {management_account} in partition {partition}"
        ));
    }
    let encrypt = RequestContext {
        action: "kms:GenerateDataKey",
        keys: vec![
            ("aws:sourcearn", trail_arn),
            ("aws:sourceaccount", management_account),
            ("kms:encryptioncontext:aws:cloudtrail:arn", trail_arn),
        ],
    };
    let describe = RequestContext {
        action: "kms:DescribeKey",
        keys: vec![
            ("aws:sourcearn", trail_arn),
            ("aws:sourceaccount", management_account),
        ],
    };
    let statements = statements(policy)?;
    for (request, what) in [
        (
            &encrypt,
            format!(
                "{CLOUDTRAIL} kms:GenerateDataKey* with aws:SourceArn = {trail_arn} and \
                 kms:EncryptionContext:aws:cloudtrail:arn = {trail_arn}"
            ),
        ),
        (
            &describe,
            format!("{CLOUDTRAIL} kms:DescribeKey with aws:SourceArn = {trail_arn}"),
        ),
    ] {
        if let Some(deny) = statements
            .iter()
            .enumerate()
            .find(|(_, s)| effect(s) == Some(Effect::Deny) && matches(s, request) != Match::No)
        {
            return Err(format!("{} explicitly denies {what}", name(deny)));
        }
        let allowed = statements
            .iter()
            .any(|s| effect(s) == Some(Effect::Allow) && matches(s, request) == Match::Yes);
        if !allowed {
            return Err(format!("no statement allows {what}"));
        }
    }
    Ok(())
}

/// A request CloudTrail makes to KMS: its action and its condition keys
/// (lower case) with their values.
struct RequestContext<'a> {
    action: &'a str,
    keys: Vec<(&'a str, &'a str)>,
}

impl RequestContext<'_> {
    fn value(&self, key: &str) -> Option<&str> {
        self.keys.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

/// The condition keys the evaluator knows, in lower case: a key outside
/// this list is not understood, even when the request does not carry it.
const KNOWN_KEYS: &[&str] = &[
    "aws:sourcearn",
    "aws:sourceaccount",
    "kms:encryptioncontext:aws:cloudtrail:arn",
];

/// Three-valued: a statement or condition matches, does not, or the
/// evaluator cannot tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    Yes,
    No,
    Unknown,
}

impl Match {
    fn from_bool(b: bool) -> Match {
        if b { Match::Yes } else { Match::No }
    }

    /// Both: `No` if either is `No`, else `Unknown` if either is.
    fn and(self, other: Match) -> Match {
        match (self, other) {
            (Match::No, _) | (_, Match::No) => Match::No,
            (Match::Unknown, _) | (_, Match::Unknown) => Match::Unknown,
            _ => Match::Yes,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

fn statements(policy: &Value) -> Result<Vec<&Value>, String> {
    match policy.get("Statement") {
        Some(Value::Array(list)) => Ok(list.iter().collect()),
        Some(one @ Value::Object(_)) => Ok(vec![one]),
        _ => Err("the key policy has no Statement".to_owned()),
    }
}

fn effect(statement: &Value) -> Option<Effect> {
    match statement.get("Effect")?.as_str()? {
        "Allow" => Some(Effect::Allow),
        "Deny" => Some(Effect::Deny),
        _ => None,
    }
}

/// `statement "Sid"` or `statement #n` for messages.
fn name((index, statement): (usize, &&Value)) -> String {
    match statement.get("Sid").and_then(Value::as_str) {
        Some(sid) if !sid.is_empty() => format!("statement {sid:?}"),
        _ => format!("statement #{}", index + 1),
    }
}

/// Whether `statement` applies to `request`, Effect aside.
fn matches(statement: &Value, request: &RequestContext<'_>) -> Match {
    if statement.get("NotResource").is_some() {
        return Match::Unknown;
    }
    principal(statement)
        .and(action(statement, request.action))
        .and(conditions(statement, request))
}

/// Whether the statement's principal covers CloudTrail.
fn principal(statement: &Value) -> Match {
    let names_cloudtrail = |p: &Value| match p {
        Value::String(s) => s == "*",
        Value::Object(by_kind) => by_kind.iter().any(|(kind, who)| {
            let list = strings(who);
            match kind.as_str() {
                "Service" => list.iter().any(|s| s.eq_ignore_ascii_case(CLOUDTRAIL)),
                "AWS" => list.iter().any(|s| s == "*"),
                _ => false,
            }
        }),
        _ => false,
    };
    let deny = statement.get("Effect").and_then(Value::as_str) == Some("Deny");
    match (statement.get("Principal"), statement.get("NotPrincipal")) {
        (Some(p), None) => Match::from_bool(names_cloudtrail(p)),
        // AWS supports NotPrincipal only with Deny: in an Allow it grants
        // nothing this evaluator will vouch for.
        (None, Some(p)) if deny => Match::from_bool(!names_cloudtrail(p)),
        _ => Match::Unknown,
    }
}

/// Whether the statement's `Action` (or `NotAction`) covers `wanted`;
/// action names compare case-insensitively, with IAM's `*` and `?`.
fn action(statement: &Value, wanted: &str) -> Match {
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
fn conditions(statement: &Value, request: &RequestContext<'_>) -> Match {
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
            result = result.and(condition(operator, key, values, request));
        }
    }
    result
}

/// One operator, one key, its values.
fn condition(operator: &str, key: &str, values: &Value, request: &RequestContext<'_>) -> Match {
    let key = key.to_ascii_lowercase();
    if !KNOWN_KEYS.contains(&key.as_str()) {
        return Match::Unknown;
    }
    let present = request.value(&key);
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
        _ => return Match::Unknown,
    };
    let Some(value) = present else {
        return Match::from_bool(if_exists || negated);
    };
    let any = values.iter().any(|p| compare(p, value));
    Match::from_bool(any != negated)
}

/// `ArnLike`/`ArnEquals`: each of the six colon-separated parts matched on
/// its own, with `*` and `?`; the last part takes the rest of the ARN.
fn arn_like(pattern: &str, arn: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    p.len() == 6 && a.len() == 6 && p.iter().zip(&a).all(|(p, a)| wildcard_match(p, a))
}

/// A string or a list of strings as a list; numbers and booleans as text.
fn strings(v: &Value) -> Vec<String> {
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

    const TRAIL: &str = "arn:aws:cloudtrail:eu-west-1:111111111111:trail/org-trail";
    const MANAGEMENT: &str = "111111111111";

    fn encrypt(condition: Value) -> Value {
        json!({
            "Sid": "Encrypt",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
            "Condition": condition,
        })
    }

    fn describe() -> Value {
        json!({
            "Sid": "Describe",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:DescribeKey",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceArn": TRAIL}},
        })
    }

    fn documented_encrypt() -> Value {
        encrypt(json!({
            "StringLike": {
                "kms:EncryptionContext:aws:cloudtrail:arn":
                    "arn:aws:cloudtrail:*:111111111111:trail/*"
            },
            "StringEquals": {"aws:SourceArn": TRAIL},
        }))
    }

    fn policy(statements: Vec<Value>) -> Value {
        json!({"Version": "2012-10-17", "Statement": statements})
    }

    fn check(p: &Value) -> Result<(), String> {
        cloudtrail_accepts(p, TRAIL, MANAGEMENT, "aws")
    }

    #[test]
    fn the_documented_statements_are_accepted() {
        assert_eq!(
            check(&policy(vec![documented_encrypt(), describe()])),
            Ok(())
        );
    }

    #[test]
    fn each_missing_permission_is_named() {
        let e = check(&policy(vec![documented_encrypt()])).unwrap_err();
        assert!(
            e.contains("no statement allows") && e.contains("kms:DescribeKey"),
            "{e}"
        );
        let e = check(&policy(vec![describe()])).unwrap_err();
        assert!(e.contains("kms:GenerateDataKey*"), "{e}");
        let e = check(&json!({"Version": "2012-10-17"})).unwrap_err();
        assert!(e.contains("no Statement"), "{e}");
        assert!(check(&json!({})).is_err());
    }

    #[test]
    fn a_source_arn_of_another_trail_is_refused() {
        let other = "arn:aws:cloudtrail:eu-west-1:111111111111:trail/other";
        let wrong = encrypt(json!({"StringEquals": {"aws:SourceArn": other}}));
        assert!(check(&policy(vec![wrong, describe()])).is_err());
        // A list of values is ORed.
        let listed = encrypt(json!({"StringEquals": {"aws:SourceArn": [other, TRAIL]}}));
        assert_eq!(check(&policy(vec![listed, describe()])), Ok(()));
    }

    #[test]
    fn the_encryption_context_must_name_the_management_account() {
        let stale = encrypt(json!({
            "StringLike": {
                "kms:EncryptionContext:aws:cloudtrail:arn":
                    "arn:aws:cloudtrail:*:999999999999:trail/*"
            }
        }));
        assert!(check(&policy(vec![stale, describe()])).is_err());
        let arn_like = encrypt(json!({
            "ArnLike": {
                "kms:EncryptionContext:aws:cloudtrail:arn":
                    ["arn:aws:cloudtrail:*:999999999999:trail/*", "arn:aws:cloudtrail:*:111111111111:trail/*"]
            }
        }));
        assert_eq!(check(&policy(vec![arn_like, describe()])), Ok(()));
    }

    #[test]
    fn principals_as_string_list_or_star() {
        for principal in [
            json!({"Service": ["ec2.amazonaws.com", "cloudtrail.amazonaws.com"]}),
            json!("*"),
            json!({"AWS": "*"}),
            json!({"AWS": ["arn:aws:iam::111111111111:root", "*"]}),
        ] {
            let mut e = documented_encrypt();
            e["Principal"] = principal.clone();
            assert_eq!(check(&policy(vec![e, describe()])), Ok(()), "{principal}");
        }
        let mut root = documented_encrypt();
        root["Principal"] = json!({"AWS": "arn:aws:iam::111111111111:root"});
        assert!(check(&policy(vec![root, describe()])).is_err());
    }

    #[test]
    fn actions_match_with_wildcards_and_case_insensitively() {
        for action in [
            json!("kms:*"),
            json!("KMS:generatedatakey*"),
            json!(["kms:Decrypt", "kms:Generate?ataKey"]),
            json!("*"),
        ] {
            let mut e = documented_encrypt();
            e["Action"] = action.clone();
            assert_eq!(check(&policy(vec![e, describe()])), Ok(()), "{action}");
        }
        let mut e = documented_encrypt();
        e["Action"] = json!("kms:Encrypt");
        assert!(check(&policy(vec![e, describe()])).is_err());
        let mut not_action = documented_encrypt();
        not_action
            .as_object_mut()
            .unwrap()
            .remove("Action")
            .unwrap();
        not_action["NotAction"] = json!("kms:Decrypt");
        assert_eq!(check(&policy(vec![not_action, describe()])), Ok(()));
    }

    #[test]
    fn condition_keys_compare_case_insensitively_values_do_not() {
        let upper = encrypt(json!({"StringEquals": {"AWS:SOURCEARN": TRAIL}}));
        assert_eq!(check(&policy(vec![upper, describe()])), Ok(()));
        let shouting = encrypt(json!({"StringEquals": {"aws:SourceArn": TRAIL.to_uppercase()}}));
        assert!(check(&policy(vec![shouting, describe()])).is_err());
        let ignore_case =
            encrypt(json!({"StringEqualsIgnoreCase": {"aws:SourceArn": TRAIL.to_uppercase()}}));
        assert_eq!(check(&policy(vec![ignore_case, describe()])), Ok(()));
    }

    #[test]
    fn an_explicit_deny_wins() {
        let deny = json!({
            "Sid": "NoCloudTrail",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
        });
        let e = check(&policy(vec![documented_encrypt(), describe(), deny])).unwrap_err();
        assert!(e.contains("\"NoCloudTrail\" explicitly denies"), "{e}");
        // A Deny whose condition excludes CloudTrail's request does not bite.
        let elsewhere = json!({
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:*",
            "Resource": "*",
            "Condition": {"StringNotLike": {"aws:SourceArn": "arn:aws:cloudtrail:*"}},
        });
        assert_eq!(
            check(&policy(vec![documented_encrypt(), describe(), elsewhere])),
            Ok(())
        );
    }

    #[test]
    fn what_the_evaluator_does_not_understand_never_allows_and_always_denies() {
        let unknown_operator = encrypt(json!({"NumericLessThan": {"aws:SourceArn": "5"}}));
        assert!(check(&policy(vec![unknown_operator, describe()])).is_err());
        let unknown_key = encrypt(json!({"StringEquals": {"aws:PrincipalOrgID": "o-1"}}));
        assert!(check(&policy(vec![unknown_key, describe()])).is_err());
        let deny = json!({
            "Sid": "Unclear",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:DescribeKey",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        });
        let e = check(&policy(vec![documented_encrypt(), describe(), deny])).unwrap_err();
        assert!(e.contains("\"Unclear\""), "{e}");
    }

    #[test]
    fn null_and_if_exists_test_presence() {
        // DescribeKey carries no encryption context.
        let mut d = describe();
        d["Condition"] = json!({"Null": {"kms:EncryptionContext:aws:cloudtrail:arn": "false"}});
        assert!(check(&policy(vec![documented_encrypt(), d])).is_err());
        let mut d = describe();
        d["Condition"] =
            json!({"StringLikeIfExists": {"kms:EncryptionContext:aws:cloudtrail:arn": "x"}});
        assert_eq!(check(&policy(vec![documented_encrypt(), d])), Ok(()));
        let e = encrypt(json!({"Null": {"kms:EncryptionContext:aws:cloudtrail:arn": false}}));
        assert_eq!(check(&policy(vec![e, describe()])), Ok(()));
    }

    #[test]
    fn a_single_statement_object_counts() {
        let p = json!({"Statement": {
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": ["kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
        }});
        assert_eq!(check(&p), Ok(()));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("a*b", "a"));
        assert!(wildcard_match(
            "*a*a*a*a*b",
            &"a".repeat(5000).replace("aaaa", "aaab")
        ));
        assert!(!wildcard_match(&"*a".repeat(200), &"a".repeat(199)));
        assert!(arn_like("arn:aws:cloudtrail:*:111111111111:trail/*", TRAIL));
        assert!(!arn_like("arn:aws:cloudtrail:*", TRAIL), "six parts");
    }
}
