//! The least-privilege IAM policies in `policies/` against what trailkey
//! really calls.
//!
//! The real binary runs against moto through scenarios that together reach
//! every code path that calls AWS: plan from scratch, the first apply,
//! no-op plan and apply, `policy`, repair of eight kinds of drift,
//! `roles.management`, `roles.log_archive`, an alias rename, `destroy`
//! (keeping the key), a re-apply, `destroy --delete-key` (with a CloudTrail
//! Lake event data store to read), `init`, and
//! concurrent applies from scratch (the losers schedule deletion of their
//! own keys). moto's recorder lists every request with the access key ID
//! that signed it; the calls the real-AWS layer answers itself (operations
//! moto does not have: `account:ListRegions`, CloudTrail Lake) are added
//! from the layer's own note of them, with theirs. The fixture asks moto
//! who those credentials are (`GetCallerIdentity`), which tells whose
//! credentials made it:
//!
//! - the management side: the caller's own credentials
//!   (`AWS_ACCESS_KEY_ID=testing` in the harness), or with `roles.management`
//!   the management role's session;
//! - the Security Tooling side: the Security Tooling role's session;
//! - the Log Archive side: the `roles.log_archive` role's session;
//! - with `roles.management`, the caller's own credentials only assume the
//!   management role.
//!
//! Each request is mapped to its IAM action (`service:Action`). The test
//! asserts that every action a side uses is granted by that side's policy,
//! and that every action a policy grants is used by some scenario, except the
//! statements CloudTrail requires of the caller for organization trails,
//! which moto does not check (their `Sid` starts with
//! [`NOT_OBSERVABLE_SID_PREFIX`]; `docs/control-tower.md` cites the AWS
//! documentation for them). moto does not enforce IAM, so what is checked
//! here is the list of actions and the role ARN of `sts:AssumeRole`, not
//! resource scoping or conditions. Those are checked against the AWS
//! documentation by parliament, the IAM linter
//! (`the_iam_policies_pass_the_parliament_linter`): it knows which ARN shapes
//! and condition keys each action accepts.
//!
//! `[control_tower] landing_zone = true` has a policy of its own,
//! `policies/iam-management-control-tower.json`: trailkey then runs with
//! management-account credentials only, makes its KMS calls there too, and
//! calls Control Tower, which the layer's emulator answers. Its scenarios
//! (`the_control_tower_policy_grants_exactly_what_landing_zone_mode_calls`)
//! check that policy the same way; what Control Tower requires of the caller
//! of `UpdateLandingZone` is in statements whose `Sid` starts with
//! [`CONTROL_TOWER_NOT_OBSERVABLE_SID_PREFIX`], which the emulator does not
//! check either.
//!
//! A run from Security Tooling as CloudTrail's delegated administrator has
//! one policy, `policies/iam-security-tooling-delegated-admin.json`, for the
//! one role that makes every call
//! (`the_delegated_administrator_policy_grants_exactly_what_a_run_from_security_tooling_calls`).
//! There the test kit's real-AWS layer enforces the policy itself: the
//! role's sessions may call only what it allows, on the resources it names
//! and with its conditions (`trailkey_testkit::rules::iam_identity_policies`),
//! so resource scoping and conditions are checked too, not only the list of
//! actions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use serde_json::Value;
use trailkey_testkit::lambda_api::{RuntimeApi, kms_event, update_trail_event};
use trailkey_testkit::rules::CLOUDTRAIL;
use trailkey_testkit::{Moto, Run, Seed, transcript};

const MANAGEMENT_POLICY: &str = "policies/iam-management.json";
const SECURITY_TOOLING_POLICY: &str = "policies/iam-security-tooling-role.json";
const SECURITY_TOOLING_TRUST: &str = "policies/iam-security-tooling-trust.json";
const LOG_ARCHIVE_POLICY: &str = "policies/iam-log-archive-role.json";
const LOG_ARCHIVE_TRUST: &str = "policies/iam-log-archive-trust.json";
/// The management side with `[control_tower] landing_zone = true`.
const CONTROL_TOWER_POLICY: &str = "policies/iam-management-control-tower.json";
/// The one role of a run from Security Tooling as CloudTrail's delegated
/// administrator.
const DELEGATED_POLICY: &str = "policies/iam-security-tooling-delegated-admin.json";

/// The actions a side used, one line each with the scenarios that used it.
fn show(used: &BTreeMap<String, BTreeSet<String>>) -> String {
    used.iter()
        .map(|(a, s)| {
            format!(
                "  {a:48} {}",
                s.iter().cloned().collect::<Vec<_>>().join("; ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Statements whose `Sid` starts with this grant what CloudTrail itself
/// requires of the caller to update an organization trail. moto does not
/// check it, so no scenario can observe those actions.
const NOT_OBSERVABLE_SID_PREFIX: &str = "RequiredByCloudTrailNotObservableInMoto";

/// What those statements grant, as `docs/control-tower.md` documents it.
const NOT_OBSERVABLE_ACTIONS: [&str; 2] = [
    "iam:GetRole",
    "organizations:ListAWSServiceAccessForOrganization",
];

/// Statements whose `Sid` starts with this grant what Control Tower requires
/// of the caller of `UpdateLandingZone`: the permission-only action the
/// Service Authorization Reference names for that operation, and what the
/// Control Tower guide lists for the landing-zone APIs. The emulator does not
/// check them, so no scenario can observe those actions.
const CONTROL_TOWER_NOT_OBSERVABLE_SID_PREFIX: &str = "RequiredByControlTowerNotObservableInMoto";

/// What those statements grant, as `docs/control-tower.md` documents it,
/// sorted. The wildcards are the guide's own.
const CONTROL_TOWER_NOT_OBSERVABLE_ACTIONS: [&str; 21] = [
    "backup:UpdateGlobalSettings",
    "cloudformation:*",
    "controltower:SetupLandingZone",
    "iam:AttachRolePolicy",
    "iam:CreateRole",
    "iam:CreateSAMLProvider",
    "iam:CreateServiceLinkedRole",
    "iam:DeleteRole",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:GetRole",
    "iam:GetSAMLProvider",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
    "iam:PutRolePolicy",
    "kms:*",
    "logs:*",
    "organizations:*",
    "servicecatalog:*",
    "sso-directory:*",
    "sso:*",
];

/// The `Sid` prefixes of statements no scenario can observe.
const NOT_OBSERVABLE_PREFIXES: [&str; 2] = [
    NOT_OBSERVABLE_SID_PREFIX,
    CONTROL_TOWER_NOT_OBSERVABLE_SID_PREFIX,
];

/// Which of [`NOT_OBSERVABLE_PREFIXES`] a statement's `Sid` starts with.
fn not_observable_prefix(sid: &str) -> Option<&'static str> {
    NOT_OBSERVABLE_PREFIXES
        .into_iter()
        .find(|prefix| sid.starts_with(prefix))
}

/// The placeholders the policy files may use, as documented in
/// `docs/control-tower.md`.
const PLACEHOLDERS: [&str; 11] = [
    "Partition",
    "Region",
    "ManagementAccountId",
    "SecurityToolingAccountId",
    "SecurityToolingRoleName",
    "TrailName",
    "TrailBucket",
    "AliasName",
    "RunnerRoleName",
    "LogArchiveAccountId",
    "LogArchiveRoleName",
];

/// The access key ID of the caller's own credentials in the harness.
const BASE_ACCESS_KEY: &str = "testing";

const SECURITY_TOOLING_ROLE: &str = "AWSControlTowerExecution";
const MANAGEMENT_ROLE: &str = "TrailkeyRunner";
const LOG_ARCHIVE_ROLE: &str = "TrailkeyLogArchiveRead";
/// The role in Security Tooling that runs trailkey as CloudTrail's
/// delegated administrator.
const DELEGATED_ROLE: &str = "TrailkeyDelegatedAdministrator";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    /// The caller's own credentials when `roles.management` is set.
    Runner,
    /// STS, Organizations, CloudTrail, S3: `policies/iam-management.json`;
    /// with `[control_tower] landing_zone = true`, KMS and Control Tower too:
    /// `policies/iam-management-control-tower.json`.
    Management,
    /// KMS in Security Tooling: `policies/iam-security-tooling-role.json`.
    SecurityTooling,
    /// S3 reads in Log Archive (`roles.log_archive`):
    /// `policies/iam-log-archive-role.json`.
    LogArchive,
    /// Every call of a run from Security Tooling as CloudTrail's delegated
    /// administrator, with its own credentials:
    /// `policies/iam-security-tooling-delegated-admin.json`.
    DelegatedAdministrator,
}

/// The actions each side used, with the scenarios that used them, and the
/// role ARNs each side passed to `sts:AssumeRole`.
#[derive(Default)]
struct Usage {
    actions: BTreeMap<Side, BTreeMap<String, BTreeSet<String>>>,
    assumed: BTreeMap<Side, BTreeSet<String>>,
}

impl Usage {
    fn of(&self, side: Side) -> BTreeMap<String, BTreeSet<String>> {
        self.actions.get(&side).cloned().unwrap_or_default()
    }
}

/// A moto server with an organization, and the Security Tooling role ARN.
struct Org {
    moto: Moto,
    seed: Seed,
    security_tooling_role: String,
    management_role: String,
    log_archive_role: String,
    delegated_role: String,
}

impl Org {
    fn new() -> Org {
        let moto = Moto::start();
        let seed = moto.seed();
        Org {
            security_tooling_role: format!(
                "arn:aws:iam::{}:role/{SECURITY_TOOLING_ROLE}",
                seed.security_tooling
            ),
            management_role: format!("arn:aws:iam::{}:role/{MANAGEMENT_ROLE}", seed.management),
            log_archive_role: format!("arn:aws:iam::{}:role/{LOG_ARCHIVE_ROLE}", seed.log_archive),
            delegated_role: format!(
                "arn:aws:iam::{}:role/{DELEGATED_ROLE}",
                seed.security_tooling
            ),
            moto,
            seed,
        }
    }

    /// A config in the moto directory: the seeded one with `edit` applied.
    fn config(&self, name: &str, edit: impl FnOnce(String) -> String) -> PathBuf {
        let text = std::fs::read_to_string(&self.seed.config).unwrap();
        let path = self.moto.dir.path().join(name);
        std::fs::write(&path, edit(text)).unwrap();
        path
    }

    /// Runs trailkey with `config` and checks its exit code.
    fn run(&self, config: &Path, args: &[&str], expect: i32) -> Output {
        let out = Run::new(&self.moto).config(config).args(args).run();
        assert_eq!(
            out.status.code(),
            Some(expect),
            "trailkey {args:?}: {}",
            transcript(&out)
        );
        out
    }

    /// `fixture.py drift <kind>` (the fixture's own requests are not recorded).
    fn drift(&self, kind: &str) {
        self.moto.fixture(&[
            "drift",
            kind,
            "--security-tooling",
            &self.seed.security_tooling,
        ]);
    }

    /// Runs `f` with the recorder on and adds what it recorded to `usage`.
    /// `management_role`: whether the config sets `roles.management`.
    fn record(&self, usage: &mut Usage, scenario: &str, management_role: bool, f: impl FnOnce()) {
        self.moto.start_recording();
        f();
        // A scenario that made no request (init failing early) adds nothing;
        // the coverage checks at the end notice anything missing.
        let requests = self.moto.recorded_requests();
        attribute(usage, scenario, &requests, self, management_role);
    }
}

fn text<'a>(request: &'a Value, field: &str) -> &'a str {
    request[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in recorded request {request}"))
}

/// Attributes each recorded request to a side by who signed it: the
/// recording names the principal of each access key (moto answers
/// `GetCallerIdentity` for it), so an assumed role's requests are told
/// apart by the role, not guessed.
fn attribute(
    usage: &mut Usage,
    scenario: &str,
    requests: &[Value],
    org: &Org,
    management_role: bool,
) {
    for r in requests {
        let key = text(r, "access_key");
        let principal = text(r, "principal");
        let action = format!("{}:{}", text(r, "service"), text(r, "action"));
        assert!(
            !action.contains(' '),
            "{scenario}: a request the fixture cannot name as an IAM action: {r}"
        );
        let side = if key == BASE_ACCESS_KEY {
            if management_role {
                Side::Runner
            } else {
                Side::Management
            }
        } else {
            let role = assumed_role(principal).unwrap_or_else(|| {
                panic!("{scenario}: {action} signed by {principal}, neither the caller nor an assumed role")
            });
            match role {
                r if r == org.management_role => Side::Management,
                r if r == org.security_tooling_role => Side::SecurityTooling,
                r if r == org.log_archive_role => Side::LogArchive,
                r if r == org.delegated_role => Side::DelegatedAdministrator,
                other => {
                    panic!("{scenario}: {action} signed by a role trailkey was not given: {other}")
                }
            }
        };
        if action == "sts:AssumeRole" {
            usage
                .assumed
                .entry(side)
                .or_default()
                .insert(text(r, "role_arn").to_owned());
        }
        usage
            .actions
            .entry(side)
            .or_default()
            .entry(action)
            .or_default()
            .insert(scenario.to_owned());
    }
}

/// The role ARN behind an assumed-role session ARN
/// (`arn:aws:sts::<id>:assumed-role/<role>/<session>`).
fn assumed_role(principal: &str) -> Option<String> {
    let rest = principal.strip_prefix("arn:aws:sts::")?;
    let (account, rest) = rest.split_once(":assumed-role/")?;
    let (role, _session) = rest.split_once('/')?;
    Some(format!("arn:aws:iam::{account}:role/{role}"))
}

/// A policy file's statements.
fn statements(path: &str) -> Vec<Value> {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{path}: {e}"));
    for placeholder in text.split("${").skip(1) {
        let name = placeholder.split('}').next().unwrap();
        assert!(
            PLACEHOLDERS.contains(&name),
            "{path}: undocumented placeholder ${{{name}}}"
        );
    }
    let policy: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(policy["Version"], "2012-10-17", "{path}");
    policy["Statement"]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: no Statement list"))
        .clone()
}

/// A string or a list of strings.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|s| s.as_str().expect("a string").to_owned())
            .collect(),
        _ => Vec::new(),
    }
}

/// The `Allow` statements of a policy as (Sid, actions, resources).
fn allows(path: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    statements(path)
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .map(|s| {
            let sid = s["Sid"].as_str().unwrap_or_default().to_owned();
            assert!(
                sid.chars().all(|c| c.is_ascii_alphanumeric()) && !sid.is_empty(),
                "{path}: every statement has an alphanumeric Sid: {s}"
            );
            (sid, strings(&s["Action"]), strings(&s["Resource"]))
        })
        .collect()
}

/// IAM's matching of action names and ARNs: case-insensitive for actions,
/// `*` and `?` as wildcards.
fn glob(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let norm = |s: &str| {
        if case_insensitive {
            s.to_ascii_lowercase()
        } else {
            s.to_owned()
        }
    };
    let (p, t) = (norm(pattern), norm(text));
    let (p, t): (Vec<char>, Vec<char>) = (p.chars().collect(), t.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn action_matches(pattern: &str, action: &str) -> bool {
    glob(pattern, action, true)
}

/// Replaces `${Name}` placeholders by their values.
fn substitute(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_owned(), |s, (k, v)| {
        s.replace(&format!("${{{k}}}"), v)
    })
}

/// Checks one side against its policy; returns the policy's actions.
/// `not_observable`: for each `Sid` prefix of [`NOT_OBSERVABLE_PREFIXES`]
/// the policy may use, the actions its statements grant (a prefix left out
/// must grant nothing). Those statements are for the AWS service, not for
/// trailkey: what trailkey calls must be granted by the other statements.
fn check_side(
    side: Side,
    path: &str,
    used: &BTreeMap<String, BTreeSet<String>>,
    exempt_unused: &[&str],
    not_observable: &[(&str, &[&str])],
) -> Vec<String> {
    let allows = allows(path);
    let granted: Vec<&String> = allows.iter().flat_map(|(_, a, _)| a).collect();
    let own: Vec<&String> = allows
        .iter()
        .filter(|(sid, _, _)| not_observable_prefix(sid).is_none())
        .flat_map(|(_, a, _)| a)
        .collect();
    let not_granted: Vec<String> = used
        .iter()
        .filter(|(action, _)| !own.iter().any(|p| action_matches(p, action)))
        .map(|(action, scenarios)| format!("{action} (used by: {scenarios:?})"))
        .collect();
    assert!(
        not_granted.is_empty(),
        "{path} does not grant what the {side:?} side calls (outside its statements {NOT_OBSERVABLE_PREFIXES:?}*):\n  {}",
        not_granted.join("\n  ")
    );
    let mut found: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut unused = Vec::new();
    for (sid, actions, _) in &allows {
        for pattern in actions {
            if let Some(prefix) = not_observable_prefix(sid) {
                found.entry(prefix).or_default().push(pattern.clone());
            } else if !used.keys().any(|a| action_matches(pattern, a))
                && !exempt_unused.contains(&pattern.as_str())
            {
                unused.push(format!("{pattern} (statement {sid})"));
            }
        }
    }
    assert!(
        unused.is_empty(),
        "{path} grants actions no scenario uses (least privilege: remove them, or add the scenario that needs them):\n  {}",
        unused.join("\n  ")
    );
    for prefix in NOT_OBSERVABLE_PREFIXES {
        let mut actual = found.remove(prefix).unwrap_or_default();
        actual.sort();
        let mut expected: Vec<String> = not_observable
            .iter()
            .filter(|(p, _)| *p == prefix)
            .flat_map(|(_, actions)| actions.iter().map(ToString::to_string))
            .collect();
        expected.sort();
        assert_eq!(
            actual, expected,
            "{path}: the statements {prefix}* grant exactly what docs/control-tower.md documents"
        );
    }
    let mut all: Vec<String> = granted.into_iter().cloned().collect();
    all.sort();
    all
}

/// The policies list each action once, without wildcards, so that the test
/// is exact. The one exception: the statements of what Control Tower
/// requires of its caller reproduce the Control Tower guide's list, whose
/// wildcards are its own; they are checked against
/// [`CONTROL_TOWER_NOT_OBSERVABLE_ACTIONS`] instead.
fn no_wildcards_or_duplicates(path: &str) {
    let mut seen = BTreeSet::new();
    for (sid, actions, _) in allows(path) {
        let guides_list = sid.starts_with(CONTROL_TOWER_NOT_OBSERVABLE_SID_PREFIX);
        for a in actions {
            assert!(
                guides_list || (!a.contains('*') && !a.contains('?')),
                "{path}: statement {sid} uses a wildcard action {a}"
            );
            assert!(seen.insert(a.clone()), "{path}: {a} is granted twice");
        }
    }
}

/// `n` applies at once from scratch on a fresh organization; returns how
/// many of them scheduled deletion of their own key.
fn concurrent_applies(usage: &mut Usage, n: usize) -> usize {
    let org = Org::new();
    applies_at_once(&org, usage, "concurrent applies from scratch", None, n)
}

/// `n` applies of `org` at once, with `credentials` or the default ones,
/// recorded as `label`; returns how many of them scheduled deletion of
/// their own key (the losers of the race for the alias).
fn applies_at_once(
    org: &Org,
    usage: &mut Usage,
    label: &str,
    credentials: Option<&trailkey_testkit::Credentials>,
    n: usize,
) -> usize {
    org.record(usage, label, false, || {
        let children: Vec<_> = (0..n)
            .map(|_| {
                let mut run = Run::new(&org.moto).config(&org.seed.config);
                if let Some(c) = credentials {
                    run = run.credentials(c);
                }
                run.args(["apply", "--auto-approve"])
                    .command()
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn trailkey")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            // A loser that continued with the winner's key exits 0; one that
            // stopped says so and exits 1. Both are fine here.
            assert!(
                matches!(out.status.code(), Some(0 | 1)),
                "{}",
                transcript(&out)
            );
        }
    });
    let state = org.moto.state(&org.seed);
    state["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["key_state"] == "PendingDeletion")
        .count()
}

#[test]
fn the_iam_policies_grant_exactly_what_trailkey_calls() {
    let mut usage = Usage::default();
    let org = Org::new();
    let seed_config = org.seed.config.clone();

    org.record(&mut usage, "plan from scratch", false, || {
        org.run(&seed_config, &["plan", "--detailed-exitcode"], 2);
        org.run(&seed_config, &["plan", "--format", "json"], 0);
    });
    org.record(&mut usage, "first apply", false, || {
        org.run(&seed_config, &["apply", "--auto-approve"], 0);
    });
    org.record(&mut usage, "no-op plan, apply and policy", false, || {
        org.run(&seed_config, &["plan", "--detailed-exitcode"], 0);
        org.run(&seed_config, &["apply", "--auto-approve"], 0);
        org.run(&seed_config, &["policy"], 0);
    });
    for kind in [
        "key-disable",
        "key-pending-deletion",
        "rotation-off",
        "alias-delete",
        "alias-repoint",
        "policy-default",
        "tags-remove",
        "trail-unencrypt",
    ] {
        org.drift(kind);
        org.record(&mut usage, &format!("drift {kind}"), false, || {
            org.run(&seed_config, &["plan", "--detailed-exitcode"], 2);
            org.run(&seed_config, &["apply", "--auto-approve"], 0);
            org.run(&seed_config, &["plan", "--detailed-exitcode"], 0);
        });
        // After a repair of the key policy, CloudTrail evaluates the
        // previous one for a while (the layer's window, as AWS's eventual
        // consistency): a later run's UpdateTrail, which did not write the
        // policy and so does not wait for it, would meet it. Let it pass,
        // as between two scheduled runs.
        std::thread::sleep(trailkey_testkit::LAYER_WINDOW);
    }

    // `trail.logging = true` starts a stopped trail.
    let logging = org.config("logging.toml", |text| {
        text.replace("[trail]\n", "[trail]\nlogging = true\n")
    });
    org.drift("trail-stop-logging");
    org.record(&mut usage, "trail.logging: a stopped trail", false, || {
        org.run(&logging, &["plan", "--detailed-exitcode"], 2);
        org.run(&logging, &["apply", "--auto-approve"], 0);
        org.run(&logging, &["plan", "--detailed-exitcode"], 0);
    });
    // Custom event selectors are read (GetEventSelectors).
    org.drift("selectors-exclude-kms");
    org.record(&mut usage, "custom event selectors", false, || {
        org.run(&seed_config, &["plan", "--detailed-exitcode"], 0);
    });

    let with_role = org.config("management-role.toml", |text| {
        format!(
            "{text}\n[roles]\nmanagement = \"{}\"\n",
            org.management_role
        )
    });
    org.record(&mut usage, "roles.management", true, || {
        org.run(&with_role, &["plan", "--detailed-exitcode"], 0);
        org.run(&with_role, &["apply", "--auto-approve"], 0);
    });

    // The Log Archive reads happen when a plan would change the trail.
    let with_log_archive = org.config("log-archive-role.toml", |text| {
        format!("{text}\n[roles]\nlog_archive = \"{LOG_ARCHIVE_ROLE}\"\n")
    });
    org.drift("trail-unencrypt");
    org.record(&mut usage, "roles.log_archive", false, || {
        org.run(&with_log_archive, &["plan", "--detailed-exitcode"], 2);
        org.run(&with_log_archive, &["apply", "--auto-approve"], 0);
        org.run(&with_log_archive, &["plan", "--detailed-exitcode"], 0);
    });

    let renamed = org.config("renamed.toml", |text| {
        text.replace(
            "ct_key_alias = \"cloudtrail-org-key\"",
            "ct_key_alias = \"cloudtrail-org-key-renamed\"",
        )
    });
    assert_ne!(
        std::fs::read_to_string(&renamed).unwrap(),
        std::fs::read_to_string(&seed_config).unwrap(),
        "the seeded config sets ct_key_alias"
    );
    org.record(&mut usage, "alias renamed in the config", false, || {
        org.run(&renamed, &["plan", "--detailed-exitcode"], 2);
        org.run(&renamed, &["apply", "--auto-approve"], 0);
        org.run(&renamed, &["plan", "--detailed-exitcode"], 0);
    });
    org.record(&mut usage, "destroy, keeping the key", false, || {
        org.run(
            &renamed,
            &["destroy", "--dry-run", "--detailed-exitcode"],
            2,
        );
        org.run(&renamed, &["destroy", "--auto-approve"], 0);
    });
    org.record(&mut usage, "re-apply after destroy", false, || {
        org.run(&renamed, &["apply", "--auto-approve"], 0);
    });
    // A CloudTrail Lake event data store on CloudTrail's own key: destroy
    // reads its key (GetEventDataStore) and goes ahead.
    org.moto
        .world
        .event_data_store(trailkey_testkit::rules::EventDataStore {
            arn: format!(
                "arn:aws:cloudtrail:us-east-1:{}:eventdatastore/0a1b-lake",
                org.seed.management
            ),
            name: "lake".to_owned(),
            kms_key_id: None,
            status: "ENABLED".to_owned(),
        });
    org.record(&mut usage, "destroy --delete-key", false, || {
        org.run(
            &renamed,
            &[
                "destroy",
                "--auto-approve",
                "--delete-key",
                "--deletion-window-days",
                "7",
            ],
            0,
        );
    });

    // `trailkey lambda`, as the function role runs it: a call on another key
    // before its first plan (the trail, then that key's tags and the alias's
    // key), then a drift event it repairs.
    org.run(&seed_config, &["apply", "--auto-approve"], 0);
    let create =
        serde_json::json!([{"op": "kms:CreateKey", "params": {"Description": "another team's"}}]);
    let other =
        org.moto.calls_as(&org.seed.security_tooling, None, &create)[0]["response"]["KeyMetadata"]
            ["KeyId"]
            .as_str()
            .unwrap()
            .to_owned();
    org.drift("trail-unencrypt");
    org.record(&mut usage, "trailkey lambda", false, || {
        let api = RuntimeApi::start();
        let mut function = Run::new(&org.moto)
            .config(&seed_config)
            .arg("lambda")
            .env("TRAILKEY_MODE", "apply")
            .envs(api.lambda_env())
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start trailkey lambda");
        let wait = std::time::Duration::from_secs(60);
        let id = api.invoke(kms_event(&org.seed, "DisableKey", &other));
        let ignored = api.wait_result(&id, wait).response().clone();
        let id = api.invoke(update_trail_event(&org.seed));
        let repaired = api.wait_result(&id, wait).response().clone();
        let _ = function.kill();
        let _ = function.wait();
        assert_eq!(ignored["handled"], false, "{ignored:#}");
        assert_eq!(repaired["applied"], true, "{repaired:#}");
    });

    // `init` reads the organization (ListAccounts, DescribeTrails, ListTags).
    let init_config = org.moto.dir.path().join("init").join("trailkey.toml");
    std::fs::create_dir_all(init_config.parent().unwrap()).unwrap();
    let mut init_ran = false;
    org.record(&mut usage, "init", false, || {
        let out = Run::new(&org.moto)
            .config(&init_config)
            .args(["init", "--force"])
            .run();
        init_ran = out.status.code() == Some(0);
        if !init_ran {
            eprintln!(
                "SKIPPED: `trailkey init` failed, so its calls are not checked here:\n{}",
                transcript(&out)
            );
        }
    });
    // Without a successful init, organizations:ListAccounts (which only init
    // calls) stays listed in the policy, unobserved, rather than removed.
    let init_only: &[&str] = if init_ran {
        &[]
    } else {
        &["organizations:ListAccounts"]
    };

    // A run that loses the race to create the alias schedules deletion of
    // the key it created (apply.rs, `alias_race`). Concurrent applies from
    // scratch nearly always produce a loser; try a few times to be sure.
    let mut losers = 0;
    for _ in 0..3 {
        losers = concurrent_applies(&mut usage, 4);
        if losers > 0 {
            break;
        }
    }
    assert!(
        losers > 0,
        "no concurrent apply lost the alias race in 3 tries"
    );

    // The caller's own credentials, with roles.management, only assume that role.
    let runner = usage.of(Side::Runner);
    assert_eq!(
        runner.keys().collect::<Vec<_>>(),
        ["sts:AssumeRole"],
        "with roles.management the caller only assumes it: {runner:?}"
    );
    assert_eq!(
        usage.assumed[&Side::Runner],
        BTreeSet::from([org.management_role.clone()])
    );
    // The management side assumes the Security Tooling and Log Archive
    // roles, whose ARNs match the policy's Resource; the other sides assume
    // nothing.
    for side in [Side::SecurityTooling, Side::LogArchive] {
        assert!(!usage.assumed.contains_key(&side), "{:?}", usage.assumed);
    }
    assert!(
        usage.assumed[&Side::Management].contains(&org.log_archive_role),
        "the roles.log_archive scenario assumed {}: {:?}",
        org.log_archive_role,
        usage.assumed
    );
    let assume_resources: Vec<String> = allows(MANAGEMENT_POLICY)
        .into_iter()
        .filter(|(_, actions, _)| actions.iter().any(|a| a == "sts:AssumeRole"))
        .flat_map(|(_, _, resources)| resources)
        .collect();
    for arn in &usage.assumed[&Side::Management] {
        let account = arn.split(':').nth(4).unwrap();
        let allowed = assume_resources.iter().any(|r| {
            let r = substitute(
                r,
                &[
                    ("Partition", "aws"),
                    ("SecurityToolingAccountId", account),
                    ("SecurityToolingRoleName", SECURITY_TOOLING_ROLE),
                    ("LogArchiveAccountId", account),
                    ("LogArchiveRoleName", LOG_ARCHIVE_ROLE),
                ],
            );
            glob(&r, arn, false)
        });
        assert!(
            allowed,
            "sts:AssumeRole on {arn} is not allowed by {assume_resources:?}"
        );
    }

    for path in [
        MANAGEMENT_POLICY,
        SECURITY_TOOLING_POLICY,
        LOG_ARCHIVE_POLICY,
    ] {
        no_wildcards_or_duplicates(path);
    }
    let management = usage.of(Side::Management);
    let security_tooling = usage.of(Side::SecurityTooling);
    let log_archive = usage.of(Side::LogArchive);
    eprintln!(
        "management side ({MANAGEMENT_POLICY}), {} actions used:\n{}",
        management.len(),
        show(&management)
    );
    eprintln!(
        "Security Tooling role ({SECURITY_TOOLING_POLICY}), {} actions used:\n{}",
        security_tooling.len(),
        show(&security_tooling)
    );
    let granted = check_side(
        Side::Management,
        MANAGEMENT_POLICY,
        &management,
        init_only,
        &[(NOT_OBSERVABLE_SID_PREFIX, &NOT_OBSERVABLE_ACTIONS)],
    );
    eprintln!("{MANAGEMENT_POLICY} grants: {}", granted.join(", "));
    let granted = check_side(
        Side::SecurityTooling,
        SECURITY_TOOLING_POLICY,
        &security_tooling,
        &[],
        &[],
    );
    eprintln!("{SECURITY_TOOLING_POLICY} grants: {}", granted.join(", "));
    eprintln!(
        "Log Archive role ({LOG_ARCHIVE_POLICY}), {} actions used:\n{}",
        log_archive.len(),
        show(&log_archive)
    );
    let granted = check_side(Side::LogArchive, LOG_ARCHIVE_POLICY, &log_archive, &[], &[]);
    eprintln!("{LOG_ARCHIVE_POLICY} grants: {}", granted.join(", "));
}

/// `apply` and `destroy` in landing-zone mode: no prompt, and the
/// emulator's operation (a second long) polled every second.
const CT_APPLY: [&str; 4] = [
    "apply",
    "--auto-approve",
    "--landing-zone-poll-interval",
    "1s",
];

impl Org {
    /// A config in landing-zone mode (`[control_tower] landing_zone = true`,
    /// `accounts.management`), with `extra` after it.
    fn control_tower_config(&self, name: &str, extra: &str) -> PathBuf {
        self.moto.control_tower_config(&self.seed, name, extra)
    }

    /// Appends to the policy of trailkey's key (in the management account)
    /// a statement that lets an account outside the organization decrypt.
    fn open_management_key_to_an_outside_account(&self) {
        self.open_key_to_an_outside_account(None);
    }

    /// Appends to the policy of trailkey's key in `account` (the management
    /// account's with `None`, signed by a role of `account` otherwise) a
    /// statement that lets an account outside the organization decrypt.
    fn open_key_to_an_outside_account(&self, account: Option<&str>) {
        let calls = |calls: &Value| match account {
            Some(account) => self.moto.calls_as(account, None, calls),
            None => self.moto.calls(None, calls),
        };
        let describe = serde_json::json!([{"op": "kms:DescribeKey", "params": {
            "KeyId": "alias/cloudtrail-org-key"
        }}]);
        let key_id = calls(&describe)[0]["response"]["KeyMetadata"]["KeyId"]
            .as_str()
            .expect("trailkey's key")
            .to_owned();
        let get = serde_json::json!([{"op": "kms:GetKeyPolicy", "params": {
            "KeyId": key_id, "PolicyName": "default"
        }}]);
        let text = calls(&get)[0]["response"]["Policy"]
            .as_str()
            .expect("the key policy")
            .to_owned();
        let mut policy: Value = serde_json::from_str(&text).unwrap();
        policy["Statement"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "Sid": "OutsideAuditDecrypt",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::444455556666:root"},
                "Action": "kms:Decrypt",
                "Resource": "*"
            }));
        let put = serde_json::json!([{"op": "kms:PutKeyPolicy", "params": {
            "KeyId": key_id, "PolicyName": "default", "Policy": policy.to_string()
        }}]);
        let put = calls(&put);
        assert_eq!(put[0]["ok"], true, "{put:#?}");
    }

    /// `fixture.py drift <kind>` on the key in the management account, where
    /// landing-zone mode makes it.
    fn drift_management_key(&self, kind: &str) {
        self.moto
            .fixture(&["drift", kind, "--security-tooling", &self.seed.management]);
    }
}

/// `[control_tower] landing_zone = true`: every call is made with the
/// management side's credentials (the caller's own, or the
/// `roles.management` role), KMS and Control Tower included, and
/// `policies/iam-management-control-tower.json` grants exactly those, plus
/// what Control Tower requires of the caller of `UpdateLandingZone`. The
/// calls of `trailkey lambda` in this mode are granted by the Lambda
/// template's function role with `KeyAccount=Management`.
#[test]
fn the_control_tower_policy_grants_exactly_what_landing_zone_mode_calls() {
    let mut usage = Usage::default();
    let org = Org::new();
    org.moto
        .control_tower(&org.seed, std::time::Duration::from_secs(1));
    let config = org.control_tower_config("control-tower.toml", "");
    let destroy = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut args = vec!["destroy"];
        args.extend_from_slice(&CT_APPLY[1..]);
        args.extend_from_slice(extra);
        args
    };

    org.record(&mut usage, "landing zone: plan from scratch", false, || {
        org.run(&config, &["plan", "--detailed-exitcode"], 2);
        org.run(&config, &["plan", "--format", "json"], 0);
    });
    org.record(&mut usage, "landing zone: first apply", false, || {
        org.run(&config, &CT_APPLY, 0);
    });
    org.record(
        &mut usage,
        "landing zone: no-op plan and apply",
        false,
        || {
            org.run(&config, &["plan", "--detailed-exitcode"], 0);
            org.run(&config, &CT_APPLY, 0);
        },
    );
    for kind in [
        "key-disable",
        "key-pending-deletion",
        "rotation-off",
        "alias-delete",
        "alias-repoint",
        "tags-remove",
    ] {
        org.drift_management_key(kind);
        org.record(
            &mut usage,
            &format!("landing zone: drift {kind}"),
            false,
            || {
                org.run(&config, &["plan", "--detailed-exitcode"], 2);
                org.run(&config, &CT_APPLY, 0);
                org.run(&config, &["plan", "--detailed-exitcode"], 0);
            },
        );
    }
    // A foreign statement that lets an account trailkey does not know
    // decrypt: kept, with a warning, for which the plan reads the
    // organization's accounts. Then the whole policy replaced by KMS's
    // default, which apply repairs (and which drops that statement).
    org.open_management_key_to_an_outside_account();
    org.record(
        &mut usage,
        "landing zone: a foreign statement for an outside account",
        false,
        || {
            org.run(&config, &["plan", "--detailed-exitcode"], 0);
            org.run(&config, &CT_APPLY, 0);
        },
    );
    org.drift_management_key("policy-default");
    org.record(
        &mut usage,
        "landing zone: drift policy-default",
        false,
        || {
            org.run(&config, &["plan", "--detailed-exitcode"], 2);
            org.run(&config, &CT_APPLY, 0);
            org.run(&config, &["plan", "--detailed-exitcode"], 0);
        },
    );

    let with_role = org.control_tower_config(
        "control-tower-management-role.toml",
        &format!("[roles]\nmanagement = \"{}\"\n", org.management_role),
    );
    org.record(&mut usage, "landing zone: roles.management", true, || {
        org.run(&with_role, &["plan", "--detailed-exitcode"], 0);
        org.run(&with_role, &CT_APPLY, 0);
    });

    org.record(
        &mut usage,
        "landing zone: destroy, keeping the key",
        false,
        || {
            org.run(&config, &["destroy", "--dry-run", "--detailed-exitcode"], 2);
            org.run(&config, &destroy(&[]), 0);
        },
    );
    // The Log Archive reads happen when a plan would change the key the
    // landing zone names, applying and destroying.
    let with_log_archive = org.control_tower_config(
        "control-tower-log-archive-role.toml",
        &format!("[roles]\nlog_archive = \"{LOG_ARCHIVE_ROLE}\"\n"),
    );
    org.record(&mut usage, "landing zone: roles.log_archive", false, || {
        org.run(&with_log_archive, &["plan", "--detailed-exitcode"], 2);
        org.run(&with_log_archive, &CT_APPLY, 0);
        org.run(&with_log_archive, &["plan", "--detailed-exitcode"], 0);
        org.run(&with_log_archive, &destroy(&[]), 0);
    });
    // After destroy the trail is on SSE-S3: the key may be deleted. A
    // CloudTrail Lake event data store on CloudTrail's own key is read too.
    org.moto
        .world
        .event_data_store(trailkey_testkit::rules::EventDataStore {
            arn: format!(
                "arn:aws:cloudtrail:us-east-1:{}:eventdatastore/0a1b-lake",
                org.seed.management
            ),
            name: "lake".to_owned(),
            kms_key_id: None,
            status: "ENABLED".to_owned(),
        });
    org.record(
        &mut usage,
        "landing zone: destroy --delete-key",
        false,
        || {
            org.run(
                &config,
                &destroy(&["--delete-key", "--deletion-window-days", "7"]),
                0,
            );
        },
    );
    let state = org
        .moto
        .fixture(&["state", "--security-tooling", &org.seed.management]);
    assert!(
        state["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["key_state"] == "PendingDeletion"),
        "destroy --delete-key scheduled the key's deletion: {state:#}"
    );

    // `trailkey lambda`, as the template's function role runs it with
    // KeyAccount=Management: a call on another key of the management
    // account before its first plan, then the schedule, whose apply brings
    // back the key destroy left pending deletion (its deletion cancelled, the
    // key enabled, the alias made again) and leaves the landing zone's
    // change pending.
    let create =
        serde_json::json!([{"op": "kms:CreateKey", "params": {"Description": "another team's"}}]);
    let other = org.moto.calls(None, &create)[0]["response"]["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let other_key_call: Value = serde_json::from_str(
        &kms_event(&org.seed, "DisableKey", &other)
            .to_string()
            .replace(&org.seed.security_tooling, &org.seed.management),
    )
    .unwrap();
    const LAMBDA: &str = "landing zone: trailkey lambda";
    org.record(&mut usage, LAMBDA, false, || {
        let api = RuntimeApi::start();
        let mut function = Run::new(&org.moto)
            .config(&config)
            .arg("lambda")
            .env("TRAILKEY_MODE", "apply")
            .envs(api.lambda_env())
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start trailkey lambda");
        let wait = std::time::Duration::from_secs(60);
        let id = api.invoke(other_key_call);
        let ignored = api.wait_result(&id, wait).response().clone();
        let schedule = serde_json::json!({"version": "0", "id": "schedule-1",
            "detail-type": "Scheduled Event", "source": "aws.events", "region": "us-east-1",
            "resources": [], "detail": {}});
        let id = api.invoke(schedule);
        let applied = api.wait_result(&id, wait).response().clone();
        let _ = function.kill();
        let _ = function.wait();
        assert_eq!(ignored["handled"], false, "{ignored:#}");
        assert_eq!(applied["applied"], true, "{applied:#}");
        assert_eq!(
            applied["pending"].as_array().map(Vec::len),
            Some(1),
            "{applied:#}"
        );
    });
    // The template's role grants every call the function made, with its
    // own statements: no landing-zone update among them.
    let in_template = lambda_template_statements("Management");
    let function_calls: Vec<String> = usage
        .of(Side::Management)
        .into_iter()
        .filter(|(_, scenarios)| scenarios.contains(LAMBDA))
        .map(|(action, _)| action)
        .collect();
    for expected in [
        "controltower:GetLandingZone",
        "kms:CancelKeyDeletion",
        "kms:CreateAlias",
    ] {
        assert!(
            function_calls.iter().any(|a| a == expected),
            "{expected} in {function_calls:?}"
        );
    }
    for action in &function_calls {
        assert!(
            !LANDING_ZONE_UPDATE_ONLY.contains(&action.as_str()),
            "the function called {action}"
        );
        assert!(
            in_template.iter().any(|s| s["Effect"] == "Allow"
                && strings(&s["Action"])
                    .iter()
                    .any(|p| action_matches(p, action))),
            "{LAMBDA_TEMPLATE} with KeyAccount=Management does not grant {action}, which the function called"
        );
    }

    // Nothing is signed in Security Tooling; the caller's own credentials,
    // with roles.management, only assume that role; the management side
    // assumes only the Log Archive role.
    assert!(
        usage.of(Side::SecurityTooling).is_empty(),
        "landing-zone mode assumes no role in Security Tooling: {:?}",
        usage.of(Side::SecurityTooling)
    );
    let runner = usage.of(Side::Runner);
    assert_eq!(
        runner.keys().collect::<Vec<_>>(),
        ["sts:AssumeRole"],
        "with roles.management the caller only assumes it: {runner:?}"
    );
    assert_eq!(
        usage.assumed[&Side::Runner],
        BTreeSet::from([org.management_role.clone()])
    );
    assert_eq!(
        usage.assumed[&Side::Management],
        BTreeSet::from([org.log_archive_role.clone()])
    );
    let assume_resources: Vec<String> = allows(CONTROL_TOWER_POLICY)
        .into_iter()
        .filter(|(_, actions, _)| actions.iter().any(|a| a == "sts:AssumeRole"))
        .flat_map(|(_, _, resources)| resources)
        .map(|r| {
            substitute(
                &r,
                &[
                    ("Partition", "aws"),
                    ("LogArchiveAccountId", &org.seed.log_archive),
                    ("LogArchiveRoleName", LOG_ARCHIVE_ROLE),
                ],
            )
        })
        .collect();
    assert_eq!(
        assume_resources,
        std::slice::from_ref(&org.log_archive_role)
    );

    no_wildcards_or_duplicates(CONTROL_TOWER_POLICY);
    let management = usage.of(Side::Management);
    let log_archive = usage.of(Side::LogArchive);
    eprintln!(
        "management side in landing-zone mode ({CONTROL_TOWER_POLICY}), {} actions used:\n{}",
        management.len(),
        show(&management)
    );
    let granted = check_side(
        Side::Management,
        CONTROL_TOWER_POLICY,
        &management,
        &[],
        &[(
            CONTROL_TOWER_NOT_OBSERVABLE_SID_PREFIX,
            &CONTROL_TOWER_NOT_OBSERVABLE_ACTIONS,
        )],
    );
    eprintln!("{CONTROL_TOWER_POLICY} grants: {}", granted.join(", "));
    eprintln!(
        "Log Archive role in landing-zone mode ({LOG_ARCHIVE_POLICY}), {} actions used:\n{}",
        log_archive.len(),
        show(&log_archive)
    );
    check_side(Side::LogArchive, LOG_ARCHIVE_POLICY, &log_archive, &[], &[]);
}

/// In landing-zone mode the key is in the management account, and the
/// management-side policy manages it as the Security Tooling role's policy
/// does: the same statements (Sids, actions, conditions, the lockout
/// `Deny`), on keys and the alias of the management account instead.
#[test]
fn the_control_tower_policy_manages_keys_as_the_security_tooling_policy_does() {
    let in_control_tower = statements(CONTROL_TOWER_POLICY);
    for s in statements(SECURITY_TOOLING_POLICY) {
        let expected: Value = serde_json::from_str(
            &s.to_string()
                .replace("${SecurityToolingAccountId}", "${ManagementAccountId}"),
        )
        .unwrap();
        let sid = &s["Sid"];
        let found = in_control_tower
            .iter()
            .find(|c| &c["Sid"] == sid)
            .unwrap_or_else(|| panic!("{CONTROL_TOWER_POLICY}: no statement {sid}"));
        assert_eq!(found, &expected, "{sid}");
    }
    // trailkey's own statements never change the trail, and assume no role
    // but the optional Log Archive one.
    for (sid, actions, resources) in allows(CONTROL_TOWER_POLICY) {
        if not_observable_prefix(&sid).is_some() {
            continue;
        }
        assert!(
            !actions.iter().any(|a| a == "cloudtrail:UpdateTrail"),
            "{sid}"
        );
        if actions.iter().any(|a| a == "sts:AssumeRole") {
            assert_eq!(
                resources,
                ["arn:${Partition}:iam::${LogArchiveAccountId}:role/${LogArchiveRoleName}"],
                "{sid}"
            );
        }
    }
}

#[test]
fn the_trust_policies_let_the_runner_assume_the_security_tooling_and_log_archive_roles() {
    for path in [SECURITY_TOOLING_TRUST, LOG_ARCHIVE_TRUST] {
        let statements = statements(path);
        assert_eq!(statements.len(), 1, "{path}: {statements:?}");
        let s = &statements[0];
        assert_eq!(s["Effect"], "Allow");
        assert_eq!(strings(&s["Action"]), ["sts:AssumeRole"]);
        assert_eq!(
            strings(&s["Principal"]["AWS"]),
            ["arn:${Partition}:iam::${ManagementAccountId}:role/${RunnerRoleName}"]
        );
    }
}

/// The Log Archive role reads the trail bucket's configuration and nothing
/// else: three read actions, on that bucket only.
#[test]
fn the_log_archive_policy_reads_only_the_trail_bucket() {
    no_wildcards_or_duplicates(LOG_ARCHIVE_POLICY);
    let allows = allows(LOG_ARCHIVE_POLICY);
    let actions: BTreeSet<String> = allows.iter().flat_map(|(_, a, _)| a.clone()).collect();
    assert_eq!(
        actions,
        BTreeSet::from(
            [
                "s3:GetBucketPolicy",
                "s3:GetEncryptionConfiguration",
                "s3:GetReplicationConfiguration"
            ]
            .map(str::to_owned)
        )
    );
    for (_, _, resources) in &allows {
        assert_eq!(resources, &["arn:${Partition}:s3:::${TrailBucket}"]);
    }
    assert!(
        statements(LOG_ARCHIVE_POLICY)
            .iter()
            .all(|s| s["Effect"] == "Allow")
    );
}

#[test]
fn the_security_tooling_policy_denies_the_lockout_bypass_and_limits_what_it_creates_and_deletes() {
    let statements = statements(SECURITY_TOOLING_POLICY);
    let by_sid = |sid: &str| {
        statements
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("statement {sid}"))
            .clone()
    };
    let deny = by_sid("TrailkeyNeverBypassTheLockoutSafetyCheck");
    assert_eq!(deny["Effect"], "Deny");
    assert_eq!(
        strings(&deny["Action"]),
        ["kms:CreateKey", "kms:PutKeyPolicy"]
    );
    assert_eq!(
        deny["Condition"]["Bool"]["kms:BypassPolicyLockoutSafetyCheck"],
        "true"
    );
    let create = by_sid("TrailkeyCreateOnlyItsKindOfKey");
    let equals = &create["Condition"]["StringEquals"];
    assert_eq!(equals["aws:RequestTag/ManagedBy"], "trailkey");
    assert_eq!(equals["aws:RequestTag/trailkey:created"], "true");
    assert_eq!(equals["kms:KeySpec"], "SYMMETRIC_DEFAULT");
    assert_eq!(equals["kms:KeyUsage"], "ENCRYPT_DECRYPT");
    assert_eq!(equals["kms:KeyOrigin"], "AWS_KMS");
    assert_eq!(create["Condition"]["Bool"]["kms:MultiRegion"], "false");
    let delete = by_sid("TrailkeyScheduleDeletionOfItsOwnKeysOnly");
    // Only keys trailkey's own CreateKey made: an adopted key carries
    // ManagedBy = trailkey too, never trailkey:created.
    assert_eq!(
        delete["Condition"]["StringEquals"],
        serde_json::json!({"aws:ResourceTag/trailkey:created": "true"})
    );
}

/// Example values for the placeholders, to lint the policies as IAM would see them.
const EXAMPLE_VALUES: [(&str, &str); 11] = [
    ("Partition", "aws"),
    ("Region", "us-east-1"),
    ("ManagementAccountId", "111111111111"),
    ("SecurityToolingAccountId", "222222222222"),
    ("SecurityToolingRoleName", "TrailkeyKeyManager"),
    ("TrailName", "org-trail"),
    ("TrailBucket", "org-trail-logs-333333333333"),
    ("AliasName", "cloudtrail-org-key"),
    ("RunnerRoleName", "TrailkeyRunner"),
    ("LogArchiveAccountId", "444444444444"),
    ("LogArchiveRoleName", "TrailkeyLogArchiveRead"),
];

/// parliament's findings (issue, actions) for a policy file with the
/// placeholders filled in.
fn parliament(path: &str) -> BTreeSet<(String, Vec<String>)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    parliament_text(path, &text)
}

/// parliament's findings for `text`, a policy (from `path`), with the
/// placeholders filled in.
fn parliament_text(path: &str, text: &str) -> BTreeSet<(String, Vec<String>)> {
    use std::io::Write as _;
    let bin = trailkey_testkit::venv().join("bin/parliament");
    assert!(
        bin.exists(),
        "no parliament in the test venv: run `make test`, which installs tests/requirements.txt"
    );
    let text = substitute(text, &EXAMPLE_VALUES);
    assert!(
        !text.contains("${"),
        "{path}: a placeholder without an example value"
    );
    let mut child = std::process::Command::new(bin)
        .args([
            "--include-community-auditors",
            "--minimum_severity",
            "INFO",
            "--json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run parliament");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.stderr.is_empty(),
        "parliament on {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let mut actions = strings(&f["location"]["actions"]);
            actions.sort();
            (f["issue"].as_str().unwrap().to_owned(), actions)
        })
        .collect()
}

/// parliament (the IAM linter pinned in tests/requirements.txt) knows every
/// action, resource ARN shape and condition key of the two permission
/// policies. It flags only what the job needs: `sts:AssumeRole` returns
/// credentials, and `kms:CreateKey`/`kms:PutKeyPolicy` manage a resource
/// policy. (The trust policy is not linted: parliament reads every policy as
/// an identity policy and wants a `Resource`, which trust policies have not.)
#[test]
fn the_iam_policies_pass_the_parliament_linter() {
    let owned = |issue: &str, actions: &[&str]| {
        (
            issue.to_owned(),
            actions.iter().map(ToString::to_string).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        parliament(MANAGEMENT_POLICY),
        BTreeSet::from([owned("CREDENTIALS_EXPOSURE", &["sts:assumerole"])])
    );
    assert_eq!(
        parliament(SECURITY_TOOLING_POLICY),
        BTreeSet::from([owned(
            "PERMISSIONS_MANAGEMENT_ACTIONS",
            &["kms:createkey", "kms:putkeypolicy"]
        )])
    );
    assert_eq!(parliament(LOG_ARCHIVE_POLICY), BTreeSet::new());
    control_tower_policy_passes_the_parliament_linter();
}

/// `policies/iam-management-control-tower.json` in two parts. trailkey's
/// own statements: the findings of the other two policies together, and
/// nothing else (`sts:AssumeRole` of the Log Archive role; `CreateKey` and
/// `PutKeyPolicy`). The whole file, with the Control Tower guide's list for
/// the caller of the landing-zone APIs: every action is known (no unknown
/// action or prefix, no malformed statement), and what parliament reports
/// besides comes from that list: its permissions-management actions, its
/// `iam:AttachRolePolicy` and `iam:PutRolePolicy` with `sts:AssumeRole`, and
/// its `Resource: "*"`.
fn control_tower_policy_passes_the_parliament_linter() {
    let owned = |issue: &str, actions: &[&str]| {
        (
            issue.to_owned(),
            actions.iter().map(ToString::to_string).collect::<Vec<_>>(),
        )
    };
    let full =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(CONTROL_TOWER_POLICY))
            .unwrap();
    let mut policy: Value = serde_json::from_str(&full).unwrap();
    policy["Statement"]
        .as_array_mut()
        .unwrap()
        .retain(|s| not_observable_prefix(s["Sid"].as_str().unwrap_or_default()).is_none());
    assert_eq!(
        parliament_text(CONTROL_TOWER_POLICY, &policy.to_string()),
        BTreeSet::from([
            owned("CREDENTIALS_EXPOSURE", &["sts:assumerole"]),
            owned(
                "PERMISSIONS_MANAGEMENT_ACTIONS",
                &["kms:createkey", "kms:putkeypolicy"]
            ),
        ])
    );

    let findings = parliament_text(CONTROL_TOWER_POLICY, &full);
    let issues: BTreeSet<&str> = findings.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(
        issues,
        BTreeSet::from([
            "CREDENTIALS_EXPOSURE",
            "PERMISSIONS_MANAGEMENT_ACTIONS",
            "PRIVILEGE_ESCALATION",
            "RESOURCE_STAR"
        ]),
        "{findings:#?}"
    );
    let guides = |action: &str| {
        CONTROL_TOWER_NOT_OBSERVABLE_ACTIONS
            .iter()
            .any(|p| action_matches(p, action))
    };
    for (issue, actions) in &findings {
        match issue.as_str() {
            "CREDENTIALS_EXPOSURE" => assert_eq!(actions, &["sts:assumerole"]),
            "PERMISSIONS_MANAGEMENT_ACTIONS" => {
                for a in actions {
                    assert!(
                        guides(a) || a == "kms:createkey" || a == "kms:putkeypolicy",
                        "{a}"
                    );
                }
            }
            "PRIVILEGE_ESCALATION" => assert!(
                actions == &["iam:attachrolepolicy", "sts:assumerole"]
                    || actions == &["iam:putrolepolicy", "sts:assumerole"],
                "{actions:?}"
            ),
            // Reported for the guide's statement, which has no actions in
            // its location: the part without it has no RESOURCE_STAR.
            _ => assert_eq!(actions, &Vec::<String>::new(), "{issue}"),
        }
    }
}

/// The Lambda deployment template.
const LAMBDA_TEMPLATE: &str = "docs/examples/lambda/template.yaml";

/// What only a landing-zone update needs, which the function never makes
/// (it reports the landing zone's change as pending): the update, and
/// waiting for its operation. With `KeyAccount=Management` the template's
/// function role has these of `policies/iam-management-control-tower.json`
/// left out, with the statements of what Control Tower requires of the
/// update's caller ([`CONTROL_TOWER_NOT_OBSERVABLE_SID_PREFIX`]).
const LANDING_ZONE_UPDATE_ONLY: [&str; 2] = [
    "controltower:UpdateLandingZone",
    "controltower:GetLandingZoneOperation",
];

/// A statement as the comparisons below see it: its `Sid`, `Effect`,
/// actions and resources as lists, and its `Condition`.
fn normalized(s: &Value) -> Value {
    serde_json::json!({
        "Sid": s["Sid"],
        "Effect": s["Effect"],
        "Action": strings(&s["Action"]),
        "Resource": strings(&s["Resource"]),
        "Condition": s.get("Condition").cloned().unwrap_or(Value::Null),
    })
}

/// The statements of the Lambda template's `trailkey-management` policy as
/// CloudFormation deploys it with `KeyAccount` = `key_account` (its
/// conditions resolved), in the policy files' terms: each resource's
/// CloudFormation pseudo-parameters as the files' placeholders.
fn lambda_template_statements(key_account: &str) -> Vec<Value> {
    let template =
        trailkey_testkit::cloudformation_with(LAMBDA_TEMPLATE, &[("KeyAccount", key_account)]);
    let policy = template["Resources"]["FunctionRole"]["Properties"]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["PolicyName"] == "trailkey-management")
        .expect("the trailkey-management policy")
        .clone();
    // A resource as the template writes it, in the shipped file's terms.
    let one = |v: &Value| -> Value {
        let text = v
            .get("Fn::Sub")
            .or(Some(v))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("a resource that is not a string or !Sub: {v}"));
        Value::from(
            text.replace("${AWS::Partition}", "${Partition}")
                .replace("${AWS::Region}", "${Region}")
                .replace("${AWS::AccountId}", "${ManagementAccountId}"),
        )
    };
    policy["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut s = s.clone();
            s["Resource"] = match &s["Resource"] {
                Value::Array(list) => list.iter().map(one).collect(),
                other => one(other),
            };
            normalized(&s)
        })
        .collect()
}

/// The Lambda deployment template (`docs/examples/lambda/template.yaml`)
/// gives its function role, with `KeyAccount=SecurityTooling` (the
/// default), exactly the statements of the shipped management policy: the
/// same Sids, actions, resources and conditions, in the same order, its
/// placeholders as CloudFormation pseudo-parameters and parameters. With
/// `KeyAccount=Management`, for `[control_tower] landing_zone = true`, those
/// of `policies/iam-management-control-tower.json` but for what only a
/// landing-zone update needs ([`LANDING_ZONE_UPDATE_ONLY`], and the Control
/// Tower guide's statement for its caller): no `UpdateLandingZone`, no
/// `UpdateTrail`, and no role assumed in Security Tooling.
#[test]
fn the_lambda_templates_function_role_has_the_shipped_management_policy() {
    // The same statements, in the same order, one by one.
    let same = |actual: &[Value], expected: &[Value], path: &str| {
        let sids = |list: &[Value]| list.iter().map(|s| s["Sid"].clone()).collect::<Vec<_>>();
        assert_eq!(sids(actual), sids(expected), "{path}");
        for (a, e) in actual.iter().zip(expected) {
            assert_eq!(a, e, "{path}: {}", e["Sid"]);
        }
    };
    same(
        &lambda_template_statements("SecurityTooling"),
        &statements(MANAGEMENT_POLICY)
            .iter()
            .map(normalized)
            .collect::<Vec<_>>(),
        MANAGEMENT_POLICY,
    );

    // The Control Tower policy for a function that never updates the
    // landing zone; a statement left with only reads is named for them.
    let expected: Vec<Value> = statements(CONTROL_TOWER_POLICY)
        .iter()
        .filter(|s| {
            !s["Sid"]
                .as_str()
                .unwrap()
                .starts_with(CONTROL_TOWER_NOT_OBSERVABLE_SID_PREFIX)
        })
        .filter_map(|s| {
            let mut s = normalized(s);
            let all = strings(&s["Action"]);
            let kept: Vec<&String> = all
                .iter()
                .filter(|a| !LANDING_ZONE_UPDATE_ONLY.contains(&a.as_str()))
                .collect();
            if kept.is_empty() {
                return None;
            }
            if s["Sid"] == "TrailkeyReadAndUpdateTheLandingZone" {
                s["Sid"] = Value::from("TrailkeyReadTheLandingZone");
            }
            s["Action"] = serde_json::json!(kept);
            Some(s)
        })
        .collect();
    let management = lambda_template_statements("Management");
    same(&management, &expected, CONTROL_TOWER_POLICY);
    for s in &management {
        let actions = strings(&s["Action"]);
        for never in LANDING_ZONE_UPDATE_ONLY
            .iter()
            .chain(&["cloudtrail:UpdateTrail"])
        {
            assert!(!actions.iter().any(|a| a == never), "{s:#}");
        }
        if actions.iter().any(|a| a == "sts:AssumeRole") {
            assert_eq!(
                strings(&s["Resource"]),
                ["arn:${Partition}:iam::${LogArchiveAccountId}:role/${LogArchiveRoleName}"],
                "no role in Security Tooling: {s:#}"
            );
        }
    }
    // The landing zone's reads are those the function makes.
    let control_tower: BTreeSet<String> = management
        .iter()
        .flat_map(|s| strings(&s["Action"]))
        .filter(|a| a.starts_with("controltower:"))
        .collect();
    assert_eq!(
        control_tower,
        BTreeSet::from(
            [
                "controltower:GetLandingZone",
                "controltower:ListLandingZoneOperations",
                "controltower:ListLandingZones"
            ]
            .map(str::to_owned)
        )
    );
}

/// The tests tell a write on the wire by its action's name
/// (`trailkey_testkit::is_write`; S3's by its HTTP method, in the proxy), to
/// catch any write, even one trailkey does not know it makes; the product
/// lists its own (`aws::WRITES`). The two must agree on every operation
/// trailkey calls.
#[test]
fn the_tests_and_the_product_agree_on_which_calls_write() {
    for (service, operations) in trailkey::error::OPERATIONS {
        if *service == "s3" {
            continue;
        }
        for operation in *operations {
            let writes = trailkey::aws::WRITES.contains(operation);
            assert_eq!(
                trailkey_testkit::is_write(&format!("{service}:{operation}")),
                writes,
                "{service}:{operation}"
            );
        }
    }
    for write in trailkey::aws::WRITES {
        assert!(
            trailkey::error::OPERATIONS
                .iter()
                .any(|(_, ops)| ops.contains(&write)),
            "{write} is not among the operations trailkey calls"
        );
    }
}

// ------------------------------------------------------------------------
// From Security Tooling, as CloudTrail's delegated administrator.

impl Org {
    /// `policies/iam-security-tooling-delegated-admin.json` with this
    /// organization's values, and `alias` as `${AliasName}`.
    fn delegated_policy(&self, alias: &str) -> Value {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(DELEGATED_POLICY))
                .unwrap();
        let text = substitute(
            &text,
            &[
                ("Partition", "aws"),
                ("Region", "us-east-1"),
                ("ManagementAccountId", &self.seed.management),
                ("SecurityToolingAccountId", &self.seed.security_tooling),
                ("TrailName", &self.seed.trail_name),
                ("TrailBucket", &self.seed.bucket),
                ("AliasName", alias),
                ("LogArchiveAccountId", &self.seed.log_archive),
                ("LogArchiveRoleName", LOG_ARCHIVE_ROLE),
            ],
        );
        assert!(
            !text.contains("${"),
            "{DELEGATED_POLICY}: a placeholder left: {text}"
        );
        serde_json::from_str(&text).unwrap()
    }

    /// The delegated administrator's role, with only
    /// `policies/iam-security-tooling-delegated-admin.json` (for `alias`)
    /// attached, which the layer enforces on its sessions; credentials of a
    /// session of it.
    fn delegated_role_with_its_policy(&self, alias: &str) -> trailkey_testkit::Credentials {
        self.moto
            .world
            .attach_identity_policy(&self.delegated_role, self.delegated_policy(alias));
        self.moto.assume_role(
            &self.seed.security_tooling,
            DELEGATED_ROLE,
            self.moto.layer(),
        )
    }

    /// Runs trailkey with `config` and the Security Tooling role's
    /// credentials, and checks its exit code.
    fn run_as(
        &self,
        credentials: &trailkey_testkit::Credentials,
        config: &Path,
        args: &[&str],
        expect: i32,
    ) -> Output {
        let out = Run::new(&self.moto)
            .config(config)
            .credentials(credentials)
            .args(args)
            .run();
        assert_eq!(
            out.status.code(),
            Some(expect),
            "trailkey {args:?} from Security Tooling: {}",
            transcript(&out)
        );
        out
    }

    /// The layer's denials under the attached identity policies, none
    /// expected.
    fn assert_no_identity_denial(&self, scenario: &str) {
        let denied = self.moto.world.identity_denials();
        assert!(
            denied.is_empty(),
            "{scenario}: {DELEGATED_POLICY} did not allow:\n{denied:#?}"
        );
    }
}

/// `n` applies at once from scratch, from Security Tooling under the
/// delegated administrator's policy, on a fresh organization; returns how
/// many of them scheduled deletion of their own key.
fn concurrent_delegated_applies(usage: &mut Usage, n: usize) -> (usize, Org) {
    let org = Org::new();
    org.moto
        .world
        .delegated_administrator(CLOUDTRAIL, &org.seed.security_tooling);
    let credentials = org.delegated_role_with_its_policy("cloudtrail-org-key");
    let label = "delegated: concurrent applies from scratch";
    let scheduled = applies_at_once(&org, usage, label, Some(&credentials), n);
    (scheduled, org)
}

/// A run from Security Tooling as CloudTrail's delegated administrator
/// (`accounts.security_tooling`'s own credentials, no `roles.management`):
/// one role there, with only `policies/iam-security-tooling-delegated-admin.json`
/// attached, makes every call. The layer enforces that policy on the role's
/// sessions as IAM evaluates it, resources and conditions included
/// (`trailkey_testkit::rules::iam_identity_policies`): the organization
/// trail by its ARN in the management account (CloudTrail's delegation
/// then authorizes the cross-account call, as the layer's delegated
/// administrator rule emulates), the account's keys and the alias, the
/// trail bucket. The scenarios: refused while Security Tooling is not
/// CloudTrail's delegated administrator, then, registered, plan from
/// scratch, the first apply, a no-op plan, apply and `policy`, repair of
/// eight kinds of drift, a foreign key-policy statement for an outside
/// account (`ListAccounts`), `roles.log_archive`, `trailkey lambda`, an
/// alias rename (with both aliases' ARNs in the policy, as
/// `docs/control-tower.md` says to do while renaming), `destroy` (and
/// `--delete-key`, refused in this mode), a re-apply, and concurrent
/// applies from scratch, whose losers schedule deletion of their own keys.
///
/// Checked: the policy allowed every request (the layer denied none), every
/// action used is granted by it and every action it grants is used; the Log
/// Archive role's reads are those of `policies/iam-log-archive-role.json`;
/// nothing was signed with the management account's credentials (the
/// harness's default ones, or a role of that account), and the only role
/// assumed is the Log Archive one, never one in Security Tooling.
#[test]
fn the_delegated_administrator_policy_grants_exactly_what_a_run_from_security_tooling_calls() {
    let mut usage = Usage::default();
    let org = Org::new();
    let config = org.seed.config.clone();
    let st = org.delegated_role_with_its_policy("cloudtrail-org-key");

    org.record(&mut usage, "delegated: not registered", false, || {
        for args in [
            &["plan", "--detailed-exitcode"][..],
            &["apply", "--auto-approve"][..],
        ] {
            let out = org.run_as(&st, &config, args, 1);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("not CloudTrail's delegated administrator"),
                "{err}"
            );
        }
    });
    org.assert_no_identity_denial("not registered");
    org.moto
        .world
        .delegated_administrator(CLOUDTRAIL, &org.seed.security_tooling);

    org.record(&mut usage, "delegated: plan from scratch", false, || {
        org.run_as(&st, &config, &["plan", "--detailed-exitcode"], 2);
        org.run_as(&st, &config, &["plan", "--format", "json"], 0);
    });
    org.record(&mut usage, "delegated: first apply", false, || {
        org.run_as(&st, &config, &["apply", "--auto-approve"], 0);
    });
    org.record(
        &mut usage,
        "delegated: no-op plan, apply and policy",
        false,
        || {
            org.run_as(&st, &config, &["plan", "--detailed-exitcode"], 0);
            org.run_as(&st, &config, &["apply", "--auto-approve"], 0);
            org.run_as(&st, &config, &["policy"], 0);
        },
    );
    for kind in [
        "key-disable",
        "key-pending-deletion",
        "rotation-off",
        "alias-delete",
        "alias-repoint",
        "policy-default",
        "tags-remove",
        "trail-unencrypt",
    ] {
        org.drift(kind);
        org.record(
            &mut usage,
            &format!("delegated: drift {kind}"),
            false,
            || {
                org.run_as(&st, &config, &["plan", "--detailed-exitcode"], 2);
                org.run_as(&st, &config, &["apply", "--auto-approve"], 0);
                org.run_as(&st, &config, &["plan", "--detailed-exitcode"], 0);
            },
        );
        // As between two scheduled runs: CloudTrail sees the key's policy.
        std::thread::sleep(trailkey_testkit::LAYER_WINDOW);
    }
    org.assert_no_identity_denial("drift");

    // A statement trailkey does not own lets an account it does not know
    // decrypt: the plan asks Organizations whether it is in the
    // organization, and keeps it with a warning.
    org.open_key_to_an_outside_account(Some(&org.seed.security_tooling));
    org.record(
        &mut usage,
        "delegated: a foreign statement for an outside account",
        false,
        || {
            org.run_as(&st, &config, &["plan", "--detailed-exitcode"], 0);
            org.run_as(&st, &config, &["apply", "--auto-approve"], 0);
        },
    );

    let logging = org.config("delegated-logging.toml", |text| {
        text.replace("[trail]\n", "[trail]\nlogging = true\n")
    });
    org.drift("trail-stop-logging");
    org.record(&mut usage, "delegated: trail.logging", false, || {
        org.run_as(&st, &logging, &["plan", "--detailed-exitcode"], 2);
        org.run_as(&st, &logging, &["apply", "--auto-approve"], 0);
        org.run_as(&st, &logging, &["plan", "--detailed-exitcode"], 0);
    });
    org.assert_no_identity_denial("trail.logging");
    org.drift("selectors-exclude-kms");
    org.record(
        &mut usage,
        "delegated: custom event selectors",
        false,
        || {
            org.run_as(&st, &config, &["plan", "--detailed-exitcode"], 0);
        },
    );
    org.assert_no_identity_denial("custom event selectors");

    let with_log_archive = org.config("delegated-log-archive-role.toml", |text| {
        format!("{text}\n[roles]\nlog_archive = \"{LOG_ARCHIVE_ROLE}\"\n")
    });
    org.drift("trail-unencrypt");
    org.record(&mut usage, "delegated: roles.log_archive", false, || {
        org.run_as(&st, &with_log_archive, &["plan", "--detailed-exitcode"], 2);
        org.run_as(&st, &with_log_archive, &["apply", "--auto-approve"], 0);
        org.run_as(&st, &with_log_archive, &["plan", "--detailed-exitcode"], 0);
    });

    // `trailkey lambda` with the role's credentials, AWS_ACCOUNT_ID set to
    // Security Tooling as the Lambda template sets it: a call on another
    // key before its first plan, then the schedule after a drift.
    let create =
        serde_json::json!([{"op": "kms:CreateKey", "params": {"Description": "another team's"}}]);
    let other =
        org.moto.calls_as(&org.seed.security_tooling, None, &create)[0]["response"]["KeyMetadata"]
            ["KeyId"]
            .as_str()
            .unwrap()
            .to_owned();
    org.drift("trail-unencrypt");
    org.record(&mut usage, "delegated: trailkey lambda", false, || {
        let api = RuntimeApi::start();
        let mut function = Run::new(&org.moto)
            .config(&config)
            .credentials(&st)
            .env("AWS_ACCOUNT_ID", &org.seed.security_tooling)
            .arg("lambda")
            .env("TRAILKEY_MODE", "apply")
            .envs(api.lambda_env())
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start trailkey lambda");
        let wait = std::time::Duration::from_secs(60);
        let id = api.invoke(kms_event(&org.seed, "DisableKey", &other));
        let ignored = api.wait_result(&id, wait).response().clone();
        let schedule = serde_json::json!({"version": "0", "id": "schedule-1",
            "detail-type": "Scheduled Event", "source": "aws.events", "region": "us-east-1",
            "resources": [], "detail": {}});
        let id = api.invoke(schedule);
        let applied = api.wait_result(&id, wait).response().clone();
        let _ = function.kill();
        let _ = function.wait();
        assert_eq!(ignored["handled"], false, "{ignored:#}");
        assert_eq!(applied["applied"], true, "{applied:#}");
    });
    org.assert_no_identity_denial("trailkey lambda");

    // Renaming the alias: the policy names both aliases meanwhile.
    org.moto.world.attach_identity_policy(
        &org.delegated_role,
        org.delegated_policy("cloudtrail-org-key-renamed"),
    );
    let renamed = org.config("delegated-renamed.toml", |text| {
        text.replace(
            "ct_key_alias = \"cloudtrail-org-key\"",
            "ct_key_alias = \"cloudtrail-org-key-renamed\"",
        )
    });
    org.record(
        &mut usage,
        "delegated: alias renamed in the config",
        false,
        || {
            org.run_as(&st, &renamed, &["plan", "--detailed-exitcode"], 2);
            org.run_as(&st, &renamed, &["apply", "--auto-approve"], 0);
            org.run_as(&st, &renamed, &["plan", "--detailed-exitcode"], 0);
        },
    );
    // The rename done, the policy names the new alias only.
    org.moto.world.detach_identity_policies(&org.delegated_role);
    org.moto.world.attach_identity_policy(
        &org.delegated_role,
        org.delegated_policy("cloudtrail-org-key-renamed"),
    );
    org.record(&mut usage, "delegated: destroy", false, || {
        org.run_as(
            &st,
            &renamed,
            &["destroy", "--dry-run", "--detailed-exitcode"],
            2,
        );
        let refused = org.run_as(
            &st,
            &renamed,
            &["destroy", "--auto-approve", "--delete-key"],
            1,
        );
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(
            err.contains("--delete-key cannot run from Security Tooling"),
            "{err}"
        );
        org.run_as(&st, &renamed, &["destroy", "--auto-approve"], 0);
    });
    org.record(
        &mut usage,
        "delegated: re-apply after destroy",
        false,
        || {
            org.run_as(&st, &renamed, &["apply", "--auto-approve"], 0);
            org.run_as(&st, &renamed, &["plan", "--detailed-exitcode"], 0);
        },
    );
    org.assert_no_identity_denial("rename, destroy and re-apply");
    // Nothing was signed as the management account: not by the harness's
    // default credentials, not by a role of that account.
    let by_management = org
        .moto
        .requests_signed_in(org.moto.layer(), &org.seed.management);
    assert!(by_management.is_empty(), "{by_management:?}");

    // A run that loses the race to create the alias schedules deletion of
    // the key it created.
    let mut losers = 0;
    for _ in 0..3 {
        let (scheduled, race) = concurrent_delegated_applies(&mut usage, 4);
        race.assert_no_identity_denial("concurrent applies");
        let by_management = race
            .moto
            .requests_signed_in(race.moto.layer(), &race.seed.management);
        assert!(by_management.is_empty(), "{by_management:?}");
        losers = scheduled;
        if losers > 0 {
            break;
        }
    }
    assert!(
        losers > 0,
        "no concurrent apply from Security Tooling lost the alias race in 3 tries"
    );

    // The layer did enforce the policy: filled in for another trail's name,
    // it lets the role read nothing of the organization trail, and the run
    // stops on IAM's AccessDenied for the trail's ARN.
    org.moto.world.detach_identity_policies(&org.delegated_role);
    let mut other_trail = org.delegated_policy("cloudtrail-org-key-renamed");
    let text = other_trail.to_string().replace(
        &org.seed.trail_arn,
        &format!("{}-other", org.seed.trail_arn),
    );
    other_trail = serde_json::from_str(&text).unwrap();
    org.moto
        .world
        .attach_identity_policy(&org.delegated_role, other_trail);
    let denied = org.run_as(&st, &renamed, &["plan"], 1);
    let trail_arn = org.seed.trail_arn.as_str();
    let denials = org.moto.world.identity_denials();
    assert!(
        !denials.is_empty()
            && denials
                .iter()
                .all(|d| d.action.starts_with("cloudtrail:") && d.resource == trail_arn),
        "{denials:#?}\n{}",
        transcript(&denied)
    );
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("AccessDenied"),
        "{}",
        transcript(&denied)
    );

    // Every call was the Security Tooling role's or the Log Archive role's:
    // nothing with the default (management account) credentials, no role
    // of the management account or in Security Tooling assumed.
    for side in [Side::Runner, Side::Management, Side::SecurityTooling] {
        assert!(
            usage.of(side).is_empty(),
            "{side:?} signed {:?}",
            usage.of(side)
        );
    }
    assert!(
        !usage.assumed.contains_key(&Side::LogArchive),
        "{:?}",
        usage.assumed
    );
    assert_eq!(
        usage.assumed.get(&Side::DelegatedAdministrator),
        Some(&BTreeSet::from([org.log_archive_role.clone()])),
        "the only role assumed is the Log Archive one"
    );
    let assume_resources: Vec<String> = allows(DELEGATED_POLICY)
        .into_iter()
        .filter(|(_, actions, _)| actions.iter().any(|a| a == "sts:AssumeRole"))
        .flat_map(|(_, _, resources)| resources)
        .collect();
    assert_eq!(
        assume_resources,
        ["arn:${Partition}:iam::${LogArchiveAccountId}:role/${LogArchiveRoleName}"]
    );

    no_wildcards_or_duplicates(DELEGATED_POLICY);
    let delegated = usage.of(Side::DelegatedAdministrator);
    let log_archive = usage.of(Side::LogArchive);
    eprintln!(
        "delegated administrator ({DELEGATED_POLICY}), {} actions used:\n{}",
        delegated.len(),
        show(&delegated)
    );
    let granted = check_side(
        Side::DelegatedAdministrator,
        DELEGATED_POLICY,
        &delegated,
        &[],
        &[],
    );
    eprintln!(
        "{DELEGATED_POLICY} grants {} actions: {}",
        granted.len(),
        granted.join(", ")
    );
    eprintln!(
        "Log Archive role from Security Tooling ({LOG_ARCHIVE_POLICY}), {} actions used:\n{}",
        log_archive.len(),
        show(&log_archive)
    );
    check_side(Side::LogArchive, LOG_ARCHIVE_POLICY, &log_archive, &[], &[]);
}

/// From Security Tooling as CloudTrail's delegated administrator, the key
/// is in Security Tooling, and the role manages it as the Security Tooling
/// role's policy does: the same KMS statements (Sids, actions, resources,
/// conditions, the lockout `Deny`), but for `kms:ListGrants`, which only
/// `destroy --delete-key` reads, and that is refused in this mode. Its
/// other statements name the organization trail by its ARN in the
/// management account, the trail bucket and the Log Archive role; nothing
/// of what only the management account or `destroy --delete-key` calls
/// (`account:ListRegions`, CloudTrail Lake, Control Tower), and none of the
/// statements for what CloudTrail checks of a management-account caller.
#[test]
fn the_delegated_administrator_policy_manages_keys_as_the_security_tooling_policy_does() {
    let delegated = statements(DELEGATED_POLICY);
    let mut kms_sids = BTreeSet::new();
    for s in statements(SECURITY_TOOLING_POLICY) {
        let mut expected = s.clone();
        let actions: Vec<String> = strings(&s["Action"])
            .into_iter()
            .filter(|a| a != "kms:ListGrants")
            .collect();
        expected["Action"] = serde_json::json!(actions);
        let sid = s["Sid"].as_str().unwrap().to_owned();
        let found = delegated
            .iter()
            .find(|d| d["Sid"] == sid.as_str())
            .unwrap_or_else(|| panic!("{DELEGATED_POLICY}: no statement {sid}"));
        assert_eq!(found, &expected, "{sid}");
        kms_sids.insert(sid);
    }
    let trail = "arn:${Partition}:cloudtrail:${Region}:${ManagementAccountId}:trail/${TrailName}";
    for (sid, actions, resources) in allows(DELEGATED_POLICY) {
        assert!(not_observable_prefix(&sid).is_none(), "{sid}");
        for a in &actions {
            assert!(
                !(a.starts_with("account:")
                    || a.starts_with("controltower:")
                    || a.contains("EventDataStore")
                    || a == "kms:ListGrants"),
                "{sid}: {a}"
            );
        }
        if kms_sids.contains(&sid) {
            continue;
        }
        let trail_actions = actions
            .iter()
            .any(|a| a.starts_with("cloudtrail:") && a != "cloudtrail:DescribeTrails");
        if trail_actions {
            assert_eq!(resources, [trail], "{sid}: the organization trail only");
        }
        if actions.iter().any(|a| a == "sts:AssumeRole") {
            assert_eq!(
                resources,
                ["arn:${Partition}:iam::${LogArchiveAccountId}:role/${LogArchiveRoleName}"],
                "{sid}"
            );
        }
        if actions.iter().any(|a| a.starts_with("s3:")) {
            assert_eq!(resources, ["arn:${Partition}:s3:::${TrailBucket}"], "{sid}");
        }
    }
}

/// parliament finds in the delegated administrator's policy what it finds
/// in the two policies it brings together, and nothing else:
/// `sts:AssumeRole` (of the Log Archive role) returns credentials, and
/// `CreateKey`/`PutKeyPolicy` manage a resource policy.
#[test]
fn the_delegated_administrator_policy_passes_the_parliament_linter() {
    let owned = |issue: &str, actions: &[&str]| {
        (
            issue.to_owned(),
            actions.iter().map(ToString::to_string).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        parliament(DELEGATED_POLICY),
        BTreeSet::from([
            owned("CREDENTIALS_EXPOSURE", &["sts:assumerole"]),
            owned(
                "PERMISSIONS_MANAGEMENT_ACTIONS",
                &["kms:createkey", "kms:putkeypolicy"]
            ),
        ])
    );
}
