//! What a plan reports but does not change.

use serde::{Deserialize, Serialize};

/// Something the plan cannot or will not change, reported to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub level: Level,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The setup is broken (the trail cannot deliver logs, or they cannot
    /// be read) and apply cannot fix it: `plan --detailed-exitcode` and
    /// `apply` exit 1.
    Error,
    /// Endangers log delivery, or may break it; trailkey will not fix it.
    Warning,
    /// Worth knowing; nothing is wrong.
    Note,
}
