//! Command-line interface (clap derive).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::version::VERSION;

#[derive(Debug, Parser)]
#[command(
    name = "trailkey",
    version = VERSION,
    about = "Encrypt an AWS Organization's CloudTrail trail with a customer-managed KMS key in the Security Tooling account",
    long_about = None,
)]
pub struct Cli {
    /// Config file [default: trailkey.toml; lambda: TRAILKEY_CONFIG, else next to the binary]
    #[arg(short, long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

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
        /// Also save the plan to FILE, with what it rests on, for `trailkey
        /// apply FILE` (which applies exactly it, or refuses if AWS or the
        /// config changed since) and `trailkey show FILE`.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Make the changes shown by plan, then verify the result.
    Apply {
        /// A plan saved by `plan --out`: apply exactly it, without a prompt
        /// (the saved plan is the approval). Refused, with nothing written,
        /// when AWS or the config changed since the plan.
        #[arg(value_name = "FILE")]
        plan: Option<PathBuf>,
        /// Do not ask for confirmation (required without a terminal, e.g. in
        /// a pipeline; implied with a saved plan).
        #[arg(long)]
        auto_approve: bool,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// How long to retry KMS's MalformedPolicyDocumentException, which a
        /// principal created moments ago causes until IAM knows it (0: no
        /// retry; at most 3600).
        #[arg(long, value_name = "SECONDS", default_value_t = crate::retry::DEFAULT_POLICY_RETRY.as_secs(), value_parser = parse_retry_seconds)]
        policy_retry_timeout: u64,
        /// How long to wait for AWS to show this run's own new key, alias or
        /// key policy to the calls that follow them (KMS is eventually
        /// consistent; 0: no wait; at most 3600).
        #[arg(long, value_name = "SECONDS", default_value_t = crate::retry::DEFAULT_PROPAGATION_RETRY.as_secs(), value_parser = parse_retry_seconds)]
        propagation_timeout: u64,
        /// After apply, wait until CloudTrail delivers a log file to the
        /// bucket (proof that the trail works with the key): at most
        /// DURATION (e.g. 90s, 15m, 1h; 15m when given without a value; at
        /// most 24h).
        /// Exit 1 on a delivery error, a trail that is not logging, or
        /// when no file is delivered in time.
        #[arg(long, value_name = "DURATION", num_args = 0..=1,
              default_missing_value = "15m", value_parser = parse_duration)]
        wait_for_delivery: Option<Duration>,
        /// With FILE: refuse it, before any AWS call, unless its plan digest
        /// is HEX (the 64 hexadecimal digits that `plan --out` and `show`
        /// print): the file applied is the plan that was approved.
        #[arg(long, value_name = "HEX", requires = "plan", value_parser = parse_sha256)]
        expect_sha256: Option<String>,
        #[command(flatten)]
        landing_zone: LandingZoneWait,
    },
    /// Print a plan saved by `plan --out`, after checking the file. Offline.
    Show {
        /// The saved plan.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
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
        #[command(flatten)]
        landing_zone: LandingZoneWait,
    },
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `trailkey man > trailkey.1`.
    Man,
    /// Run as an AWS Lambda function (custom runtime): plan, and with
    /// TRAILKEY_MODE=apply repair, on each CloudTrail, Control Tower or
    /// scheduled event about the trail, the key or the alias. The config is
    /// -c, else TRAILKEY_CONFIG, else trailkey.toml next to the binary;
    /// TRAILKEY_VERBOSE=1 or 2 logs as -v or -vv. A binary named `bootstrap`
    /// started without arguments runs this.
    Lambda,
    /// Print the key policy trailkey would attach (read-only).
    Policy {
        /// Render trailkey's statements from the config alone, with no AWS call
        /// (needs accounts.management; the trail ARN is built from trail.name).
        #[arg(long, conflicts_with = "reader_iam")]
        offline: bool,
        /// Print instead the IAM policy that PRINCIPAL (a role or user ARN
        /// of a reader account) needs in its own account to read the log
        /// files: kms:Decrypt on the key, s3:GetObject and s3:ListBucket on
        /// the trail's bucket and prefix.
        #[arg(long, value_name = "PRINCIPAL")]
        reader_iam: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
}

/// A long option of trailkey's written with one dash, as Terraform spells
/// its options (`-out=FILE`, `-auto-approve`, `-detailed-exitcode`): the
/// argument as given, and as trailkey takes it. clap has no one-dash long
/// options (`-out` is `-o -u -t` to it), so this is asked only once clap has
/// refused the command line, to say what to write instead.
pub fn one_dash_long_option(args: &[std::ffi::OsString]) -> Option<(String, String)> {
    let mut longs = Vec::new();
    long_options(&<Cli as clap::CommandFactory>::command(), &mut longs);
    args.iter()
        .skip(1)
        .map_while(|a| a.to_str().filter(|a| *a != "--"))
        .find_map(|arg| {
            let body = arg.strip_prefix('-').filter(|b| !b.starts_with('-'))?;
            let name = body.split('=').next().unwrap_or(body);
            (name.len() > 1 && longs.iter().any(|l| l == name))
                .then(|| (arg.to_owned(), format!("--{body}")))
        })
}

/// The long options of `command` and of its subcommands.
fn long_options(command: &clap::Command, out: &mut Vec<String>) {
    out.extend(
        command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .map(str::to_owned),
    );
    for sub in command.get_subcommands() {
        long_options(sub, out);
    }
}

/// The longest `--policy-retry-timeout` and `--propagation-timeout`: an
/// hour, far beyond any propagation AWS documents, and small enough that no
/// time arithmetic on it can overflow.
pub const MAX_RETRY_SECONDS: u64 = 3600;

/// The longest `--wait-for-delivery`: a day (CloudTrail delivers about
/// every 5 minutes while there is activity).
pub const MAX_DELIVERY_WAIT: Duration = Duration::from_secs(24 * 3600);

/// Seconds as `--policy-retry-timeout` and `--propagation-timeout` take
/// them: a whole number from 0 to [`MAX_RETRY_SECONDS`].
pub fn parse_retry_seconds(text: &str) -> Result<u64, String> {
    let seconds: u64 = text.trim().parse().map_err(|_| {
        format!("{text:?} is not a whole number of seconds (0 to {MAX_RETRY_SECONDS})")
    })?;
    if seconds > MAX_RETRY_SECONDS {
        return Err(format!(
            "{seconds} seconds is more than the maximum, {MAX_RETRY_SECONDS} (one hour)"
        ));
    }
    Ok(seconds)
}

/// A plan digest as `--expect-sha256` takes it: 64 hexadecimal digits, in
/// either case; lowercase, as trailkey prints it.
pub fn parse_sha256(text: &str) -> Result<String, String> {
    let hex = text.trim();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "{:?} is not a plan digest: expected the 64 hexadecimal digits that `trailkey plan --out` and `trailkey show` print",
            crate::escape::truncated(text, 80)
        ));
    }
    Ok(hex.to_ascii_lowercase())
}

/// How apply and destroy wait for a landing-zone operation, with
/// `[control_tower] landing_zone = true`.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct LandingZoneWait {
    /// With [control_tower] landing_zone: how long to wait for Control
    /// Tower's landing-zone operation to end (e.g. 90m, 2h; at most 24h).
    /// Exit 1 when it has not ended by then; the operation goes on, and a
    /// later run finds it ended.
    #[arg(long, value_name = "DURATION", default_value = "2h", value_parser = parse_duration)]
    pub landing_zone_timeout: Duration,
    /// With [control_tower] landing_zone: how often to read the
    /// landing-zone operation's status while it runs (e.g. 30s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub landing_zone_poll_interval: Duration,
}

impl From<LandingZoneWait> for crate::reconcile::LandingZoneWait {
    fn from(w: LandingZoneWait) -> Self {
        crate::reconcile::LandingZoneWait {
            timeout: w.landing_zone_timeout,
            poll: w.landing_zone_poll_interval,
        }
    }
}

impl Default for LandingZoneWait {
    fn default() -> Self {
        LandingZoneWait {
            landing_zone_timeout: crate::apply::DEFAULT_LANDING_ZONE_TIMEOUT,
            landing_zone_poll_interval: crate::apply::DEFAULT_LANDING_ZONE_POLL,
        }
    }
}

/// A duration as `--wait-for-delivery` takes it: whole seconds with an
/// optional unit, `s`, `m` or `h` (`90`, `90s`, `15m`, `1h`), more than 0
/// and at most [`MAX_DELIVERY_WAIT`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let expected = "expected a whole number of seconds, minutes or hours, e.g. 90s, 15m or 1h";
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{text:?} is not a duration: {expected}")),
    };
    let seconds = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_seconds))
        .ok_or_else(|| format!("{text:?} is not a duration: {expected}"))?;
    if seconds == 0 {
        return Err(format!("{text:?}: the wait must be longer than 0"));
    }
    let wait = Duration::from_secs(seconds);
    if wait > MAX_DELIVERY_WAIT {
        return Err(format!("{text:?} is longer than the maximum, 24h"));
    }
    Ok(wait)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn wait_for_delivery(args: &[&str]) -> Result<Option<Duration>, String> {
        let all = [&["trailkey", "apply"], args].concat();
        match Cli::try_parse_from(all) {
            Ok(Cli {
                command:
                    Command::Apply {
                        wait_for_delivery, ..
                    },
                ..
            }) => Ok(wait_for_delivery),
            Ok(other) => panic!("not apply: {other:?}"),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn terraforms_one_dash_spelling_is_named_with_trailkeys_two_dashes() {
        let found = |args: &[&str]| {
            let args: Vec<std::ffi::OsString> = std::iter::once("trailkey")
                .chain(args.iter().copied())
                .map(Into::into)
                .collect();
            one_dash_long_option(&args)
        };
        let pair = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
        assert_eq!(
            found(&["plan", "-out=plan.bin"]),
            pair("-out=plan.bin", "--out=plan.bin")
        );
        assert_eq!(found(&["plan", "-out", "x"]), pair("-out", "--out"));
        assert_eq!(
            found(&["apply", "-auto-approve"]),
            pair("-auto-approve", "--auto-approve")
        );
        assert_eq!(
            found(&["plan", "-detailed-exitcode"]),
            pair("-detailed-exitcode", "--detailed-exitcode")
        );
        // Short options, and what is not one of trailkey's long options.
        for args in [
            &["-v", "plan"][..],
            &["-vv", "plan"],
            &["plan", "-c", "x.toml"],
            &["plan", "-output=x"],
            &["plan", "--out=x"],
            &["plan", "--", "-out=x"],
            &["plan", "-"],
        ] {
            assert_eq!(found(args), None, "{args:?}");
        }
        // clap refuses every one of them: the message replaces no valid
        // command line.
        for args in [
            &["trailkey", "plan", "-out=plan.bin"][..],
            &["trailkey", "plan", "-out", "x"],
            &["trailkey", "apply", "-auto-approve"],
            &["trailkey", "plan", "-detailed-exitcode"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn a_saved_plan_is_written_by_plan_out_and_read_by_apply_and_show() {
        let parsed = Cli::try_parse_from(["trailkey", "plan", "--out", "p.json"]).unwrap();
        assert!(
            matches!(parsed.command, Command::Plan { out: Some(p), .. } if p == Path::new("p.json"))
        );
        let parsed = Cli::try_parse_from(["trailkey", "plan", "--out=p.json"]).unwrap();
        assert!(
            matches!(parsed.command, Command::Plan { out: Some(p), .. } if p == Path::new("p.json"))
        );
        let parsed = Cli::try_parse_from(["trailkey", "apply", "p.json"]).unwrap();
        assert!(
            matches!(parsed.command, Command::Apply { plan: Some(p), .. } if p == Path::new("p.json"))
        );
        let parsed = Cli::try_parse_from(["trailkey", "apply", "--auto-approve"]).unwrap();
        assert!(matches!(parsed.command, Command::Apply { plan: None, .. }));
        let parsed =
            Cli::try_parse_from(["trailkey", "show", "p.json", "--format", "json"]).unwrap();
        assert!(matches!(
            parsed.command,
            Command::Show { file, format: Format::Json } if file == Path::new("p.json")
        ));
        assert!(Cli::try_parse_from(["trailkey", "show"]).is_err());
        assert!(Cli::try_parse_from(["trailkey", "plan", "--out"]).is_err());
    }

    #[test]
    fn expect_sha256_takes_a_plan_digest_and_only_with_a_saved_plan() {
        let hex = "89a1b808faaa1d0b33546955795462644b83b4eefb25d437d825b5fc68392547";
        let expected = |args: &[&str]| match Cli::try_parse_from(args) {
            Ok(Cli {
                command: Command::Apply { expect_sha256, .. },
                ..
            }) => Ok(expect_sha256),
            Ok(other) => panic!("not apply: {other:?}"),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(
            expected(&["trailkey", "apply", "p.plan", "--expect-sha256", hex]),
            Ok(Some(hex.to_owned()))
        );
        // Either case; kept lowercase, as trailkey prints it.
        assert_eq!(
            expected(&[
                "trailkey",
                "apply",
                "p.plan",
                &format!("--expect-sha256={}", hex.to_uppercase())
            ]),
            Ok(Some(hex.to_owned()))
        );
        assert_eq!(expected(&["trailkey", "apply", "p.plan"]), Ok(None));
        for bad in [
            &hex[1..],
            &format!("{hex}0"),
            &hex.replace('a', "g"),
            "",
            "sha256:00",
        ] {
            let e = expected(&["trailkey", "apply", "p.plan", "--expect-sha256", bad])
                .expect_err("refused");
            assert!(
                e.contains("is not a plan digest: expected the 64 hexadecimal digits that `trailkey plan --out` and `trailkey show` print"),
                "{bad}: {e}"
            );
        }
        // Without FILE there is no saved plan to check.
        let e = expected(&[
            "trailkey",
            "apply",
            "--auto-approve",
            "--expect-sha256",
            hex,
        ])
        .expect_err("refused");
        assert!(e.contains("[FILE]") || e.contains("<FILE>"), "{e}");
    }

    #[test]
    fn wait_for_delivery_takes_seconds_minutes_or_hours_and_defaults_to_fifteen_minutes() {
        let secs = |s| Ok(Some(Duration::from_secs(s)));
        assert_eq!(wait_for_delivery(&[]), Ok(None));
        assert_eq!(wait_for_delivery(&["--wait-for-delivery"]), secs(900));
        assert_eq!(
            wait_for_delivery(&["--wait-for-delivery", "--auto-approve"]),
            secs(900)
        );
        assert_eq!(wait_for_delivery(&["--wait-for-delivery=90s"]), secs(90));
        assert_eq!(wait_for_delivery(&["--wait-for-delivery", "90"]), secs(90));
        assert_eq!(wait_for_delivery(&["--wait-for-delivery=15m"]), secs(900));
        assert_eq!(wait_for_delivery(&["--wait-for-delivery=1h"]), secs(3600));
    }

    #[test]
    fn retry_timeouts_are_whole_seconds_up_to_an_hour() {
        for flag in ["--policy-retry-timeout", "--propagation-timeout"] {
            for ok in ["0", "120", "3600"] {
                let parsed = Cli::try_parse_from(["trailkey", "apply", flag, ok]);
                assert!(parsed.is_ok(), "{flag} {ok}: {parsed:?}");
            }
            for bad in [
                "3601",
                "100000000000",
                "18446744073709551615",
                "18446744073709551616",
                "-1",
                "1.5",
                "",
            ] {
                let arg = format!("{flag}={bad}");
                let e = Cli::try_parse_from(["trailkey", "apply", &arg])
                    .expect_err(bad)
                    .to_string();
                assert!(e.contains(flag), "{flag} {bad}: {e}");
                assert!(e.contains("3600"), "{flag} {bad}: {e}");
            }
        }
        assert_eq!(
            wait_for_delivery(&["--wait-for-delivery=24h"]),
            Ok(Some(MAX_DELIVERY_WAIT))
        );
    }

    #[test]
    fn a_bad_duration_is_a_command_line_error_that_says_what_is_expected() {
        for bad in [
            "abc",
            "-5s",
            "1.5m",
            "10d",
            "0s",
            "m",
            "",
            "99999999999999999h",
            "9223372036854775807s",
            "18446744073709551615",
            "25h",
            "86401",
        ] {
            let arg = format!("--wait-for-delivery={bad}");
            let e = wait_for_delivery(&[&arg]).expect_err(bad);
            assert!(e.contains("--wait-for-delivery"), "{bad}: {e}");
            if bad == "0s" {
                assert!(e.contains("longer than 0"), "{e}");
            } else if [
                "9223372036854775807s",
                "18446744073709551615",
                "25h",
                "86401",
            ]
            .contains(&bad)
            {
                assert!(e.contains("longer than the maximum, 24h"), "{bad}: {e}");
            } else {
                assert!(e.contains("e.g. 90s, 15m or 1h"), "{bad}: {e}");
            }
        }
    }
}
