//! Rendering: the human plan (Terraform style) and the JSON plan are drawn
//! from the same [`Plan`] data.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use anstyle::{AnsiColor, Style};

use crate::apply::{ApplyResult, Done};
use crate::escape::escape;
use crate::plan::{Action, Address, Change, Finding, KNOWN_AFTER_APPLY, Level, Plan, Summary};
use crate::policy;

const GREEN: Style = AnsiColor::Green.on_default();
const YELLOW: Style = AnsiColor::Yellow.on_default();
const RED: Style = AnsiColor::Red.on_default();
const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();

/// `text` in `style` (ANSI codes; the output stream strips them where
/// colour is off, see `crate::output`).
fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// The JSON form of a plan (`plan --format json`).
#[derive(Serialize)]
pub struct PlanJson<'a> {
    pub format_version: &'static str,
    pub target: &'a crate::plan::Target,
    pub changes: &'a [Change],
    pub findings: &'a [Finding],
    pub summary: Summary,
}

impl<'a> From<&'a Plan> for PlanJson<'a> {
    fn from(plan: &'a Plan) -> Self {
        PlanJson {
            format_version: plan.format_version,
            target: &plan.target,
            changes: &plan.changes,
            findings: &plan.findings,
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

/// `apply --format json` and `destroy --format json`.
pub fn apply_json(plan: &Plan, done: &[Done], result: ApplyResult) -> String {
    json(&ApplyJson {
        format_version: crate::plan::FORMAT_VERSION,
        plan: PlanJson::from(plan),
        applied: done,
        result,
    })
}

pub fn json<T: Serialize>(value: &T) -> String {
    let mut s = serde_json::to_string_pretty(value).expect("plan data serializes");
    s.push('\n');
    s
}

fn symbol(action: Action) -> String {
    match action {
        Action::Create => paint(GREEN, "+"),
        Action::Update => paint(YELLOW, "~"),
        Action::Delete => paint(RED, "-"),
        Action::NoOp => " ".to_owned(),
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

/// A value as shown in the human plan: JSON, with the control characters
/// JSON leaves as they are (DEL, C1, bidi overrides) escaped too.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) if s == KNOWN_AFTER_APPLY => s.clone(),
        other => escape(&other.to_string()).into_owned(),
    }
}

/// The human plan. Every value from outside trailkey (ARNs, Sids, policy
/// values, finding messages) is escaped ([`escape`]): only the renderer
/// starts lines and writes colour codes.
pub fn plan_human(plan: &Plan) -> String {
    let mut out = String::new();
    let t = &plan.target;
    let _ = writeln!(out, "trail:  {}", escape(&t.trail_arn));
    let whose = if t.key_account == t.security_tooling_account {
        "Security Tooling"
    } else {
        "management"
    };
    let _ = writeln!(
        out,
        "key:    {} in {whose} account {} ({}){}",
        escape(&t.alias),
        escape(&t.key_account),
        escape(&t.region),
        t.key_arn
            .as_deref()
            .map(|a| format!("\n        {}", escape(a)))
            .unwrap_or_default()
    );
    let _ = writeln!(out);
    if plan.has_changes() {
        let _ = writeln!(out, "trailkey will perform the following actions:");
        for c in plan.changes.iter().filter(|c| c.action != Action::NoOp) {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "  {} {} {}",
                symbol(c.action),
                paint(BOLD, c.address.as_str()),
                verb(c.action)
            );
            match (&c.statements, c.address) {
                (Some(d), Address::KmsKeyPolicy) => statements(&mut out, d),
                _ => attributes(&mut out, c),
            }
            if c.address != Address::KmsKeyPolicy || c.action == Action::Create {
                for r in &c.reasons {
                    let _ = writeln!(out, "      {}", paint(DIM, &format!("# {}", escape(r))));
                }
            }
        }
        let s = plan.summary();
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{} {} to add, {} to change, {} to destroy.",
            paint(BOLD, "Plan:"),
            s.add,
            s.change,
            s.destroy
        );
    } else {
        let _ = writeln!(
            out,
            "{} The trail is encrypted with the key, and the key, alias, policy and rotation match the configuration.",
            paint(GREEN.bold(), "No changes.")
        );
    }
    findings(&mut out, &plan.findings);
    out
}

/// Findings are trailkey's sentences with outside values in them (ARNs,
/// Sids, AWS messages) and no line break or colour code of their own: the
/// whole message is escaped.
fn findings(out: &mut String, findings: &[Finding]) {
    for f in findings {
        let label = match f.level {
            Level::Error => paint(RED.bold(), "Error:"),
            Level::Warning => paint(YELLOW.bold(), "Warning:"),
            Level::Note => paint(BOLD, "Note:"),
        };
        let _ = writeln!(out, "\n{label} {}", escape(&f.message));
    }
}

/// The statement-level diff of a key policy.
fn statements(out: &mut String, d: &policy::StatementDiff) {
    for sid in &d.added {
        statement(out, &symbol(Action::Create), &escape(sid), "");
    }
    for c in &d.changed {
        statement(out, &symbol(Action::Update), &escape(&c.sid), "");
        for f in &c.fields {
            let _ = writeln!(
                out,
                "          {} {} = {} -> {}",
                symbol(Action::Update),
                escape(&f.path),
                show(&f.before),
                show(&f.after)
            );
        }
    }
    for sid in &d.removed {
        statement(
            out,
            &symbol(Action::Delete),
            &escape(sid),
            " (no longer in the template)",
        );
    }
    // `{:?}` quotes the Sid and escapes most controls; `escape` the rest
    // (bidi overrides).
    for sid in &d.kept {
        statement(
            out,
            "=",
            &escape(&format!("{sid:?}")),
            " (not managed by trailkey: kept)",
        );
    }
}

/// One statement's line: `mark`, its (escaped) Sid and a note.
fn statement(out: &mut String, mark: &str, sid: &str, note: &str) {
    let _ = writeln!(out, "      {mark} statement {sid}{note}");
}

/// The attributes of a change: all of them for a create or delete, the
/// changed ones (`before -> after`) for an update.
fn attributes(out: &mut String, c: &Change) {
    let empty = serde_json::Map::new();
    let before = c.before.as_object().unwrap_or(&empty);
    let after = c.after.as_object().unwrap_or(&empty);
    let shown = if c.action == Action::Delete {
        before
    } else {
        after
    };
    let width = shown.keys().map(String::len).max().unwrap_or(0);
    for (k, v) in shown {
        match (c.action, before.get(k)) {
            (Action::Create | Action::Delete, _) => {
                let _ = writeln!(
                    out,
                    "      {} {:width$} = {}",
                    symbol(c.action),
                    escape(k),
                    show(v)
                );
            }
            (_, Some(b)) if b == v => {}
            (_, b) => {
                let b = b.map_or_else(|| "null".to_owned(), show);
                let _ = writeln!(
                    out,
                    "      {} {:width$} = {b} -> {}",
                    symbol(Action::Update),
                    escape(k),
                    show(v)
                );
            }
        }
    }
}

/// The first line after a successful `what` (apply or destroy); `added`
/// is the count of additions where the command can make any.
fn complete(what: &str, added: &str, plan: &Plan, done: &[Done]) -> String {
    let s = plan.summary();
    format!(
        "{what} complete! Resources: {added}{} changed, {} destroyed ({} AWS writes).\n",
        s.change,
        s.destroy,
        done.len()
    )
}

/// What a human sees after a successful apply.
pub fn apply_human(done: &[Done], plan: &Plan, result: &ApplyResult) -> String {
    let added = format!("{} added, ", plan.summary().add);
    let mut out = complete("Apply", &added, plan, done);
    if let (Some(key), Some(trail_key)) = (&result.key_arn, &result.trail_kms_key_id)
        && key == trail_key
    {
        let _ = writeln!(
            out,
            "The trail {} is encrypted with {}.",
            escape(&plan.target.trail_arn),
            escape(key)
        );
    }
    findings(&mut out, &result.findings);
    out
}

/// The line a human sees when `--wait-for-delivery` proved a delivery.
pub fn delivery_human(delivery: &crate::delivery::Delivery) -> String {
    format!(
        "CloudTrail delivered a log file at {} (waited {}).\n",
        delivery
            .latest_delivery_time
            .map_or_else(|| "an unknown time".to_owned(), crate::delivery::timestamp),
        crate::delivery::human(std::time::Duration::from_secs(delivery.waited_seconds))
    )
}

/// What a human sees after a successful destroy.
pub fn destroy_human(done: &[Done], plan: &Plan, result: &ApplyResult) -> String {
    let mut out = complete("Destroy", "", plan, done);
    let trail = escape(&plan.target.trail_arn);
    let _ = match &result.trail_kms_key_id {
        None => writeln!(out, "The trail {trail} is back on SSE-S3."),
        Some(k) => writeln!(out, "The trail {trail} uses {}.", escape(k)),
    };
    let deleted = plan.changes(Address::KmsKey);
    match (&result.key_arn, deleted) {
        (Some(key), true) => {
            let _ = writeln!(
                out,
                "The key {} is scheduled for deletion; `aws kms cancel-key-deletion` or `trailkey apply` rescues it until then.",
                escape(key)
            );
        }
        (Some(key), false) => {
            let _ = writeln!(
                out,
                "The key {} is kept: the logs already written need it to be read.",
                escape(key)
            );
        }
        (None, _) => {}
    }
    out
}
