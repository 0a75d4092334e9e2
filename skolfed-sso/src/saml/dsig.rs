//! XML-DSig verification of the aggregate's enveloped signature.

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine as _;
use roxmltree::{Document, Node};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::c14n::{C14nError, Canonicalizer};
use super::entities::{Aggregate, read_aggregate};

pub(crate) const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub(crate) const MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

/// The largest aggregate accepted (the national one is about 10 MB).
pub const MAX_AGGREGATE_BYTES: usize = 64 * 1024 * 1024;
/// The most XML nodes in one aggregate (10 MB of metadata has well under a million).
const MAX_NODES: u32 = 5_000_000;

/// Why an aggregate was refused. Nothing of a refused aggregate is used.
#[derive(Debug, thiserror::Error)]
pub enum SamlError {
    /// The operator's certificate could not be read.
    #[error("the signing certificate is not usable: {0}")]
    Certificate(String),
    /// Larger than [`MAX_AGGREGATE_BYTES`].
    #[error("the aggregate is {0} bytes, more than the limit of {MAX_AGGREGATE_BYTES}")]
    TooLarge(usize),
    /// Not UTF-8.
    #[error("the aggregate is not UTF-8")]
    NotUtf8(#[source] std::str::Utf8Error),
    /// A DOCTYPE (and with it entity declarations) is never accepted.
    #[error("the aggregate has a DOCTYPE; SAML metadata must not declare a DTD or entities")]
    Doctype,
    /// Not well-formed XML (or over the node limit).
    #[error("the aggregate is not well-formed XML")]
    Xml(#[source] roxmltree::Error),
    /// The root is not an `md:EntitiesDescriptor` or `md:EntityDescriptor`.
    #[error("the root element is {0}, not md:EntitiesDescriptor")]
    Root(String),
    /// No signature, several, or one that is not where it must be.
    #[error("signature: {0}")]
    SignaturePlacement(String),
    /// The signature uses something other than exclusive c14n, RSA-SHA256, SHA-256 and the
    /// enveloped-signature transform, or is malformed.
    #[error("unsupported or malformed signature: {0}")]
    SignatureForm(String),
    /// The signature does not cover the root element.
    #[error("the signature does not cover the root element: {0}")]
    NotCoveringRoot(String),
    /// Canonicalization failed.
    #[error(transparent)]
    C14n(#[from] C14nError),
    /// The digest of the root element does not match: the content was changed.
    #[error("the digest does not match: the metadata was changed after it was signed")]
    DigestMismatch,
    /// The signature value does not verify with the operator's certificate.
    #[error(
        "the signature does not verify with the given certificate (a changed SignedInfo or the wrong certificate)"
    )]
    BadSignature,
    /// `validUntil` is missing, malformed or past.
    #[error("validUntil: {0}")]
    Validity(String),
}

/// The federation operator's metadata-signing certificate.
#[derive(Debug, Clone)]
pub struct SigningCertificate {
    der: CertificateDer<'static>,
    public_key: Vec<u8>,
}

impl SigningCertificate {
    /// Reads the first certificate of a PEM file's contents.
    pub fn from_pem(pem: &[u8]) -> Result<Self, SamlError> {
        let der = CertificateDer::from_pem_slice(pem)
            .map_err(|e| SamlError::Certificate(format!("no PEM certificate: {e}")))?;
        Self::from_der(der)
    }

    /// Reads a DER certificate; its key must be RSA.
    pub fn from_der(der: CertificateDer<'static>) -> Result<Self, SamlError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
            .map_err(|e| SamlError::Certificate(format!("not an X.509 certificate: {e}")))?;
        let spki = &cert.tbs_certificate.subject_pki;
        // rsaEncryption
        if spki.algorithm.algorithm.to_id_string() != "1.2.840.113549.1.1.1" {
            return Err(SamlError::Certificate(
                "the certificate's key is not RSA (Skolfederation signs with RSA-SHA256)".into(),
            ));
        }
        let public_key = spki.subject_public_key.data.to_vec();
        Ok(Self { der, public_key })
    }

    /// The certificate, DER.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }
}

/// What verification accepts.
#[derive(Debug, Clone, Copy)]
pub struct VerifyOptions {
    /// Now, in Unix seconds (a past `validUntil` is refused).
    pub now: i64,
}

/// Verifies the aggregate's signature with `certificate`, checks `validUntil`, and reads the
/// signed root element into an [`Aggregate`].
pub fn verify_aggregate(
    bytes: &[u8],
    certificate: &SigningCertificate,
    options: VerifyOptions,
) -> Result<Aggregate, SamlError> {
    if bytes.len() > MAX_AGGREGATE_BYTES {
        return Err(SamlError::TooLarge(bytes.len()));
    }
    let text = std::str::from_utf8(bytes).map_err(SamlError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if has_doctype(text) {
        return Err(SamlError::Doctype);
    }
    let doc = Document::parse_with_options(
        text,
        roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: MAX_NODES,
            ..Default::default()
        },
    )
    .map_err(SamlError::Xml)?;
    let root = doc.root_element();
    if root.tag_name().namespace() != Some(MD)
        || !matches!(
            root.tag_name().name(),
            "EntitiesDescriptor" | "EntityDescriptor"
        )
    {
        return Err(SamlError::Root(format!(
            "{{{}}}{}",
            root.tag_name().namespace().unwrap_or(""),
            root.tag_name().name()
        )));
    }
    verify_root_signature(&doc, root, certificate)?;
    let valid_until = root.attribute("validUntil").ok_or_else(|| {
        SamlError::Validity(
            "missing on the root: metadata without an end of validity could be replayed forever"
                .into(),
        )
    })?;
    let valid_until = parse_datetime(valid_until).ok_or_else(|| {
        SamlError::Validity(format!(
            "{valid_until:?} is not an xs:dateTime with a time zone"
        ))
    })?;
    if valid_until <= options.now {
        return Err(SamlError::Validity(format!(
            "the metadata expired at {}; fetch a fresh copy",
            format_time(valid_until)
        )));
    }
    Ok(read_aggregate(root, valid_until, options.now))
}

fn has_doctype(text: &str) -> bool {
    // Anything before the root element that declares a DTD. roxmltree refuses non-empty DTDs
    // already; an empty one is refused here too.
    let head_end = text
        .match_indices('<')
        .find(|(at, _)| {
            let next = text.as_bytes().get(at + 1).copied();
            !matches!(next, Some(b'?') | Some(b'!'))
        })
        .map_or(text.len(), |(at, _)| at);
    text[..head_end].contains("<!DOCTYPE")
}

fn is(node: Node<'_, '_>, namespace: &str, name: &str) -> bool {
    node.is_element()
        && node.tag_name().namespace() == Some(namespace)
        && node.tag_name().name() == name
}

/// The single element child of `parent` named `{DS}name`, refusing none or several.
fn only_child<'a, 'i>(parent: Node<'a, 'i>, name: &str) -> Result<Node<'a, 'i>, SamlError> {
    let mut found = parent.children().filter(|c| is(*c, DS, name));
    let first = found
        .next()
        .ok_or_else(|| SamlError::SignatureForm(format!("no ds:{name}")))?;
    if found.next().is_some() {
        return Err(SamlError::SignatureForm(format!("more than one ds:{name}")));
    }
    Ok(first)
}

fn algorithm<'a>(node: Node<'a, '_>) -> Result<&'a str, SamlError> {
    node.attribute("Algorithm").ok_or_else(|| {
        SamlError::SignatureForm(format!("ds:{} without Algorithm", node.tag_name().name()))
    })
}

/// The PrefixList of an exclusive-c14n algorithm element's `InclusiveNamespaces`, if any.
fn inclusive_prefixes<'a>(method: Node<'a, '_>) -> Result<Vec<&'a str>, SamlError> {
    let mut prefixes = Vec::new();
    for child in method.children().filter(Node::is_element) {
        if child.tag_name().namespace() == Some(EXC_C14N)
            && child.tag_name().name() == "InclusiveNamespaces"
        {
            prefixes.extend(
                child
                    .attribute("PrefixList")
                    .unwrap_or("")
                    .split_ascii_whitespace(),
            );
        } else {
            return Err(SamlError::SignatureForm(format!(
                "unexpected {} in the canonicalization method",
                child.tag_name().name()
            )));
        }
    }
    Ok(prefixes)
}

fn verify_root_signature(
    doc: &Document<'_>,
    root: Node<'_, '_>,
    certificate: &SigningCertificate,
) -> Result<(), SamlError> {
    // The signature must be the root's own: the first element child (as the SAML metadata
    // schema places it), the only ds:Signature among its children.
    let signatures: Vec<_> = root
        .children()
        .filter(|c| is(*c, DS, "Signature"))
        .collect();
    let signature = match signatures.as_slice() {
        [] => {
            return Err(SamlError::SignaturePlacement(
                "the root element has no ds:Signature child (unsigned metadata, or a signature moved elsewhere)".into(),
            ));
        }
        [one] => *one,
        _ => {
            return Err(SamlError::SignaturePlacement(
                "the root element has more than one ds:Signature".into(),
            ));
        }
    };
    if root.first_element_child().map(|c| c.id()) != Some(signature.id()) {
        return Err(SamlError::SignaturePlacement(
            "ds:Signature is not the root element's first child".into(),
        ));
    }
    let signed_info = only_child(signature, "SignedInfo")?;
    if signature.first_element_child().map(|c| c.id()) != Some(signed_info.id()) {
        return Err(SamlError::SignatureForm(
            "ds:SignedInfo is not first in ds:Signature".into(),
        ));
    }
    let c14n_method = only_child(signed_info, "CanonicalizationMethod")?;
    if algorithm(c14n_method)? != EXC_C14N {
        return Err(SamlError::SignatureForm(format!(
            "canonicalization {} (only exclusive c14n without comments is accepted)",
            algorithm(c14n_method)?
        )));
    }
    let signed_info_prefixes = inclusive_prefixes(c14n_method)?;
    let signature_method = only_child(signed_info, "SignatureMethod")?;
    if algorithm(signature_method)? != RSA_SHA256 {
        return Err(SamlError::SignatureForm(format!(
            "signature method {} (only RSA-SHA256 is accepted)",
            algorithm(signature_method)?
        )));
    }
    if signature_method.has_children() && signature_method.children().any(|c| c.is_element()) {
        return Err(SamlError::SignatureForm(
            "parameters in ds:SignatureMethod".into(),
        ));
    }
    let reference = only_child(signed_info, "Reference")?;
    let element_children = signed_info.children().filter(Node::is_element).count();
    if element_children != 3 {
        return Err(SamlError::SignatureForm(
            "ds:SignedInfo must hold exactly CanonicalizationMethod, SignatureMethod and one Reference".into(),
        ));
    }
    // The reference must be the root: "" (the whole document) or "#" + the root's ID.
    let uri = reference
        .attribute("URI")
        .ok_or_else(|| SamlError::NotCoveringRoot("ds:Reference has no URI".into()))?;
    if let Some(id) = uri.strip_prefix('#') {
        if root.attribute("ID") != Some(id) || id.is_empty() {
            return Err(SamlError::NotCoveringRoot(format!(
                "ds:Reference URI {uri:?} is not the root element's ID"
            )));
        }
    } else if !uri.is_empty() {
        return Err(SamlError::NotCoveringRoot(format!(
            "ds:Reference URI {uri:?} (only \"\" or \"#<root ID>\" are accepted)"
        )));
    }
    let transforms = only_child(reference, "Transforms")?;
    let transforms: Vec<_> = transforms.children().filter(Node::is_element).collect();
    let [enveloped, exclusive] = transforms.as_slice() else {
        return Err(SamlError::SignatureForm(
            "the transforms must be exactly enveloped-signature then exclusive c14n".into(),
        ));
    };
    if !is(*enveloped, DS, "Transform")
        || algorithm(*enveloped)? != ENVELOPED
        || enveloped.children().any(|c| c.is_element())
        || !is(*exclusive, DS, "Transform")
        || algorithm(*exclusive)? != EXC_C14N
    {
        return Err(SamlError::SignatureForm(
            "the transforms must be exactly enveloped-signature then exclusive c14n".into(),
        ));
    }
    let reference_prefixes = inclusive_prefixes(*exclusive)?;
    let digest_method = only_child(reference, "DigestMethod")?;
    if algorithm(digest_method)? != SHA256 {
        return Err(SamlError::SignatureForm(format!(
            "digest method {} (only SHA-256 is accepted)",
            algorithm(digest_method)?
        )));
    }
    let expected_digest = base64_text(only_child(reference, "DigestValue")?)?;
    let signature_value = base64_text(only_child(signature, "SignatureValue")?)?;

    // Digest of the root with the signature taken out.
    let mut canonical = Vec::with_capacity(doc.input_text().len());
    let canonicalizer = Canonicalizer {
        exclude: Some(signature.id()),
        inclusive_prefixes: &reference_prefixes,
    };
    if uri.is_empty() {
        canonicalizer.document(doc, &mut canonical)?;
    } else {
        canonicalizer.subtree(root, &mut canonical)?;
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &canonical);
    if aws_lc_rs::constant_time::verify_slices_are_equal(digest.as_ref(), &expected_digest).is_err()
    {
        return Err(SamlError::DigestMismatch);
    }
    // The signature over the canonical SignedInfo.
    let mut signed = Vec::new();
    Canonicalizer {
        exclude: None,
        inclusive_prefixes: &signed_info_prefixes,
    }
    .subtree(signed_info, &mut signed)?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &certificate.public_key)
        .verify(&signed, &signature_value)
        .map_err(|_| SamlError::BadSignature)
}

fn base64_text(node: Node<'_, '_>) -> Result<Vec<u8>, SamlError> {
    let text: String = node
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .flat_map(|t| t.chars())
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| {
            SamlError::SignatureForm(format!("ds:{} is not base64: {e}", node.tag_name().name()))
        })
}

/// Parses an xs:dateTime with a time zone (`2026-12-09T12:00:00Z`, fractions and offsets
/// allowed) to Unix seconds.
pub(crate) fn parse_datetime(text: &str) -> Option<i64> {
    let parsed =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?;
    Some(parsed.unix_timestamp())
}

pub(crate) fn format_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}
