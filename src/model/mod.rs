//! The vocabulary every other module speaks: identifiers of AWS things
//! (accounts, Regions, aliases, trails, roles, principals), the tags
//! trailkey puts on its keys, and IAM's pattern matching. It depends on
//! nothing else of trailkey's.

mod ids;
pub mod pattern;
mod region;
pub mod tags;

pub(crate) use ids::valid_iam_name;
pub use ids::{AccountId, AliasName, Principal, PrincipalKind, RoleRef, TrailRef};
pub use region::{KNOWN_REGIONS, Region, RegionError};
