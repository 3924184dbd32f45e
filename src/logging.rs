//! `-v` / `-vv`: structured logs (`tracing`) on stderr.
//!
//! `-v` shows what trailkey does (observe, plan, apply steps); `-vv` adds
//! every AWS call (service, operation, HTTP status) and the SDK's own
//! informational events. Never the SDK's debug or trace events: those can
//! contain signed request headers, and credentials never appear in output.

use std::io::IsTerminal;

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the subscriber for `verbosity` (the number of `-v`); 0: none.
pub fn init(verbosity: u8) {
    let targets = match verbosity {
        0 => return,
        1 => Targets::new().with_target("trailkey", Level::INFO),
        _ => Targets::new()
            .with_target("trailkey", Level::DEBUG)
            .with_target("aws_config", Level::INFO)
            .with_target("aws_smithy_runtime", Level::INFO)
            .with_target("aws_runtime", Level::INFO),
    };
    let colour = crate::output::color_choice(std::io::stderr().is_terminal())
        != anstream::ColorChoice::Never;
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(colour),
        )
        .with(targets)
        .try_init();
}
