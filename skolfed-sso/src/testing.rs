//! Test support (feature `testing`): an RSA key and self-signed certificate like a federation
//! operator's, a generator of SAML metadata aggregates, and signing with the `xmlsec1`
//! command line, so that verification is checked against an independent XML-DSig
//! implementation rather than this crate's own canonicalization.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::saml::SigningCertificate;

/// An operator's metadata-signing key (RSA 2048) and its self-signed certificate.
pub struct TestSigner {
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
    /// The certificate, PEM.
    pub cert_pem: String,
}

impl TestSigner {
    /// A fresh key and certificate with common name `cn`.
    pub fn generate(cn: &str) -> Self {
        let key =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key generation");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        let cert = params.self_signed(&key).expect("self-signed certificate");
        Self {
            key_pem: key.serialize_pem(),
            cert_pem: cert.pem(),
        }
    }

    /// The certificate, as verification takes it.
    pub fn certificate(&self) -> SigningCertificate {
        SigningCertificate::from_pem(self.cert_pem.as_bytes()).expect("own certificate")
    }

    /// Signs an aggregate made by [`AggregateBuilder`] (it holds the signature template)
    /// with `xmlsec1 --sign` (the root's `ID` is registered, so `Reference URI="#_skolfed"`
    /// works too).
    pub fn sign_with_xmlsec1(&self, unsigned: &str) -> Result<Vec<u8>, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text)
                .map(|()| path)
                .map_err(|e| e.to_string())
        };
        let key = write("key.pem", &self.key_pem)?;
        let cert = write("cert.pem", &self.cert_pem)?;
        let input = write("unsigned.xml", unsigned)?;
        let output = dir.path().join("signed.xml");
        let status = Command::new("xmlsec1")
            .arg("--sign")
            .arg("--privkey-pem")
            .arg(format!("{},{}", key.display(), cert.display()))
            .arg("--id-attr:ID")
            .arg("urn:oasis:names:tc:SAML:2.0:metadata:EntitiesDescriptor")
            .arg("--output")
            .arg(&output)
            .arg(&input)
            .output()
            .map_err(|e| format!("cannot run xmlsec1 (apt-get install xmlsec1): {e}"))?;
        if !status.status.success() {
            return Err(format!(
                "xmlsec1 --sign failed: {}",
                String::from_utf8_lossy(&status.stderr)
            ));
        }
        std::fs::read(&output).map_err(|e| e.to_string())
    }
}

/// Whether the `xmlsec1` command is installed.
pub fn xmlsec1_available() -> bool {
    Command::new("xmlsec1")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// An IdP in a generated aggregate.
#[derive(Debug, Clone)]
pub struct TestIdp {
    /// entityID.
    pub entity_id: String,
    /// Swedish display name.
    pub name_sv: String,
    /// English display name.
    pub name_en: String,
    /// The scope (a domain).
    pub scope: String,
}

/// Builds an unsigned aggregate with an XML-DSig signature template as the root's first child.
#[derive(Debug, Clone)]
pub struct AggregateBuilder {
    /// The root's `validUntil`.
    pub valid_until: String,
    /// The identity providers.
    pub idps: Vec<TestIdp>,
    /// The service providers' entityIDs.
    pub sps: Vec<String>,
    /// `Reference URI="#_skolfed"` (with an ID on the root) instead of `URI=""`.
    pub reference_by_id: bool,
    /// Bytes of filler (a KeyDescriptor-sized base64 blob) per entity, to reach the size of
    /// the national aggregate (about 10 kB an entity).
    pub padding_per_entity: usize,
}

impl AggregateBuilder {
    /// An aggregate valid for a week with these IdPs and no SPs.
    pub fn new(idps: Vec<TestIdp>) -> Self {
        let until = time::OffsetDateTime::now_utc() + time::Duration::days(7);
        Self {
            valid_until: until
                .replace_nanosecond(0)
                .unwrap_or(until)
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            idps,
            sps: Vec::new(),
            reference_by_id: false,
            padding_per_entity: 0,
        }
    }

    /// The unsigned XML.
    pub fn build(&self) -> String {
        let mut xml = String::new();
        let reference = if self.reference_by_id {
            "#_skolfed"
        } else {
            ""
        };
        let _ = write!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" xmlns:mdui=\"urn:oasis:names:tc:SAML:metadata:ui\" xmlns:shibmd=\"urn:mace:shibboleth:metadata:1.0\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" ID=\"_skolfed\" Name=\"http://fed.skolfederation.se/test\" validUntil=\"{}\">\n",
            self.valid_until
        );
        let _ = writeln!(
            xml,
            "<ds:Signature><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/><ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/><ds:Reference URI=\"{reference}\"><ds:Transforms><ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/><ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate/></ds:X509Data></ds:KeyInfo></ds:Signature>"
        );
        let padding = "MIIB".repeat(self.padding_per_entity / 4);
        for idp in &self.idps {
            let _ = write!(
                xml,
                "  <md:EntityDescriptor entityID=\"{id}\">\n    <md:IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\n      <md:Extensions>\n        <shibmd:Scope regexp=\"false\">{scope}</shibmd:Scope>\n        <mdui:UIInfo>\n          <mdui:DisplayName xml:lang=\"sv\">{sv}</mdui:DisplayName>\n          <mdui:DisplayName xml:lang=\"en\">{en}</mdui:DisplayName>\n          <mdui:Logo height=\"64\" width=\"64\">https://{scope}/logo.png</mdui:Logo>\n        </mdui:UIInfo>\n      </md:Extensions>\n      <md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{padding}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\n      <md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"https://{scope}/idp/sso\"/>\n    </md:IDPSSODescriptor>\n    <md:Organization>\n      <md:OrganizationName xml:lang=\"sv\">{sv} AB</md:OrganizationName>\n      <md:OrganizationDisplayName xml:lang=\"sv\">{sv}</md:OrganizationDisplayName>\n      <md:OrganizationURL xml:lang=\"sv\">https://{scope}/</md:OrganizationURL>\n    </md:Organization>\n  </md:EntityDescriptor>\n",
                id = escape(&idp.entity_id),
                scope = escape(&idp.scope),
                sv = escape(&idp.name_sv),
                en = escape(&idp.name_en),
            );
        }
        for sp in &self.sps {
            let _ = write!(
                xml,
                "  <md:EntityDescriptor entityID=\"{id}\">\n    <md:SPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\n      <md:Extensions><mdui:UIInfo><mdui:DisplayName xml:lang=\"sv\">Tjänst {id}</mdui:DisplayName></mdui:UIInfo></md:Extensions>\n      <md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{padding}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\n      <md:AssertionConsumerService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"https://sp.example/acs\" index=\"0\"/>\n    </md:SPSSODescriptor>\n  </md:EntityDescriptor>\n",
                id = escape(sp),
            );
        }
        xml.push_str("</md:EntitiesDescriptor>\n");
        xml
    }
}

/// `count` IdPs with numbered names (`Skola 0001` …) and scopes `skola0001.example.se` ….
pub fn numbered_idps(count: usize) -> Vec<TestIdp> {
    (0..count)
        .map(|i| TestIdp {
            entity_id: format!("https://idp.skola{i:04}.example.se/idp"),
            name_sv: format!("Skola {i:04} kommun"),
            name_en: format!("School {i:04} municipality"),
            scope: format!("skola{i:04}.example.se"),
        })
        .collect()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
}

/// Writes `bytes` to `dir/name` and returns the path (test convenience).
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}
