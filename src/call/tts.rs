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

/// An OpenAI-compatible speech API (`POST {base}/v1/audio/speech`).
#[derive(Debug, Clone)]
pub struct OpenAi {
    /// The base URL, without a trailing slash.
    pub base: String,
    /// The bearer key.
    pub key: String,
}

/// Speaks `text` with the OpenAI-compatible API into a WAV under `cache_dir`, cached
/// by a hash of (provider, text, language, voice).
pub async fn speak_openai(
    api: &OpenAi,
    cache_dir: &Path,
    text: &str,
    language: &str,
    voice: &str,
) -> Result<PathBuf, TtsError> {
    let voice = if voice.is_empty() { "alloy" } else { voice };
    let mut h = Sha256::new();
    for part in ["openai", text, language, voice] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    let path = cache_dir.join(format!("{}.wav", hex::encode(&h.finalize()[..16])));
    if tokio::fs::metadata(&path).await.is_ok() {
        return Ok(path);
    }
    let body = serde_json::json!({
        "model": "tts-1", "input": text, "voice": voice, "response_format": "wav",
    });
    let resp = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| TtsError::Failed(e.to_string()))?
        .post(format!("{}/v1/audio/speech", api.base))
        .bearer_auth(&api.key)
        .json(&body)
        .send()
        .await
        .map_err(|e| TtsError::Failed(format!("{}: {e}", api.base)))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        return Err(TtsError::Failed(format!(
            "the speech API answered {status}: {}",
            text.chars().take(200).collect::<String>()
        )));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| TtsError::Failed(e.to_string()))?;
    tokio::fs::create_dir_all(cache_dir)
        .await
        .map_err(|e| TtsError::Failed(e.to_string()))?;
    let partial = path.with_extension("partial");
    tokio::fs::write(&partial, &bytes)
        .await
        .map_err(|e| TtsError::Failed(e.to_string()))?;
    tokio::fs::rename(&partial, &path)
        .await
        .map_err(|e| TtsError::Failed(e.to_string()))?;
    Ok(path)
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
