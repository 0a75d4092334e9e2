//! Bulk bodies `{"data":[…]}` packed so none exceeds the API's request limit.

/// The Provisioning API's limit on one request body: 200 KB (taken as 200 × 1000 bytes, the
/// stricter reading).
pub const MAX_REQUEST_BYTES: usize = 200_000;

/// `{"data":[` + `]}`.
const ENVELOPE: usize = r#"{"data":[]}"#.len();

/// One bulk request: the body and the indices (into the packed items) it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bulk {
    /// The indices of the items in this body, in input order.
    pub items: Vec<usize>,
    /// The JSON body.
    pub body: String,
}

/// The result of [`pack`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packed {
    /// Bodies, each at most the limit.
    pub bulks: Vec<Bulk>,
    /// Indices of items that alone exceed the limit (never sent).
    pub too_large: Vec<usize>,
}

/// Packs serialised JSON items (each one array element) into `{"data":[…]}` bodies of at most
/// `max_bytes` bytes, filling each body in input order before starting the next.
pub fn pack(items: &[String], max_bytes: usize) -> Packed {
    let mut packed = Packed::default();
    let mut current = Bulk {
        items: Vec::new(),
        body: String::from(r#"{"data":["#),
    };
    for (i, item) in items.iter().enumerate() {
        if ENVELOPE + item.len() > max_bytes {
            packed.too_large.push(i);
            continue;
        }
        let separator = usize::from(!current.items.is_empty());
        if current.body.len() + separator + item.len() + 2 > max_bytes {
            finish(&mut packed, &mut current);
        }
        if !current.items.is_empty() {
            current.body.push(',');
        }
        current.body.push_str(item);
        current.items.push(i);
    }
    finish(&mut packed, &mut current);
    packed
}

fn finish(packed: &mut Packed, current: &mut Bulk) {
    if current.items.is_empty() {
        return;
    }
    let mut done = std::mem::replace(
        current,
        Bulk {
            items: Vec::new(),
            body: String::from(r#"{"data":["#),
        },
    );
    done.body.push_str("]}");
    packed.bulks.push(done);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: usize) -> String {
        format!("\"{}\"", "x".repeat(n.saturating_sub(2)))
    }

    #[test]
    fn bodies_never_exceed_the_limit_and_keep_order() {
        let items: Vec<String> = (0..500).map(|i| item(50 + (i * 37) % 400)).collect();
        let packed = pack(&items, 2_000);
        assert!(packed.too_large.is_empty());
        let mut seen: Vec<usize> = Vec::new();
        for b in &packed.bulks {
            assert!(b.body.len() <= 2_000, "{}", b.body.len());
            let v: serde_json::Value = serde_json::from_str(&b.body).unwrap();
            assert_eq!(v["data"].as_array().unwrap().len(), b.items.len());
            seen.extend(&b.items);
        }
        assert_eq!(seen, (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn an_exact_fit_is_one_body() {
        let items = vec![item(40), item(40)];
        let exact = ENVELOPE + 40 + 1 + 40;
        let packed = pack(&items, exact);
        assert_eq!(packed.bulks.len(), 1);
        assert_eq!(packed.bulks[0].body.len(), exact);
        assert_eq!(pack(&items, exact - 1).bulks.len(), 2);
    }

    #[test]
    fn an_item_over_the_limit_is_reported_not_sent() {
        let items = vec![item(10), item(500), item(10)];
        let packed = pack(&items, 100);
        assert_eq!(packed.too_large, vec![1]);
        assert_eq!(packed.bulks.len(), 1);
        assert_eq!(packed.bulks[0].items, vec![0, 2]);
        assert!(pack(&[], 100).bulks.is_empty());
    }
}
