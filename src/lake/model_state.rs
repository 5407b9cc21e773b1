//! What an incremental model was last built from: `meta.model_state` [model, input] → the input's
//! fingerprint (a Delta version, or a hash of a seed's rows) and when that build started. The next
//! build recomputes the partitions whose input rows were ingested since then, and everything when
//! an unpartitioned input's fingerprint moved.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use super::{Lake, LakeError, Result, TableName, WriteMode, column_as};

fn table() -> TableName {
    TableName::meta("model_state")
}

/// The state one build of a model left: per input, its fingerprint; and the build's start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelState {
    /// When the build that left this state started (rows ingested at or after it are new).
    pub built_at: Option<DateTime<Utc>>,
    /// Input table name → fingerprint.
    pub inputs: HashMap<String, String>,
}

impl Lake {
    /// The state the last successful build of `model` left (empty when it never built).
    pub async fn model_state(&self, model: &TableName) -> Result<ModelState> {
        let mut state = ModelState::default();
        let sql = "SELECT input, fingerprint, built_at FROM t WHERE model = $1";
        let batches = self
            .query_table(&table(), sql, vec![model.to_string().into()])
            .await?;
        for batch in batches {
            let inputs: StringArray = column_as(&batch, 0, &DataType::Utf8)?;
            let prints: StringArray = column_as(&batch, 1, &DataType::Utf8)?;
            let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
            let built: TimestampMicrosecondArray = column_as(&batch, 2, &ts)?;
            for i in 0..batch.num_rows() {
                state
                    .inputs
                    .insert(inputs.value(i).to_string(), prints.value(i).to_string());
                state.built_at = DateTime::from_timestamp_micros(built.value(i));
            }
        }
        Ok(state)
    }

    /// Replaces the state of `model` (one commit).
    pub async fn set_model_state(&self, model: &TableName, state: &ModelState) -> Result<()> {
        let built_at = state.built_at.unwrap_or_else(Lake::now);
        let mut inputs: Vec<(&String, &String)> = state.inputs.iter().collect();
        inputs.sort();
        // A model with no lake inputs still records when it was built.
        let (names, prints): (Vec<&str>, Vec<&str>) = if inputs.is_empty() {
            (vec![""], vec![""])
        } else {
            inputs.iter().map(|(k, v)| (k.as_str(), v.as_str())).unzip()
        };
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("model", DataType::Utf8, false),
            Field::new("input", DataType::Utf8, false),
            Field::new("fingerprint", DataType::Utf8, false),
            Field::new("built_at", ts, false),
        ]));
        let model_name = model.to_string();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![model_name.as_str(); names.len()])),
            Arc::new(StringArray::from(names.clone())),
            Arc::new(StringArray::from(prints)),
            crate::lake::ingested_at_column(names.len(), built_at),
        ];
        let batch = RecordBatch::try_new(schema, columns).map_err(|e| LakeError::Data {
            table: table(),
            message: e.to_string(),
        })?;
        let predicate = format!("model = '{}'", model_name.replace('\'', "''"));
        let mode = if self.exists(&table()).await? {
            WriteMode::ReplaceWhere(predicate)
        } else {
            WriteMode::Append
        };
        self.write(&table(), vec![batch], mode).await?;
        Ok(())
    }
}
