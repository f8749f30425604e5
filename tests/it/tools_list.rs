//! The tool list is a contract: names, descriptions, annotations and schemas
//! are snapshotted in tests/snapshots/tools_list.json. Run with
//! `UPDATE_SNAPSHOTS=1` to accept a deliberate change, and review the diff.

use crate::common::*;

const SNAPSHOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/snapshots/tools_list.json"
);

#[tokio::test]
async fn tools_list_matches_snapshot_and_every_tool_is_read_only_with_a_title() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    let tools = client.list_all_tools().await.unwrap();
    for t in &tools {
        let a = t
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no annotations", t.name));
        assert_eq!(a.read_only_hint, Some(true), "{} must be read-only", t.name);
        assert!(t.title.is_some(), "{} needs a title", t.name);
        assert!(
            t.output_schema.is_some(),
            "{} needs an output schema",
            t.name
        );
    }
    // The budget a client pays on every session: the tools/list result as compact JSON.
    let wire = serde_json::to_string(&serde_json::json!({ "tools": tools }))
        .unwrap()
        .len();
    assert!(wire <= 8192, "tools/list is {wire} bytes, over 8,192");
    let json = serde_json::to_string_pretty(&tools).unwrap() + "\n";
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::write(SNAPSHOT, &json).unwrap();
    }
    let want = std::fs::read_to_string(SNAPSHOT)
        .expect("snapshot exists (run with UPDATE_SNAPSHOTS=1 once)");
    assert_eq!(
        json, want,
        "tools/list changed; if deliberate, rerun with UPDATE_SNAPSHOTS=1 and review the diff"
    );
    client.cancel().await.unwrap();
}
