//! Saved plans, as Terraform's `plan -out=FILE`, `apply FILE` and `show
//! FILE`: `trailkey plan --out FILE` writes the plan with what it rests on,
//! `trailkey apply FILE` applies exactly that plan without a prompt (the
//! saved plan is the approval), and `trailkey show FILE` prints it.
//!
//! The file holds no steps to replay. It holds the facts the plan was made
//! from (what observe read and what planning asked for, as [`Observed`]
//! serializes them, without what changes on its own and no plan reads:
//! [`NOT_FACTS`]), a digest of the desired state the config resolved to,
//! and the plan as `plan --format json` shows it, with the AWS operation of
//! each step. `apply FILE` observes again and plans again with the pure
//! planner, and applies only when the facts read now are the saved ones and
//! the plan made now is the saved one; otherwise it refuses before any write
//! and names what changed ([`Saved::check`]).
//!
//! The plan digest, a SHA-256 over the file's content without the digest
//! itself (so not the `sha256sum` of the file), detects alteration and
//! truncation, and names the plan that was approved (`apply FILE
//! --expect-sha256`). It does not stop a forger who recomputes it; but because
//! apply plans again from AWS and requires the same plan, a forged file can
//! never make trailkey do anything that `trailkey apply` with the same config
//! would not do.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::config::Desired;
use crate::error::Error;
use crate::escape::{escape, escape_path, truncated};
use crate::plan::{Observed, Plan};
use crate::render::PlanJson;
use crate::version::VERSION;

/// The format of the file, its `trailkey_plan` field.
pub const FORMAT: u64 = 1;
/// The largest saved plan trailkey reads: far above what a plan holds (two
/// key policies of at most 32 KB, the organization's account IDs, the
/// trails), small enough to read at once.
pub const MAX_BYTES: u64 = 4 * 1024 * 1024;
/// The field that marks a trailkey saved plan and holds its format.
const MARKER: &str = "trailkey_plan";
/// The field with the plan digest: the digest of the rest.
const DIGEST: &str = "sha256";

/// What of [`Observed`] (JSON pointers into its serialized form) a saved
/// plan does not rest on, because it changes on its own and no plan reads
/// it:
/// - `/identity`, who runs: a role session's name changes with every
///   pipeline job, and the stage that applies may run as another role than
///   the one that planned. The plan's checks of the caller (the management
///   account, the partition, the role `key.protect` exempts) run again
///   against whoever applies, as in every run.
/// - `/trail_status/latest_delivery_time`: CloudTrail delivers every few
///   minutes. Only `--wait-for-delivery` reads it, after apply.
pub const NOT_FACTS: [&str; 2] = ["/identity", "/trail_status/latest_delivery_time"];

/// The content of a saved plan; the file adds its [`DIGEST`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Content {
    trailkey_plan: u64,
    /// The trailkey that made the plan ([`VERSION`]): another one may plan
    /// otherwise, so only the same one applies it.
    trailkey_version: String,
    config: ConfigDigest,
    /// [`facts`] of what the plan was made from.
    facts: Value,
    /// The plan, as `plan --format json` shows it.
    plan: Value,
    /// The AWS operation of each of the plan's steps, in order.
    steps: Vec<SavedStep>,
}

/// The config a plan was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigDigest {
    /// As given to `-c` (shown in messages only).
    path: String,
    /// [`config_digest`].
    sha256: String,
}

/// One AWS write of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedStep {
    pub address: String,
    pub operation: String,
}

/// The facts a plan rests on: `observed` serialized, without
/// [`NOT_FACTS`]. Serializing the whole of [`Observed`] keeps every fact
/// that observe reads now or later in, without a list to keep up to date.
pub fn facts(observed: &Observed) -> Value {
    let mut facts = serde_json::to_value(observed).expect("the observed state serializes");
    for pointer in NOT_FACTS {
        let (parent, field) = pointer.rsplit_once('/').expect("a JSON pointer");
        if let Some(Value::Object(parent)) = facts.pointer_mut(parent) {
            parent.shift_remove(field);
        }
    }
    facts
}

/// The digest of the desired state `desired` (the config after validation,
/// with its defaults; not its path): two configs that ask for the same
/// setup have the same digest, whatever their comments or layout.
pub fn config_digest(desired: &Desired) -> String {
    sha256(
        serde_json::to_string(desired)
            .expect("the desired state serializes")
            .as_bytes(),
    )
}

/// The hexadecimal SHA-256 of `bytes`.
fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The plan digest: the SHA-256 of a saved plan's content, over its compact
/// JSON, the fields in the order of the file, without the digest itself.
fn content_digest(content: &Map<String, Value>) -> String {
    sha256(
        serde_json::to_string(content)
            .expect("JSON serializes")
            .as_bytes(),
    )
}

/// The plan as `plan --format json` shows it.
fn plan_value(plan: &Plan) -> Value {
    serde_json::to_value(PlanJson::from(plan)).expect("a plan serializes")
}

fn steps(plan: &Plan) -> Vec<SavedStep> {
    plan.steps()
        .map(|(address, step)| SavedStep {
            address: address.as_str().to_owned(),
            operation: step.operation().to_owned(),
        })
        .collect()
}

/// The text of the saved plan of `plan`, made for `desired` from
/// `observed` (with what planning asked for read): pretty JSON, its digest
/// last.
pub fn file_text(desired: &Desired, plan: &Plan, observed: &Observed) -> String {
    let content = Content {
        trailkey_plan: FORMAT,
        trailkey_version: VERSION.to_owned(),
        config: ConfigDigest {
            path: desired.source.display().to_string(),
            sha256: config_digest(desired),
        },
        facts: facts(observed),
        plan: plan_value(plan),
        steps: steps(plan),
    };
    let Value::Object(mut file) = serde_json::to_value(&content).expect("a saved plan serializes")
    else {
        unreachable!("a struct serializes to an object")
    };
    let digest = content_digest(&file);
    file.insert(DIGEST.to_owned(), Value::String(digest));
    crate::render::json(&file)
}

/// A saved plan read from a file and checked: its format, its digest, the
/// trailkey that made it, and its shape.
#[derive(Debug, Clone)]
pub struct Saved {
    path: PathBuf,
    content: Content,
    plan: Plan,
    /// The plan digest, as the file holds it and as its content gives it.
    digest: String,
}

impl Saved {
    /// Reads and checks the saved plan at `path`, without any AWS call.
    pub fn read(path: &Path) -> Result<Saved, Error> {
        let bytes = read_bounded(path)?;
        Saved::parse(path, &bytes)
    }

    /// Checks the saved plan `bytes`, read from `path`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Saved, Error> {
        let file = escape_path(path);
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| not_a_plan(path, &format!("it is not JSON ({e})")))?;
        let Value::Object(mut content) = value else {
            return Err(not_a_plan(path, "it is not a JSON object"));
        };
        match content.get(MARKER) {
            None => return Err(not_a_plan(path, &format!("it has no {MARKER:?} field"))),
            Some(format) if format.as_u64() == Some(FORMAT) => {}
            Some(format) => {
                return Err(Error::usage(
                    format!(
                        "the saved plan {file} is in format {}, and this trailkey reads format {FORMAT} only",
                        short(format)
                    ),
                    "plan again with this trailkey (`trailkey plan --out FILE`), or apply the file with the trailkey that made it",
                ));
            }
        }
        let digest = match content.shift_remove(DIGEST) {
            Some(Value::String(digest)) => digest,
            _ => {
                return Err(altered(
                    path,
                    &format!("it has no plan digest (field {DIGEST:?})"),
                ));
            }
        };
        if digest != content_digest(&content) {
            return Err(altered(path, "its content does not match its plan digest"));
        }
        let made_by = content.get("trailkey_version").and_then(Value::as_str);
        if made_by != Some(VERSION) {
            return Err(Error::usage(
                format!(
                    "the saved plan {file} was made by trailkey {}, and this is trailkey {VERSION}: another version may plan otherwise",
                    made_by
                        .map_or_else(|| "of an unknown version".to_owned(), |v| truncated(v, 80))
                ),
                "apply it with the trailkey that made it, or plan again with this one (`trailkey plan --out FILE`)",
            ));
        }
        let content: Content = serde_json::from_value(Value::Object(content))
            .map_err(|e| unreadable(path, &e.to_string()))?;
        if !content.facts.is_object() {
            return Err(unreadable(path, "its facts are not a JSON object"));
        }
        let plan: Plan = serde_json::from_value(content.plan.clone())
            .map_err(|e| unreadable(path, &format!("its plan: {e}")))?;
        // What `Plan` does not read back, as this trailkey writes it.
        let plan_format = content.plan.get("format_version");
        if plan_format != Some(&Value::from(crate::plan::FORMAT_VERSION)) {
            return Err(unreadable(
                path,
                &format!(
                    "its plan's format_version is {}",
                    plan_format.map_or_else(|| "missing".to_owned(), short)
                ),
            ));
        }
        Ok(Saved {
            path: path.to_owned(),
            content,
            plan,
            digest,
        })
    }

    /// The saved plan, as `plan` showed it.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The plan digest: the same for the file `plan --out`
    /// wrote, the one `show` prints and the one `apply` applies.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The AWS writes of the saved plan, in order.
    pub fn steps(&self) -> &[SavedStep] {
        &self.content.steps
    }

    /// The config path the plan was made with, as it was given.
    pub fn config_path(&self) -> &str {
        &self.content.config.path
    }

    /// Fails unless `desired` is the desired state the plan was made for.
    pub fn check_config(&self, desired: &Desired) -> Result<(), Error> {
        if config_digest(desired) == self.content.config.sha256 {
            return Ok(());
        }
        let config = escape_path(&desired.source);
        Err(Error::usage(
            format!(
                "the config {config} asks for something other than the config the saved plan {} was made with ({}): nothing was changed",
                escape_path(&self.path),
                escape(&truncated(self.config_path(), 200)),
            ),
            format!(
                "apply the plan with the config it was made with (-c), or plan again with this one: `trailkey -c {config} plan --out FILE`"
            ),
        ))
    }

    /// Fails unless the plan digest is `expected` (lowercase hexadecimal,
    /// as `--expect-sha256` takes it): the file is the plan that was
    /// approved, whatever else could have been put in its place.
    pub fn check_digest(&self, expected: &str) -> Result<(), Error> {
        if self.digest == expected {
            return Ok(());
        }
        Err(Error::usage(
            format!(
                "the saved plan {} is not the approved plan: its plan digest is {}, and --expect-sha256 is {expected}: nothing was changed",
                escape_path(&self.path),
                self.digest
            ),
            "apply the file whose plan digest was approved, or plan again (`trailkey plan --out FILE`) and have the new plan approved",
        ))
    }

    /// Fails unless `plan`, made now from `observed`, is the saved plan:
    /// the facts are the same, and so are the plan and its steps. The error
    /// names the facts that differ, and first who runs when that differs.
    pub fn check(&self, plan: &Plan, observed: &Observed) -> Result<(), Error> {
        let now = facts(observed);
        let differences = differences(&self.content.facts, &now);
        let file = escape_path(&self.path);
        let again = "plan again (`trailkey plan --out FILE`), have the new plan reviewed, and apply that file";
        let (before, after) = (self.content.facts.get("runner"), now.get("runner"));
        if before != after {
            return Err(Error::check_with(
                format!(
                    "the saved plan {file} was made with {} and this run has {}: nothing was changed",
                    runner_words(before),
                    runner_words(after)
                ),
                describe(&differences),
                "apply the plan with credentials of the account that made it, or plan again with these (`trailkey plan --out FILE`), have the new plan reviewed, and apply that file",
            ));
        }
        if !differences.is_empty() {
            let applied = if self.plan.has_changes() && !plan.has_changes() {
                "; a plan made now has no changes: was this plan applied already?"
            } else {
                ""
            };
            return Err(Error::check_with(
                format!(
                    "the saved plan {file} is stale: AWS has changed since the plan was made, and nothing was changed{applied}"
                ),
                describe(&differences),
                again,
            ));
        }
        if plan_value(plan) != self.content.plan || steps(plan) != self.content.steps {
            return Err(Error::check(
                format!(
                    "the saved plan {file} is not the plan made now from the same facts, and nothing was changed"
                ),
                again,
            ));
        }
        Ok(())
    }
}

/// The file at `path`, opened for reading without waiting: a FIFO with no
/// writer, or a device, opens at once instead of blocking the open.
#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

/// The bytes of the file at `path`: a regular file of at most
/// [`MAX_BYTES`]. The file is opened first, without waiting (a FIFO or a
/// device opens at once), and what was opened is checked, then read: a
/// path changed between the check and the read cannot slip another file
/// in. Reading stops past [`MAX_BYTES`], whatever the file's size said.
/// A symbolic link is followed: what counts is what the file holds, which
/// is checked in full after it is read.
fn read_bounded(path: &Path) -> Result<Vec<u8>, Error> {
    let file = escape_path(path);
    let hint = "give the file `trailkey plan --out FILE` wrote";
    let cannot =
        |e: std::io::Error| Error::usage(format!("cannot read the saved plan {file}: {e}"), hint);
    let too_big = || {
        Error::usage(
            format!("the saved plan {file} is larger than a saved plan can be ({MAX_BYTES} bytes)"),
            hint,
        )
    };
    let opened = open_nonblocking(path).map_err(cannot)?;
    let meta = opened.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(Error::usage(
            format!("the saved plan {file} is not a regular file"),
            hint,
        ));
    }
    if meta.len() > MAX_BYTES {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    opened
        .take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(too_big());
    }
    Ok(bytes)
}

fn not_a_plan(path: &Path, why: &str) -> Error {
    Error::usage(
        format!("{} is not a trailkey saved plan: {why}", escape_path(path)),
        "give the file `trailkey plan --out FILE` wrote",
    )
}

fn altered(path: &Path, why: &str) -> Error {
    Error::usage(
        format!(
            "the saved plan {} was altered or damaged: {why}",
            escape_path(path)
        ),
        "a saved plan is applied as it was written: plan again (`trailkey plan --out FILE`) and have the new plan reviewed",
    )
}

fn unreadable(path: &Path, why: &str) -> Error {
    Error::usage(
        format!(
            "the saved plan {} cannot be read: {}",
            escape_path(path),
            escape(&truncated(why, 200))
        ),
        "plan again (`trailkey plan --out FILE`) and have the new plan reviewed",
    )
}

/// Whose credentials `runner` (the fact, as [`facts`] holds it) names.
fn runner_words(runner: Option<&Value>) -> &'static str {
    match runner.and_then(Value::as_str) {
        Some("management") => "the management account's credentials",
        Some("delegated_administrator") => {
            "Security Tooling's credentials (CloudTrail's delegated administrator)"
        }
        _ => "unknown credentials",
    }
}

/// A JSON value from a file, in a message: compact and cut short.
fn short(value: &Value) -> String {
    truncated(&value.to_string(), 40)
}

/// A fact that differs between the saved plan and now: its path (field
/// names joined by dots) and its values, `None` where absent.
#[derive(Debug, PartialEq)]
struct Difference<'a> {
    path: String,
    before: Option<&'a Value>,
    after: Option<&'a Value>,
}

/// The facts that differ from `before` to `after`, in the order of the
/// saved facts: objects are compared field by field, anything else whole.
fn differences<'a>(before: &'a Value, after: &'a Value) -> Vec<Difference<'a>> {
    fn walk<'a>(
        path: &mut Vec<&'a str>,
        before: Option<&'a Value>,
        after: Option<&'a Value>,
        out: &mut Vec<Difference<'a>>,
    ) {
        match (before, after) {
            (Some(Value::Object(b)), Some(Value::Object(a))) => {
                for (field, value) in b {
                    path.push(field);
                    walk(path, Some(value), a.get(field), out);
                    path.pop();
                }
                for (field, value) in a.iter().filter(|(f, _)| !b.contains_key(*f)) {
                    path.push(field);
                    walk(path, None, Some(value), out);
                    path.pop();
                }
            }
            (b, a) if b == a => {}
            (before, after) => out.push(Difference {
                path: path.join("."),
                before,
                after,
            }),
        }
    }
    let mut out = Vec::new();
    walk(&mut Vec::new(), Some(before), Some(after), &mut out);
    out
}

/// What the facts are, in words, by path: the longest that starts a
/// difference's path names it.
const FACT_NAMES: &[(&str, &str)] = &[
    (
        "runner",
        "who runs trailkey (the management account, or Security Tooling as CloudTrail's delegated administrator)",
    ),
    ("organization", "the organization"),
    ("trail", "the trail"),
    ("trail.kms_key_id", "the trail's key"),
    (
        "trail.log_file_validation",
        "the trail's log file validation",
    ),
    ("other_trails", "the other trails"),
    ("trail_status", "the trail's status"),
    ("trail_status.is_logging", "whether the trail is logging"),
    ("trail_tags", "the trail's tags"),
    ("bucket_region", "the Region of the trail's bucket"),
    ("alias_target", "the key the alias names"),
    ("key", "the key"),
    ("key.policy", "the key policy"),
    ("key.rotation", "the key's rotation"),
    ("key.tags", "the key's tags"),
    ("key.info.state", "the key's state"),
    ("key.aliases", "the key's aliases"),
    ("other_keys", "other keys tagged for the alias"),
    ("unreadable_keys", "the keys trailkey's role may not read"),
    ("organization_accounts", "the organization's accounts"),
    (
        "log_bucket",
        "the trail bucket's configuration, as roles.log_archive reads it",
    ),
    ("landing_zone", "Control Tower's landing zone"),
];

/// The words for the fact at `path`, if it has any.
fn fact_name(path: &str) -> Option<&'static str> {
    FACT_NAMES
        .iter()
        .filter(|(p, _)| {
            path == *p
                || path
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('.'))
        })
        .max_by_key(|(p, _)| p.len())
        .map(|(_, name)| *name)
}

/// At most this many differences are listed.
const MAX_LISTED: usize = 8;

/// The differences, one line each: what differs, and its values when
/// short. Every value and path comes from AWS or the file: escaped.
fn describe(differences: &[Difference<'_>]) -> String {
    // As JSON, as the file holds them: `null` is no value, or a fact not
    // read (planning did not ask for it).
    let value = |v: Option<&Value>| match v {
        None => Some("absent".to_owned()),
        Some(v) => Some(v.to_string()).filter(|s| s.chars().count() <= 100),
    };
    let mut out = String::new();
    for d in differences.iter().take(MAX_LISTED) {
        let path = escape(&d.path);
        out.push_str("  - ");
        match fact_name(&d.path) {
            Some(name) => out.push_str(&format!("{name} ({path})")),
            None => out.push_str(&path),
        }
        if let (Some(before), Some(after)) = (value(d.before), value(d.after)) {
            out.push_str(&format!(
                ": {} when planned, {} now",
                escape(&before),
                escape(&after)
            ));
        }
        out.push('\n');
    }
    if differences.len() > MAX_LISTED {
        out.push_str(&format!(
            "  - and {} more\n",
            differences.len() - MAX_LISTED
        ));
    }
    out
}

/// The file `plan --out FILE` writes: a temporary file beside FILE,
/// created before any AWS call (so that a FILE that cannot be written fails
/// first), then written and renamed over FILE at once: a reader sees the old
/// file or the whole new one, never a part. Dropped unwritten, it removes
/// the temporary file.
#[derive(Debug)]
pub struct Pending {
    out: PathBuf,
    temp: PathBuf,
    file: Option<File>,
}

impl Pending {
    /// The pending file for `--out out`, given the config's path `config`
    /// (which it must not replace).
    pub fn create(out: &Path, config: &Path) -> Result<Pending, Error> {
        let shown = escape_path(out);
        let cannot = |why: String| {
            Error::usage(
                format!("cannot write the plan to {shown}: {why}"),
                "give --out a file in a directory that exists and that you may write to",
            )
        };
        if out.is_dir() {
            return Err(cannot("it is a directory".to_owned()));
        }
        let same = |a: &Path, b: &Path| matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b);
        if same(out, config) {
            return Err(Error::usage(
                format!("--out {shown} is the config file: the plan would replace it"),
                "give --out another file, e.g. --out trailkey.plan",
            ));
        }
        let Some(name) = out.file_name() else {
            return Err(cannot("it does not name a file".to_owned()));
        };
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        for attempt in 0..100 {
            let temp = dir.join(format!(
                ".{}.{}-{attempt}.tmp",
                name.to_string_lossy(),
                std::process::id()
            ));
            match create_private(&temp) {
                Ok(file) => {
                    return Ok(Pending {
                        out: out.to_owned(),
                        temp,
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(cannot(e.to_string())),
            }
        }
        Err(cannot(format!(
            "too many temporary files .{}.{}-*.tmp beside it",
            name.to_string_lossy(),
            std::process::id()
        )))
    }

    /// Writes `text` and puts it in place of the file.
    pub fn write(mut self, text: &str) -> Result<(), Error> {
        let mut file = self.file.take().expect("written once");
        let written = (|| {
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            drop(file);
            std::fs::rename(&self.temp, &self.out)
        })();
        written.map_err(|e| {
            Error::usage(
                format!("cannot write the plan to {}: {e}", escape_path(&self.out)),
                "free space or give --out another file, then plan again (nothing was changed in AWS)",
            )
        })?;
        // Renamed: nothing left to remove.
        self.temp = PathBuf::new();
        Ok(())
    }
}

/// A new file at `path` that only its owner may read and write (mode 0600,
/// kept through the rename): a saved plan holds the key policy, the bucket
/// policy and the organization's account IDs.
#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<File> {
    File::options().write(true).create_new(true).open(path)
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.temp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests;
