//! Which files of a CUR 2.0 export are its current delivery, so no refresh is counted twice.
//!
//! Data Exports (user guide, "Export delivery" and "Data export manifest") refreshes a billing
//! period several times a day until it closes. With *overwrite* delivery each refresh replaces
//! the files in `data/BILLING_PERIOD=YYYY-MM/`; with *create new* delivery each refresh is a new
//! `<timestamp>-<execution id>/` folder in the period and the older ones stay. Either way
//! `metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json` lists the files of the current
//! delivery (`dataFiles`, full `s3://` URIs).
//!
//! [`select`] decides, per billing period: the files the manifest lists (rebased onto wherever
//! the export is read from: everything after `BILLING_PERIOD=YYYY-MM/`); with no manifest and
//! several delivery folders, the newest folder (by its files' modification time, then name), with
//! a note saying so; otherwise every file. [`CurrentDelivery`] is an object store that hides every
//! other file from listings, so DataFusion, the delivery check and the rollups all see exactly
//! what is read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};

/// The largest manifest read (a manifest lists a period's files: a few KB to a few MB).
const MAX_MANIFEST_BYTES: u64 = 32 << 20;

/// The files to read per billing period.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Selection {
    /// Period (`YYYY-MM`) -> the files to read, as paths below `BILLING_PERIOD=YYYY-MM/`;
    /// periods not listed are read whole.
    pub months: BTreeMap<String, BTreeSet<String>>,
    /// What the answer should say about the choice (several deliveries without manifest, a
    /// manifest naming files that are not there).
    pub notes: Vec<String>,
    /// Periods whose manifest chose the files.
    pub by_manifest: usize,
}

/// `(period, path below the period folder)` of a path with a `BILLING_PERIOD=` segment.
fn split(path: &str) -> Option<(&str, &str)> {
    let at = path.find("BILLING_PERIOD=")?;
    if at > 0 && !path[..at].ends_with('/') {
        return None;
    }
    let rest = &path[at + "BILLING_PERIOD=".len()..];
    let (period, below) = rest.split_once('/')?;
    Some((period, below))
}

impl Selection {
    /// Whether a listed object is part of what is read.
    pub fn visible(&self, path: &str) -> bool {
        match split(path) {
            Some((period, below)) => self
                .months
                .get(period)
                .is_none_or(|keep| keep.contains(below)),
            None => true,
        }
    }
}

/// The delivery folder of a path below a period: its first segment when there is one more.
fn folder_of(below: &str) -> &str {
    below.split_once('/').map_or("", |(f, _)| f)
}

/// Decide what to read. `data` lists the export's Parquet files (any prefix above
/// `BILLING_PERIOD=`); `meta` is where its `metadata/` folder is, when it has one.
pub async fn select(
    data: (&dyn ObjectStore, Option<&Path>),
    meta: Option<(&dyn ObjectStore, Path)>,
) -> Result<Selection> {
    // period -> folder -> (newest modification, files)
    type Folders = BTreeMap<String, (chrono::DateTime<chrono::Utc>, BTreeSet<String>)>;
    let mut periods: BTreeMap<String, Folders> = BTreeMap::new();
    let mut listing = data.0.list(data.1);
    while let Some(meta) = listing.try_next().await? {
        let p = meta.location.as_ref();
        if !p.ends_with(".parquet") {
            continue;
        }
        if let Some((period, below)) = split(p) {
            let e = periods
                .entry(period.to_string())
                .or_default()
                .entry(folder_of(below).to_string())
                .or_insert((meta.last_modified, BTreeSet::new()));
            e.0 = e.0.max(meta.last_modified);
            e.1.insert(below.to_string());
        }
    }
    let manifests = match meta {
        Some((store, prefix)) => read_manifests(store, &prefix).await?,
        None => BTreeMap::new(),
    };
    let mut out = Selection::default();
    for (period, folders) in periods {
        let present: BTreeSet<&String> = folders.values().flat_map(|(_, f)| f).collect();
        if let Some(listed) = manifests.get(&period) {
            let found: BTreeSet<String> = listed
                .iter()
                .filter(|f| present.contains(f))
                .cloned()
                .collect();
            if !found.is_empty() {
                if found.len() < listed.len() {
                    out.notes.push(format!(
                        "BILLING_PERIOD={period}: the manifest lists {} file(s) that are not in the export folder; read the {} that are",
                        listed.len() - found.len(),
                        found.len()
                    ));
                }
                out.by_manifest += 1;
                out.months.insert(period, found);
                continue;
            }
            out.notes.push(format!(
                "BILLING_PERIOD={period}: none of the files its manifest lists are in the export folder (a partial copy?); read the newest delivery instead"
            ));
        }
        if folders.len() > 1 {
            let (newest, (_, files)) = folders
                .iter()
                .max_by(|a, b| a.1.0.cmp(&b.1.0).then(a.0.cmp(b.0)))
                .expect("more than one folder");
            out.notes.push(format!(
                "BILLING_PERIOD={period} holds {} deliveries and no manifest: read only the newest ({}), never two deliveries of one month together",
                folders.len(),
                if newest.is_empty() { "the files directly in the period folder" } else { newest.as_str() }
            ));
            out.months.insert(period, files.clone());
        }
    }
    Ok(out)
}

/// Period -> files listed by the manifests under `prefix` (`BILLING_PERIOD=M/*Manifest.json`),
/// as paths below the period folder.
async fn read_manifests(
    store: &dyn ObjectStore,
    prefix: &Path,
) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let found: Vec<ObjectMeta> = store
        .list(Some(prefix))
        .try_filter(|m| futures::future::ready(m.location.as_ref().ends_with("Manifest.json")))
        .try_collect()
        .await?;
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in found {
        let Some((period, _)) = split(m.location.as_ref()) else {
            continue;
        };
        if m.size > MAX_MANIFEST_BYTES {
            tracing::warn!(manifest = %m.location, size = m.size, "manifest too large; ignored");
            continue;
        }
        let bytes = store
            .get_opts(&m.location, GetOptions::default())
            .await?
            .bytes()
            .await?;
        let doc: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(manifest = %m.location, error = %e, "unreadable manifest; ignored");
                continue;
            }
        };
        let files = doc
            .get("dataFiles")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str())
                    .filter_map(|f| {
                        split(f)
                            .filter(|(p, _)| *p == period)
                            .map(|(_, b)| b.to_string())
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        out.entry(period.to_string()).or_default().extend(files);
    }
    Ok(out)
}

/// An object store that lists only the selected files (reads, writes and everything else pass
/// through). The selection is shared and replaced as deliveries arrive.
#[derive(Debug, Clone)]
pub struct CurrentDelivery {
    inner: Arc<dyn ObjectStore>,
    selection: Arc<RwLock<Arc<Selection>>>,
}

impl CurrentDelivery {
    pub fn new(inner: Arc<dyn ObjectStore>, selection: Arc<RwLock<Arc<Selection>>>) -> Self {
        CurrentDelivery { inner, selection }
    }

    fn current(&self) -> Arc<Selection> {
        self.selection.read().map(|s| s.clone()).unwrap_or_default()
    }
}

impl fmt::Display for CurrentDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CurrentDelivery({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CurrentDelivery {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let selection = self.current();
        self.inner
            .list(prefix)
            .try_filter(move |m| futures::future::ready(selection.visible(m.location.as_ref())))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let selection = self.current();
        let mut listed = self.inner.list_with_delimiter(prefix).await?;
        listed
            .objects
            .retain(|m| selection.visible(m.location.as_ref()));
        Ok(listed)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    async fn put(store: &InMemory, path: &str, body: &str) {
        store
            .put(&Path::from(path), body.to_string().into())
            .await
            .unwrap();
    }

    async fn listed(store: &dyn ObjectStore, prefix: &str) -> Vec<String> {
        let mut v: Vec<String> = store
            .list(Some(&Path::from(prefix)))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        v.sort();
        v
    }

    #[tokio::test]
    async fn manifest_then_newest_then_everything() {
        let s = InMemory::new();
        // October: two create-new deliveries and a manifest naming the second (as s3:// URIs).
        put(
            &s,
            "x/data/BILLING_PERIOD=2026-10/20261015T060000Z-aaa/e-00001.snappy.parquet",
            "a",
        )
        .await;
        put(
            &s,
            "x/data/BILLING_PERIOD=2026-10/20261101T060000Z-bbb/e-00001.snappy.parquet",
            "b",
        )
        .await;
        put(
            &s,
            "x/data/BILLING_PERIOD=2026-10/20261101T060000Z-bbb/e-00002.snappy.parquet",
            "b",
        )
        .await;
        put(
            &s,
            "x/metadata/BILLING_PERIOD=2026-10/e-Manifest.json",
            r#"{"dataFiles": ["s3://bucket/cur2/e/data/BILLING_PERIOD=2026-10/20261101T060000Z-bbb/e-00001.snappy.parquet", "s3://bucket/cur2/e/data/BILLING_PERIOD=2026-10/20261101T060000Z-bbb/e-00002.snappy.parquet"]}"#,
        )
        .await;
        // November: two deliveries, no manifest: the newer one (written last) is read.
        put(
            &s,
            "x/data/BILLING_PERIOD=2026-11/20261115T060000Z-ccc/e-00001.snappy.parquet",
            "c",
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        put(
            &s,
            "x/data/BILLING_PERIOD=2026-11/20261201T060000Z-ddd/e-00001.snappy.parquet",
            "d",
        )
        .await;
        // December: overwrite, one folder: all of it.
        put(
            &s,
            "x/data/BILLING_PERIOD=2026-12/e-00001.snappy.parquet",
            "e",
        )
        .await;
        put(
            &s,
            "x/data/BILLING_PERIOD=2026-12/e-00002.snappy.parquet",
            "e",
        )
        .await;
        let sel = select(
            (&s, Some(&Path::from("x/data"))),
            Some((&s, Path::from("x/metadata"))),
        )
        .await
        .unwrap();
        assert_eq!(sel.by_manifest, 1);
        assert!(!sel.months.contains_key("2026-12"));
        assert_eq!(sel.notes.len(), 1, "{:?}", sel.notes);
        assert!(sel.notes[0].contains("2026-11") && sel.notes[0].contains("20261201T060000Z-ddd"));
        let filtered = CurrentDelivery::new(Arc::new(s), Arc::new(RwLock::new(Arc::new(sel))));
        assert_eq!(
            listed(&filtered, "x/data").await,
            [
                "x/data/BILLING_PERIOD=2026-10/20261101T060000Z-bbb/e-00001.snappy.parquet",
                "x/data/BILLING_PERIOD=2026-10/20261101T060000Z-bbb/e-00002.snappy.parquet",
                "x/data/BILLING_PERIOD=2026-11/20261201T060000Z-ddd/e-00001.snappy.parquet",
                "x/data/BILLING_PERIOD=2026-12/e-00001.snappy.parquet",
                "x/data/BILLING_PERIOD=2026-12/e-00002.snappy.parquet",
            ]
        );
        let top = filtered
            .list_with_delimiter(Some(&Path::from(
                "x/data/BILLING_PERIOD=2026-10/20261015T060000Z-aaa",
            )))
            .await
            .unwrap();
        assert!(top.objects.is_empty(), "the superseded delivery is hidden");
    }

    #[tokio::test]
    async fn a_manifest_naming_missing_files_falls_back_to_the_newest() {
        let s = InMemory::new();
        put(
            &s,
            "data/BILLING_PERIOD=2026-10/a/e-00001.snappy.parquet",
            "a",
        )
        .await;
        put(
            &s,
            "metadata/BILLING_PERIOD=2026-10/e-Manifest.json",
            r#"{"dataFiles": ["s3://b/e/data/BILLING_PERIOD=2026-10/zzz/e-00001.snappy.parquet"]}"#,
        )
        .await;
        put(
            &s,
            "metadata/BILLING_PERIOD=2026-11/broken-Manifest.json",
            "{not json",
        )
        .await;
        let sel = select(
            (&s, Some(&Path::from("data"))),
            Some((&s, Path::from("metadata"))),
        )
        .await
        .unwrap();
        assert_eq!(sel.by_manifest, 0);
        assert!(sel.months.is_empty(), "one delivery: read whole");
        assert!(
            sel.notes[0].contains("none of the files"),
            "{:?}",
            sel.notes
        );
        assert!(split("prefixBILLING_PERIOD=2026-10/x").is_none());
    }
}
