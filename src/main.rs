//! `trailkey`: thin binary. Parses arguments, runs, and maps the one error
//! type to an exit status in one place: 0 success (no changes), 2 changes
//! present (`plan --detailed-exitcode`), 1 error.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = trailkey::cli::Cli::parse();
    match trailkey::run(cli) {
        Ok(trailkey::Status::Success) => ExitCode::SUCCESS,
        Ok(trailkey::Status::ChangesPresent) => ExitCode::from(2),
        Err(e) => {
            trailkey::output::err(&e.render_styled());
            ExitCode::from(1)
        }
    }
}
