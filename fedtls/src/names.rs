//! Validated names from the metadata: endpoint tags and Moa organization ids.

use std::fmt;
use std::str::FromStr;

/// An endpoint tag (`^[a-z0-9]{1,64}$`), used for discovery and authorization.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(Box<str>);

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
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid {
            Ok(Self(text.into()))
        } else {
            Err(TagError(crate::pin::truncate_for_message(text)))
        }
    }

    /// The tag text.
    pub fn as_str(&self) -> &str {
        &self.0
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
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.0)
    }
}

impl AsRef<str> for Tag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for Tag {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
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
    }

    #[test]
    fn organization_id_rules() {
        assert!(is_moa_organization_id("SE2021004185"));
        for bad in ["se2021004185", "SE202100418", "SE20210041855", "SEX021004185", ""] {
            assert!(!is_moa_organization_id(bad), "{bad:?}");
        }
    }
}
