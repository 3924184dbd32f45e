//! Rendering: the human plan (Terraform style) and the JSON plan are drawn
//! from the same [`Plan`] data.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::apply::Done;
use crate::plan::{Action, Address, Change, KNOWN_AFTER_APPLY, Plan, Summary};
use crate::policy;

/// The JSON form of a plan (`plan --format json`).
#[derive(Serialize)]
pub struct PlanJson<'a> {
    pub format_version: &'static str,
    pub target: &'a crate::plan::Target,
    pub changes: &'a [Change],
    pub summary: Summary,
}

impl<'a> From<&'a Plan> for PlanJson<'a> {
    fn from(plan: &'a Plan) -> Self {
        PlanJson {
            format_version: plan.format_version,
            target: &plan.target,
            changes: &plan.changes,
            summary: plan.summary(),
        }
    }
}

/// The JSON form of an apply (`apply --format json`).
#[derive(Serialize)]
pub struct ApplyJson<'a> {
    pub format_version: &'static str,
    pub plan: PlanJson<'a>,
    pub applied: &'a [Done],
    /// What the verification read after apply found.
    pub result: ApplyResult,
}

#[derive(Debug, Clone, Serialize)]
pub struct ApplyResult {
    pub key_arn: Option<String>,
    pub trail_kms_key_id: Option<String>,
    pub converged: bool,
}

pub fn json<T: Serialize>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("plan data serializes");
    s.push('\n');
    s
}

fn symbol(action: Action) -> &'static str {
    match action {
        Action::Create => "+",
        Action::Update => "~",
        Action::Delete => "-",
        Action::NoOp => " ",
    }
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Delete => "will be destroyed",
        Action::NoOp => "is up to date",
    }
}

/// A value as shown in the human plan.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) if s == KNOWN_AFTER_APPLY => s.clone(),
        other => other.to_string(),
    }
}

/// The human plan.
pub fn plan_human(plan: &Plan) -> String {
    let mut out = String::new();
    let t = &plan.target;
    let _ = writeln!(out, "trail:  {}", t.trail_arn);
    let _ = writeln!(
        out,
        "key:    {} in Security Tooling account {} ({}){}",
        t.alias,
        t.security_tooling_account,
        t.region,
        t.key_arn
            .as_deref()
            .map(|a| format!("\n        {a}"))
            .unwrap_or_default()
    );
    let _ = writeln!(out);
    if !plan.has_changes() {
        let _ = writeln!(
            out,
            "No changes. The trail is encrypted with the key, and the key, alias, policy and rotation match the configuration."
        );
        return out;
    }
    let _ = writeln!(out, "trailkey will perform the following actions:");
    for c in plan.changes.iter().filter(|c| c.action != Action::NoOp) {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "  {} {} {}",
            symbol(c.action),
            c.address.as_str(),
            verb(c.action)
        );
        if c.address == Address::KmsKeyPolicy {
            if c.action == Action::Create {
                for s in policy::statements(&c.after) {
                    let _ = writeln!(
                        out,
                        "      + statement {}",
                        policy::sid(s).unwrap_or("(no Sid)")
                    );
                }
            }
        } else {
            attributes(&mut out, c);
        }
        for r in &c.reasons {
            let _ = writeln!(out, "      # {r}");
        }
    }
    let s = plan.summary();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Plan: {} to add, {} to change, {} to destroy.",
        s.add, s.change, s.destroy
    );
    out
}

/// The attributes of a change: all of them for a create, the changed ones
/// (`before -> after`) for an update.
fn attributes(out: &mut String, c: &Change) {
    let empty = serde_json::Map::new();
    let before = c.before.as_object().unwrap_or(&empty);
    let after = c.after.as_object().unwrap_or(&empty);
    let width = after.keys().map(String::len).max().unwrap_or(0);
    for (k, a) in after {
        match (c.action, before.get(k)) {
            (Action::Create, _) => {
                let _ = writeln!(out, "      + {k:width$} = {}", show(a));
            }
            (_, Some(b)) if b == a => {}
            (_, b) => {
                let b = b.map_or_else(|| "null".to_owned(), show);
                let _ = writeln!(out, "      ~ {k:width$} = {b} -> {}", show(a));
            }
        }
    }
}

/// What a human sees after a successful apply.
pub fn apply_human(done: &[Done], plan: &Plan, result: &ApplyResult) -> String {
    let mut out = String::new();
    let s = plan.summary();
    let _ = writeln!(
        out,
        "Apply complete! Resources: {} added, {} changed, {} destroyed ({} AWS writes).",
        s.add,
        s.change,
        s.destroy,
        done.len()
    );
    if let (Some(key), Some(trail_key)) = (&result.key_arn, &result.trail_kms_key_id)
        && key == trail_key
    {
        let _ = writeln!(
            out,
            "The trail {} is encrypted with {key}.",
            plan.target.trail_arn
        );
    }
    out
}
