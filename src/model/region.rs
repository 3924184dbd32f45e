//! AWS Regions and the partitions they belong to.

use std::fmt;

use serde::Serialize;

/// Every AWS Region trailkey accepts, with its partition, sorted by partition
/// and name.
///
/// Source: `botocore/data/partitions.json` of botocore 1.44.5 (the version
/// pinned in tests/requirements.txt), checked against the partition table
/// built into aws-sdk-kms 1.129.0 (`endpoint_lib.rs`, which lacks only
/// `me-west-1` and `sa-west-1`) and the AWS documentation page "AWS Region
/// billing codes". Taken on 2026-11-24. The `*-global` pseudo-Regions of those
/// tables are not Regions a trail can live in and are left out.
///
/// A Region AWS opens later is rejected with a hint to upgrade trailkey; add
/// it here (with its partition) when that happens.
pub const KNOWN_REGIONS: &[(&str, &str)] = &[
    // Commercial (aws)
    ("af-south-1", "aws"),     // Africa (Cape Town)
    ("ap-east-1", "aws"),      // Asia Pacific (Hong Kong)
    ("ap-east-2", "aws"),      // Asia Pacific (Taipei)
    ("ap-northeast-1", "aws"), // Asia Pacific (Tokyo)
    ("ap-northeast-2", "aws"), // Asia Pacific (Seoul)
    ("ap-northeast-3", "aws"), // Asia Pacific (Osaka)
    ("ap-south-1", "aws"),     // Asia Pacific (Mumbai)
    ("ap-south-2", "aws"),     // Asia Pacific (Hyderabad)
    ("ap-southeast-1", "aws"), // Asia Pacific (Singapore)
    ("ap-southeast-2", "aws"), // Asia Pacific (Sydney)
    ("ap-southeast-3", "aws"), // Asia Pacific (Jakarta)
    ("ap-southeast-4", "aws"), // Asia Pacific (Melbourne)
    ("ap-southeast-5", "aws"), // Asia Pacific (Malaysia)
    ("ap-southeast-6", "aws"), // Asia Pacific (New Zealand)
    ("ap-southeast-7", "aws"), // Asia Pacific (Thailand)
    ("ca-central-1", "aws"),   // Canada (Central)
    ("ca-west-1", "aws"),      // Canada West (Calgary)
    ("eu-central-1", "aws"),   // Europe (Frankfurt)
    ("eu-central-2", "aws"),   // Europe (Zurich)
    ("eu-north-1", "aws"),     // Europe (Stockholm)
    ("eu-south-1", "aws"),     // Europe (Milan)
    ("eu-south-2", "aws"),     // Europe (Spain)
    ("eu-west-1", "aws"),      // Europe (Ireland)
    ("eu-west-2", "aws"),      // Europe (London)
    ("eu-west-3", "aws"),      // Europe (Paris)
    ("il-central-1", "aws"),   // Israel (Tel Aviv)
    ("me-central-1", "aws"),   // Middle East (UAE)
    ("me-south-1", "aws"),     // Middle East (Bahrain)
    ("me-west-1", "aws"),      // Middle East (Saudi Arabia)
    ("mx-central-1", "aws"),   // Mexico (Central)
    ("sa-east-1", "aws"),      // South America (Sao Paulo)
    ("sa-west-1", "aws"),      // South America (Chile)
    ("us-east-1", "aws"),      // US East (N. Virginia)
    ("us-east-2", "aws"),      // US East (Ohio)
    ("us-west-1", "aws"),      // US West (N. California)
    ("us-west-2", "aws"),      // US West (Oregon)
    // China (aws-cn)
    ("cn-north-1", "aws-cn"),     // China (Beijing)
    ("cn-northwest-1", "aws-cn"), // China (Ningxia)
    // AWS European Sovereign Cloud (aws-eusc)
    ("eusc-de-east-1", "aws-eusc"), // Germany
    // GovCloud (aws-us-gov)
    ("us-gov-east-1", "aws-us-gov"), // AWS GovCloud (US-East)
    ("us-gov-west-1", "aws-us-gov"), // AWS GovCloud (US-West)
    // ISO partitions
    ("us-iso-east-1", "aws-iso"),     // US ISO East
    ("us-iso-west-1", "aws-iso"),     // US ISO West
    ("us-isob-east-1", "aws-iso-b"),  // US ISOB East (Ohio)
    ("us-isob-west-1", "aws-iso-b"),  // US ISOB West
    ("eu-isoe-west-1", "aws-iso-e"),  // EU ISOE West
    ("us-isof-east-1", "aws-iso-f"),  // US ISOF East
    ("us-isof-south-1", "aws-iso-f"), // US ISOF South
];

/// An AWS Region name such as `us-east-1`, one of [`KNOWN_REGIONS`], with
/// the partition it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    name: &'static str,
    partition: &'static str,
}

impl Serialize for Region {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name)
    }
}

/// Why a Region name was refused, as a message and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionError {
    pub message: String,
    pub hint: String,
}

impl Region {
    /// Accepts the Regions of [`KNOWN_REGIONS`] only.
    pub fn parse(s: &str) -> Option<Self> {
        Self::check(s).ok()
    }

    /// Like [`Region::parse`], saying why a name is refused: not the shape of
    /// a Region name, or well-formed but not a Region this build knows.
    pub fn check(s: &str) -> Result<Self, RegionError> {
        if let Some(&(name, partition)) = KNOWN_REGIONS.iter().find(|(name, _)| *name == s) {
            return Ok(Region { name, partition });
        }
        if !Self::well_formed(s) {
            return Err(RegionError {
                message: format!("{s:?} is not an AWS Region name"),
                hint: "use the Region code of the trail's home Region, such as region = \"us-east-1\" (not the display name \"US East (N. Virginia)\")".to_owned(),
            });
        }
        let suggestion = Self::nearest(s)
            .map(|r| format!("did you mean region = \"{r}\"? Otherwise, "))
            .unwrap_or_default();
        Err(RegionError {
            message: format!(
                "{s:?} looks like a Region name, but it is not one of the {} AWS Regions this trailkey {} knows",
                KNOWN_REGIONS.len(),
                env!("CARGO_PKG_VERSION"),
            ),
            hint: format!(
                "{suggestion}list the Regions of your account with `aws ec2 describe-regions --all-regions --query \"Regions[].RegionName\"`; a Region newer than this build of trailkey needs a newer trailkey"
            ),
        })
    }

    /// The shape of every Region name: lowercase words separated by `-`,
    /// ending in a number.
    fn well_formed(s: &str) -> bool {
        let parts: Vec<&str> = s.split('-').collect();
        let Some((last, words)) = parts.split_last() else {
            return false;
        };
        parts.len() >= 3
            && !last.is_empty()
            && last.bytes().all(|b| b.is_ascii_digit())
            && words
                .iter()
                .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
    }

    /// A known Region that differs from `s` by a typo (at most two edits) and
    /// has the same number, e.g. `us-esat-1` -> `us-east-1`.
    fn nearest(s: &str) -> Option<&'static str> {
        let number = s.rsplit('-').next()?;
        KNOWN_REGIONS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| name.rsplit('-').next() == Some(number))
            .map(|name| (strsim::damerau_levenshtein(s, name), name))
            .filter(|(d, _)| *d <= 2)
            .min()
            .map(|(_, name)| name)
    }

    pub fn as_str(&self) -> &'static str {
        self.name
    }
    /// The partition the Region belongs to; ARNs are built from it, never hard-coded.
    pub fn partition(&self) -> &'static str {
        self.partition
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_regions_are_well_formed_unique_and_in_the_right_partition() {
        let mut seen = std::collections::BTreeSet::new();
        for (name, partition) in KNOWN_REGIONS {
            assert!(Region::well_formed(name), "{name}");
            assert!(seen.insert(name), "{name} listed twice");
            let expected = [
                ("us-gov-", "aws-us-gov"),
                ("cn-", "aws-cn"),
                ("us-isob-", "aws-iso-b"),
                ("us-isof-", "aws-iso-f"),
                ("us-iso-", "aws-iso"),
                ("eu-isoe-", "aws-iso-e"),
                ("eusc-", "aws-eusc"),
            ]
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .map_or("aws", |(_, p)| p);
            assert_eq!(*partition, expected, "{name}");
            let region = Region::parse(name).unwrap();
            assert_eq!(region.as_str(), *name);
            assert_eq!(region.partition(), *partition);
        }
        assert!(KNOWN_REGIONS.len() >= 48);
    }

    #[test]
    fn region_check_tells_a_bad_shape_from_an_unknown_region_and_suggests_typos() {
        let shape = Region::check("US East 1").unwrap_err();
        assert!(
            shape.message.contains("not an AWS Region name"),
            "{shape:?}"
        );
        let unknown = Region::check("us-east-9").unwrap_err();
        assert!(unknown.message.contains("looks like a Region name"));
        assert!(unknown.hint.contains("aws ec2 describe-regions"));
        assert!(unknown.hint.contains("newer trailkey"));
        assert!(!unknown.hint.contains("did you mean"));
        let typo = Region::check("us-esat-1").unwrap_err();
        assert!(
            typo.hint
                .starts_with("did you mean region = \"us-east-1\"?"),
            "{typo:?}"
        );
        assert!(Region::check("moon-base-1").is_err());
        assert!(Region::check("").is_err());
        assert!(
            Region::check("aws-global").is_err(),
            "pseudo-Regions are refused"
        );
    }
}
