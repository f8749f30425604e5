//! Reading CUR 2.0's `MAP<string, string>` columns (`product`, `tags`) cheaply.
//!
//! DataFusion reads top-level strings as `Utf8View` (views into the Parquet
//! dictionary page, no copy), but a map's keys and values as plain `Utf8`,
//! copying every entry's bytes for every row, although a query only looks up
//! one or two keys. `product` holds several entries per line, so on a large
//! export that copy (and the one `product['k']` makes of the values) was the
//! largest single cost of a spend query.
//!
//! [`ViewMapTable`] wraps the listing table: its schema declares the map
//! values as `Utf8View`, and its scan hands the Parquet reader, per file, that
//! file's own schema with the same change (`PartitionedFile::arrow_schema`),
//! so the values are decoded as views. Map keys stay `Utf8`: a lookup
//! `m['k']` compares them with a `Utf8` literal. Everything else (file
//! listing, partition pruning, statistics, predicate pushdown) is the listing
//! table's.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::{ScanArgs, ScanResult, Session, TableProvider};
use datafusion::common::Result;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;

/// A `Map` type with its values as `Utf8View` (`None`: not a map of strings).
fn view_map(dt: &DataType) -> Option<DataType> {
    let DataType::Map(entries, sorted) = dt else {
        return None;
    };
    let DataType::Struct(kv) = entries.data_type() else {
        return None;
    };
    if kv.len() != 2 || !matches!(kv[1].data_type(), DataType::Utf8 | DataType::LargeUtf8) {
        return None;
    }
    let value: FieldRef = Arc::new(kv[1].as_ref().clone().with_data_type(DataType::Utf8View));
    let kv = vec![kv[0].clone(), value];
    let entries = Field::new(
        entries.name(),
        DataType::Struct(kv.into()),
        entries.is_nullable(),
    )
    .with_metadata(entries.metadata().clone());
    Some(DataType::Map(Arc::new(entries), *sorted))
}

/// `schema` with every string map's values as `Utf8View`; `None` when it has none.
pub fn with_view_maps(schema: &Schema) -> Option<Schema> {
    let mut changed = false;
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .map(|f| match view_map(f.data_type()) {
            Some(dt) => {
                changed = true;
                Arc::new(f.as_ref().clone().with_data_type(dt))
            }
            None => f.clone(),
        })
        .collect();
    changed.then(|| Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The listing table, its string maps' values read as `Utf8View`.
#[derive(Debug)]
pub struct ViewMapTable {
    pub inner: Arc<dyn TableProvider>,
}

impl ViewMapTable {
    /// Give every file of a Parquet scan its own schema with view maps.
    async fn rewrite(
        &self,
        state: &dyn Session,
        plan: Arc<dyn ExecutionPlan>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let Some(exec) = plan.downcast_ref::<DataSourceExec>() else {
            return Ok(plan);
        };
        let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>() else {
            return Ok(plan);
        };
        let mut config = config.clone();
        let store = state
            .runtime_env()
            .object_store(config.object_store_url.clone())?;
        let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
        // Each file's own schema: a file whose columns differ from the others' is read as it
        // is. Footers are cached, so the scan does not read them again.
        let schemas: Vec<Vec<Option<SchemaRef>>> = futures::stream::iter(
            config
                .file_groups
                .iter()
                .flat_map(|g| g.iter().map(|f| f.object_meta.clone()))
                .collect::<Vec<_>>(),
        )
        .map(|meta| {
            let (store, cache) = (store.clone(), cache.clone());
            async move {
                let schema = DFParquetMetadata::new(store.as_ref(), &meta)
                    .with_file_metadata_cache(Some(cache))
                    .fetch_schema()
                    .await?;
                Ok::<_, datafusion::error::DataFusionError>(with_view_maps(&schema).map(Arc::new))
            }
        })
        .buffered(16)
        .try_collect::<Vec<_>>()
        .await
        .map(|flat| {
            let mut flat = flat.into_iter();
            config
                .file_groups
                .iter()
                .map(|g| flat.by_ref().take(g.len()).collect())
                .collect()
        })?;
        for (group, schemas) in config.file_groups.iter_mut().zip(schemas) {
            for (i, schema) in schemas.into_iter().enumerate() {
                group[i].arrow_schema = schema;
            }
        }
        Ok(DataSourceExec::from_data_source(config))
    }
}

#[async_trait::async_trait]
impl TableProvider for ViewMapTable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = self.inner.scan(state, projection, filters, limit).await?;
        self.rewrite(state, plan).await
    }

    async fn scan_with_args<'a>(
        &self,
        state: &dyn Session,
        args: ScanArgs<'a>,
    ) -> Result<ScanResult> {
        let result = self.inner.scan_with_args(state, args).await?;
        let plan = self.rewrite(state, result.into_inner()).await?;
        Ok(plan.into())
    }
}
