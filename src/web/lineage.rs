//! The model graph as an inline SVG: tables in columns by depth (inputs left, the product
//! right), an arrow from each table to every model that reads it, every box a link to its page.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::html::escape;

/// Edges (input, model) of the models' graph.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    /// `(from, to)`: `to` reads `from`.
    pub edges: Vec<(String, String)>,
    /// Every model (tables with a page of their own).
    pub models: BTreeSet<String>,
}

impl Graph {
    /// Depth of each node: 0 for inputs, else one more than its deepest input.
    pub fn depths(&self) -> BTreeMap<String, usize> {
        let mut depth: BTreeMap<String, usize> = BTreeMap::new();
        for (a, b) in &self.edges {
            depth.entry(a.clone()).or_insert(0);
            depth.entry(b.clone()).or_insert(0);
        }
        for m in &self.models {
            depth.entry(m.clone()).or_insert(0);
        }
        // Longest path by relaxation; the graph is a DAG (the build refuses cycles), so at
        // most one pass per node changes anything.
        for _ in 0..depth.len() {
            let mut changed = false;
            for (a, b) in &self.edges {
                let want = depth[a] + 1;
                if depth[b] < want {
                    depth.insert(b.clone(), want);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        depth
    }

    /// What `table` reads.
    pub fn inputs(&self, table: &str) -> Vec<&str> {
        self.edges
            .iter()
            .filter(|(_, b)| b == table)
            .map(|(a, _)| a.as_str())
            .collect()
    }

    /// What reads `table`.
    pub fn readers(&self, table: &str) -> Vec<&str> {
        self.edges
            .iter()
            .filter(|(a, _)| a == table)
            .map(|(_, b)| b.as_str())
            .collect()
    }

    /// The graph as SVG; models link to `/lineage/<name>`.
    pub fn svg(&self) -> String {
        const W: usize = 230;
        const H: usize = 34;
        const BOX_W: usize = 200;
        const BOX_H: usize = 24;
        let depths = self.depths();
        let mut columns: BTreeMap<usize, Vec<&str>> = BTreeMap::new();
        for (node, d) in &depths {
            columns.entry(*d).or_default().push(node);
        }
        let mut at: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for (d, nodes) in &columns {
            for (i, n) in nodes.iter().enumerate() {
                at.insert(n, (10 + d * W, 10 + i * H));
            }
        }
        let width = 20 + columns.len() * W;
        let height = 20 + columns.values().map(Vec::len).max().unwrap_or(1) * H;
        let mut svg = format!(
            "<svg id=\"lineage-graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" \
             height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-size=\"11\" \
             font-family=\"system-ui,sans-serif\">"
        );
        for (a, b) in &self.edges {
            let (Some(&(ax, ay)), Some(&(bx, by))) = (at.get(a.as_str()), at.get(b.as_str()))
            else {
                continue;
            };
            let _ = write!(
                svg,
                "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#9aa4b8\"/>",
                ax + BOX_W,
                ay + BOX_H / 2,
                bx,
                by + BOX_H / 2
            );
        }
        for (node, (x, y)) in &at {
            let model = self.models.contains(*node);
            let fill = if model { "#dbe7fb" } else { "#eef1f5" };
            let label = escape(node);
            let rect = format!(
                "<rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"3\" \
                 fill=\"{fill}\" stroke=\"#6b7690\"/><text x=\"{}\" y=\"{}\">{label}</text>",
                x + 6,
                y + 16
            );
            if model {
                let _ = write!(svg, "<a href=\"/lineage/{label}\">{rect}</a>");
            } else {
                svg.push_str(&rect);
            }
        }
        svg.push_str("</svg>");
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_the_longest_path_and_boxes_link_models() {
        let g = Graph {
            edges: vec![
                ("staging.a".into(), "marts.x".into()),
                ("marts.x".into(), "marts.y".into()),
                ("staging.a".into(), "marts.y".into()),
            ],
            models: ["marts.x".to_string(), "marts.y".to_string()]
                .into_iter()
                .collect(),
        };
        let d = g.depths();
        assert_eq!(d["staging.a"], 0);
        assert_eq!(d["marts.x"], 1);
        assert_eq!(d["marts.y"], 2);
        assert_eq!(g.inputs("marts.y"), vec!["marts.x", "staging.a"]);
        assert_eq!(g.readers("staging.a"), vec!["marts.x", "marts.y"]);
        let svg = g.svg();
        assert!(svg.contains("href=\"/lineage/marts.y\""));
        assert!(!svg.contains("href=\"/lineage/staging.a\""));
        assert_eq!(svg.matches("<line").count(), 3);
    }
}
