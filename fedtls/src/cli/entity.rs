//! `fedtls entity`: generate a member's entity metadata from its certificates.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use clap::Args;
use fedtls::Tag;
use fedtls::entity::{EndpointSpec, EntitySpec, build_entity};

use super::{CliError, CliResult, read_file};

/// An endpoint as given on the command line: `cert=FILE,base_uri=URL,tags=a+b,description=TEXT`;
/// `cert=` may repeat (old and new certificate side by side while renewing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointArg {
    /// The certificate (or chain) files, at least one.
    pub certs: Vec<PathBuf>,
    /// `base_uri`, if given.
    pub base_uri: Option<String>,
    /// Tags, validated.
    pub tags: Vec<Tag>,
    /// Description, if given.
    pub description: Option<String>,
}

impl FromStr for EndpointArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut certs = Vec::new();
        let mut base_uri = None;
        let mut tags = None;
        let mut description = None;
        for (key, value) in split_spec(text)? {
            let slot_taken = |taken: bool| {
                if taken {
                    Err(format!("{key} is given twice"))
                } else {
                    Ok(())
                }
            };
            match key.as_str() {
                "cert" => {
                    if value.is_empty() {
                        return Err("cert= needs a file name".to_owned());
                    }
                    let path = PathBuf::from(value);
                    if certs.contains(&path) {
                        return Err(format!("cert={} is given twice", path.display()));
                    }
                    certs.push(path);
                }
                "base_uri" => {
                    slot_taken(base_uri.is_some())?;
                    base_uri = Some(value);
                }
                "tags" => {
                    slot_taken(tags.is_some())?;
                    let parsed = value
                        .split('+')
                        .filter(|t| !t.is_empty())
                        .map(|t| Tag::new(t).map_err(|e| e.to_string()))
                        .collect::<Result<Vec<_>, _>>()?;
                    tags = Some(parsed);
                }
                "description" => {
                    slot_taken(description.is_some())?;
                    description = Some(value);
                }
                other => {
                    return Err(format!(
                        "unknown key {other:?}: expected cert, base_uri, tags or description"
                    ));
                }
            }
        }
        if certs.is_empty() {
            return Err("cert=FILE is required".to_owned());
        }
        Ok(Self {
            certs,
            base_uri,
            tags: tags.unwrap_or_default(),
            description,
        })
    }
}

/// Splits `k=v,k="v, with commas",…` into pairs. A value in double quotes may hold commas;
/// inside quotes, `\"` is a quote and `\\` a backslash.
fn split_spec(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            if c == ',' {
                return Err(format!("{key:?} has no value: write key=value"));
            }
            key.push(c);
        }
        let key = key.trim().to_owned();
        if key.is_empty() {
            return Err("expected key=value pairs separated by commas".to_owned());
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some(escaped @ ('"' | '\\')) => value.push(escaped),
                        Some(other) => {
                            value.push('\\');
                            value.push(other);
                        }
                        None => value.push('\\'),
                    },
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!("the quoted value of {key} has no closing quote"));
            }
            match chars.next() {
                None | Some(',') => {}
                Some(c) => {
                    return Err(format!(
                        "unexpected {c:?} after the quoted value of {key}: separate pairs with commas"
                    ));
                }
            }
        } else {
            for c in chars.by_ref() {
                if c == ',' {
                    break;
                }
                value.push(c);
            }
        }
        pairs.push((key, value));
        if chars.peek().is_none() {
            return Ok(pairs);
        }
    }
}

/// Generate a member's entity metadata (pins and issuers) from its certificates.
#[derive(Debug, Args)]
#[command(
    long_about = "Generate a member's entity metadata from its certificates: each endpoint's pin is \
computed from its certificate, and the issuers are derived (the last certificate of a chain file, a \
self-signed certificate itself, a gnapv1 client's own certificate (Skolverket's token service, the SUNET \
authorization server, accepts a client only when its certificate is one of the issuers), plus every \
--issuer). Prints the entity as JSON; check the result with \
`fedtls lint` before upload.\n\n\
An endpoint SPEC is comma-separated key=value pairs:\n  \
cert=FILE         PEM certificate, or a chain file: leaf first, root last (required); repeat it\n                    \
to list old and new certificate side by side while renewing (cert=old.pem,cert=new.pem)\n  \
base_uri=URL      the https URL clients connect to (required for --server)\n  \
tags=T1+T2        tags joined with '+' (each 1-64 characters of a-z and 0-9)\n  \
description=TEXT  free text; double-quote it if it has commas (inside: \\\" and \\\\)\n\n\
Exit codes: 0 success, 1 a certificate or value was refused, 2 usage error.",
    after_help = "Example:\n  \
fedtls entity --entity-id https://skola.example/md \\\n    \
--organization 'Exempel kommun' --organization-id SE2120001234 \\\n    \
--server 'cert=srv.pem,base_uri=https://api.skola.example/,tags=egilv1' \\\n    \
--client 'cert=client-chain.pem,tags=egilv1,description=\"Sync, EGIL\"' \\\n    \
--scope skola.example --document > metadata.json"
)]
pub struct EntityArgs {
    /// The entity's unique URI.
    #[arg(long, value_name = "URI")]
    pub entity_id: String,
    /// The member's legal name (required by the Moa profile).
    #[arg(long, value_name = "NAME")]
    pub organization: Option<String>,
    /// The Moa organization id, LLYYMMDDXXXX (e.g. SE2021004185).
    #[arg(long, value_name = "ID")]
    pub organization_id: Option<String>,
    /// A server endpoint: cert=FILE[,cert=NEW_FILE],base_uri=URL[,tags=a+b][,description=TEXT]; repeatable.
    #[arg(long = "server", value_name = "SPEC")]
    pub servers: Vec<EndpointArg>,
    /// A client endpoint: cert=FILE[,cert=NEW_FILE][,tags=a+b][,description=TEXT]; repeatable.
    #[arg(long = "client", value_name = "SPEC")]
    pub clients: Vec<EndpointArg>,
    /// An extra issuer certificate (PEM) to list, e.g. the root CA of a leaf given alone; repeatable.
    #[arg(long = "issuer", value_name = "CA_PEM")]
    pub issuers: Vec<PathBuf>,
    /// A DNS domain for the Kontosynk saml-scope extension; repeatable.
    #[arg(long = "scope", value_name = "DOMAIN")]
    pub scopes: Vec<String>,
    /// Wrap the entity as a whole document {"version": "1.0.0", "cache_ttl": 3600, "entities": [...]}.
    #[arg(long)]
    pub document: bool,
}

/// Runs `fedtls entity`.
pub fn run(args: EntityArgs) -> CliResult {
    if args.servers.is_empty() && args.clients.is_empty() {
        return Err(CliError::usage(
            "give at least one --server or --client endpoint",
        ));
    }
    let endpoint = |arg: &EndpointArg| -> Result<EndpointSpec, CliError> {
        let (first, more) = arg
            .certs
            .split_first()
            .ok_or_else(|| CliError::usage("an endpoint needs cert=FILE"))?;
        Ok(EndpointSpec {
            certificate_pem: read_file(first)?,
            more_certificates_pem: more
                .iter()
                .map(|p| read_file(p))
                .collect::<Result<_, _>>()?,
            base_uri: arg.base_uri.clone(),
            tags: arg.tags.clone(),
            description: arg.description.clone(),
        })
    };
    let spec = EntitySpec {
        entity_id: args.entity_id,
        organization: args.organization,
        organization_id: args.organization_id,
        servers: args
            .servers
            .iter()
            .map(endpoint)
            .collect::<Result<_, _>>()?,
        clients: args
            .clients
            .iter()
            .map(endpoint)
            .collect::<Result<_, _>>()?,
        extra_issuers_pem: args
            .issuers
            .iter()
            .map(|p| read_file(p))
            .collect::<Result<_, _>>()?,
        scopes: args.scopes,
    };
    let entity = build_entity(&spec).map_err(CliError::failed)?;
    for (role, list) in [("server", &args.servers), ("client", &args.clients)] {
        for (i, arg) in list.iter().enumerate() {
            if arg.certs.len() > 1 {
                eprintln!(
                    "note: {role} {} lists {} certificates: {}",
                    i + 1,
                    arg.certs.len(),
                    when_peers_see_it(None, super::unix_now())
                );
            }
        }
    }
    let out = if args.document {
        serde_json::json!({ "version": "1.0.0", "cache_ttl": 3600, "entities": [entity] })
    } else {
        entity
    };
    let text = serde_json::to_string_pretty(&out)
        .map_err(|e| CliError::failed(format!("cannot encode the entity: {e}")))?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// When peers see a pin that is published now, honestly: at the latest one `cache_ttl` after
/// the federation publishes the metadata (a peer honours min(HTTP expiry, cache_ttl)), plus the
/// operator's review before publication, and later for a peer that cannot fetch (it keeps its
/// copy until that copy's `exp`).
pub fn when_peers_see_it(cache_ttl: Option<u64>, now: i64) -> String {
    let when = match cache_ttl {
        Some(ttl) => format!(
            "peers see the new pin at the latest at {} if this is published now (cache_ttl {ttl} s after publication)",
            super::rfc3339(now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX)))
        ),
        None => "peers see the new pin at the latest one cache_ttl after the federation publishes it (`fedtls verify` shows the federation's cache_ttl; `fedtls lint` on the published aggregate prints the time)".to_owned(),
    };
    format!(
        "{when}; the operator's review before publication comes on top, and a peer that cannot fetch keeps its old copy until that copy's exp. Switch the endpoint to the new certificate after that, then remove the old pin"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let arg: EndpointArg =
            "cert=a.pem,base_uri=https://x.example/,tags=egilv1+bolv1,description=Plain text"
                .parse()
                .unwrap();
        assert_eq!(arg.certs, vec![PathBuf::from("a.pem")]);
        assert_eq!(arg.base_uri.as_deref(), Some("https://x.example/"));
        assert_eq!(arg.tags.len(), 2);
        assert_eq!(arg.description.as_deref(), Some("Plain text"));

        let quoted: EndpointArg = r#"description="EGIL, SCIM \"v2\"",cert=b.pem"#.parse().unwrap();
        assert_eq!(quoted.description.as_deref(), Some(r#"EGIL, SCIM "v2""#));
        assert_eq!(quoted.certs, vec![PathBuf::from("b.pem")]);

        let renewing: EndpointArg = "cert=old.pem,cert=new.pem,tags=egilv1".parse().unwrap();
        assert_eq!(
            renewing.certs,
            vec![PathBuf::from("old.pem"), PathBuf::from("new.pem")]
        );
    }

    #[test]
    fn refuses_bad_specs() {
        for bad in [
            "",
            "base_uri=https://x/",
            "cert=",
            "cert=a.pem,cert=a.pem",
            "cert=a.pem,colour=blue",
            "cert=a.pem,tags=EGIL",
            "cert=a.pem,description=\"open",
            "cert=a.pem,description=\"x\"y",
            "cert=a.pem,oops",
        ] {
            assert!(bad.parse::<EndpointArg>().is_err(), "{bad:?}");
        }
    }
}
