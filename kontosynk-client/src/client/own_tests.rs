//! The own-certificate check (`fedtls::tls::OwnCertificate`) on the test federation.

use fedtls::verify::unix_now;

use fedtls::index::Role;
use fedtls::tls::{OwnCertificate, OwnCertificateProblem};

use crate::testsupport::Fed;

#[test]
fn listed_expired_not_yet_valid_and_unlisted_are_told_apart() {
    let fed = Fed::new();
    let snapshot = fed.snapshot();
    let index = snapshot.index();
    let own =
        OwnCertificate::read(&fed.identity("supplier-client").chain()[0], Role::Client).unwrap();
    assert_eq!(own.check(index, unix_now()), Ok(()));
    let far_future = unix_now() + 200 * 365 * 86_400;
    assert!(matches!(
        own.check(index, far_future),
        Err(OwnCertificateProblem::Expired { .. })
    ));
    assert!(matches!(
        own.check(index, 0),
        Err(OwnCertificateProblem::NotYetValid { .. })
    ));
    let stranger =
        OwnCertificate::read(&fed.identity("unlisted-client").chain()[0], Role::Client).unwrap();
    let problem = stranger.check(index, unix_now()).unwrap_err();
    assert_eq!(
        problem,
        OwnCertificateProblem::NotListed {
            pin: stranger.pin(),
            role: Role::Client,
        }
    );
    // A server pin is not a client pin, and is listed as a server.
    let as_server =
        OwnCertificate::read(&fed.identity("school-server").chain()[0], Role::Server).unwrap();
    assert_eq!(as_server.check(index, unix_now()), Ok(()));
    let server =
        OwnCertificate::read(&fed.identity("school-server").chain()[0], Role::Client).unwrap();
    assert!(matches!(
        server.check(index, unix_now()),
        Err(OwnCertificateProblem::NotListed { .. })
    ));
}
