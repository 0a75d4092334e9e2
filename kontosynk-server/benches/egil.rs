//! Issue 16's server targets for `kontosynk-server egil`, over mutual TLS on loopback with
//! EgilSCIM's request shapes (`kontosynk_testbed::egil::EgilScim`), SQLite by default:
//!
//! 1. one school organizer's push of 1 organisation, 10 school units, 10,000 users, 400
//!    student groups and 1,000 activities, one request after the other on one keep-alive
//!    connection as EgilSCIM sends it: ≤ 10 s;
//! 2. single-object requests from 8 tenants at once (each on its own connection, POSTs of
//!    users, then GETs of them): ≥ 2,000 requests/s.
//!
//! Server and clients share the machine. Run: `cargo bench -p kontosynk-server --bench egil`
//! (`USERS=2000` for a short run, `DB=postgres` for a throwaway PostgreSQL cluster).

use std::sync::Arc;
use std::time::Instant;

use fedtls::snapshot::SnapshotCell;
use kontosynk_server::egil::EgilConfig;
use kontosynk_testbed::egil::{
    EgilScim, activity, add_tenants, organisation, pupil, school_unit, start_egil, student_group,
    uuid,
};
use kontosynk_testbed::federation::Fed;

fn main() {
    let users: u64 = std::env::var("USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut fed = Fed::new();
        let tenants = add_tenants(&mut fed, 8);
        let cell = Arc::new(SnapshotCell::with(fed.snapshot()));
        let db = if std::env::var("DB").is_ok_and(|v| v == "postgres") {
            ss12000::testing::postgres().await
        } else {
            ss12000::testing::sqlite()
        };
        let store = db.open().await;
        println!("store: {}", store.database());
        let (running, _server) =
            start_egil(&fed, cell, store, EgilConfig::default(), false).await;

        // 1. One push, one connection, one request at a time.
        let mut scim = EgilScim::connect(&fed, running.addr, Some("school-client"))
            .await
            .unwrap();
        let org = uuid(1, 0);
        let units: Vec<String> = (0..10).map(|n| uuid(2, n)).collect();
        let user_ids: Vec<String> = (0..users).map(|n| uuid(3, n)).collect();
        let groups = 400u64;
        let activities = 1_000u64;
        let started = Instant::now();
        let mut requests = 0u64;
        let mut check = |status: http::StatusCode| {
            assert_eq!(status, 201);
            requests += 1;
        };
        check(scim.post("Organisations", &organisation(&org, "Benchmark kommun")).await.status);
        for (n, unit) in units.iter().enumerate() {
            check(scim.post("SchoolUnits", &school_unit(unit, &org, &format!("{:08}", 10_000_000 + n))).await.status);
        }
        for (n, id) in user_ids.iter().enumerate() {
            let unit = &units[n % units.len()];
            check(scim.post("Users", &pupil(id, n as u64, unit)).await.status);
        }
        let per_group = (users / groups).max(1) as usize;
        for g in 0..groups {
            let start = (g as usize * per_group) % user_ids.len().max(1);
            let members: Vec<String> = user_ids.iter().skip(start).take(per_group).cloned().collect();
            let unit = &units[g as usize % units.len()];
            check(scim.post("StudentGroups", &student_group(&uuid(5, g), unit, &members)).await.status);
        }
        for a in 0..activities {
            let unit = &units[a as usize % units.len()];
            check(scim.post("Activities", &activity(&uuid(6, a), unit, &uuid(5, a % groups))).await.status);
        }
        let elapsed = started.elapsed();
        println!(
            "push: 1 organisation + 10 school units + {users} users + {groups} groups + {activities} activities = {requests} requests on one connection in {:.2} s ({:.0} requests/s; target ≤ 10 s for 10,000 users)",
            elapsed.as_secs_f64(),
            requests as f64 / elapsed.as_secs_f64()
        );

        // 2. Eight tenants at once, single-object requests.
        let per_tenant = 1_000u64;
        for (label, method) in [("POST", 0), ("GET", 1)] {
            let started = Instant::now();
            let mut tasks = Vec::new();
            for (t, connector) in tenants.iter().enumerate() {
                let mut scim = EgilScim::connect_with(connector, running.addr).await.unwrap();
                tasks.push(tokio::spawn(async move {
                    for n in 0..per_tenant {
                        let id = uuid(7, t as u64 * 1_000_000 + n);
                        let answer = if method == 0 {
                            scim.post("Users", &pupil(&id, n, &uuid(2, 0))).await
                        } else {
                            scim.get(&format!("/Users/{id}")).await
                        };
                        assert_eq!(answer.status.as_u16(), if method == 0 { 201 } else { 200 });
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            let elapsed = started.elapsed();
            let total = per_tenant * tenants.len() as u64;
            println!(
                "8 tenants, single-object {label}s: {total} requests in {:.2} s = {:.0} requests/s (target ≥ 2,000/s)",
                elapsed.as_secs_f64(),
                total as f64 / elapsed.as_secs_f64()
            );
        }
        drop(running);
    });
}
