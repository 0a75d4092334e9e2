//! `skolfed-sso links`: every service's login URL for one IdP.

use skolfed_sso::links::parse;

use super::{EXIT_PROBLEMS, FetchArgs, print_json};

/// Print every service's login URL for one IdP, built as the pilot describes (entity_id:
/// sp_init + the IdP's entityID, percent-encoded; link_map: the IdP's entry, or none).
/// Organizations and services with errors are left out (see `skolfed-sso lint`).
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  skolfed-sso links --idp https://idp.alvkommun.se/idp/shibboleth sso-links.json
  skolfed-sso links --json --idp https://idp.alvkommun.se/idp/shibboleth https://…/sso-links.json

Exit codes: 0 at least one link, 1 no service has a link for this IdP, 3 unreadable.")]
pub struct LinksArgs {
    /// The IdP's SAML entityID, exactly as in the federation's metadata.
    #[arg(long, value_name = "ENTITYID", env = "SKOLFED_SSO_IDP")]
    idp: String,
    /// The SSO-link document: a file or an https URL.
    #[arg(value_name = "SOURCE")]
    source: String,
    /// Print JSON: {\"idp\", \"organizations\": [{\"display_name\", …, \"services\": [{\"display_name\", \"disabled\", \"login_url\"}]}]}.
    #[arg(long, env = "SKOLFED_SSO_JSON")]
    json: bool,
    #[command(flatten)]
    fetch: FetchArgs,
}

/// Prints the links; the exit code.
pub async fn run(args: LinksArgs) -> u8 {
    let bytes = match args.fetch.read(&args.source).await {
        Ok(bytes) => bytes,
        Err(code) => return code,
    };
    let parsed = parse(&bytes);
    if parsed.has_errors() {
        eprintln!(
            "warning: {} problems in the document; items with errors are left out (run `skolfed-sso lint`)",
            parsed.problems.len()
        );
    }
    let links = parsed.links.for_idp(&args.idp);
    let linked = links
        .organizations
        .iter()
        .flat_map(|o| &o.services)
        .filter(|s| s.login_url.is_some())
        .count();
    if args.json {
        print_json(&links);
    } else {
        for org in &links.organizations {
            println!("{}", org.display_name);
            for service in &org.services {
                let target = match (&service.login_url, service.disabled) {
                    (_, true) => "(disabled)".to_owned(),
                    (Some(url), false) => url.clone(),
                    (None, false) => "(no link for this IdP)".to_owned(),
                };
                println!("  {}: {target}", service.display_name);
            }
        }
    }
    if linked == 0 {
        eprintln!("error: no service has a link for {}", args.idp);
        EXIT_PROBLEMS
    } else {
        0
    }
}
