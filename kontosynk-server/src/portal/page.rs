//! The HTML page: the IdP choice and every organization's services as buttons.

use std::fmt::Write as _;

use skolfed_sso::links::SsoLinks;
use skolfed_sso::saml::{Aggregate, IdentityProvider};

use super::text::Lang;

/// The most IdPs listed for a search.
pub(crate) const MAX_IDPS_SHOWN: usize = 50;

/// What one page shows.
pub(crate) struct PageInput<'a> {
    pub lang: Lang,
    pub links: Option<&'a SsoLinks>,
    pub aggregate: Option<&'a Aggregate>,
    /// The chosen IdP (known in the verified aggregate).
    pub chosen: Option<&'a IdentityProvider>,
    /// Show the chooser (no IdP yet, or "change school").
    pub choosing: bool,
    /// The search text.
    pub query: &'a str,
}

/// Escapes text for HTML content and attribute values.
pub(crate) fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
}

fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape(text, &mut out);
    out
}

/// Renders the page.
pub(crate) fn render(input: &PageInput<'_>) -> String {
    let t = input.lang.texts();
    let lang = input.lang.code();
    let other = input.lang.other();
    let mut html = String::with_capacity(64 * 1024);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"referrer\" content=\"no-referrer\">\n<title>{title}</title>\n<link rel=\"stylesheet\" href=\"/portal.css\">\n</head>\n<body>\n<a class=\"skip\" href=\"#services\">{skip}</a>\n<header class=\"top\">\n<h1>{title}</h1>\n<nav aria-label=\"{nav}\"><a id=\"lang-switch\" href=\"/?lang={other_code}\" lang=\"{other_code}\" hreflang=\"{other_code}\">{other_name}</a></nav>\n</header>\n<main>\n",
        title = t.title,
        skip = t.skip,
        nav = t.language_nav,
        other_code = other.code(),
        other_name = other.texts().language_name,
    );
    school_section(input, &mut html);
    services_section(input, &mut html);
    let _ = write!(
        html,
        "</main>\n<footer><p>{}</p></footer>\n</body>\n</html>\n",
        t.privacy
    );
    html
}

fn school_section(input: &PageInput<'_>, html: &mut String) {
    let t = input.lang.texts();
    let lang = input.lang.code();
    let _ = write!(
        html,
        "<section id=\"school\" aria-labelledby=\"school-heading\">\n<h2 id=\"school-heading\">{}</h2>\n",
        t.school_heading
    );
    if let Some(idp) = input.chosen {
        let _ = write!(
            html,
            "<p id=\"chosen-idp\" data-entity=\"{}\">{} <strong>{}</strong>. ",
            esc(&idp.entity_id),
            t.chosen,
            esc(idp.name(lang))
        );
        if !input.choosing {
            let _ = write!(
                html,
                "<a id=\"change-idp\" href=\"/?change=1\">{}</a>",
                t.change
            );
        }
        html.push_str("</p>\n");
    }
    if input.choosing || input.chosen.is_none() {
        let Some(aggregate) = input.aggregate else {
            let _ = write!(
                html,
                "<p class=\"notice\" role=\"status\">{}</p>\n</section>\n",
                t.no_idps
            );
            return;
        };
        let _ = write!(
            html,
            "<form id=\"idp-search-form\" method=\"get\" action=\"/\" role=\"search\">\n<label for=\"idp-search\">{label}</label>\n<p id=\"idp-search-hint\" class=\"hint\">{hint}</p>\n<input id=\"idp-search\" name=\"q\" type=\"search\" value=\"{query}\" aria-describedby=\"idp-search-hint\" autocomplete=\"off\" maxlength=\"100\">\n<input type=\"hidden\" name=\"change\" value=\"1\">\n<button type=\"submit\">{button}</button>\n</form>\n",
            label = t.search_label,
            hint = t.search_hint,
            query = esc(input.query),
            button = t.search_button,
        );
        let query = input.query.trim();
        let mut shown = 0;
        let mut more = false;
        let mut list = String::new();
        for idp in aggregate
            .idps
            .iter()
            .filter(|idp| query.is_empty() || idp.matches(query))
        {
            if shown == MAX_IDPS_SHOWN {
                more = true;
                break;
            }
            shown += 1;
            let name = esc(idp.name(lang));
            let _ = write!(
                list,
                "<li><a class=\"idp-choice\" href=\"/choose?idp={}\" data-entity=\"{}\" aria-label=\"{} {name}\">{name}",
                skolfed_sso::links::encode_component(&idp.entity_id),
                esc(&idp.entity_id),
                t.choose_prefix,
            );
            if !idp.scopes.is_empty() {
                let _ = write!(
                    list,
                    " <span class=\"scope\">{}</span>",
                    esc(&idp.scopes.join(", "))
                );
            }
            list.push_str("</a></li>\n");
        }
        if shown == 0 {
            let _ = writeln!(
                html,
                "<p class=\"notice\" role=\"status\">{}</p>",
                t.no_match
            );
        } else {
            let _ = write!(
                html,
                "<ul id=\"idp-list\" class=\"idp-list\">\n{list}</ul>\n"
            );
            if more {
                let _ = writeln!(
                    html,
                    "<p class=\"hint\" role=\"status\">{}</p>",
                    t.showing_first
                );
            }
        }
    }
    html.push_str("</section>\n");
}

fn services_section(input: &PageInput<'_>, html: &mut String) {
    let t = input.lang.texts();
    let _ = write!(
        html,
        "<section id=\"services\" aria-labelledby=\"services-heading\" tabindex=\"-1\">\n<h2 id=\"services-heading\">{}</h2>\n",
        t.services_heading
    );
    let idp = input.chosen.map(|idp| idp.entity_id.as_str());
    if idp.is_none() {
        let _ = writeln!(html, "<p class=\"notice\">{}</p>", t.choose_first);
    }
    let organizations = input.links.map_or(&[][..], |l| &l.organizations[..]);
    if organizations.is_empty() {
        let _ = writeln!(
            html,
            "<p class=\"notice\" role=\"status\">{}</p>",
            t.no_services
        );
    }
    for (i, org) in organizations.iter().enumerate() {
        let info = &org.info;
        let _ = write!(
            html,
            "<article class=\"org\" aria-labelledby=\"org-{i}\">\n<header>"
        );
        if let Some(logo) = &info.logotype {
            let _ = write!(
                html,
                "<img class=\"org-logo\" src=\"{}\" alt=\"\" loading=\"lazy\" referrerpolicy=\"no-referrer\">",
                esc(logo)
            );
        }
        let _ = write!(html, "<h3 id=\"org-{i}\">{}</h3>", esc(&info.display_name));
        if let Some(url) = &info.url {
            let _ = write!(
                html,
                " <a class=\"org-url\" href=\"{}\" rel=\"noreferrer\">{}<span class=\"visually-hidden\"> {}</span></a>",
                esc(url),
                t.website,
                esc(&info.display_name)
            );
        }
        html.push_str("</header>\n");
        if let Some(description) = &info.description {
            let _ = writeln!(
                html,
                "<p class=\"org-description\">{}</p>",
                esc(description)
            );
        }
        html.push_str("<ul class=\"services\">\n");
        for link in &org.links {
            let url = idp.and_then(|idp| link.login_url(idp));
            let state = if link.disabled {
                Some(("disabled", t.disabled))
            } else if idp.is_some() && url.is_none() {
                Some(("unavailable", t.not_for_school))
            } else {
                None
            };
            let entity = link.entity_id.as_deref().map(esc).unwrap_or_default();
            let mut inner = String::new();
            if let Some(logo) = &link.logo {
                let _ = write!(
                    inner,
                    "<img src=\"{}\" alt=\"\" loading=\"lazy\" referrerpolicy=\"no-referrer\">",
                    esc(logo)
                );
            }
            let _ = write!(
                inner,
                "<span class=\"name\">{}</span>",
                esc(&link.display_name)
            );
            if let Some(description) = &link.description {
                let _ = write!(
                    inner,
                    "<span class=\"description\">{}</span>",
                    esc(description)
                );
            }
            match (&url, state) {
                (Some(url), None) => {
                    let _ = writeln!(
                        html,
                        "<li><a class=\"service\" href=\"{}\" data-entity=\"{entity}\" rel=\"noreferrer\" aria-label=\"{} {}\">{inner}</a></li>",
                        esc(url),
                        t.login_at,
                        esc(&link.display_name)
                    );
                }
                (_, Some((class, why))) => {
                    let _ = writeln!(
                        html,
                        "<li><span class=\"service {class}\" data-entity=\"{entity}\" aria-disabled=\"true\">{inner}<span class=\"state\">{why}</span></span></li>"
                    );
                }
                (None, None) => {
                    // No IdP chosen yet: the service is shown, the chooser explains.
                    let _ = writeln!(
                        html,
                        "<li><span class=\"service waiting\" data-entity=\"{entity}\">{inner}</span></li>"
                    );
                }
            }
        }
        html.push_str("</ul>\n</article>\n");
    }
    html.push_str("</section>\n");
}

/// The style sheet: system fonts, high contrast, visible focus, disabled services greyed.
pub(crate) const CSS: &str = r#"*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;background:#f6f6f4;line-height:1.45}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;padding:.5rem;z-index:2}
.top{display:flex;justify-content:space-between;align-items:center;padding:1rem 1.5rem;background:#00406b;color:#fff}
.top h1{margin:0;font-size:1.4rem}.top a{color:#fff}
main{max-width:70rem;margin:0 auto;padding:1rem 1.5rem}
section{margin-bottom:2rem}
a:focus-visible,button:focus-visible,input:focus-visible{outline:3px solid #f0a000;outline-offset:2px}
label{display:block;font-weight:600}.hint{color:#4a4a4a;margin:.2rem 0 .5rem}
input[type=search]{font-size:1rem;padding:.5rem;width:min(30rem,100%);border:2px solid #555;border-radius:4px}
button{font-size:1rem;padding:.5rem 1rem;margin-left:.3rem;background:#00406b;color:#fff;border:0;border-radius:4px}
.idp-list{list-style:none;padding:0;columns:2 18rem}.idp-list li{margin:.2rem 0}
.idp-choice{display:inline-block;padding:.3rem .5rem;color:#00406b}.scope{color:#555;font-size:.85rem}
.notice{background:#fff8dc;border-left:4px solid #c99a00;padding:.5rem 1rem}
.org{background:#fff;border-radius:8px;padding:1rem;margin:1rem 0;box-shadow:0 1px 3px rgba(0,0,0,.12)}
.org header{display:flex;align-items:center;gap:.8rem;flex-wrap:wrap}.org h3{margin:0}
.org-logo{width:48px;height:48px;object-fit:contain}
.services{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(15rem,1fr));gap:.8rem}
.service{display:flex;flex-direction:column;gap:.2rem;padding:.8rem;border:2px solid #00406b;border-radius:8px;color:#1a1a1a;text-decoration:none;min-height:5rem;background:#fff}
a.service:hover{background:#e8f1f8}.service img{width:40px;height:40px;object-fit:contain}
.service .name{font-weight:700;color:#00406b}.service .description{font-size:.9rem}
.service.disabled,.service.unavailable{border-color:#bbb;color:#767676;background:#eee;filter:grayscale(1);cursor:not-allowed}
.service.disabled .name,.service.unavailable .name{color:#666}.service .state{font-size:.85rem;font-style:italic}
.service.waiting{border-style:dashed}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
footer{max-width:70rem;margin:0 auto;padding:1rem 1.5rem;color:#4a4a4a;font-size:.9rem}
"#;
