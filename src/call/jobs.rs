//! The call core's jobs, run on tokio: flows read through the storage port, speech
//! made by the TTS providers, prompts fetched or read from the customer's media,
//! HTTP requests, another call's hangup reason. Each answers with one input.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use media_engine::engine::Source;
use media_engine::wav::{Prompt, PromptCache};
use tokio::sync::mpsc;

use super::Services;
use super::core::{FlowPurpose, Input, Job, JobResult, LoadedFlow};

/// Runs `job` for the call of `customer_id` in its own task; its answer goes to
/// `inputs` (when the call still listens).
pub(super) fn spawn(
    services: &Arc<Services>,
    customer_id: &str,
    job: Job,
    inputs: &mpsc::UnboundedSender<Input>,
) {
    let services = services.clone();
    let customer_id = customer_id.to_owned();
    let inputs = inputs.clone();
    let span = tracing::Span::current();
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            if let Some(result) = run(&services, &customer_id, job).await
                && inputs.send(Input::JobDone(result)).is_err()
            {
                tracing::debug!("a job finished after its call ended");
            }
        },
        span,
    ));
}

async fn run(services: &Arc<Services>, customer_id: &str, job: Job) -> Option<JobResult> {
    Some(match job {
        Job::Originate { request, chained } => JobResult::Originated {
            chained,
            result: super::originate::originate(services, *request)
                .await
                .map(|calls| calls.into_iter().map(|c| c.id).collect())
                .map_err(|e| e.to_string()),
        },
        Job::LoadFlow { flow_id, purpose } => {
            let started = std::time::Instant::now();
            let flow = services
                .store
                .flow(customer_id, &flow_id)
                .await
                .map(|f| {
                    f.map(|f| LoadedFlow {
                        id: f.id,
                        actions: f.actions,
                        on_complete_flow_id: f.on_complete_flow_id,
                    })
                })
                .map_err(|e| e.to_string());
            if let (FlowPurpose::First, Some(load)) = (&purpose, &services.load) {
                load.storage_waited(started.elapsed());
            }
            JobResult::FlowLoaded { purpose, flow }
        }
        Job::Speak {
            action,
            provider,
            speech,
            wait,
        } => {
            let cache = services.data_dir.join("tts");
            let source = match services.tts.speak(&provider, &cache, &speech).await {
                Ok(path) => prompt_source(services, path).await,
                Err(e) => Err(e.to_string()),
            };
            JobResult::SourceReady {
                action,
                source,
                wait,
            }
        }
        Job::Prompt { action, url } => {
            let source = if url.starts_with("http://") || url.starts_with("https://") {
                match super::prompts::fetch(&services.outbound, &services.data_dir, &url).await {
                    Ok(path) => prompt_source(services, path).await,
                    Err(e) => Err(e),
                }
            } else {
                let media_dir = customer_media(&services.data_dir, customer_id);
                match local_path(&media_dir, &url) {
                    Some(path) => prompt_source(services, path).await,
                    None => Err(format!(
                        "{url}: not a file of the customer's media (media/<customer id>/ in the data dir)"
                    )),
                }
            };
            JobResult::SourceReady {
                action,
                source,
                wait: true,
            }
        }
        Job::Http { action, request } => {
            let (status, body) = http(&services.outbound, &request).await;
            if !request.wait {
                return None;
            }
            JobResult::HttpDone {
                action,
                status,
                body,
            }
        }
        Job::RelayReason { call_id } => {
            let reason = match services.store.hangup_reason(customer_id, &call_id).await {
                Ok(reason) => reason.unwrap_or_default(),
                Err(e) => {
                    tracing::warn!(error = %e, %call_id, "hangup_relay: the other call's reason could not be read; hanging up as normal");
                    String::new()
                }
            };
            JobResult::RelayReason(reason)
        }
    })
}

/// The folder of a customer's own media: `play` of a relative path or `file://`
/// URL reads only from here, so one customer cannot play another's recordings.
fn customer_media(data_dir: &Path, customer_id: &str) -> PathBuf {
    data_dir.join("media").join(customer_id)
}

/// A path under `media_dir` for a play URL (`file://...`, or a relative path);
/// `None` for anything that leaves it or is a network URL.
fn local_path(media_dir: &Path, url: &str) -> Option<PathBuf> {
    let rel = url.strip_prefix("file://").unwrap_or(url);
    if rel.contains("://") || rel.split(['/', '\\']).any(|p| p == "..") {
        return None;
    }
    let path = Path::new(rel.trim_start_matches('/'));
    let full = media_dir.join(path);
    full.starts_with(media_dir).then_some(full)
}

/// Makes an HTTP request for `webhook_send` or `fetch` (10 s timeout, answers of at
/// most 1 MiB, public addresses only); the status is 0 when it could not be made.
async fn http(
    outbound: &api::outbound::Outbound,
    req: &flow_runtime::interpreter::HttpRequest,
) -> (u16, String) {
    let method = reqwest::Method::from_bytes(req.method.to_ascii_uppercase().as_bytes())
        .unwrap_or(reqwest::Method::POST);
    let mut builder = match outbound.request(method, &req.url, Duration::from_secs(10)) {
        Ok(b) => b,
        Err(e) => {
            tracing::info!(url = %req.url, error = %e, "{} refused", req.purpose);
            return (0, String::new());
        }
    };
    if !req.body.is_empty() {
        builder = builder
            .header(reqwest::header::CONTENT_TYPE, &req.content_type)
            .body(req.body.clone());
    }
    let resp = match builder.send().await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::info!(url = %req.url, error = %e, "{} failed", req.purpose);
            return (0, String::new());
        }
    };
    let status = resp.status().as_u16();
    match api::outbound::Outbound::read_capped(resp, api::outbound::MAX_FETCHED_BODY).await {
        Ok(body) => (status, String::from_utf8_lossy(&body).into_owned()),
        Err(e) => {
            tracing::info!(url = %req.url, error = %e, "{}: the answer was not read", req.purpose);
            (status, String::new())
        }
    }
}

/// A prompt at the leg's rate (8 kHz), converted once and cached.
async fn prompt_source(services: &Arc<Services>, path: PathBuf) -> Result<Source, String> {
    let services = services.clone();
    tokio::task::spawn_blocking(move || services.prompts.get_at(&path, 8000))
        .await
        .map_err(|e| e.to_string())?
        .map(|prompt| Source::Prompt { prompt, times: 1 })
        .map_err(|e| e.to_string())
}

/// The music: `<data dir>/moh/default.wav` when there is one (any WAV the prompts
/// may be, converted once and cached), else a built-in tune.
pub(super) fn music(prompts: &PromptCache, data_dir: &Path) -> Arc<Prompt> {
    let path = data_dir.join("moh").join("default.wav");
    if path.is_file()
        && let Ok(p) = prompts.get_at(&path, 8000)
    {
        return p;
    }
    static TUNE: std::sync::OnceLock<Arc<Prompt>> = std::sync::OnceLock::new();
    TUNE.get_or_init(|| Arc::new(tune())).clone()
}

/// Eight seconds of a soft pentatonic arpeggio at 8 kHz: each note fades in and out
/// so the loop has no clicks.
fn tune() -> Prompt {
    const RATE: f32 = 8000.0;
    const NOTE: usize = 2000; // 250 ms
    let notes = [
        261.63, 329.63, 392.00, 440.00, 392.00, 329.63, 293.66, 329.63, 220.00, 261.63, 329.63,
        392.00, 349.23, 293.66, 246.94, 261.63, 261.63, 329.63, 392.00, 523.25, 440.00, 392.00,
        329.63, 293.66, 220.00, 246.94, 261.63, 293.66, 329.63, 293.66, 261.63, 196.00,
    ];
    let mut samples = Vec::with_capacity(notes.len() * NOTE);
    for f in notes {
        for i in 0..NOTE {
            let t = i as f32 / RATE;
            let envelope = (std::f32::consts::PI * i as f32 / NOTE as f32).sin();
            let tone = (std::f32::consts::TAU * f * t).sin()
                + 0.3 * (std::f32::consts::TAU * 2.0 * f * t).sin();
            samples.push((tone * envelope * 4000.0) as i16);
        }
    }
    Prompt {
        rate: 8000,
        samples: samples.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn play_reads_only_the_customers_own_media() {
        let media = customer_media(Path::new("/srv/vb"), "cust-a");
        assert_eq!(
            local_path(&media, "prompts/hi.wav"),
            Some(PathBuf::from("/srv/vb/media/cust-a/prompts/hi.wav"))
        );
        assert_eq!(
            local_path(&media, "file:///prompts/hi.wav"),
            Some(PathBuf::from("/srv/vb/media/cust-a/prompts/hi.wav"))
        );
        // Another customer's recording, however it is written, is not reachable.
        for url in [
            "../../recordings/r1.wav",
            "/srv/vb/recordings/r1.wav",
            "file:///../cust-b/x.wav",
            "..\\cust-b\\x.wav",
        ] {
            let got = local_path(&media, url);
            assert!(
                got.as_ref().is_none_or(|p| p.starts_with(&media)),
                "{url} -> {got:?}"
            );
        }
        assert_eq!(local_path(&media, "http://x/a.wav"), None);
    }

    #[test]
    fn failures_do_not_show_where_the_data_dir_is() {
        let msg = super::super::core::without_data_dir(
            "/srv/vb/media/c1/x.wav: No such file or directory",
            Path::new("/srv/vb"),
        );
        assert_eq!(msg, "media/c1/x.wav: No such file or directory");
    }
}
