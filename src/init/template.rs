//! The config file `trailkey init` writes, every setting commented, and the
//! summary it prints.

use std::fmt::Write as _;
use std::path::Path;

use super::{AccountKind, Candidate, Discovery, Found, NameMatch, TrailInfo};
use crate::aws::{Account, Trail};
use crate::config::{DEFAULT_ALIAS, DEFAULT_CONFIG, DEFAULT_REGION, DEFAULT_SECURITY_TOOLING_ROLE};
use crate::plan::CONTROL_TOWER_TRAIL;

/// The role AWS Organizations creates in the accounts it creates.
const ORGANIZATIONS_ROLE: &str = "OrganizationAccountAccessRole";

/// A TOML basic string (`"..."`), also used for names in comments.
fn quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(o, "\\u{:04X}", u32::from(c));
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Text from AWS made safe for a one-line comment: each character the
/// renderers escape (`crate::escape`) becomes a space, which reads better in
/// a quoted account name than an escape whose backslash `quote` doubles.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if crate::escape::is_escaped(c) { ' ' } else { c })
        .collect()
}

/// Width of the comment paragraphs.
pub(super) const WIDTH: usize = 80;

/// Writes `text` as `# ` comment lines of at most [`WIDTH`] columns (a
/// longer word keeps its own line).
fn para(o: &mut String, text: &str) {
    // Words, a `quoted command` kept as one.
    let mut words: Vec<String> = Vec::new();
    for w in text.split_whitespace() {
        match words.last_mut() {
            Some(last) if last.matches('`').count() % 2 == 1 => {
                last.push(' ');
                last.push_str(w);
            }
            _ => words.push(w.to_owned()),
        }
    }
    let mut line = String::from("#");
    for word in &words {
        if line.len() > 1 && line.len() + 1 + word.len() > WIDTH {
            let _ = writeln!(o, "{line}");
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    let _ = writeln!(o, "{line}");
}

fn describe_account(a: &Account) -> String {
    format!("{} <{}>", quote(&clean(&a.name)), clean(&a.email))
}

fn describe_trail(t: &Trail) -> String {
    let encryption = match &t.kms_key_id {
        Some(k) => format!("encrypted with {}", clean(k)),
        None => "not encrypted with KMS".to_owned(),
    };
    format!(
        "bucket {}, {}, {encryption}",
        clean(&t.s3_bucket),
        if t.is_multi_region_trail {
            "multi-Region"
        } else {
            "single-Region"
        }
    )
}

/// The config text, every setting commented like config/trailkey.example.toml.
/// A blank line separates the sections.
pub fn render(d: &Discovery) -> String {
    let mut o = String::new();
    render_header(&mut o, d);
    o.push('\n');
    render_region_and_alias(&mut o, d);
    o.push('\n');
    render_accounts(&mut o, d);
    o.push('\n');
    render_roles(&mut o, d);
    o.push('\n');
    render_trail(&mut o, d);
    o.push('\n');
    if render_control_tower(&mut o, d) {
        o.push('\n');
    }
    render_key(&mut o, d.region.partition());
    o
}

/// What the file is for, where it comes from, and the fields left to decide.
fn render_header(o: &mut String, d: &Discovery) {
    let management = &d.organization.management_account;
    para(
        o,
        "trailkey configuration: encrypt the organization CloudTrail trail with a customer-managed KMS key owned by the Security Tooling account.",
    );
    para(
        o,
        &format!(
            "Written by `trailkey init` from organization {} (management account {management}). Check it offline with `trailkey validate`, then run `trailkey plan`.",
            d.organization.id
        ),
    );
    if d.delegated.is_some() {
        para(
            o,
            "Written from the Security Tooling account, CloudTrail's delegated administrator: run trailkey there, with credentials of that account; it needs none of the management account's (docs/delegated-administrator.md).",
        );
    }
    let open = open_fields(d);
    if !open.is_empty() {
        o.push_str("#\n");
        para(
            o,
            &format!(
                "TO DO: init could not decide {}. For each, uncomment one of the candidate lines below (or write the right value), then run `trailkey validate`.",
                open.join(" and ")
            ),
        );
    }
}

fn render_region_and_alias(o: &mut String, d: &Discovery) {
    let _ = writeln!(
        o,
        "# The trail's home Region: the key is created here. Default \"{DEFAULT_REGION}\".
region = {}

# Alias of the key (an \"alias/\" prefix is accepted). Must not start with \"aws/\".
# Default \"{DEFAULT_ALIAS}\".
ct_key_alias = {}",
        quote(d.region.as_str()),
        quote(DEFAULT_ALIAS)
    );
}

fn render_accounts(o: &mut String, d: &Discovery) {
    o.push_str("[accounts]\n");
    render_account(o, AccountKind::SecurityTooling, &d.security_tooling, d);
    render_account(o, AccountKind::LogArchive, &d.log_archive, d);
    let _ = writeln!(
        o,
        "# Management account, read from organizations:DescribeOrganization. trailkey
# stops if the organization's management account is ever another one.
management = {}",
        quote(&d.organization.management_account)
    );
}

/// The `[roles]` section: the default Security Tooling role, and whether
/// the landing zone looks like Control Tower's, which it depends on.
fn render_roles(o: &mut String, d: &Discovery) {
    let partition = d.region.partition();
    let management = &d.organization.management_account;
    if let Some(delegated) = &d.delegated {
        o.push_str("[roles]\n");
        para(
            o,
            &format!(
                "Run from Security Tooling as CloudTrail's delegated administrator: trailkey assumes no role and uses the credentials it runs with ({}). roles.management is for runs from the management account only.",
                clean(&delegated.caller)
            ),
        );
        match &delegated.role {
            Some(role) => {
                para(
                    o,
                    "The role those credentials are a session of: key.protect exempts the role named here, so uncomment it with protect = true.",
                );
                let _ = writeln!(o, "# security_tooling = {}", quote(&clean(role)));
            }
            None => para(
                o,
                "Those credentials are no role's session: key.protect needs trailkey to run as a role it can exempt (security_tooling = \"<role name>\").",
            ),
        }
        return;
    }
    let _ = writeln!(
        o,
        "[roles]
# Role assumed in the Security Tooling account: a role name or a full role ARN.
# Default \"{DEFAULT_SECURITY_TOOLING_ROLE}\" (Control Tower landing zones); accounts
# created by AWS Organizations have \"{ORGANIZATIONS_ROLE}\" instead."
    );
    match &d.control_tower {
        Some(why) => para(
            o,
            &format!(
                "This looks like a Control Tower landing zone ({}): keep the default.",
                clean(why)
            ),
        ),
        None => para(
            o,
            &format!(
                "init saw no sign of Control Tower (no account named \"Audit\", no trail {CONTROL_TOWER_TRAIL}): if the accounts were not enrolled in Control Tower, use the second line."
            ),
        ),
    }
    let _ = writeln!(
        o,
        "# security_tooling = \"{DEFAULT_SECURITY_TOOLING_ROLE}\"
# security_tooling = \"{ORGANIZATIONS_ROLE}\"
# Optional role (full ARN) in the management account for the CloudTrail,
# Organizations and STS calls. Default: the caller's own credentials.
# management = \"arn:{partition}:iam::{management}:role/TrailkeyRunner\""
    );
}

fn render_key(o: &mut String, partition: &str) {
    let _ = write!(
        o,
        "[key]
# Enable automatic key rotation. Default true; false leaves rotation as it is.
# rotation = true
# Days between automatic rotations, 90 to 2560 (with rotation on). Unset:
# the period is left as it is (365 days for a key trailkey turns rotation on
# for); set: a different period is drift, and apply sets it.
# rotation_period_days = 365
# Extra tags for the key. Every key trailkey creates also carries
# ManagedBy = \"trailkey\" and trailkey:alias = \"<alias name>\".
# tags = {{ CostCenter = \"security\" }}
# Deny disabling, deleting and un-rotating the key to all but trailkey's
# role and the admins (Security Tooling roles or users). Default false.
# protect = true
# admins = [\"arn:{partition}:iam::<security tooling>:role/BreakGlass\"]

# Who else may decrypt the log files, besides Log Archive and management.
# [readers]
# accounts   = [\"444455556666\"]
# principals = [\"arn:{partition}:iam::444455556666:role/SIEM\"]
"
    );
}

fn render_account(o: &mut String, kind: AccountKind, found: &Found<Candidate>, d: &Discovery) {
    if let (AccountKind::SecurityTooling, Some(_), Found::One(c)) = (kind, &d.delegated, found) {
        o.push_str(
            "# Security Tooling (Control Tower: \"Audit\") account: owns the key. Required.\n",
        );
        para(
            o,
            &format!(
                "The account these credentials are in, CloudTrail's delegated administrator: {}.",
                describe_account(&c.account)
            ),
        );
        let _ = writeln!(o, "{} = {}", kind.field(), quote(&c.account.id));
        return;
    }
    let (title, owns) = match kind {
        AccountKind::SecurityTooling => (
            "Security Tooling (Control Tower: \"Audit\") account: owns the key. Required.",
            "should own the key",
        ),
        AccountKind::LogArchive => (
            "Log Archive account: owns the log bucket; may decrypt the logs. Required.",
            "owns the log bucket",
        ),
    };
    let _ = writeln!(o, "# {title}");
    render_found_account(o, kind, found, owns);
    render_inactive(o, kind, d);
}

/// The account field as init found it: written, or commented out with
/// the candidates to choose from.
fn render_found_account(o: &mut String, kind: AccountKind, found: &Found<Candidate>, owns: &str) {
    let field = kind.field();
    match found {
        Found::One(c) => {
            para(
                o,
                &format!("Found by its name: {}.", describe_account(&c.account)),
            );
            let _ = writeln!(o, "{field} = {}", quote(&c.account.id));
        }
        Found::Several(list) => {
            para(
                o,
                &format!(
                    "init found {} ACTIVE accounts named like it ({}) and chose none. Uncomment the one that {owns}:",
                    list.len(),
                    kind.examples()
                ),
            );
            for c in list {
                let _ = writeln!(o, "{}", candidate_line(kind, c));
            }
        }
        Found::None { candidates, .. } if candidates.is_empty() => {
            para(
                o,
                &format!(
                    "init found no ACTIVE account named like it ({}), and the organization has no other ACTIVE account: create it first (Control Tower creates \"Audit\" and \"Log Archive\"), then write its ID here:",
                    kind.examples()
                ),
            );
            let _ = writeln!(o, "# {field} = \"<12-digit account ID>\"");
        }
        Found::None { candidates, more } => {
            para(
                o,
                &format!(
                    "init found no ACTIVE account named like it ({}). Candidates, the likeliest first; uncomment the one that {owns}:",
                    kind.examples()
                ),
            );
            for c in candidates {
                let _ = writeln!(o, "{}", candidate_line(kind, c));
            }
            if *more > 0 {
                let _ = writeln!(
                    o,
                    "# ... and {more} more: `aws organizations list-accounts`"
                );
            }
        }
    }
}

/// The accounts of `kind`'s name that init did not consider, and why.
fn render_inactive(o: &mut String, kind: AccountKind, d: &Discovery) {
    for (k, a) in &d.inactive {
        if *k == kind {
            para(
                o,
                &format!(
                    "Not considered: {} {} is {}.",
                    a.id,
                    describe_account(a),
                    clean(a.state.as_str())
                ),
            );
        }
    }
}

/// `# field = "ID"  # "Name" <email>`, and why it is a candidate.
fn candidate_line(kind: AccountKind, c: &Candidate) -> String {
    let mut line = format!(
        "# {} = {}  # {}",
        kind.field(),
        quote(&c.account.id),
        describe_account(&c.account)
    );
    if c.name_match == Some(NameMatch::Similar) {
        line.push_str(", similar name");
    }
    if let Some(bucket) = &c.bucket {
        let _ = write!(
            line,
            ", the trail's bucket {} carries this ID",
            clean(bucket)
        );
    }
    line
}

fn render_trail(o: &mut String, d: &Discovery) {
    o.push_str("[trail]\n# Name or ARN of the organization trail. Required.\n");
    render_found_trail(o, d);
    let validation = match &d.trail {
        Found::One(t) if t.trail.log_file_validation => "on",
        Found::One(_) => "off",
        _ => "as the trail has it",
    };
    let _ = writeln!(
        o,
        "# Log-file validation (now {validation}): true turns it on and keeps it on;\n# false leaves it as it is.\n# log_file_validation = true"
    );
    o.push_str(
        "# Logging: true starts the trail when it is stopped and keeps it logging; false\n# leaves it as it is. Not set: left as it is, with a warning when it is stopped.\n# logging = true\n",
    );
    render_other_trails(o, d);
}

/// A trail as init describes it, with why its tags are unknown.
fn trail_info(t: &TrailInfo) -> String {
    let mut s = describe_trail(&t.trail);
    if let Some(code) = &t.tags_error {
        let _ = write!(s, "; its tags could not be read ({})", clean(code));
    }
    s
}

/// `trail.name` as init found it: written, or commented out with the
/// trails to choose from.
fn render_found_trail(o: &mut String, d: &Discovery) {
    let region = &d.region;
    let info = trail_info;
    match &d.trail {
        Found::One(t) => {
            para(
                o,
                &format!(
                    "Found: the only organization trail homed in {region} ({}).",
                    info(t)
                ),
            );
            control_tower_comment(o, t, d);
            let _ = writeln!(o, "name = {}", quote(&t.trail.name));
            if t.control_tower.is_some() {
                let _ = writeln!(o, "# allow_control_tower = true");
            }
        }
        Found::Several(list) => {
            para(
                o,
                &format!(
                    "init found {} organization trails homed in {region} and chose none. Uncomment the one whose logs the key should encrypt:",
                    list.len()
                ),
            );
            for t in list {
                let _ = writeln!(o, "# name = {}  # {}", quote(&t.trail.name), info(t));
            }
            for t in list {
                control_tower_comment(o, t, d);
            }
        }
        Found::None { .. } => {
            para(
                o,
                &format!(
                    "init found no organization trail homed in {region}. Create one (CloudTrail console, or `aws cloudtrail create-trail --is-organization-trail`), or run `trailkey init --region <home Region>` if it lives in another Region; then:"
                ),
            );
            let _ = writeln!(o, "# name = \"<organization trail name>\"");
        }
    }
}

/// The organization trails homed in other Regions, and the trails that are
/// not organization trails.
fn render_other_trails(o: &mut String, d: &Discovery) {
    let region = &d.region;
    if !d.elsewhere.is_empty() {
        let _ = writeln!(o, "# Organization trails homed in other Regions:");
        for t in &d.elsewhere {
            let r = clean(&t.home_region);
            let _ = writeln!(
                o,
                "#   {} in {r} (run `trailkey init --region {r}` for it)",
                quote(&t.name)
            );
        }
    }
    if !d.other_trails.is_empty() {
        para(
            o,
            &format!(
                "Trails in {region} that are not organization trails (trailkey encrypts one only with organization_trail = false under [trail]):"
            ),
        );
        for t in &d.other_trails {
            let _ = writeln!(o, "#   {}: {}", quote(&t.name), describe_trail(t));
        }
    }
}

fn control_tower_comment(o: &mut String, t: &TrailInfo, d: &Discovery) {
    if let Some(why) = &t.control_tower {
        let below = if d.landing_zone.is_some() {
            " (commented below)"
        } else {
            ""
        };
        para(
            o,
            &format!(
                "{} is managed by AWS Control Tower ({}): Control Tower reverts changes made to it outside Control Tower. Prefer [control_tower] landing_zone = true{below}: trailkey then sets the landing zone's KMS key, and Control Tower applies it to its trail. Otherwise `trailkey plan` refuses this trail unless allow_control_tower = true.",
                clean(&t.trail.name),
                clean(why)
            ),
        );
    }
}

/// `[control_tower]`, commented, when init found a landing zone beside
/// Control Tower's trail: the other way to encrypt that trail. Returns
/// whether it wrote the section.
fn render_control_tower(o: &mut String, d: &Discovery) -> bool {
    let Some(arn) = &d.landing_zone else {
        return false;
    };
    para(o, &format!("Control Tower's landing zone: {}", clean(arn)));
    match &d.trail {
        Found::One(t) if t.trail.name == CONTROL_TOWER_TRAIL => {}
        Found::One(_) => para(
            o,
            &format!(
                "With landing_zone = true the trail is {CONTROL_TOWER_TRAIL}: comment out name under [trail]."
            ),
        ),
        _ => para(
            o,
            &format!(
                "With landing_zone = true the trail is {CONTROL_TOWER_TRAIL}, and name under [trail] may stay commented."
            ),
        ),
    }
    para(
        o,
        "Choose this over an organization trail of your own to keep one trail, Control Tower's, with a key trailkey makes in the management account (docs/control-tower.md):",
    );
    o.push_str("# [control_tower]\n# landing_zone = true\n");
    true
}

/// The fields init left for the user, as config paths.
pub(super) fn open_fields(d: &Discovery) -> Vec<&'static str> {
    let mut open = Vec::new();
    if d.security_tooling.one().is_none() {
        open.push("accounts.security_tooling");
    }
    if d.log_archive.one().is_none() {
        open.push("accounts.log_archive");
    }
    if d.trail.one().is_none() {
        open.push("trail.name");
    }
    open
}

/// Why an account field is open, in a few words.
fn account_reason(found: &Found<Candidate>) -> String {
    match found {
        Found::One(_) => String::new(),
        Found::Several(list) => format!(
            "{} ACTIVE accounts are named like it; none was chosen",
            list.len()
        ),
        Found::None { candidates, .. } if candidates.is_empty() => {
            "no ACTIVE account is named like it, and there is no other".to_owned()
        }
        Found::None { candidates, more } => format!(
            "no ACTIVE account is named like it; {} listed in the file",
            plural(candidates.len() + more, "candidate")
        ),
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// ` -c PATH`, unless `path` is the default.
pub(super) fn config_arg(path: &Path) -> String {
    if path == Path::new(DEFAULT_CONFIG) {
        String::new()
    } else {
        format!(" -c {}", path.display())
    }
}

/// The trail line of init's summary.
fn trail_summary(d: &Discovery) -> String {
    match &d.trail {
        Found::One(t) => format!(
            "{}  organization trail, {}",
            clean(&t.trail.name),
            describe_trail(&t.trail)
        ),
        Found::Several(list) => format!(
            "not decided: {} organization trails are homed in {}; none was chosen",
            list.len(),
            d.region
        ),
        Found::None { .. } => format!(
            "not decided: no organization trail is homed in {}",
            d.region
        ),
    }
}

/// What init found and wrote, and what to do next (stdout).
pub(super) fn summary(d: &Discovery, path: &Path, valid: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Organization {}: management account {}, Region {}",
        d.organization.id, d.organization.management_account, d.region
    );
    for (kind, found) in [
        (AccountKind::SecurityTooling, &d.security_tooling),
        (AccountKind::LogArchive, &d.log_archive),
    ] {
        let value = match found {
            Found::One(c) => format!("{}  {}", c.account.id, describe_account(&c.account)),
            other => format!("not decided: {}", account_reason(other)),
        };
        let _ = writeln!(o, "  {:<17} {value}", kind.field());
    }
    let trail = trail_summary(d);
    let _ = writeln!(o, "  {:<17} {trail}", "trail");
    let role = match (&d.delegated, &d.control_tower) {
        (Some(delegated), _) => format!(
            "none assumed: run as CloudTrail's delegated administrator ({})",
            clean(&delegated.caller)
        ),
        (None, Some(_)) => {
            format!("{DEFAULT_SECURITY_TOOLING_ROLE} (default; a Control Tower landing zone)")
        }
        (None, None) => format!(
            "{DEFAULT_SECURITY_TOOLING_ROLE} (default; no sign of Control Tower: see [roles])"
        ),
    };
    let _ = writeln!(o, "  {:<17} {role}", "role");
    if let Some(arn) = &d.landing_zone {
        let _ = writeln!(
            o,
            "  {:<17} {}: [control_tower] landing_zone = true is commented in the file",
            "landing_zone",
            clean(arn)
        );
    }

    let c = config_arg(path);
    let file = path.display();
    if valid {
        let _ = writeln!(
            o,
            "\nWrote {file}. Next:\n  trailkey{c} validate   check it offline\n  trailkey{c} plan       see what apply would change (read-only)\n  trailkey{c} apply"
        );
    } else {
        let open = open_fields(d);
        let _ = writeln!(
            o,
            "\nWrote {file}, with {} to fill in. Next:\n  edit {file}: uncomment one candidate line for {}\n  trailkey{c} validate\n  trailkey{c} plan",
            plural(open.len(), "field"),
            open.join(", ")
        );
    }
    o
}
