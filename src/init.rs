//! `trailkey init`: discover the organization and write a commented config.

use std::path::Path;

use crate::Status;
use crate::aws::Management;
use crate::config::Region;
use crate::error::Error;

/// Reads the organization and writes a config to `path`.
pub async fn run<M: Management>(
    _mgmt: &M,
    _region: &Region,
    path: &Path,
    _force: bool,
) -> Result<Status, Error> {
    Err(Error::usage(
        format!("init is being written; {} was not created", path.display()),
        "write the config by hand from config/trailkey.example.toml",
    ))
}
