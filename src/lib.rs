//! trailkey: make an AWS Organization's CloudTrail trail encrypted with a
//! customer-managed KMS key owned by the Security Tooling account.
//!
//! Terraform-style and stateless (AWS is the state):
//! [`observe`](observe::observe) reads (read-only) →
//! [`plan`](plan::plan) computes the changes (pure) →
//! [`apply`](apply::apply_then) executes exactly those changes, then trailkey
//! re-observes and re-plans to verify that nothing is left to do.
//!
//! Reconciliation is idempotent: with the same config and an unchanged AWS
//! state, a second `apply` makes no write call. After a partial failure, the
//! next `apply` observes what was done and converges.

pub mod apply;
pub mod aws;
pub mod cli;
pub mod config;
pub mod error;
pub mod init;
pub mod logging;
pub mod observe;
pub mod output;
pub mod plan;
pub mod policy;
pub mod render;

use std::io::{BufRead, IsTerminal};

use aws::{Connect, Management};
use cli::{Cli, Command, Format};
use config::Desired;
pub use error::Error;
use plan::Plan;

/// How a successful run ends; `main` maps it to the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit 0.
    Success,
    /// Exit 2: `plan --detailed-exitcode` found changes.
    ChangesPresent,
}

/// Runs one command.
pub fn run(cli: Cli) -> Result<Status, Error> {
    logging::init(cli.verbose);
    match &cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "trailkey", &mut script);
            output::out(&String::from_utf8_lossy(&script));
            return Ok(Status::Success);
        }
        Command::Man => {
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
            return Ok(Status::Success);
        }
        _ => {}
    }
    // Fail before any AWS call when apply or destroy could not ask for confirmation.
    let unconfirmed = match cli.command {
        Command::Apply { auto_approve, .. } => (!auto_approve).then_some("apply"),
        Command::Destroy {
            auto_approve,
            dry_run,
            ..
        } => (!auto_approve && !dry_run).then_some("destroy"),
        _ => None,
    };
    if let Some(command) = unconfirmed
        && !std::io::stdin().is_terminal()
    {
        return Err(Error::usage(
            format!("{command} needs confirmation, but stdin is not a terminal"),
            format!("review the plan and run `trailkey {command} --auto-approve` in pipelines"),
        ));
    }
    if let Command::Init { force, region } = &cli.command {
        // Before any config exists: discover one.
        let region = config::Region::check(region)
            .map_err(|e| Error::usage(format!("--region: {}", e.message), e.hint))?;
        let options = aws::sdk::Options {
            profile: cli.profile.clone(),
            management_role: None,
        };
        return block_on(async {
            let connect = aws::sdk::SdkConnect::new(region.as_str(), &options).await;
            init::run(connect.management(), &region, &cli.config, *force).await
        });
    }
    let desired = config::load(&cli.config)?;
    match cli.command {
        Command::Validate => {
            output::out(&validate_summary(&desired));
            Ok(Status::Success)
        }
        Command::Policy { offline: true } => {
            let policy = offline_policy(&desired)?;
            output::out(&format!("{}\n", policy::to_document(&policy)));
            Ok(Status::Success)
        }
        command => block_on(async {
            let options = aws::sdk::Options {
                profile: cli.profile.clone(),
                management_role: desired.management_role.clone(),
            };
            let connect = aws::sdk::SdkConnect::new(desired.region.as_str(), &options).await;
            run_online(&connect, &desired, command).await
        }),
    }
}

/// Runs `f` on a single-threaded runtime: the AWS calls of a run are
/// concurrent (`tokio::join!`), never parallel.
fn block_on<T>(f: impl std::future::Future<Output = Result<T, Error>>) -> Result<T, Error> {
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

/// The commands that talk to AWS, generic over the AWS boundary.
pub async fn run_online<C: Connect>(
    connect: &C,
    desired: &Desired,
    command: Command,
) -> Result<Status, Error> {
    let (observed, keys) = observe::observe(connect, desired).await?;
    if let Command::Destroy {
        auto_approve,
        delete_key,
        deletion_window_days,
        dry_run,
        detailed_exitcode,
        format,
    } = command
    {
        let destroy = DestroyArgs {
            auto_approve,
            delete_key: delete_key.then_some(deletion_window_days),
            dry_run,
            detailed_exitcode,
            format,
        };
        return run_destroy(connect, &keys, desired, observed, destroy).await;
    }
    let mut observed = observed;
    let plan = plan_guarded(connect, desired, &mut observed).await?;
    let observed = observed;
    match command {
        Command::Plan {
            detailed_exitcode,
            format,
        } => {
            show_plan(&plan, format);
            Ok(if detailed_exitcode && plan.has_changes() {
                Status::ChangesPresent
            } else {
                Status::Success
            })
        }
        Command::Policy { .. } => {
            let policy = plan::desired_policy(desired, &observed)?;
            output::out(&format!("{}\n", policy::to_document(&policy)));
            Ok(Status::Success)
        }
        Command::Apply {
            auto_approve,
            format,
            policy_retry_timeout,
        } => {
            show_plan_to_confirm(&plan, format, auto_approve);
            let options = apply::ApplyOptions {
                policy_retry: std::time::Duration::from_secs(policy_retry_timeout),
                ..apply::ApplyOptions::default()
            };
            let total = plan.steps().count();
            let mut index = 0;
            let mut progress = |address: plan::Address, step: &plan::Step| {
                index += 1;
                tracing::info!(
                    address = address.as_str(),
                    operation = step.operation(),
                    "apply step"
                );
                output::err(&format!(
                    "[{index}/{total}] {}: {}\n",
                    address.as_str(),
                    step.operation()
                ));
            };
            let (mut plan, mut observed, mut done, mut after) = (plan, observed, Vec::new(), None);
            if plan.has_changes() {
                if !auto_approve {
                    confirm()?;
                }
                let applied = apply_and_reread(
                    connect,
                    &keys,
                    desired,
                    &observed,
                    &plan,
                    &options,
                    &mut progress,
                )
                .await;
                match applied {
                    Ok((d, a)) => (done, after) = (d, Some(a)),
                    // Another run created the key and alias first: continue
                    // with its key (the new plan creates none), once.
                    Err(Error::Conflict { message, .. }) if auto_approve => {
                        output::err(&format!(
                            "{message}\nPlanning again against the other run's key.\n"
                        ));
                        observed = observe::refresh(connect, &keys, desired, &observed).await?;
                        plan = plan::plan(desired, &observed)?;
                        if plan.has_changes() {
                            output::err(&render::plan_human(&plan));
                            let (d, a) = apply_and_reread(
                                connect,
                                &keys,
                                desired,
                                &observed,
                                &plan,
                                &options,
                                &mut progress,
                            )
                            .await?;
                            (done, after) = (d, Some(a));
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            let result = verify(desired, &observed, after)?;
            match format {
                Format::Human if !done.is_empty() => {
                    output::out(&render::apply_human(&done, &plan, &result))
                }
                Format::Human => {}
                Format::Json => output::out(&render::apply_json(&plan, &done, result)),
            }
            Ok(Status::Success)
        }
        Command::Validate
        | Command::Init { .. }
        | Command::Destroy { .. }
        | Command::Completions { .. }
        | Command::Man => unreachable!("handled before observing"),
    }
}

struct DestroyArgs {
    auto_approve: bool,
    /// The deletion window, with --delete-key.
    delete_key: Option<i32>,
    dry_run: bool,
    detailed_exitcode: bool,
    format: Format,
}

/// `trailkey destroy`: plan the backout, confirm, apply it, verify.
async fn run_destroy<C: Connect>(
    connect: &C,
    keys: &C::KeyStore,
    desired: &Desired,
    observed: plan::Observed,
    args: DestroyArgs,
) -> Result<Status, Error> {
    let trails = match args.delete_key {
        Some(_) => connect.management().describe_trails().await.map_err(|e| {
            Error::aws(
                "listing the trails that may use the key (cloudtrail:DescribeTrails)",
                e,
            )
        })?,
        None => Vec::new(),
    };
    let mut observed = observed;
    if observed.trail.kms_key_id.is_some() && observed.trail_tags.is_none() {
        observe::trail_tags(connect, &mut observed).await?;
    }
    let plan = plan::plan_destroy(desired, &observed, args.delete_key, &trails)?;
    if args.dry_run || !plan.has_changes() {
        show_plan(&plan, args.format);
        return Ok(if args.detailed_exitcode && plan.has_changes() {
            Status::ChangesPresent
        } else {
            Status::Success
        });
    }
    show_plan_to_confirm(&plan, args.format, args.auto_approve);
    if !args.auto_approve {
        confirm()?;
    }
    let progress = |address: plan::Address, step: &plan::Step| {
        output::err(&format!("{}: {}...\n", address.as_str(), step.operation()));
    };
    let options = apply::ApplyOptions::default();
    let (done, after) =
        apply_and_reread(connect, keys, desired, &observed, &plan, &options, progress).await?;
    if after.trail.kms_key_id.is_some() && plan.changes(plan::Address::TrailEncryption) {
        return Err(Error::check(
            format!(
                "destroy finished, but the trail still names a KMS key: {}",
                after.trail.kms_key_id.unwrap_or_default()
            ),
            "another process may have changed the trail at the same time: run `trailkey destroy --dry-run`",
        ));
    }
    let result = render::ApplyResult::of(&after, Vec::new());
    match args.format {
        Format::Human => output::out(&render::destroy_human(&done, &plan, &result)),
        Format::Json => output::out(&render::apply_json(&plan, &done, result)),
    }
    Ok(Status::Success)
}

/// Plans; when the plan would change the trail, reads its tags first for
/// the Control Tower guard and plans again (a no-op plan never pays for them).
async fn plan_guarded<C: Connect>(
    connect: &C,
    desired: &Desired,
    observed: &mut plan::Observed,
) -> Result<Plan, Error> {
    let plan = plan::plan(desired, observed)?;
    if plan.changes(plan::Address::TrailEncryption) && observed.trail_tags.is_none() {
        observe::trail_tags(connect, observed).await?;
        return plan::plan(desired, observed);
    }
    Ok(plan)
}

/// Applies `plan`, and re-reads what it changed to verify it: the re-read
/// (`observe::reread`) starts as soon as the steps on the key are done, so
/// it runs concurrently with `UpdateTrail` (`apply::apply_then`).
async fn apply_and_reread<C: Connect>(
    connect: &C,
    keys: &C::KeyStore,
    desired: &Desired,
    observed: &plan::Observed,
    plan: &Plan,
    options: &apply::ApplyOptions,
    progress: impl FnMut(plan::Address, &plan::Step),
) -> Result<(Vec<apply::Done>, plan::Observed), Error> {
    let read_trail = !plan.changes(plan::Address::TrailEncryption);
    let (done, reread) =
        apply::apply_then(plan, connect.management(), keys, options, progress, |key| {
            observe::reread(connect, keys, desired, observed, read_trail, key)
        })
        .await?;
    let after = reread.into_observed(observed, apply::updated_trail(&done))?;
    Ok((done, after))
}

/// Checks that a plan made from the state after apply (`after`, `None` when
/// nothing was applied) is empty.
fn verify(
    desired: &Desired,
    observed: &plan::Observed,
    after: Option<plan::Observed>,
) -> Result<render::ApplyResult, Error> {
    let Some(after) = after else {
        return Ok(render::ApplyResult::of(observed, Vec::new()));
    };
    let again = plan::plan(desired, &after)?;
    if again.has_changes() {
        return Err(Error::check(
            format!(
                "apply finished, but AWS does not show the desired state yet:\n{}",
                render::plan_human(&again)
            ),
            "another process may have changed the key or trail at the same time: run `trailkey plan` and apply again",
        ));
    }
    Ok(render::ApplyResult::of(&after, again.findings))
}

/// Prints the plan on stdout, as `format` says.
fn show_plan(plan: &Plan, format: Format) {
    match format {
        Format::Human => output::out(&render::plan_human(plan)),
        Format::Json => output::out(&render::json(&render::PlanJson::from(plan))),
    }
}

/// Prints the plan before apply or destroy: on stdout in human format; with
/// JSON, on stderr only when someone must confirm it, so that stdout stays
/// pure JSON.
fn show_plan_to_confirm(plan: &Plan, format: Format, auto_approve: bool) {
    match format {
        Format::Human => output::out(&render::plan_human(plan)),
        Format::Json if !auto_approve => output::err(&render::plan_human(plan)),
        Format::Json => {}
    }
}

fn confirm() -> Result<(), Error> {
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
            "apply cancelled: nothing was changed",
            "answer 'yes' to apply, or use --auto-approve",
        ))
    }
}

fn validate_summary(d: &Desired) -> String {
    format!(
        "{}: valid\n  region            {}\n  key alias         {}\n  security tooling  {} (role {})\n  log archive       {}\n  management        {}\n  trail             {}\n  rotation          {}\n",
        d.source.display(),
        d.region,
        d.alias.full(),
        d.security_tooling,
        d.security_tooling_role_arn(),
        d.log_archive,
        d.management.as_ref().map_or_else(
            || "(read from Organizations)".to_owned(),
            ToString::to_string
        ),
        d.trail.as_api_name(),
        if d.rotation { "on" } else { "left as is" },
    )
}

/// trailkey's statements rendered from the config alone.
fn offline_policy(d: &Desired) -> Result<serde_json::Value, Error> {
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
    Ok(policy::render(&policy::PolicyInputs {
        partition: d.partition(),
        security_tooling: &d.security_tooling,
        management: management.as_str(),
        log_archive: &d.log_archive,
        trail_arn: &trail_arn,
    }))
}
