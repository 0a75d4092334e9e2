//! One line from an error and its causes, for messages people read.

/// An error and its causes, `: `-separated, skipping a cause whose text is already in the
/// line. HTTP and TLS libraries keep the useful part (a refused certificate, a reset
/// connection) in the source chain, so every member-facing message goes through this.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut chain = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !text.is_empty() && !chain.contains(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        cause = e.source();
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Layer(&'static str, #[source] Option<Box<Layer>>);

    #[test]
    fn causes_are_joined_and_repeats_skipped() {
        let inner = Layer("connection reset", None);
        let middle = Layer(
            "client error (Connect): connection reset",
            Some(Box::new(inner)),
        );
        let outer = Layer("request failed", Some(Box::new(middle)));
        assert_eq!(
            error_chain(&outer),
            "request failed: client error (Connect): connection reset"
        );
    }
}
