//! Loading objects from JSON files into a [`crate::Store`] (a school loads its data) and
//! writing them back out.

// IMPLEMENTATION NOTE (skeleton): see the issue brief.
