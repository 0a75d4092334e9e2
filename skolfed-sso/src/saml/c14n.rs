//! Exclusive XML canonicalization without comments
//! (<http://www.w3.org/2001/10/xml-exc-c14n#>), over a `roxmltree` document.
//!
//! Namespace declarations are rendered where they are visibly utilized (by the element's own
//! prefix or one of its attributes') and not already rendered with the same value by an
//! output ancestor, plus the prefixes of an `InclusiveNamespaces PrefixList`, which follow
//! the inclusive rule. Prefixes are taken from the source text (roxmltree resolves names to
//! namespace URIs), so the output is exactly what another implementation produces.
//! The traversal is iterative: a deep document cannot overflow the stack.

use roxmltree::{Node, NodeId, NodeType};

/// A c14n input the algorithm cannot render.
#[derive(Debug, thiserror::Error)]
#[error("cannot canonicalize: {0}")]
pub struct C14nError(pub(crate) String);

/// What to canonicalize.
pub struct Canonicalizer<'p> {
    /// A node left out with its subtree (the enveloped signature).
    pub exclude: Option<NodeId>,
    /// The `InclusiveNamespaces PrefixList` (`#default` for the default namespace).
    pub inclusive_prefixes: &'p [&'p str],
}

/// Output-ancestor state: which prefixes are rendered with which URI.
struct Rendered<'a> {
    bindings: Vec<(&'a str, &'a str)>,
}

impl<'a> Rendered<'a> {
    fn lookup(&self, prefix: &str) -> Option<&'a str> {
        self.bindings
            .iter()
            .rev()
            .find(|(p, _)| *p == prefix)
            .map(|(_, uri)| *uri)
    }
}

enum Step<'a, 'input> {
    Open(Node<'a, 'input>),
    Close(Node<'a, 'input>, usize),
}

impl Canonicalizer<'_> {
    /// Canonicalizes the whole document (`URI=""`): the root element and the processing
    /// instructions around it; comments are left out.
    pub fn document(
        &self,
        doc: &roxmltree::Document<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), C14nError> {
        let mut after_root = false;
        for child in doc.root().children() {
            match child.node_type() {
                NodeType::Element => {
                    self.subtree(child, out)?;
                    after_root = true;
                }
                NodeType::PI => {
                    if after_root {
                        out.push(b'\n');
                    }
                    pi(child, out);
                    if !after_root {
                        out.push(b'\n');
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Canonicalizes the element `top` and its descendants.
    pub fn subtree<'a>(&'a self, top: Node<'a, '_>, out: &mut Vec<u8>) -> Result<(), C14nError> {
        let mut rendered = Rendered {
            bindings: Vec::new(),
        };
        let mut stack = vec![Step::Open(top)];
        while let Some(step) = stack.pop() {
            match step {
                Step::Close(node, depth) => {
                    out.extend_from_slice(b"</");
                    out.extend_from_slice(qname(node)?.as_bytes());
                    out.push(b'>');
                    rendered.bindings.truncate(depth);
                }
                Step::Open(node) => {
                    if Some(node.id()) == self.exclude {
                        continue;
                    }
                    match node.node_type() {
                        NodeType::Element => {
                            let depth = rendered.bindings.len();
                            self.start_tag(node, &mut rendered, out)?;
                            stack.push(Step::Close(node, depth));
                            let children: Vec<_> = node.children().collect();
                            stack.extend(children.into_iter().rev().map(Step::Open));
                        }
                        NodeType::Text => escape_text(node.text().unwrap_or_default(), out),
                        NodeType::PI => pi(node, out),
                        NodeType::Comment | NodeType::Root => {}
                    }
                }
            }
        }
        Ok(())
    }

    fn start_tag<'a>(
        &'a self,
        node: Node<'a, '_>,
        rendered: &mut Rendered<'a>,
        out: &mut Vec<u8>,
    ) -> Result<(), C14nError> {
        let name = qname(node)?;
        let prefix = name.split_once(':').map_or("", |(p, _)| p);
        // (prefix, uri) candidates: visibly utilized first, then the inclusive list.
        let mut wanted: Vec<(&str, &str)> = Vec::new();
        wanted.push((prefix, node.tag_name().namespace().unwrap_or("")));
        let mut attributes = Vec::new();
        for attribute in node.attributes() {
            let range = attribute.range_qname();
            let attr_name = &node.document().input_text()[range];
            if let Some((attr_prefix, _)) = attr_name.split_once(':')
                && attr_prefix != "xml"
            {
                let uri = attribute.namespace().ok_or_else(|| {
                    C14nError(format!("attribute {attr_name} has an unbound prefix"))
                })?;
                wanted.push((attr_prefix, uri));
            }
            attributes.push((
                attribute.namespace().unwrap_or(""),
                attribute.name(),
                attr_name,
                attribute.value(),
            ));
        }
        for inclusive in self.inclusive_prefixes {
            let (p, uri) = if *inclusive == "#default" {
                ("", node.default_namespace())
            } else {
                (*inclusive, node.lookup_namespace_uri(Some(inclusive)))
            };
            if let Some(uri) = uri {
                wanted.push((p, uri));
            }
        }
        wanted.sort_unstable();
        wanted.dedup();
        let mut declarations: Vec<(&str, &str)> = Vec::new();
        for (p, uri) in wanted {
            if p == "xml" || declarations.iter().any(|(d, _)| *d == p) {
                continue;
            }
            let current = rendered.lookup(p);
            let differs = if p.is_empty() {
                current.unwrap_or("") != uri
            } else {
                current != Some(uri)
            };
            if differs {
                declarations.push((p, uri));
            }
        }
        out.push(b'<');
        out.extend_from_slice(name.as_bytes());
        for (p, uri) in &declarations {
            if p.is_empty() {
                out.extend_from_slice(b" xmlns=\"");
            } else {
                out.extend_from_slice(b" xmlns:");
                out.extend_from_slice(p.as_bytes());
                out.extend_from_slice(b"=\"");
            }
            escape_attribute(uri, out);
            out.push(b'"');
            rendered.bindings.push((p, uri));
        }
        attributes.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (_, _, attr_name, value) in attributes {
            out.push(b' ');
            out.extend_from_slice(attr_name.as_bytes());
            out.extend_from_slice(b"=\"");
            escape_attribute(value, out);
            out.push(b'"');
        }
        out.push(b'>');
        Ok(())
    }
}

/// The element's qualified name as written in the source.
pub(crate) fn qname<'input>(node: Node<'_, 'input>) -> Result<&'input str, C14nError> {
    let text = node.document().input_text();
    let start = node.range().start + 1;
    let rest = text
        .get(start..)
        .ok_or_else(|| C14nError("element outside the input".into()))?;
    let end = rest
        .find(|c: char| c.is_ascii_whitespace() || c == '>' || c == '/')
        .unwrap_or(rest.len());
    Ok(&rest[..end])
}

fn pi(node: Node<'_, '_>, out: &mut Vec<u8>) {
    if let Some(pi) = node.pi() {
        out.extend_from_slice(b"<?");
        out.extend_from_slice(pi.target.as_bytes());
        if let Some(value) = pi.value.filter(|v| !v.is_empty()) {
            out.push(b' ');
            out.extend_from_slice(value.as_bytes());
        }
        out.extend_from_slice(b"?>");
    }
}

fn escape_text(text: &str, out: &mut Vec<u8>) {
    let mut last = 0;
    for (at, byte) in text.bytes().enumerate() {
        let replacement: &[u8] = match byte {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\r' => b"&#xD;",
            _ => continue,
        };
        out.extend_from_slice(&text.as_bytes()[last..at]);
        out.extend_from_slice(replacement);
        last = at + 1;
    }
    out.extend_from_slice(&text.as_bytes()[last..]);
}

fn escape_attribute(text: &str, out: &mut Vec<u8>) {
    let mut last = 0;
    for (at, byte) in text.bytes().enumerate() {
        let replacement: &[u8] = match byte {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'"' => b"&quot;",
            b'\t' => b"&#x9;",
            b'\n' => b"&#xA;",
            b'\r' => b"&#xD;",
            _ => continue,
        };
        out.extend_from_slice(&text.as_bytes()[last..at]);
        out.extend_from_slice(replacement);
        last = at + 1;
    }
    out.extend_from_slice(&text.as_bytes()[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exc(xml: &str, pick: impl Fn(&roxmltree::Document) -> NodeId, inclusive: &[&str]) -> String {
        let doc = roxmltree::Document::parse(xml).unwrap();
        let node = doc.get_node(pick(&doc)).unwrap();
        let mut out = Vec::new();
        Canonicalizer {
            exclude: None,
            inclusive_prefixes: inclusive,
        }
        .subtree(node, &mut out)
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The example of the Exclusive XML Canonicalization recommendation, §2.2: the subtree of
    /// `n1:elem2`, whose ancestor declares `n0` and `n3` (only `n1` and the re-declared `n3`,
    /// each where it is used, appear).
    #[test]
    fn w3c_exclusive_example() {
        let xml = "<n0:local xmlns:n0=\"foo:bar\" xmlns:n3=\"ftp://example.org\">\n  <n1:elem2 xmlns:n1=\"http://example.net\" xml:lang=\"en\">\n    <n3:stuff xmlns:n3=\"ftp://example.org\"/>\n  </n1:elem2>\n</n0:local>";
        let elem2 = |d: &roxmltree::Document| d.root_element().first_element_child().unwrap().id();
        assert_eq!(
            exc(xml, elem2, &[]),
            "<n1:elem2 xmlns:n1=\"http://example.net\" xml:lang=\"en\">\n    <n3:stuff xmlns:n3=\"ftp://example.org\"></n3:stuff>\n  </n1:elem2>"
        );
        // With n3 in the inclusive list it is rendered on elem2 and not repeated on stuff.
        assert_eq!(
            exc(xml, elem2, &["n3"]),
            "<n1:elem2 xmlns:n1=\"http://example.net\" xmlns:n3=\"ftp://example.org\" xml:lang=\"en\">\n    <n3:stuff></n3:stuff>\n  </n1:elem2>"
        );
    }

    /// Attribute order (no namespace first, then by namespace URI), escaping, empty elements,
    /// comments dropped, the default namespace undeclared where an element leaves it.
    #[test]
    fn canonical_form_rules() {
        let xml = "<?xml version=\"1.0\"?>\n<a xmlns=\"urn:d\" xmlns:z=\"urn:a\" xmlns:b=\"urn:b\" z:x=\"1\" b:y=\"2\" c=\"t&#9;&quot;&lt;&#10;\"><!-- gone --><b:e/><f xmlns=\"\">x &amp; y &gt; &#13;</f></a>";
        let root = |d: &roxmltree::Document| d.root_element().id();
        assert_eq!(
            exc(xml, root, &[]),
            "<a xmlns=\"urn:d\" xmlns:b=\"urn:b\" xmlns:z=\"urn:a\" c=\"t&#x9;&quot;&lt;&#xA;\" z:x=\"1\" b:y=\"2\"><b:e></b:e><f xmlns=\"\">x &amp; y &gt; &#xD;</f></a>"
        );
    }
}
