//! Who signed a request: the role sessions and accounts that the
//! `sts:AssumeRole` answers in the traffic tell.

use super::xml_text;
use crate::proxy::{Request, Traffic};

/// A role session, as the `sts:AssumeRole` that made it shows it.
pub(super) struct Session {
    /// `arn:<partition>:iam::<account>:role/<path><name>`.
    pub(super) role_arn: String,
    pub(super) account: String,
    /// `arn:<partition>:sts::<account>:assumed-role/<name>/<session name>`.
    pub(super) arn: String,
}

/// The role session whose access key signed `request`, if a successful
/// `sts:AssumeRole` in the traffic gave that key.
pub(super) fn session_of(request: &Request, traffic: &Traffic) -> Option<Session> {
    let key = request
        .header("authorization")?
        .split("Credential=")
        .nth(1)?
        .split('/')
        .next()?
        .to_owned();
    traffic
        .exchanges
        .iter()
        .filter(|e| e.is("sts", "AssumeRole") && e.response.status == 200)
        .find_map(|e| {
            if xml_text(&e.response_text(), "AccessKeyId")? != key {
                return None;
            }
            let role_arn = form_value(&e.request.body, "RoleArn")?;
            let session = form_value(&e.request.body, "RoleSessionName")?;
            let parts: Vec<&str> = role_arn.splitn(6, ':').collect();
            let [_, partition, _, _, account, resource] = parts[..] else {
                return None;
            };
            let name = resource.strip_prefix("role/")?.rsplit('/').next()?;
            Some(Session {
                arn: format!("arn:{partition}:sts::{account}:assumed-role/{name}/{session}"),
                account: account.to_owned(),
                role_arn,
            })
        })
}

/// The value of `name` in a form-encoded body (`a=b&c=d`, percent-encoded).
pub(super) fn form_value(body: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let raw = text
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))?;
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The account a request acts in: the account of the assumed role whose
/// credentials signed it, else the signing access key ID.
pub(super) fn account_of(request: &Request, traffic: &Traffic) -> String {
    let key = request
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_owned();
    traffic
        .exchanges
        .iter()
        .filter(|e| e.is("sts", "AssumeRole") && e.response.status == 200)
        .find_map(|e| {
            let xml = e.response_text();
            (xml_text(&xml, "AccessKeyId")? == key)
                .then(|| xml_text(&xml, "Arn")?.split(':').nth(4).map(str::to_owned))?
        })
        .unwrap_or(key)
}

pub(super) fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}
