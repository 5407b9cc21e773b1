//! The SQL aggregate `product(x)`: the product of the non-NULL values (NULL when there is none),
//! as DuckDB's `product` — so a model that uses it runs unchanged in both engines.
//!
//! As a running window (`OVER (… ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)`) it
//! multiplies the rows one at a time in the window's order, starting from 1: the value at a row
//! is exactly the value at the row before times this row's factor. That is what lets an append
//! continue a chain-linked level bit for bit from its stored last row (`sql/append/`), where
//! `exp(sum(ln(…)))` would need the running sum and the first value, and would round otherwise.
//! As a grouped aggregate the order of the factors is not defined (floating-point products may
//! differ in the last bits between runs).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Accumulator, AggregateUDF, Volatility, create_udaf};

/// The running product: `None` until a non-NULL value is seen.
#[derive(Debug, Default)]
struct Product(Option<f64>);

impl Product {
    fn multiply(&mut self, values: &ArrayRef) -> datafusion::error::Result<()> {
        let values = datafusion::arrow::compute::cast(values, &DataType::Float64)?;
        for v in values.as_primitive::<Float64Type>().iter().flatten() {
            self.0 = Some(self.0.unwrap_or(1.0) * v);
        }
        Ok(())
    }
}

impl Accumulator for Product {
    fn update_batch(&mut self, values: &[ArrayRef]) -> datafusion::error::Result<()> {
        self.multiply(&values[0])
    }

    fn evaluate(&mut self) -> datafusion::error::Result<ScalarValue> {
        Ok(ScalarValue::Float64(self.0))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> datafusion::error::Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Float64(self.0)])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> datafusion::error::Result<()> {
        self.multiply(&states[0])
    }
}

/// The `product` aggregate, to register in every session.
pub fn udaf() -> AggregateUDF {
    create_udaf(
        "product",
        vec![DataType::Float64],
        Arc::new(DataType::Float64),
        Volatility::Immutable,
        Arc::new(|_| Ok(Box::new(Product::default()))),
        Arc::new(vec![DataType::Float64]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Float64Array};
    use datafusion::prelude::SessionContext;

    async fn query(sql: &str) -> Vec<Option<f64>> {
        let ctx = SessionContext::new();
        ctx.register_udaf(udaf());
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        batches
            .iter()
            .flat_map(|b| {
                let a = b.column(0).as_any().downcast_ref::<Float64Array>();
                a.unwrap().iter().collect::<Vec<_>>()
            })
            .collect()
    }

    #[tokio::test]
    async fn a_running_product_is_the_previous_value_times_the_factor() {
        // Factors whose product rounds: each running value must be exactly the previous one
        // times the row's factor, left to right, as an append continues it.
        let factors = [
            123.456,
            1.0 + 0.01234,
            1.0 - 0.0321,
            1.0 + 1e-9,
            0.999_999_7,
            1.1,
        ];
        let values: Vec<String> = factors
            .iter()
            .enumerate()
            .map(|(i, f)| format!("({i}, {f:?})"))
            .collect();
        let got = query(&format!(
            "SELECT product(f) OVER (ORDER BY i ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) \
             FROM (VALUES {}) AS t(i, f) ORDER BY i",
            values.join(", ")
        ))
        .await;
        let mut running = 1.0;
        let want: Vec<Option<f64>> = factors
            .iter()
            .map(|f| {
                running *= f;
                Some(running)
            })
            .collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn nulls_are_skipped_and_no_value_gives_null() {
        let got = query(
            "SELECT product(f) FROM (VALUES (1, 2.0), (1, NULL), (1, 3.5), (2, NULL)) AS t(g, f) \
             GROUP BY g ORDER BY g",
        )
        .await;
        assert_eq!(got, vec![Some(7.0), None]);
    }
}
