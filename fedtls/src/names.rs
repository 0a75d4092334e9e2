//! Validated names from the metadata: endpoint tags and organization ids.

use std::fmt;
use std::str::FromStr;

/// An endpoint tag (`^[a-z0-9]{1,64}$`), used for discovery and authorization.
///
/// The Moa tags are held without allocating: an aggregate carries thousands of them.
#[derive(Clone)]
pub struct Tag(TagText);

#[derive(Clone)]
enum TagText {
    Known(&'static str),
    Custom(Box<str>),
}

impl PartialEq for Tag {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Tag {}

impl PartialEq<str> for Tag {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Tag {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::hash::Hash for Tag {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Must hash like `str` so that maps keyed by Tag can be queried with `&str`.
        self.as_str().hash(state);
    }
}

impl PartialOrd for Tag {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Tag {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// A tag that does not match `^[a-z0-9]{1,64}$`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid tag {0:?}: tags are 1 to 64 characters of a-z and 0-9")]
pub struct TagError(pub String);

/// The tags the Moa profile calls strengthened: every client needs one, every server at least one.
pub const MOA_STRENGTHENED_TAGS: [&str; 4] = ["egilv1", "bolv1", "userlistv1", "gnapv1"];

impl Tag {
    /// Validates and wraps a tag.
    pub fn new(text: &str) -> Result<Self, TagError> {
        let valid = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(
                match MOA_STRENGTHENED_TAGS.iter().find(|&&t| t == text) {
                    Some(known) => TagText::Known(known),
                    None => TagText::Custom(text.into()),
                },
            ))
        } else {
            Err(TagError(crate::pin::truncate_for_message(text)))
        }
    }

    /// The tag text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            TagText::Known(text) => text,
            TagText::Custom(text) => text,
        }
    }

    /// True for the Moa profile's strengthened tags (`egilv1`, `bolv1`, `userlistv1`, `gnapv1`).
    pub fn is_moa_strengthened(&self) -> bool {
        MOA_STRENGTHENED_TAGS.contains(&self.as_str())
    }
}

impl FromStr for Tag {
    type Err = TagError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::new(text)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.as_str())
    }
}

impl std::borrow::Borrow<str> for Tag {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Tag {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl serde::Serialize for Tag {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An organization id as metadata carries it (`organization_id`), and as policies name it.
///
/// The Moa profile uses `LLYYMMDDXXXX` (see [`OrganizationId::is_moa`]); other federations may
/// use other forms, so parsing is liberal: any text of 1 to [`OrganizationId::MAX_LEN`] bytes
/// without control characters. That keeps an id usable as a log field or an HTTP header value.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrganizationId(Box<str>);

/// Text that is not an organization id: empty, too long, or with control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid organization id {0:?}: organization ids are 1 to {max} bytes of text without control characters, e.g. SE2021004185",
    max = OrganizationId::MAX_LEN
)]
pub struct OrganizationIdError(pub String);

impl OrganizationId {
    /// The longest organization id accepted, in bytes.
    pub const MAX_LEN: usize = 256;

    /// Validates and wraps an organization id.
    pub fn new(text: &str) -> Result<Self, OrganizationIdError> {
        let valid =
            (1..=Self::MAX_LEN).contains(&text.len()) && !text.chars().any(char::is_control);
        if valid {
            Ok(Self(text.into()))
        } else {
            Err(OrganizationIdError(crate::pin::truncate_for_message(text)))
        }
    }

    /// The organization id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when the id has the Moa form `LLYYMMDDXXXX` ([`is_moa_organization_id`]).
    pub fn is_moa(&self) -> bool {
        is_moa_organization_id(&self.0)
    }
}

impl PartialEq<str> for OrganizationId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for OrganizationId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl FromStr for OrganizationId {
    type Err = OrganizationIdError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::new(text)
    }
}

impl fmt::Display for OrganizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OrganizationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrganizationId({})", self.0)
    }
}

impl std::borrow::Borrow<str> for OrganizationId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for OrganizationId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for OrganizationId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for OrganizationId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::new(&text).map_err(serde::de::Error::custom)
    }
}

/// True when `id` has the Moa form `LLYYMMDDXXXX`: an ISO 3166-1 alpha-2 country code in
/// capitals followed by a 10-digit organization number (for example `SE2021004185`).
pub fn is_moa_organization_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    bytes.len() == 12
        && bytes[..2].iter().all(u8::is_ascii_uppercase)
        && bytes[2..].iter().all(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_rules() {
        assert!(Tag::new("egilv1").unwrap().is_moa_strengthened());
        assert!(!Tag::new("custom").unwrap().is_moa_strengthened());
        for bad in ["", "EGIL", "egil-v1", "å", &"a".repeat(65)] {
            assert!(Tag::new(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(Tag::new(&"a".repeat(64)).is_ok());
        assert_eq!(Tag::new("egilv1").unwrap(), Tag::new("egilv1").unwrap());
        assert_ne!(Tag::new("egilv1").unwrap(), Tag::new("custom").unwrap());
        let mut map = std::collections::HashMap::new();
        map.insert(Tag::new("gnapv1").unwrap(), 1);
        map.insert(Tag::new("custom7").unwrap(), 2);
        assert_eq!(map.get("gnapv1"), Some(&1), "Tag hashes like str");
        assert_eq!(map.get("custom7"), Some(&2));
    }

    #[test]
    fn organization_ids_are_parsed_liberally() {
        for good in [
            "SE2021004185",
            "NO 123 456 789",
            "urn:oid:1.2.3",
            "x",
            &"a".repeat(256),
        ] {
            let id = OrganizationId::new(good).unwrap();
            assert_eq!(id.as_str(), good);
            assert_eq!(id.to_string().parse::<OrganizationId>().unwrap(), id);
        }
        for bad in ["", "SE2021004185\n", "a\u{7f}b", &"a".repeat(257)] {
            assert!(OrganizationId::new(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(OrganizationId::new("SE2021004185").unwrap().is_moa());
        assert!(!OrganizationId::new("SE-2021004185").unwrap().is_moa());
        let id: OrganizationId = serde_json::from_str("\"SE2021004185\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"SE2021004185\"");
        assert!(serde_json::from_str::<OrganizationId>("\"\"").is_err());
        let mut map = std::collections::HashMap::new();
        map.insert(id, 1);
        assert_eq!(
            map.get("SE2021004185"),
            Some(&1),
            "OrganizationId hashes like str"
        );
    }

    #[test]
    fn organization_id_rules() {
        assert!(is_moa_organization_id("SE2021004185"));
        for bad in [
            "se2021004185",
            "SE202100418",
            "SE20210041855",
            "SEX021004185",
            "",
        ] {
            assert!(!is_moa_organization_id(bad), "{bad:?}");
        }
    }
}
