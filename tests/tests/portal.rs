//! The SSO portal (`kontosynk-server portal`) in real headless Chromium: Swedish by default,
//! search and choose an IdP from the xmlsec1-signed SAML aggregate with the keyboard, every
//! service button's URL for that IdP, the disabled service greyed, the choice remembered in a
//! cookie across a reload, the English switch, the JSON endpoint. Screenshots are written to
//! the test's artefact directory (`target/test-artefacts/portal/`).

use std::sync::Arc;

use kontosynk_server::portal::{Portal, PortalConfig};
use kontosynk_testbed::browser::{Browser, artefact_dir};
use serde_json::{Value, json};
use skolfed_sso::fetch::FetchConfig;
use skolfed_sso::testing::{AggregateBuilder, TestIdp, TestSigner, numbered_idps, write_file};

const ALV: &str = "https://idp.alvkommun.se/idp/shibboleth";
/// An entityID that naive link building breaks: a space, `%20`, `&`, non-ASCII.
const AWKWARD: &str = "https://idp.bergs.example.se/saml idp?a=1&b=%20två";

fn sso_links() -> Value {
    json!([
        {
            "organization_info": {
                "description": "Digitala läromedel för grundskolan",
                "display_name": "Läromedelsförlaget",
                "logotype": "https://laromedel.example/logo.svg",
                "name": "Läromedelsförlaget AB",
                "url": "https://laromedel.example"
            },
            "sso_links": [
                {
                    "description": "Matte för åk 4–6",
                    "disabled": false,
                    "display_name": "Matteraketen",
                    "entity_id": "https://laromedel.example/math",
                    "idp_parameter": "entityID",
                    "logo": "https://laromedel.example/math/logo.svg",
                    "sp_init": "https://laromedel.example/math/Shibboleth.sso/Login?",
                    "sso_type": "entity_id",
                    "target_parameter": ""
                },
                {
                    "description": "Brasiliansk jiu-jitsu",
                    "disabled": false,
                    "display_name": "BJJ-skolan",
                    "entity_id": "https://laromedel.example/bjj",
                    "link_mapping": { ALV: "https://laromedel.example/bjj/login?idp=alv" },
                    "logo": "https://laromedel.example/bjj/logo.png",
                    "sso_type": "link_map"
                },
                {
                    "description": "Stängd för underhåll",
                    "disabled": true,
                    "display_name": "Gamla portalen",
                    "entity_id": "https://laromedel.example/old",
                    "idp_parameter": "entityID",
                    "sp_init": "https://laromedel.example/old/login",
                    "sso_type": "entity_id"
                }
            ]
        },
        {
            "organization_info": {
                "description": "Schemaläggning",
                "display_name": "Schemabolaget",
                "logotype": "https://schema.example/logo.svg",
                "name": "Schemabolaget AB",
                "url": "https://schema.example"
            },
            "sso_links": [
                {
                    "description": "Ditt schema",
                    "display_name": "Schemat",
                    "entity_id": "https://schema.example/sp",
                    "idp_parameter": "idp",
                    "sp_init": "https://schema.example/login?lang=sv",
                    "sso_type": "entity_id",
                    "target_parameter": "target=https%3A%2F%2Fschema.example%2Fmitt"
                }
            ]
        }
    ])
}

async fn start_portal() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let signer = TestSigner::generate("Skolfederation metadata signer (test)");
    let mut idps = vec![
        TestIdp {
            entity_id: ALV.into(),
            name_sv: "Älvkommunens skolor".into(),
            name_en: "Älv municipality schools".into(),
            scope: "alvkommun.se".into(),
        },
        TestIdp {
            entity_id: AWKWARD.into(),
            name_sv: "Bergsskolan".into(),
            name_en: "Bergs school".into(),
            scope: "bergs.example.se".into(),
        },
    ];
    idps.extend(numbered_idps(60));
    let signed = signer
        .sign_with_xmlsec1(&AggregateBuilder::new(idps).build())
        .expect("xmlsec1 signs (apt-get install xmlsec1)");
    let saml = write_file(dir.path(), "md.xml", &signed);
    let links = write_file(dir.path(), "links.json", sso_links().to_string().as_bytes());
    let portal = Portal::new(PortalConfig {
        links: FetchConfig::new(links.to_str().unwrap().parse().unwrap()),
        saml: FetchConfig::new(saml.to_str().unwrap().parse().unwrap()),
        saml_certificate: signer.certificate(),
        secure_cookies: false,
    })
    .unwrap();
    portal.load().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(Arc::new(portal).serve(listener, std::future::pending()));
    (url, dir)
}

/// `[data-entity, href]` of every linked service button, and the classes of the others.
const BUTTONS: &str = "({
    links: [...document.querySelectorAll('a.service')].map(a => [a.dataset.entity, a.getAttribute('href')]),
    greyed: [...document.querySelectorAll('span.service')].map(s => [s.dataset.entity, s.className, s.getAttribute('aria-disabled')]),
})";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choose_an_idp_and_follow_every_button_in_chromium() {
    let (url, _dir) = start_portal().await;
    let shots = artefact_dir("portal");
    let mut browser = Browser::launch()
        .await
        .expect("chromium (apt-get install chromium)");

    // Swedish by default; nothing chosen: the services wait for a school.
    browser.navigate(&format!("{url}/")).await.unwrap();
    let page = browser
        .eval("[document.documentElement.lang, document.querySelector('h1').textContent, document.querySelector('label[for=idp-search]').textContent, document.querySelectorAll('.service.waiting').length, document.scripts.length]")
        .await
        .unwrap();
    assert_eq!(
        page,
        json!([
            "sv",
            "Logga in i skolans tjänster",
            "Sök din skola, kommun eller huvudman",
            3,
            0
        ])
    );
    browser
        .screenshot(&shots.join("01-start-sv.png"))
        .await
        .unwrap();

    // Keyboard: the first Tab reaches the skip link.
    browser.press_key("Tab").await.unwrap();
    assert_eq!(
        browser
            .eval("document.activeElement.className")
            .await
            .unwrap(),
        "skip"
    );

    // Search by typing in the labelled field and pressing Enter.
    browser
        .eval("document.getElementById('idp-search').focus()")
        .await
        .unwrap();
    browser.type_text("älv").await.unwrap();
    browser.press_key_and_wait("Enter").await.unwrap();
    let choices = browser
        .eval("[...document.querySelectorAll('#idp-list a.idp-choice')].map(a => a.dataset.entity)")
        .await
        .unwrap();
    assert_eq!(
        choices,
        json!([ALV]),
        "the search finds exactly the one school"
    );
    browser
        .screenshot(&shots.join("02-search.png"))
        .await
        .unwrap();

    // Choose it with the keyboard: focus the link, Enter.
    browser
        .eval("document.querySelector('#idp-list a.idp-choice').focus()")
        .await
        .unwrap();
    browser.press_key_and_wait("Enter").await.unwrap();
    assert_eq!(
        browser
            .eval("document.getElementById('chosen-idp').dataset.entity")
            .await
            .unwrap(),
        ALV
    );
    let expected_alv = json!({
        "links": [
            ["https://laromedel.example/math", "https://laromedel.example/math/Shibboleth.sso/Login?entityID=https%3A%2F%2Fidp.alvkommun.se%2Fidp%2Fshibboleth"],
            ["https://laromedel.example/bjj", "https://laromedel.example/bjj/login?idp=alv"],
            ["https://schema.example/sp", "https://schema.example/login?lang=sv&idp=https%3A%2F%2Fidp.alvkommun.se%2Fidp%2Fshibboleth&target=https%3A%2F%2Fschema.example%2Fmitt"],
        ],
        "greyed": [["https://laromedel.example/old", "service disabled", "true"]],
    });
    assert_eq!(browser.eval(BUTTONS).await.unwrap(), expected_alv);
    // The disabled service is greyed out and is no link.
    let style = browser
        .eval("(() => { const s = getComputedStyle(document.querySelector('.service.disabled')); return [s.filter, s.cursor, document.querySelector('.service.disabled .state').textContent]; })()")
        .await
        .unwrap();
    assert_eq!(
        style,
        json!(["grayscale(1)", "not-allowed", "Inte tillgänglig just nu"])
    );
    browser
        .screenshot(&shots.join("03-chosen.png"))
        .await
        .unwrap();

    // The choice is a cookie: a reload (and a fresh visit) keeps it.
    let cookies = browser.cookies().await.unwrap();
    assert!(
        cookies.iter().any(|(name, _)| name == "skolfed_idp"),
        "{cookies:?}"
    );
    browser.reload().await.unwrap();
    assert_eq!(browser.eval(BUTTONS).await.unwrap(), expected_alv);
    browser.navigate(&format!("{url}/")).await.unwrap();
    assert_eq!(browser.eval(BUTTONS).await.unwrap(), expected_alv);

    // Change to the school with the awkward entityID: every link carries it intact, and the
    // link_map service has no entry for it.
    browser.click_and_wait("#change-idp").await.unwrap();
    browser
        .eval("document.getElementById('idp-search').focus()")
        .await
        .unwrap();
    browser.type_text("Bergs").await.unwrap();
    browser.press_key_and_wait("Enter").await.unwrap();
    browser
        .click_and_wait("#idp-list a.idp-choice")
        .await
        .unwrap();
    let buttons = browser.eval(BUTTONS).await.unwrap();
    let encoded = "https%3A%2F%2Fidp.bergs.example.se%2Fsaml%20idp%3Fa%3D1%26b%3D%2520tv%C3%A5";
    assert_eq!(
        buttons,
        json!({
            "links": [
                ["https://laromedel.example/math", format!("https://laromedel.example/math/Shibboleth.sso/Login?entityID={encoded}")],
                ["https://schema.example/sp", format!("https://schema.example/login?lang=sv&idp={encoded}&target=https%3A%2F%2Fschema.example%2Fmitt")],
            ],
            "greyed": [
                ["https://laromedel.example/bjj", "service unavailable", "true"],
                ["https://laromedel.example/old", "service disabled", "true"],
            ],
        })
    );
    // What the browser would send: the query decodes back to the exact entityID.
    let decoded = browser
        .eval("new URL(document.querySelector('a.service').href).searchParams.get('entityID')")
        .await
        .unwrap();
    assert_eq!(decoded, AWKWARD);

    // English on the switch, remembered too.
    browser.click_and_wait("#lang-switch").await.unwrap();
    let english = browser
        .eval("[document.documentElement.lang, document.querySelector('h1').textContent, document.querySelector('.service.unavailable .state').textContent, document.getElementById('lang-switch').textContent]")
        .await
        .unwrap();
    assert_eq!(
        english,
        json!([
            "en",
            "Log in to school services",
            "Not available for your school",
            "Svenska"
        ])
    );
    browser
        .screenshot(&shots.join("04-english.png"))
        .await
        .unwrap();
    browser.navigate(&format!("{url}/")).await.unwrap();
    assert_eq!(
        browser.eval("document.documentElement.lang").await.unwrap(),
        "en"
    );

    // A search that matches nothing says so.
    browser
        .navigate(&format!("{url}/?q=finnsinte&change=1&lang=sv"))
        .await
        .unwrap();
    assert_eq!(
        browser
            .eval("document.querySelector('#school .notice').textContent")
            .await
            .unwrap(),
        "Ingen skola matchar sökningen. Prova ett kortare ord."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_endpoints_for_other_portals() {
    let (url, _dir) = start_portal().await;
    let client = reqwest::Client::new();
    let get = |path: String| {
        let client = client.clone();
        async move {
            let response = client.get(path).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, links) = get(format!(
        "{url}/api/links?idp={}",
        skolfed_sso::links::encode_component(ALV)
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(links["idp"], ALV);
    assert_eq!(
        links["organizations"][0]["services"][1]["login_url"],
        "https://laromedel.example/bjj/login?idp=alv"
    );
    assert_eq!(links["organizations"][0]["services"][2]["disabled"], true);
    assert_eq!(
        links["organizations"][0]["services"][2]["login_url"],
        Value::Null
    );

    let (status, error) = get(format!("{url}/api/links?idp=https%3A%2F%2Fevil.example")).await;
    assert_eq!(status, 404);
    assert_eq!(error["error"], "unknown_idp");
    let (status, _) = get(format!("{url}/api/links")).await;
    assert_eq!(status, 400);

    let (status, idps) = get(format!("{url}/api/idps?q=bergs")).await;
    assert_eq!(status, 200);
    assert_eq!(idps["idps"].as_array().unwrap().len(), 1);
    assert_eq!(idps["idps"][0]["entity_id"], AWKWARD);
    let (_, all) = get(format!("{url}/api/idps")).await;
    assert_eq!(
        all["idps"].as_array().unwrap().len(),
        50,
        "at most 50 an answer"
    );

    let (status, health) = get(format!("{url}/healthz")).await;
    assert_eq!(status, 200);
    assert_eq!(health["ok"], true);

    // An unknown IdP cannot be chosen; the page's security headers.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = no_redirects
        .get(format!("{url}/choose?idp=https%3A%2F%2Fevil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    assert!(response.headers().get("set-cookie").is_none());
    let response = no_redirects.get(format!("{url}/")).send().await.unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
}

#[tokio::test]
async fn a_tampered_or_foreign_aggregate_keeps_the_portal_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let signer = TestSigner::generate("Skolfederation metadata signer (test)");
    let signed = signer
        .sign_with_xmlsec1(&AggregateBuilder::new(numbered_idps(3)).build())
        .unwrap();
    let tampered = String::from_utf8(signed.clone())
        .unwrap()
        .replace("Skola 0001", "Skola 6666");
    let links = write_file(dir.path(), "links.json", sso_links().to_string().as_bytes());
    for (name, bytes, certificate) in [
        ("tampered.xml", tampered.into_bytes(), signer.certificate()),
        (
            "foreign.xml",
            signed,
            TestSigner::generate("someone else").certificate(),
        ),
    ] {
        let saml = write_file(dir.path(), name, &bytes);
        let portal = Portal::new(PortalConfig {
            links: FetchConfig::new(links.to_str().unwrap().parse().unwrap()),
            saml: FetchConfig::new(saml.to_str().unwrap().parse().unwrap()),
            saml_certificate: certificate,
            secure_cookies: true,
        })
        .unwrap();
        let err = portal.load().await.unwrap_err();
        assert!(
            matches!(err, kontosynk_server::portal::PortalError::Saml(_)),
            "{name}: {err}"
        );
    }
}
