//! The reconcile loop against the in-memory fake AWS: observe, plan, apply
//! and verify as a run does them, from any state the organization may be
//! in. The fixtures are in [`crate::testing`].

mod converge;
mod crash;
mod delegated;
mod delivery;
mod destroy;
mod hints;
mod key_search;
mod landing_zone;
mod log_bucket;
mod race;
mod rounds;
mod saved;
mod waits;
