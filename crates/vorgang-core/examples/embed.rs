//! Embeds the import use case with in-memory ports and imports the published example.
//!
//! `cargo run -p vorgang-core --example embed`

use std::sync::Arc;

use vorgang_core::memory::{InMemoryEuropace, InMemoryImportStore};
use vorgang_core::{
    BuiltinCrm, Importer, ImporterConfig, NewImport, Ports, RandomIds, SystemClock,
};
use vorgang_model::{Environment, parse_import_request};

const EXAMPLE: &str = include_str!("../../../examples/seed-request.json");

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Europace stand-in holding the Kundenbetreuer and the two Tippgeber parents.
    let europace = Arc::new(InMemoryEuropace::with_partners(&[
        "KBT01", "TGP01", "TGT01",
    ]));
    let importer = Importer::new(
        ImporterConfig {
            kundenbetreuer_partner_id: "KBT01".into(),
            tippgeber_parent_id: "TGP01".into(),
            test_tippgeber_parent_id: "TGT01".into(),
        },
        Ports {
            store: Arc::new(InMemoryImportStore::new()),
            partners: europace.clone(),
            kex: europace.clone(),
            crm: Arc::new(BuiltinCrm),
            clock: Arc::new(SystemClock),
            ids: Arc::new(RandomIds),
        },
    );

    let request = parse_import_request(EXAMPLE.as_bytes())?;
    let record = importer
        .submit(NewImport {
            client_id: "embedded-client",
            environment: Environment::Test,
            idempotency_key: Some("example-1"),
            raw_body: EXAMPLE.as_bytes(),
            request,
            // No caller trace: the Europace calls get a trace derived from the import's id.
            trace: None,
            respond_async: false,
        })
        .await?
        .record;

    println!(
        "{}",
        serde_json::json!({
            "drkleinrkVorgangsnummer": record.id,
            "status": record.status,
            "europaceVorgangsnummer": record.europace_vorgangsnummer,
            "crmKennung": record.crm_kennung,
            "messages": record.messages,
            "kexImportsReceived": europace.imports().len(),
        })
    );
    Ok(())
}
