//! An evaluator of IAM identity-based policies (the permissions policies
//! attached to a role): whether they allow one action on one resource,
//! explicitly deny it (and by which statement), or do not allow it. The
//! real-AWS layer applies it to the sessions of roles a test attached
//! policies to ([`crate::rules::iam_identity_policies`]).
//!
//! Evaluation follows "Policy evaluation logic" (IAM User Guide,
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html>):
//! a `Deny` statement of any of the policies that applies denies the
//! request explicitly, whatever allows it; otherwise an `Allow` statement
//! that applies allows it; otherwise it is implicitly denied. It answers for
//! the identity policies only: a resource-based policy (a key policy, a
//! bucket policy, a role's trust policy), an SCP, a permissions boundary or
//! a session policy may still deny what they allow, and for a request on a
//! resource of another account AWS requires the resource's owner to allow
//! it too ("Cross-account policy evaluation logic",
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html>),
//! which is for the layer's other rules to say.
//!
//! A statement applies when its action, resource and conditions all match:
//!
//! * **Action** (or `NotAction`): as in [`crate::key_policy`],
//!   case-insensitively, with `*` and `?`.
//! * **Resource** (or `NotResource`): `"*"` matches every resource; another
//!   pattern is matched as `ArnLike` matches, each of the six parts of the
//!   ARN on its own, with `*` and `?` ("IAM JSON policy elements:
//!   Resource"). An action that supports no resource type is asked about
//!   the resource `*`, which only a `"*"` pattern covers: "you must specify
//!   all resources ("*")" for such an action (Service Authorization
//!   Reference).
//! * **Condition**: as in [`crate::key_policy`] (its operators, `Bool`
//!   included), against the keys the [`Request`] carries:
//!   `aws:PrincipalArn` (the role's ARN for a session) and
//!   `aws:PrincipalAccount`, the request's own keys ([`Request::context`])
//!   and the keys it knows to be absent ([`Request::absent`]). Any other key
//!   is not understood.
//!
//! A statement with a `Principal` (a resource-based policy's element) or a
//! policy variable `${...}` in a resource is not understood. As in
//! [`crate::key_policy`], what the evaluator does not understand never
//! allows, and a `Deny` of that kind counts as matching: a request this
//! refuses may be one AWS allows, never the other way round.

use serde_json::Value;

use crate::key_policy::{
    Decision, Lookup, Match, action, arn_like, conditions_with, decide, statements_of, strings,
};

/// One action on one resource, as IAM authorizes it for a role session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `aws:PrincipalArn`: the role's ARN for a role session.
    pub principal_arn: String,
    /// `aws:PrincipalAccount`.
    pub account: String,
    /// E.g. `kms:CreateKey`.
    pub action: String,
    /// The resource's ARN, or `*` for an action that supports no resource
    /// type.
    pub resource: String,
    /// The condition keys the request carries, with their values, e.g.
    /// `("aws:RequestTag/ManagedBy", "trailkey")`.
    pub context: Vec<(String, String)>,
    /// Condition keys known to be absent from the request; one ending in
    /// `/` stands for every key under it that `context` does not have (e.g.
    /// `aws:RequestTag/`: the request's tags are all in `context`).
    pub absent: Vec<String>,
}

impl Request {
    /// `action` on `resource` by `principal_arn`, in the account its ARN
    /// names, with no other condition key.
    pub fn new(principal_arn: &str, action: &str, resource: &str) -> Request {
        Request {
            principal_arn: principal_arn.to_owned(),
            account: principal_arn
                .split(':')
                .nth(4)
                .unwrap_or_default()
                .to_owned(),
            action: action.to_owned(),
            resource: resource.to_owned(),
            context: Vec::new(),
            absent: Vec::new(),
        }
    }

    /// The value of condition key `key` (lower case).
    fn lookup(&self, key: &str) -> Lookup<'_> {
        match key {
            "aws:principalarn" => return Lookup::Present(&self.principal_arn),
            "aws:principalaccount" => return Lookup::Present(&self.account),
            _ => {}
        }
        if let Some((_, v)) = self
            .context
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
        {
            return Lookup::Present(v);
        }
        let absent = self.absent.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            a == key || (a.ends_with('/') && key.starts_with(&a))
        });
        if absent {
            Lookup::Absent
        } else {
            Lookup::Unknown
        }
    }
}

/// What `policies` (identity policy documents, all attached to the caller)
/// say to `request`.
pub fn evaluate(policies: &[Value], request: &Request) -> Decision {
    let statements: Vec<&Value> = policies.iter().flat_map(statements_of).collect();
    decide(&statements, |s| matches(s, request))
}

/// Whether `statement` applies to `request`, Effect aside.
fn matches(statement: &Value, request: &Request) -> Match {
    if statement.get("Principal").is_some() || statement.get("NotPrincipal").is_some() {
        return Match::Unknown;
    }
    action(statement, &request.action)
        .and(resource(statement, &request.resource))
        .and(conditions_with(statement, &|key| request.lookup(key)))
}

/// Whether the statement's `Resource` (or `NotResource`) covers `wanted`.
fn resource(statement: &Value, wanted: &str) -> Match {
    let any_of = |v: &Value| {
        let patterns = strings(v);
        if patterns.iter().any(|p| p.contains("${")) {
            return Match::Unknown;
        }
        Match::from_bool(
            patterns
                .iter()
                .any(|p| p == "*" || (wanted != "*" && arn_like(p, wanted))),
        )
    };
    match (statement.get("Resource"), statement.get("NotResource")) {
        (Some(r), None) => any_of(r),
        (None, Some(r)) => match any_of(r) {
            Match::Yes => Match::No,
            Match::No => Match::Yes,
            Match::Unknown => Match::Unknown,
        },
        _ => Match::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROLE: &str = "arn:aws:iam::222222222222:role/TrailkeyDelegatedAdministrator";
    const TRAIL: &str = "arn:aws:cloudtrail:us-east-1:111111111111:trail/org-trail";

    fn policy(statements: Value) -> Vec<Value> {
        vec![json!({"Version": "2012-10-17", "Statement": statements})]
    }

    fn denied_by(sid: &str) -> Decision {
        Decision::ExplicitlyDenied {
            statement: format!("statement {sid:?}"),
        }
    }

    #[test]
    fn a_resource_of_another_account_is_allowed_only_where_its_arn_is_named() {
        let p = policy(json!([{
            "Sid": "Trail", "Effect": "Allow",
            "Action": ["cloudtrail:GetTrail", "cloudtrail:UpdateTrail"],
            "Resource": TRAIL
        }]));
        let ask =
            |action: &str, resource: &str| evaluate(&p, &Request::new(ROLE, action, resource));
        assert_eq!(ask("cloudtrail:UpdateTrail", TRAIL), Decision::Allowed);
        assert_eq!(ask("CloudTrail:updatetrail", TRAIL), Decision::Allowed);
        // The same name in the caller's own account is another trail.
        assert_eq!(
            ask(
                "cloudtrail:UpdateTrail",
                "arn:aws:cloudtrail:us-east-1:222222222222:trail/org-trail"
            ),
            Decision::NotAllowed
        );
        assert_eq!(ask("cloudtrail:DeleteTrail", TRAIL), Decision::NotAllowed);
        // An action without resource types is asked about `*`, which only
        // `"*"` covers.
        assert_eq!(ask("cloudtrail:DescribeTrails", "*"), Decision::NotAllowed);
    }

    #[test]
    fn wildcards_match_within_each_part_of_the_arn() {
        let p = policy(json!([{
            "Sid": "Keys", "Effect": "Allow", "Action": "kms:DescribeKey",
            "Resource": "arn:aws:kms:us-east-1:222222222222:key/*"
        }, {
            "Sid": "Lists", "Effect": "Allow", "Action": "kms:List*", "Resource": "*"
        }]));
        let ask =
            |action: &str, resource: &str| evaluate(&p, &Request::new(ROLE, action, resource));
        assert_eq!(
            ask(
                "kms:DescribeKey",
                "arn:aws:kms:us-east-1:222222222222:key/1234"
            ),
            Decision::Allowed
        );
        for other in [
            "arn:aws:kms:us-east-1:111111111111:key/1234",
            "arn:aws:kms:eu-west-1:222222222222:key/1234",
            "arn:aws:kms:us-east-1:222222222222:alias/cloudtrail-org-key",
        ] {
            assert_eq!(
                ask("kms:DescribeKey", other),
                Decision::NotAllowed,
                "{other}"
            );
        }
        assert_eq!(ask("kms:ListKeys", "*"), Decision::Allowed);
    }

    #[test]
    fn conditions_read_the_request_and_what_it_is_known_to_lack() {
        let p = policy(json!([{
            "Sid": "Create", "Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:RequestTag/ManagedBy": "trailkey", "kms:KeySpec": "SYMMETRIC_DEFAULT"},
                "Bool": {"kms:MultiRegion": "false"}
            }
        }, {
            "Sid": "NoBypass", "Effect": "Deny", "Action": "kms:CreateKey", "Resource": "*",
            "Condition": {"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}}
        }]));
        let request = |context: &[(&str, &str)]| {
            let mut r = Request::new(ROLE, "kms:CreateKey", "*");
            r.context = context
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            r.absent = vec![
                "aws:RequestTag/".to_owned(),
                "kms:BypassPolicyLockoutSafetyCheck".to_owned(),
            ];
            r
        };
        let ours = [
            ("aws:RequestTag/ManagedBy", "trailkey"),
            ("kms:KeySpec", "SYMMETRIC_DEFAULT"),
            ("kms:MultiRegion", "false"),
        ];
        assert_eq!(evaluate(&p, &request(&ours)), Decision::Allowed);
        // A tag missing, another key spec, a multi-Region key: not allowed.
        assert_eq!(evaluate(&p, &request(&ours[1..])), Decision::NotAllowed);
        let mut other = ours;
        other[1].1 = "RSA_2048";
        assert_eq!(evaluate(&p, &request(&other)), Decision::NotAllowed);
        let mut multi = ours;
        multi[2].1 = "TRUE";
        assert_eq!(evaluate(&p, &request(&multi)), Decision::NotAllowed);
        // The bypass, set: denied whatever allows it.
        let mut bypass = ours.to_vec();
        bypass.push(("kms:BypassPolicyLockoutSafetyCheck", "true"));
        assert_eq!(evaluate(&p, &request(&bypass)), denied_by("NoBypass"));
        // A key the request does not say it lacks is not understood: the
        // Deny counts, the Allow does not.
        let mut unknown = request(&ours);
        unknown.absent.clear();
        assert_eq!(evaluate(&p, &unknown), denied_by("NoBypass"));
    }

    #[test]
    fn a_deny_in_any_attached_policy_wins_and_what_is_not_understood_never_allows() {
        let mut policies = policy(json!([{
            "Sid": "All", "Effect": "Allow", "Action": "kms:*", "Resource": "*"
        }]));
        let r = Request::new(
            ROLE,
            "kms:ScheduleKeyDeletion",
            "arn:aws:kms:us-east-1:222222222222:key/1",
        );
        assert_eq!(evaluate(&policies, &r), Decision::Allowed);
        policies.extend(policy(json!([{
            "Sid": "Keep", "Effect": "Deny", "Action": "kms:ScheduleKeyDeletion",
            "NotResource": "arn:aws:kms:us-east-1:222222222222:key/2"
        }])));
        assert_eq!(evaluate(&policies, &r), denied_by("Keep"));
        for unclear in [
            json!({"Sid": "P", "Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}),
            json!({"Sid": "V", "Effect": "Allow", "Action": "kms:*",
                   "Resource": "arn:aws:kms:us-east-1:${aws:PrincipalAccount}:key/*"}),
            json!({"Sid": "K", "Effect": "Allow", "Action": "kms:*", "Resource": "*",
                   "Condition": {"StringEquals": {"aws:ResourceTag/trailkey:created": "true"}}}),
        ] {
            assert_eq!(
                evaluate(&policy(json!([unclear.clone()])), &r),
                Decision::NotAllowed,
                "{unclear}"
            );
        }
    }
}
