//! What the tests hold AWS's behaviour to, shared by the real-AWS layer in
//! front of moto (`tests/support/aws_rules.rs`) and the in-memory fake
//! (`src/aws/fake.rs`, a test-only module of the library): the evaluation
//! of a KMS key policy ([`key_policy`]) and CloudTrail's check of a key
//! policy on `UpdateTrail` ([`cloudtrail_policy`]). A crate of its own, a
//! dev-dependency of trailkey, so that both use one copy; it depends on
//! serde_json only and shares no code with trailkey's policy handling, so
//! that it checks trailkey rather than agreeing with it.

pub mod cloudtrail_policy;
pub mod key_policy;
