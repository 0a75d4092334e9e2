//! The federation table at scale, in real headless Chromium: a generated federation of 5,000
//! servers in mixed states, driven through the URL fragment (`--dump-dom` after the page's
//! script ran): failures first, search, filters, natural sort, Swedish and English, no
//! overflow at 1000 px, the page under 1 MB. Screenshots are written as artefacts.

use std::path::{Path, PathBuf};

use super::html::{self, ReportContext};
use super::i18n::Lang;
use super::rows::PendingServer;
use super::tests::chromium_url;
use super::{HealthState, ServerHealth};

/// Where screenshots and pages are kept: `KONTOSYNK_TEST_ARTEFACTS` or the temp directory.
fn artefacts() -> PathBuf {
    let dir = std::env::var_os("KONTOSYNK_TEST_ARTEFACTS")
        .map_or_else(
            || std::env::temp_dir().join("kontosynk-test-artefacts"),
            PathBuf::from,
        )
        .join("health");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A base64 pin-like string for server `i`.
fn pin(i: usize) -> String {
    use base64::Engine as _;
    let mut state = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut bytes = [0_u8; 32];
    for b in &mut bytes {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *b = state.to_le_bytes()[0];
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// 5,000 servers of 1,000 organizations ("Kommun 1" … "Kommun 1000", five servers each,
/// `api-1` … `api-5`): every 50th unhealthy, every 97th refusing our client, every 31st
/// expiring soon; tags egilv1 (all) and gnapv1 (odd organizations).
pub(crate) fn federation(n: usize) -> Vec<ServerHealth> {
    (0..n)
        .map(|i| {
            let org = i / 5 + 1;
            let entity = format!("https://kommun{org}.example.se");
            let base_uri = format!("https://api-{}.kommun{org}.example.se/ss12000/v2.0/", i % 5 + 1);
            let mut tags = vec!["egilv1".to_owned()];
            if org % 2 == 1 {
                tags.push("gnapv1".to_owned());
            }
            let mut r = ServerHealth {
                entity_id: entity,
                organization: Some(format!("Kommun {org}")),
                organization_id: Some(format!("SE212{org:07}").parse().unwrap()),
                base_uri,
                tags,
                healthy: true,
                state: HealthState::Healthy,
                client_accepted: Some(true),
                error: None,
                warnings: Vec::new(),
                pin_match: Some(true),
                presented_pin: Some(pin(i)),
                expected_pins: vec![pin(i)],
                cert_subject: None,
                cert_not_after: Some("2027-06-01T00:00:00Z".to_owned()),
                cert_days_left: Some(180),
                hostname_match: Some(true),
                cert_names: Vec::new(),
                tls_version: Some("TLS 1.3".to_owned()),
                alpn: Some("h2".to_owned()),
                http_status: Some(200),
                latency_ms: Some(u64::try_from(i % 300).unwrap() + 5),
                total_ms: 20,
                checked_at: "2026-12-01T00:00:00Z".to_owned(),
                stages: Vec::new(),
            };
            if i % 50 == 7 {
                r.healthy = false;
                r.error = Some(format!(
                    "tls: the server presented pin {}, which the metadata does not list for this server (expected {})",
                    pin(i + 1),
                    pin(i)
                ));
                r.pin_match = Some(false);
                r.presented_pin = Some(pin(i + 1));
                r.http_status = None;
                r.latency_ms = None;
                r.client_accepted = None;
            } else if i % 97 == 3 {
                r.client_accepted = Some(false);
                r.http_status = None;
                r.latency_ms = None;
                r.warnings.push("reachable, pin OK, but the server refused our client certificate (CertificateUnknown alert): is our pin in the metadata it reads?".to_owned());
            } else if i % 31 == 5 {
                r.cert_days_left = Some(i64::try_from(i % 29).unwrap());
                r.warnings.push(format!("the certificate expires in {} day(s), on 2026-12-20T00:00:00Z", i % 29));
            }
            r.state = HealthState::of(&r);
            r
        })
        .collect()
}

fn context(lang: Lang) -> ReportContext {
    ReportContext {
        title: "Federationens hälsa".to_owned(),
        metadata_source: "https://fed.example.se/md/kontosynk.jws".to_owned(),
        metadata_iss: Some("https://fed.example.se".to_owned()),
        metadata_expires: Some("2026-12-08T00:00:00Z".to_owned()),
        checked_at: "2026-12-01T00:00:00Z".to_owned(),
        expiry_warning_days: 30,
        lang,
        pending: vec![PendingServer {
            entity_id: "https://ny.example.se".to_owned(),
            organization: Some("Nya skolan".to_owned()),
            organization_id: Some("SE2129999999".to_owned()),
            base_uri: "https://api.ny.example.se/".to_owned(),
            tags: vec!["egilv1".to_owned()],
            pin: Some(pin(99_999)),
        }],
        ..ReportContext::default()
    }
}

fn squeeze(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The page at `path` with `fragment`, as Chromium's DOM after the script ran, at 1000 px.
fn dom(path: &Path, fragment: &str) -> String {
    squeeze(&chromium_url(
        &format!("file://{}#{fragment}", path.display()),
        &["--dump-dom".to_owned(), "--window-size=1000,900".to_owned()],
    ))
}

/// The `data-entity` and `data-state` of the rendered rows, in order.
fn rows(dom: &str) -> Vec<(String, String)> {
    let start = dom.find("<tbody id=\"rows\">").expect("the table body");
    let body = &dom[start..start + dom[start..].find("</tbody>").unwrap()];
    body.split("<tr class=\"s")
        .skip(1)
        .map(|tail| {
            let attr = |name: &str| {
                let start = tail.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
                tail[start..start + tail[start..].find('"').unwrap()].to_owned()
            };
            (attr("data-entity"), attr("data-state"))
        })
        .collect()
}

/// The number the page says it shows (`<span id="shown" data-n="…">`).
fn shown(dom: &str) -> usize {
    let at = dom.find("id=\"shown\"").expect("the shown count");
    let tail = &dom[at..];
    let start = tail.find("data-n=\"").unwrap() + 8;
    tail[start..start + tail[start..].find('"').unwrap()]
        .parse()
        .unwrap()
}

fn screenshot(path: &Path, fragment: &str, name: &str) {
    let shot = artefacts().join(name);
    chromium_url(
        &format!("file://{}#{fragment}", path.display()),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1000,1200".to_owned(),
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn five_thousand_servers_one_table_under_a_megabyte() {
    let results = federation(5000);
    let unhealthy = results
        .iter()
        .filter(|r| r.state == HealthState::Unhealthy)
        .count();
    let refused = results
        .iter()
        .filter(|r| r.state == HealthState::RefusedClient)
        .count();
    assert!(unhealthy > 50 && refused > 20, "{unhealthy} {refused}");
    let page = html::render(&results, &context(Lang::Sv));
    assert!(page.len() < 1_000_000, "the page is {} bytes", page.len());
    assert!(
        !page.contains(" src="),
        "no external scripts, images or fonts"
    );
    assert!(
        !page.contains("@font-face") && !page.contains("<link"),
        "no external fonts or styles"
    );
    let path = artefacts().join("health-5000.html");
    std::fs::write(&path, &page).unwrap();

    // The default view, in Swedish: failures first, then the refused, warnings, the server
    // not checked yet, and the healthy collapsed per organization; nothing overflows 1000 px.
    let first = dom(&path, "");
    assert!(first.contains("<html lang=\"sv\""), "{}", &first[..400]);
    assert!(
        first.contains("data-overflow=\"no\""),
        "the table fits 1000 px"
    );
    assert!(first.contains(">Organisation<") && first.contains("Sök organisation"));
    assert!(first.contains("id=\"count-unhealthy\" href=\"#state=unhealthy\"><b>100</b><span data-t=\"unhealthy\">fel</span>"), "{}", &first[..3000]);
    assert!(
        first.contains(
            "class=\"count neutral\" id=\"count-pending\" href=\"#state=pending\"><b>1</b>"
        )
    );
    let listed = rows(&first);
    assert_eq!(listed.len(), 100, "one page of rows");
    assert!(
        listed.iter().all(|(_, s)| s == "unhealthy"),
        "failures first: {listed:?}"
    );
    assert_eq!(shown(&first), 5001);
    let last_page = dom(&path, "page=99");
    assert!(
        last_page.contains("fungerande servrar (visa)"),
        "healthy rows are collapsed per organization"
    );
    assert!(!last_page.contains("data-state=\"healthy\""), "collapsed");

    // Filter by state.
    let refused_dom = dom(&path, "state=refused_client");
    assert_eq!(shown(&refused_dom), refused);
    let listed = rows(&refused_dom);
    assert!(
        !listed.is_empty() && listed.iter().all(|(_, s)| s == "refused_client"),
        "{listed:?}"
    );
    assert!(refused_dom.contains("Nekar oss"));

    // Search by organization id, then by pin; healthy rows show individually when found.
    let found = dom(&path, "q=SE2120000017");
    assert_eq!(shown(&found), 5);
    assert!(
        rows(&found)
            .iter()
            .all(|(e, _)| e == "https://kommun17.example.se")
    );
    let by_pin = dom(&path, &format!("q={}", urlencode(&pin(4321)[..20])));
    assert_eq!(shown(&by_pin), 1, "one server has that pin");
    assert!(rows(&by_pin)[0].0.ends_with("kommun865.example.se"));

    // Filter by tag and state together.
    let expected = results
        .iter()
        .filter(|r| r.state == HealthState::Warning && r.tags.iter().any(|t| t == "gnapv1"))
        .count();
    let all_warnings = results
        .iter()
        .filter(|r| r.state == HealthState::Warning)
        .count();
    assert!(
        expected > 0 && expected < all_warnings,
        "{expected} of {all_warnings}"
    );
    let gnap = dom(&path, "tag=gnapv1&state=warning");
    let rows_gnap = rows(&gnap);
    assert_eq!(shown(&gnap), expected);
    assert!(rows_gnap.iter().all(|(e, s)| s == "warning" && {
        let n: usize = e
            .trim_start_matches("https://kommun")
            .trim_end_matches(".example.se")
            .parse()
            .unwrap();
        n % 2 == 1
    }));

    // Natural sort: Kommun 2 before Kommun 10 before Kommun 100, descending reverses.
    let sorted = dom(&path, "q=kommun1&sort=org&dir=asc");
    let orgs: Vec<String> = rows(&sorted).into_iter().map(|(e, _)| e).collect();
    let pos = |e: &str| orgs.iter().position(|x| x == e).unwrap_or(usize::MAX);
    assert!(
        pos("https://kommun1.example.se") < pos("https://kommun10.example.se"),
        "{orgs:?}"
    );
    assert!(
        pos("https://kommun10.example.se") < pos("https://kommun11.example.se"),
        "{orgs:?}"
    );
    let entities = dom(&path, "sort=entity&dir=desc");
    assert_eq!(rows(&entities)[0].0, "https://ny.example.se", "n after k");
    assert_eq!(
        rows(&entities)[1].0,
        "https://kommun1000.example.se",
        "1000 is the largest"
    );
    assert!(entities.contains("<th data-sort=\"entity\" class=\"desc\">"));

    // English through the switch's fragment.
    let english = dom(&path, "lang=en&state=unhealthy");
    assert!(english.contains("<html lang=\"en\""));
    assert!(english.contains(">Organization<") && english.contains("✘ FAIL"));

    screenshot(&path, "", "health-5000-sv.png");
    screenshot(
        &path,
        "lang=en&state=refused_client",
        "health-5000-en-refused.png",
    );

    // The figures for the README's benchmark (printed, never asserted).
    let render_ms: String = first
        .split("data-render-ms=\"")
        .nth(1)
        .map(|t| t.chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_default();
    eprintln!(
        "health page, 5,000 servers: {} bytes, rendered by Chromium {render_ms} ms after navigation start",
        page.len()
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[test]
fn expired_metadata_banner_names_the_expired_source_and_the_valid_ones() {
    let results = federation(10);
    let mut context = context(Lang::Sv);
    context.sources = vec![
        html::SourceState {
            name: "moa-trial".to_owned(),
            expires_at: Some("2026-11-30T12:00:00Z".to_owned()),
            expired: true,
        },
        html::SourceState {
            name: "moa-prod".to_owned(),
            expires_at: Some("2026-12-09T00:00:00Z".to_owned()),
            expired: false,
        },
    ];
    let page = html::render(&results, &context);
    assert!(
        page.contains("Metadata från moa-trial gick ut 2026-11-30T12:00:00Z"),
        "{page}"
    );
    assert!(page.contains("Fortfarande giltiga källor: moa-prod (2026-12-09T00:00:00Z)"));
    assert!(
        page.contains("https://kommun1.example.se"),
        "the last results stay"
    );

    context.lang = Lang::En;
    context.sources.truncate(1);
    let page = html::render(&results, &context);
    assert!(page.contains("Metadata from moa-trial expired at 2026-11-30T12:00:00Z"));
    assert!(!page.contains("class=\"valid-sources\""), "none is");

    context.sources.clear();
    let page = html::render(&results, &context);
    assert!(
        !page.contains("id=\"run-error\""),
        "no banner while every source is valid"
    );
}

/// Names come from members' metadata and problems from their servers: markup in them is
/// shown as text, never run, in the table (rendered by the page's script) and in a group.
#[test]
fn markup_in_member_names_and_problems_is_shown_not_run() {
    const RUN: &str = "<img src=x onerror=\"document.title='pwned'\">";
    const CLOSE: &str = "</script><script>document.title='pwned'</script>";
    let mut results = federation(10);
    results[0].organization = Some(format!("Kommun {RUN}"));
    results[0].entity_id = format!("https://evil.example.se/{CLOSE}");
    results[0].healthy = false;
    results[0].error = Some(format!("tls: {RUN}"));
    results[0].state = HealthState::of(&results[0]);
    results[5].organization = Some(format!("Healthy {CLOSE}"));
    let path = artefacts().join("markup.html");
    std::fs::write(&path, html::render(&results, &context(Lang::En))).unwrap();
    let dom = dom(&path, "");
    assert!(
        dom.contains("<title>Federationens hälsa</title>"),
        "a script ran: {dom}"
    );
    assert!(!dom.contains("<img src=\"x\""), "markup became an element");
    assert!(
        dom.contains("tls: &lt;img src=x onerror=\"document.title='pwned'\"&gt;"),
        "the problem is shown as text: {dom}"
    );
    assert!(dom.contains("Healthy &lt;/script&gt;"), "{dom}");
}
