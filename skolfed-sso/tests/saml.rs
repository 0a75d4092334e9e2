//! The signed SAML aggregate: signatures made by `xmlsec1` (an independent XML-DSig
//! implementation) verify, and every tampered copy is refused.

use skolfed_sso::saml::{SamlError, VerifyOptions, verify_aggregate};
use skolfed_sso::testing::{AggregateBuilder, TestIdp, TestSigner, xmlsec1_available};

fn now() -> i64 {
    skolfed_sso::fetch::unix_now()
}

fn awkward_idps() -> Vec<TestIdp> {
    vec![
        TestIdp {
            entity_id: "https://idp.alvkommun.se/idp/shibboleth".into(),
            name_sv: "Älvkommunens skolor".into(),
            name_en: "Älv municipality schools".into(),
            scope: "alvkommun.se".into(),
        },
        TestIdp {
            entity_id: "https://idp.example.se/saml?a=1&b=%20två".into(),
            name_sv: "Bergsskolan & Co <test>".into(),
            name_en: "Bergs school".into(),
            scope: "bergs.example.se".into(),
        },
    ]
}

struct Signed {
    signer: TestSigner,
    xml: String,
}

/// Signs with xmlsec1; a machine without it fails the test (CI installs it).
fn signed(builder: &AggregateBuilder) -> Option<Signed> {
    assert!(
        xmlsec1_available(),
        "xmlsec1 is not installed: apt-get install xmlsec1"
    );
    let signer = TestSigner::generate("Skolfederation metadata signer (test)");
    let bytes = signer
        .sign_with_xmlsec1(&builder.build())
        .expect("xmlsec1 signs");
    Some(Signed {
        signer,
        xml: String::from_utf8(bytes).expect("UTF-8"),
    })
}

fn verify(signed: &Signed, xml: &str) -> Result<skolfed_sso::saml::Aggregate, SamlError> {
    verify_aggregate(
        xml.as_bytes(),
        &signed.signer.certificate(),
        VerifyOptions { now: now() },
    )
}

#[test]
fn xmlsec1_signature_verifies_and_lists_idps_and_sps() {
    let mut builder = AggregateBuilder::new(awkward_idps());
    builder.sps = vec!["https://sp.example.com/math".into()];
    let Some(signed) = signed(&builder) else {
        return;
    };
    let aggregate = verify(&signed, &signed.xml).expect("the xmlsec1 signature verifies");
    assert_eq!(aggregate.idps.len(), 2);
    assert_eq!(aggregate.sps.len(), 1);
    assert_eq!(aggregate.sps[0].entity_id, "https://sp.example.com/math");
    let awkward = aggregate
        .idp("https://idp.example.se/saml?a=1&b=%20två")
        .expect("the awkward entityID is indexed as written");
    assert_eq!(
        awkward.display_name.sv.as_deref(),
        Some("Bergsskolan & Co <test>")
    );
    assert_eq!(awkward.name("en"), "Bergs school");
    assert_eq!(awkward.scopes, vec!["bergs.example.se".to_owned()]);
    assert_eq!(awkward.logos[0].url, "https://bergs.example.se/logo.png");
    assert_eq!(awkward.logos[0].width, Some(64));
    assert_eq!(
        awkward.organization.name.sv.as_deref(),
        Some("Bergsskolan & Co <test> AB")
    );
    // Sorted by Swedish name: "Bergsskolan" before "Älvkommunens".
    assert_eq!(aggregate.idps[0].entity_id, awkward.entity_id);
    assert!(awkward.matches("bergs co"));
    assert!(!awkward.matches("älv"));
}

#[test]
fn reference_by_root_id_verifies() {
    let mut builder = AggregateBuilder::new(awkward_idps());
    builder.reference_by_id = true;
    let Some(signed) = signed(&builder) else {
        return;
    };
    assert!(signed.xml.contains("URI=\"#_skolfed\""));
    verify(&signed, &signed.xml).expect("a reference to the root's ID verifies");
}

#[test]
fn tampered_copies_are_refused() {
    let builder = AggregateBuilder::new(awkward_idps());
    let Some(signed) = signed(&builder) else {
        return;
    };
    let xml = &signed.xml;

    // A changed attribute.
    let changed = xml.replace(
        "https://idp.alvkommun.se/idp/shibboleth",
        "https://evil.example/idp",
    );
    assert!(matches!(
        verify(&signed, &changed),
        Err(SamlError::DigestMismatch)
    ));

    // A changed text inside.
    let changed = xml.replace("Älvkommunens skolor", "Älvkommunens skolor!");
    assert!(matches!(
        verify(&signed, &changed),
        Err(SamlError::DigestMismatch)
    ));

    // A changed SignedInfo (the digest algorithm's text is not what was signed).
    let changed = xml.replacen(
        "<ds:Reference URI=\"\">",
        "<ds:Reference URI=\"\" Id=\"x\">",
        1,
    );
    assert!(matches!(
        verify(&signed, &changed),
        Err(SamlError::BadSignature)
    ));

    // The signature moved into the first entity: the root is no longer signed.
    let start = xml.find("<ds:Signature").unwrap();
    let end = xml.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let signature = &xml[start..end];
    let without = format!("{}{}", &xml[..start], &xml[end..]);
    let moved = without.replacen(
        "<md:Organization>",
        &format!("{signature}<md:Organization>"),
        1,
    );
    assert!(matches!(
        verify(&signed, &moved),
        Err(SamlError::SignaturePlacement(_))
    ));

    // The signature moved after the entities (not where the schema puts it).
    let moved = without.replace(
        "</md:EntitiesDescriptor>",
        &format!("{signature}</md:EntitiesDescriptor>"),
    );
    assert!(matches!(
        verify(&signed, &moved),
        Err(SamlError::SignaturePlacement(_))
    ));

    // Wrapping: a new unsigned root carrying the signature, with the original signed
    // aggregate hidden inside its Extensions and a forged entity beside it.
    let body_start = xml.find("<md:EntitiesDescriptor").unwrap();
    let original = &xml[body_start..];
    let wrapped = format!(
        "<?xml version=\"1.0\"?>\n<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" ID=\"_skolfed\" validUntil=\"{}\">{signature}<md:Extensions>{}</md:Extensions><md:EntityDescriptor entityID=\"https://evil.example/idp\"><md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\"/></md:EntityDescriptor></md:EntitiesDescriptor>",
        builder.valid_until,
        original.replacen(signature, "", 1).trim_end()
    );
    let refused = verify(&signed, &wrapped);
    assert!(
        matches!(refused, Err(SamlError::DigestMismatch)),
        "{refused:?}"
    );

    // A second signature beside the first.
    let twice = xml.replacen(signature, &format!("{signature}{signature}"), 1);
    assert!(matches!(
        verify(&signed, &twice),
        Err(SamlError::SignaturePlacement(_))
    ));

    // A reference to something other than the root.
    let elsewhere = xml.replacen(
        "<ds:Reference URI=\"\">",
        "<ds:Reference URI=\"#other\">",
        1,
    );
    assert!(matches!(
        verify(&signed, &elsewhere),
        Err(SamlError::NotCoveringRoot(_))
    ));

    // A DOCTYPE with an entity.
    let doctype = xml.replacen(
        "<md:EntitiesDescriptor",
        "<!DOCTYPE md:EntitiesDescriptor [<!ENTITY x \"y\">]>\n<md:EntitiesDescriptor",
        1,
    );
    assert!(matches!(verify(&signed, &doctype), Err(SamlError::Doctype)));

    // Another certificate.
    let other = TestSigner::generate("someone else");
    let refused = verify_aggregate(
        xml.as_bytes(),
        &other.certificate(),
        VerifyOptions { now: now() },
    );
    assert!(matches!(refused, Err(SamlError::BadSignature)));

    // Other algorithms, even correctly named ones, are refused before anything is computed.
    for (from, to) in [
        ("xmldsig-more#rsa-sha256", "xmldsig#rsa-sha1"),
        ("xmlenc#sha256", "xmldsig#sha1"),
        (
            "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"",
            "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"",
        ),
    ] {
        let other = xml.replacen(from, to, 1);
        assert!(
            matches!(verify(&signed, &other), Err(SamlError::SignatureForm(_))),
            "{to}"
        );
    }
    let extra_transform = xml.replacen(
        "</ds:Transforms>",
        "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"/></ds:Transforms>",
        1,
    );
    assert!(matches!(
        verify(&signed, &extra_transform),
        Err(SamlError::SignatureForm(_))
    ));

    // Unsigned.
    let unsigned = without;
    assert!(matches!(
        verify(&signed, &unsigned),
        Err(SamlError::SignaturePlacement(_))
    ));
}

#[test]
fn expired_valid_until_is_refused() {
    let mut builder = AggregateBuilder::new(awkward_idps());
    builder.valid_until = "2020-01-01T00:00:00Z".into();
    let Some(signed) = signed(&builder) else {
        return;
    };
    // The signature is fine; the date is not.
    let refused = verify(&signed, &signed.xml);
    assert!(
        matches!(refused, Err(SamlError::Validity(_))),
        "{refused:?}"
    );
    let then = time::OffsetDateTime::parse(
        "2019-12-31T00:00:00Z",
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    verify_aggregate(
        signed.xml.as_bytes(),
        &signed.signer.certificate(),
        VerifyOptions { now: then },
    )
    .expect("valid before validUntil");
}

#[test]
fn garbage_never_panics() {
    let signer = TestSigner::generate("x");
    let cert = signer.certificate();
    for input in [
        &b""[..],
        b"<",
        b"\xff\xfe",
        b"<a/>",
        b"<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\"/>",
        b"<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\"><ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"/></md:EntitiesDescriptor>",
    ] {
        assert!(verify_aggregate(input, &cert, VerifyOptions { now: now() }).is_err());
    }
    let deep = format!("{}{}", "<a>".repeat(100_000), "</a>".repeat(100_000));
    assert!(verify_aggregate(deep.as_bytes(), &cert, VerifyOptions { now: now() }).is_err());
}
