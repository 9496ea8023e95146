//! Issue 8 (HIGH 2): once an import is stored, no answer says "nothing stored, retry later".
//!
//! The database is made to fail a chosen state change for real (a trigger on `imports` that
//! aborts the write, as a full disk would), on SQLite and PostgreSQL. The answer must name the
//! import and its state and must not invite a resend; once the database works again, the
//! background resume finishes the import, and Europace has exactly one case for the one lead.

use std::time::{Duration, Instant};

use secrecy::ExposeSecret as _;
use serde_json::Value;
use sqlx::Connection as _;

use crate::helpers::{Db, TestApp, both_backends, problem, seed, spawn_app_with};

both_backends!(
    a_failed_write_before_sending_is_answered_202_and_finished_once_later,
    a_failed_write_after_sending_is_answered_504_and_never_resent,
);

/// Makes every write that sets `imports.status` to `status` fail, like a full disk would.
async fn fail_writes_to(app: &TestApp, db: Db, status: &str) {
    let url = app.settings.database_url.expose_secret().to_owned();
    match db {
        Db::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            let sql = format!(
                "CREATE TRIGGER fail_status BEFORE UPDATE ON imports WHEN NEW.status = '{status}' \
                 BEGIN SELECT RAISE(ABORT, 'simulated: disk full'); END"
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        Db::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let sql = format!(
                "CREATE FUNCTION fail_status() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'simulated: disk full'; END $$; \
                 CREATE TRIGGER fail_status BEFORE UPDATE ON imports FOR EACH ROW \
                 WHEN (NEW.status = '{status}') EXECUTE FUNCTION fail_status();"
            );
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

/// The database works again.
async fn heal(app: &TestApp, db: Db) {
    let url = app.settings.database_url.expose_secret().to_owned();
    let sql = "DROP TRIGGER fail_status";
    match db {
        Db::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        }
        Db::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql("DROP TRIGGER fail_status ON imports")
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

/// Stale after 2 * (0.3 + 0.7) = 2 s: a replica's first pass resumes the import soon.
async fn app(db: Db) -> TestApp {
    spawn_app_with(db, |settings| {
        settings.europace.connect_timeout_ms = 300;
        settings.europace.request_timeout_ms = 700;
    })
    .await
}

/// Waits until the import is stale, starts a replica (its background pass runs at once) and
/// waits for `status`.
async fn resume_until(app: &TestApp, token: &str, id: &str, status: &str) {
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let _replica = app.spawn_replica().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = app.status_of(token, id).await;
        if now == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "import stays {now}, not {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn assert_no_invitation_to_resend(body: &Value) {
    let text = body.to_string().to_lowercase();
    assert!(
        !text.contains("nothing"),
        "claims nothing was stored: {body}"
    );
    assert!(!text.contains("retry"), "invites a retry: {body}");
}

async fn a_failed_write_before_sending_is_answered_202_and_finished_once_later(db: Db) {
    let app = app(db).await;
    let token = app.token().await;
    fail_writes_to(&app, db, "SENDING").await;

    // No Idempotency-Key: exactly the partner a "retry later" would make send the lead twice.
    let response = app
        .post_bytes(&token, &serde_json::to_vec(&seed()).unwrap(), None)
        .await;
    assert_eq!(response.status(), 202);
    assert!(response.headers().get("retry-after").is_none());
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    let id = body["drkleinrkVorgangsnummer"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/vorgang/{id}"));
    // The Tippgeber was new: stored ACCEPTED, then (issue 10) straight to SENDING with its
    // partnerId; PARTNER_READY is no longer a durable state, so the import stays ACCEPTED.
    assert_eq!(body["importStatus"], "ACCEPTED", "{body}");
    assert_no_invitation_to_resend(&body);
    assert_eq!(app.status_of(&token, &id).await, "ACCEPTED");
    assert!(app.sandbox_imports().await.is_empty(), "nothing was sent");

    heal(&app, db).await;
    resume_until(&app, &token, &id, "COMPLETED").await;
    assert_eq!(
        app.sandbox_imports().await.len(),
        1,
        "one case for one lead"
    );
    assert_eq!(app.sandbox_imports_of(&id).await, 1);
}

async fn a_failed_write_after_sending_is_answered_504_and_never_resent(db: Db) {
    let app = app(db).await;
    let token = app.token().await;
    // Issue 10: Europace's outcome and the CRM id are one write, SENDING -> COMPLETED (the
    // built-in CRM id is computed in process); IMPORTED is stored only for a remote CRM.
    fail_writes_to(&app, db, "COMPLETED").await;

    let response = app
        .post_bytes(&token, &serde_json::to_vec(&seed()).unwrap(), None)
        .await;
    let body = problem(response, 504).await;
    let id = body["drkleinrkVorgangsnummer"].as_str().unwrap().to_owned();
    assert_eq!(body["importStatus"], "IN_DOUBT", "{body}");
    assert_no_invitation_to_resend(&body);
    assert_eq!(app.sandbox_imports_of(&id).await, 1);

    heal(&app, db).await;
    resume_until(&app, &token, &id, "IN_DOUBT").await;
    assert_eq!(app.sandbox_imports_of(&id).await, 1, "never sent again");
}
