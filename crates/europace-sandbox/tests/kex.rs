//! KEX Vorgang Import: recording per environment, answers, rejections.

mod common;

use common::{start, tippgeber, vorgang};
use europace_sandbox::Environment;
use serde_json::{Value, json};

fn is_vorgangsnummer(nr: &str) -> bool {
    nr.len() == 6
        && nr[..2].chars().all(|c| c.is_ascii_uppercase())
        && nr[2..].chars().all(|c| c.is_ascii_digit())
}

#[tokio::test]
async fn import_without_environment_is_recorded_as_test() {
    let s = start();
    let token = s.token().await;
    let body = vorgang("Max");
    let response = s.import(&token, None, &body).await;
    assert_eq!(response.status(), 201);
    let answer: Value = response.json().await.unwrap();
    let nr = answer["vorgangsnummer"].as_str().unwrap().to_owned();
    assert!(is_vorgangsnummer(&nr), "{nr}");
    assert_eq!(answer["messages"], json!([]));
    assert!(
        answer["antragsteller1"]["id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert!(answer.get("antragsteller2").is_none());

    assert_eq!(
        s.recorded().await,
        vec![json!({"environment": "TEST", "vorgangsnummer": nr, "body": body})]
    );
    let direct = s.sandbox.vorgaenge();
    assert_eq!(direct.len(), 1);
    assert_eq!(direct[0].environment, Environment::Test);
    assert_eq!(direct[0].vorgangsnummer, nr);
    assert_eq!(direct[0].body, body);
    s.server.stop().await;
}

#[tokio::test]
async fn imports_are_recorded_per_environment_in_arrival_order() {
    let s = start();
    let token = s.token().await;
    let mut numbers = Vec::new();
    for (environment, name) in [
        (Some("PRODUCTION"), "Erste"),
        (Some("TEST"), "Zweite"),
        (None, "Dritte"),
        (Some("PRODUCTION"), "Vierte"),
    ] {
        let response = s.import(&token, environment, &vorgang(name)).await;
        assert_eq!(response.status(), 201);
        let answer: Value = response.json().await.unwrap();
        numbers.push(answer["vorgangsnummer"].as_str().unwrap().to_owned());
    }
    let recorded = s.recorded().await;
    let environments: Vec<&str> = recorded
        .iter()
        .map(|v| v["environment"].as_str().unwrap())
        .collect();
    assert_eq!(environments, ["PRODUCTION", "TEST", "TEST", "PRODUCTION"]);
    let names: Vec<&str> = recorded
        .iter()
        .map(|v| {
            v["body"]["antragsteller1"]["personendaten"]["vorname"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(names, ["Erste", "Zweite", "Dritte", "Vierte"]);
    let recorded_numbers: Vec<&str> = recorded
        .iter()
        .map(|v| v["vorgangsnummer"].as_str().unwrap())
        .collect();
    assert_eq!(recorded_numbers, numbers);
    let mut unique = numbers.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), numbers.len(), "Vorgangsnummern are unique");
    s.server.stop().await;
}

#[tokio::test]
async fn a_bad_environment_is_400_and_nothing_is_recorded() {
    let s = start();
    let token = s.token().await;
    for environment in ["production", "PROD", ""] {
        let response = s.import(&token, Some(environment), &vorgang("Max")).await;
        assert_eq!(response.status(), 400, "{environment:?}");
        let body: Value = response.json().await.unwrap();
        assert!(body["message"].is_string());
    }
    assert!(s.sandbox.vorgaenge().is_empty());
    s.server.stop().await;
}

#[tokio::test]
async fn invalid_json_is_400_with_a_message_that_does_not_echo_the_body() {
    let s = start();
    let token = s.token().await;
    for raw in [
        r#"{"antragsteller1": {"personendaten": {"vorname": "Geheim""#,
        "[1]",
        "",
    ] {
        let response = s
            .http
            .post(s.url("/vorgang"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        let message = body["message"].as_str().unwrap();
        assert!(!message.is_empty());
        assert!(!message.contains("Geheim"));
    }
    let response = s
        .http
        .post(s.url("/vorgang"))
        .bearer_auth(&token)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(vorgang("Max").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert!(s.sandbox.vorgaenge().is_empty());
    s.server.stop().await;
}

#[tokio::test]
async fn unknown_kundenbetreuer_or_tippgeber_is_400() {
    let s = start();
    let token = s.token().await;
    let mut body = vorgang("Max");
    body["kundenbetreuer"] = json!({"partnerId": "NOP99"});
    let response = s.import(&token, None, &body).await;
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("kundenbetreuer")
    );

    let mut body = vorgang("Max");
    body["tippgeber"] = json!({"partnerId": "NOP99"});
    assert_eq!(s.import(&token, None, &body).await.status(), 400);
    assert!(s.sandbox.vorgaenge().is_empty());

    // A Tippgeber created in Partnermanagement is known.
    let created: Value = s.created(&token, "TGT01", &tippgeber("client-1")).await;
    let mut body = vorgang("Max");
    body["tippgeber"] = json!({"partnerId": created["partnerId"]});
    assert_eq!(s.import(&token, None, &body).await.status(), 201);

    // Without kundenbetreuer Europace uses the caller: accepted.
    let body = json!({"antragsteller1": {"personendaten": {"vorname": "A", "nachname": "B"}}});
    assert_eq!(s.import(&token, None, &body).await.status(), 201);
    assert_eq!(s.sandbox.vorgaenge().len(), 2);
    s.server.stop().await;
}

#[tokio::test]
async fn the_body_is_recorded_unchanged_and_antragsteller2_gets_an_id() {
    let s = start();
    let token = s.token().await;
    let body = json!({
        "kundenbetreuer": {"partnerId": "KBT01"},
        "antragsteller1": {"personendaten": {"vorname": "Ä", "nachname": "Ö"}},
        "antragsteller2": {"personendaten": {"vorname": "Ü", "nachname": "ß"}},
        "finanzbedarf": {"kreditbetrag": 10000.50, "laufzeitInMonaten": 84},
        "zukunftsfeld": {"neu": [1, 2.5, "x", null, true]}
    });
    let response = s.import(&token, Some("PRODUCTION"), &body).await;
    assert_eq!(response.status(), 201);
    let answer: Value = response.json().await.unwrap();
    assert!(answer["antragsteller2"]["id"].is_string());
    assert_ne!(
        answer["antragsteller1"]["id"],
        answer["antragsteller2"]["id"]
    );
    assert_eq!(s.sandbox.vorgaenge()[0].body, body);
    s.server.stop().await;
}
