//! The vocabulary every other module speaks: identifiers of AWS things
//! (accounts, Regions, aliases, trails, roles, principals), the tags
//! trailkey puts on its keys, IAM's pattern matching, what trailkey
//! observed in AWS, and the findings a plan reports. It depends only on the
//! AWS data types of [`crate::aws`].

mod finding;
mod ids;
mod observed;
pub mod pattern;
mod region;
pub mod tags;

pub use finding::{Finding, Level};
pub(crate) use ids::valid_iam_name;
pub use ids::{AccountId, AliasName, Principal, PrincipalKind, RoleRef, TrailRef};
pub use observed::{FoundBy, Observed, ObservedKey, ObservedLandingZone, OnDemand, Runner};
pub use region::{KNOWN_REGIONS, Region, RegionError};
