//! Agent configuration files (HCL and JSON) parsed into `engine::config::AgentConfig`.
//!
//! Files are applied one after another onto a base config, so later files override scalars
//! and nested blocks merge field by field, as Nomad merges its `-config` files. Every
//! problem in every file is collected and returned together.

pub(crate) mod tree;
pub(crate) mod values;

use std::fmt;
use std::path::{Path, PathBuf};

use engine::config::AgentConfig;

use values::Apply;

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File the problem is in; `None` for problems with the merged result that no file set.
    pub file: Option<PathBuf>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted key path such as `server.heartbeat_grace`; empty for syntax errors.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
                if let Some(column) = self.column {
                    write!(f, ":{column}")?;
                }
            }
            write!(f, ": ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        write!(f, "{}", self.message)
    }
}

/// Every problem found while loading the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Loads and merges configuration files onto `base`. Each path is a file or a directory
/// (whose `*.hcl` and `*.json` files are read in lexical order). The merged result is
/// range-checked with `AgentConfig::validate` (for the keys the files set); all problems
/// are returned at once.
pub fn load_agent_config(
    paths: &[PathBuf],
    base: AgentConfig,
) -> Result<AgentConfig, ConfigErrors> {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    for path in paths {
        match expand_path(path) {
            Ok(found) => files.extend(found),
            Err(message) => errors.push(ConfigError {
                file: Some(path.clone()),
                line: None,
                column: None,
                path: String::new(),
                message,
            }),
        }
    }
    let mut apply = Apply::new(base);
    for file in &files {
        let src = match std::fs::read_to_string(file) {
            Ok(src) => src,
            Err(e) => {
                apply.push_error(file_error(file, None, None, format!("cannot read: {e}")));
                continue;
            }
        };
        let is_json = file.extension().is_some_and(|e| e == "json");
        apply_source(&mut apply, file, &src, is_json);
    }
    finish(apply, errors)
}

/// Parses one configuration text (HCL, or JSON when `is_json`) onto `base`, as if it were a
/// file named `name`. Useful for tests and for configuration passed inline.
pub fn parse_agent_config(
    name: &Path,
    src: &str,
    is_json: bool,
    base: AgentConfig,
) -> Result<AgentConfig, ConfigErrors> {
    let mut apply = Apply::new(base);
    apply_source(&mut apply, name, src, is_json);
    finish(apply, Vec::new())
}

/// Range-checks the merged result. Only problems with keys some file set are reported
/// here: a value still at its default may yet be supplied by a command-line flag, so
/// those are left to the caller's own `AgentConfig::validate` after flags are applied.
fn finish(apply: Apply, mut errors: Vec<ConfigError>) -> Result<AgentConfig, ConfigErrors> {
    let (config, origins, apply_errors) = apply.finish();
    errors.extend(apply_errors);
    for (path, message) in config.validate() {
        let Some(origin) = origins.lookup_set(&path) else {
            continue;
        };
        errors.push(ConfigError {
            file: Some(origin.file),
            line: (origin.line > 0).then_some(origin.line),
            column: None,
            path,
            message,
        });
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors { errors })
    }
}

fn apply_source(apply: &mut Apply, file: &Path, src: &str, is_json: bool) {
    let parsed = if is_json {
        tree::parse_json(src)
    } else {
        tree::parse_hcl(src)
    };
    match parsed {
        Ok(items) => apply.file(file, &items),
        // Kept in the same list as the key errors so problems print in file order.
        Err(e) => apply.push_error(file_error(file, Some(e.line), Some(e.column), e.message)),
    }
}

fn file_error(
    file: &Path,
    line: Option<usize>,
    column: Option<usize>,
    message: String,
) -> ConfigError {
    ConfigError {
        file: Some(file.to_path_buf()),
        line,
        column,
        path: String::new(),
        message,
    }
}

/// Lists the files a path stands for: itself, or a directory's `*.hcl`/`*.json` files sorted.
fn expand_path(path: &Path) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let entries = std::fs::read_dir(path).map_err(|e| format!("cannot list directory: {e}"))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list directory: {e}"))?;
        let p = entry.path();
        let wanted = p.extension().is_some_and(|e| e == "hcl" || e == "json");
        if wanted && p.is_file() {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Where a key was last set.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

#[cfg(test)]
mod config_test;
