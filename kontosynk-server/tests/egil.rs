//! The EGIL server over real mutual TLS on loopback, spoken to exactly as EgilSCIM speaks
//! (EGIL-NOTES.md: its headers, one keep-alive connection), on SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use kontosynk_framework::RateLimit;
use kontosynk_server::egil::{ApiKeys, EgilConfig, TenantLimit};
use kontosynk_testbed::egil::{
    EgilScim, USER_EXT, activity, organisation, pupil, school_unit, start_egil, student_group, uuid,
};
use kontosynk_testbed::federation::{Fed, SCHOOL, SUPPLIER};
use serde_json::json;
use ss12000::testing::TestDatabase;

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(ss12000::testing::sqlite()).await; })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(ss12000::testing::postgres().await).await; })*
        }
    };
}

both_backends!(
    egilscim_request_shapes_get_the_statuses_it_depends_on,
    tenants_never_see_each_other
);

const ORG: &str = "5C4B6F1E-0C4B-4A36-9E0B-3B4F1E0C4B6F";

async fn egilscim_request_shapes_get_the_statuses_it_depends_on(db: TestDatabase) {
    let fed = Fed::new();
    let store = db.open().await;
    let (running, _) =
        start_egil(&fed, fed.cell.clone(), store, EgilConfig::default(), false).await;
    let mut scim = EgilScim::connect(&fed, running.addr, Some("school-client"))
        .await
        .unwrap();
    let unit = uuid(2, 1);
    let user = uuid(3, 1);

    // Creates, parent before child: 201 with the stored resource.
    let created = scim
        .post("Organisations", &organisation(ORG, "Exempla kommun"))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        created.content_type.as_deref(),
        Some("application/scim+json")
    );
    assert_eq!(created.json()["id"], ORG);
    assert_eq!(
        scim.post("SchoolUnits", &school_unit(&unit, ORG, "12345678"))
            .await
            .status,
        201
    );
    let mut body = pupil(&user, 1, &unit);
    body["x-kommun-extra"] = json!({"kept": [1, 2, {"verbatim": true}]});
    body[USER_EXT]["securityMarking"] = json!("Ingen");
    assert_eq!(scim.post("Users", &body).await.status, StatusCode::CREATED);

    // The same id again: 409 (EgilSCIM then PUTs).
    let again = scim.post("Users", &body).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(
        again.json()["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(again.json()["status"], "409");

    // Update: exactly 200; unknown id: 404 (EgilSCIM then POSTs); PUT /X takes the body's id.
    body["displayName"] = json!("Elev Ett");
    let updated = scim.put("Users", &user, &body).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    let unknown = uuid(3, 99);
    let mut other = pupil(&unknown, 99, &unit);
    assert_eq!(
        scim.put("Users", &unknown, &other).await.status,
        StatusCode::NOT_FOUND
    );
    body["displayName"] = json!("Elev Ettan");
    let put_without_id = scim.send(Method::PUT, "/Users", Some(&body)).await.unwrap();
    assert_eq!(put_without_id.status, StatusCode::OK);
    other.as_object_mut().unwrap().remove("externalId");
    let no_id = scim
        .send(Method::PUT, "/Users", Some(&other))
        .await
        .unwrap();
    assert_eq!(no_id.status, StatusCode::BAD_REQUEST);
    assert!(
        no_id.json()["detail"]
            .as_str()
            .unwrap()
            .contains("externalId")
    );

    // GET by id, in upper case too: every member as sent, id = externalId.
    let got = scim.get(&format!("/Users/{}", user.to_uppercase())).await;
    assert_eq!(got.status, StatusCode::OK);
    let got = got.json();
    assert_eq!(got["displayName"], "Elev Ettan");
    assert_eq!(
        got["x-kommun-extra"],
        json!({"kept": [1, 2, {"verbatim": true}]})
    );
    assert_eq!(got[USER_EXT]["securityMarking"], "Ingen");
    assert_eq!(
        got[USER_EXT]["enrolments"][0]["$ref"],
        format!("SchoolUnits/{unit}")
    );
    assert_eq!(got["id"], user);

    // A ListResponse with startIndex/count paging.
    for n in 2..=5 {
        assert_eq!(
            scim.post("Users", &pupil(&uuid(3, n), n, &unit))
                .await
                .status,
            201
        );
    }
    let list = scim.get("/Users?startIndex=2&count=2").await;
    assert_eq!(list.status, StatusCode::OK);
    let list = list.json();
    assert_eq!(
        list["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    assert_eq!(list["totalResults"], 5);
    assert_eq!(list["startIndex"], 2);
    let ids: Vec<&str> = list["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [uuid(3, 2), uuid(3, 3)]);
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let page = scim
            .get(&format!("/Users?startIndex={start}&count=2"))
            .await
            .json();
        let resources = page["Resources"].as_array().unwrap().clone();
        if resources.is_empty() {
            break;
        }
        start += resources.len();
        seen.extend(
            resources
                .into_iter()
                .map(|r| r["id"].as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(seen.len(), 5, "paging visits every user once: {seen:?}");

    // Validation: 400 with a detail naming the member.
    let bad = scim
        .post("SchoolUnits", &school_unit(&uuid(2, 2), ORG, "123"))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.json()["detail"]
            .as_str()
            .unwrap()
            .contains("schoolUnitCode")
    );
    let bad = scim
        .post(
            "Users",
            &json!({"externalId": "not-a-uuid", "userName": "x"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = scim
        .raw(
            http::Request::post("/Users")
                .header("host", "localhost")
                .header("content-type", "application/scim+json")
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    b"{\"externalId\":",
                )))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Wrong media type: 415; PATCH: 501; a method a path does not take: 405.
    let text = scim
        .raw(
            http::Request::post("/Users")
                .header("host", "localhost")
                .header("content-type", "text/plain")
                .body(http_body_util::Full::new(bytes::Bytes::from(
                    body.to_string(),
                )))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let patch = scim
        .send(Method::PATCH, &format!("/Users/{user}"), Some(&json!({})))
        .await
        .unwrap();
    assert_eq!(patch.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        scim.send(Method::DELETE, "/Users", None)
            .await
            .unwrap()
            .status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(scim.get("/Groups").await.status, StatusCode::NOT_FOUND);

    // Children that name what was never sent are kept, and reported.
    let group = uuid(5, 1);
    let ghost = uuid(3, 404);
    assert_eq!(
        scim.post(
            "StudentGroups",
            &student_group(&group, &unit, &[user.clone(), ghost.clone()])
        )
        .await
        .status,
        201
    );
    assert_eq!(
        scim.post("Activities", &activity(&uuid(6, 1), &uuid(2, 77), &group))
            .await
            .status,
        201
    );
    let report = scim.get("/DanglingReferences").await.json();
    assert_eq!(report["totalResults"], 2, "{report}");
    let missing: Vec<&str> = report["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["missing"].as_str().unwrap())
        .collect();
    assert_eq!(missing, [ghost.as_str(), uuid(2, 77).as_str()]);
    assert_eq!(
        report["references"][0]["member"],
        "studentMemberships[1].value"
    );

    // DELETE with curl's form Content-Type: exactly 204 and no body; again: 404.
    let deleted = scim.delete("Users", &user).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.body.is_empty());
    assert_eq!(
        scim.delete("Users", &user).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        scim.get(&format!("/Users/{user}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(scim.get("/Users").await.json()["totalResults"], 4);
    drop(running);
}

async fn tenants_never_see_each_other(db: TestDatabase) {
    let fed = Fed::new();
    let store = db.open().await;
    let (running, server) =
        start_egil(&fed, fed.cell.clone(), store, EgilConfig::default(), false).await;
    let mut school = EgilScim::connect(&fed, running.addr, Some("school-client"))
        .await
        .unwrap();
    let mut supplier = EgilScim::connect(&fed, running.addr, Some("supplier-client"))
        .await
        .unwrap();
    let shared = uuid(1, 1);
    let only_school = uuid(1, 2);
    assert_eq!(
        school
            .post("Organisations", &organisation(&shared, "Skolans"))
            .await
            .status,
        201
    );
    assert_eq!(
        school
            .post("Organisations", &organisation(&only_school, "Bara skolans"))
            .await
            .status,
        201
    );
    // The same id under another tenant is another object.
    assert_eq!(
        supplier
            .post("Organisations", &organisation(&shared, "Leverantörens"))
            .await
            .status,
        201
    );
    assert_eq!(
        school.get(&format!("/Organisations/{shared}")).await.json()["displayName"],
        "Skolans"
    );
    assert_eq!(
        supplier
            .get(&format!("/Organisations/{shared}"))
            .await
            .json()["displayName"],
        "Leverantörens"
    );
    // Another tenant's id does not exist for this one: GET, PUT and DELETE are 404.
    let path = format!("/Organisations/{only_school}");
    assert_eq!(supplier.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        supplier
            .put(
                "Organisations",
                &only_school,
                &organisation(&only_school, "Kapad")
            )
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        supplier.delete("Organisations", &only_school).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        school.get(&path).await.json()["displayName"],
        "Bara skolans"
    );
    assert_eq!(school.get("/Organisations").await.json()["totalResults"], 2);
    assert_eq!(
        supplier.get("/Organisations").await.json()["totalResults"],
        1
    );
    // The tenant is kept with its organization.
    let tenants = server.store().egil_tenants().await.unwrap();
    let ids: Vec<&str> = tenants.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, [SCHOOL, SUPPLIER]);
    assert!(tenants[0].organization.is_some());
    // Deleting one tenant's object leaves the other's.
    assert_eq!(school.delete("Organisations", &shared).await.status, 204);
    assert_eq!(
        supplier
            .get(&format!("/Organisations/{shared}"))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_unlisted_client_is_refused_and_a_removed_pin_on_an_open_connection() {
    let fed = Fed::new();
    let db = ss12000::testing::sqlite();
    let cell = fed.fresh_cell();
    let (running, _) = start_egil(
        &fed,
        Arc::clone(&cell),
        db.open().await,
        EgilConfig::default(),
        false,
    )
    .await;
    match EgilScim::connect(&fed, running.addr, Some("unlisted-client")).await {
        Err(_) => {}
        Ok(mut scim) => {
            let answer = scim.send(Method::GET, "/Users", None).await;
            assert!(answer.map_or(true, |a| a.status == StatusCode::FORBIDDEN));
        }
    }
    let mut scim = EgilScim::connect(&fed, running.addr, Some("school-client"))
        .await
        .unwrap();
    assert_eq!(scim.get("/Users").await.status, StatusCode::OK);
    // The federation drops the school's client pins; the connection stays open.
    let document = fed.signed(
        |payload| {
            for entity in payload["entities"].as_array_mut().unwrap() {
                if entity["entity_id"] == SCHOOL {
                    entity["clients"] = json!([]);
                }
            }
        },
        3600,
    );
    cell.store(fed.snapshot_of(&document));
    let answer = scim.send(Method::GET, "/Users", None).await.unwrap();
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{answer:?}");
}

#[tokio::test]
async fn api_key_clients_are_their_own_tenants_and_unknown_keys_are_refused() {
    let fed = Fed::new();
    let db = ss12000::testing::sqlite();
    let mut keys = ApiKeys::new(http::HeaderName::from_static("x-api-key"));
    keys.add_entries("skolsystem=0123456789abcdef0123456789abcdef", "test")
        .unwrap();
    let config = EgilConfig {
        api_keys: Some(Arc::new(keys)),
        ..EgilConfig::default()
    };
    let (running, server) = start_egil(&fed, fed.cell.clone(), db.open().await, config, true).await;
    let mut anonymous = EgilScim::connect(&fed, running.addr, None).await.unwrap();
    let refused = anonymous
        .post("Organisations", &organisation(ORG, "X"))
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("X-API-Key")
            || refused.json()["detail"]
                .as_str()
                .unwrap()
                .contains("x-api-key")
    );
    anonymous.extra = vec![(
        "x-api-key".into(),
        "0123456789abcdef0123456789abcdeX".into(),
    )];
    assert_eq!(
        anonymous.get("/Organisations").await.status,
        StatusCode::UNAUTHORIZED
    );
    anonymous.extra = vec![(
        "x-api-key".into(),
        "0123456789abcdef0123456789abcdef".into(),
    )];
    assert_eq!(
        anonymous
            .post("Organisations", &organisation(ORG, "X"))
            .await
            .status,
        201
    );
    // A FedTLS client on the same listener is still its entity, not the key's tenant.
    let mut school = EgilScim::connect(&fed, running.addr, Some("school-client"))
        .await
        .unwrap();
    assert_eq!(
        school.get(&format!("/Organisations/{ORG}")).await.status,
        StatusCode::NOT_FOUND
    );
    let tenants = server.store().egil_tenants().await.unwrap();
    assert_eq!(tenants[0].id, "api-key:skolsystem");
}

#[tokio::test]
async fn the_tenant_rate_limit_waits_before_it_refuses() {
    let fed = Fed::new();
    let db = ss12000::testing::sqlite();
    let config = EgilConfig {
        tenant_limit: Some(TenantLimit {
            rate: RateLimit {
                per_second: 5.0,
                burst: 1,
            },
            max_wait: Duration::from_millis(500),
        }),
        ..EgilConfig::default()
    };
    let (running, _) = start_egil(&fed, fed.cell.clone(), db.open().await, config, false).await;
    let mut scim = EgilScim::connect(&fed, running.addr, Some("school-client"))
        .await
        .unwrap();
    let started = Instant::now();
    for _ in 0..3 {
        assert_eq!(scim.get("/Users").await.status, StatusCode::OK);
    }
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "the 2nd and 3rd waited ~200 ms each"
    );
    // Four at once: at 5/s, the last would wait ~800 ms > 500 ms.
    let mut answers = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(
            EgilScim::connect(&fed, running.addr, Some("school-client"))
                .await
                .unwrap(),
        );
    }
    let mut tasks = Vec::new();
    for mut client in clients {
        tasks.push(tokio::spawn(async move { client.get("/Users").await }));
    }
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let refused: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(!refused.is_empty(), "{answers:?}");
    assert!(refused.iter().all(|a| a.retry_after.is_some()));
    // Another tenant is not held up.
    let mut supplier = EgilScim::connect(&fed, running.addr, Some("supplier-client"))
        .await
        .unwrap();
    assert_eq!(supplier.get("/Users").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_tenant_at_its_object_limit_gets_507_and_others_are_not_affected() {
    let fed = Fed::new();
    let db = ss12000::testing::sqlite();
    let config = EgilConfig {
        max_objects_per_tenant: Some(2),
        ..EgilConfig::default()
    };
    let (running, _) = start_egil(&fed, fed.cell.clone(), db.open().await, config, false).await;
    let mut school = EgilScim::connect(&fed, running.addr, Some("school-client"))
        .await
        .unwrap();
    assert_eq!(
        school
            .post("Organisations", &organisation(&uuid(1, 1), "A"))
            .await
            .status,
        201
    );
    assert_eq!(
        school
            .post("Organisations", &organisation(&uuid(1, 2), "B"))
            .await
            .status,
        201
    );
    let full = school
        .post("Organisations", &organisation(&uuid(1, 3), "C"))
        .await;
    assert_eq!(full.status, StatusCode::INSUFFICIENT_STORAGE);
    assert!(
        full.json()["detail"]
            .as_str()
            .unwrap()
            .contains("--max-objects-per-tenant")
    );
    // Updates still work; a deletion makes room.
    assert_eq!(
        school
            .put(
                "Organisations",
                &uuid(1, 1),
                &organisation(&uuid(1, 1), "A2")
            )
            .await
            .status,
        200
    );
    assert_eq!(
        school.delete("Organisations", &uuid(1, 2)).await.status,
        204
    );
    assert_eq!(
        school
            .post("Organisations", &organisation(&uuid(1, 3), "C"))
            .await
            .status,
        201
    );
    let mut supplier = EgilScim::connect(&fed, running.addr, Some("supplier-client"))
        .await
        .unwrap();
    assert_eq!(
        supplier
            .post("Organisations", &organisation(&uuid(1, 9), "S"))
            .await
            .status,
        201
    );
}
