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
        let sql = "SELECT model, input, fingerprint, built_at FROM t WHERE model = $1";
        let mut states = self
            .read_model_states(sql, vec![model.to_string().into()])
            .await?;
        Ok(states.remove(&model.to_string()).unwrap_or_default())
    }

    /// The state of every model that ever built, by model name (one read of the table).
    pub async fn model_states(&self) -> Result<HashMap<String, ModelState>> {
        let sql = "SELECT model, input, fingerprint, built_at FROM t";
        self.read_model_states(sql, Vec::new()).await
    }

    async fn read_model_states(
        &self,
        sql: &str,
        params: Vec<datafusion::scalar::ScalarValue>,
    ) -> Result<HashMap<String, ModelState>> {
        let mut states: HashMap<String, ModelState> = HashMap::new();
        for batch in self.query_table(&table(), sql, params).await? {
            let models: StringArray = column_as(&batch, 0, &DataType::Utf8)?;
            let inputs: StringArray = column_as(&batch, 1, &DataType::Utf8)?;
            let prints: StringArray = column_as(&batch, 2, &DataType::Utf8)?;
            let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
            let built: TimestampMicrosecondArray = column_as(&batch, 3, &ts)?;
            for i in 0..batch.num_rows() {
                let state = states.entry(models.value(i).to_string()).or_default();
                // A model with no lake inputs records one row with an empty input.
                if !inputs.value(i).is_empty() {
                    state
                        .inputs
                        .insert(inputs.value(i).to_string(), prints.value(i).to_string());
                }
                state.built_at = DateTime::from_timestamp_micros(built.value(i));
            }
        }
        Ok(states)
    }

    /// Replaces the state of `model` (one commit).
    pub async fn set_model_state(&self, model: &TableName, state: &ModelState) -> Result<()> {
        self.set_model_states(&[(model.clone(), state.clone())])
            .await
    }

    /// Replaces the states of the given models, all in one commit.
    pub async fn set_model_states(&self, states: &[(TableName, ModelState)]) -> Result<()> {
        if states.is_empty() {
            return Ok(());
        }
        let (mut models, mut names, mut prints, mut built) = (vec![], vec![], vec![], vec![]);
        for (model, state) in states {
            let built_at = state.built_at.unwrap_or_else(Lake::now);
            let mut inputs: Vec<(&str, &str)> = state
                .inputs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            inputs.sort();
            // A model with no lake inputs still records when it was built.
            if inputs.is_empty() {
                inputs.push(("", ""));
            }
            for (input, print) in inputs {
                models.push(model.to_string());
                names.push(input);
                prints.push(print);
                built.push(built_at.timestamp_micros());
            }
        }
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("model", DataType::Utf8, false),
            Field::new("input", DataType::Utf8, false),
            Field::new("fingerprint", DataType::Utf8, false),
            Field::new("built_at", ts, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(models)),
            Arc::new(StringArray::from(names)),
            Arc::new(StringArray::from(prints)),
            Arc::new(TimestampMicrosecondArray::from(built).with_timezone("UTC")),
        ];
        let batch = RecordBatch::try_new(schema, columns).map_err(|e| LakeError::Data {
            table: table(),
            message: e.to_string(),
        })?;
        let quoted: Vec<String> = states
            .iter()
            .map(|(m, _)| format!("'{}'", m.to_string().replace('\'', "''")))
            .collect();
        let predicate = format!("model IN ({})", quoted.join(", "));
        let mode = if self.exists(&table()).await? {
            WriteMode::ReplaceWhere(predicate)
        } else {
            WriteMode::Append
        };
        self.write(&table(), vec![batch], mode).await?;
        Ok(())
    }
}
