//! Prompts fetched for `play`: downloaded once per URL into `<data dir>/cache`,
//! streamed to disk with a cap ([`api::outbound::MAX_PROMPT`]) and only when the
//! answer says it is audio, through the outbound client (public addresses only).
//! The cache has a size quota: past it, the least recently used prompts go.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use api::outbound::{MAX_PROMPT, Outbound, OutboundError};
use sha2::Digest;

/// The most the prompt cache holds before the oldest prompts are removed.
pub const CACHE_QUOTA: u64 = 512 << 20;

/// Content types a prompt may have (and none, which some servers send).
fn is_audio(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("audio/") || essence == "application/octet-stream" || essence.is_empty()
}

/// Downloads a prompt from an HTTP(S) URL into the cache (once per URL); its path.
pub async fn fetch(outbound: &Outbound, data_dir: &Path, url: &str) -> Result<PathBuf, String> {
    let dir = data_dir.join("cache");
    let name = hex::encode(&sha2::Sha256::digest(url.as_bytes())[..16]);
    let path = dir.join(format!("{name}.wav"));
    if tokio::fs::metadata(&path).await.is_ok() {
        touch(&path);
        return Ok(path);
    }
    let resp = outbound
        .request(reqwest::Method::GET, url, Duration::from_secs(30))
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|e| format!("{url}: {}", OutboundError::from(e)))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !is_audio(&content_type) {
        return Err(format!(
            "{url}: {}",
            OutboundError::ContentType(content_type, "audio")
        ));
    }
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| format!("the prompt cache: {e}"))?;
    let partial = dir.join(format!("{name}.partial"));
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(|e| format!("the prompt cache: {e}"))?;
    let saved = Outbound::save_capped(resp, MAX_PROMPT, &mut file).await;
    drop(file);
    let size = match saved {
        Ok(n) => n,
        Err(e) => {
            if let Err(rm) = tokio::fs::remove_file(&partial).await {
                tracing::warn!(error = %rm, "removing a cut-off download");
            }
            return Err(format!("{url}: {e}"));
        }
    };
    tokio::fs::rename(&partial, &path)
        .await
        .map_err(|e| format!("the prompt cache: {e}"))?;
    let keep = path.clone();
    let evicted = tokio::task::spawn_blocking(move || enforce_quota(&dir, CACHE_QUOTA, &keep))
        .await
        .unwrap_or(0);
    tracing::debug!(url, size, evicted, "prompt downloaded");
    Ok(path)
}

/// Marks a cached prompt as just used.
fn touch(path: &Path) {
    if let Err(e) = std::fs::File::options()
        .append(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()))
    {
        tracing::debug!(error = %e, "marking a cached prompt used");
    }
}

/// Removes the least recently used files of `dir` (never `keep`) until it holds at
/// most `quota` bytes; how many went.
pub fn enforce_quota(dir: &Path, quota: u64, keep: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            meta.is_file().then(|| {
                (
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                    e.path(),
                )
            })
        })
        .collect();
    let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
    files.sort();
    let mut removed = 0;
    for (_, len, path) in files {
        if total <= quota {
            break;
        }
        if path == keep {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                total = total.saturating_sub(len);
                removed += 1;
            }
            Err(e) => tracing::warn!(error = %e, "evicting a cached prompt"),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_types_pass_and_pages_do_not() {
        assert!(is_audio("audio/wav"));
        assert!(is_audio("audio/x-wav; charset=binary"));
        assert!(is_audio("application/octet-stream"));
        assert!(!is_audio("text/html; charset=utf-8"));
        assert!(!is_audio("application/json"));
    }

    #[test]
    fn the_cache_is_cut_to_its_quota_oldest_first() {
        let dir = tempfile::tempdir().expect("dir");
        let t0 = SystemTime::now() - Duration::from_secs(100);
        for (i, name) in ["a", "b", "c", "d"].iter().enumerate() {
            let p = dir.path().join(name);
            std::fs::write(&p, vec![0u8; 1000]).expect("write");
            std::fs::File::options()
                .append(true)
                .open(&p)
                .and_then(|f| f.set_modified(t0 + Duration::from_secs(i as u64)))
                .expect("mtime");
        }
        let keep = dir.path().join("a");
        assert_eq!(enforce_quota(dir.path(), 2500, &keep), 2);
        let left: Vec<_> = ["a", "b", "c", "d"]
            .iter()
            .filter(|n| dir.path().join(n).exists())
            .collect();
        assert_eq!(
            left,
            vec![&"a", &"d"],
            "the newest and the one just fetched stay"
        );
    }
}
