//! The SSO-link metadata: the pilot's example, broken variants (each problem at its JSON
//! path, the rest still usable) and link building with awkward IdP entityIDs.

use serde_json::{Value, json};
use skolfed_sso::Severity;
use skolfed_sso::links::{LoginMethod, parse};

const EXAMPLE: &str = include_str!("data/skolfederation-sso-links-example.json");

fn example() -> Value {
    serde_json::from_str(EXAMPLE).unwrap()
}

fn problems_at(parsed: &skolfed_sso::links::ParsedLinks, severity: Severity) -> Vec<String> {
    parsed
        .problems
        .iter()
        .filter(|p| p.severity == severity)
        .map(|p| p.path.clone())
        .collect()
}

#[test]
fn the_pilot_example_parses_without_problems() {
    let parsed = parse(EXAMPLE.as_bytes());
    assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
    let orgs = &parsed.links.organizations;
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0].info.display_name, "Example Service Provider");
    assert_eq!(orgs[0].info.name, "Example Service Provider AB");
    assert_eq!(
        orgs[0].info.logotype.as_deref(),
        Some("https://example.com/logo.svg")
    );
    assert_eq!(orgs[0].links.len(), 2);
    let math = &orgs[0].links[0];
    assert_eq!(math.display_name, "Math Rocket");
    assert!(
        matches!(&math.login, LoginMethod::EntityId { idp_parameter, .. } if idp_parameter == "entityID")
    );
    assert_eq!(
        math.login_url("https://idp.example1.com").as_deref(),
        Some(
            "https://example.com/math/Shibboleth.sso/Login?entityID=https%3A%2F%2Fidp.example1.com&Target"
        )
    );
    let bjj = &orgs[0].links[1];
    assert_eq!(
        bjj.login_url("https://idp.example2.com").as_deref(),
        Some("https://example.com/bjj/login?idp=example2-idp")
    );
    assert_eq!(bjj.login_url("https://idp.not-in-the-map.example"), None);
}

#[test]
fn awkward_entity_ids_survive_link_building() {
    let parsed = parse(EXAMPLE.as_bytes());
    let math = &parsed.links.organizations[0].links[0];
    for idp in [
        "https://idp.example.se/saml%20idp",
        "https://idp.example.se/a b",
        "https://idp.example.se/?x=1&y=2#frag",
        "https://idp.skånekommun.se/idp",
        "urn:mace:idp+plus;semi",
    ] {
        let url = math.login_url(idp).unwrap();
        let (base, query) = url.split_once('?').unwrap();
        assert_eq!(base, "https://example.com/math/Shibboleth.sso/Login");
        assert!(
            !url.contains(' ') && !url.contains('#') && url.is_ascii(),
            "{url}"
        );
        // A standard query parser gives back exactly the entityID.
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(pairs[0], ("entityID".to_owned(), idp.to_owned()), "{url}");
        assert_eq!(pairs.len(), 2, "only the IdP and the target: {url}");
    }
}

#[test]
fn disabled_services_get_no_link_and_stay_listed() {
    let mut doc = example();
    doc[0]["sso_links"][0]["disabled"] = json!(true);
    doc[0]["sso_links"][1]["disabled"] = json!("yes");
    let parsed = parse(doc.to_string().as_bytes());
    let links = &parsed.links.organizations[0].links;
    assert_eq!(links.len(), 2);
    assert!(
        links[0].disabled && links[1].disabled,
        "a non-boolean disabled fails closed"
    );
    assert_eq!(links[0].login_url("https://idp.example1.com"), None);
    assert_eq!(links[1].login_url("https://idp.example1.com"), None);
    assert_eq!(
        problems_at(&parsed, Severity::Warning),
        ["$[0].sso_links[1].disabled"]
    );
}

#[test]
fn a_bad_link_is_left_out_and_the_rest_stays() {
    let mut doc = example();
    // Link 0: an entity_id service without sp_init; link 1 stays good.
    doc[0]["sso_links"][0]
        .as_object_mut()
        .unwrap()
        .remove("sp_init");
    // A second organization whose services are all fine but one uses http.
    let mut second = example()[0].clone();
    second["organization_info"]["display_name"] = json!("Second");
    second["sso_links"][1]["link_mapping"]["https://idp.example1.com"] =
        json!("http://insecure.example/login");
    second["sso_links"][0]["sso_type"] = json!("magic");
    doc.as_array_mut().unwrap().push(second);
    // A third without organization_info.
    doc.as_array_mut().unwrap().push(json!({"sso_links": []}));
    let parsed = parse(doc.to_string().as_bytes());
    let orgs = &parsed.links.organizations;
    assert_eq!(orgs.len(), 2, "the organization without info is left out");
    assert_eq!(orgs[0].links.len(), 1);
    assert_eq!(
        orgs[0].links[0].display_name,
        "Example Digital Brazilian Jiu-Jitsu Service"
    );
    assert_eq!(orgs[1].links.len(), 1, "the unknown sso_type is left out");
    assert_eq!(
        orgs[1].links[0].login_url("https://idp.example1.com"),
        None,
        "no http links"
    );
    assert_eq!(
        orgs[1].links[0]
            .login_url("https://idp.example3.com")
            .as_deref(),
        Some("https://example.com/bjj/login?idp=example3-idp")
    );
    assert_eq!(
        problems_at(&parsed, Severity::Error),
        [
            "$[0].sso_links[0].sp_init",
            "$[1].sso_links[0].sso_type",
            "$[2].organization_info"
        ]
    );
    let warnings = problems_at(&parsed, Severity::Warning);
    assert!(
        warnings
            .contains(&"$[1].sso_links[1].link_mapping[\"https://idp.example1.com\"]".to_owned()),
        "{warnings:?}"
    );
    assert!(parsed.has_errors());
}

#[test]
fn lint_reports_inconsistent_and_missing_fields() {
    let mut doc = example();
    let info = doc[0]["organization_info"].as_object_mut().unwrap();
    info.remove("description");
    info.insert("logotype".into(), json!("http://example.com/logo.svg"));
    let math = doc[0]["sso_links"][0].as_object_mut().unwrap();
    math.insert("link_mapping".into(), json!({}));
    math.insert("colour".into(), json!("red"));
    let bjj = doc[0]["sso_links"][1].as_object_mut().unwrap();
    bjj.insert("sp_init".into(), json!("https://example.com/bjj/init?"));
    bjj.remove("link_mapping");
    let parsed = parse(doc.to_string().as_bytes());
    let warnings = problems_at(&parsed, Severity::Warning);
    for expected in [
        "$[0].organization_info.description",
        "$[0].organization_info.logotype",
        "$[0].sso_links[0].colour",
        "$[0].sso_links[0].link_mapping",
        "$[0].sso_links[1].sp_init",
    ] {
        assert!(
            warnings.contains(&expected.to_owned()),
            "{expected} not in {warnings:?}"
        );
    }
    assert_eq!(
        problems_at(&parsed, Severity::Error),
        ["$[0].sso_links[1].link_mapping"]
    );
    let message = &parsed
        .problems
        .iter()
        .find(|p| p.path.ends_with("logotype"))
        .unwrap()
        .message;
    assert!(message.contains("https"), "{message}");
}

#[test]
fn not_a_document() {
    for input in [&b"{}"[..], b"not json", b"", b"[1, \"x\", null]", b"\xff"] {
        let parsed = parse(input);
        assert!(parsed.links.organizations.is_empty());
        assert!(parsed.has_errors(), "{:?}", String::from_utf8_lossy(input));
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse(deep.as_bytes()).has_errors());
}

proptest::proptest! {
    /// Any entityID, whatever it holds, comes back unchanged from the built link's query, and
    /// the link never carries a space, a fragment or raw non-ASCII.
    #[test]
    fn every_entity_id_round_trips(idp in "\\PC{0,40}") {
        let parsed = parse(EXAMPLE.as_bytes());
        let url = parsed.links.organizations[0].links[0].login_url(&idp).unwrap();
        let query = url.split_once('?').unwrap().1;
        let first = url::form_urlencoded::parse(query.as_bytes()).next().unwrap();
        proptest::prop_assert_eq!(first.1.as_ref(), idp.as_str());
        proptest::prop_assert!(url.is_ascii() && !url.contains(' ') && !url.contains('#'));
    }

    /// Arbitrary bytes never panic the parser.
    #[test]
    fn arbitrary_input_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
        let _ = parse(&bytes);
    }
}
