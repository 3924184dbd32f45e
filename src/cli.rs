//! Command-line interface (clap derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "trailkey",
    version = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("TRAILKEY_GIT_REV"), ")"),
    about = "Encrypt an AWS Organization's CloudTrail trail with a customer-managed KMS key in the Security Tooling account",
    long_about = None,
)]
pub struct Cli {
    /// Config file.
    #[arg(
        short,
        long,
        global = true,
        default_value = crate::config::DEFAULT_CONFIG,
        value_name = "PATH"
    )]
    pub config: PathBuf,

    /// AWS named profile for the management-account credentials (default: the standard AWS chain).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,

    /// Log to stderr: -v what trailkey does, -vv also every AWS call.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the config file offline; makes no AWS call.
    Validate,
    /// Show what apply would change. Read-only.
    Plan {
        /// Exit 2 when there are changes (0: none, 1: error), like Terraform.
        #[arg(long)]
        detailed_exitcode: bool,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Make the changes shown by plan, then verify the result.
    Apply {
        /// Do not ask for confirmation (required without a terminal, e.g. in a pipeline).
        #[arg(long)]
        auto_approve: bool,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// How long to retry KMS's MalformedPolicyDocumentException, which a
        /// principal created moments ago causes until IAM knows it (0: no retry).
        #[arg(long, value_name = "SECONDS", default_value_t = 120)]
        policy_retry_timeout: u64,
        /// How long to wait for AWS to show this run's own new key, alias or
        /// key policy to the calls that follow them (KMS is eventually
        /// consistent; 0: no wait).
        #[arg(long, value_name = "SECONDS", default_value_t = 120)]
        propagation_timeout: u64,
    },
    /// Read the organization and write a commented config (to -c/--config).
    Init {
        /// Overwrite the config file if it exists.
        #[arg(long)]
        force: bool,
        /// The Region to look for the organization trail in.
        #[arg(long, env = "AWS_REGION", default_value = crate::config::DEFAULT_REGION)]
        region: String,
    },
    /// Back out: set the trail back to SSE-S3; keeps the key unless --delete-key.
    Destroy {
        /// Do not ask for confirmation (required without a terminal).
        #[arg(long)]
        auto_approve: bool,
        /// Also delete the alias and schedule deletion of the key, only if no
        /// trail in the organization still uses it.
        #[arg(long)]
        delete_key: bool,
        /// Waiting period before KMS deletes the key (7-30 days).
        #[arg(long, value_name = "DAYS", default_value_t = 30,
              value_parser = clap::value_parser!(i32).range(7..=30), requires = "delete_key")]
        deletion_window_days: i32,
        /// Only show what destroy would change (read-only).
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: exit 2 when destroy would change something.
        #[arg(long, requires = "dry_run")]
        detailed_exitcode: bool,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `trailkey man > trailkey.1`.
    Man,
    /// Print the key policy trailkey would attach (read-only).
    Policy {
        /// Render trailkey's statements from the config alone, with no AWS call
        /// (needs accounts.management; the trail ARN is built from trail.name).
        #[arg(long)]
        offline: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}
