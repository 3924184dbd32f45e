//! TOML and serde errors turned into config errors that name the field,
//! its place in the file and the fix.

use std::path::Path;

use crate::error::Error;

/// Turns a TOML/serde error into a config error that names the field.
pub(super) fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> Error {
    let message = readable_message(e.message().trim());
    let start = e.span().map(|span| floor_char_boundary(text, span.start));
    let location = start.map(|start| {
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
            .chars()
            .count()
            + 1;
        format!("line {line}, column {col}")
    });
    let field = field_at(text, start);
    let hint = if message.starts_with("unknown field") {
        unknown_field_hint(&message)
    } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
        type_hint(field.as_deref())
    } else if message.starts_with("duplicate key") {
        "each key may appear once per table: remove the repeated one".to_owned()
    } else if message.starts_with("missing field") {
        "add it; see config/trailkey.example.toml".to_owned()
    } else {
        "fix the TOML syntax (strings in double quotes, tables as [name]); see config/trailkey.example.toml".to_owned()
    };
    Error::config(path, field, with_location(message, location), hint)
}

/// serde's messages name trailkey's internal structs; say "a table" instead.
fn readable_message(message: &str) -> String {
    let mut m = message.to_owned();
    for internal in [
        "struct RawConfig",
        "struct RawAccounts",
        "struct RawRoles",
        "struct RawTrail",
        "struct RawKey",
        "a map",
    ] {
        m = m.replace(internal, "a table");
    }
    m
}

/// What each field's value looks like, for a value of the wrong type.
pub(super) fn type_hint(field: Option<&str>) -> String {
    let hint = match field {
        Some("accounts") => {
            "[accounts] is a table: write [accounts] on its own line, then security_tooling = \"<12-digit ID>\" and log_archive = \"<12-digit ID>\" below it"
        }
        Some("roles") => {
            "[roles] is a table: write [roles] on its own line, then security_tooling = \"<role name or ARN>\" below it"
        }
        Some("trail") => {
            "[trail] is a table: write [trail] on its own line, then name = \"<trail name or ARN>\" below it"
        }
        Some("key") => {
            "[key] is a table: write [key] on its own line, then rotation = true below it"
        }
        Some("control_tower") => {
            "[control_tower] is a table: write [control_tower] on its own line, then landing_zone = true below it"
        }
        Some(f) if f.starts_with("key.tags") => {
            "tags is a table of strings: tags = { CostCenter = \"security\" }, or a [key.tags] table"
        }
        Some(
            "key.rotation"
            | "key.protect"
            | "trail.organization_trail"
            | "trail.allow_control_tower"
            | "trail.log_file_validation"
            | "trail.logging"
            | "control_tower.landing_zone",
        ) => "write true or false, without quotes",
        Some(f) if f.starts_with("accounts.") => {
            "an account ID is a quoted string of 12 digits, e.g. log_archive = \"222222222222\" (quotes keep leading zeros)"
        }
        Some("region") => "the Region is a quoted string, e.g. region = \"us-east-1\"",
        Some("ct_key_alias") => {
            "the alias is a quoted string, e.g. ct_key_alias = \"cloudtrail-org-key\""
        }
        Some(f) if f.starts_with("roles.") => {
            "a role is a quoted name or ARN, e.g. security_tooling = \"AWSControlTowerExecution\""
        }
        Some("trail.name") => "the trail is a quoted name or ARN, e.g. name = \"org-trail\"",
        Some("readers.accounts") => {
            "readers.accounts is a list of quoted 12-digit account IDs, e.g. accounts = [\"444455556666\"]"
        }
        Some("readers.principals") => {
            "readers.principals is a list of quoted role or user ARNs, e.g. principals = [\"arn:aws:iam::444455556666:role/SIEM\"]"
        }
        Some("key.rotation_period_days") => {
            "the rotation period is a whole number of days without quotes, from 90 to 2560, e.g. rotation_period_days = 180"
        }
        Some("key.admins") => {
            "key.admins is a list of quoted role or user ARNs, e.g. admins = [\"arn:aws:iam::111111111111:role/BreakGlass\"]"
        }
        _ => {
            "account IDs, names, the Region and the alias are quoted strings, e.g. log_archive = \"222222222222\"; rotation is true or false; see config/trailkey.example.toml"
        }
    };
    hint.to_owned()
}

/// The largest char boundary at or below `i` (clamped to the text).
pub(super) fn floor_char_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn with_location(message: String, location: Option<String>) -> String {
    match location {
        Some(loc) => format!("{message} (at {loc})"),
        None => message,
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`": suggests the
/// closest accepted key.
fn unknown_field_hint(message: &str) -> String {
    let quoted: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    let generic = "remove or rename the key; the accepted keys are listed above and in config/trailkey.example.toml".to_owned();
    let Some((unknown, expected)) = quoted.split_first() else {
        return generic;
    };
    expected
        .iter()
        .map(|k| (strsim::jaro_winkler(unknown, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map_or(generic, |(_, k)| {
            format!("did you mean `{k}`? Rename the key; see config/trailkey.example.toml")
        })
}

/// Best effort: the dotted key path (`accounts.log_archive`) at a byte offset,
/// from the nearest table header above it and the key on its line.
fn field_at(text: &str, offset: Option<usize>) -> Option<String> {
    let offset = offset?.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[line_start..line_end].trim();
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    if line.starts_with('[') {
        return Some(
            line.trim_matches(|c| c == '[' || c == ']')
                .trim()
                .to_owned(),
        );
    }
    let key = line.split('=').next()?.trim();
    let plausible = |k: &str| {
        k.chars()
            .all(|c| c.is_alphanumeric() || "_-.\"' :".contains(c))
    };
    if key.is_empty() || key.starts_with('#') || !plausible(key) {
        return table;
    }
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_owned(),
    })
}
