//! Drives a real agent with the unmodified `python-nomad` client library
//! (`tests/python/test_python_nomad.py`).
//!
//! Needs `python3` with the packages of `tests/python/requirements.txt`. Set
//! `DROVER_SKIP_PYTHON=1` to skip this test on machines without them.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::Agent;

const INSTALL_HINT: &str = "pip install -r tests/python/requirements.txt";

/// The `tests/python` directory of this workspace.
fn python_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python")
}

/// True when the caller asked to skip tests that need Python packages.
fn skip_python() -> bool {
    std::env::var("DROVER_SKIP_PYTHON").is_ok_and(|v| v == "1")
}

/// Checks that `python3` can import `nomad`; the error names what to install.
fn python_nomad_available() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import nomad, nomad.api.exceptions"])
        .output()
        .map_err(|e| {
            format!("cannot run python3 ({e}); install Python 3, then `{INSTALL_HINT}`")
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "python-nomad is not importable; run `{INSTALL_HINT}` (or set DROVER_SKIP_PYTHON=1 \
             to skip)\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn python_nomad_client_drives_the_agent() {
    if skip_python() {
        eprintln!("skipped: DROVER_SKIP_PYTHON=1");
        return;
    }
    if let Err(msg) = python_nomad_available() {
        panic!("{msg}");
    }
    let agent = Agent::start(3, "");
    let script = python_dir().join("test_python_nomad.py");
    let out = Command::new("python3")
        .arg(&script)
        .env("NOMAD_ADDR", format!("http://127.0.0.1:{}", agent.http))
        // The client must reach the agent as configured, not through any ambient settings.
        .env_remove("NOMAD_TOKEN")
        .env_remove("NOMAD_REGION")
        .env_remove("NOMAD_NAMESPACE")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .expect("running python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed ({})\n--- script stdout ---\n{stdout}\n--- script stderr ---\n{stderr}\n\
         --- agent log ---\n{}",
        script.display(),
        out.status,
        agent.log()
    );
    assert!(
        stdout.contains("checks passed"),
        "script did not finish its checks:\n{stdout}"
    );
}
