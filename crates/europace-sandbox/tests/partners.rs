//! Partnermanagement: lookup, creation (201 / 205), reading a partner, the seed partners.

mod common;

use common::{SendJson, start, tippgeber};
use serde_json::{Value, json};

fn is_partner_id(id: &str) -> bool {
    id.len() == 5
        && id[..3].chars().all(|c| c.is_ascii_uppercase())
        && id[3..].chars().all(|c| c.is_ascii_digit())
}

#[tokio::test]
async fn starts_with_the_seed_partners() {
    let s = start();
    let token = s.token().await;
    let listed: Vec<Value> = s.get_json("/_sandbox/partners").await;
    let ids: Vec<&str> = listed
        .iter()
        .map(|p| p["partnerId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["KBT01", "TGP01", "TGT01"]);
    assert_eq!(s.sandbox.partners(), listed);

    for (id, typ) in [
        ("KBT01", "PERSON"),
        ("TGP01", "ORGANISATION"),
        ("TGT01", "ORGANISATION"),
    ] {
        let response = s
            .http
            .get(s.url(&format!("/v2/partner/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let partner: Value = response.json().await.unwrap();
        assert_eq!(partner["partnerId"], id);
        assert_eq!(partner["typ"], typ);
        assert!(partner.get("parent").is_none(), "seeds are roots");
    }
    s.server.stop().await;
}

#[tokio::test]
async fn lookup_of_an_unknown_externe_partner_id_is_an_empty_list() {
    let s = start();
    let token = s.token().await;
    let response = s.lookup(&token, "client-4711").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"total": 0, "partners": []}));
    s.server.stop().await;
}

#[tokio::test]
async fn lookup_without_externe_partner_id_is_400() {
    let s = start();
    let token = s.token().await;
    for path in [
        "/v2/partners",
        "/v2/partners?externePartnerId=",
        "/v2/partners?other=1",
    ] {
        let response = s
            .http
            .get(s.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert!(body["message"].is_string());
    }
    s.server.stop().await;
}

#[tokio::test]
async fn create_lookup_and_read_a_partner() {
    let s = start();
    let token = s.token().await;

    let response = s.create(&token, "TGP01", &tippgeber("client-4711")).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = created["partnerId"].as_str().unwrap().to_owned();
    assert!(is_partner_id(&id), "{id}");
    assert_eq!(location, format!("{}/v2/partner/{id}", s.base));
    assert_eq!(created["typ"], "PERSON");
    assert_eq!(created["parent"], json!({"partnerId": "TGP01"}));
    assert_eq!(created["anrede"], "FRAU");
    assert_eq!(created["vorname"], "Tina");
    assert_eq!(created["nachname"], "Tipp");
    assert_eq!(created["email"], "tina@example.org");
    assert_eq!(created["telefonnummer"], "030 123456");
    assert_eq!(created["externePartnerId"], "client-4711");

    let response = s.lookup(&token, "client-4711").await;
    assert_eq!(response.status(), 200);
    let found: Value = response.json().await.unwrap();
    assert_eq!(
        found,
        json!({"total": 1, "partners": [{"partnerId": id, "href": location}]})
    );

    let response = s
        .http
        .get(&location)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let read: Value = response.json().await.unwrap();
    assert_eq!(read, created);

    assert_eq!(s.sandbox.partners().len(), 4);
    assert_eq!(s.sandbox.partners()[3], created);
    s.server.stop().await;
}

#[tokio::test]
async fn creating_an_existing_externe_partner_id_answers_205_with_the_existing_partner() {
    let s = start();
    let token = s.token().await;
    let first: Value = s.created(&token, "TGP01", &tippgeber("client-1")).await;

    // Same externePartnerId below the same parent: the existing partner, updated.
    let mut again = tippgeber("client-1");
    again["telefonnummer"] = json!("030 999");
    let response = s.create(&token, "TGP01", &again).await;
    assert_eq!(response.status(), 205);
    assert_eq!(
        response.headers()["location"].to_str().unwrap(),
        format!(
            "{}/v2/partner/{}",
            s.base,
            first["partnerId"].as_str().unwrap()
        )
    );
    let existing: Value = response.json().await.unwrap();
    assert_eq!(existing["partnerId"], first["partnerId"]);
    assert_eq!(existing["parent"], json!({"partnerId": "TGP01"}));
    // "found … and was updated"
    assert_eq!(existing["telefonnummer"], "030 999");
    assert_eq!(s.sandbox.partners().len(), 4);

    // Below another parent (the test parent) it is another partner; the Europace-wide search
    // finds both.
    let response = s.create(&token, "TGT01", &tippgeber("client-1")).await;
    assert_eq!(response.status(), 201);
    let test_partner: Value = response.json().await.unwrap();
    assert_ne!(test_partner["partnerId"], first["partnerId"]);
    assert_eq!(test_partner["parent"], json!({"partnerId": "TGT01"}));
    assert_eq!(s.sandbox.partners().len(), 5);

    // A different externePartnerId is a new partner with a new id.
    let other: Value = s.created(&token, "TGP01", &tippgeber("client-2")).await;
    assert_ne!(other["partnerId"], first["partnerId"]);
    s.server.stop().await;
}

#[tokio::test]
async fn partners_without_externe_partner_id_are_always_new() {
    let s = start();
    let token = s.token().await;
    let body = json!({"typ": "ORGANISATION", "name": "Filiale Nord"});
    let a: Value = s.create(&token, "TGP01", &body).await.json().await.unwrap();
    let b: Value = s.create(&token, "TGP01", &body).await.json().await.unwrap();
    assert_ne!(a["partnerId"], b["partnerId"]);
    assert_eq!(a["typ"], "ORGANISATION");
    s.server.stop().await;
}

#[tokio::test]
async fn read_only_and_unknown_attributes_are_ignored() {
    let s = start();
    let token = s.token().await;
    let body = json!({
        "partnerId": "HAX01",
        "parent": {"partnerId": "KBT01"},
        "avatar": "https://example.org/a.png",
        "lieblingsfarbe": "blau",
        "vorname": "Tom",
        "nachname": ""
    });
    let created: Value = s.create(&token, "TGT01", &body).await.json().await.unwrap();
    assert_ne!(created["partnerId"], "HAX01");
    assert_eq!(created["parent"], json!({"partnerId": "TGT01"}));
    assert!(created.get("avatar").is_none());
    assert!(created.get("lieblingsfarbe").is_none());
    assert!(
        created.get("nachname").is_none(),
        "empty strings are ignored"
    );
    s.server.stop().await;
}

#[tokio::test]
async fn unknown_partner_and_unknown_parent_are_404() {
    let s = start();
    let token = s.token().await;
    let response = s
        .http
        .get(s.url("/v2/partner/NOP99"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].is_string());

    let response = s.create(&token, "NOP99", &tippgeber("client-1")).await;
    assert_eq!(response.status(), 404);
    assert_eq!(s.sandbox.partners().len(), 3);
    s.server.stop().await;
}

#[tokio::test]
async fn invalid_partner_bodies_are_400_without_echoing_values() {
    let s = start();
    let token = s.token().await;
    let url = s.url("/v2/partner/TGP01/untergeordnete");
    for raw in ["{not json", "[1,2]", "\"text\"", ""] {
        let response = s
            .http
            .post(&url)
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{raw}");
    }
    for bad in [
        json!({"anrede": "Herr Geheimrat"}),
        json!({"typ": "ROBOTER"}),
        json!({"vorname": 42}),
    ] {
        let response = s.create(&token, "TGP01", &bad).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert!(!body["message"].as_str().unwrap().contains("Geheimrat"));
    }
    let response = s
        .http
        .post(&url)
        .bearer_auth(&token)
        .header("Content-Type", "text/plain")
        .body(tippgeber("x").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_eq!(s.sandbox.partners().len(), 3);
    s.server.stop().await;
}

#[tokio::test]
async fn href_follows_the_request_host() {
    let s = start();
    let token = s.token().await;
    let created: Value = s.created(&token, "TGP01", &tippgeber("client-9")).await;
    let id = created["partnerId"].as_str().unwrap();
    let found: Value = s
        .http
        .get(s.url("/v2/partners?externePartnerId=client-9"))
        .header("Host", "europace.example:8443")
        .bearer_auth(&token)
        .send_json()
        .await;
    assert_eq!(
        found["partners"][0]["href"],
        format!("http://europace.example:8443/v2/partner/{id}")
    );
    s.server.stop().await;
}

#[tokio::test]
async fn patch_changes_only_the_attributes_sent_and_answers_the_partner() {
    let s = start();
    let token = s.token().await;
    let created: Value = s.created(&token, "TGT01", &tippgeber("client-9")).await;
    let id = created["partnerId"].as_str().unwrap();

    let response = s
        .update(
            &token,
            id,
            &json!({"telefonnummer": "030 999", "unbekannt": 1}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    let mut expected = created.clone();
    expected["telefonnummer"] = json!("030 999");
    assert_eq!(updated, expected, "only the phone number changed");
    let read: Value = s
        .http
        .get(s.url(&format!("/v2/partner/{id}")))
        .bearer_auth(&token)
        .send_json()
        .await;
    assert_eq!(read, expected);

    // Unchangeable attributes are ignored; an empty string deletes a value.
    let response = s
        .update(
            &token,
            id,
            &json!({"partnerId": "XXX00", "typ": "ORGANISATION",
                    "parent": {"partnerId": "KBT01"}, "email": "", "nachname": "Neu"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["partnerId"], created["partnerId"]);
    assert_eq!(updated["typ"], "PERSON");
    assert_eq!(updated["parent"], json!({"partnerId": "TGT01"}));
    assert_eq!(updated["nachname"], "Neu");
    assert!(updated.get("email").is_none(), "{updated}");
    assert_eq!(updated["vorname"], created["vorname"]);
    assert_eq!(s.sandbox.partners().len(), 4);
    s.server.stop().await;
}

#[tokio::test]
async fn patch_of_an_unknown_partner_is_404_and_bad_bodies_are_400_or_415() {
    let s = start();
    let token = s.token().await;
    let response = s
        .update(&token, "NOP99", &json!({"telefonnummer": "030 1"}))
        .await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].is_string());

    for bad in [
        json!({"anrede": "Geheimrat"}),
        json!({"anrede": ""}),
        json!({"telefonnummer": 301234}),
        json!([1]),
    ] {
        let response = s.update(&token, "KBT01", &bad).await;
        assert_eq!(response.status(), 400, "{bad}");
        let text = response.text().await.unwrap();
        assert!(
            !text.contains("Geheimrat") && !text.contains("301234"),
            "{text}"
        );
    }
    let response = s
        .http
        .patch(s.url("/v2/partner/KBT01"))
        .bearer_auth(&token)
        .header("Content-Type", "text/plain")
        .body(r#"{"telefonnummer": "030 1"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let unauthenticated = s
        .http
        .patch(s.url("/v2/partner/KBT01"))
        .json(&json!({"telefonnummer": "030 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let kbt = &s.sandbox.partners()[0];
    assert_eq!(kbt["telefonnummer"], "030 0000000", "nothing changed");
    s.server.stop().await;
}
