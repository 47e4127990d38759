//! Text to speech for `talk`: providers behind one trait ([`TtsProvider`]: text,
//! language, gender and voice in, a WAV file out), chosen by `talk`'s `provider`.
//! The local default is Debian's espeak-ng, spawned; the cloud one an
//! OpenAI-compatible speech API. Each caches its WAV on disk by a hash of
//! (provider, text, language, voice), so a prompt said twice is made once.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

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

/// What to say, and how.
#[derive(Debug, Clone, Default)]
pub struct Speech {
    /// Plain text, or SSML starting with `<speak`.
    pub text: String,
    /// BCP 47 (en-US).
    pub language: String,
    /// male, female or neutral.
    pub gender: String,
    /// A provider's own voice name, when given.
    pub voice_id: String,
}

/// The future a provider returns: the WAV file's path.
pub type Spoken<'a> = Pin<Box<dyn Future<Output = Result<PathBuf, TtsError>> + Send + 'a>>;

/// A speech synthesizer for `talk`.
pub trait TtsProvider: Send + Sync {
    /// Its name in `talk`'s `provider` option.
    fn name(&self) -> &'static str;
    /// Speaks into a WAV file under `cache_dir` (or finds it there); its path.
    fn speak<'a>(&'a self, cache_dir: &'a Path, speech: &'a Speech) -> Spoken<'a>;
}

/// Debian's espeak-ng: local, no keys. SSML is passed with `-m`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Espeak;

impl TtsProvider for Espeak {
    fn name(&self) -> &'static str {
        "espeak-ng"
    }

    fn speak<'a>(&'a self, cache_dir: &'a Path, speech: &'a Speech) -> Spoken<'a> {
        Box::pin(speak(
            cache_dir,
            &speech.text,
            &speech.language,
            &speech.gender,
        ))
    }
}

impl TtsProvider for OpenAi {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn speak<'a>(&'a self, cache_dir: &'a Path, speech: &'a Speech) -> Spoken<'a> {
        Box::pin(speak_openai(
            self,
            cache_dir,
            &speech.text,
            &speech.language,
            &speech.voice_id,
        ))
    }
}

/// The providers a server has: espeak-ng always, and what is configured.
pub struct Providers {
    default: Box<dyn TtsProvider>,
    others: Vec<Box<dyn TtsProvider>>,
}

impl Providers {
    /// espeak-ng as the default, and `others` by name.
    pub fn new(others: Vec<Box<dyn TtsProvider>>) -> Self {
        Self {
            default: Box::new(Espeak),
            others,
        }
    }

    /// Speaks with the provider `talk` named ("" or an espeak name for the default);
    /// an unknown or unconfigured one is an error naming it.
    pub async fn speak(
        &self,
        provider: &str,
        cache_dir: &Path,
        speech: &Speech,
    ) -> Result<PathBuf, TtsError> {
        if matches!(provider, "" | "espeak" | "espeak-ng" | "default") {
            return self.default.speak(cache_dir, speech).await;
        }
        match self.others.iter().find(|p| p.name() == provider) {
            Some(p) => p.speak(cache_dir, speech).await,
            None if provider == "openai" => Err(TtsError::Failed(
                "provider openai is not configured (--tts-openai-url)".into(),
            )),
            None => Err(TtsError::Failed(format!(
                "no TTS provider {provider:?} here (espeak-ng{})",
                self.others
                    .iter()
                    .map(|p| format!(", {}", p.name()))
                    .collect::<String>()
            ))),
        }
    }
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
    /// One client for every request (its connections are reused).
    client: reqwest::Client,
}

impl OpenAi {
    /// The API at `base` (no trailing slash) with bearer `key`: 30 s per request.
    pub fn new(base: String, key: String) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?;
        Ok(Self { base, key, client })
    }
}

/// One synthesis per cache file at a time: calls that ask for the same speech at
/// once (a burst of calls into one flow) wait for the first, then find the file
/// made. Without it they all wrote the same partial file, and all but one failed
/// with "No such file or directory" when the first renamed it away.
struct Making {
    path: PathBuf,
    lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

/// The files being made now, each with the lock its makers take turns on.
type MakingFiles =
    std::sync::Mutex<std::collections::HashMap<PathBuf, std::sync::Arc<tokio::sync::Mutex<()>>>>;

fn making_files() -> &'static MakingFiles {
    static FILES: std::sync::OnceLock<MakingFiles> = std::sync::OnceLock::new();
    FILES.get_or_init(Default::default)
}

impl Making {
    /// Waits for the turn to make `path`.
    async fn wait(path: &Path) -> Self {
        let lock = making_files()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(path.to_owned())
            .or_default()
            .clone();
        let turn = lock.clone().lock_owned().await;
        Self {
            path: path.to_owned(),
            lock,
            _turn: turn,
        }
    }
}

impl Drop for Making {
    fn drop(&mut self) {
        let mut files = making_files()
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The table, this turn's guard and `self.lock` hold it: nobody else waits.
        if std::sync::Arc::strong_count(&self.lock) <= 3 {
            files.remove(&self.path);
        }
    }
}

/// Speaks `text` with the OpenAI-compatible API into a WAV under `cache_dir`, cached
/// by a hash of (provider, text, language, voice).
async fn speak_openai(
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
    let _making = Making::wait(&path).await;
    if tokio::fs::metadata(&path).await.is_ok() {
        return Ok(path);
    }
    let body = serde_json::json!({
        "model": "tts-1", "input": text, "voice": voice, "response_format": "wav",
    });
    let resp = api
        .client
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
    // The operator's provider, but its answer is still read with a cap.
    let bytes = api::outbound::Outbound::read_capped(resp, api::outbound::MAX_PROMPT)
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
async fn speak(
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
    let _making = Making::wait(&path).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A provider that answers with a fixed path, to see which one was chosen.
    struct Fixed(&'static str);

    impl TtsProvider for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn speak<'a>(&'a self, _: &'a Path, _: &'a Speech) -> Spoken<'a> {
            Box::pin(async move { Ok(PathBuf::from(self.0)) })
        }
    }

    #[tokio::test]
    async fn talk_provider_picks_by_name_and_unknown_names_those_present() {
        let providers = Providers::new(vec![Box::new(Fixed("stub"))]);
        let speech = Speech {
            text: "hello".into(),
            ..Speech::default()
        };
        let dir = Path::new("/nonexistent");
        let got = providers.speak("stub", dir, &speech).await;
        assert_eq!(got.ok(), Some(PathBuf::from("stub")));
        let err = providers.speak("polly", dir, &speech).await;
        match err {
            Err(TtsError::Failed(msg)) => {
                assert!(
                    msg.contains("polly") && msg.contains("espeak-ng, stub"),
                    "{msg}"
                )
            }
            other => panic!("expected an error naming the providers, got {other:?}"),
        }
        let err = providers.speak("openai", dir, &speech).await;
        assert!(
            matches!(&err, Err(TtsError::Failed(m)) if m.contains("--tts-openai-url")),
            "{err:?}"
        );
    }
}
