//! `fedtls lookup`: find entities and endpoints in verified metadata.

use std::process::ExitCode;

use fedtls::OrganizationId;
use fedtls::index::{EndpointMatch, Index, Role};
use fedtls::metadata::{Endpoint, Entity};
use fedtls::pin::Pin;
use serde_json::{Value, json};

use super::source::TrustArgs;
use super::{CliError, CliResult};

/// Look up peers in verified metadata: by pin, entity id, tag, organization id or scope.
#[derive(clap::Args, Debug)]
#[command(after_help = "\
Examples:
  fedtls lookup --jwks jwks.json md.jws --client-pin lz6QwPv/28pGG18Xjcf1V3T2EMk30dzgwTUJUg957Fs=
  fedtls lookup --jwks jwks.json md.jws --tag gnapv1 --json
  fedtls lookup --jwks jwks.json md.jws --organization-id SE2021004185

Pins may be given bare or as curl's sha256//PIN. The metadata is verified first, exactly as
`fedtls verify` does. Exit 0 when something matched, 1 when nothing did (or the metadata was
refused), 2 for usage errors.")]
#[command(group(clap::ArgGroup::new("query").required(true).args(
    ["client_pin", "server_pin", "entity", "tag", "organization_id", "scope"]
)))]
pub struct Args {
    #[command(flatten)]
    trust: TrustArgs,
    /// The client whose certificate has this SPKI pin.
    #[arg(long, value_name = "PIN")]
    client_pin: Option<Pin>,
    /// The server whose certificate has this SPKI pin.
    #[arg(long, value_name = "PIN")]
    server_pin: Option<Pin>,
    /// The entity with this entity_id.
    #[arg(long, value_name = "ENTITY_ID")]
    entity: Option<String>,
    /// Endpoints with this tag (servers and clients, or only --role).
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
    /// With --tag: only servers or only clients.
    #[arg(long, value_enum, requires = "tag")]
    role: Option<RoleArg>,
    /// Entities with this organization_id (e.g. SE2021004185).
    #[arg(long, value_name = "ID")]
    organization_id: Option<OrganizationId>,
    /// Entities whose saml-scope extension lists this domain.
    #[arg(long, value_name = "DOMAIN")]
    scope: Option<String>,
    /// Print a JSON array of matches.
    #[arg(long)]
    json: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum RoleArg {
    Server,
    Client,
}

/// One answer: an endpoint of an entity, or a whole entity.
enum Found<'a> {
    Endpoint(EndpointMatch<'a>),
    Entity(&'a Entity),
}

/// Runs `fedtls lookup`.
pub fn run(args: Args) -> CliResult {
    let verified = args.trust.verify(false)?;
    let index = verified.index();
    let found = query(index, &args);
    if args.json {
        let list: Vec<Value> = found.iter().map(found_json).collect();
        let text = serde_json::to_string_pretty(&list).map_err(CliError::failed)?;
        println!("{text}");
    } else if found.is_empty() {
        eprintln!("no match");
    } else {
        for item in &found {
            print_found(item);
        }
    }
    let code = if found.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    drop(found);
    super::exit_without_freeing(verified);
    Ok(code)
}

fn query<'a>(index: &'a Index, args: &Args) -> Vec<Found<'a>> {
    if let Some(pin) = &args.client_pin {
        return index
            .client_by_pin(pin)
            .map(Found::Endpoint)
            .into_iter()
            .collect();
    }
    if let Some(pin) = &args.server_pin {
        return index
            .server_by_pin(pin)
            .map(Found::Endpoint)
            .into_iter()
            .collect();
    }
    if let Some(id) = &args.entity {
        return index.entity(id).map(Found::Entity).into_iter().collect();
    }
    if let Some(tag) = &args.tag {
        let roles: &[Role] = match args.role {
            Some(RoleArg::Server) => &[Role::Server],
            Some(RoleArg::Client) => &[Role::Client],
            None => &[Role::Server, Role::Client],
        };
        return roles
            .iter()
            .flat_map(|&role| index.tagged(tag, role))
            .map(Found::Endpoint)
            .collect();
    }
    if let Some(org) = &args.organization_id {
        return index
            .entities_by_organization_id(org)
            .map(Found::Entity)
            .collect();
    }
    if let Some(scope) = &args.scope {
        return index.entities_by_scope(scope).map(Found::Entity).collect();
    }
    Vec::new()
}

fn endpoint_json(endpoint: &Endpoint) -> Value {
    json!({
        "description": endpoint.description,
        "base_uri": endpoint.base_uri,
        "pins": endpoint.pins,
        "tags": endpoint.tags,
    })
}

fn found_json(found: &Found<'_>) -> Value {
    match found {
        Found::Endpoint(m) => json!({
            "entity_id": m.entity.entity_id,
            "organization": m.entity.organization,
            "organization_id": m.entity.organization_id,
            "scopes": m.entity.scopes,
            "role": m.role,
            "position": m.position,
            "endpoint": endpoint_json(m.endpoint),
        }),
        Found::Entity(entity) => serde_json::to_value(entity).unwrap_or(Value::Null),
    }
}

fn print_found(found: &Found<'_>) {
    let (entity, endpoint) = match found {
        Found::Endpoint(m) => (m.entity, Some(m)),
        Found::Entity(entity) => (*entity, None),
    };
    println!("entity_id:       {}", entity.entity_id);
    println!(
        "organization:    {}",
        entity.organization.as_deref().unwrap_or("-")
    );
    println!(
        "organization_id: {}",
        entity
            .organization_id
            .as_ref()
            .map_or("-", OrganizationId::as_str)
    );
    if !entity.scopes.is_empty() {
        println!("scopes:          {}", entity.scopes.join(", "));
    }
    let endpoints: Vec<(Role, usize, &Endpoint)> = match endpoint {
        Some(m) => vec![(m.role, m.position, m.endpoint)],
        None => entity
            .servers
            .iter()
            .enumerate()
            .map(|(i, e)| (Role::Server, i, e))
            .chain(
                entity
                    .clients
                    .iter()
                    .enumerate()
                    .map(|(i, e)| (Role::Client, i, e)),
            )
            .collect(),
    };
    for (role, position, e) in endpoints {
        let tags: Vec<&str> = e.tags.iter().map(|t| t.as_str()).collect();
        println!(
            "  {role}[{position}]: {}{} tags=[{}]",
            e.description.as_deref().unwrap_or("(no description)"),
            e.base_uri
                .as_deref()
                .map(|u| format!(" at {u}"))
                .unwrap_or_default(),
            tags.join(",")
        );
        for pin in &e.pins {
            println!("    pin {pin}");
        }
    }
    println!();
}
