//! trailkey's version, as `--version` prints it and a saved plan records it.

/// The release and the git revision it was built from.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (git ",
    env!("TRAILKEY_GIT_REV"),
    ")"
);
