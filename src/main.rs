//! `trailkey`: thin binary. Parses arguments, runs, and maps the one error
//! type to an exit status in one place: 0 success (no changes), 2 changes
//! present (`plan --detailed-exitcode`, `destroy --dry-run
//! --detailed-exitcode`), 1 error. A command-line error is 1
//! too (clap's own 2 would read as "drift" in a pipeline).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = arguments();
    let cli = match trailkey::cli::Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            // Terraform's one-dash spelling (`-out=FILE`): say how trailkey
            // spells it, instead of clap's "unexpected argument '-o'".
            if let Some((given, two_dashes)) =
                trailkey::cli::one_dash_long_option(&args).filter(|_| e.use_stderr())
            {
                let e = trailkey::Error::usage(
                    format!(
                        "{given}: trailkey's long options take two dashes, where Terraform's take one"
                    ),
                    format!("write {two_dashes}"),
                );
                trailkey::output::err(&e.render_styled());
                return ExitCode::from(1);
            }
            let _ = e.print();
            // --help and --version print to stdout and succeed.
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let status = match trailkey::run(cli) {
        Ok(trailkey::Status::Success) => ExitCode::SUCCESS,
        Ok(trailkey::Status::ChangesPresent) => ExitCode::from(2),
        Err(e) => {
            trailkey::output::err(&e.render_styled());
            return ExitCode::from(1);
        }
    };
    // What was printed is the result: if it did not all reach stdout, the
    // run failed, whatever it did.
    if let Some(why) = trailkey::output::stdout_failure() {
        let e = trailkey::Error::usage(
            format!("could not write the output to stdout: {why}"),
            "free space or choose another destination for stdout, then run again (the AWS side is as the run left it: `trailkey plan` shows it)",
        );
        trailkey::output::err(&e.render_styled());
        return ExitCode::from(1);
    }
    status
}

/// The command line; a binary named `bootstrap` (a Lambda custom runtime's
/// entry point, which Lambda starts without arguments) runs `lambda`.
fn arguments() -> Vec<std::ffi::OsString> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let named_bootstrap = args.first().is_some_and(|a| {
        std::path::Path::new(a).file_name() == Some(std::ffi::OsStr::new("bootstrap"))
    });
    if named_bootstrap && args.len() == 1 {
        return vec!["bootstrap".into(), "lambda".into()];
    }
    args
}
