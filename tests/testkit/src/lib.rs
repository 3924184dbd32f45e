//! trailkey's test kit: what its tests run the real binary with, and what
//! they hold AWS's behaviour to. A dev-only crate of the workspace.
//!
//! - [`Moto`]: a moto server per test, seeded and read back by the boto3
//!   fixture (`fixture.py`, beside this crate's `Cargo.toml`);
//! - [`Run`]: one run of the `trailkey` binary, pointed at moto (through the
//!   real-AWS layer by default) through the standard AWS environment only,
//!   with the default (management account) credentials or a member role's
//!   ([`Run::as_account`]);
//! - [`proxy`]: a recording proxy in front of moto, whose [`rules`] answer as
//!   real AWS does where moto is lenient, and answer the APIs moto lacks
//!   (the Account Management API's `ListRegions`, Control Tower's landing
//!   zone);
//! - [`lambda_api`]: a local Lambda Runtime API to run the binary as a
//!   custom runtime against; it and the proxy share one HTTP server
//!   ([`http`]);
//! - [`emf`]: CloudWatch's embedded metric format, which the function's
//!   metric lines are held to;
//! - [`identity_policy`]: the evaluation of IAM identity policies, which the
//!   rules apply to the sessions of roles a test attached policies to
//!   ([`rules::World::attach_identity_policy`]);
//! - [`key_policy`] and [`cloudtrail_policy`]: the evaluation of a KMS key
//!   policy and CloudTrail's check of one on `UpdateTrail`, shared by the
//!   rules and the in-memory fake (`src/aws/fake.rs`, a test-only module of
//!   trailkey's library, which has this crate as a dev-dependency). They
//!   depend on serde_json only and share no code with trailkey's policy
//!   handling, so that they check trailkey rather than agree with it.

pub mod cloudtrail_policy;
pub mod emf;
pub mod http;
pub mod identity_policy;
pub mod key_policy;
pub mod lambda_api;
mod moto;
pub mod proxy;
pub mod rules;
mod run;

pub use moto::*;
pub use proxy::Proxy;
pub use run::{Run, isolate_aws_env};
