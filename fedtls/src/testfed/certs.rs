//! Certificates of the test federation: validity windows, leaf and CA parameters, issuing.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer as RcgenIssuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::CertificateDer;

use super::TestFedError;

/// `(not_before, not_after)` of a certificate, in Unix seconds.
pub(super) type Window = (i64, i64);

/// A generated certificate with its key.
pub(super) struct Issued {
    pub(super) der: CertificateDer<'static>,
    pub(super) pem: String,
    pub(super) key: KeyPair,
    /// The key was created by this run (and must be written), not kept from an earlier one.
    pub(super) new_key: bool,
    params: CertificateParams,
}

pub(super) fn validity(params: &mut CertificateParams, (not_before, not_after): Window) {
    let at = |secs: i64| {
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
    };
    params.not_before = at(not_before);
    params.not_after = at(not_after);
}

pub(super) fn leaf_params(
    common_name: &str,
    organization: &str,
    host: &str,
    window: Window,
) -> Result<CertificateParams, TestFedError> {
    let mut params = CertificateParams::new(vec![host.to_owned()])?;
    if host != "127.0.0.1" {
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, organization);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    validity(&mut params, window);
    Ok(params)
}

pub(super) fn self_signed(
    params: CertificateParams,
    (key, new_key): (KeyPair, bool),
) -> Result<Issued, TestFedError> {
    let cert = params.self_signed(&key)?;
    Ok(Issued {
        der: cert.der().clone(),
        pem: cert.pem(),
        key,
        new_key,
        params,
    })
}

pub(super) fn ca(
    common_name: &str,
    organization: &str,
    window: Window,
    key: (KeyPair, bool),
) -> Result<Issued, TestFedError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn.push(DnType::OrganizationName, organization);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, window);
    self_signed(params, key)
}

pub(super) fn issued_by(
    params: CertificateParams,
    ca: &Issued,
    (key, new_key): (KeyPair, bool),
) -> Result<Issued, TestFedError> {
    let issuer = RcgenIssuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(Issued {
        der: cert.der().clone(),
        pem: cert.pem(),
        key,
        new_key,
        params,
    })
}
