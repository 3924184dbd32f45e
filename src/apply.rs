//! Apply: execute exactly the steps of a [`Plan`], in order, through the AWS
//! traits. Nothing is read or decided here; the plan already says what to do.
//!
//! Order matters and is the plan's: the key (created with its policy and
//! tags in one `CreateKey`, so a crash never leaves an untagged or
//! policy-less key), then the alias, the policy, rotation, and last the
//! trail, which CloudTrail only accepts once the key policy lets it in.
//!
//! If a step fails, the steps before it stay done and the error says so;
//! running `apply` again observes that state and converges.

use crate::aws::{KeyInfo, KeyStore, Management};
use crate::error::Error;
use crate::plan::{Address, Plan, Step};

/// What one step did, for the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Done {
    pub address: &'static str,
    pub operation: &'static str,
    pub target: String,
}

/// Runs the plan's steps. `progress` is told about each step before it runs.
pub async fn apply<M: Management, K: KeyStore>(
    plan: &Plan,
    mgmt: &M,
    keys: &K,
    mut progress: impl FnMut(Address, &Step),
) -> Result<Vec<Done>, Error> {
    let mut key: Option<KeyInfo> = plan.key.clone();
    let mut done = Vec::new();
    for (address, step) in plan.steps() {
        progress(address, step);
        let result = run_step(step, mgmt, keys, &mut key).await;
        match result {
            Ok(target) => done.push(Done {
                address: address.as_str(),
                operation: step.operation(),
                target,
            }),
            Err(e) => {
                let finished = if done.is_empty() {
                    "no change was made before it".to_owned()
                } else {
                    format!(
                        "done before it: {}",
                        done.iter()
                            .map(|d| format!("{} {}", d.operation, d.target))
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                };
                return Err(Error::aws(
                    format!(
                        "apply stopped at {} ({}); {finished}. Running apply again continues from there",
                        address.as_str(),
                        step.operation()
                    ),
                    e,
                ));
            }
        }
    }
    Ok(done)
}

async fn run_step<M: Management, K: KeyStore>(
    step: &Step,
    mgmt: &M,
    keys: &K,
    key: &mut Option<KeyInfo>,
) -> Result<String, crate::aws::AwsError> {
    if let Step::CreateKey(new) = step {
        let created = keys.create_key(new).await?;
        let arn = created.arn.clone();
        *key = Some(created);
        return Ok(arn);
    }
    let k = key
        .as_ref()
        .expect("plan invariant: steps on the key follow CreateKey or an existing key");
    match step {
        Step::CreateKey(_) => unreachable!("handled above"),
        Step::CancelKeyDeletion => keys.cancel_key_deletion(&k.key_id).await?,
        Step::EnableKey => keys.enable_key(&k.key_id).await?,
        Step::TagKey(tags) => keys.tag_key(&k.key_id, tags).await?,
        Step::CreateAlias(alias) => keys.create_alias(alias, &k.key_id).await?,
        Step::UpdateAlias(alias) => keys.update_alias(alias, &k.key_id).await?,
        Step::DeleteAlias(alias) => {
            keys.delete_alias(alias).await?;
            return Ok(alias.clone());
        }
        Step::PutKeyPolicy(doc) => keys.put_key_policy(&k.key_id, doc).await?,
        Step::EnableRotation => keys.enable_rotation(&k.key_id).await?,
        Step::UpdateTrail(trail) => {
            mgmt.set_trail_key(trail, &k.arn).await?;
            return Ok(format!("{trail} -> {}", k.arn));
        }
    }
    Ok(k.arn.clone())
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
