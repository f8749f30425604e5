//! `bedrock_spend` with `chart: true`: the real binary over stdio answers with
//! a PNG image block beside the structured answer. The PNG is decoded here
//! (signature, chunk CRCs, IHDR size, pixel data length), and what the answer
//! says was charted is checked against the answer's own rows.

use std::collections::BTreeMap;
use std::io::Read;

use crate::common::*;
use base64::Engine;
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

/// A decoded PNG: (width, height, bit depth, colour type, inflated scanlines).
fn decode_png(png: &[u8]) -> (u32, u32, u8, u8, Vec<u8>) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    let mut pos = 8;
    let mut chunks = Vec::new();
    let (mut ihdr, mut idat) = (None, Vec::new());
    while pos < png.len() {
        let len = u32::from_be_bytes(png[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = png[pos + 4..pos + 8].to_vec();
        let data = &png[pos + 8..pos + 8 + len];
        let mut crc = flate2::Crc::new();
        crc.update(&kind);
        crc.update(data);
        let stored = u32::from_be_bytes(png[pos + 8 + len..pos + 12 + len].try_into().unwrap());
        assert_eq!(crc.sum(), stored, "chunk CRC");
        match &kind[..] {
            b"IHDR" => ihdr = Some(data.to_vec()),
            b"IDAT" => idat.extend_from_slice(data),
            _ => {}
        }
        chunks.push(String::from_utf8(kind).unwrap());
        pos += 12 + len;
    }
    assert_eq!(pos, png.len(), "no bytes after IEND");
    assert_eq!(chunks.first().map(String::as_str), Some("IHDR"));
    assert_eq!(chunks.last().map(String::as_str), Some("IEND"));
    let ihdr = ihdr.expect("IHDR");
    assert_eq!(ihdr.len(), 13);
    let mut raw = Vec::new();
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .expect("IDAT is a zlib stream");
    (
        u32::from_be_bytes(ihdr[0..4].try_into().unwrap()),
        u32::from_be_bytes(ihdr[4..8].try_into().unwrap()),
        ihdr[8],
        ihdr[9],
        raw,
    )
}

/// The image block of a result, decoded from base64.
fn png_of(r: &CallToolResult) -> Vec<u8> {
    let images: Vec<_> = r.content.iter().filter_map(|c| c.as_image()).collect();
    assert_eq!(images.len(), 1, "one image block");
    assert_eq!(images[0].mime_type, "image/png");
    base64::engine::general_purpose::STANDARD
        .decode(&images[0].data)
        .expect("base64")
}

/// Check the PNG against the size the answer states.
fn check_png(png: &[u8], chart: &Value) {
    let (w, h, depth, colour, raw) = decode_png(png);
    assert_eq!(
        (w as u64, h as u64),
        (
            chart["width"].as_u64().unwrap(),
            chart["height"].as_u64().unwrap()
        ),
        "IHDR size is the stated size"
    );
    assert_eq!((depth, colour), (8, 2), "8-bit RGB");
    assert_eq!(
        raw.len(),
        (h * (1 + 3 * w)) as usize,
        "one filter byte + RGB per row"
    );
    assert_eq!(png.len() as u64, chart["bytes"].as_u64().unwrap());
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.006
}

#[tokio::test]
async fn daily_chart_stacks_the_answers_groups_with_untagged_apart() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    let r = call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "granularity": "daily", "group_by": ["tag:team"], "chart": true}),
    )
    .await;
    let out = ok(&r);
    assert!(
        text(&r).contains("Chart: stacked over time"),
        "{}",
        text(&r)
    );
    let chart = &out["chart"];
    assert_eq!(chart["kind"], "stacked_over_time");
    assert_eq!(chart["time_unit"], "day");
    assert_eq!(chart["mime_type"], "image/png");
    assert_eq!(chart["currency"], out["currency"]);
    check_png(&png_of(&r), chart);

    // The x axis: every bucket of the answer, in order.
    let rows = out["rows"].as_array().unwrap();
    assert!(out.get("next_cursor").is_none(), "all rows on one page");
    let buckets: Vec<String> = rows
        .iter()
        .map(|r| r["bucket"].as_str().unwrap().to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(buckets.len() >= 28, "a month of days");
    let charted: Vec<String> = chart["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b.as_str().unwrap().to_string())
        .collect();
    assert_eq!(charted, buckets);

    // Every group: its total and its amount per bucket come from the answer's rows.
    let mut by_group: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for r in rows {
        *by_group
            .entry(r["keys"]["tag:team"].as_str().unwrap().to_string())
            .or_default()
            .entry(r["bucket"].as_str().unwrap().to_string())
            .or_default() += r["amount"].as_f64().unwrap();
    }
    let groups = chart["groups"].as_array().unwrap();
    let labels: Vec<&str> = groups
        .iter()
        .map(|g| g["label"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = by_group.keys().map(String::as_str).collect();
    want.sort();
    let mut got = labels.clone();
    got.sort();
    assert_eq!(got, want, "the chart draws exactly the answer's groups");
    for g in groups {
        let label = g["label"].as_str().unwrap();
        let per_bucket = &by_group[label];
        let total: f64 = per_bucket.values().sum();
        assert!(close(g["amount"].as_f64().unwrap(), total), "{label}");
        for (i, b) in charted.iter().enumerate() {
            let v = g["values"][i].as_f64().unwrap();
            assert!(
                close(v, per_bucket.get(b).copied().unwrap_or(0.0)),
                "{label} {b}"
            );
        }
        assert_eq!(g["untagged"], json!(label == "untagged"), "{label}");
    }
    assert_eq!(
        labels.last(),
        Some(&"untagged"),
        "untagged stacks on top of the named groups"
    );
    assert!(close(
        chart["total"].as_f64().unwrap(),
        out["total"].as_f64().unwrap()
    ));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn one_bucket_is_ranked_bars_with_the_others_row() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    let r = call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "group_by": ["role"], "top_n": 3, "chart": true}),
    )
    .await;
    let out = ok(&r);
    let chart = &out["chart"];
    assert_eq!(chart["kind"], "ranked_bars");
    check_png(&png_of(&r), chart);
    assert!(chart.get("time_unit").is_none() && chart.get("buckets").is_none());
    let rows = out["rows"].as_array().unwrap();
    let groups = chart["groups"].as_array().unwrap();
    assert_eq!(groups.len(), rows.len(), "one bar per row");
    for (g, row) in groups.iter().zip(rows) {
        let label = if row["others"] == json!(true) {
            "others".to_string()
        } else {
            row["keys"]["role"].as_str().unwrap().to_string()
        };
        assert_eq!(g["label"], json!(label));
        assert!(close(
            g["amount"].as_f64().unwrap(),
            row["amount"].as_f64().unwrap()
        ));
        assert_eq!(g["others"], row["others"]);
    }
    let others = groups.last().unwrap();
    assert_eq!(others["others"], json!(true), "others is drawn, last");
    assert!(close(
        others["amount"].as_f64().unwrap(),
        out["reconciliation"]["others"].as_f64().unwrap()
    ));
    let amounts: Vec<f64> = groups[..groups.len() - 1]
        .iter()
        .map(|g| g["amount"].as_f64().unwrap())
        .collect();
    assert!(
        amounts.windows(2).all(|w| w[0] >= w[1]),
        "ranked: {amounts:?}"
    );

    // Without chart: no image, no chart field.
    let plain = call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "group_by": ["role"], "top_n": 3}),
    )
    .await;
    assert!(plain.content.iter().all(|c| c.as_image().is_none()));
    assert!(ok(&plain).get("chart").is_none());
    client.cancel().await.unwrap();
}

#[test]
fn cli_spend_writes_the_same_chart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("team.png");
    let mut cmd = crate::common::command();
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("BEDROCK_COST_MCP_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args([
            "--demo",
            "spend",
            "--period",
            "last_month",
            "--by",
            "team",
            "--json",
            "--chart",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let chart = &v["chart"];
    assert_eq!(chart["kind"], "ranked_bars");
    check_png(&std::fs::read(&file).unwrap(), chart);
    let untagged: Vec<&Value> = chart["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["untagged"] == json!(true))
        .collect();
    assert_eq!(untagged.len(), 1);
    let row = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["untagged"] == json!(true))
        .unwrap();
    assert!(close(
        untagged[0]["amount"].as_f64().unwrap(),
        row["amount"].as_f64().unwrap()
    ));
}

#[tokio::test]
async fn a_chart_is_also_a_resource_the_client_can_read_again() {
    let client = stdio_client(None, &["--demo"], &[]).await;
    let r = call(
        &client,
        "bedrock_spend",
        json!({"period": "last_month", "group_by": ["role"], "chart": true}),
    )
    .await;
    let png = png_of(&r);
    let links: Vec<_> = r
        .content
        .iter()
        .filter_map(|c| match c {
            rmcp::model::ContentBlock::ResourceLink(l) => Some(l.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(links.len(), 1, "one resource link");
    assert!(links[0].uri.starts_with("bedrock-cost://charts/"));
    assert_eq!(links[0].mime_type.as_deref(), Some("image/png"));
    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            links[0].uri.clone(),
        ))
        .await
        .unwrap();
    let v = serde_json::to_value(&read).unwrap();
    let blob = v["contents"][0]["blob"].as_str().unwrap();
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(blob)
            .unwrap(),
        png,
        "the same PNG"
    );
    assert_eq!(v["contents"][0]["mimeType"], json!("image/png"));
    // A chart that is not there (or another caller's) is not found.
    assert!(
        client
            .read_resource(rmcp::model::ReadResourceRequestParams::new(
                "bedrock-cost://charts/0000000000000000",
            ))
            .await
            .is_err()
    );
    client.cancel().await.ok();
}
