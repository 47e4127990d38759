//! `GET /v1.0/calls/{id}/media_stream?format=ulaw|alaw|slin|slin16`: a live call's
//! audio both ways over a WebSocket, in JSON text frames with the semantics of
//! Twilio Media Streams (README, "Streaming a call's audio").
//!
//! To the client: `start`, then `media` (20 ms of what the caller says, base64,
//! with its chunk number and timestamp), `dtmf`, `speech_started`/`speech_ended`,
//! `mark` (the echo of the client's mark once the audio before it has played) and
//! `stop`. From the client: `media` (audio for the caller, any length, paced to
//! 20 ms by the call's media), `mark`, and `clear` (drops what is queued at once).
//! Closing the socket ends the stream, not the call.

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::{Value, json};

use super::St;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::resource_id;
use crate::media_stream::{MediaStream, StreamError, StreamFormat, StreamIn, StreamOut};
use crate::store::calls::Call;

/// The query: the audio format.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    /// `ulaw` (default), `alaw`, `slin` or `slin16`.
    format: Option<String>,
}

/// Stream a live call's audio both ways over a WebSocket (`ws://`, with `token` or
/// `accesskey` in the query). To the client, JSON text frames: `start`
/// (`start.call_id`, `start.media_format` `{encoding, sample_rate, channels}`),
/// `media` (`media.payload` base64 audio of 20 ms, `media.chunk`,
/// `media.timestamp` in ms), `dtmf` (`dtmf.digit`), `speech_started`,
/// `speech_ended`, `mark` (`mark.name`, once the audio sent before it has played,
/// or been cleared), `stop` (`stop.reason`); each with `event`,
/// `sequence_number` and `stream_id`. From the client: `media`
/// (`media.payload`, any length), `mark` (`mark.name`) and `clear`. A slow client
/// loses the oldest audio; closing the socket ends the stream, not the call.
#[utoipa::path(get, path = "/calls/{id}/media_stream", tag = "calls",
    params(("format" = Option<String>, Query, description = "ulaw (default, 8 kHz), alaw (8 kHz), slin (16-bit little-endian PCM at 8 kHz) or slin16 (the same at 16 kHz)")),
    responses((status = 101, description = "switching to the WebSocket"), (status = 400), (status = 404)))]
pub async fn upgrade(
    state: St,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<StreamQuery>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let id = resource_id(&id)?;
    let format = match query.format.as_deref() {
        None => StreamFormat::Ulaw,
        Some(text) => StreamFormat::parse(text).ok_or_else(|| {
            ApiError::invalid(
                "format",
                format!("{text:?} is not ulaw, alaw, slin or slin16"),
            )
        })?,
    };
    // Another customer's call is not found, as everywhere.
    let call = super::owned_or_404::<Call>(state.store.pool(), &caller.customer_id, id).await?;
    if call.status == "hangup" {
        return Err(ApiError::invalid("id", "the call has already hung up"));
    }
    let Some(port) = state.media_streams.get() else {
        return Err(ApiError::Unavailable(
            "media streams are not available on this server".into(),
        ));
    };
    let stream = port.open(id, format).await.map_err(|e| match e {
        StreamError::NotLive => ApiError::invalid("id", "the call is not live on this server"),
        StreamError::NoMedia => ApiError::invalid("id", e),
        StreamError::Engine(what) => ApiError::Unavailable(what),
    })?;
    Ok(ws.on_upgrade(move |socket| serve(socket, call.id, format, stream)))
}

/// A message from the client.
#[derive(Debug, Deserialize)]
struct ClientMessage {
    event: String,
    #[serde(default)]
    media: Option<ClientMedia>,
    #[serde(default)]
    mark: Option<ClientMark>,
}

#[derive(Debug, Deserialize)]
struct ClientMedia {
    payload: String,
}

#[derive(Debug, Deserialize)]
struct ClientMark {
    name: String,
}

/// What a client's frame asks, or what is wrong with it (naming the field).
fn read(text: &str) -> Result<StreamIn, String> {
    let message: ClientMessage =
        serde_json::from_str(text).map_err(|e| format!("not a stream message: {e}"))?;
    match message.event.as_str() {
        "media" => {
            let media = message.media.ok_or("media: missing")?;
            let audio = BASE64
                .decode(media.payload.as_bytes())
                .map_err(|e| format!("media.payload: not base64 ({e})"))?;
            Ok(StreamIn::Audio(audio))
        }
        "mark" => Ok(StreamIn::Mark(message.mark.ok_or("mark: missing")?.name)),
        "clear" => Ok(StreamIn::Clear),
        other => Err(format!("event: {other:?} is not media, mark or clear")),
    }
}

/// Numbers the frames sent to the client.
struct Sender {
    socket: WebSocket,
    sequence: u64,
    stream_id: String,
}

impl Sender {
    /// Sends `body` with the next sequence number; false when the client is gone.
    async fn send(&mut self, event: &str, key: &str, body: Value) -> bool {
        self.sequence += 1;
        let mut frame = json!({
            "event": event,
            "sequence_number": self.sequence,
            "stream_id": self.stream_id,
        });
        if !body.is_null() {
            frame[key] = body;
        }
        self.socket
            .send(Message::Text(Utf8Bytes::from(frame.to_string())))
            .await
            .is_ok()
    }

    async fn close(mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(reason.to_owned()),
        };
        if self.socket.send(Message::Close(Some(frame))).await.is_err() {
            tracing::debug!("the media stream's client left before its close");
        }
    }
}

async fn serve(socket: WebSocket, call_id: String, format: StreamFormat, stream: MediaStream) {
    let MediaStream {
        stream_id,
        mut out,
        into,
    } = stream;
    let mut tx = Sender {
        socket,
        sequence: 0,
        stream_id: stream_id.clone(),
    };
    let start = json!({
        "call_id": call_id,
        "stream_id": stream_id,
        "tracks": ["inbound"],
        "media_format": {"encoding": format.name(), "sample_rate": format.rate(), "channels": 1},
    });
    if !tx.send("start", "start", start).await {
        return;
    }
    let mut chunk = 0u64;
    loop {
        tokio::select! {
            from_call = out.recv() => {
                let sent = match from_call {
                    Some(StreamOut::Audio { payload, timestamp_ms }) => {
                        chunk += 1;
                        let media = json!({
                            "track": "inbound",
                            "chunk": chunk,
                            "timestamp": timestamp_ms,
                            "payload": BASE64.encode(&payload),
                        });
                        tx.send("media", "media", media).await
                    }
                    Some(StreamOut::Dtmf(digit)) => {
                        tx.send("dtmf", "dtmf", json!({"digit": digit.to_string()})).await
                    }
                    Some(StreamOut::SpeechStarted) => tx.send("speech_started", "", Value::Null).await,
                    Some(StreamOut::SpeechEnded) => tx.send("speech_ended", "", Value::Null).await,
                    Some(StreamOut::Mark(name)) => tx.send("mark", "mark", json!({"name": name})).await,
                    Some(StreamOut::Stop(reason)) => {
                        if tx.send("stop", "stop", json!({"reason": reason})).await {
                            tx.close(1000, reason).await;
                        }
                        return;
                    }
                    None => {
                        if tx.send("stop", "stop", json!({"reason": "the call ended"})).await {
                            tx.close(1000, "the call ended").await;
                        }
                        return;
                    }
                };
                if !sent {
                    return;
                }
            }
            incoming = tx.socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => continue,
                };
                match read(&text) {
                    Ok(command) => {
                        if into.send(command).is_err() {
                            // The call ended: its stop is on its way out.
                            continue;
                        }
                    }
                    Err(what) => {
                        tx.close(1003, &what).await;
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_are_read_and_bad_ones_name_the_field() {
        assert_eq!(
            read(r#"{"event":"media","media":{"payload":"AAEC"}}"#),
            Ok(StreamIn::Audio(vec![0, 1, 2]))
        );
        assert_eq!(
            read(r#"{"event":"mark","mark":{"name":"intro"}}"#),
            Ok(StreamIn::Mark("intro".into()))
        );
        assert_eq!(read(r#"{"event":"clear"}"#), Ok(StreamIn::Clear));
        assert!(
            read(r#"{"event":"media","media":{"payload":"!!"}}"#)
                .expect_err("refused")
                .starts_with("media.payload")
        );
        assert!(
            read(r#"{"event":"mark"}"#)
                .expect_err("refused")
                .starts_with("mark")
        );
        assert!(
            read(r#"{"event":"dance"}"#)
                .expect_err("refused")
                .starts_with("event")
        );
        assert!(read("not json").is_err());
    }
}
