//! `[sources.eps]` settings.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

/// Where S&P DJI published the current edition of its S&P 500 EPS workbook.
pub const SPDJI_URL: &str =
    "https://www.spglobal.com/spdji/en/documents/additional-material/sp-500-eps-est.xlsx";

/// EPS estimates connector settings.
///
/// Relative `archive_dir` and `vendor_dir` paths are resolved against the folder of the
/// configuration file they were read from (see [`EpsConfig::resolve_paths`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EpsConfig {
    /// Whether to download the current workbook from `url` at all. S&P DJI discontinued the
    /// public file after the 2026-01-29 edition; set this to `false` to rely on `archive_dir`
    /// and `vendor_dir` only.
    pub fetch_url: bool,
    /// The S&P DJI `sp-500-eps-est.xlsx` workbook, fetched through the HTTP engine (so it is
    /// recorded and replayed like every other upstream). A 404 from it is only a warning when
    /// `archive_dir` is set; otherwise it fails the source.
    pub url: Url,
    /// A folder of past editions of the workbook (`*.xlsx`, any file names), kept by the user.
    /// Every edition in it is read on every run and parsed when any input (a file here, the
    /// URL's body, a vendor file, a setting) differs from the last landing's or the table
    /// changed since; the MERGE makes re-ingesting free.
    pub archive_dir: Option<PathBuf>,
    /// A drop folder of vendor estimate CSV files (`*.csv`) with the header
    /// `as_of_date,index,period,eps,kind,source` (schema in [`super::vendor`]).
    pub vendor_dir: Option<PathBuf>,
}

impl Default for EpsConfig {
    fn default() -> Self {
        Self {
            fetch_url: true,
            url: Url::parse(SPDJI_URL).expect("valid"),
            archive_dir: None,
            vendor_dir: None,
        }
    }
}

impl EpsConfig {
    /// Makes relative folder paths relative to `base` (the configuration file's folder).
    pub fn resolve_paths(&mut self, base: &Path) {
        for dir in [&mut self.archive_dir, &mut self.vendor_dir]
            .into_iter()
            .flatten()
        {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_folders_resolve_against_the_config_folder_absolute_ones_stay() {
        let mut cfg = EpsConfig {
            archive_dir: Some(PathBuf::from("eps_archive")),
            vendor_dir: Some(PathBuf::from("/data/vendor")),
            ..Default::default()
        };
        cfg.resolve_paths(Path::new("/etc/macrolake"));
        assert_eq!(
            cfg.archive_dir.as_deref(),
            Some(Path::new("/etc/macrolake/eps_archive"))
        );
        assert_eq!(cfg.vendor_dir.as_deref(), Some(Path::new("/data/vendor")));
    }
}
