//! trailkey: make an AWS Organization's CloudTrail trail encrypted with a
//! customer-managed KMS key owned by the Security Tooling account.
//!
//! Terraform-style and stateless (AWS is the state):
//! [`observe`](observe::observe) reads (read-only) →
//! [`plan`](plan::plan) computes the changes (pure) →
//! [`apply`](apply::apply_then) executes exactly those changes, then trailkey
//! re-observes and re-plans to verify that nothing is left to do. The loop
//! itself is [`reconcile`]; this file only turns a command line into a
//! reconcile (or an offline command) and shows the outcome. A plan can be
//! saved (`plan --out FILE`) and applied later exactly as it was shown
//! (`apply FILE`): see [`saved`].

pub mod apply;
pub mod aws;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod error;
pub mod escape;
pub mod exposure;
pub mod init;
pub mod lambda;
pub mod log_archive;
pub mod logging;
pub mod model;
pub mod observe;
pub mod output;
pub mod plan;
pub mod policy;
pub mod reconcile;
pub mod render;
pub mod retry;
pub mod saved;
#[cfg(test)]
pub(crate) mod testing;
pub mod version;

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use aws::Connect;
use cli::{Cli, Command, Format};
use config::Desired;
use delivery::Delivery;
pub use error::Error;
use plan::Plan;
use reconcile::Outcome;

/// How a successful run ends; `main` maps it to the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit 0.
    Success,
    /// Exit 2: `plan --detailed-exitcode` or `destroy --dry-run
    /// --detailed-exitcode` found changes.
    ChangesPresent,
}

/// What a command line asks for, once clap has parsed it.
enum Dispatch {
    /// A reconcile against AWS, shown as `View` says.
    Online(reconcile::Command, View),
    /// `plan --out FILE`: the plan, shown and saved to FILE.
    SavePlan(PathBuf, View),
    /// `apply FILE`: the `Apply` command, carried out only as the saved
    /// plan FILE says, and with `--expect-sha256`, only if FILE has that
    /// plan digest.
    ApplySaved(SavedApply, reconcile::Command, View),
    /// `show FILE`.
    Show(PathBuf, Format),
    Validate,
    OfflinePolicy,
    Init {
        force: bool,
        region: String,
    },
    Completions(clap_complete::Shell),
    Man,
    Lambda,
}

/// The saved plan `apply FILE` applies.
struct SavedApply {
    file: PathBuf,
    /// `--expect-sha256`: the approved plan digest, lowercase.
    expect_sha256: Option<String>,
}

/// How the command line shows a reconcile's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub format: Format,
    /// Exit 2 when the plan has changes.
    pub detailed_exitcode: bool,
    /// The outcome is a destroy's.
    pub destroy: bool,
}

fn dispatch(command: Command) -> Dispatch {
    let view = |format, detailed_exitcode, destroy| View {
        format,
        detailed_exitcode,
        destroy,
    };
    match command {
        Command::Validate => Dispatch::Validate,
        Command::Plan {
            detailed_exitcode,
            format,
            out,
        } => {
            let view = view(format, detailed_exitcode, false);
            match out {
                Some(out) => Dispatch::SavePlan(out, view),
                None => Dispatch::Online(reconcile::Command::Plan, view),
            }
        }
        Command::Apply {
            plan,
            expect_sha256,
            auto_approve,
            format,
            policy_retry_timeout,
            propagation_timeout,
            wait_for_delivery,
            landing_zone,
        } => {
            let command = reconcile::Command::Apply {
                // The saved plan is the approval.
                auto_approve: auto_approve || plan.is_some(),
                policy_retry: std::time::Duration::from_secs(policy_retry_timeout),
                propagation_retry: std::time::Duration::from_secs(propagation_timeout),
                wait_for_delivery,
                landing_zone: Some(landing_zone.into()),
                verification: apply::Verification::ReadBack,
            };
            let view = view(format, false, false);
            match plan {
                Some(file) => Dispatch::ApplySaved(
                    SavedApply {
                        file,
                        expect_sha256,
                    },
                    command,
                    view,
                ),
                None => Dispatch::Online(command, view),
            }
        }
        Command::Show { file, format } => Dispatch::Show(file, format),
        Command::Init { force, region } => Dispatch::Init { force, region },
        Command::Destroy {
            auto_approve,
            delete_key,
            deletion_window_days,
            dry_run,
            detailed_exitcode,
            format,
            landing_zone,
        } => Dispatch::Online(
            reconcile::Command::Destroy {
                delete_key: delete_key.then_some(deletion_window_days),
                dry_run,
                auto_approve,
                landing_zone: landing_zone.into(),
            },
            view(format, detailed_exitcode, true),
        ),
        Command::Completions { shell } => Dispatch::Completions(shell),
        Command::Man => Dispatch::Man,
        Command::Lambda => Dispatch::Lambda,
        Command::Policy {
            offline: true,
            reader_iam: _,
        } => Dispatch::OfflinePolicy,
        Command::Policy {
            offline: false,
            reader_iam,
        } => Dispatch::Online(
            match reader_iam {
                Some(principal) => reconcile::Command::ReaderIam(principal),
                None => reconcile::Command::Policy,
            },
            view(Format::Human, false, false),
        ),
    }
}

/// Runs one command.
pub fn run(cli: Cli) -> Result<Status, Error> {
    let Cli {
        config: given_config,
        profile,
        verbose,
        command,
    } = cli;
    let config = given_config
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONFIG));
    logging::init(verbose);
    match dispatch(command) {
        Dispatch::Completions(shell) => completions(shell),
        Dispatch::Man => man_page(),
        Dispatch::Init { force, region } => init(&config, profile, &region, force),
        Dispatch::Lambda => lambda::run(profile, given_config, verbose),
        Dispatch::Validate => {
            output::out(&validate_summary(&config::load(&config)?));
            Ok(Status::Success)
        }
        Dispatch::OfflinePolicy => {
            let policy = offline_policy(&config::load(&config)?)?;
            output::out(&format!("{}\n", policy::to_document(&policy)));
            Ok(Status::Success)
        }
        Dispatch::Online(command, view) => online(&config, profile, command, view),
        Dispatch::SavePlan(out, view) => save_plan(&config, profile, &out, view),
        Dispatch::ApplySaved(saved, command, view) => {
            apply_saved(&config, profile, &saved, command, view)
        }
        Dispatch::Show(file, format) => show_saved(&file, format),
    }
}

/// `trailkey plan --out FILE`: a FILE that cannot be written fails before
/// any AWS call; the plan is shown as `plan` shows it, once it is saved.
fn save_plan(
    config: &Path,
    profile: Option<String>,
    out: &Path,
    view: View,
) -> Result<Status, Error> {
    let desired = config::load(config)?;
    let pending = saved::Pending::create(out, config)?;
    block_on(async {
        let connect = connect(&desired, profile).await;
        plan_and_save(&connect, &desired, pending, out, view).await
    })
}

/// `plan --out FILE` through `connect`: plans as `plan` does, writes the
/// saved plan to `pending`, then shows the plan.
pub async fn plan_and_save<C: Connect>(
    connect: &C,
    desired: &Desired,
    pending: saved::Pending,
    out: &Path,
    view: View,
) -> Result<Status, Error> {
    let (plan, observed) = reconcile::plan_to_save(connect, desired).await?;
    let text = saved::file_text(desired, &plan, &observed);
    // Read back as `apply FILE` will read it, before it is written.
    let written = saved::Saved::parse(out, text.as_bytes())?;
    pending.write(&text)?;
    let file = escape::escape_path(out);
    let config = escape::escape_path(&desired.source);
    let digest = written.digest();
    let saved = if plan.has_changes() {
        format!(
            "\nSaved the plan to {file} (plan digest {digest}). To make exactly these changes: trailkey -c {config} apply {file} --expect-sha256 {digest}\n"
        )
    } else {
        format!("\nSaved the plan to {file} (plan digest {digest}): it has no changes.\n")
    };
    let status = show(Outcome::Planned(plan), view);
    output::err(&saved);
    status
}

/// `trailkey apply FILE`: the file, its plan digest and the config are
/// checked before any AWS call; the run then applies the saved plan or
/// refuses.
fn apply_saved(
    config: &Path,
    profile: Option<String>,
    apply: &SavedApply,
    command: reconcile::Command,
    view: View,
) -> Result<Status, Error> {
    let saved = saved::Saved::read(&apply.file)?;
    if let Some(expected) = &apply.expect_sha256 {
        saved.check_digest(expected)?;
    }
    let desired = config::load(config)?;
    saved.check_config(&desired)?;
    block_on(async {
        let connect = connect(&desired, profile).await;
        run_saved(&connect, &desired, &saved, command, view).await
    })
}

/// `apply FILE` through `connect`, with the file and the config checked.
pub async fn run_saved<C: Connect>(
    connect: &C,
    desired: &Desired,
    saved: &saved::Saved,
    command: reconcile::Command,
    view: View,
) -> Result<Status, Error> {
    let mut terminal = Terminal {
        format: view.format,
        auto_approve: true,
        name: "apply",
    };
    let outcome = reconcile::run_saved(connect, desired, command, saved, &mut terminal).await?;
    show(outcome, view)
}

/// `trailkey show FILE`: the saved plan, as `plan` showed it, once the
/// file is checked. Offline: it reads neither the config nor AWS.
fn show_saved(file: &Path, format: Format) -> Result<Status, Error> {
    let saved = saved::Saved::read(file)?;
    if format == Format::Human {
        output::out(&format!(
            "Saved plan {} (plan digest {}), made with the config {}:\n\n",
            escape::escape_path(file),
            saved.digest(),
            escape::escape(&escape::truncated(saved.config_path(), 200))
        ));
    }
    show_plan(saved.plan(), format);
    Ok(Status::Success)
}

/// The SDK clients for `desired`, with the credentials of `profile`.
async fn connect(desired: &Desired, profile: Option<String>) -> aws::sdk::SdkConnect {
    let options = aws::sdk::Options {
        profile,
        management_role: desired.management_role.clone(),
    };
    aws::sdk::SdkConnect::new(desired.region.as_str(), &options).await
}

/// `trailkey completions SHELL`: the shell's completion script.
fn completions(shell: clap_complete::Shell) -> Result<Status, Error> {
    let mut script = Vec::new();
    let mut command = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut command, "trailkey", &mut script);
    output::out(&String::from_utf8_lossy(&script));
    Ok(Status::Success)
}

/// `trailkey man`: the man page, in roff.
fn man_page() -> Result<Status, Error> {
    let mut page = Vec::new();
    clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
        .render(&mut page)
        .map_err(|e| {
            Error::usage(
                format!("cannot render the man page: {e}"),
                "report this as a bug",
            )
        })?;
    output::out(&String::from_utf8_lossy(&page));
    Ok(Status::Success)
}

/// A command that talks to AWS: plan, apply, destroy, policy with
/// `--online`.
fn online(
    config: &Path,
    profile: Option<String>,
    command: reconcile::Command,
    view: View,
) -> Result<Status, Error> {
    // Before any AWS call, and before the config is read: apply and destroy
    // that could not ask for confirmation fail at once.
    if needs_confirmation(&command) && !std::io::stdin().is_terminal() {
        let name = if view.destroy { "destroy" } else { "apply" };
        return Err(Error::usage(
            format!("{name} needs confirmation, but stdin is not a terminal"),
            format!("review the plan and run `trailkey {name} --auto-approve` in pipelines"),
        ));
    }
    let desired = config::load(config)?;
    block_on(async {
        let connect = connect(&desired, profile).await;
        run_online(&connect, &desired, command, view).await
    })
}

/// Whether `command` writes only after someone confirms the plan.
fn needs_confirmation(command: &reconcile::Command) -> bool {
    matches!(
        command,
        reconcile::Command::Apply {
            auto_approve: false,
            ..
        } | reconcile::Command::Destroy {
            auto_approve: false,
            dry_run: false,
            ..
        }
    )
}

/// `trailkey init`: before any config exists, discover one.
fn init(
    config: &Path,
    profile: Option<String>,
    region: &str,
    force: bool,
) -> Result<Status, Error> {
    let region = config::Region::check(region)
        .map_err(|e| Error::usage(format!("--region: {}", e.message), e.hint))?;
    let options = aws::sdk::Options {
        profile,
        management_role: None,
    };
    block_on(async {
        let connect = aws::sdk::SdkConnect::new(region.as_str(), &options).await;
        init::run(
            connect.management(),
            connect.landing_zones(),
            &region,
            config,
            force,
        )
        .await
    })
}

/// Runs `f` on a single-threaded runtime: the AWS calls of a run are
/// concurrent (`tokio::join!`), never parallel.
pub(crate) fn block_on<T>(
    f: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Error::usage(
                format!("cannot start the async runtime: {e}"),
                "report this as a bug",
            )
        })?
        .block_on(f)
}

/// A reconcile against AWS through `connect`, shown on the terminal.
pub async fn run_online<C: Connect>(
    connect: &C,
    desired: &Desired,
    command: reconcile::Command,
    view: View,
) -> Result<Status, Error> {
    let mut terminal = Terminal {
        format: view.format,
        auto_approve: !needs_confirmation(&command),
        name: if view.destroy { "destroy" } else { "apply" },
    };
    let outcome = reconcile::run(connect, desired, command, &mut terminal).await?;
    show(outcome, view)
}

/// Prints an outcome on stdout and says how the run ends: an apply whose
/// `--wait-for-delivery` proved no delivery shows its result, then fails.
fn show(outcome: Outcome, view: View) -> Result<Status, Error> {
    match outcome {
        Outcome::Planned(plan) => {
            show_plan(&plan, view.format);
            // A broken setup comes before changes: a scheduled drift check
            // must alert, and applying would not repair it.
            if let Some(e) = plan::broken(&plan.findings).filter(|_| view.detailed_exitcode) {
                return Err(e);
            }
            if view.detailed_exitcode && plan.has_changes() {
                return Ok(Status::ChangesPresent);
            }
        }
        Outcome::Policy(policy) => output::out(&format!("{}\n", policy::to_document(&policy))),
        Outcome::Applied { plan, done, result } => {
            // What remains after apply: the verification's findings, or,
            // when there was nothing to do, the plan's.
            let remaining = if done.is_empty() {
                &plan.findings
            } else {
                &result.findings
            };
            let broken = plan::broken(remaining).filter(|_| !view.destroy);
            let failure = result.delivery.as_deref().and_then(Delivery::failure);
            match (view.format, view.destroy) {
                (Format::Json, _) => output::out(&render::apply_json(&plan, &done, result)),
                (Format::Human, true) => {
                    output::out(&render::destroy_human(&done, &plan, &result));
                }
                (Format::Human, false) => {
                    // For no change, the plan shown before says so.
                    if !done.is_empty() {
                        output::out(&render::apply_human(&done, &plan, &result));
                    }
                    if let Some(delivery) = result.delivery.as_deref().filter(|_| failure.is_none())
                    {
                        output::out(&render::delivery_human(delivery));
                    }
                }
            }
            if let Some(e) = broken.or(failure) {
                return Err(e);
            }
        }
    }
    Ok(Status::Success)
}

/// The terminal as the reconcile loop's [`reconcile::Ui`]: the plan on
/// stdout (on stderr with JSON, so that stdout stays one JSON document),
/// the prompt and progress on stderr, the answer from stdin.
struct Terminal {
    format: Format,
    auto_approve: bool,
    /// `apply` or `destroy`, for the prompt's answer.
    name: &'static str,
}

impl reconcile::Ui for Terminal {
    fn about_to_apply(&mut self, plan: &Plan) {
        match self.format {
            Format::Human => output::out(&render::plan_human(plan)),
            Format::Json if !self.auto_approve => output::err(&render::plan_human(plan)),
            Format::Json => {}
        }
    }

    fn confirm(&mut self, _plan: &Plan) -> Result<(), Error> {
        output::err(
            "\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ",
        );
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| Error::usage(format!("cannot read the answer: {e}"), "run again"))?;
        if answer.trim() == "yes" {
            Ok(())
        } else {
            Err(Error::usage(
                format!("{} cancelled: nothing was changed", self.name),
                format!("answer 'yes' to {}, or use --auto-approve", self.name),
            ))
        }
    }

    fn step(&mut self, index: usize, total: usize, address: plan::Address, step: &plan::Step) {
        output::err(&format!(
            "[{index}/{total}] {}: {}\n",
            address.as_str(),
            step.operation()
        ));
    }

    fn waiting(&mut self, r: &crate::retry::Retrying) {
        let (why, attempt, attempts) = (r.why.says(), r.attempt, r.attempts);
        output::err(&match r.error {
            // The code is AWS's text.
            Some(e) => format!(
                "  {why} ({} returned {}); retrying in {:.0?} ({attempt}/{attempts})\n",
                e.operation,
                escape::escape(&e.code),
                r.wait
            ),
            None => format!("  {why} ({attempt}/{attempts})\n"),
        });
    }

    fn delivery(&mut self, waited: std::time::Duration, within: std::time::Duration) {
        output::err(&format!(
            "  waiting for CloudTrail to deliver a log file with the key ({} of {})\n",
            delivery::human(waited),
            delivery::human(within)
        ));
    }

    fn landing_zone(
        &mut self,
        operation: &str,
        waited: std::time::Duration,
        within: std::time::Duration,
    ) {
        // The operation's ID is Control Tower's text.
        output::err(&format!(
            "  waiting for Control Tower's landing-zone operation {} ({} of {})\n",
            escape::escape(operation),
            delivery::human(waited),
            delivery::human(within)
        ));
    }

    fn planning_again(&mut self, why: &str, plan: &Plan) {
        output::err(&format!(
            "{}\nPlanning again against the other run's key.\n",
            escape::escape(why)
        ));
        if plan.has_changes() {
            output::err(&render::plan_human(plan));
        }
    }
}

/// Prints the plan on stdout, as `format` says.
fn show_plan(plan: &Plan, format: Format) {
    match format {
        Format::Human => output::out(&render::plan_human(plan)),
        Format::Json => output::out(&render::json(&render::PlanJson::from(plan))),
    }
}

fn validate_summary(d: &Desired) -> String {
    let security_tooling = if d.landing_zone {
        format!("{} (Audit: a reader)", d.security_tooling)
    } else {
        format!(
            "{} (role {})",
            d.security_tooling,
            d.security_tooling_role_arn()
        )
    };
    let landing_zone = if d.landing_zone {
        format!(
            "  landing zone      Control Tower's trail, its key in the management account {}\n",
            d.key_account
        )
    } else {
        String::new()
    };
    format!(
        "{}: valid\n  region            {}\n  key alias         {}\n  security tooling  {}\n  log archive       {}\n  management        {}\n  trail             {}\n  rotation          {}\n",
        d.source.display(),
        d.region,
        d.alias.full(),
        security_tooling,
        d.log_archive,
        d.management.as_ref().map_or_else(
            || "(read from Organizations)".to_owned(),
            ToString::to_string
        ),
        d.trail.as_api_name(),
        match (d.rotation, d.rotation_period_days) {
            (true, Some(days)) => format!("on, every {days} days"),
            (true, None) => "on (its period left as is)".to_owned(),
            (false, _) => "left as is".to_owned(),
        },
    ) + &landing_zone
        + &format!(
            "  log validation    {}\n  protection        {}\n  readers           {}\n",
            match d.log_file_validation {
                Some(true) => "on",
                Some(false) => "left as is",
                None => "left as is (a warning when off)",
            },
            match &d.protect {
                None => "off".to_owned(),
                Some(admins) if admins.is_empty() => "on (exempt: trailkey's role)".to_owned(),
                Some(admins) => format!(
                    "on (exempt: trailkey's role, {})",
                    admins
                        .iter()
                        .map(|a| a.arn.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            {
                let accounts = if d.landing_zone {
                    "Log Archive, Audit and management accounts"
                } else {
                    "Log Archive and management accounts"
                };
                if d.readers.is_empty() {
                    accounts.to_owned()
                } else {
                    format!(
                        "{accounts}, {}",
                        d.readers.policy_principals(d.partition()).join(", ")
                    )
                }
            },
        )
}

/// trailkey's statements rendered from the config alone.
fn offline_policy(d: &Desired) -> Result<serde_json::Value, Error> {
    if d.landing_zone {
        return Err(Error::usage(
            "`policy --offline` cannot render the key policy of Control Tower's trail: its AWS Config statement names the organization's ID, read from AWS".to_owned(),
            "run `trailkey policy` without --offline".to_owned(),
        ));
    }
    let Some(management) = &d.management else {
        return Err(Error::config(
            &d.source,
            Some("accounts.management".to_owned()),
            "`policy --offline` needs the management account ID".to_owned(),
            "set accounts.management, or run `trailkey policy` without --offline to read it from AWS".to_owned(),
        ));
    };
    let trail_arn = match &d.trail {
        config::TrailRef::Arn(a) => a.clone(),
        config::TrailRef::Name(n) => format!(
            "arn:{}:cloudtrail:{}:{management}:trail/{n}",
            d.partition(),
            d.region
        ),
    };
    Ok(policy::render(&policy::PolicyInputs::of(
        d,
        management.as_str(),
        "",
        &trail_arn,
    )))
}
