//! A table, sorted and encoded as `macrolake export` writes it, as a stream of byte chunks:
//! memory holds a batch and a Parquet row group, not the table.

use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;

use super::{ExportError, ExportFormat, read_err, sorted};
use crate::query::FileEncoder;

/// Collects the bytes a [`FileEncoder`] writes, taken out between batches.
#[derive(Clone, Default)]
struct Pending(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Pending {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().expect("not poisoned"))
    }
}

/// One table's file, chunk by chunk.
pub struct TableStream {
    /// The table, `zone.name`.
    pub table: String,
    format: ExportFormat,
    schema: SchemaRef,
    rows: SendableRecordBatchStream,
    /// `None` once the file is complete (or failed).
    encoder: Option<FileEncoder<Pending>>,
    pending: Pending,
    count: usize,
}

impl TableStream {
    /// Plans the sorted read of `(zone, name)` and starts it; nothing is encoded yet.
    pub(super) async fn open(
        ctx: &datafusion::prelude::SessionContext,
        (zone, name): &(String, String),
        format: ExportFormat,
    ) -> Result<Self, ExportError> {
        let table = format!("{zone}.{name}");
        let (df, schema) = sorted(ctx, zone, name).await?;
        let rows = df.execute_stream().await.map_err(read_err(zone, name))?;
        let pending = Pending::default();
        let encoder = FileEncoder::new(pending.clone(), &schema, format.query_format()).map_err(
            |source| ExportError::Encode {
                table: table.clone(),
                format,
                source,
            },
        )?;
        Ok(Self {
            table,
            format,
            schema,
            rows,
            encoder: Some(encoder),
            pending,
            count: 0,
        })
    }

    /// Rows encoded so far.
    pub fn rows(&self) -> usize {
        self.count
    }

    /// The next bytes of the file; `None` after its end (or after an error).
    pub async fn next_chunk(&mut self) -> Option<Result<Vec<u8>, ExportError>> {
        let result = self.advance().await;
        if matches!(result, Some(Err(_))) {
            self.encoder = None;
        }
        result
    }

    async fn advance(&mut self) -> Option<Result<Vec<u8>, ExportError>> {
        let encode_err = |source| ExportError::Encode {
            table: self.table.clone(),
            format: self.format,
            source,
        };
        loop {
            let encoder = self.encoder.as_mut()?;
            match self.rows.next().await {
                Some(Ok(batch)) => {
                    self.count += batch.num_rows();
                    if let Err(e) = encoder.write(&batch) {
                        return Some(Err(encode_err(e)));
                    }
                    let bytes = self.pending.take();
                    // Parquet holds a row group until it is full.
                    if !bytes.is_empty() {
                        return Some(Ok(bytes));
                    }
                }
                Some(Err(e)) => {
                    let (zone, name) = self.table.split_once('.').unwrap_or(("", &self.table));
                    return Some(Err(read_err(zone, name)(e)));
                }
                None => {
                    let mut encoder = self.encoder.take()?;
                    if self.count == 0 {
                        // The header (CSV) of an empty table.
                        let empty = RecordBatch::new_empty(self.schema.clone());
                        if let Err(e) = encoder.write(&empty) {
                            return Some(Err(encode_err(e)));
                        }
                    }
                    if let Err(e) = encoder.finish() {
                        return Some(Err(encode_err(e)));
                    }
                    return Some(Ok(self.pending.take()));
                }
            }
        }
    }
}
