//! Text to speech for `talk`: the local default is Debian's espeak-ng, spawned, its
//! WAV cached on disk by a hash of (provider, text, language, voice), so a prompt said
//! twice is made once.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Why speech could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TtsError {
    /// The program is not installed.
    #[error("espeak-ng is not installed (Debian: apt-get install espeak-ng)")]
    Missing,
    /// It ran and failed.
    #[error("espeak-ng failed: {0}")]
    Failed(String),
}

/// The espeak-ng voice for a BCP 47 language and a gender.
fn voice(language: &str, gender: &str) -> String {
    let lang = language.trim();
    let base = if lang.is_empty() { "en-us" } else { lang };
    let base = base.to_ascii_lowercase();
    match gender {
        "female" => format!("{base}+f3"),
        _ => base,
    }
}

/// Speaks `text` into a WAV file under `cache_dir` (made once per text and voice).
/// SSML input (starting with `<speak`) is passed with `-m`.
pub async fn speak(
    cache_dir: &Path,
    text: &str,
    language: &str,
    gender: &str,
) -> Result<PathBuf, TtsError> {
    let voice = voice(language, gender);
    let mut h = Sha256::new();
    for part in ["espeak-ng", text, &voice] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let name = hex::encode(&h.finalize()[..16]);
    let path = cache_dir.join(format!("{name}.wav"));
    if tokio::fs::metadata(&path).await.is_ok() {
        return Ok(path);
    }
    tokio::fs::create_dir_all(cache_dir)
        .await
        .map_err(|e| TtsError::Failed(format!("{}: {e}", cache_dir.display())))?;
    let partial = cache_dir.join(format!("{name}.partial.wav"));
    let mut cmd = tokio::process::Command::new("espeak-ng");
    cmd.args(["-v", &voice, "-w"]).arg(&partial);
    if text.trim_start().starts_with("<speak") {
        cmd.arg("-m");
    }
    let out = cmd
        .arg("--")
        .arg(text)
        .output()
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => TtsError::Missing,
            _ => TtsError::Failed(e.to_string()),
        })?;
    if !out.status.success() {
        return Err(TtsError::Failed(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    tokio::fs::rename(&partial, &path)
        .await
        .map_err(|e| TtsError::Failed(e.to_string()))?;
    Ok(path)
}
