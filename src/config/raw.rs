//! The config file exactly as written: serde reads it into these structs,
//! which reject unknown keys; [`super::validate`] checks every value.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The config file exactly as written. Unknown keys are an error.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub region: Option<String>,
    pub ct_key_alias: Option<String>,
    pub accounts: Option<RawAccounts>,
    #[serde(default)]
    pub roles: RawRoles,
    pub trail: Option<RawTrail>,
    #[serde(default)]
    pub key: RawKey,
    #[serde(default)]
    pub readers: RawReaders,
    #[serde(default)]
    pub control_tower: RawControlTower,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAccounts {
    pub security_tooling: Option<String>,
    pub log_archive: Option<String>,
    pub management: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoles {
    pub security_tooling: Option<String>,
    pub management: Option<String>,
    pub log_archive: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrail {
    pub name: Option<String>,
    /// `false`: the trail is not an organization trail, on purpose.
    pub organization_trail: Option<bool>,
    /// `true`: change a trail managed by Control Tower anyway.
    pub allow_control_tower: Option<bool>,
    /// `true`: start a stopped trail; `false`: leave logging as it is.
    pub logging: Option<bool>,
    /// `true`: turn log-file validation on; `false`: leave it as it is.
    pub log_file_validation: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    pub rotation: Option<bool>,
    /// Days between automatic rotations (KMS: 90 to 2560).
    pub rotation_period_days: Option<i64>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// `true`: deny disabling, deleting and un-rotating the key to all but
    /// trailkey's role and `admins`.
    pub protect: Option<bool>,
    pub admins: Option<Vec<String>>,
}

/// `[readers]`: who else may decrypt the log files.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReaders {
    pub accounts: Option<Vec<String>>,
    pub principals: Option<Vec<String>>,
}

/// `[control_tower]`: how trailkey works with a Control Tower landing zone.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawControlTower {
    /// `true`: encrypt Control Tower's own trail through the landing zone,
    /// with a key in the management account.
    pub landing_zone: Option<bool>,
}
